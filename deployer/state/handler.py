"""The environment-state server's HTTP layer: routing, authorisation, bodies, and JSON answers.

Each endpoint is parse -> validate (``validation``) -> store (``store``) -> respond; errors of either
become one-line JSON answers here, and only here. The token is never logged, stored or echoed, and
the access log never shows a query string's values (``?access_token=...`` would land there).

Every write goes through :meth:`Handler._write`: one writer at a time in this process (waiting in
Python rather than in SQLite's busy loop), and, when the request carries an ``Idempotency-Key``, the
key's stored answer is looked up and the new answer stored in the write's own transaction, so that a
retried write is answered, not applied, a second time.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import json
import re
import socketserver
import sqlite3
import ssl
import sys
import threading
import time
import traceback
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from autocore.text import display
from deployer.state import store, validation
from deployer.state.connections import MAX_WORKERS, BoundedHTTPServer, DeadlineReader
from deployer.state.contract import IDEMPOTENCY_HEADER, MAX_BODY, REPLAYED_HEADER
from deployer.state.schema import BUSY_TIMEOUT_MS, connect, transaction
from deployer.state.validation import BadRequest, bad, show

# Bodies up to this size are read and thrown away before a 413, so that the client sees the answer
# instead of a connection reset; anything bigger just gets the connection closed.
_DRAIN_LIMIT = 16 * MAX_BODY
_HANDSHAKE_TIMEOUT = 10.0
_REQUEST_DEADLINE = 30.0  # seconds for a whole request to arrive: line, headers and body
_IDLE_TIMEOUT = 30.0  # seconds a keep-alive connection may wait for its next request
_BUSY = "the state database is busy; retry"
# What SQLite says when the database's volume is full: SQLITE_FULL, or SQLITE_IOERR when the WAL cannot grow.
_NO_SPACE = ("database or disk is full", "disk I/O error")
_NO_SPACE_MESSAGE = "its disk is full (or failing): nothing was written; free space on the service's volume"


def _no_space(exc: BaseException) -> bool:
    """Whether SQLite failed for want of space: the error itself, or the one a failed ROLLBACK hides (SQLite rolls a
    transaction back by itself on SQLITE_FULL, and the ROLLBACK after it then fails with "no transaction")."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(seen, sqlite3.OperationalError) and any(sign in str(seen) for sign in _NO_SPACE):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


# Query parameters the API knows: the access log names these (never their values), others as "*".
_LOGGED_PARAMS = frozenset({"limit", "colour", "stack", "result", "owner", "force", "actor"})
_VERSION_AT_END = re.compile(r" (HTTP/[0-9.]+)$")


def loggable(target: str) -> str:
    """A request line or path for the log: whatever follows a ``?`` is replaced by parameter names.

    ``GET /v1/x?limit=5&access_token=s3cret HTTP/1.1`` -> ``GET /v1/x?limit=*&*=* HTTP/1.1``. Only
    names the API knows are kept; the HTTP version at the end stays.
    """
    head, sep, rest = target.partition("?")
    if not sep:
        return target
    found = _VERSION_AT_END.search(rest)
    query = rest[: found.start()] if found else rest
    names = [part.partition("=")[0] for part in query.split("&") if part]
    redacted = "&".join(f"{name if name in _LOGGED_PARAMS else '*'}=*" for name in names)
    return f"{head}?{redacted}{found.group(0) if found else ''}"


class HTTPError(Exception):
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


def _as_http_error(exc: BadRequest | store.StoreError) -> HTTPError:
    """The answer to a refusal of the validation or the store."""
    if isinstance(exc, BadRequest):
        return HTTPError(400, exc.message)
    if isinstance(exc, store.UnknownEnvironment):
        return HTTPError(404, exc.message)
    if isinstance(exc, store.LockHeld):  # names the holder: a longer line, and the lock itself
        return HTTPError(409, exc.message, body={"lock": exc.lock}, limit=1000)
    return HTTPError(409, exc.message)


