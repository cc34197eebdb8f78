"""The convergence rules, on Swarm API answers shaped like the Engine's (API 1.41)."""

import pytest

from deployer.converge import (
    DEFAULT_MONITOR_SECONDS,
    MAX_FAILURES,
    UNSCHEDULABLE_GRACE_SECONDS,
    Before,
    assess,
    assess_rollback,
    desired_replicas,
    down_nodes,
    swarm_says,
)

OLD = {"ContainerSpec": {"Image": "auto-lab/web:1"}, "ForceUpdate": 0}
NEW = {"ContainerSpec": {"Image": "auto-lab/web:2"}, "ForceUpdate": 0}
STALE_STATUS = {"State": "completed", "StartedAt": "2026-11-25T06:00:00Z", "Message": "update completed"}


def service(template, *, replicas=2, version=20, update=None):
    svc = {
        "ID": "svc1",
        "Version": {"Index": version},
        "Spec": {"Name": "auto_web", "TaskTemplate": template, "Mode": {"Replicated": {"Replicas": replicas}}},
    }
    if update is not None:
        svc["UpdateStatus"] = update
    return svc


def task(tid, template, state="running", desired="running", err=None, ts="2026-11-25T06:30:00Z"):
    status = {"State": state, "Timestamp": ts}
    if err:
        status["Err"] = err
    return {"ID": tid, "Spec": template, "DesiredState": desired, "Status": status, "NodeID": "n1"}


CREATED = Before("auto_web", exists=False)
EXISTED = Before(
    "auto_web", exists=True, version=10, template=OLD, update_status=STALE_STATUS, task_ids=frozenset({"o1"})
)


def judge(before, svc, tasks, since=None, now=100.0):
    return assess(before, svc, tasks, running_since=since or {}, now=now)


def test_created_service_without_update_status_converges_once_tasks_stay_up() -> None:
    tasks = [task("a", NEW), task("b", NEW)]
    young = judge(CREATED, service(NEW), tasks, since={"a": 100.0, "b": 101.0}, now=103.0)
    assert (young.phase, young.detail) == ("waiting", "checking the tasks stay up (5 s)")
    result = judge(CREATED, service(NEW), tasks, since={"a": 100.0, "b": 101.0}, now=106.0)
    assert (result.phase, result.running, result.desired, result.detail) == ("converged", 2, 2, "converged")
    assert result.image == "auto-lab/web:2" and result.update_state is None


def test_monitor_comes_from_the_update_config() -> None:
    svc = service(NEW, replicas=1)
    svc["Spec"]["UpdateConfig"] = {"Monitor": 2_000_000_000}
    assert judge(CREATED, svc, [task("a", NEW)], since={"a": 100.0}, now=101.9).phase == "waiting"
    assert judge(CREATED, svc, [task("a", NEW)], since={"a": 100.0}, now=102.0).phase == "converged"


def test_created_service_still_starting() -> None:
    result = judge(CREATED, service(NEW), [task("a", NEW), task("b", NEW, state="preparing")])
    assert (result.phase, result.detail) == ("waiting", "starting; task preparing")


def test_update_in_progress_waits_for_swarm() -> None:
    update = {"State": "updating", "StartedAt": "2026-11-25T06:31:00Z"}
    result = judge(EXISTED, service(NEW, update=update), [task("a", NEW), task("b", NEW)])
    assert (result.phase, result.detail) == ("waiting", "update updating, Swarm is monitoring the new tasks")


def test_update_completed_converges() -> None:
    update = {"State": "completed", "StartedAt": "2026-11-25T06:31:00Z"}
    result = judge(
        EXISTED, service(NEW, update=update), [task("a", NEW), task("b", NEW), task("o1", OLD, "shutdown", "shutdown")]
    )
    assert (result.phase, result.update_state) == ("converged", "completed")


def test_stale_update_status_is_not_taken_for_this_update() -> None:
    # Right after `stack deploy`, UpdateStatus is still the previous update's "completed".
    result = judge(EXISTED, service(NEW, update=STALE_STATUS), [task("o1", OLD), task("o2", OLD)])
    assert result.phase == "waiting" and result.running == 0


