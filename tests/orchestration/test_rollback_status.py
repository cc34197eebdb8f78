"""rollback() and status() on the live cluster: commands, waiting, the audit trail, failures."""

from __future__ import annotations

from typing import Any

import pytest

from deployer import deploy
from deployer.deploy import OperationFailed
from deployer.errors import EXIT_NOT_CONVERGED, ConfigError, LockHeldError
from tests.orchestration.engine_api import service, task, update_status
from tests.orchestration.harness import ACTOR, ENV, HOSTS, JOB_URL, Rig

IMAGE_1 = "auto-lab/web:1"
IMAGE_2 = "auto-lab/web:2"
NO_PREVIOUS = (
    "Error response from daemon: rpc error: code = FailedPrecondition desc = service auto_web does not have a "
    "previous spec"
)


def updated_stack(rig: Rig) -> dict[str, Any]:
    """Stack auto on blue: web updated from IMAGE_1 to IMAGE_2, worker never updated; another stack beside it."""
    web = service("auto_web", IMAGE_2, sid="s1", version=11, update=update_status("completed"))
    rig.blue.script("auto_web", (web, [task("s1-new", web)]))
    worker = service("auto_worker", IMAGE_1, sid="s2", version=5)
    rig.blue.script("auto_worker", (worker, [task("s2-t1", worker)]))
    theirs = service("other_api", IMAGE_1, sid="s9", version=3)
    rig.blue.script("other_api", (theirs, [task("s9-t1", theirs)]))
    return web


def rolls_back(rig: Rig, name: str, sid: str, *states: str) -> None:
    """On ``docker service rollback``: ``name`` goes back to IMAGE_1 through ``states`` (one per poll)."""
    frames = []
    for index, state in enumerate(states):
        svc = service(name, IMAGE_1, sid=sid, version=12 + index, update=update_status(state))
        frames.append((svc, [task(f"{sid}-back", svc)]))
    rig.runner.on("service", "rollback", then=lambda _c: rig.blue.script(name, *frames))


def rollback_events(rig: Rig) -> list[dict[str, Any]]:
    return [e for e in rig.state.history(ENV) if e["kind"] == "rollback"]


def test_rollback_of_one_service_runs_the_cli_waits_and_records_the_event(rig: Rig) -> None:
    updated_stack(rig)
    rolls_back(rig, "auto_web", "s1", "rollback_started", "rollback_completed")

    report = deploy.rollback(ENV, "auto", "web", rig.material, rig.context(), timeout=10)

    (call,) = rig.runner.calls
    (connection,) = rig.connector.calls
    assert call.argv == ("docker", "service", "rollback", "--detach", "auto_web")
    assert call.env == {"DOCKER_HOST": HOSTS["blue"], "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": connection.cert_dir}
    assert (report.result, report.message, report.colour) == ("rolled-back", "1 service(s) rolled back on blue", "blue")
    assert [(s["service"], s["phase"], s["detail"], s["image"]) for s in report.services] == [
        ("auto_web", "converged", "rolled back", IMAGE_1)
    ]
    assert rig.said()[:2] == ["auto_web: rollback started", "auto_web: 1/1 running, rolling back (rollback_started)"]
    assert rig.kinds() == ["created", "locked", "rollback", "unlocked"]
    (event,) = rollback_events(rig)
    assert event["actor"] == ACTOR
    assert {k: event["detail"][k] for k in ("stack", "colour", "message", "result", "job_url")} == {
        "stack": "auto",
        "colour": "blue",
        "message": "1 service(s) rolled back on blue",
        "result": "rolled_back",
        "job_url": JOB_URL,
    }
    assert rig.state.lock_status(ENV) is None
    assert rig.blue.writes == []


def test_rollback_of_a_stack_rolls_back_each_of_its_services_only(rig: Rig) -> None:
    updated_stack(rig)
    rig.runner.on("service", "rollback", then=lambda command: rolled_back(rig, command.argv[-1]))

    report = deploy.rollback(ENV, "auto", None, rig.material, rig.context(), timeout=10)

    assert rig.runner.argvs == [
        ("docker", "service", "rollback", "--detach", "auto_web"),
        ("docker", "service", "rollback", "--detach", "auto_worker"),
    ]
    assert report.message == "2 service(s) rolled back on blue"


def rolled_back(rig: Rig, name: str) -> None:
    sid = {"auto_web": "s1", "auto_worker": "s2"}[name]
    svc = service(name, IMAGE_1, sid=sid, version=20, update=update_status("rollback_completed"))
    rig.blue.script(name, (svc, [task(f"{sid}-back", svc)]))


def test_rollback_the_cli_refuses_is_a_config_error_and_an_audit_event(rig: Rig) -> None:
    updated_stack(rig)
    rig.runner.on("service", "rollback", returncode=1, output=f"{NO_PREVIOUS}\n")

    with pytest.raises(ConfigError) as err:
        deploy.rollback(ENV, "auto", "web", rig.material, rig.context(), timeout=10)

    assert str(err.value) == f"cannot roll back auto_web: {NO_PREVIOUS}"
    assert err.value.exit_code == 2
    (event,) = rollback_events(rig)
    assert (event["detail"]["result"], event["detail"]["message"]) == (
        "failed",
        f"cannot roll back auto_web: {NO_PREVIOUS}",
    )
    assert rig.state.lock_status(ENV) is None


