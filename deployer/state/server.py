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
import math
import re
import signal
import socket
import socketserver
import sqlite3
import ssl
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NoReturn
from urllib.parse import parse_qsl, urlsplit

from autocore.loading import reject_duplicate_keys
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
DOCS_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")  # a service's API version, e.g. v1
RESOLVE_IMAGE = ("always", "changed", "never")
MAX_TTL = 3600
MAX_DETAIL = 64 * 1024  # bytes of an audit event's detail as JSON
# Keys of an audit event's detail that the service sets itself.
_RESERVED_DETAIL = ("revision", "result", "job_url")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")

# Schema version 1, as the first release created it; kept verbatim so that a new database goes
# through exactly the migrations an old one does.
_SCHEMA_V1 = (
    """CREATE TABLE IF NOT EXISTS environments (
        name        TEXT PRIMARY KEY,
        live_colour TEXT NOT NULL CHECK (live_colour IN ('blue', 'green')),
        revision    INTEGER NOT NULL,
        updated_at  TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS clusters (
        environment     TEXT NOT NULL REFERENCES environments(name),
        colour          TEXT NOT NULL CHECK (colour IN ('blue', 'green')),
        manager_address TEXT NOT NULL,
        docker_port     INTEGER NOT NULL,
        PRIMARY KEY (environment, colour)
    )""",
    """CREATE TABLE IF NOT EXISTS stacks (
        environment TEXT NOT NULL REFERENCES environments(name),
        colour      TEXT NOT NULL CHECK (colour IN ('blue', 'green')),
        name        TEXT NOT NULL,
        deployed_at TEXT NOT NULL,
        deployed_by TEXT NOT NULL,
        services    TEXT NOT NULL,  -- JSON list of {name, image, replicas}, sorted by name
        PRIMARY KEY (environment, colour, name)
    )""",
    """CREATE TABLE IF NOT EXISTS deployments (
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
    )""",
    "CREATE INDEX IF NOT EXISTS deployments_by_environment ON deployments (environment, id)",
    """CREATE TABLE IF NOT EXISTS events (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        environment TEXT NOT NULL REFERENCES environments(name),
        at          TEXT NOT NULL,
        kind        TEXT NOT NULL CHECK (kind IN ('created', 'updated', 'switched', 'deployed')),
        actor       TEXT,
        detail      TEXT NOT NULL  -- JSON object
    )""",
    "CREATE INDEX IF NOT EXISTS events_by_environment ON events (environment, id)",
)

EVENT_KINDS = (
    "created",
    "updated",
    "switched",
    "deployed",
    "locked",
    "unlocked",
    "lock_forced",
    "deploy",
    "rollback",
    "switch",
)
AUDIT_KINDS = ("deploy", "rollback", "switch")  # recorded by the deployer through POST .../events
_KIND_LIST = ", ".join(f"'{kind}'" for kind in EVENT_KINDS)

# Version 2: the lock table, deployment options, and the new event kinds. SQLite cannot change a
# CHECK constraint in place, so the events table is rebuilt (ids and the AUTOINCREMENT counter kept).
_MIGRATION_V2 = (
    f"""CREATE TABLE events_v2 (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        environment TEXT NOT NULL REFERENCES environments(name),
        at          TEXT NOT NULL,
        kind        TEXT NOT NULL CHECK (kind IN ({_KIND_LIST})),
        actor       TEXT,
        detail      TEXT NOT NULL  -- JSON object
    )""",
    "INSERT INTO events_v2 (id, environment, at, kind, actor, detail)"
    " SELECT id, environment, at, kind, actor, detail FROM events ORDER BY id",
    "DELETE FROM sqlite_sequence WHERE name = 'events_v2'",
    "INSERT INTO sqlite_sequence (name, seq) SELECT 'events_v2', seq FROM sqlite_sequence WHERE name = 'events'",
    "DROP TABLE events",
    "ALTER TABLE events_v2 RENAME TO events",
    "CREATE INDEX events_by_environment ON events (environment, id)",
    "ALTER TABLE deployments ADD COLUMN options TEXT",  # JSON object or NULL
    """CREATE TABLE locks (
        environment TEXT PRIMARY KEY REFERENCES environments(name),
        owner       TEXT NOT NULL,
        purpose     TEXT NOT NULL,
        actor       TEXT,
        job_url     TEXT,
        acquired_at REAL NOT NULL,  -- seconds since the epoch, by the server's clock
        expires_at  REAL NOT NULL
    )""",
)

