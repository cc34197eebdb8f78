"""Fixtures for the environment-state service tests: the real server on loopback (HTTP and HTTPS),
TLS material generated on the fly, and tiny scripted stdlib servers for malformed answers."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from deployer.lab import certs
from deployer.state.client import StateClient
from deployer.state.server import make_server

TOKEN = "tok-3b9f1c7e5a2d4680-never-leak"


def no_sleep(_seconds: float) -> None:
    """A sleep that does not: retries stay fast."""


@dataclass
class RunningServer:
    """A server started in a background thread."""

    url: str
    db_path: str
    server: ThreadingHTTPServer

    def client(self, **kwargs: Any) -> StateClient:
        """A client of this server with the right token and no retries unless asked."""
        kwargs.setdefault("token", TOKEN)
        kwargs.setdefault("retries", 0)
        kwargs.setdefault("sleep", no_sleep)
        return StateClient(self.url, **kwargs)


def _serve(server: ThreadingHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def start_state_server(tmp_path: Path) -> Iterator[Callable[..., RunningServer]]:
    """Factory: start the real state server on 127.0.0.1, an ephemeral port, in a thread."""
    started: list[tuple[ThreadingHTTPServer, threading.Thread]] = []

    def start(
        certfile: str | None = None,
        keyfile: str | None = None,
        db_name: str = "state.db",
        clock: Callable[[], float] | None = None,
    ) -> RunningServer:
        db_path = str(tmp_path / db_name)
        extra = {} if clock is None else {"clock": clock}
        server = make_server(db_path, "127.0.0.1", 0, TOKEN, certfile, keyfile, **extra)
        started.append((server, _serve(server)))
        scheme = "https" if certfile else "http"
        return RunningServer(f"{scheme}://127.0.0.1:{server.server_address[1]}", db_path, server)

    yield start
    for server, thread in started:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def state(start_state_server: Callable[..., RunningServer]) -> RunningServer:
    """The real state server over plain HTTP."""
    return start_state_server()


@pytest.fixture
def client(state: RunningServer) -> StateClient:
    """A client of ``state`` holding the right token."""
    return state.client()


LAB_CLUSTERS = {"blue": ("10.213.1.2", 2376), "green": ("10.213.2.2", 2376)}


@pytest.fixture
def lab_env(client: StateClient) -> StateClient:
    """``client`` after creating environment ``lab`` with blue live."""
    client.put_environment("lab", "blue", LAB_CLUSTERS, actor="setup")
    return client


# ---- TLS material


@dataclass
class TLSFiles:
    """PEM files: a CA, a server certificate for 127.0.0.1 signed by it, and an unrelated CA."""

    ca: str
    cert: str
    key: str
    wrong_ca: str


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    """Generate the TLS material once per test session, with the lab's certificate code."""
    directory = tmp_path_factory.mktemp("tls")
    ca = certs.make_ca("auto-state test CA")
    server = certs.issue(ca, "auto-state", ips=["127.0.0.1"], server=True, days=1)
    files = TLSFiles(
        ca=str(directory / "ca.pem"),
        cert=str(directory / "server.pem"),
        key=str(directory / "server-key.pem"),
        wrong_ca=str(directory / "wrong-ca.pem"),
    )
    Path(files.ca).write_bytes(ca.cert_pem())
    Path(files.wrong_ca).write_bytes(certs.make_ca("some other CA").cert_pem())
    Path(files.cert).write_bytes(server.cert_pem())
    Path(files.key).write_bytes(server.key_pem())
    return files


# ---- tiny scripted servers


@dataclass
class ScriptedServer:
    """A stdlib server that answers from a script and records what it was asked."""

    url: str
    requests: list[tuple[str, str]] = field(default_factory=list)


Reply = tuple[int, Any]  # (status, body); body is bytes (sent raw) or anything JSON-serialisable


@pytest.fixture
def scripted_server() -> Iterator[Callable[..., ScriptedServer]]:
    """Factory: ``scripted_server([(503, {...}), (200, {...})])`` answers in order, then repeats
    the last reply."""
    servers: list[tuple[ThreadingHTTPServer, threading.Thread]] = []

    def start(replies: list[Reply]) -> ScriptedServer:
        script = list(replies)
        record = ScriptedServer(url="")

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                record.requests.append((self.command, self.path))
                status, body = script.pop(0) if len(script) > 1 else script[0]
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _answer  # noqa: N815 - http.server's naming

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        servers.append((server, _serve(server)))
        record.url = f"http://127.0.0.1:{server.server_address[1]}"
        return record

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def refused_url() -> Iterator[str]:
    """A loopback URL where nothing listens: the port is bound (so nobody else gets it) but not
    listening, so connecting is refused at once."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


def environment_body(**overrides: Any) -> dict[str, Any]:
    """A valid Environment answer for ``lab`` (blue live), with top-level overrides."""
    body: dict[str, Any] = {
        "name": "lab",
        "live_colour": "blue",
        "revision": 3,
        "updated_at": "2026-11-25T06:30:00Z",
        "clusters": {
            "blue": {"manager_address": "10.213.1.2", "docker_port": 2376, "live": True, "stacks": []},
            "green": {"manager_address": "10.213.2.2", "docker_port": 2376, "live": False, "stacks": []},
        },
    }
    body.update(overrides)
    return body


@pytest.fixture
def token() -> str:
    """The write token every test server uses."""
    return TOKEN


@pytest.fixture
def env_body() -> Callable[..., dict[str, Any]]:
    """Builder of valid Environment answers, see :func:`environment_body`."""
    return environment_body


@pytest.fixture
def lab_clusters() -> dict[str, tuple[str, int]]:
    """The cluster addresses of environment ``lab``."""
    return dict(LAB_CLUSTERS)
