"""The environment lock: acquire, renew, conflict, expiry by the server's clock, takeover, release,
force, and exactly one winner among concurrent acquirers. The server's clock is injected, so expiry
needs no sleeping."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from deployer.errors import (
    EXIT_REFUSED,
    ConfigError,
    InvalidStateError,
    LockHeldError,
    RefusedError,
    StateUnavailableError,
    UnknownEnvironmentError,
)
from deployer.state.client import Lock, StateClient

LAB_CLUSTERS = {"blue": ("10.213.1.2", 2376), "green": ("10.213.2.2", 2376)}
START = datetime(2026, 11, 25, 6, 30, 0, tzinfo=UTC).timestamp()


def no_sleep(_seconds: float) -> None:
    """Retries stay fast."""


class FakeClock:
    """The server's clock, moved by hand."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def locked_state(start_state_server: Callable[..., Any], clock: FakeClock) -> Any:
    """A server on the fake clock with environment ``lab``."""
    running = start_state_server(clock=clock)
    running.client().put_environment("lab", "blue", LAB_CLUSTERS, actor="setup")
    return running


@pytest.fixture
def api(locked_state: Any) -> StateClient:
    return locked_state.client()


def _kinds(client: StateClient) -> list[str]:
    return [e["kind"] for e in client.history("lab")]


# ---- acquire, renew, status


def test_acquire_a_free_lock(api: StateClient) -> None:
    assert api.lock_status("lab") is None
    lock = api.acquire_lock(
        "lab", owner="alice@ci:1", purpose="deploy web", ttl=60, actor="alice", job_url="https://ci.example/7"
    )
    assert lock == Lock(
        owner="alice@ci:1",
        purpose="deploy web",
        actor="alice",
        job_url="https://ci.example/7",
        acquired_at="2026-11-25T06:30:00Z",
        expires_at="2026-11-25T06:31:00Z",
        expires_in=60.0,
    )
    assert api.lock_status("lab") == lock
    event = api.history("lab", limit=1)[0]
    assert (event["kind"], event["actor"], event["at"]) == ("locked", "alice", "2026-11-25T06:30:00Z")
    assert event["detail"] == {
        "revision": 1,  # lock writes do not bump the revision
        "owner": "alice@ci:1",
        "purpose": "deploy web",
        "ttl_seconds": 60.0,
        "expires_at": "2026-11-25T06:31:00Z",
        "job_url": "https://ci.example/7",
    }
    assert api.get_environment("lab").revision == 1


def test_the_lock_is_frozen(api: StateClient) -> None:
    lock = api.acquire_lock("lab", owner="alice@ci:1", purpose="deploy", ttl=5)
    with pytest.raises(AttributeError):
        lock.owner = "bob"  # type: ignore[misc]
    assert (lock.actor, lock.job_url) == (None, None)


def test_same_owner_renews_keeping_acquired_at(api: StateClient, clock: FakeClock) -> None:
    first = api.acquire_lock("lab", owner="alice@ci:1", purpose="deploy web", ttl=30)
    clock.advance(20.25)
    renewed = api.acquire_lock("lab", owner="alice@ci:1", purpose="deploy web", ttl=30)
    assert renewed.acquired_at == first.acquired_at == "2026-11-25T06:30:00Z"
    assert renewed.expires_at == "2026-11-25T06:30:51Z"  # 06:30:50.25 rounded up
    assert renewed.expires_in == 30.0
    assert _kinds(api).count("locked") == 1  # a renewal appends nothing
    clock.advance(29.5)  # past the first expiry, within the renewed one
    assert api.lock_status("lab") == Lock(
        "alice@ci:1", "deploy web", None, None, "2026-11-25T06:30:00Z", "2026-11-25T06:30:51Z", 0.5
    )


def test_somebody_else_gets_lock_held_error(api: StateClient, clock: FakeClock) -> None:
    held = api.acquire_lock(
        "lab", owner="alice@ci:1", purpose="deploy web", ttl=60, actor="alice", job_url="https://ci.example/7"
    )
    clock.advance(15)
    with pytest.raises(LockHeldError) as caught:
        api.acquire_lock("lab", owner="bob@ci:2", purpose="switch", ttl=60, actor="bob")
    exc = caught.value
    assert isinstance(exc, RefusedError) and exc.exit_code == EXIT_REFUSED == 4
    assert str(exc) == (
        "environment lab is locked by alice@ci:1 for deploy web until 2026-11-25T06:31:00Z"
        " (actor alice, job https://ci.example/7): wait or run auto-deploy lock release --env lab"
    )
    assert exc.holder == Lock(**{**held.__dict__, "expires_in": 45.0})
    assert api.lock_status("lab").owner == "alice@ci:1"  # type: ignore[union-attr]
    assert _kinds(api).count("locked") == 1


