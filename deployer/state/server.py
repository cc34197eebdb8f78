"""Reference server of the environment-state service (see ``contract.yaml``): its entry points.

Stdlib only: ``http.server.ThreadingHTTPServer`` in front of SQLite, in rooms of one concern each:

* ``contract``    the constants client and server share;
* ``schema``      the DDL, its migrations, connections and transactions;
* ``validation``  request bodies and query strings -> typed values, or BadRequest;
* ``store``       the SQL, one function per operation, each its own transaction;
* ``connections`` the listen backlog, the bounded pool of workers, and read deadlines;
* ``handler``     routing and the request handler: parse -> validate -> store -> respond;
* ``server``      (here) checking the token and TLS material, binding, serving until a signal.

The names ``deployer.cli`` (``auto-deploy state serve``) and the tests import from here stay importable here.
"""

from __future__ import annotations

import ipaddress
import signal
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from typing import Any

from autocore.text import display
from deployer.errors import ConfigError, TLSError
from deployer.state.connections import MAX_WORKERS
from deployer.state.contract import MAX_BODY, TOKEN_RE
from deployer.state.handler import Handler, StateHTTPServer
from deployer.state.schema import MIGRATIONS, SCHEMA_VERSION, init_db

__all__ = [
    "MAX_BODY",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "StateHTTPServer",
    "init_db",
    "make_server",
    "parse_listen",
    "run",
]

# The handler under the name it had when it lived here (tests/state/test_contract.py reads its ROUTES).
_Handler = Handler


def _check_token(token: str | None) -> str:
    if not token or not token.strip():
        raise ConfigError(
            "the environment-state service refuses to start without a write token: set AUTO_STATE_TOKEN or --token-file"
        )
    token = token.strip()
    if not TOKEN_RE.fullmatch(token):
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
        raise TLSError(f"cannot load the service's TLS certificate {certfile}: {display(exc, 200)}") from exc
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
    max_workers: int = MAX_WORKERS,
) -> ThreadingHTTPServer:
    """Create (but do not start) the environment-state server.

    ``port`` 0 picks a free port (read it from ``server.server_address``). With ``certfile`` (and
    ``keyfile`` unless the key is inside the certificate file) the server speaks HTTPS only, TLS 1.2+.
    Creates or migrates the database schema if needed. ``clock`` (seconds since the epoch) stamps
    every write and decides when locks expire; tests inject a fake one. At most ``max_workers``
    connections are served at once; more wait in the listen backlog (see ``connections``). Raises
    ConfigError for a missing token, a database that cannot be opened or an address that cannot be
    bound, and TLSError for unusable TLS material.
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
        return server_class((host, port), db_path, token, context, access_log, clock, max_workers=max_workers)
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
    max_workers: int = MAX_WORKERS,
) -> None:
    """Serve the environment-state API until SIGTERM or SIGINT, then return normally.

    Prints ``state service listening on https://HOST:PORT`` (http without TLS) to stderr once the
    socket is bound.
    """
    host, port = parse_listen(listen)
    server = make_server(db_path, host, port, token, certfile, keyfile, max_workers=max_workers)

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