# MIGRATIONS[n] takes a database from user_version n to n + 1.
MIGRATIONS: tuple[tuple[str, ...], ...] = (_SCHEMA_V1, _MIGRATION_V2)
SCHEMA_VERSION = len(MIGRATIONS)


# --------------------------------------------------------------------------------------------------
# Small helpers


class _HTTPError(Exception):
    """An error answer: status, one-line message (cut at ``limit``), extra headers and body fields."""

    def __init__(
        self,
        status: int,
        message: str,
        headers: dict[str, str] | None = None,
        *,
        body: dict[str, Any] | None = None,
        limit: int = 200,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.body = body or {}
        self.limit = limit


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


def _stamp(seconds: float) -> str:
    """Seconds since the epoch as a UTC timestamp, e.g. ``2026-11-25T06:30:00Z`` (truncated)."""
    return datetime.fromtimestamp(math.floor(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
    """Create or migrate the schema (``PRAGMA user_version``) and switch the database to WAL mode.

    Migrations run in one ``BEGIN IMMEDIATE`` transaction, so a crash leaves the old schema intact
    and two servers starting at once migrate only once.
    """
    try:
        conn = _connect(db_path)
    except sqlite3.Error as exc:
        raise ConfigError(f"cannot open the state database {db_path}: {exc}") from exc
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        with _transaction(conn, write=True):
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise ConfigError(
                    f"the state database {db_path} has schema version {version}, newer than this server's "
                    f"{SCHEMA_VERSION}: run a newer auto-deploy"
                )
            for step in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[step]:
                    conn.execute(statement)
            if version != SCHEMA_VERSION:
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
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


def _line(value: Any, what: str, max_len: int, *, required: bool = True) -> str | None:
    """A non-empty one-line string (no control characters), or None when optional and absent."""
    if value is None and not required:
        return None
    text = _text(value, what, max_len)
    if _CONTROL_RE.search(text):
        _bad(f"{what} must not contain control characters")
    return text


def _seconds(value: Any, what: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        _bad(f"{what} must be a number of seconds from {low:g} to {high:g}, not {_show(value)}")
    return float(value)


def _deploy_options(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    options = _fields(value, "options", (), ("resolve_image", "with_registry_auth", "prune"))
    if "resolve_image" in options and options["resolve_image"] not in RESOLVE_IMAGE:
        _bad(f"options.resolve_image must be one of {', '.join(RESOLVE_IMAGE)}, not {_show(options['resolve_image'])}")
    for key in ("with_registry_auth", "prune"):
        if key in options and not isinstance(options[key], bool):
            _bad(f"options.{key} must be true or false, not {_show(options[key])}")
    return dict(options)


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
        item = _fields(item, what, ("name", "image", "replicas"), ("docs",))
        name = _text(item["name"], f"{what}.name", 63, pattern=STACK_RE)
        if name in seen:
            _bad(f"services lists {name!r} twice")
        seen.add(name)
        image = _text(item["image"], f"{what}.image", 512)
        if any(ch.isspace() for ch in image):
            _bad(f"{what}.image must not contain whitespace")
        replicas = _int(item["replicas"], f"{what}.replicas", 0, 10000)
        record: dict[str, Any] = {"name": name, "image": image, "replicas": replicas}
        if item.get("docs") is not None:
            record["docs"] = _docs(item["docs"], f"{what}.docs")
        services.append(record)
    return services


def _https_url(value: Any, what: str) -> str:
    url = _text(value, what, 2048)
    if not url.startswith("https://") or any(ch.isspace() for ch in url):
        _bad(f"{what} must be an https:// URL without spaces")
    return url


def _docs(value: Any, what: str) -> dict[str, str]:
    """Where a service publishes its documentation: what ``auto-docs build --from-env`` fetches."""
    item = _fields(value, what, ("version", "spec_url"), ("docs_url",))
    docs = {
        "version": _text(item["version"], f"{what}.version", 63, pattern=DOCS_VERSION_RE),
        "spec_url": _https_url(item["spec_url"], f"{what}.spec_url"),
    }
    if item.get("docs_url") is not None:
        docs["docs_url"] = _https_url(item["docs_url"], f"{what}.docs_url")
    return docs


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
) -> int:
    cursor = conn.execute(
        "INSERT INTO events (environment, at, kind, actor, detail) VALUES (?, ?, ?, ?, ?)",
        (name, at, kind, actor, json.dumps(detail, sort_keys=True)),
    )
    return cursor.lastrowid  # type: ignore[return-value]


def _bump(conn: sqlite3.Connection, name: str, at: str, live_colour: str | None = None) -> int:
    if live_colour is None:
        conn.execute("UPDATE environments SET revision = revision + 1, updated_at = ? WHERE name = ?", (at, name))
    else:
        conn.execute(
            "UPDATE environments SET revision = revision + 1, updated_at = ?, live_colour = ? WHERE name = ?",
            (at, live_colour, name),
        )
    return conn.execute("SELECT revision FROM environments WHERE name = ?", (name,)).fetchone()[0]


def _revision(conn: sqlite3.Connection, name: str) -> int:
    return conn.execute("SELECT revision FROM environments WHERE name = ?", (name,)).fetchone()[0]


def _lock_row(conn: sqlite3.Connection, name: str) -> dict[str, Any] | None:
    """The stored lock of ``name`` (live or expired), or None."""
    row = conn.execute(
        "SELECT owner, purpose, actor, job_url, acquired_at, expires_at FROM locks WHERE environment = ?", (name,)
    ).fetchone()
    if row is None:
        return None
    return dict(zip(("owner", "purpose", "actor", "job_url", "acquired_at", "expires_at"), row, strict=True))


def _lock_view(row: dict[str, Any], now: float) -> dict[str, Any]:
    """A stored lock as the API shows it; ``expires_at`` rounds up so that "until T" holds."""
    return {
        "owner": row["owner"],
        "purpose": row["purpose"],
        "actor": row["actor"],
        "job_url": row["job_url"],
        "acquired_at": _stamp(row["acquired_at"]),
        "expires_at": _stamp(math.ceil(row["expires_at"])),
        "expires_in": round(max(0.0, row["expires_at"] - now), 3),
    }


def _lock_held(name: str, row: dict[str, Any], now: float) -> _HTTPError:
    """The 409 for a lock held by somebody else: one line naming the holder, plus the lock."""
    lock = _lock_view(row, now)
    who = [f"actor {_one_line(lock['actor'], 60)}"] if lock["actor"] else []
    if lock["job_url"]:
        who.append(f"job {_one_line(lock['job_url'], 120)}")
    by = f" ({', '.join(who)})" if who else ""
    message = (
        f"environment {name} is locked by {_one_line(lock['owner'], 80)} for {_one_line(lock['purpose'], 80)}"
        f" until {lock['expires_at']}{by}: wait or run auto-deploy lock release --env {name}"
    )
    return _HTTPError(409, message, body={"lock": lock}, limit=1000)


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
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db_path = db_path
        self.clock = clock  # seconds since the epoch; authoritative for lock expiry
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
        (
            re.compile(r"^/v1/environments/([^/]+)/lock$"),
            {"GET": "get_lock", "POST": "acquire_lock", "DELETE": "release_lock"},
        ),
        (re.compile(r"^/v1/environments/([^/]+)/events$"), {"POST": "record_event"}),
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
            if self.command in ("PUT", "POST", "DELETE"):
                self._authorize()
            query = self._query(split.query)
            conn = _connect(self.server.db_path)
            status, body = getattr(self, handler)(conn, query, *match.groups())  # type: ignore[union-attr]
            self._send_json(status, body)
        except _HTTPError as exc:
            self._send_json(exc.status, {"error": _one_line(exc.message, exc.limit), **exc.body}, exc.headers)
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
                raw.decode("utf-8"), object_pairs_hook=reject_duplicate_keys, parse_constant=_reject_constant
            )
        except (UnicodeDecodeError, ValueError) as exc:
            _bad(f"request body is not valid JSON: {exc}")

    def _now(self) -> str:
        return _stamp(self.server.clock())

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

        at = self._now()
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
        body = _fields(self._read_json(), "body", ("expected_live", "to"), ("actor", "reason", "job_url"))
        expected = _colour(body["expected_live"], "expected_live")
        to = _colour(body["to"], "to")
        if to == expected:
            _bad(f"to must be the other colour than expected_live ({expected}), not {to}")
        actor = _actor(body.get("actor"), "actor")
        reason = _optional_text(body.get("reason"), "reason", 1000)
        job_url = _line(body.get("job_url"), "job_url", 2000, required=False)

        at = self._now()
        with _transaction(conn, write=True):  # BEGIN IMMEDIATE: the check and the update are atomic
            env = _require_environment(conn, name)
            if env["live_colour"] != expected:
                raise _HTTPError(
                    409,
                    f"live colour is {env['live_colour']}, not {expected}: someone switched first; re-read and retry",
                )
            revision = _bump(conn, name, at, live_colour=to)
            detail = {"revision": revision, "from": expected, "to": to, "reason": reason}
            if job_url is not None:
                detail["job_url"] = job_url
            _append_event(conn, name, at, "switched", actor, detail)
            env = _load_environment(conn, name)
        return 200, env  # type: ignore[return-value]

    def record_deployment(self, conn: sqlite3.Connection, params: dict[str, str], name: str) -> tuple[int, dict]:
        self._allow_params(params, ())
        body = _fields(
            self._read_json(),
            "body",
            ("colour", "stack", "services", "compose", "result", "actor"),
            ("job_url", "options"),
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
        options = _deploy_options(body.get("options"))

        at = self._now()
        with _transaction(conn, write=True):
            _require_environment(conn, name)
            cursor = conn.execute(
                "INSERT INTO deployments (environment, at, colour, stack, services, compose, result, actor,"
                " job_url, options) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    name,
                    at,
                    colour,
                    stack,
                    json.dumps(services),
                    json.dumps(compose),
                    result,
                    actor,
                    job_url,
                    None if options is None else json.dumps(options, sort_keys=True),
                ),
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
        self._allow_params(params, ("colour", "stack", "result", "limit"))
        limit = self._limit(params)
        sql = (
            "SELECT id, at, colour, stack, services, compose, result, actor, job_url, options FROM deployments"
            " WHERE environment = ?"
        )
        args: list[Any] = [name]
        if "colour" in params:
            sql += " AND colour = ?"
            args.append(_colour(params["colour"], "colour"))
        if "stack" in params:
            sql += " AND stack = ?"
            args.append(_text(params["stack"], "stack", 63, pattern=STACK_RE))
        if "result" in params:
            sql += " AND result = ?"
            args.append(_text(params["result"], "result", 32, pattern=RESULT_RE))
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        with _transaction(conn, write=False):
            _require_environment(conn, name)
            rows = conn.execute(sql, args).fetchall()
        keys = ("id", "at", "colour", "stack", "services", "compose", "result", "actor", "job_url", "options")
        deployments = []
        for row in rows:
            item = dict(zip(keys, row, strict=True))
            item["services"] = json.loads(item["services"])
            item["compose"] = json.loads(item["compose"])
            if item["options"] is None:
                del item["options"]  # recorded without options (or before they existed)
            else:
                item["options"] = json.loads(item["options"])
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

    def get_lock(self, conn: sqlite3.Connection, params: dict[str, str], name: str) -> tuple[int, dict]:
        self._allow_params(params, ())
        now = self.server.clock()
        with _transaction(conn, write=False):
            _require_environment(conn, name)
            row = _lock_row(conn, name)
        live = row is not None and row["expires_at"] > now
        return 200, {"lock": _lock_view(row, now) if live else None}  # type: ignore[arg-type]

    def acquire_lock(self, conn: sqlite3.Connection, params: dict[str, str], name: str) -> tuple[int, dict]:
        self._allow_params(params, ())
        body = _fields(self._read_json(), "body", ("owner", "purpose", "ttl_seconds"), ("actor", "job_url"))
        owner = _line(body["owner"], "owner", 200)
        purpose = _line(body["purpose"], "purpose", 500)
        ttl = _seconds(body["ttl_seconds"], "ttl_seconds", 1, MAX_TTL)
        actor = _actor(body.get("actor"), "actor")
        job_url = _line(body.get("job_url"), "job_url", 2000, required=False)

        with _transaction(conn, write=True):  # BEGIN IMMEDIATE: of concurrent acquirers exactly one wins
            now = self.server.clock()  # read inside the transaction: writers are serialised
            _require_environment(conn, name)
            row = _lock_row(conn, name)
            if row is not None and row["expires_at"] > now:
                if row["owner"] != owner:
                    raise _lock_held(name, row, now)
                row["expires_at"] = now + ttl  # renewal: same owner, acquired_at kept, no event
                conn.execute("UPDATE locks SET expires_at = ? WHERE environment = ?", (row["expires_at"], name))
                return 200, {"lock": _lock_view(row, now), "acquired": True}
            row_new = {
                "owner": owner,
                "purpose": purpose,
                "actor": actor,
                "job_url": job_url,
                "acquired_at": now,
                "expires_at": now + ttl,
            }
            conn.execute(
                "INSERT INTO locks (environment, owner, purpose, actor, job_url, acquired_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (environment) DO UPDATE SET owner = excluded.owner,"
                " purpose = excluded.purpose, actor = excluded.actor, job_url = excluded.job_url,"
                " acquired_at = excluded.acquired_at, expires_at = excluded.expires_at",
                (name, owner, purpose, actor, job_url, now, now + ttl),
            )
            lock = _lock_view(row_new, now)
            detail: dict[str, Any] = {
                "revision": _revision(conn, name),
                "owner": owner,
                "purpose": purpose,
                "ttl_seconds": ttl,
                "expires_at": lock["expires_at"],
                "job_url": job_url,
            }
            if row is not None:
                detail["took_over_expired_from"] = row["owner"]
            _append_event(conn, name, _stamp(now), "locked", actor, detail)
        return 200, {"lock": lock, "acquired": True}

    def release_lock(self, conn: sqlite3.Connection, params: dict[str, str], name: str) -> tuple[int, dict]:
        self._allow_params(params, ("owner", "force", "actor"))
        owner = params.get("owner")
        force = params.get("force")
        if force is not None and force != "true":
            _bad(f"force must be true when given, not {_show(force)}")
        if (owner is None) == (force is None):
            _bad("give exactly one of owner=OWNER (release your own lock) and force=true (release anybody's)")
        if owner is not None:
            owner = _line(owner, "owner", 200)
        actor = _actor(params.get("actor"), "actor")

        with _transaction(conn, write=True):
            now = self.server.clock()
            _require_environment(conn, name)
            row = _lock_row(conn, name)
            if row is None or row["expires_at"] <= now:
                if row is not None:  # tidy up the expired lock; nothing was held, so no event
                    conn.execute("DELETE FROM locks WHERE environment = ?", (name,))
                return 200, {"released": False, "lock": None}
            if owner is not None and row["owner"] != owner:
                raise _lock_held(name, row, now)
            conn.execute("DELETE FROM locks WHERE environment = ?", (name,))
            lock = _lock_view(row, now)
            detail = {
                "revision": _revision(conn, name),
                "owner": row["owner"],
                "purpose": row["purpose"],
                "held_seconds": round(now - row["acquired_at"], 3),
                "job_url": row["job_url"],
            }
            if owner is not None:
                _append_event(conn, name, _stamp(now), "unlocked", actor or row["actor"], detail)
            else:  # the actor is whoever forced it (null when not given), not the holder
                _append_event(conn, name, _stamp(now), "lock_forced", actor, detail)
        return 200, {"released": True, "lock": lock}

    def record_event(self, conn: sqlite3.Connection, params: dict[str, str], name: str) -> tuple[int, dict]:
        self._allow_params(params, ())
        body = _fields(self._read_json(), "body", ("kind", "actor", "result", "detail"), ("job_url",))
        kind = body["kind"]
        if kind not in AUDIT_KINDS or not isinstance(kind, str):
            _bad(f"kind must be one of {', '.join(AUDIT_KINDS)}, not {_show(kind)}")
        actor = _actor(body["actor"], "actor", required=True)
        result = _text(body["result"], "result", 32, pattern=RESULT_RE)
        job_url = _line(body.get("job_url"), "job_url", 2000, required=False)
        detail = body["detail"]
        if not isinstance(detail, dict):
            _bad("detail must be a JSON object")
        reserved = sorted(set(detail) & set(_RESERVED_DETAIL))
        if reserved:
            _bad(f"detail must not contain {_show(reserved[0])}: the service sets it")
        size = len(json.dumps(detail, separators=(",", ":")).encode())
        if size > MAX_DETAIL:
            _bad(f"detail is {size} bytes as JSON; the limit is {MAX_DETAIL}")

        at = self._now()
        with _transaction(conn, write=True):
            _require_environment(conn, name)
            full = {**detail, "revision": _revision(conn, name), "result": result, "job_url": job_url}
            event_id = _append_event(conn, name, at, kind, actor, full)
        return 201, {"id": event_id}


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
    clock: Callable[[], float] = time.time,
) -> ThreadingHTTPServer:
    """Create (but do not start) the environment-state server.

    ``port`` 0 picks a free port (read it from ``server.server_address``). With ``certfile`` (and
    ``keyfile`` unless the key is inside the certificate file) the server speaks HTTPS only, TLS 1.2+.
    Creates or migrates the database schema if needed. ``clock`` (seconds since the epoch) stamps
    every write and decides when locks expire; tests inject a fake one. Raises ConfigError for a
    missing token, a database that cannot be opened or an address that cannot be bound, and
    TLSError for unusable TLS material.
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
        return server_class((host, port), db_path, token, context, access_log, clock)
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
