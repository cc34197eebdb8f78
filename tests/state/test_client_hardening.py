"""The client against slow, huge, hostile or lossy services: an overall deadline, an answer size cap,
budgeted JSON, idempotency keys that make a lost answer safe to resend, and one-line errors."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest

from deployer import cli
from deployer.errors import ConfigError, InvalidStateError, StateUnavailableError
from deployer.state.client import StateClient
from tests.state.conftest import TOKEN, _serve, environment_body, no_sleep

# ---- servers that misbehave on purpose


@pytest.fixture
def raw_server() -> Iterator[Callable[[Callable[[socket.socket], None]], str]]:
    """Factory: a loopback TCP server that hands each connection (its request read) to ``reply``."""
    sockets: list[socket.socket] = []

    def start(reply: Callable[[socket.socket], None]) -> str:
        listener = socket.create_server(("127.0.0.1", 0))
        sockets.append(listener)

        def accept() -> None:
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                threading.Thread(target=_answer, args=(conn, reply), daemon=True).start()

        threading.Thread(target=accept, daemon=True).start()
        return f"http://127.0.0.1:{listener.getsockname()[1]}"

    yield start
    for listener in sockets:
        listener.close()


def _answer(conn: socket.socket, reply: Callable[[socket.socket], None]) -> None:
    try:
        conn.settimeout(10)
        conn.recv(65536)  # the request (small, one read on loopback)
        reply(conn)
    except OSError:
        pass  # the client hung up: what these tests want
    finally:
        conn.close()


def _trickle(data: bytes, every: float = 0.2) -> Callable[[socket.socket], None]:
    def reply(conn: socket.socket) -> None:
        for index in range(len(data)):
            conn.sendall(data[index : index + 1])
            time.sleep(every)

    return reply


# ---- 3. an overall deadline, however slowly the answer comes


@pytest.mark.parametrize(
    "reply",
    [
        _trickle(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{}"),  # headers
        lambda conn: (conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 200\r\n\r\n"), _trickle(b"{" * 200)(conn)),
    ],
    ids=["trickled-headers", "trickled-body"],
)
def test_a_trickling_service_meets_the_deadline(raw_server: Any, reply: Any) -> None:
    url = raw_server(reply)
    client = StateClient(url, retries=3, read_timeout=5, deadline=1.0, sleep=no_sleep)
    started = time.monotonic()
    with pytest.raises(StateUnavailableError) as caught:
        client.health()
    assert time.monotonic() - started < 2.5  # each byte came well within the 5 s read timeout
    assert str(caught.value) == (
        f"environment-state service at {url} did not answer GET /v1/health within the call's deadline of 1 s "
        "(AUTO_STATE_DEADLINE): check that the service is up and not overloaded"
    )


def test_a_write_past_the_deadline_may_have_been_applied(raw_server: Any) -> None:
    url = raw_server(_trickle(b"HTTP/1.1 201 Created\r\nContent-Length: 8\r\n\r\n{}"))
    client = StateClient(url, token=TOKEN, retries=0, deadline=0.5)
    with pytest.raises(StateUnavailableError) as caught:
        client.record_event("lab", kind="deploy", actor="a", result="converged", detail={})
    assert str(caught.value).endswith(
        "within the call's deadline of 0.5 s (AUTO_STATE_DEADLINE); the write may have been applied: check its history"
    )


# ---- 3. an answer size cap, streamed


def _big_answer(size: int, declared: bool) -> Callable[[socket.socket], None]:
    def reply(conn: socket.socket) -> None:
        length = f"Content-Length: {size}\r\n" if declared else "Connection: close\r\n"
        conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{length}\r\n".encode())
        chunk = b" " * 65536
        for _ in range(size // len(chunk)):
            conn.sendall(chunk)

    return reply


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "until-close"])
def test_an_answer_over_the_cap_is_refused_within_it(raw_server: Any, declared: bool) -> None:
    url = raw_server(_big_answer(64 * 1024 * 1024, declared))
    client = StateClient(url, retries=3, max_answer=1024 * 1024, sleep=no_sleep)
    tracemalloc.start()
    try:
        with pytest.raises(InvalidStateError) as caught:
            client.get_environment("lab")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(caught.value) == (
        "invalid state for environment 'lab': the answer is over the answer size budget of 1048576 bytes "
        "(AUTO_STATE_MAX_ANSWER): refused"
    )
    assert peak < 4 * 1024 * 1024  # streamed and stopped at the cap, not read whole


# ---- 3. answers parsed with budgets


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[" * 100_000, "answer: nested deeper than 256 levels, over the nesting depth budget of 256: refused unread"),
        (
            b'{"environments": [{"name": ' + b"7" * 5000 + b"}]}",
            "answer: an integer of 5000 digits, over the integer size budget of 100: refused unread",
        ),
        (
            b'{"environments": [{"name": 1e999}]}',
            "answer: the number 1e999 is not finite, and JSON has no such number: write a finite one",
        ),
    ],
)
def test_hostile_json_answers_are_one_line(scripted_server: Any, body: bytes, message: str) -> None:
    server = scripted_server([(200, body)])
    with pytest.raises(InvalidStateError) as caught:
        StateClient(server.url, retries=0).list_environments()
    assert str(caught.value) == f"invalid answer to GET /v1/environments: {message}"


# ---- 2. a write whose answer is lost is resent with its key, and applied once


class _LossyProxy:
    """Forwards to the real service, and swallows the answers of the first ``drop`` writes."""

    def __init__(self, upstream: str, drop: int) -> None:
        self.keys: list[str | None] = []
        parts = urlsplit(upstream)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                upstream_conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                upstream_conn.request(self.command, self.path, body=body or None, headers=headers)
                answer = upstream_conn.getresponse()
                data = answer.read()
                upstream_conn.close()
                if self.command != "GET":
                    proxy.keys.append(self.headers.get("Idempotency-Key"))
                    if len(proxy.keys) <= drop:  # applied upstream; the answer never reaches the client
                        self.close_connection = True
                        return
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("server", "date", "connection"):
                        self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _forward  # noqa: N815 - http.server's naming

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = _serve(self.server)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def lossy(state: Any, lab_env: StateClient) -> Iterator[Callable[[int], _LossyProxy]]:
    proxies: list[_LossyProxy] = []

    def start(drop: int) -> _LossyProxy:
        proxies.append(_LossyProxy(state.url, drop))
        return proxies[-1]

    yield start
    for proxy in proxies:
        proxy.close()


def test_a_lost_answer_to_a_write_is_resent_and_applied_once(lossy: Any, lab_env: StateClient) -> None:
    """Problem 2: "may have been applied" for writes that were not; now the client finds out by resending."""
    proxy = lossy(2)
    client = StateClient(proxy.url, token=TOKEN, retries=3, sleep=no_sleep)
    event_id = client.record_event("lab", kind="deploy", actor="alice", result="converged", detail={"n": 1})
    assert len(proxy.keys) == 3 and len(set(proxy.keys)) == 1 and proxy.keys[0]  # one key, three attempts
    history = lab_env.history("lab")
    assert [e["kind"] for e in history] == ["deploy", "created"]  # applied by the first, once
    assert history[0]["id"] == event_id


def test_a_lost_switch_answer_is_not_a_conflict_on_resend(lossy: Any, lab_env: StateClient) -> None:
    proxy = lossy(1)
    client = StateClient(proxy.url, token=TOKEN, retries=1, sleep=no_sleep)
    env = client.switch("lab", "blue", "green", actor="bob")  # without the key, the resend would be a 409
    assert (env.live_colour, env.revision) == ("green", 2)
    assert [e["kind"] for e in lab_env.history("lab")] == ["switched", "created"]


def test_writes_are_not_resent_without_retries(lossy: Any) -> None:
    proxy = lossy(1)
    client = StateClient(proxy.url, token=TOKEN, retries=0, sleep=no_sleep)
    with pytest.raises(StateUnavailableError) as caught:
        client.record_event("lab", kind="deploy", actor="alice", result="converged", detail={})
    assert str(caught.value) == (
        f"environment-state service at {proxy.url} unreachable after 1 attempts (last: ConnectionError): "
        "the write may have been applied: check its history"
    )


@pytest.mark.parametrize("status", [502, 504])
def test_a_write_is_resent_after_a_gateway_error(scripted_server: Any, status: int) -> None:
    server = scripted_server([(status, {"error": "gateway"}), (201, {"id": 7})])
    client = StateClient(server.url, token=TOKEN, retries=2, sleep=no_sleep)
    assert client.record_event("lab", kind="deploy", actor="a", result="converged", detail={}) == 7
    assert len(server.requests) == 2


def test_each_write_has_its_own_key(state: Any, lab_env: StateClient) -> None:
    proxy = _LossyProxy(state.url, 0)
    try:
        client = StateClient(proxy.url, token=TOKEN, retries=0)
        for _ in range(2):
            client.record_event("lab", kind="deploy", actor="a", result="converged", detail={})
        client.release_lock("lab", force=True)
    finally:
        proxy.close()
    assert len(set(proxy.keys)) == 3
    assert len(lab_env.history("lab")) == 3


# ---- 5. malformed answers and settings: one line, never a traceback


def test_a_history_event_missing_fields_is_invalid_state(
    scripted_server: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server = scripted_server([(200, {"events": [{"id": 1, "kind": "deploy"}]})])
    with pytest.raises(InvalidStateError) as caught:
        StateClient(server.url, retries=0).history("lab")
    assert str(caught.value) == "invalid state for environment 'lab': events[0].at is missing"

    monkeypatch.setenv("AUTO_STATE_URL", server.url)
    assert cli.main(["history", "--env", "lab"]) == 4
    out, err = capsys.readouterr()
    assert (out, err) == ("", "Error: invalid state for environment 'lab': events[0].at is missing\n")


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"at": "yesterday"}, "events[0].at 'yesterday' is not a UTC timestamp like 2026-11-25T06:30:00Z"),
        ({"kind": None}, "events[0].kind null is not a non-empty string"),
        ({"actor": "a\nFORGED"}, "events[0].actor 'a?FORGED' contains control characters"),
        ({"detail": []}, "events[0].detail is not an object"),
        ({"detail": {"result": {"x": 1}}}, 'events[0].detail.result {"x": 1} is not a non-empty string'),
        ({"id": "1"}, "events[0].id '1' is not an integer"),
    ],
)
def test_malformed_history_events(scripted_server: Any, event: dict[str, Any], message: str) -> None:
    good = {"id": 1, "at": "2026-11-25T06:30:00Z", "kind": "deploy", "actor": None, "detail": {}}
    server = scripted_server([(200, {"events": [{**good, **event}]})])
    with pytest.raises(InvalidStateError) as caught:
        StateClient(server.url, retries=0).history("lab")
    assert str(caught.value) == f"invalid state for environment 'lab': {message}"


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        (
            {"AUTO_STATE_URL": "http://[::1"},
            "Error: invalid environment-state service URL 'http://[::1': use https://HOST:PORT",
        ),
        (
            {"AUTO_STATE_URL": "http://127.0.0.1:99999"},
            "Error: invalid environment-state service URL 'http://127.0.0.1:99999': use https://HOST:PORT",
        ),
        ({"AUTO_STATE_RETRIES": "²"}, "Error: AUTO_STATE_RETRIES '²' is not a whole number from 0 to 20"),
        ({"AUTO_STATE_DEADLINE": "soon"}, "Error: AUTO_STATE_DEADLINE 'soon' is not a number of seconds (0-3600)"),
        (
            {"AUTO_STATE_MAX_ANSWER": "¹⁰"},
            "Error: AUTO_STATE_MAX_ANSWER '¹⁰' is not a number of bytes from 1024 to 1073741824",
        ),
    ],
)
def test_bad_settings_are_one_line_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], setting: dict[str, str], message: str
) -> None:
    monkeypatch.setenv("AUTO_STATE_URL", "http://127.0.0.1:1")
    for key in ("AUTO_STATE_RETRIES", "AUTO_STATE_DEADLINE", "AUTO_STATE_MAX_ANSWER", "AUTO_STATE_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    for key, value in setting.items():
        monkeypatch.setenv(key, value)
    assert cli.main(["resolve", "--env", "lab"]) == 2
    out, err = capsys.readouterr()
    assert (out, err) == ("", message + "\n")


@pytest.mark.parametrize("url", ["http://127.0.0.1:8787\n", "http://127.0.0.1\t:8787", "http://[::1]:8787/x y"])
def test_urls_with_control_characters_or_spaces_are_refused(url: str) -> None:
    with pytest.raises(ConfigError, match="invalid environment-state service URL"):
        StateClient(url)


# ---- 6. what the service answers is checked whole: names, addresses, labels


FORGED = "fe80::1%eth0\nFORGED blue is live, manager tcp://6.6.6.6:2376 $(id)"


def test_a_forged_manager_address_never_reaches_the_terminal(
    scripted_server: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clusters = environment_body()["clusters"]
    clusters["blue"]["manager_address"] = FORGED
    server = scripted_server([(200, environment_body(clusters=clusters))])
    monkeypatch.setenv("AUTO_STATE_URL", server.url)
    monkeypatch.setenv("AUTO_STATE_RETRIES", "0")
    assert cli.main(["resolve", "--env", "lab"]) == 4
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        "Error: invalid state for environment 'lab': clusters.blue.manager_address "
        "'fe80::1%eth0?FORGED blue is live, manager tcp://6.6.6.6:2...' is not an IP address\n"
    )


@pytest.mark.parametrize(
    ("stack", "message"),
    [
        ({"name": "demo\nFORGED"}, "clusters.blue.stacks[0].name 'demo?FORGED' contains control characters"),
        ({"name": "demo!"}, "clusters.blue.stacks[0].name 'demo!' is not a stack name"),
        ({"deployed_by": "bob\x1b[2J"}, "clusters.blue.stacks[0].deployed_by 'bob?[2J' contains control characters"),
        (
            {"services": [{"name": "web\u2028x", "image": "w:1", "replicas": 1}]},
            "clusters.blue.stacks[0].services[0].name 'web?x' contains control characters",
        ),
        (
            {"services": [{"name": "web", "image": "w:1 --privileged", "replicas": 1}]},
            "clusters.blue.stacks[0].services[0].image 'w:1 --privileged' is not an image reference",
        ),
    ],
)
def test_names_and_labels_in_answers_are_checked_whole(
    scripted_server: Any, stack: dict[str, Any], message: str
) -> None:
    clusters = environment_body()["clusters"]
    good = {"name": "demo", "deployed_at": "2026-11-25T06:30:00Z", "deployed_by": "bob", "services": []}
    clusters["blue"]["stacks"] = [{**good, **stack}]
    server = scripted_server([(200, environment_body(clusters=clusters))])
    with pytest.raises(InvalidStateError) as caught:
        StateClient(server.url, retries=0).get_environment("lab")
    assert str(caught.value) == f"invalid state for environment 'lab': {message}"


def test_a_lock_owner_with_a_newline_is_invalid_state(scripted_server: Any) -> None:
    lock = {
        "owner": "alice\nFORGED",
        "purpose": "deploy",
        "actor": None,
        "job_url": None,
        "acquired_at": "2026-11-25T06:30:00Z",
        "expires_at": "2026-11-25T06:31:00Z",
        "expires_in": 60,
    }
    server = scripted_server([(200, {"lock": lock})])
    with pytest.raises(InvalidStateError) as caught:
        StateClient(server.url, retries=0).lock_status("lab")
    assert (
        str(caught.value)
        == "invalid state for environment 'lab': lock.owner 'alice?FORGED' contains control characters"
    )


def test_answers_still_round_trip_through_the_real_service(client: StateClient) -> None:
    client.put_environment("lab", "blue", {"blue": ("fe80::1%eth0", 2376), "green": ("10.0.0.2", 2376)})
    assert client.resolve("lab").docker_host == "tcp://[fe80::1%eth0]:2376"
    assert json.loads(json.dumps(client.history("lab")))[0]["kind"] == "created"


def test_history_shows_other_peoples_text_on_one_line_with_escapes(
    state: Any, lab_env: StateClient, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lab_env.record_event(
        "lab",
        kind="switch",
        actor="ci",
        result="failed",
        detail={"message": "reason\nFORGED 2026-01-01T00:00:00Z  deploy  succeeded \x1b[31mred\x1b[0m"},
    )
    monkeypatch.setenv("AUTO_STATE_URL", state.url)
    assert cli.main(["history", "--env", "lab"]) == 0
    lines = capsys.readouterr().out.splitlines()
    last = next(line for line in lines if "FORGED" in line)
    assert "\x1b" not in last and last.endswith(
        "reason FORGED 2026-01-01T00:00:00Z deploy succeeded \\x1b[31mred\\x1b[0m"
    )
    assert not [line for line in lines if line.startswith("FORGED")]


def test_a_reader_may_skip_services_that_break_the_contract_instead_of_the_environment(scripted_server: Any) -> None:
    good = {"name": "orders", "image": "shop/orders:1", "replicas": 1}
    bad = {"name": "web\nFORGED", "image": "shop/web:1", "replicas": 1}
    body = environment_body()
    body["clusters"]["blue"]["stacks"] = [
        {"name": "shop", "deployed_at": "2026-11-25T06:30:00Z", "deployed_by": "ci", "services": [bad, good]}
    ]
    server = scripted_server([(200, body), (200, body)])
    client = StateClient(server.url, retries=0)
    with pytest.raises(InvalidStateError, match=r"services\[0\]\.name 'web\?FORGED' contains control characters"):
        client.get_environment("lab")  # the deployer's way: the whole answer is refused

    skipped: list[Any] = []
    env = client.get_environment("lab", skipped=skipped)

    assert [s.name for s in env.live_cluster.stacks[0].services] == ["orders"]
    assert [(s.colour, s.stack, s.raw) for s in skipped] == [("blue", "shop", bad)]
    assert skipped[0].reason.startswith("invalid state for environment 'lab': clusters.blue.stacks[0].services[0].name")