@pytest.mark.parametrize("state", ["rollback_started", "rollback_paused", "rollback_completed"])
def test_swarm_rollback_is_a_failure(state) -> None:
    update = {"State": state, "StartedAt": "2026-11-25T06:31:00Z", "Message": "update rolled back due to failure"}
    result = judge(EXISTED, service(OLD, update=update), [task("o1", OLD)])
    assert result.phase == "failed"
    assert result.detail == f"Swarm rolled the update back ({state}): update rolled back due to failure"


def test_paused_update_is_a_failure() -> None:
    update = {"State": "paused", "StartedAt": "2026-11-25T06:31:00Z", "Message": "update paused due to failure"}
    result = judge(EXISTED, service(NEW, update=update), [task("a", NEW, "failed", "shutdown")])
    assert (result.phase, result.detail) == ("failed", "update paused: update paused due to failure")


def test_crash_loop_fails_after_max_failures_with_last_error() -> None:
    tasks = [
        task(f"f{i}", NEW, "failed", "shutdown", err=f"task: non-zero exit ({i})", ts=f"2026-11-25T06:3{i}:00Z")
        for i in range(MAX_FAILURES)
    ]
    result = judge(CREATED, service(NEW, replicas=1), [*tasks, task("r", NEW, "running")])
    assert result.phase == "failed"
    assert (
        result.detail == f"tasks keep failing ({MAX_FAILURES} failed; last: task: non-zero exit ({MAX_FAILURES - 1}))"
    )


def test_after_a_failure_survivors_must_settle() -> None:
    tasks = [task("f1", NEW, "failed", "shutdown", err="exit 1"), task("r", NEW)]
    young = judge(EXISTED, service(NEW, replicas=1), tasks, since={"r": 100.0}, now=101.0)
    assert young.phase == "waiting" and "stay up" in young.detail
    settled = judge(EXISTED, service(NEW, replicas=1), tasks, since={"r": 100.0}, now=100.0 + DEFAULT_MONITOR_SECONDS)
    assert settled.phase == "converged"


def test_failures_before_the_deploy_do_not_count() -> None:
    before = Before("auto_web", exists=True, version=20, template=NEW, update_status=None, task_ids=frozenset({"f1"}))
    tasks = [task("f1", NEW, "failed", "shutdown"), task("r1", NEW), task("r2", NEW)]
    result = judge(before, service(NEW), tasks)
    assert (result.phase, result.changed, result.detail) == ("converged", False, "unchanged, running")


def test_old_task_still_meant_to_run_blocks() -> None:
    result = judge(CREATED, service(NEW), [task("a", NEW), task("b", NEW), task("o", OLD)], since={"a": 0, "b": 0})
    assert (result.phase, result.detail) == ("waiting", "1 old task(s) still running")


def test_unchanged_service_ignores_stale_rollback_status() -> None:
    stale = {"State": "rollback_completed", "StartedAt": "2026-11-25T05:00:00Z"}
    before = Before("auto_web", exists=True, version=20, template=OLD, update_status=stale, task_ids=frozenset())
    result = judge(before, service(OLD, update=stale), [task("a", OLD), task("b", OLD)])
    assert result.phase == "converged" and not result.changed


def test_missing_service_fails() -> None:
    assert judge(CREATED, None, []).detail == "service is missing after the deploy"


def test_global_and_unsupported_modes() -> None:
    tasks = [task("a", NEW) | {"NodeID": "n1"}, task("b", NEW) | {"NodeID": "n2"}]
    assert desired_replicas({"Mode": {"Global": {}}}, tasks) == 2
    with pytest.raises(ValueError, match="unsupported service mode"):
        desired_replicas({"Mode": {"ReplicatedJob": {}}}, [])


def test_rollback_waits_for_a_fresh_rollback_completed() -> None:
    before = Before("auto_web", exists=True, version=30, template=NEW, update_status={"State": "paused"})
    svc = service(OLD, update={"State": "paused"})
    assert assess_rollback(before, svc, [task("o", OLD)]).phase == "waiting"
    done = service(OLD, update={"State": "rollback_completed", "StartedAt": "x"})
    result = assess_rollback(before, done, [task("o", OLD), task("p", OLD)])
    assert (result.phase, result.detail, result.image) == ("converged", "rolled back", "auto-lab/web:1")


