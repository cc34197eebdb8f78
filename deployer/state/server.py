"""Reference server of the environment-state service (see ``contract.yaml``).

Stdlib only: ``http.server.ThreadingHTTPServer`` in front of SQLite. Each request opens its own
SQLite connection; writes run in ``BEGIN IMMEDIATE`` transactions so that the compare-and-set of
``switch`` is atomic across threads and processes, and every write appends its history event in the
same transaction. The token is never logged, stored or echoed.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import re
import signal
import socket
import socketserver
import sqlite3
import ssl
import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NoReturn
from urllib.parse import parse_qsl, urlsplit

from deployer.errors import ConfigError, TLSError

COLOURS = ("blue", "green")
MAX_BODY = 1024 * 1024
DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
BUSY_TIMEOUT_MS = 5000
# Bodies up to this size are read and thrown away before a 413, so that the client sees the answer
# instead of a connection reset; anything bigger just gets the connection closed.
_DRAIN_LIMIT = 16 * MAX_BODY
_HANDSHAKE_TIMEOUT = 10.0

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
STACK_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")  # Docker stack and service names
RESULT_RE = re.compile(r"^[a-z][a-z_]{0,31}$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")

SCHEMA = """
CREATE TABLE IF NOT EXISTS environments (
    name        TEXT PRIMARY KEY,
    live_colour TEXT NOT NULL CHECK (live_colour IN ('blue', 'green')),
    revision    INTEGER NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS clusters (
    environment     TEXT NOT NULL REFERENCES environments(name),
    colour          TEXT NOT NULL CHECK (colour IN ('blue', 'green')),
    manager_address TEXT NOT NULL,
    docker_port     INTEGER NOT NULL,
    PRIMARY KEY (environment, colour)
);
CREATE TABLE IF NOT EXISTS stacks (
    environment TEXT NOT NULL REFERENCES environments(name),
    colour      TEXT NOT NULL CHECK (colour IN ('blue', 'green')),
    name        TEXT NOT NULL,
    deployed_at TEXT NOT NULL,
    deployed_by TEXT NOT NULL,
    services    TEXT NOT NULL,  -- JSON list of {name, image, replicas}, sorted by name
    PRIMARY KEY (environment, colour, name)
);
CREATE TABLE IF NOT EXISTS deployments (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    environment TEXT NOT NULL REFERENCES environments(name),
    at          TEXT NOT NULL,
    colour      TEXT NOT NULL,
    stack       TEXT NOT NULL,
    services    TEXT NOT NULL,  -- JSON
    compose     TEXT NOT NULL,  -- JSON, kept whole so that a deployment can be replayed
    result      TEXT NOT NULL,
    actor       TEXT NOT NULL,
    job_url     TEXT
);
CREATE INDEX IF NOT EXISTS deployments_by_environment ON deployments (environment, id);
CREATE TABLE IF NOT EXISTS events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    environment TEXT NOT NULL REFERENCES environments(name),
    at          TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('created', 'updated', 'switched', 'deployed')),
    actor       TEXT,
    detail      TEXT NOT NULL  -- JSON object
);
CREATE INDEX IF NOT EXISTS events_by_environment ON events (environment, id);
PRAGMA user_version = 1;
"""


# --------------------------------------------------------------------------------------------------
# Small helpers


class _HTTPError(Exception):
    """An error answer: status, one-line message and extra headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def _bad(message: str) -> NoReturn:
    raise _HTTPError(400, message)


