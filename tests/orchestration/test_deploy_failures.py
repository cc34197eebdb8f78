"""deploy() when it goes wrong: the CLI fails, tasks crash, Swarm rolls back, time runs out, the engine
is down. Each ends with an exact exception and message, the lock released and nothing half-recorded."""

from __future__ import annotations

import pytest

from deployer import deploy
from deployer.deploy import DeployOptions, OperationFailed
from deployer.errors import EXIT_NOT_CONVERGED, ConfigError, DockerUnavailableError, NotConvergedError
from tests.orchestration.engine_api import service, task, update_status
from tests.orchestration.harness import ENV, HOSTS, Rig, appears

IMAGE_1 = "auto-lab/web:1"
IMAGE_2 = "auto-lab/web:2"
CRASH = "task: non-zero exit (3)"
LEFT = "auto_web left as they are (use --rollback-on-failure or auto-deploy rollback)"


def crash_loop(rig: Rig, name: str, image: str, sid: str) -> None:
    """Service ``name`` appears and its tasks keep failing: one, then three failed tasks."""
    svc = service(name, image, sid=sid, version=1)
    failed = [task(f"{sid}-t{i}", svc, "failed", desired="shutdown", age=4.0 - i, err=CRASH) for i in (1, 2, 3)]
    rig.blue.script(name, (svc, [task(f"{sid}-t1", svc, "starting", age=0)]), (svc, failed[:1]), (svc, failed))


def existing_v1(rig: Rig) -> dict:
    """auto_web runs IMAGE_1 after an earlier, completed update; returns its inspect answer."""
    old = service(
        "auto_web",
        IMAGE_1,
        sid="s1",
        version=10,
        update=update_status("completed", started="2026-11-24T10:00:00.000000000Z"),
    )
    rig.blue.script("auto_web", (old, [task("s1-old", old)]))
    return old


def run(rig: Rig, *, timeout: float = 10, rollback: bool = False, services: dict[str, str] | None = None) -> None:
    path = rig.compose("web.yml", services or {"web": IMAGE_2})
    options = DeployOptions(stack="auto", compose_files=[path], timeout=timeout, rollback_on_failure=rollback)
    deploy.deploy(ENV, options, rig.material, rig.context())


def assert_released_and_not_recorded(rig: Rig) -> None:
    assert rig.state.lock_status(ENV) is None
    assert rig.kinds() == ["created", "locked", "unlocked"]
    assert rig.state.deployments(ENV) == []
    assert rig.state.get_environment(ENV).clusters["blue"].stacks == ()


def assert_released_and_recorded_as(rig: Rig, result: str, services: list[dict[str, object]]) -> None:
    """A deploy that ran and did not converge: recorded with how it ended and its services, the lock released;
    only a succeeded deploy updates the stack."""
    assert rig.state.lock_status(ENV) is None
    assert rig.kinds() == ["created", "locked", "deployed", "unlocked"]
    (record,) = rig.state.deployments(ENV)
    assert (record["result"], record["services"]) == (result, services)
    assert rig.state.get_environment(ENV).clusters["blue"].stacks == ()


def test_the_cli_failing_is_a_config_error_and_nothing_is_waited_for(rig: Rig) -> None:
    output = (
        "Creating network auto_default\n"
        "failed to create service auto_web: Error response from daemon: rpc error: code = InvalidArgument "
        "desc = ContainerSpec: image reference must be provided\n\n"
    )
    rig.runner.on("stack", "deploy", returncode=1, output=output)

    with pytest.raises(ConfigError) as err:
        run(rig)

    assert str(err.value) == (
        "docker stack deploy failed (failed to create service auto_web: Error response from daemon: rpc error: "
        "code = InvalidArgument desc = ContainerSpec: image reference must be provided): check the compose files"
    )
    assert err.value.exit_code == 2
    assert "docker: Creating network auto_default" in rig.said()
    # The snapshot before the deploy, and no poll after it.
    assert [r.path for r in rig.blue.requests if r.path.startswith("/services")] == ["/services/auto_web"]
    assert_released_and_not_recorded(rig)


def test_a_new_service_that_keeps_crashing_is_left_without_rollback(rig: Rig) -> None:
    rig.runner.on("stack", "deploy", then=lambda _c: crash_loop(rig, "auto_web", IMAGE_2, "s1"))

    with pytest.raises(OperationFailed) as err:
        run(rig)

    message = f"deploy of auto failed: auto_web: tasks keep failing (3 failed; last: {CRASH}) (0/1 running); {LEFT}"
    assert str(err.value) == message
    assert err.value.exit_code == EXIT_NOT_CONVERGED
    assert isinstance(err.value, NotConvergedError)
    report = err.value.report
    assert (report.result, report.message, report.rollback, report.recorded) == ("failed", message, [], True)
    assert len(rig.runner.calls) == 1  # no rollback was run
    assert_released_and_recorded_as(rig, "failed", [{"name": "web", "image": IMAGE_2, "replicas": 1}])