def test_conflict_message_leaves_out_what_is_unknown(api: StateClient) -> None:
    api.acquire_lock("lab", owner="alice@ci:1", purpose="deploy web", ttl=60)
    with pytest.raises(LockHeldError) as caught:
        api.acquire_lock("lab", owner="bob@ci:2", purpose="switch", ttl=60)
    assert str(caught.value) == (
        "environment lab is locked by alice@ci:1 for deploy web until 2026-11-25T06:31:00Z:"
        " wait or run auto-deploy lock release --env lab"
    )
    api.release_lock("lab", force=True)
    api.acquire_lock("lab", owner="carol@ci:3", purpose="rollback", ttl=60, job_url="https://ci.example/9")
    with pytest.raises(LockHeldError, match=r"until 2026-11-25T06:31:00Z \(job https://ci.example/9\): wait"):
        api.acquire_lock("lab", owner="bob@ci:2", purpose="switch", ttl=60)


# ---- expiry and takeover


def test_an_expired_lock_reads_as_none(api: StateClient, clock: FakeClock, locked_state: Any) -> None:
    api.acquire_lock("lab", owner="alice@ci:1", purpose="deploy", ttl=1)
    clock.advance(0.999)
    assert api.lock_status("lab").expires_in == 0.001  # type: ignore[union-attr]
    clock.advance(0.001)
    assert api.lock_status("lab") is None
    assert requests.get(f"{locked_state.url}/v1/environments/lab/lock", timeout=5).json() == {"lock": None}


def test_taking_over_an_expired_lock_is_recorded(api: StateClient, clock: FakeClock) -> None:
    api.acquire_lock("lab", owner="alice@ci:1", purpose="deploy", ttl=10, actor="alice")
    clock.advance(11)
    lock = api.acquire_lock("lab", owner="bob@ci:2", purpose="switch", ttl=10, actor="bob")
    assert (lock.owner, lock.acquired_at) == ("bob@ci:2", "2026-11-25T06:30:11Z")
    events = api.history("lab")
    assert [e["kind"] for e in events[:2]] == ["locked", "locked"]
    assert events[0]["actor"] == "bob"
    assert events[0]["detail"]["took_over_expired_from"] == "alice@ci:1"
    assert "took_over_expired_from" not in events[1]["detail"]


def test_the_expired_owner_acquires_afresh(api: StateClient, clock: FakeClock) -> None:
    api.acquire_lock("lab", owner="alice@ci:1", purpose="deploy", ttl=10)
    clock.advance(30)
    again = api.acquire_lock("lab", owner="alice@ci:1", purpose="deploy", ttl=10)
    assert again.acquired_at == "2026-11-25T06:30:30Z"  # a new lock, not a renewal
    assert _kinds(api).count("locked") == 2


def test_concurrent_acquirers_get_exactly_one_winner(state: Any) -> None:
    state.client().put_environment("lab", "blue", LAB_CLUSTERS)
    barrier = threading.Barrier(8)
    won: list[Lock] = []
    lost: list[LockHeldError] = []
    other: list[BaseException] = []

    def contend(index: int) -> None:
        client = state.client()
        barrier.wait()
        try:
            won.append(client.acquire_lock("lab", owner=f"runner-{index}", purpose="deploy", ttl=60))
        except LockHeldError as exc:
            lost.append(exc)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            other.append(exc)

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert other == []
    assert len(won) == 1 and len(lost) == 7
    assert {exc.holder.owner for exc in lost} == {won[0].owner}
    client = state.client()
    assert client.lock_status("lab").owner == won[0].owner  # type: ignore[union-attr]
    assert [e["kind"] for e in client.history("lab")].count("locked") == 1


# ---- release


def test_release_by_the_owner(api: StateClient, clock: FakeClock) -> None:
    api.acquire_lock("lab", owner="alice@ci:1", purpose="deploy", ttl=60, actor="alice")
    clock.advance(12.5)
    assert api.release_lock("lab", owner="alice@ci:1") is True
    assert api.lock_status("lab") is None
    event = api.history("lab", limit=1)[0]
    assert (event["kind"], event["actor"]) == ("unlocked", "alice")
    assert event["detail"] == {
        "revision": 1,
        "owner": "alice@ci:1",
        "purpose": "deploy",
        "held_seconds": 12.5,
        "job_url": None,
    }
    assert api.release_lock("lab", owner="alice@ci:1") is False  # nothing left: no event
    assert _kinds(api)[0] == "unlocked"


