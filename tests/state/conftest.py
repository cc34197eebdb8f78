"""Fixtures for the environment-state service tests: the real server on loopback (HTTP and HTTPS),
TLS material generated on the fly, and tiny scripted stdlib servers for malformed answers."""

from __future__ import annotations

import datetime
import ipaddress
import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

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

    def start(certfile: str | None = None, keyfile: str | None = None, db_name: str = "state.db") -> RunningServer:
        db_path = str(tmp_path / db_name)
        server = make_server(db_path, "127.0.0.1", 0, TOKEN, certfile, keyfile)
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
def lab(client: StateClient) -> StateClient:
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


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _ca(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = _key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    """Generate the TLS material once per test session."""
    directory = tmp_path_factory.mktemp("tls")
    ca_key, ca_cert = _ca("auto-state test CA")
    _, wrong_cert = _ca("some other CA")
    key = _key()
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "auto-state")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files = TLSFiles(
        ca=str(directory / "ca.pem"),
        cert=str(directory / "server.pem"),
        key=str(directory / "server-key.pem"),
        wrong_ca=str(directory / "wrong-ca.pem"),
    )
    Path(files.ca).write_bytes(_pem(ca_cert))
    Path(files.wrong_ca).write_bytes(_pem(wrong_cert))
    Path(files.cert).write_bytes(_pem(cert))
    Path(files.key).write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
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