def test_a_new_service_that_keeps_crashing_is_removed_with_rollback_on_failure(rig: Rig) -> None:
    rig.runner.on("stack", "deploy", then=lambda _c: crash_loop(rig, "auto_web", IMAGE_2, "s1"))
    rig.runner.on("service", "rm", then=lambda _c: rig.blue.script("auto_web", (None, [])))

    with pytest.raises(OperationFailed) as err:
        run(rig, rollback=True)

    assert str(err.value) == (
        f"deploy of auto failed: auto_web: tasks keep failing (3 failed; last: {CRASH}) (0/1 running); "
        "rolled back to the previous version"
    )
    deploy_call, remove_call = rig.runner.calls
    assert remove_call.argv == ("docker", "service", "rm", "auto_web")
    assert remove_call.env == deploy_call.env  # the same engine, the same private TLS directory
    report = err.value.report
    assert report.result == "rolled-back"
    assert [(r["service"], r["phase"], r["detail"]) for r in report.rollback] == [
        ("auto_web", "converged", "removed (created by the failed deploy)")
    ]
    assert "removing services this deploy created: auto_web (exit 0)" in rig.said()
    assert "== rolling back 1 service(s)" in rig.said()
    assert_released_and_recorded_as(rig, "rolled_back", [{"name": "web", "image": IMAGE_2, "replicas": 1}])


def test_a_paused_update_is_rolled_back_with_docker_service_rollback(rig: Rig) -> None:
    old = existing_v1(rig)
    why = "update paused due to failure or early termination of task s1-new"
    paused = service("auto_web", IMAGE_2, sid="s1", version=11, update=update_status("paused", why))
    rig.runner.on(
        "stack",
        "deploy",
        then=lambda _c: rig.blue.script(
            "auto_web", (paused, [task("s1-old", old), task("s1-new", paused, "failed", desired="shutdown", err=CRASH)])
        ),
    )
    rolling = service("auto_web", IMAGE_1, sid="s1", version=12, update=update_status("rollback_started"))
    rolled = service("auto_web", IMAGE_1, sid="s1", version=13, update=update_status("rollback_completed"))
    rig.runner.on(
        "service",
        "rollback",
        then=lambda _c: rig.blue.script("auto_web", (rolling, [task("s1-old", old)]), (rolled, [task("s1-old", old)])),
    )

    with pytest.raises(OperationFailed) as err:
        run(rig, rollback=True)

    assert (
        str(err.value)
        == f"deploy of auto failed: auto_web: update paused: {why} (0/1 running); rolled back to the previous version"
    )
    assert [c.argv for c in rig.runner.calls][1] == ("docker", "service", "rollback", "--detach", "auto_web")
    assert rig.runner.calls[1].env["DOCKER_HOST"] == HOSTS["blue"]
    report = err.value.report
    assert report.result == "rolled-back"
    assert [(r["phase"], r["detail"], r["image"]) for r in report.rollback] == [("converged", "rolled back", IMAGE_1)]
    assert "auto_web: docker service rollback (exit 0)" in rig.said()
    assert "auto_web: 1/1 running, rolling back (rollback_started)" in rig.said()
    assert_released_and_recorded_as(rig, "rolled_back", [{"name": "web", "image": IMAGE_2, "replicas": 1}])


def test_swarm_rolling_back_by_itself_is_waited_for_and_still_fails(rig: Rig) -> None:
    """docker/cli#6752: the CLI exits 0 after Swarm rolled back; the deployer must not."""
    old = existing_v1(rig)
    why = "update rolled back due to failure or early termination of task s1-new"
    rolling = service("auto_web", IMAGE_1, sid="s1", version=12, update=update_status("rollback_started", why))
    rolled = service("auto_web", IMAGE_1, sid="s1", version=13, update=update_status("rollback_completed", why))
    rig.runner.on(
        "stack",
        "deploy",
        then=lambda _c: rig.blue.script("auto_web", (rolling, [task("s1-old", old)]), (rolled, [task("s1-old", old)])),
    )

    with pytest.raises(OperationFailed) as err:
        run(rig)  # no --rollback-on-failure: Swarm's failure_action did it

    assert str(err.value) == (
        f"deploy of auto failed: auto_web: Swarm rolled the update back (rollback_started): {why} (0/1 running); "
        "Swarm rolled back to the previous version"
    )
    assert len(rig.runner.calls) == 1  # the deployer ran no rollback of its own
    assert err.value.report.result == "rolled-back"
    assert "auto_web: Swarm is rolling back by itself; waiting for it to finish" in rig.said()
    # Recorded with the image Swarm runs once its own rollback finished.
    assert_released_and_recorded_as(rig, "rolled_back", [{"name": "web", "image": IMAGE_1, "replicas": 1}])