def test_release_by_somebody_else_is_refused(api: StateClient) -> None:
    api.acquire_lock("lab", owner="alice@ci:1", purpose="deploy", ttl=60)
    with pytest.raises(LockHeldError, match="locked by alice@ci:1 for deploy") as caught:
        api.release_lock("lab", owner="bob@ci:2")
    assert caught.value.holder.owner == "alice@ci:1"
    assert api.lock_status("lab").owner == "alice@ci:1"  # type: ignore[union-attr]


def test_force_release(api: StateClient, locked_state: Any) -> None:
    api.acquire_lock("lab", owner="alice@ci:1", purpose="deploy", ttl=60, actor="alice")
    assert api.release_lock("lab", force=True, actor="dave") is True
    event = api.history("lab", limit=1)[0]
    assert (event["kind"], event["actor"], event["detail"]["owner"]) == ("lock_forced", "dave", "alice@ci:1")
    assert api.release_lock("lab", force=True) is False
    answer = requests.delete(
        f"{locked_state.url}/v1/environments/lab/lock?force=true",
        headers={"Authorization": f"Bearer {locked_state.client()._token}"},
        timeout=5,
    )
    assert answer.json() == {"released": False, "lock": None}


def test_releasing_an_expired_lock_releases_nothing(api: StateClient, clock: FakeClock) -> None:
    api.acquire_lock("lab", owner="alice@ci:1", purpose="deploy", ttl=5)
    clock.advance(6)
    assert api.release_lock("lab", owner="bob@ci:2") is False
    assert _kinds(api)[0] == "locked"


def test_release_answer_carries_the_released_lock(locked_state: Any, token: str) -> None:
    api = locked_state.client()
    lock = api.acquire_lock("lab", owner="alice@ci:1", purpose="deploy", ttl=60)
    answer = requests.delete(
        f"{locked_state.url}/v1/environments/lab/lock",
        params={"owner": "alice@ci:1"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    assert answer.status_code == 200
    assert answer.json() == {"released": True, "lock": lock.__dict__}


# ---- validation, authentication, unknown environments


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "give exactly one of owner=OWNER"),
        ("?owner=a&force=true", "give exactly one of owner=OWNER"),
        ("?force=yes", "force must be true when given"),
        ("?owner=", "owner must be a non-empty string"),
        ("?owner=a%0Ab", "owner must not contain control characters"),
        ("?owner=a&who=b", "unknown query parameter 'who'"),
    ],
)
def test_bad_release_is_400(locked_state: Any, token: str, query: str, message: str) -> None:
    answer = requests.delete(
        f"{locked_state.url}/v1/environments/lab/lock{query}", headers={"Authorization": f"Bearer {token}"}, timeout=5
    )
    assert answer.status_code == 400
    assert message in answer.json()["error"]


def test_client_needs_exactly_one_of_owner_and_force(api: StateClient) -> None:
    for kwargs in ({}, {"owner": "a", "force": True}):
        with pytest.raises(ConfigError, match="exactly one of owner"):
            api.release_lock("lab", **kwargs)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"ttl_seconds": 0.5}, "ttl_seconds must be a number of seconds from 1 to 3600"),
        ({"ttl_seconds": 3601}, "ttl_seconds must be a number of seconds from 1 to 3600"),
        ({"ttl_seconds": True}, "ttl_seconds must be"),
        ({"ttl_seconds": "60"}, "ttl_seconds must be"),
        ({"owner": ""}, "owner must be a non-empty string of at most 200"),
        ({"owner": "x" * 201}, "owner must be a non-empty string of at most 200"),
        ({"owner": "a\tb"}, "owner must not contain control characters"),
        ({"purpose": "p" * 501}, "purpose must be a non-empty string of at most 500"),
        ({"purpose": "line\nbreak"}, "purpose must not contain control characters"),
        ({"actor": "a\x00"}, "actor must not contain control characters"),
        ({"job_url": ""}, "job_url must be a non-empty string"),
        ({"until": 5}, "unknown field 'until'"),
    ],
)
def test_bad_acquire_is_400(api: StateClient, overrides: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"owner": "alice@ci:1", "purpose": "deploy", "ttl_seconds": 60}
    args.update(overrides)
    with pytest.raises(ConfigError, match=r"\(HTTP 400\)") as caught:
        api._call("POST", "/v1/environments/lab/lock", (200,), body=args, write=True)
    assert message in str(caught.value)
    assert api.lock_status("lab") is None


def test_whole_number_and_fractional_ttls(api: StateClient, clock: FakeClock) -> None:
    assert api.acquire_lock("lab", owner="a", purpose="p", ttl=1).expires_in == 1.0
    assert api.acquire_lock("lab", owner="a", purpose="p", ttl=3600).expires_in == 3600.0
    assert api.acquire_lock("lab", owner="a", purpose="p", ttl=2.5).expires_in == 2.5


