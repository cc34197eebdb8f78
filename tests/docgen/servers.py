"""A real HTTPS file server on loopback for the fetch tests, with a CA made by the lab's certificate code."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from deployer.lab import certs

# status, body, extra headers; a body may also be a function returning the chunks, each written as it comes
# (a server that trickles its answer: sleep in the generator).
Body = bytes | Callable[[], Iterator[bytes]]
Route = tuple[int, Body, dict[str, str]]
HEADER_DELAY = "X-Test-Delay"  # a route's header (not sent): seconds to wait before answering at all


@dataclass
class FileServer:
    """Serves ``routes`` (path -> (status, body, headers)); records every path asked for."""

    url: str
    ca_file: str
    routes: dict[str, Route]
    asked: list[str] = field(default_factory=list)


def make_tls(directory: Path) -> tuple[str, str, str]:
    """(ca.pem, cert.pem, key.pem) for a server on 127.0.0.1."""
    ca = certs.make_ca("docgen test CA")
    server = certs.issue(ca, "docs", ips=["127.0.0.1"], server=True, days=1)
    paths = (directory / "ca.pem", directory / "cert.pem", directory / "key.pem")
    for path, data in zip(paths, (ca.cert_pem(), server.cert_pem(), server.key_pem()), strict=True):
        path.write_bytes(data)
    return tuple(str(p) for p in paths)  # type: ignore[return-value]


@contextmanager
def https_files(directory: Path, routes: dict[str, Route]) -> Iterator[FileServer]:
    """Start the server in a thread; stop it on exit."""
    ca_file, cert, key = make_tls(directory)
    state = FileServer("", ca_file, routes)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            state.asked.append(self.path)
            status, body, headers = state.routes.get(self.path.split("?")[0], (404, b"not found", {}))
            time.sleep(float(headers.get(HEADER_DELAY, 0)))
            self.send_response(status)
            for name, value in headers.items():
                if name != HEADER_DELAY:
                    self.send_header(name, value)
            if "Content-Length" not in headers and isinstance(body, bytes):
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                for chunk in [body] if isinstance(body, bytes) else body():
                    self.wfile.write(chunk)
                    self.wfile.flush()
            except OSError:
                pass  # the client gave up (the point of a trickling route)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    state.url = f"https://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