def test_rollback_that_does_not_converge_fails_with_exit_3(rig: Rig) -> None:
    updated_stack(rig)
    rolls_back(rig, "auto_web", "s1", "rollback_started")

    with pytest.raises(OperationFailed) as err:
        deploy.rollback(ENV, "auto", "web", rig.material, rig.context(), timeout=0.5)

    message = "rollback of auto did not converge: auto_web: rolling back (rollback_started) (1/1 running)"
    assert str(err.value) == message
    assert err.value.exit_code == EXIT_NOT_CONVERGED
    assert (err.value.report.result, err.value.report.message) == ("failed", message)
    (event,) = rollback_events(rig)
    assert (event["detail"]["result"], event["detail"]["message"]) == ("failed", message)
    assert rig.state.lock_status(ENV) is None


def test_rollback_of_a_paused_rollback_fails_at_once(rig: Rig) -> None:
    updated_stack(rig)
    rolls_back(rig, "auto_web", "s1", "rollback_started", "rollback_paused")

    with pytest.raises(OperationFailed) as err:
        deploy.rollback(ENV, "auto", "web", rig.material, rig.context(), timeout=30)

    assert str(err.value) == "rollback of auto did not converge: auto_web: rollback paused (1/1 running)"
    assert err.value.report.duration_seconds < 5


@pytest.mark.parametrize(
    ("stack", "svc", "message"),
    [
        ("auto", "nope", "service nope is not in stack auto on blue: known: auto_web, auto_worker"),
        ("empty", None, "stack empty has no services on blue: nothing to roll back"),
    ],
)
def test_rollback_of_what_is_not_there(rig: Rig, stack: str, svc: str | None, message: str) -> None:
    updated_stack(rig)

    with pytest.raises(ConfigError) as err:
        deploy.rollback(ENV, stack, svc, rig.material, rig.context(), timeout=10)

    assert str(err.value) == message
    assert rig.runner.calls == []
    (event,) = rollback_events(rig)
    assert event["detail"]["result"] == "failed"
    assert rig.state.lock_status(ENV) is None


def test_rollback_while_somebody_holds_the_lock_touches_nothing(rig: Rig) -> None:
    updated_stack(rig)
    holder = rig.rival.acquire_lock(
        ENV, owner="bob@runner-7:81:0badcafe", purpose="switch to green", ttl=60, actor="bob"
    )

    with pytest.raises(LockHeldError) as err:
        deploy.rollback(ENV, "auto", "web", rig.material, rig.context(lock_wait=0), timeout=10)

    assert str(err.value) == (
        f"environment lab is locked by bob@runner-7:81:0badcafe for switch to green until {holder.expires_at} "
        "(actor bob): wait or run auto-deploy lock release --env lab (waited 0 s)"
    )
    assert rig.runner.calls == [] and rig.connector.calls == []
    assert rollback_events(rig) == []
    assert rig.state.lock_status(ENV).owner == "bob@runner-7:81:0badcafe"  # type: ignore[union-attr]


def test_status_of_a_healthy_stack(rig: Rig) -> None:
    updated_stack(rig)

    report = deploy.status(ENV, "auto", rig.material, rig.context())

    assert (report.result, report.message, report.colour, report.manager) == (
        "healthy",
        "2/2 service(s) fully running",
        "blue",
        HOSTS["blue"],
    )
    assert [
        (s["service"], s["phase"], s["running"], s["desired"], s["detail"], s["image"]) for s in report.services
    ] == [  # fmt: skip
        ("auto_web", "converged", 1, 1, "last update completed", IMAGE_2),
        ("auto_worker", "converged", 1, 1, "never updated", IMAGE_1),
    ]
    assert rig.kinds() == ["created"]  # status takes no lock and records nothing
    assert rig.runner.calls == [] and rig.blue.writes == []


def test_status_of_a_degraded_stack(rig: Rig) -> None:
    updated_stack(rig)
    worker = service("auto_worker", IMAGE_1, sid="s2", version=5, replicas=2)
    rig.blue.script(
        "auto_worker", (worker, [task("s2-t1", worker), task("s2-t2", worker, "failed", desired="shutdown")])
    )

    report = deploy.status(ENV, "auto", rig.material, rig.context())

    assert (report.result, report.message) == ("degraded", "1/2 service(s) fully running")
    assert [(s["service"], s["phase"], s["running"], s["desired"]) for s in report.services] == [
        ("auto_web", "converged", 1, 1),
        ("auto_worker", "degraded", 1, 2),
    ]


def test_status_of_an_unknown_stack(rig: Rig) -> None:
    updated_stack(rig)
    with pytest.raises(ConfigError) as err:
        deploy.status(ENV, "nope", rig.material, rig.context())
    assert str(err.value) == "stack nope has no services on blue (tcp://10.213.1.2:2376): check the name"