def test_lock_of_an_unknown_environment(api: StateClient) -> None:
    for call in (
        lambda: api.lock_status("prod"),
        lambda: api.acquire_lock("prod", owner="a", purpose="p", ttl=5),
        lambda: api.release_lock("prod", force=True),
    ):
        with pytest.raises(UnknownEnvironmentError, match="unknown environment 'prod': known environments are lab"):
            call()


@pytest.mark.parametrize("header", [None, "Bearer wrong-token"])
def test_lock_writes_need_the_token(locked_state: Any, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    base = f"{locked_state.url}/v1/environments/lab"
    for method, path, body in (
        ("POST", "/lock", {"owner": "a", "purpose": "p", "ttl_seconds": 5}),
        ("DELETE", "/lock?force=true", None),
        ("DELETE", "/lock?owner=a", None),
    ):
        answer = requests.request(method, base + path, json=body, headers=headers, timeout=5)
        assert answer.status_code == 401, (method, path)
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        assert set(answer.json()) == {"error"}
    assert locked_state.client().lock_status("lab") is None
    with pytest.raises(ConfigError, match="this needs a token"):
        locked_state.client(token=None).release_lock("lab", force=True)


# ---- strict answers and retries


def _lock_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "owner": "alice@ci:1",
        "purpose": "deploy",
        "actor": None,
        "job_url": None,
        "acquired_at": "2026-11-25T06:30:00Z",
        "expires_at": "2026-11-25T06:31:00Z",
        "expires_in": 60,
    }
    body.update(overrides)
    return body


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({}, "lock is missing"),
        ({"lock": []}, "lock is not an object"),
        ({"lock": _lock_body(owner="")}, "lock.owner '' is not a non-empty string"),
        ({"lock": _lock_body(expires_at="soon")}, "lock.expires_at 'soon' is not a UTC timestamp"),
        ({"lock": _lock_body(expires_in=-1)}, "lock.expires_in -1 is not a number of seconds"),
        ({"lock": _lock_body(expires_in=True)}, "lock.expires_in true is not a number"),
        ({"lock": _lock_body(actor=7)}, "lock.actor 7 is not a non-empty string or null"),
        ({"lock": _lock_body(colour="blue")}, "lock.colour is not a field of a lock"),
    ],
)
def test_bad_lock_answers_are_invalid_state(scripted_server: Any, answer: Any, message: str) -> None:
    server = scripted_server([(200, answer)])
    client = StateClient(server.url, retries=0, sleep=no_sleep)
    with pytest.raises(InvalidStateError, match=message):
        client.lock_status("lab")


def test_acquire_answer_must_name_the_owner(scripted_server: Any, token: str) -> None:
    server = scripted_server([(200, {"lock": _lock_body(owner="bob"), "acquired": True})])
    client = StateClient(server.url, token=token, retries=0, sleep=no_sleep)
    with pytest.raises(InvalidStateError, match="lock.owner is 'bob' after acquiring it as 'alice@ci:1'"):
        client.acquire_lock("lab", owner="alice@ci:1", purpose="deploy", ttl=60)


def test_conflict_without_the_holder_is_invalid_state(scripted_server: Any, token: str) -> None:
    server = scripted_server([(409, {"error": "locked"})])
    client = StateClient(server.url, token=token, retries=0, sleep=no_sleep)
    with pytest.raises(InvalidStateError, match="lock is missing"):
        client.acquire_lock("lab", owner="alice@ci:1", purpose="deploy", ttl=60)


def test_acquire_is_retried_like_a_put(scripted_server: Any, token: str) -> None:
    """Retrying an acquire is safe: the same owner renews."""
    server = scripted_server(
        [(500, {"error": "boom"}), (502, {"error": "bad gateway"}), (200, {"lock": _lock_body(), "acquired": True})]
    )
    client = StateClient(server.url, token=token, retries=2, sleep=no_sleep)
    assert client.acquire_lock("lab", owner="alice@ci:1", purpose="deploy", ttl=60).owner == "alice@ci:1"
    assert server.requests == [("POST", "/v1/environments/lab/lock")] * 3


def test_record_event_is_not_retried_after_it_may_have_applied(scripted_server: Any, token: str) -> None:
    server = scripted_server([(500, {"error": "boom"}), (201, {"id": 1})])
    client = StateClient(server.url, token=token, retries=2, sleep=no_sleep)
    with pytest.raises(StateUnavailableError, match="not retried because the write may have been applied"):
        client.record_event("lab", kind="deploy", actor="alice", result="converged", detail={})
    assert len(server.requests) == 1
