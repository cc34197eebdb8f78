"""The server under pressure and hostile input: a real backlog and a bounded pool of workers, request
deadlines, idempotent writes, an access log without query values, and one-line 400s instead of 500s."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from deployer import cli
from deployer.state import handler as handler_module
from deployer.state.connections import LISTEN_BACKLOG
from deployer.state.server import make_server
from tests.state.conftest import TOKEN, RunningServer, _serve

CLUSTERS = {
    "blue": {"manager_address": "10.213.1.2", "docker_port": 2376},
    "green": {"manager_address": "10.213.2.2", "docker_port": 2376},
}


def _auth(**extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}", **extra}


def _one_line_error(answer: requests.Response | http.client.HTTPResponse, status: int, message: str) -> None:
    code = answer.status_code if isinstance(answer, requests.Response) else answer.status
    body = json.loads(answer.content if isinstance(answer, requests.Response) else answer.read())
    assert (code, body) == (status, {"error": message})


def _raw(url: str, data: bytes, timeout: float = 5) -> bytes:
    """Send raw bytes, read the answer until the server closes."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(data)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    return reply


@pytest.fixture
def pool_server(tmp_path: Path) -> Any:
    """Factory: the real server with ``max_workers`` workers, stopped afterwards."""
    started: list[Any] = []

    def start(max_workers: int, certfile: str | None = None, keyfile: str | None = None) -> RunningServer:
        db_path = str(tmp_path / "pool.db")
        options: dict[str, Any] = {"access_log": False, "max_workers": max_workers}
        server = make_server(db_path, "127.0.0.1", 0, TOKEN, certfile, keyfile, **options)
        started.append((server, _serve(server)))
        return RunningServer(server.url, server.db_path, server)

    yield start
    for server, thread in started:
        server.shutdown()
        server.server_close()
        thread.join(5)


# ---- 1. a real listen backlog, a bounded pool of workers, deadlines