class StateHTTPServer(BoundedHTTPServer):
    """The HTTP(S) server; holds the database path, the write token and the one in-process writer lock."""

    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        db_path: str,
        token: str,
        ssl_context: ssl.SSLContext | None,
        access_log: bool,
        clock: Callable[[], float] = time.time,
        *,
        max_workers: int = MAX_WORKERS,
    ) -> None:
        self.db_path = db_path
        self.clock = clock  # seconds since the epoch; authoritative for lock expiry
        self.token = token
        self.ssl_context = ssl_context
        self.access_log = access_log
        # SQLite serialises writers anyway; waiting here is fair and cheap, where SQLite's busy handler
        # sleeps and polls (and made writers time out under load).
        self.write_lock = threading.Lock()
        self.idempotency_purged_at = 0.0  # by ``clock``; written under write_lock
        super().__init__(address, Handler, max_workers=max_workers)
        # One connection held open for the server's life: SQLite removes the WAL and its index when the last
        # connection closes, and the next request's connection has to create them again, which a full disk
        # refuses ("disk I/O error"): every read failed too. Held open, they stay; reads work, writes get 507.
        self._keeper = sqlite3.connect(db_path, check_same_thread=False)
        self._keeper.execute("SELECT count(*) FROM sqlite_master").fetchone()

    def server_close(self) -> None:
        super().server_close()
        keeper = getattr(self, "_keeper", None)
        if keeper is not None:
            keeper.close()

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
        tls = None
        try:
            request.settimeout(_HANDSHAKE_TIMEOUT)
            # The handshake separately: until it is done the connection is idle, and congestion may
            # hang up a client that connected and says nothing (wrap_socket detaches ``request``).
            tls = self.ssl_context.wrap_socket(request, server_side=True, do_handshake_on_connect=False)
            self.mark_idle(tls)
            tls.do_handshake()
        except (OSError, ssl.SSLError) as exc:
            if self.access_log:
                sys.stderr.write(f"{client_address[0]} TLS handshake failed: {display(exc, 200)}\n")
            if tls is not None:
                self.shutdown_request(tls)
            return
        finally:
            if tls is not None:
                self.mark_busy(tls)
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            self.shutdown_request(tls)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """One line, not socketserver's traceback; a client that went away is not worth one."""
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError | ssl.SSLError) and not self.access_log:
            return
        sys.stderr.write(f"{client_address[0]} connection ended: {type(exc).__name__}: {display(exc, 200)}\n")