def _one_line(text: str, limit: int = 200) -> str:
    """Make text safe to put in a one-line error or log line."""
    text = _CONTROL_RE.sub("?", text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _show(value: Any) -> str:
    """A short, one-line rendering of a client-supplied value for error messages."""
    if isinstance(value, str):
        return repr(_one_line(value, 60))
    return _one_line(json.dumps(value), 60)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _connect(db_path: str) -> sqlite3.Connection:
    # isolation_level=None: we issue BEGIN/COMMIT ourselves, so that writes are BEGIN IMMEDIATE.
    conn = sqlite3.connect(db_path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


@contextmanager
def _transaction(conn: sqlite3.Connection, *, write: bool) -> Iterator[None]:
    """A transaction; IMMEDIATE for writes so that read-check-write sequences are atomic."""
    conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def init_db(db_path: str) -> None:
    """Create the schema if it is missing and switch the database to WAL mode."""
    try:
        conn = _connect(db_path)
    except sqlite3.Error as exc:
        raise ConfigError(f"cannot open the state database {db_path}: {exc}") from exc
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.executescript(SCHEMA)
    except sqlite3.Error as exc:
        raise ConfigError(f"cannot initialise the state database {db_path}: {exc}") from exc
    finally:
        conn.close()


# --------------------------------------------------------------------------------------------------
# Request validation


def _fields(value: Any, what: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict:
    if not isinstance(value, dict):
        _bad(f"{what} must be a JSON object")
    unknown = sorted(set(value) - set(required) - set(optional))
    if unknown:
        _bad(f"{what} has unknown field {_show(unknown[0])}")
    for key in required:
        if key not in value:
            _bad(f"{what} is missing {key!r}")
    return value


def _colour(value: Any, what: str) -> str:
    if value not in COLOURS or not isinstance(value, str):
        _bad(f"{what} must be blue or green, not {_show(value)}")
    return value


def _int(value: Any, what: str, low: int, high: int) -> int:
    # bool is an int in Python but not in JSON; refuse true/false as numbers.
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        _bad(f"{what} must be an integer from {low} to {high}, not {_show(value)}")
    return value


def _text(value: Any, what: str, max_len: int, *, pattern: re.Pattern[str] | None = None) -> str:
    if not isinstance(value, str) or not value or len(value) > max_len:
        _bad(f"{what} must be a non-empty string of at most {max_len} characters")
    if pattern is not None and not pattern.match(value):
        _bad(f"{what} {_show(value)} does not match {pattern.pattern}")
    return value


def _actor(value: Any, what: str, *, required: bool = False) -> str | None:
    if value is None and not required:
        return None
    actor = _text(value, what, 200)
    if _CONTROL_RE.search(actor):
        _bad(f"{what} must not contain control characters")
    return actor


def _optional_text(value: Any, what: str, max_len: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_len:
        _bad(f"{what} must be a string of at most {max_len} characters or null")
    return value


def _cluster_spec(value: Any, colour: str) -> tuple[str, int]:
    what = f"clusters.{colour}"
    spec = _fields(value, what, ("manager_address", "docker_port"))
    address = spec["manager_address"]
    try:
        if not isinstance(address, str):
            raise ValueError(address)
        canonical = str(ipaddress.ip_address(address))
    except ValueError:
        _bad(f"{what}.manager_address must be an IPv4 or IPv6 literal, not {_show(address)}")
    return canonical, _int(spec["docker_port"], f"{what}.docker_port", 1, 65535)


def _services(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        _bad("services must be a non-empty list")
    seen: set[str] = set()
    services = []
    for index, item in enumerate(value):
        what = f"services[{index}]"
        item = _fields(item, what, ("name", "image", "replicas"))
        name = _text(item["name"], f"{what}.name", 63, pattern=STACK_RE)
        if name in seen:
            _bad(f"services lists {name!r} twice")
        seen.add(name)
        image = _text(item["image"], f"{what}.image", 512)
        if any(ch.isspace() for ch in image):
            _bad(f"{what}.image must not contain whitespace")
        replicas = _int(item["replicas"], f"{what}.replicas", 0, 10000)
        services.append({"name": name, "image": image, "replicas": replicas})
    return services


def _compose(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list):
        _bad("compose must be a list of {file, content}")
    files = []
    for index, item in enumerate(value):
        what = f"compose[{index}]"
        item = _fields(item, what, ("file", "content"))
        name = _text(item["file"], f"{what}.file", 255)
        if not isinstance(item["content"], str):
            _bad(f"{what}.content must be a string")
        files.append({"file": name, "content": item["content"]})
    return files


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


# --------------------------------------------------------------------------------------------------
# Database reads


def _load_environment(conn: sqlite3.Connection, name: str) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT name, live_colour, revision, updated_at FROM environments WHERE name = ?", (name,)
    ).fetchone()
    if row is None:
        return None
    live_colour = row[1]
    clusters: dict[str, dict[str, Any]] = {}
    for colour, address, port in conn.execute(
        "SELECT colour, manager_address, docker_port FROM clusters WHERE environment = ? ORDER BY colour",
        (name,),
    ):
        clusters[colour] = {
            "manager_address": address,
            "docker_port": port,
            "live": colour == live_colour,
            "stacks": [],
        }
    for colour, stack, deployed_at, deployed_by, services in conn.execute(
        "SELECT colour, name, deployed_at, deployed_by, services FROM stacks WHERE environment = ? ORDER BY name",
        (name,),
    ):
        clusters[colour]["stacks"].append(
            {
                "name": stack,
                "deployed_at": deployed_at,
                "deployed_by": deployed_by,
                "services": json.loads(services),
            }
        )
    return {
        "name": row[0],
        "live_colour": live_colour,
        "revision": row[2],
        "updated_at": row[3],
        "clusters": clusters,
    }


def _require_environment(conn: sqlite3.Connection, name: str) -> dict[str, Any]:
    env = _load_environment(conn, name) if NAME_RE.match(name) else None
    if env is None:
        raise _HTTPError(404, f"unknown environment {_show(name)}")
    return env


def _cluster_specs(env: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        colour: {"manager_address": c["manager_address"], "docker_port": c["docker_port"]}
        for colour, c in env["clusters"].items()
    }


def _append_event(
    conn: sqlite3.Connection, name: str, at: str, kind: str, actor: str | None, detail: dict[str, Any]
) -> None:
    conn.execute(
        "INSERT INTO events (environment, at, kind, actor, detail) VALUES (?, ?, ?, ?, ?)",
        (name, at, kind, actor, json.dumps(detail, sort_keys=True)),
    )


def _bump(conn: sqlite3.Connection, name: str, at: str, live_colour: str | None = None) -> int:
    if live_colour is None:
        conn.execute("UPDATE environments SET revision = revision + 1, updated_at = ? WHERE name = ?", (at, name))
    else:
        conn.execute(
            "UPDATE environments SET revision = revision + 1, updated_at = ?, live_colour = ? WHERE name = ?",
            (at, live_colour, name),
        )
    return conn.execute("SELECT revision FROM environments WHERE name = ?", (name,)).fetchone()[0]


# --------------------------------------------------------------------------------------------------
# HTTP


class StateHTTPServer(ThreadingHTTPServer):
    """The HTTP(S) server; holds the database path and the write token."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        db_path: str,
        token: str,
        ssl_context: ssl.SSLContext | None,
        access_log: bool,
    ) -> None:
        self.db_path = db_path
        self.token = token
        self.ssl_context = ssl_context
        self.access_log = access_log
        super().__init__(address, _Handler)

    def __repr__(self) -> str:  # never show the token
        return f"<StateHTTPServer {self.url} db={self.db_path!r}>"

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn), which can hang for seconds.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = host
        self.server_port = port

    @property
    def url(self) -> str:
        """The base URL the server listens on, e.g. ``https://127.0.0.1:8443``."""
        host, port = self.server_address[:2]
        if ":" in host:
            host = f"[{host}]"
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{host}:{port}"

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake runs here, in the request's own thread, so that a slow or silent client
        # cannot stall the accept loop.
        if self.ssl_context is None:
            super().finish_request(request, client_address)
            return
        try:
            request.settimeout(_HANDSHAKE_TIMEOUT)
            tls = self.ssl_context.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError) as exc:
            if self.access_log:
                sys.stderr.write(f"{client_address[0]} TLS handshake failed: {_one_line(str(exc))}\n")
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            self.shutdown_request(tls)


class _Handler(BaseHTTPRequestHandler):
    server: StateHTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "auto-state/1"
    sys_version = ""
    timeout = 30  # idle keep-alive connections and slow clients
    # Headers and body go out in two writes; with Nagle on, the client's delayed ACK adds ~40 ms.
    disable_nagle_algorithm = True

    # Each route: path regex -> {method: handler name}.
    ROUTES: tuple[tuple[re.Pattern[str], dict[str, str]], ...] = (
        (re.compile(r"^/v1/health$"), {"GET": "get_health"}),
        (re.compile(r"^/v1/environments$"), {"GET": "list_environments"}),
        (re.compile(r"^/v1/environments/([^/]+)$"), {"GET": "get_environment", "PUT": "put_environment"}),
        (re.compile(r"^/v1/environments/([^/]+)/switch$"), {"POST": "switch"}),
        (
            re.compile(r"^/v1/environments/([^/]+)/deployments$"),
            {"GET": "list_deployments", "POST": "record_deployment"},
        ),
        (re.compile(r"^/v1/environments/([^/]+)/history$"), {"GET": "history"}),
    )

    # ---- plumbing

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._dispatch()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        # Request line and status only: headers (and so the token) are never logged.
        if self.server.access_log:
            sys.stderr.write(f"{self.client_address[0]} {_one_line(format % args, 300)}\n")

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Protocol-level errors of http.server (bad request line, ...) as JSON too."""
        self.close_connection = True
        short = self.responses.get(code, ("error",))[0]
        self._send_json(code, {"error": _one_line(message or short)})

    def _send_json(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body, separators=(",", ":")).encode()
        if getattr(self, "_body_pending", False):
            # We did not read the body, so the connection cannot be reused.
            self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _dispatch(self) -> None:
        length = self.headers.get("Content-Length", "0").strip()
        self._body_pending = length not in ("", "0") or "Transfer-Encoding" in self.headers
        conn: sqlite3.Connection | None = None
        try:
            split = urlsplit(self.path)
            route = next(((r.match(split.path), m) for r, m in self.ROUTES if r.match(split.path)), None)
            if route is None:
                raise _HTTPError(404, f"no such endpoint: {_one_line(split.path, 100)}")
            match, methods = route
            handler = methods.get(self.command)
            if handler is None:
                allowed = ", ".join(methods)
                raise _HTTPError(405, f"{self.command} is not allowed here; use {allowed}", {"Allow": allowed})
            if self.command in ("PUT", "POST"):
                self._authorize()
            query = self._query(split.query)
            conn = _connect(self.server.db_path)
            status, body = getattr(self, handler)(conn, query, *match.groups())  # type: ignore[union-attr]
            self._send_json(status, body)
        except _HTTPError as exc:
            self._send_json(exc.status, {"error": _one_line(exc.message)}, exc.headers)
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                self._send_json(503, {"error": "the state database is busy; retry"})
            else:
                self._internal_error()
        except Exception:
            self._internal_error()
        finally:
            if conn is not None:
                conn.close()

    def _internal_error(self) -> None:
        lines = traceback.format_exc().strip().splitlines()
        sys.stderr.write(f"internal error on {self.command} {_one_line(self.path, 100)}: {lines[-1]}\n")
        self._send_json(500, {"error": "internal error of the environment-state service; see its log"})

    def _authorize(self) -> None:
        header = self.headers.get("Authorization", "")
        scheme, _, supplied = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not supplied.strip():
            raise _HTTPError(
                401,
                "this write needs Authorization: Bearer <token>",
                {"WWW-Authenticate": 'Bearer realm="auto-state"'},
            )
        expected = self.server.token.encode()
        if not hmac.compare_digest(supplied.strip().encode("utf-8", "replace"), expected):
            raise _HTTPError(
                401,
                "the bearer token is not valid",
                {"WWW-Authenticate": 'Bearer realm="auto-state", error="invalid_token"'},
            )

    def _query(self, query: str) -> dict[str, str]:
        params: dict[str, str] = {}
        try:
            pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
        except ValueError:
            _bad("malformed query string")
        for key, value in pairs:
            if key in params:
                _bad(f"query parameter {_show(key)} given twice")
            params[key] = value
        return params

    @staticmethod
    def _allow_params(params: dict[str, str], allowed: tuple[str, ...]) -> None:
        for key in params:
            if key not in allowed:
                hint = ", ".join(allowed) if allowed else "none"
                _bad(f"unknown query parameter {_show(key)}; allowed: {hint}")

    @staticmethod
    def _limit(params: dict[str, str]) -> int:
        raw = params.get("limit")
        if raw is None:
            return DEFAULT_LIMIT
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
            _bad(f"limit must be an integer from 1 to {MAX_LIMIT}, not {_show(raw)}")
        return int(raw)

    def _read_json(self) -> Any:
        if "Transfer-Encoding" in self.headers:
            self.close_connection = True
            _bad("chunked request bodies are not supported; send Content-Length")
        raw_length = self.headers.get("Content-Length")
        if raw_length is None or not raw_length.strip().isdigit():
            self.close_connection = True
            _bad("a JSON request body with a Content-Length header is required")
        length = int(raw_length)
        if length == 0:
            _bad("a JSON request body is required")
        if length > MAX_BODY:
            if length <= _DRAIN_LIMIT:
                self._drain(length)
            raise _HTTPError(413, f"request body is {length} bytes; the limit is {MAX_BODY}")
        raw = self.rfile.read(length)
        self._body_pending = False
        if len(raw) < length:
            self.close_connection = True
            _bad("request body is shorter than its Content-Length")
        try:
            return json.loads(
                raw.decode("utf-8"), object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant
            )
        except (UnicodeDecodeError, ValueError) as exc:
            _bad(f"request body is not valid JSON: {exc}")

    def _drain(self, length: int) -> None:
        remaining = length
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 65536))
            if not chunk:
                return
            remaining -= len(chunk)
        self._body_pending = False

    # ---- endpoints; each returns (status, body)

    def get_health(self, conn: sqlite3.Connection, params: dict[str, str]) -> tuple[int, dict]:
        self._allow_params(params, ())
        conn.execute("SELECT 1 FROM environments LIMIT 1").fetchall()
        return 200, {"status": "ok"}

    def list_environments(self, conn: sqlite3.Connection, params: dict[str, str]) -> tuple[int, dict]:
        self._allow_params(params, ())
        rows = conn.execute("SELECT name, live_colour, revision FROM environments ORDER BY name")
        return 200, {"environments": [{"name": n, "live_colour": c, "revision": r} for n, c, r in rows.fetchall()]}

    def get_environment(self, conn: sqlite3.Connection, params: dict[str, str], name: str) -> tuple[int, dict]:
        self._allow_params(params, ())
        with _transaction(conn, write=False):  # one consistent snapshot across the SELECTs
            return 200, _require_environment(conn, name)

    def put_environment(self, conn: sqlite3.Connection, params: dict[str, str], name: str) -> tuple[int, dict]:
        self._allow_params(params, ())
        if not NAME_RE.match(name):
            _bad(f"invalid environment name {_show(name)}: it must match {NAME_RE.pattern}")
        body = _fields(self._read_json(), "body", ("live_colour", "clusters"), ("actor",))
        live_colour = _colour(body["live_colour"], "live_colour")
        clusters_in = _fields(body["clusters"], "clusters", COLOURS)
        specs = {colour: _cluster_spec(clusters_in[colour], colour) for colour in COLOURS}
        if specs["blue"] == specs["green"]:
            _bad("clusters.blue and clusters.green have the same address and port; they must differ")
        actor = _actor(body.get("actor"), "actor")
        new_specs = {c: {"manager_address": a, "docker_port": p} for c, (a, p) in specs.items()}

        at = _now()
        with _transaction(conn, write=True):
            existing = _load_environment(conn, name)
            if existing is None:
                conn.execute(
                    "INSERT INTO environments (name, live_colour, revision, updated_at) VALUES (?, ?, 1, ?)",
                    (name, live_colour, at),
                )
                status, kind, revision = 201, "created", 1
                detail: dict[str, Any] = {"live_colour": live_colour, "clusters": new_specs}
            else:
                if existing["live_colour"] != live_colour:
                    raise _HTTPError(
                        409,
                        f"live colour of {name!r} is {existing['live_colour']}, not {live_colour}: "
                        "the live colour only changes by switch; use the switch endpoint",
                    )
                revision = _bump(conn, name, at)
                status, kind = 200, "updated"
                detail = {"clusters": new_specs, "previous_clusters": _cluster_specs(existing)}
            conn.executemany(
                "INSERT INTO clusters (environment, colour, manager_address, docker_port) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (environment, colour) DO UPDATE SET"
                " manager_address = excluded.manager_address, docker_port = excluded.docker_port",
                [(name, colour, a, p) for colour, (a, p) in specs.items()],
            )
            _append_event(conn, name, at, kind, actor, {"revision": revision, **detail})
            env = _load_environment(conn, name)
        return status, env  # type: ignore[return-value]

    def switch(self, conn: sqlite3.Connection, params: dict[str, str], name: str) -> tuple[int, dict]:
        self._allow_params(params, ())
        body = _fields(self._read_json(), "body", ("expected_live", "to"), ("actor", "reason"))
        expected = _colour(body["expected_live"], "expected_live")
        to = _colour(body["to"], "to")
        if to == expected:
            _bad(f"to must be the other colour than expected_live ({expected}), not {to}")
        actor = _actor(body.get("actor"), "actor")
        reason = _optional_text(body.get("reason"), "reason", 1000)

        at = _now()
        with _transaction(conn, write=True):  # BEGIN IMMEDIATE: the check and the update are atomic
            env = _require_environment(conn, name)
            if env["live_colour"] != expected:
                raise _HTTPError(
                    409,
                    f"live colour is {env['live_colour']}, not {expected}: someone switched first; re-read and retry",
                )
            revision = _bump(conn, name, at, live_colour=to)
            detail = {"revision": revision, "from": expected, "to": to, "reason": reason}
            _append_event(conn, name, at, "switched", actor, detail)
            env = _load_environment(conn, name)
        return 200, env  # type: ignore[return-value]

    def record_deployment(self, conn: sqlite3.Connection, params: dict[str, str], name: str) -> tuple[int, dict]:
        self._allow_params(params, ())
        body = _fields(
            self._read_json(),
            "body",
            ("colour", "stack", "services", "compose", "result", "actor"),
            ("job_url",),
        )
        colour = _colour(body["colour"], "colour")
        stack = _text(body["stack"], "stack", 63, pattern=STACK_RE)
        services = _services(body["services"])
        compose = _compose(body["compose"])
        result = _text(body["result"], "result", 32, pattern=RESULT_RE)
        actor = _actor(body["actor"], "actor", required=True)
        job_url = body.get("job_url")
        if job_url is not None:
            job_url = _text(job_url, "job_url", 2000)

        at = _now()
        with _transaction(conn, write=True):
            _require_environment(conn, name)
            cursor = conn.execute(
                "INSERT INTO deployments (environment, at, colour, stack, services, compose, result, actor,"
                " job_url) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (name, at, colour, stack, json.dumps(services), json.dumps(compose), result, actor, job_url),
            )
            deployment_id = cursor.lastrowid
            if result == "succeeded":
                row = conn.execute(
                    "SELECT services FROM stacks WHERE environment = ? AND colour = ? AND name = ?",
                    (name, colour, stack),
                ).fetchone()
                # A shared stack: replace the services deployed now, keep everybody else's.
                merged = {s["name"]: s for s in (json.loads(row[0]) if row else [])}
                merged.update({s["name"]: s for s in services})
                conn.execute(
                    "INSERT INTO stacks (environment, colour, name, deployed_at, deployed_by, services)"
                    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (environment, colour, name) DO UPDATE SET"
                    " deployed_at = excluded.deployed_at, deployed_by = excluded.deployed_by,"
                    " services = excluded.services",
                    (name, colour, stack, at, actor, json.dumps([merged[k] for k in sorted(merged)])),
                )
            revision = _bump(conn, name, at)
            detail = {
                "revision": revision,
                "deployment_id": deployment_id,
                "colour": colour,
                "stack": stack,
                "result": result,
                "services": [s["name"] for s in services],
            }
            _append_event(conn, name, at, "deployed", actor, detail)
        return 201, {"id": deployment_id}

    def list_deployments(self, conn: sqlite3.Connection, params: dict[str, str], name: str) -> tuple[int, dict]:
        self._allow_params(params, ("colour", "stack", "limit"))
        limit = self._limit(params)
        sql = (
            "SELECT id, at, colour, stack, services, compose, result, actor, job_url FROM deployments"
            " WHERE environment = ?"
        )
        args: list[Any] = [name]
        if "colour" in params:
            sql += " AND colour = ?"
            args.append(_colour(params["colour"], "colour"))
        if "stack" in params:
            sql += " AND stack = ?"
            args.append(_text(params["stack"], "stack", 63, pattern=STACK_RE))
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        with _transaction(conn, write=False):
            _require_environment(conn, name)
            rows = conn.execute(sql, args).fetchall()
        keys = ("id", "at", "colour", "stack", "services", "compose", "result", "actor", "job_url")
        deployments = []
        for row in rows:
            item = dict(zip(keys, row, strict=True))
            item["services"] = json.loads(item["services"])
            item["compose"] = json.loads(item["compose"])
            deployments.append(item)
        return 200, {"deployments": deployments}

    def history(self, conn: sqlite3.Connection, params: dict[str, str], name: str) -> tuple[int, dict]:
        self._allow_params(params, ("limit",))
        limit = self._limit(params)
        with _transaction(conn, write=False):
            _require_environment(conn, name)
            rows = conn.execute(
                "SELECT id, at, kind, actor, detail FROM events WHERE environment = ? ORDER BY id DESC LIMIT ?",
                (name, limit),
            ).fetchall()
        events = [
            {"id": i, "at": at, "kind": kind, "actor": actor, "detail": json.loads(detail)}
            for i, at, kind, actor, detail in rows
        ]
        return 200, {"events": events}


# --------------------------------------------------------------------------------------------------
# Entry points


def _check_token(token: str | None) -> str:
    if not token or not token.strip():
        raise ConfigError(
            "the environment-state service refuses to start without a write token: set AUTO_STATE_TOKEN or --token-file"
        )
    token = token.strip()
    if not all(0x21 <= ord(ch) <= 0x7E for ch in token):
        raise ConfigError(
            "the write token must be printable ASCII without spaces: check AUTO_STATE_TOKEN or --token-file"
        )
    return token


def _tls_context(certfile: str | None, keyfile: str | None) -> ssl.SSLContext | None:
    if certfile is None and keyfile is None:
        return None
    if certfile is None:
        raise ConfigError("a TLS key file was given without a certificate file")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certfile, keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise TLSError(f"cannot load the service's TLS certificate {certfile}: {_one_line(str(exc))}") from exc
    return context


class _IPv6Server(StateHTTPServer):
    address_family = socket.AF_INET6


def make_server(
    db_path: str,
    host: str,
    port: int,
    token: str,
    certfile: str | None = None,
    keyfile: str | None = None,
    *,
    access_log: bool = True,
) -> ThreadingHTTPServer:
    """Create (but do not start) the environment-state server.

    ``port`` 0 picks a free port (read it from ``server.server_address``). With ``certfile`` (and
    ``keyfile`` unless the key is inside the certificate file) the server speaks HTTPS only, TLS 1.2+.
    Creates the database schema if needed. Raises ConfigError for a missing token, a database that
    cannot be opened or an address that cannot be bound, and TLSError for unusable TLS material.
    """
    token = _check_token(token)
    context = _tls_context(certfile, keyfile)
    init_db(db_path)
    host = host.strip("[]")
    try:
        is_v6 = ipaddress.ip_address(host).version == 6
    except ValueError:
        is_v6 = False
    server_class = _IPv6Server if is_v6 else StateHTTPServer
    try:
        return server_class((host, port), db_path, token, context, access_log)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


def parse_listen(listen: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[::1]:8443`` for IPv6) into host and port; ConfigError if malformed."""
    host, sep, port_text = listen.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ConfigError(f"invalid listen address {listen!r}: use HOST:PORT, e.g. 127.0.0.1:8443")
    return host, int(port_text)


def run(
    db_path: str,
    listen: str,
    token: str,
    certfile: str | None = None,
    keyfile: str | None = None,
    ready_message: bool = True,
) -> None:
    """Serve the environment-state API until SIGTERM or SIGINT, then return normally.

    Prints ``state service listening on https://HOST:PORT`` (http without TLS) to stderr once the
    socket is bound.
    """
    host, port = parse_listen(listen)
    server = make_server(db_path, host, port, token, certfile, keyfile)

    def _stop(signum: int, frame: Any) -> None:
        # shutdown() waits for serve_forever() to return, so it must not run on serve_forever's thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, _stop)
    try:
        if ready_message:
            sys.stderr.write(f"state service listening on {server.url}\n")  # type: ignore[attr-defined]
            sys.stderr.flush()
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