def test_rollback_of_created_service_is_its_removal() -> None:
    assert assess_rollback(CREATED, service(NEW), []).detail == "being removed"
    assert assess_rollback(CREATED, None, []).phase == "converged"


def test_during_a_rolling_update_swarm_judges_crashes() -> None:
    update = {"State": "updating", "StartedAt": "2026-11-25T06:31:00Z"}
    crashes = [task(f"f{i}", NEW, "failed", "shutdown", err="exit 3") for i in range(MAX_FAILURES)]
    during = judge(EXISTED, service(NEW, update=update), [*crashes, task("o2", OLD)])
    assert during.phase == "waiting"
    done = {"State": "completed", "StartedAt": "2026-11-25T06:31:00Z"}  # failure_action: continue
    after = judge(EXISTED, service(NEW, update=done), crashes)
    assert after.phase == "failed" and after.detail.startswith(f"tasks keep failing ({MAX_FAILURES} failed")


def test_engine_timestamps_with_nanoseconds() -> None:
    from deployer.converge import parse_timestamp

    assert parse_timestamp("2026-11-25T06:30:00.123456789Z") == pytest.approx(1795588200.123456)
    assert parse_timestamp("2026-11-25T06:30:00Z") == 1795588200.0
    assert parse_timestamp("2026-11-25T07:30:00.5+01:00") == 1795588200.5


def test_monitor_window_starts_at_the_tasks_own_running_time() -> None:
    from deployer.converge import Watcher

    watcher = Watcher(api=None, wall=lambda: 1795588210.0)
    watcher.clock_offset = 0.0
    running = task("a", NEW, ts="2026-11-25T06:30:07Z")  # 3 s before our wall clock
    assert watcher._since(running, now=50.0) == 47.0
    assert watcher._since(task("b", NEW, ts="not a time"), now=50.0) == 50.0


# Swarm's answer for a task no node can take (measured on the lab: a host-mode port another stack held).
PORT_HELD = "no suitable node (host-mode port already in use on 1 node)"


@pytest.mark.parametrize(
    "err",
    [
        PORT_HELD,
        "no suitable node (scheduling constraints not satisfied on 1 node)",
        "no suitable node (insufficient resources on 1 node)",
    ],
)
def test_a_task_no_node_can_take_is_named_at_once_and_fails_after_the_grace(err: str) -> None:
    tasks = [task("a", NEW, state="pending", err=err)]
    svc = service(NEW, replicas=1)
    early = assess(CREATED, svc, tasks, running_since={}, now=110.0, pending_since={"a": 100.0})
    assert (early.phase, early.detail) == ("waiting", f"starting; task pending: {err}")
    assert early.line() == f"auto_web: 0/1 running, starting; task pending: {err}"
    late = assess(
        CREATED, svc, tasks, running_since={}, now=100.0 + UNSCHEDULABLE_GRACE_SECONDS, pending_since={"a": 100.0}
    )
    assert (late.phase, late.detail) == ("failed", f"Swarm cannot schedule a task: {err}")


def test_a_pending_task_waiting_for_its_image_or_a_slot_is_not_unschedulable() -> None:
    tasks = [task("a", NEW, state="pending"), task("b", NEW, state="preparing")]
    result = assess(CREATED, service(NEW), tasks, running_since={}, now=1000.0, pending_since={"a": 0.0, "b": 0.0})
    assert (result.phase, result.detail) == ("waiting", "starting; task pending")


def test_swarm_says_the_state_and_its_message_once() -> None:
    assert swarm_says(task("a", NEW, state="rejected", err="No such image: auto-lab/web:9")) == (
        "task rejected: No such image: auto-lab/web:9"
    )
    starting = task("b", NEW, state="starting")
    starting["Status"]["Message"] = "starting"
    assert swarm_says(starting) == "task starting"