class Handler(BaseHTTPRequestHandler):
    server: StateHTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "auto-state/1"
    sys_version = ""
    timeout = 30  # each socket operation; sendall applies it to a whole answer
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

    # ---- connections: deadlines and idle tracking (see ``connections``)

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # socket.makefile's reader only bounds each recv; ours has deadlines
        self._reader = DeadlineReader(self.connection, float(self.timeout))
        self.rfile = io.BufferedReader(self._reader)
        self._served = 0

    def handle_one_request(self) -> None:
        # Until its request line arrives, a connection is idle: congestion may hang it up.
        wait = _IDLE_TIMEOUT if self._served else _REQUEST_DEADLINE
        self._reader.deadline = time.monotonic() + wait
        self.server.mark_idle(self.connection)
        try:
            super().handle_one_request()
        finally:
            self.server.mark_busy(self.connection)
            self._served += 1

    def parse_request(self) -> bool:
        self.server.mark_busy(self.connection)
        self._reader.deadline = time.monotonic() + _REQUEST_DEADLINE  # for the headers and the body
        return super().parse_request()

    # ---- plumbing

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._dispatch()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if isinstance(code, HTTPStatus):
            code = code.value
        self.log_message('"%s" %s %s', loggable(self.requestline), str(code), str(size))

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        # Request line (its query values redacted) and status only: headers (and so the token) are never logged.
        if self.server.access_log:
            sys.stderr.write(f"{self.client_address[0]} {display(format % args, 300)}\n")

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Protocol-level errors of http.server (bad request line, ...) as JSON too."""
        self.close_connection = True
        short = self.responses.get(code, ("error",))[0]
        self._send_json(code, {"error": display(message or short, 200)})

    def _send_json(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body, separators=(",", ":")).encode()
        if getattr(self, "_body_pending", False):
            # We did not read the body, so the connection cannot be reused.
            self.close_connection = True
        if self.server.congested:
            # Others wait for a worker: this connection goes to the back of the queue.
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
        self._raw_body = b""
        self._idempotency_key: str | None = None
        self._replayed = False
        conn: sqlite3.Connection | None = None
        try:
            try:
                split = urlsplit(self.path)
            except ValueError:  # e.g. an unclosed IPv6 bracket in an absolute target: http://[x
                raise HTTPError(400, "malformed request target") from None
            route = next(((r.match(split.path), m) for r, m in self.ROUTES if r.match(split.path)), None)
            if route is None:
                raise HTTPError(404, f"no such endpoint: {display(split.path, 100)}")
            match, methods = route
            # HEAD is GET without the body (_send_json leaves it out); the Allow header names GET only.
            handler = methods.get("GET" if self.command == "HEAD" else self.command)
            if handler is None:
                allowed = ", ".join(methods)
                raise HTTPError(405, f"{self.command} is not allowed here; use {allowed}", {"Allow": allowed})
            if self.command in ("PUT", "POST", "DELETE"):
                self._authorize()
                self._idempotency_key = validation.idempotency_key(self.headers.get(IDEMPOTENCY_HEADER))
            query = self._query(split.query)
            conn = connect(self.server.db_path)
            status, body = getattr(self, handler)(conn, query, *match.groups())  # type: ignore[union-attr]
            self._send_json(status, body, {REPLAYED_HEADER: "true"} if self._replayed else None)
        except (HTTPError, BadRequest, store.StoreError) as exc:
            error = exc if isinstance(exc, HTTPError) else _as_http_error(exc)
            self._send_json(error.status, {"error": display(error.message, error.limit), **error.body}, error.headers)
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                self._send_json(503, {"error": _BUSY})
            elif _no_space(exc):
                # The transaction was rolled back: say what is wrong and that nothing was written, not "internal
                # error" (a retry cannot help, and a client must not think the write may have been applied).
                sys.stderr.write(f"cannot write on {self.command} {display(self.path.partition('?')[0], 100)}: {exc}\n")
                self._send_json(507, {"error": _NO_SPACE_MESSAGE})
            else:
                self._internal_error()
        except TimeoutError:
            # The request did not arrive before its deadline (DeadlineReader): say so if the client
            # still listens, and free the worker.
            self.close_connection = True
            self._try_send(408, f"the request did not arrive within {_REQUEST_DEADLINE:g} s")
        except OSError:
            self.close_connection = True  # the client went away mid-request: nobody to answer
        except Exception:
            self._internal_error()
        finally:
            if conn is not None:
                conn.close()

    def _try_send(self, status: int, message: str) -> None:
        with contextlib.suppress(OSError):
            self._send_json(status, {"error": message})

    def _internal_error(self) -> None:
        lines = traceback.format_exc().strip().splitlines()
        where = display(self.path.partition("?")[0], 100)  # never the query: it may hold a secret
        sys.stderr.write(f"internal error on {self.command} {where}: {display(lines[-1], 300)}\n")
        self._try_send(500, "internal error of the environment-state service; see its log")

    def _authorize(self) -> None:
        header = self.headers.get("Authorization", "")
        scheme, _, supplied = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not supplied.strip():
            raise HTTPError(
                401,
                "this write needs Authorization: Bearer <token>",
                {"WWW-Authenticate": 'Bearer realm="auto-state"'},
            )
        expected = self.server.token.encode()
        if not hmac.compare_digest(supplied.strip().encode("utf-8", "replace"), expected):
            raise HTTPError(
                401,
                "the bearer token is not valid",
                {"WWW-Authenticate": 'Bearer realm="auto-state", error="invalid_token"'},
            )

    def _query(self, query: str) -> dict[str, str]:
        params: dict[str, str] = {}
        try:
            pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
        except ValueError:
            bad("malformed query string")
        for key, value in pairs:
            if key in params:
                bad(f"query parameter {show(key)} given twice")
            params[key] = value
        return params

    def _read_json(self) -> Any:
        if "Transfer-Encoding" in self.headers:
            self.close_connection = True
            bad("chunked request bodies are not supported; send Content-Length")
        raw_length = self.headers.get("Content-Length")
        if raw_length is None:
            self.close_connection = True
            bad("a JSON request body with a Content-Length header is required")
        try:
            length = validation.content_length(raw_length)
        except BadRequest:
            self.close_connection = True  # where the body ends is unknown: the connection cannot go on
            raise
        assert length is not None
        if length == 0:
            bad("a JSON request body is required")
        if length > MAX_BODY:
            if length <= _DRAIN_LIMIT:
                self._drain(length)
            raise HTTPError(413, f"request body is {length} bytes; the limit is {MAX_BODY}")
        raw = self.rfile.read(length)
        self._body_pending = False
        if len(raw) < length:
            self.close_connection = True
            bad("request body is shorter than its Content-Length")
        self._raw_body = raw
        return validation.json_body(raw)

    def _write(self, conn: sqlite3.Connection, apply: Callable[[], tuple[int, dict]]) -> tuple[int, dict]:
        """Run a write (``apply``: the store call, returning the answer) as the only writer of this process.

        With an Idempotency-Key, the key's stored answer is replayed if there is one (and the request is
        the same), else the write runs and its answer is stored in the same transaction: a write and
        its stored answer are committed together or not at all. Concurrent repeats of one key queue
        here, so the second finds the first's answer. Only successes are stored: an error applied
        nothing, and a repeat may well succeed.
        """
        if not self.server.write_lock.acquire(timeout=BUSY_TIMEOUT_MS / 1000):
            raise HTTPError(503, _BUSY)
        try:
            key = self._idempotency_key
            if key is None:
                return apply()
            now = self.server.clock()
            fingerprint = self._fingerprint()
            with transaction(conn, write=True):
                stored = store.recall(conn, key, now)
                if stored is not None:
                    if stored[0] != fingerprint:
                        raise HTTPError(
                            422,
                            f"{IDEMPOTENCY_HEADER} {show(key)} was used for a different request; "
                            "send a new key with a new write",
                        )
                    self._replayed = True
                    return stored[1], stored[2]
                status, body = apply()
                if 200 <= status < 300:
                    # Expired answers go once a minute, not with every write: the lock is held meanwhile.
                    purge = not now - 60 < self.server.idempotency_purged_at <= now
                    store.remember(conn, key, fingerprint, status, body, now, purge=purge)
                    if purge:
                        self.server.idempotency_purged_at = now
                return status, body
        finally:
            self.server.write_lock.release()

    def _fingerprint(self) -> str:
        """What makes a request the same request: method, target (path and query) and body."""
        digest = hashlib.sha256(f"{self.command} {self.path}\n".encode("utf-8", "surrogateescape"))
        digest.update(self._raw_body)
        return digest.hexdigest()

    def _now(self) -> str:
        return store.stamp(self.server.clock())

    def _drain(self, length: int) -> None:
        remaining = length
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 65536))
            if not chunk:
                return
            remaining -= len(chunk)
        self._body_pending = False

    # ---- endpoints: parse -> validate -> store -> (status, body)

    def get_health(self, conn: sqlite3.Connection, params: dict[str, str]) -> tuple[int, dict]:
        validation.allow_params(params, ())
        store.check(conn)
        return 200, {"status": "ok"}

    def list_environments(self, conn: sqlite3.Connection, params: dict[str, str]) -> tuple[int, dict]:
        validation.allow_params(params, ())
        return 200, {"environments": store.list_environments(conn)}

    def get_environment(self, conn: sqlite3.Connection, params: dict[str, str], name: str) -> tuple[int, dict]:
        validation.allow_params(params, ())
        return 200, store.get_environment(conn, name)

    def put_environment(self, conn: sqlite3.Connection, params: dict[str, str], name: str) -> tuple[int, dict]:
        validation.allow_params(params, ())
        validation.environment_name(name)  # before the body: a bad name is the first thing to say
        spec = validation.environment_spec(self._read_json())

        def apply() -> tuple[int, dict]:
            created, env = store.put_environment(conn, name, spec, self._now())
            return (201 if created else 200), env

        return self._write(conn, apply)

    def switch(self, conn: sqlite3.Connection, params: dict[str, str], name: str) -> tuple[int, dict]:
        validation.allow_params(params, ())
        request = validation.switch_request(self._read_json())
        return self._write(conn, lambda: (200, store.switch(conn, name, request, self._now())))

    def record_deployment(self, conn: sqlite3.Connection, params: dict[str, str], name: str) -> tuple[int, dict]:
        validation.allow_params(params, ())
        record = validation.deployment_record(self._read_json())
        return self._write(conn, lambda: (201, {"id": store.record_deployment(conn, name, record, self._now())}))

    def list_deployments(self, conn: sqlite3.Connection, params: dict[str, str], name: str) -> tuple[int, dict]:
        wanted = validation.deployment_filter(params)
        return 200, {"deployments": store.list_deployments(conn, name, wanted)}

    def history(self, conn: sqlite3.Connection, params: dict[str, str], name: str) -> tuple[int, dict]:
        validation.allow_params(params, ("limit",))
        return 200, {"events": store.history(conn, name, validation.limit(params))}

    def get_lock(self, conn: sqlite3.Connection, params: dict[str, str], name: str) -> tuple[int, dict]:
        validation.allow_params(params, ())
        return 200, {"lock": store.get_lock(conn, name, self.server.clock())}

    def acquire_lock(self, conn: sqlite3.Connection, params: dict[str, str], name: str) -> tuple[int, dict]:
        validation.allow_params(params, ())
        request = validation.lock_request(self._read_json())
        # The store reads the clock inside its transaction: concurrent acquirers are serialised.
        return self._write(
            conn, lambda: (200, {"lock": store.acquire_lock(conn, name, request, self.server.clock), "acquired": True})
        )

    def release_lock(self, conn: sqlite3.Connection, params: dict[str, str], name: str) -> tuple[int, dict]:
        request = validation.release_request(params)

        def apply() -> tuple[int, dict]:
            lock = store.release_lock(conn, name, request, self.server.clock)
            return 200, {"released": lock is not None, "lock": lock}

        return self._write(conn, apply)

    def record_event(self, conn: sqlite3.Connection, params: dict[str, str], name: str) -> tuple[int, dict]:
        validation.allow_params(params, ())
        event = validation.audit_event(self._read_json())
        return self._write(conn, lambda: (201, {"id": store.record_event(conn, name, event, self._now())}))
