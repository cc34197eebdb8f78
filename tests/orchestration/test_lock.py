"""The environment lock around a deploy: contention, waiting, expiry, a lock lost mid-deploy, and
``deployer.lock.held`` itself against the real state service."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from deployer import deploy, lock
from deployer.deploy import DeployOptions
from deployer.errors import EXIT_REFUSED, LockHeldError
from deployer.state.client import Lock, StateClient
from tests.orchestration.engine_api import service, task
from tests.orchestration.harness import ACTOR, ENV, HOSTS, TOKEN, Rig, appears, no_sleep

IMAGE = "auto-lab/web:1"
RIVAL = "bob@runner-7:81:0badcafe"
RIVAL_JOB = "https://10.213.0.10/auto/api/-/jobs/41"


def hold(rig: Rig, *, ttl: float = 60, owner: str = RIVAL, purpose: str = "switch to green") -> Lock:
    return rig.rival.acquire_lock(ENV, owner=owner, purpose=purpose, ttl=ttl, actor="bob", job_url=RIVAL_JOB)


def held_message(holder: Lock, purpose: str = "switch to green") -> str:
    return (
        f"environment lab is locked by {RIVAL} for {purpose} until {holder.expires_at} (actor bob, job {RIVAL_JOB}): "
        "wait or run auto-deploy lock release --env lab"
    )


def deploy_web(rig: Rig, *, lock_wait: float = 0.0, lock_ttl: float = 30.0) -> deploy.Report:
    path = rig.compose("web.yml", {"web": IMAGE})
    options = DeployOptions(stack="auto", compose_files=[path], timeout=10)
    return deploy.deploy(ENV, options, rig.material, rig.context(lock_wait=lock_wait, lock_ttl=lock_ttl))


def test_a_held_lock_refuses_the_deploy_at_once_with_lock_wait_0(rig: Rig) -> None:
    holder = hold(rig)

    with pytest.raises(LockHeldError) as err:
        deploy_web(rig)

    assert str(err.value) == f"{held_message(holder)} (waited 0 s)"
    assert err.value.exit_code == EXIT_REFUSED
    assert (err.value.holder.owner, err.value.holder.purpose, err.value.holder.job_url) == (
        RIVAL,
        "switch to green",
        RIVAL_JOB,
    )
    assert not any(line.startswith("waiting up to") for line in rig.said())
    assert rig.runner.calls == [] and rig.connector.calls == []
    assert rig.state.lock_status(ENV).owner == RIVAL  # type: ignore[union-attr]  # ours did not release theirs
    assert rig.kinds() == ["created", "locked"]


def test_a_held_lock_is_waited_for_up_to_lock_wait(rig: Rig) -> None:
    holder = hold(rig)
    started = time.monotonic()

    with pytest.raises(LockHeldError) as err:
        deploy_web(rig, lock_wait=0.3)

    assert 0.3 <= time.monotonic() - started < 3
    assert str(err.value) == f"{held_message(holder)} (waited 0.3 s)"
    assert f"waiting up to 0.3 s for the lock: {held_message(holder)}" in rig.said()
    assert rig.runner.calls == [] and rig.connector.calls == []
    assert rig.kinds() == ["created", "locked"]


def test_the_deploy_goes_ahead_once_the_holder_releases(rig: Rig) -> None:
    holder = hold(rig)
    rig.runner.on("stack", "deploy", then=appears(rig.blue, "auto_web", IMAGE, "running", sid="s1"))
    release = threading.Timer(0.2, lambda: rig.rival.release_lock(ENV, owner=RIVAL))
    release.start()
    try:
        report = deploy_web(rig, lock_wait=10)
    finally:
        release.cancel()

    assert report.result == "converged"
    assert f"waiting up to 10 s for the lock: {held_message(holder)}" in rig.said()
    assert rig.kinds() == ["created", "locked", "unlocked", "locked", "deployed", "unlocked"]
    assert rig.state.lock_status(ENV) is None


def test_the_expired_lock_of_a_crashed_holder_is_taken_over(rig: Rig) -> None:
    hold(rig, ttl=1)  # the holder "crashes": it never renews nor releases
    rig.runner.on("stack", "deploy", then=appears(rig.blue, "auto_web", IMAGE, "running", sid="s1"))

    report = deploy_web(rig, lock_wait=10)

    assert report.result == "converged"
    ours = [e for e in rig.state.history(ENV) if e["kind"] == "locked"][0]
    assert ours["detail"]["took_over_expired_from"] == RIVAL
    assert ours["detail"]["owner"].startswith(f"{ACTOR}@")
    assert rig.state.lock_status(ENV) is None


def test_a_lock_taken_away_mid_deploy_is_warned_about_but_the_deploy_finishes(rig: Rig) -> None:
    """An operator forces the lock away and someone else takes it while the deploy waits. The deploy is not
    stopped: its heartbeat and its release warn, and the other holder keeps the lock."""
    svc = service("auto_web", IMAGE, sid="s1", version=1)
    frames = [(svc, [task("s1-t1", svc, "starting", age=0)])] * 12 + [(svc, [task("s1-t1", svc)])]

    def steal(_command: object) -> None:
        rig.rival.release_lock(ENV, force=True, actor="ops")
        hold(rig, purpose="maintenance")
        rig.blue.script("auto_web", *frames)

    rig.runner.on("stack", "deploy", then=steal)

    report = deploy_web(rig, lock_ttl=1.5)  # heartbeat every 0.5 s; the wait takes about 1.2 s

    assert report.result == "converged" and report.recorded is True
    holder = rig.state.lock_status(ENV)
    assert holder is not None and holder.owner == RIVAL
    said = rig.said()
    renewal = [line for line in said if line.startswith("warning: could not renew the lock: ")]
    assert renewal, said
    assert renewal[0].startswith(
        f"warning: could not renew the lock: environment lab is locked by {RIVAL} for maintenance"
    )
    (release,) = [line for line in said if line.startswith("warning: could not release the lock")]
    assert release.startswith(
        "warning: could not release the lock (it expires in 1.5 s): "
        f"environment lab is locked by {RIVAL} for maintenance"
    )
    assert rig.kinds() == ["created", "locked", "lock_forced", "locked", "deployed"]


def test_held_yields_the_owner_and_releases_when_the_block_raises(rig: Rig) -> None:
    inside: list[Lock | None] = []

    with (
        pytest.raises(RuntimeError, match="^boom$"),
        lock.held(rig.state, ENV, purpose="test", actor="carol", ttl=30) as owner,
    ):
        inside.append(rig.rival.lock_status(ENV))
        raise RuntimeError("boom")

    (seen,) = inside
    assert seen is not None and (seen.owner, seen.purpose, seen.actor) == (owner, "test", "carol")
    assert owner.startswith("carol@")
    assert rig.state.lock_status(ENV) is None
    (unlocked,) = [e for e in rig.state.history(ENV) if e["kind"] == "unlocked"]
    assert unlocked["detail"]["owner"] == owner


def test_held_only_warns_when_the_state_service_is_gone_at_release(rig: Rig) -> None:
    session = requests.Session()
    session.trust_env = False
    state = StateClient(rig.state_server.url, token=TOKEN, retries=0, sleep=no_sleep, session=session)
    said: list[str] = []

    with lock.held(state, ENV, purpose="test", actor="carol", ttl=30, say=said.append):
        rig.state_server.stop()
        session.close()  # the service's process is gone, and its keep-alive connections with it

    assert said == [
        f"warning: could not release the lock (it expires in 30 s): environment-state service at {state.base_url} "
        "unreachable after 1 attempts (last: ConnectionError): check AUTO_STATE_URL and that the service is up"
    ]


def test_held_with_an_injected_clock_waits_without_sleeping(rig: Rig) -> None:
    holder = hold(rig)
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    with (
        pytest.raises(LockHeldError) as err,
        lock.held(rig.state, ENV, purpose="test", actor="carol", wait=2.5, sleep=sleep, clock=lambda: now[0]),
    ):
        pytest.fail("the lock was acquired although somebody else holds it")

    assert slept == [1.0, 1.0, 0.5]  # at most a second between attempts, never past the deadline
    assert str(err.value) == f"{held_message(holder)} (waited 2.5 s)"


def test_a_deploy_that_waited_for_a_switch_goes_to_the_new_live_colour(rig: Rig) -> None:
    """The live colour is read again once the lock is held: waiting for a switch must not deploy to the old one."""
    hold(rig)
    rig.runner.on(
        "stack", "deploy", host=HOSTS["green"], then=appears(rig.green, "auto_web", IMAGE, "running", sid="g1")
    )

    def switch_then_release() -> None:
        rig.rival.switch(ENV, "blue", "green", actor="bob")
        rig.rival.release_lock(ENV, owner=RIVAL)

    finish = threading.Timer(0.2, switch_then_release)
    finish.start()
    try:
        report = deploy_web(rig, lock_wait=10)
    finally:
        finish.cancel()

    assert (report.result, report.colour, report.manager) == ("converged", "green", HOSTS["green"])
    assert [c.env["DOCKER_HOST"] for c in rig.runner.calls] == [HOSTS["green"]]
    assert rig.blue.requests == []
    assert [s.name for s in rig.state.get_environment(ENV).clusters["green"].stacks] == ["auto"]