def test_a_node_that_died_holding_a_task_is_named() -> None:
    nodes = [
        {"ID": "n1", "Description": {"Hostname": "blue-manager"}, "Status": {"State": "ready"}},
        {"ID": "n2", "Description": {"Hostname": "blue-worker-1"}, "Status": {"State": "down"}},
        {"ID": "n3", "Status": {"State": "disconnected"}},
    ]
    down = down_nodes(nodes)
    assert down == {"n2": "blue-worker-1", "n3": "n3"}
    lost = task("b", NEW, state="running")
    lost["NodeID"] = "n2"
    tasks = [task("a", NEW, state="running"), lost, task("c", NEW, state="pending")]
    result = assess(CREATED, service(NEW, replicas=3), tasks, running_since={}, now=100.0, down=down)
    assert result.phase == "waiting"
    assert result.detail.endswith("; node blue-worker-1 is down")


def test_the_final_message_names_the_node_that_died() -> None:
    down = {"n2": "blue-worker-2"}
    lost = task("b", NEW, state="pending", err="no suitable node (1 node not available for new tasks)")
    lost["NodeID"] = "n2"
    svc = service(NEW, replicas=1)
    result = assess(CREATED, svc, [lost], running_since={}, now=200.0, pending_since={"b": 100.0}, down=down)
    assert (result.phase, result.detail) == (
        "failed",
        "Swarm cannot schedule a task: no suitable node (1 node not available for new tasks); "
        "node blue-worker-2 is down",
    )


def test_tasks_that_end_by_themselves_count_as_failures() -> None:
    """A task Swarm stopped for failing its health check ends "complete" (exit 0) when its process exits 0 on
    SIGTERM: it says "finished", never "unhealthy". Three of them fail a new service, as three crashes do."""
    ended = [task(f"e{i}", NEW, "complete", "shutdown") for i in range(MAX_FAILURES)]
    for t in ended:
        t["Status"].update(Message="finished", ContainerStatus={"ExitCode": 0})
    result = judge(CREATED, service(NEW, replicas=1), [*ended, task("a", NEW, "starting")])
    assert result.phase == "failed"
    assert result.detail == (
        "tasks keep failing (3 failed; last: the task ended (exit 0): its container stopped by itself or failed its "
        "health check)"
    )
    # An old task shut down by an update is no failure, whatever its state.
    update = {"State": "completed", "StartedAt": "2026-11-25T06:31:00Z"}
    old = [task(f"o{i}", OLD, "complete", "shutdown") for i in range(MAX_FAILURES)]
    assert judge(EXISTED, service(NEW, update=update), [task("a", NEW), task("b", NEW), *old]).phase == "converged"


class _TwoStuckServices:
    """An Engine's answers for two new services whose tasks no node can take; the second one's task appears a
    poll later than the first's (as on the lab, where Swarm creates a stack's services one after another)."""

    def nodes(self):
        return []

    def inspect_service(self, name):
        return {**service(NEW, replicas=1), "ID": name}

    def tasks(self, filters):
        if filters["service"] == "auto_port":
            return [task("p", NEW, state="pending", err=PORT_HELD)]
        return [task("m", NEW, state="pending", err="no suitable node (insufficient resources on 1 node)")]


def test_services_still_inside_the_grace_fail_with_swarms_reason_when_the_deploy_ends() -> None:
    from deployer.converge import Watcher

    clock = [0.0]
    watcher = Watcher(
        api=_TwoStuckServices(), clock=lambda: clock[0], sleep=lambda s: clock.__setitem__(0, clock[0] + s)
    )
    befores = {"auto_port": Before("auto_port", exists=False), "auto_memory": Before("auto_memory", exists=False)}
    watcher._pending_since["m"] = 1.0  # seen a poll after "p"
    states, timed_out = watcher.wait(befores, timeout=120)
    assert not timed_out
    assert [(s.name, s.phase, s.detail) for s in states] == [
        ("auto_port", "failed", f"Swarm cannot schedule a task: {PORT_HELD}"),
        (
            "auto_memory",
            "failed",
            "Swarm cannot schedule a task: no suitable node (insufficient resources on 1 node)",
        ),
    ]
    assert clock[0] < UNSCHEDULABLE_GRACE_SECONDS + 2  # ended by the first task's grace, not the second's