def test_a_timeout_leaves_the_service_and_says_how_to_roll_back(rig: Rig) -> None:
    rig.runner.on("stack", "deploy", then=appears(rig.blue, "auto_web", IMAGE_2, "starting", sid="s1"))

    with pytest.raises(OperationFailed) as err:
        run(rig, timeout=1.0)

    assert (
        str(err.value)
        == f"deploy of auto did not converge within 1 s: auto_web: starting; task starting (0/1 running); {LEFT}"
    )
    assert err.value.report.result == "timed-out"
    assert 1.0 <= err.value.report.duration_seconds < 5
    assert len(rig.runner.calls) == 1
    assert_released_and_recorded_as(rig, "timed_out", [{"name": "web", "image": IMAGE_2, "replicas": 1}])


def test_a_rollback_that_does_not_finish_either_is_reported_incomplete(rig: Rig) -> None:
    old = existing_v1(rig)
    updating = service("auto_web", IMAGE_2, sid="s1", version=11, update=update_status("updating"))
    rig.runner.on(
        "stack", "deploy", then=lambda _c: rig.blue.script("auto_web", (updating, [task("s1-old", old)]))
    )  # fmt: skip
    stuck = service("auto_web", IMAGE_1, sid="s1", version=12, update=update_status("rollback_started"))
    rig.runner.on("service", "rollback", then=lambda _c: rig.blue.script("auto_web", (stuck, [task("s1-old", old)])))

    with pytest.raises(OperationFailed) as err:
        run(rig, timeout=1.0, rollback=True)

    assert str(err.value) == (
        "deploy of auto did not converge within 1 s: auto_web: update updating (0/1 running); "
        "rollback incomplete: auto_web: rolling back (rollback_started) (1/1 running)"
    )
    assert err.value.report.result == "timed-out"
    assert_released_and_recorded_as(rig, "timed_out", [{"name": "web", "image": IMAGE_2, "replicas": 1}])


def test_one_failing_service_of_two_is_recorded_as_failed_and_the_stack_is_not_updated(rig: Rig) -> None:
    def both(_command: object) -> None:
        appears(rig.blue, "auto_web", IMAGE_2, "running", sid="s1")(_command)
        svc = service("auto_worker", IMAGE_2, sid="s2", version=1)
        rig.blue.script(
            "auto_worker",
            (svc, [task(f"s2-t{i}", svc, "rejected", desired="shutdown", err="no such image") for i in (1, 2, 3)]),
        )

    rig.runner.on("stack", "deploy", then=both)

    with pytest.raises(OperationFailed) as err:
        run(rig, services={"web": IMAGE_2, "worker": IMAGE_2})

    assert str(err.value) == (
        "deploy of auto failed: auto_worker: tasks keep failing (3 failed; last: no such image) (0/1 running); "
        "auto_worker left as they are (use --rollback-on-failure or auto-deploy rollback)"
    )
    report = err.value.report
    assert [(s["service"], s["phase"]) for s in report.services] == [
        ("auto_web", "converged"),
        ("auto_worker", "failed"),
    ]
    assert report.recorded is True
    (record,) = rig.state.deployments(ENV)
    assert (record["result"], record["services"]) == (
        "failed",
        [{"name": "web", "image": IMAGE_2, "replicas": 1}, {"name": "worker", "image": IMAGE_2, "replicas": 1}],
    )
    # Only a succeeded deploy updates the stack: the state service still shows nothing deployed.
    assert rig.state.get_environment(ENV).clusters["blue"].stacks == ()
    assert rig.kinds() == ["created", "locked", "deployed", "unlocked"]
    assert rig.state.lock_status(ENV) is None


def test_an_engine_that_is_down_is_refused_before_anything_runs(rig: Rig) -> None:
    rig.blue.stop()

    with pytest.raises(DockerUnavailableError) as err:
        run(rig)

    assert str(err.value) == "the Docker Engine at tcp://10.213.1.2:2376 is unreachable: check the cluster is up"
    assert err.value.exit_code == 4
    assert rig.runner.calls == []
    assert_released_and_not_recorded(rig)