def test_200_concurrent_readers_on_4_workers_are_all_answered(pool_server: Any) -> None:
    """Problem 1: with the default backlog of 5, 48-60 of 200 concurrent reads timed out."""
    running = pool_server(4)
    assert running.server.request_queue_size == LISTEN_BACKLOG == 1024
    active, peak, lock = [0], [0], threading.Lock()
    serve_one = running.server.process_request_thread

    def counted(request: Any, client_address: Any) -> None:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        try:
            serve_one(request, client_address)
        finally:
            with lock:
                active[0] -= 1

    running.server.process_request_thread = counted  # type: ignore[method-assign]
    parts = urlsplit(running.url)
    barrier = threading.Barrier(200)
    statuses: list[int] = []

    def read() -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=20)
        barrier.wait()
        try:
            for _ in range(3):  # keep-alive: the server must still go round the queue
                conn.request("GET", "/v1/health")
                answer = conn.getresponse()
                answer.read()
                with lock:
                    statuses.append(answer.status)
        finally:
            conn.close()

    threads = [threading.Thread(target=read) for _ in range(200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert statuses == [200] * 600
    assert 1 <= peak[0] <= 4  # never more handlers than workers; the rest waited in the backlog


def test_a_silent_connection_does_not_keep_the_only_worker(pool_server: Any) -> None:
    running = pool_server(1)
    parts = urlsplit(running.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as silent:
        silent.sendall(b"GET /v1/heal")  # and then nothing: it takes the only worker
        time.sleep(0.2)
        started = time.monotonic()
        assert requests.get(running.url + "/v1/health", timeout=5).json() == {"status": "ok"}
        assert time.monotonic() - started < 2  # it was hung up for the connection that waited
        silent.settimeout(2)
        assert silent.recv(100) == b""


def test_a_silent_tls_client_does_not_keep_the_only_worker(pool_server: Any, tls_files: Any) -> None:
    running = pool_server(1, tls_files.cert, tls_files.key)
    parts = urlsplit(running.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5):
        time.sleep(0.2)  # connected, no ClientHello: the handshake takes the only worker
        started = time.monotonic()
        answer = requests.get(running.url + "/v1/health", verify=tls_files.ca, timeout=5)
        assert answer.json() == {"status": "ok"}
        assert time.monotonic() - started < 2


def test_a_trickled_request_is_cut_at_its_deadline(state: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handler_module, "_REQUEST_DEADLINE", 0.5)
    parts = urlsplit(state.url)
    started = time.monotonic()
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(
            b"PUT /v1/environments/lab HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode() + b"\r\n"
            b"Content-Length: 100\r\n\r\n{"
        )
        reply = b""
        try:
            for _ in range(50):  # one byte every 0.1 s: each recv is quick, the whole is too slow
                time.sleep(0.1)
                sock.sendall(b" ")
        except OSError:
            pass  # the server hung up
        while chunk := sock.recv(4096):
            reply += chunk
    assert time.monotonic() - started < 3
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408")
    assert json.loads(body) == {"error": "the request did not arrive within 0.5 s"}


# ---- 2. idempotent writes


def test_a_repeated_key_is_answered_from_the_stored_answer(state: Any, lab_env: Any) -> None:
    event = {"kind": "deploy", "actor": "alice", "result": "converged", "detail": {"stack": "web"}}
    url = f"{state.url}/v1/environments/lab/events"
    first = requests.post(url, json=event, headers=_auth(**{"Idempotency-Key": "key-0001-abcdef"}), timeout=5)
    again = requests.post(url, json=event, headers=_auth(**{"Idempotency-Key": "key-0001-abcdef"}), timeout=5)
    assert (first.status_code, again.status_code) == (201, 201)
    assert first.json() == again.json()
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"
    assert [e["kind"] for e in lab_env.history("lab")] == ["deploy", "created"]  # applied once

    other = requests.post(url, json={**event, "actor": "bob"}, headers=_auth(**{"Idempotency-Key": "key-0001-abcdef"}))
    _one_line_error(
        other,
        422,
        "Idempotency-Key 'key-0001-abcdef' was used for a different request; send a new key with a new write",
    )
    plain = requests.post(url, json=event, headers=_auth(), timeout=5)  # the header stays optional
    assert plain.status_code == 201 and plain.json()["id"] != first.json()["id"]


def test_a_switch_repeated_with_its_key_is_not_a_conflict(state: Any, lab_env: Any) -> None:
    url = f"{state.url}/v1/environments/lab/switch"
    body = {"expected_live": "blue", "to": "green"}
    headers = _auth(**{"Idempotency-Key": "switch-key-42"})
    first = requests.post(url, json=body, headers=headers, timeout=5)
    again = requests.post(url, json=body, headers=headers, timeout=5)
    assert (first.status_code, again.status_code) == (200, 200)  # without the key: 409, someone switched
    assert again.json() == first.json()
    assert requests.post(url, json=body, headers=_auth(), timeout=5).status_code == 409


def test_an_error_is_not_stored_under_its_key(state: Any, lab_env: Any) -> None:
    url = f"{state.url}/v1/environments/lab/switch"
    headers = _auth(**{"Idempotency-Key": "switch-key-43"})
    assert requests.post(url, json={"expected_live": "green", "to": "blue"}, headers=headers).status_code == 409
    # Nothing was applied, so nothing was stored: the same key runs the (same) request again.
    assert requests.post(url, json={"expected_live": "green", "to": "blue"}, headers=headers).status_code == 409


def test_a_key_is_forgotten_after_a_day(start_state_server: Callable[..., RunningServer]) -> None:
    now = [1_800_000_000.0]
    running = start_state_server(clock=lambda: now[0])
    running.client().put_environment("lab", "blue", {"blue": ("10.0.0.1", 1), "green": ("10.0.0.2", 1)})
    url = f"{running.url}/v1/environments/lab/events"
    event = {"kind": "deploy", "actor": "alice", "result": "converged", "detail": {}}
    headers = _auth(**{"Idempotency-Key": "daily-key-0001"})
    first = requests.post(url, json=event, headers=headers, timeout=5).json()["id"]
    now[0] += 24 * 3600 - 1
    assert requests.post(url, json=event, headers=headers, timeout=5).json()["id"] == first
    now[0] += 2
    assert requests.post(url, json=event, headers=headers, timeout=5).json()["id"] != first  # applied anew


@pytest.mark.parametrize("key", ["short", "has space here", "x" * 129, "line\nbreak-key"])
def test_a_malformed_key_is_400(state: Any, key: str) -> None:
    answer = requests.put(
        f"{state.url}/v1/environments/lab",
        json={"live_colour": "blue", "clusters": CLUSTERS},
        headers=_auth(**{"Idempotency-Key": key.replace("\n", "%0A")}),
        timeout=5,
    )
    assert answer.status_code == 400
    assert answer.json()["error"].startswith("Idempotency-Key ")


# ---- 4. the access log never shows a query string's values


def test_the_access_log_never_shows_a_query_secret(state: Any, capfd: pytest.CaptureFixture[str]) -> None:
    secret = "s3cret-7f1c2a9b"
    answer = requests.get(f"{state.url}/v1/health?access_token={secret}", timeout=5)
    _one_line_error(answer, 400, "unknown query parameter 'access_token'; allowed: none")
    requests.get(f"{state.url}/v1/environments/x/history?limit=5&access_token={secret}", timeout=5)
    reply = _raw(state.url, f"GET /v1/health?access_token={secret} extra HTTP/1.1\r\n\r\n".encode())
    assert reply.startswith(b"HTTP/1.1 400")
    _, err = capfd.readouterr()
    assert secret not in err
    assert '"GET /v1/health?*=* HTTP/1.1" 400' in err
    assert '"GET /v1/environments/x/history?limit=*&*=* HTTP/1.1" 400' in err


def test_loggable_keeps_known_names_only() -> None:
    loggable = handler_module.loggable
    assert loggable("DELETE /v1/environments/lab/lock?owner=me&force=true HTTP/1.1") == (
        "DELETE /v1/environments/lab/lock?owner=*&force=* HTTP/1.1"
    )
    assert loggable("GET /?SECRETVALUE HTTP/1.1") == "GET /?*=* HTTP/1.1"
    assert loggable("GET /?a=b c d HTTP/1.1") == "GET /?*=* HTTP/1.1"
    assert loggable("GET /v1/health HTTP/1.1") == "GET /v1/health HTTP/1.1"


# ---- 5. one-line 400s instead of 500s, and HEAD


def test_a_body_nested_200000_deep_is_400(state: Any) -> None:
    answer = requests.put(f"{state.url}/v1/environments/lab", data=b"[" * 200_000, headers=_auth(), timeout=10)
    _one_line_error(
        answer, 400, "request body: nested deeper than 128 levels, over the nesting depth budget of 128: refused unread"
    )


def test_a_body_with_a_huge_integer_is_400(state: Any) -> None:
    data = b'{"live_colour": "blue", "clusters": {}, "x": ' + b"9" * 5000 + b"}"
    answer = requests.put(f"{state.url}/v1/environments/lab", data=data, headers=_auth(), timeout=5)
    _one_line_error(
        answer, 400, "request body: an integer of 5000 digits, over the integer size budget of 100: refused unread"
    )


def test_a_non_ascii_content_length_is_400(state: Any) -> None:
    parts = urlsplit(state.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    conn.putrequest("PUT", "/v1/environments/lab")
    conn.putheader("Authorization", f"Bearer {TOKEN}")
    conn.putheader("Content-Length", "²")  # "²".isdigit() is True, int("²") a ValueError
    conn.endheaders()
    answer = conn.getresponse()
    _one_line_error(answer, 400, "Content-Length must be a number of bytes, not '²'")
    assert answer.getheader("Connection") == "close"
    conn.close()


@pytest.mark.parametrize("path", ["deployments", "history"])
def test_a_non_ascii_limit_is_400(state: Any, lab_env: Any, path: str) -> None:
    answer = requests.get(f"{state.url}/v1/environments/lab/{path}?limit=²", timeout=5)
    _one_line_error(answer, 400, "limit must be an integer from 1 to 1000, not '²'")


def test_a_malformed_request_target_is_400(state: Any) -> None:
    reply = _raw(state.url, b"GET http://[x/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert json.loads(body) == {"error": "malformed request target"}


def test_head_answers_like_get_without_a_body(state: Any, lab_env: Any) -> None:
    for path in ("/v1/health", "/v1/environments", "/v1/environments/lab", "/v1/environments/lab/history"):
        get = requests.get(state.url + path, timeout=5)
        head = requests.head(state.url + path, timeout=5)
        assert (head.status_code, head.content) == (200, b"")
        assert head.headers["Content-Length"] == str(len(get.content))
        assert head.headers["Content-Type"] == "application/json"
    assert requests.head(f"{state.url}/v1/environments/nope", timeout=5).status_code == 404
    refused = requests.head(f"{state.url}/v1/environments/lab/switch", timeout=5)
    assert (refused.status_code, refused.headers["Allow"]) == (405, "POST")


def test_state_serve_with_a_binary_token_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AUTO_STATE_TOKEN", raising=False)
    token_file = tmp_path / "token.bin"
    token_file.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    code = cli.main(["state", "serve", "--db", str(tmp_path / "s.db"), "--token-file", str(token_file)])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err == (
        f"Error: --token-file {token_file} is not a text file: the token must be printable ASCII without spaces\n"
    )
    token_file.write_bytes(b"tok\x01en")  # text, but not a token
    assert cli.main(["state", "serve", "--db", str(tmp_path / "s.db"), "--token-file", str(token_file)]) == 2
    assert capsys.readouterr().err == (
        "Error: the write token must be printable ASCII without spaces: check AUTO_STATE_TOKEN or --token-file\n"
    )


@pytest.mark.parametrize("workers", ["0", "²", "1025", "many"])
def test_state_serve_refuses_a_bad_worker_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], workers: str
) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(["state", "serve", "--db", str(tmp_path / "s.db"), "--workers", workers])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: argument --workers: ") and err.count("\n") == 1
    assert "is not a number of workers from 1 to 1024" in err


# ---- 6. names, addresses and labels: the whole value, no control characters


FORGED = "fe80::1%eth0\nFORGED blue is live, manager tcp://6.6.6.6:2376 $(id)"


@pytest.mark.parametrize(
    ("address", "stored"),
    [
        (FORGED, None),
        ("fe80::1%eth0 $(id)", None),
        ("10.0.0.1\n", None),
        ("fe80::1%eth0", "fe80::1%eth0"),
        ("FD00::0001", "fd00::1"),
    ],
)
def test_manager_addresses_are_whole_ip_literals(client: Any, address: str, stored: str | None) -> None:
    from deployer.errors import ConfigError

    clusters = {"blue": (address, 2376), "green": ("10.0.0.2", 2376)}
    if stored is None:
        with pytest.raises(ConfigError) as caught:
            client.put_environment("lab", "blue", clusters)
        assert "clusters.blue.manager_address must be an IPv4 or IPv6 literal, not " in str(caught.value)
        assert "\n" not in str(caught.value)
    else:
        assert client.put_environment("lab", "blue", clusters).clusters["blue"].manager_address == stored


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        (
            "deployments",
            {"job_url": "https://ci.example/1\nFORGED"},
            "job_url must not contain control characters",
        ),
        (
            "deployments",
            {"compose": [{"file": "docker-compose.yml\r\nFORGED", "content": ""}]},
            "compose[0].file must not contain control characters",
        ),
        (
            "deployments",
            {"services": [{"name": "web", "image": "w:1\x00", "replicas": 1}]},
            "services[0].image must not contain whitespace",
        ),
        ("deployments", {"actor": "alice\x85"}, "actor must not contain control characters"),
        ("deployments", {"stack": "demo\u2028"}, "stack 'demo' does not match"),  # display() drops U+2028
        ("lock", {"owner": "alice\u2029forged"}, "owner must not contain control characters"),
    ],
)
def test_labels_with_control_characters_are_400(
    state: Any, lab_env: Any, path: str, body: dict[str, Any], message: str
) -> None:
    base: dict[str, Any] = {
        "deployments": {
            "colour": "blue",
            "stack": "demo",
            "services": [{"name": "web", "image": "w:1", "replicas": 1}],
            "compose": [],
            "result": "succeeded",
            "actor": "alice",
        },
        "lock": {"owner": "alice", "purpose": "deploy", "ttl_seconds": 60},
    }[path]
    answer = requests.post(f"{state.url}/v1/environments/lab/{path}", json={**base, **body}, headers=_auth(), timeout=5)
    assert answer.status_code == 400
    assert message in answer.json()["error"]


def test_start_fixture_types(start_state_server: Callable[..., RunningServer]) -> None:
    """The factory hands out the bounded server (the orchestration rig relies on make_server's defaults)."""
    running = start_state_server()
    assert running.server.max_workers >= 16  # type: ignore[attr-defined]
