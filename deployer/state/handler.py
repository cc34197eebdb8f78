"""The environment-state server's HTTP layer: routing, authorisation, bodies, and JSON answers.

Each endpoint is parse -> validate (``validation``) -> store (``store``) -> respond; errors of either
become one-line JSON answers here, and only here. The token is never logged, stored or echoed.
"""

from __future__ import annotations

import hmac
import json
import re
import socketserver
import sqlite3
import ssl
import sys
import time
import traceback
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from autocore.text import display
from deployer.state import store, validation
from deployer.state.contract import MAX_BODY
from deployer.state.schema import connect
from deployer.state.validation import BadRequest, bad, show

# Bodies up to this size are read and thrown away before a 413, so that the client sees the answer
# instead of a connection reset; anything bigger just gets the connection closed.
_DRAIN_LIMIT = 16 * MAX_BODY
_HANDSHAKE_TIMEOUT = 10.0


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
        super().__init__(address, Handler)

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
                sys.stderr.write(f"{client_address[0]} TLS handshake failed: {display(exc, 200)}\n")
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            self.shutdown_request(tls)


class Handler(BaseHTTPRequestHandler):
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
                raise HTTPError(404, f"no such endpoint: {display(split.path, 100)}")
            match, methods = route
            handler = methods.get(self.command)
            if handler is None:
                allowed = ", ".join(methods)
                raise HTTPError(405, f"{self.command} is not allowed here; use {allowed}", {"Allow": allowed})
            if self.command in ("PUT", "POST", "DELETE"):
                self._authorize()
            query = self._query(split.query)
            conn = connect(self.server.db_path)
            status, body = getattr(self, handler)(conn, query, *match.groups())  # type: ignore[union-attr]
            self._send_json(status, body)
        except (HTTPError, BadRequest, store.StoreError) as exc:
            error = exc if isinstance(exc, HTTPError) else _as_http_error(exc)
            self._send_json(error.status, {"error": display(error.message, error.limit), **error.body}, error.headers)
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
        sys.stderr.write(f"internal error on {self.command} {display(self.path, 100)}: {lines[-1]}\n")
        self._send_json(500, {"error": "internal error of the environment-state service; see its log"})

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
        if raw_length is None or not raw_length.strip().isdigit():
            self.close_connection = True
            bad("a JSON request body with a Content-Length header is required")
        length = int(raw_length)
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
        return validation.json_body(raw)

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
        created, env = store.put_environment(conn, name, spec, self._now())
        return (201 if created else 200), env

    def switch(self, conn: sqlite3.Connection, params: dict[str, str], name: str) -> tuple[int, dict]:
        validation.allow_params(params, ())
        request = validation.switch_request(self._read_json())
        return 200, store.switch(conn, name, request, self._now())

    def record_deployment(self, conn: sqlite3.Connection, params: dict[str, str], name: str) -> tuple[int, dict]:
        validation.allow_params(params, ())
        record = validation.deployment_record(self._read_json())
        return 201, {"id": store.record_deployment(conn, name, record, self._now())}

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
        return 200, {"lock": store.acquire_lock(conn, name, request, self.server.clock), "acquired": True}

    def release_lock(self, conn: sqlite3.Connection, params: dict[str, str], name: str) -> tuple[int, dict]:
        request = validation.release_request(params)
        lock = store.release_lock(conn, name, request, self.server.clock)
        return 200, {"released": lock is not None, "lock": lock}

    def record_event(self, conn: sqlite3.Connection, params: dict[str, str], name: str) -> tuple[int, dict]:
        validation.allow_params(params, ())
        event = validation.audit_event(self._read_json())
        return 201, {"id": store.record_event(conn, name, event, self._now())}
