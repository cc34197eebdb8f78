"""switch() when it goes wrong. Before traffic moves, a failure leaves the live colour serving, untouched;
after, traffic goes back to the old colour. Either way: the exact error, the lock released, the live colour
in the state service unchanged (unless somebody else changed it) and a ``switch`` audit event that failed."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from deployer.deploy import OperationFailed
from deployer.errors import (
    EXIT_NOT_CONVERGED,
    EXIT_REFUSED,
    ConfigError,
    DockerUnavailableError,
    HAProxyError,
    LockHeldError,
    NotConvergedError,
    StateConflictError,
)
from tests.orchestration.engine_api import service, task
from tests.orchestration.harness import ENV, Rig
from tests.orchestration.switching import IMAGE_1, IMAGE_2, release, replays_on_green, run_switch

REFUSED = "Permission denied\n"
BACK_TO_BLUE = ["set server app/blue state ready", "set server app/green state maint"]
UP_TO_TRAFFIC = [
    "set server app/green state drain",
    "set server app/green state ready",
    "set server app/blue state drain",
]


def switch_events(rig: Rig) -> list[dict[str, Any]]:
    return [e for e in rig.state.history(ENV) if e["kind"] == "switch"]


def assert_failed_and_released(rig: Rig, message: str, *, live: str = "blue") -> None:
    (audit,) = switch_events(rig)
    assert (audit["detail"]["result"], audit["detail"]["message"], audit["detail"]["colour"]) == (
        "failed",
        message,
        "green",
    )
    assert rig.state.lock_status(ENV) is None
    assert rig.state.get_environment(ENV).live_colour == live


def test_a_lost_compare_and_set_puts_traffic_back(rig: Rig) -> None:
    """Somebody flips the live colour between our read and our write: 409, a clear error, traffic back."""
    release(rig)
    replays_on_green(rig)
    rig.haproxy.hooks["set server app/blue state maint"] = lambda: rig.rival.switch(
        ENV, "blue", "green", actor="bob", reason="manual failover"
    )

    with pytest.raises(StateConflictError) as err:
        run_switch(rig)

    message = "live colour is green, not blue: someone switched first; re-read and retry"
    assert str(err.value) == message
    assert err.value.exit_code == EXIT_REFUSED
    assert rig.haproxy.set_commands == [*UP_TO_TRAFFIC, "set server app/blue state maint", *BACK_TO_BLUE]
    assert rig.haproxy.admin_states() == {"blue": "ready", "green": "maint"}
    assert "switch failed after traffic moved: sending traffic back to blue" in rig.said()
    switched = [e for e in rig.state.history(ENV) if e["kind"] == "switched"]
    assert [(e["actor"], e["detail"]["reason"]) for e in switched] == [("bob", "manual failover")]  # theirs only
    assert_failed_and_released(rig, message, live="green")


def test_haproxy_refusing_to_drain_the_live_colour_puts_traffic_back(rig: Rig) -> None:
    release(rig)
    replays_on_green(rig)
    rig.haproxy.refuse("set server app/blue state drain", REFUSED)

    with pytest.raises(HAProxyError) as err:
        run_switch(rig)

    message = "HAProxy refused 'set server app/blue state drain': Permission denied"
    assert str(err.value) == message
    assert err.value.exit_code == EXIT_REFUSED
    assert rig.haproxy.set_commands == [*UP_TO_TRAFFIC, *BACK_TO_BLUE]
    assert rig.haproxy.admin_states() == {"blue": "ready", "green": "maint"}
    assert_failed_and_released(rig, message)


def test_haproxy_refusing_the_health_check_stage_moves_no_traffic(rig: Rig) -> None:
    release(rig)
    replays_on_green(rig)
    rig.haproxy.refuse("set server app/green state drain", "No such server.\n")

    with pytest.raises(HAProxyError) as err:
        run_switch(rig)

    message = "HAProxy refused 'set server app/green state drain': No such server."
    assert str(err.value) == message
    assert rig.haproxy.set_commands == ["set server app/green state drain"]
    assert rig.haproxy.admin_states() == {"blue": "ready", "green": "maint"}
    assert "switch failed after traffic moved: sending traffic back to blue" not in rig.said()
    assert_failed_and_released(rig, message)


def test_an_idle_colour_failing_its_health_check_is_put_back_in_maint(rig: Rig) -> None:
    release(rig)
    replays_on_green(rig)
    rig.haproxy.servers["green"].checks = ["L7STS"]

    with pytest.raises(NotConvergedError) as err:
        run_switch(rig, timeout=1.0)

    message = (
        "the idle colour green fails HAProxy's health check (app/green is not healthy after 1 s (status DOWN, "
        "check L7STS): check its /health); traffic not moved"
    )
    assert str(err.value) == message
    assert err.value.exit_code == EXIT_NOT_CONVERGED
    assert rig.haproxy.set_commands == ["set server app/green state drain", "set server app/green state maint"]
    assert rig.haproxy.admin_states() == {"blue": "ready", "green": "maint"}
    assert_failed_and_released(rig, message)


def test_an_idle_cluster_that_is_down_is_refused_before_anything_moves(rig: Rig) -> None:
    release(rig)
    rig.green.stop()

    with pytest.raises(DockerUnavailableError) as err:
        run_switch(rig)

    message = "the Docker Engine at tcp://10.213.2.2:2376 is unreachable: check the cluster is up"
    assert str(err.value) == message
    assert err.value.exit_code == EXIT_REFUSED
    assert rig.haproxy.set_commands == [] and rig.runner.calls == []  # HAProxy read, never changed
    assert rig.haproxy.admin_states() == {"blue": "ready", "green": "maint"}
    assert_failed_and_released(rig, message)


def test_a_replay_that_fails_on_the_idle_colour_moves_no_traffic(rig: Rig) -> None:
    release(rig)
    svc = service("auto_web", IMAGE_1, sid="g1", version=1)
    crashes = [task(f"g1-t{i}", svc, "failed", desired="shutdown", err="task: non-zero exit (1)") for i in (1, 2, 3)]
    rig.runner.on("stack", "deploy", then=lambda _c: rig.green.script("auto_web", (svc, crashes)))

    with pytest.raises(OperationFailed) as err:
        run_switch(rig)

    message = (
        "deploy of auto failed: auto_web: tasks keep failing (3 failed; last: task: non-zero exit (1)) (0/1 running); "
        "auto_web left as they are (use --rollback-on-failure or auto-deploy rollback)"
    )
    assert str(err.value) == message
    assert err.value.exit_code == EXIT_NOT_CONVERGED
    assert rig.haproxy.set_commands == []  # read, never changed
    assert_failed_and_released(rig, message)


def test_an_idle_colour_that_does_not_converge_moves_no_traffic(rig: Rig) -> None:
    release(rig, "blue", IMAGE_1, sid="b1")
    release(rig, "green", IMAGE_2, sid="g2")
    svc = service("auto_web", IMAGE_2, sid="g2", version=1)
    rig.green.script("auto_web", (svc, [task("g2-t1", svc, "failed", desired="shutdown")]))

    with pytest.raises(NotConvergedError) as err:
        run_switch(rig, timeout=0.5)

    message = "the idle colour green did not converge: auto_web: updating; traffic not moved"
    assert str(err.value) == message
    assert rig.haproxy.set_commands == []  # read, never changed
    assert_failed_and_released(rig, message)


def test_a_live_colour_that_does_not_drain_in_time_gets_the_traffic_back(rig: Rig) -> None:
    release(rig)
    replays_on_green(rig)
    rig.haproxy.servers["blue"].sessions = [3]

    with pytest.raises(HAProxyError) as err:
        run_switch(rig, drain_timeout=0.3)

    message = "app/blue still has 3 session(s) after 0.3 s"
    assert str(err.value) == message
    assert rig.haproxy.set_commands == [*UP_TO_TRAFFIC, *BACK_TO_BLUE]
    assert rig.haproxy.admin_states() == {"blue": "ready", "green": "maint"}
    assert_failed_and_released(rig, message)


def test_haproxy_going_away_mid_switch_reports_the_first_failure_and_warns_about_the_restore(rig: Rig) -> None:
    release(rig)
    replays_on_green(rig)
    rig.haproxy.hooks["set server app/blue state drain"] = rig.haproxy.stop  # it answers this one, then is gone
    path = rig.haproxy.path

    with pytest.raises(HAProxyError) as err:
        run_switch(rig)

    message = f"HAProxy admin socket {path} is not answering: is HAProxy running?"
    assert str(err.value) == message
    assert f"warning: could not put traffic back on blue: {message}" in rig.said()
    assert rig.haproxy.set_commands == UP_TO_TRAFFIC  # nothing reached HAProxy afterwards
    assert_failed_and_released(rig, message)


def test_a_switch_while_somebody_holds_the_lock_touches_nothing(rig: Rig) -> None:
    release(rig)
    holder = rig.rival.acquire_lock(ENV, owner="bob@runner-7:81:0badcafe", purpose="deploy api to live", ttl=60)

    with pytest.raises(LockHeldError) as err:
        run_switch(rig)

    assert str(err.value) == (
        f"environment lab is locked by bob@runner-7:81:0badcafe for deploy api to live until {holder.expires_at}: "
        "wait or run auto-deploy lock release --env lab (waited 0 s)"
    )
    assert rig.haproxy.commands == [] and rig.runner.calls == [] and rig.connector.calls == []
    assert switch_events(rig) == []
    assert rig.state.lock_status(ENV).owner == "bob@runner-7:81:0badcafe"  # type: ignore[union-attr]
    assert rig.state.get_environment(ENV).live_colour == "blue"


def test_an_invalid_target_colour_is_refused_before_the_lock(rig: Rig) -> None:
    with pytest.raises(ConfigError) as err:
        run_switch(rig, to="purple")
    assert str(err.value) == "invalid colour 'purple': use blue or green"
    assert rig.kinds() == ["created"] and rig.haproxy.commands == []


def test_a_switch_that_waited_for_another_switch_does_not_switch_back(rig: Rig) -> None:
    """Both asked for "the idle colour" (green) while blue was live; the one that waited finds green live."""
    release(rig)
    rig.rival.acquire_lock(ENV, owner="bob@runner-7:81:0badcafe", purpose="switch to green", ttl=60)

    def other_switch_finishes() -> None:
        rig.rival.switch(ENV, "blue", "green", actor="bob")
        rig.haproxy.servers["green"].admin, rig.haproxy.servers["blue"].admin = "ready", "maint"
        rig.rival.release_lock(ENV, owner="bob@runner-7:81:0badcafe")

    finish = threading.Timer(0.2, other_switch_finishes)
    finish.start()
    try:
        report = run_switch(rig, lock_wait=10)
    finally:
        finish.cancel()

    assert (report.result, report.message) == ("unchanged", "green is already live; HAProxy sends it the traffic")
    assert rig.runner.calls == []  # nothing replayed
    assert rig.haproxy.set_commands == [
        "set server app/green state ready",
        "set server app/blue state drain",
        "set server app/blue state maint",
    ]
    assert rig.state.get_environment(ENV).live_colour == "green"
    assert [e["actor"] for e in rig.state.history(ENV) if e["kind"] == "switched"] == ["bob"]


def test_haproxy_down_is_refused_before_the_replay(rig: Rig) -> None:
    """HAProxy not answering: refused at once (exit 4), before a replay that could only end in the same error."""
    release(rig)
    rig.haproxy.stop()

    with pytest.raises(HAProxyError) as err:
        run_switch(rig)

    message = f"HAProxy admin socket {rig.haproxy.path} is not answering: is HAProxy running?"
    assert str(err.value) == message
    assert err.value.exit_code == EXIT_REFUSED
    assert rig.runner.calls == []  # nothing replayed on the idle colour
    assert_failed_and_released(rig, message)


def test_an_admin_state_a_reload_took_away_is_set_again(rig: Rig) -> None:
    """A reload loads the server-state file saved just before it: it may predate the switch's last command and put
    the new colour back in maint. The switch reads the states back and sets again what was lost."""
    release(rig)
    replays_on_green(rig)

    def reload_with_an_old_state_file() -> None:
        rig.haproxy.servers["green"].admin = "maint"

    rig.haproxy.hooks["set server app/blue state maint"] = reload_with_an_old_state_file

    report = run_switch(rig)

    assert report.result == "switched"
    assert rig.haproxy.admin_states() == {"blue": "maint", "green": "ready"}
    assert rig.haproxy.set_commands[-1] == "set server app/green state ready"
    assert "HAProxy lost the admin state of green (reloaded meanwhile?): setting ready again" in rig.said()


def test_a_reload_during_the_health_wait_does_not_leave_the_idle_colour_in_maint(rig: Rig) -> None:
    """A reload right after the switch put the idle colour in drain loads an older state file: maint, where no
    check runs. The wait for its health puts it back in drain instead of waiting out the timeout."""
    release(rig)
    replays_on_green(rig)
    reloaded: list[bool] = []

    def reload_with_an_old_state_file() -> None:
        if not reloaded and rig.haproxy.servers["green"].admin == "drain":
            reloaded.append(True)
            rig.haproxy.servers["green"].admin = "maint"

    rig.haproxy.hooks["show stat"] = reload_with_an_old_state_file

    report = run_switch(rig)

    assert reloaded and report.result == "switched"
    assert rig.haproxy.set_commands[:3] == [
        "set server app/green state drain",
        "set server app/green state drain",  # again, after the reload took it away
        "set server app/green state ready",
    ]
    assert rig.haproxy.admin_states() == {"blue": "maint", "green": "ready"}
