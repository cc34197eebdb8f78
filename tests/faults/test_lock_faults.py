"""Fault matrix, lock faults: two pipelines at once, a switch while a deploy holds the lock, a holder killed.

Cases 12, 13 and 14. The lock lives in the lab's state service; a deploy that holds it converges in a few seconds
(a short ``monitor`` window keeps it busy long enough for the other party to come).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.harness import (
    FAST_DEPLOY,
    Background,
    admin_states,
    compose,
    deploy_args,
    error_line,
    events_since,
    last_event_id,
    records,
    stack_name,
    state,
    wait_for,
)
from tests.support import Lab

pytestmark = pytest.mark.lab

SLOW_SETTLE = [line.replace("monitor: 1s", "monitor: 4s") for line in FAST_DEPLOY]  # holds the lock ~6 s


@pytest.fixture
def stacks(lab: Lab) -> Iterator[list[str]]:
    """Two fresh stack names, removed from both colours afterwards."""
    names = [stack_name(), stack_name()]
    yield names
    for name in names:
        lab.remove_stack(name, wait=False)


def slow_app(directory: Path, name: str = "app.yml") -> str:
    """A one-service compose file whose deploy takes ~6 s."""
    return compose(directory, name, {"web": ("auto-lab/web:1", SLOW_SETTLE)})


def locked(lab: Lab) -> bool:
    return state(lab).lock_status("lab") is not None


def lock_kinds(events: list[dict]) -> list[str]:
    return [e["kind"] for e in events if e["kind"] in ("locked", "unlocked", "lock_forced")]


def test_case_12_two_pipelines_deploy_to_the_same_environment_at_once(lab: Lab, front, fault, stacks, tmp_path) -> None:
    first_event = last_event_id(lab)
    path = slow_app(tmp_path)
    with fault(12) as case:
        first = Background(lab, *deploy_args(stacks[0], path, extra=("--timeout", "60")))
        try:
            wait_for(lambda: locked(lab), 30, "the first deploy taking the lock")
            refused = lab.cli(*deploy_args(stacks[1], path, extra=("--lock-wait", "0")))
            assert refused.returncode == 4
            line = error_line(refused)
            assert line.startswith("Error: environment lab is locked by ") and f"deploy {stacks[0]} to live" in line
            injected = case.inject()
            second = Background(lab, *deploy_args(stacks[1], path, extra=("--timeout", "60", "--lock-wait", "60")))
            case.detected(second.wait_line("waiting up to 60 s for the lock", timeout=20, after=injected))
            done = [first.wait(timeout=90), second.wait(timeout=90)]
        finally:
            first.kill()
        for proc in done:
            case.check_exit(proc)
        assert [[r["result"] for r in records(lab, name)] for name in stacks] == [["succeeded"], ["succeeded"]]
        kinds = lock_kinds(events_since(lab, first_event))
        assert kinds == ["locked", "unlocked", "locked", "unlocked"], kinds  # never both at once
        assert not locked(lab)
        rerun = lab.cli(*deploy_args(stacks[1], path, extra=("--timeout", "60", "--lock-wait", "0")))
        assert rerun.returncode == 0, rerun.stderr


def test_case_13_a_switch_starts_while_a_deploy_holds_the_lock(lab: Lab, front, fault, stacks, tmp_path) -> None:
    live = front["live"]
    before = admin_states(lab)
    with fault(13) as case:
        deploy = Background(lab, *deploy_args(stacks[0], slow_app(tmp_path), extra=("--timeout", "60")))
        try:
            wait_for(lambda: locked(lab), 30, "the deploy taking the lock")
            case.inject()
            proc = lab.cli("switch", "--env", "lab", "--lock-wait", "1")
            case.detected()
            line = case.check_exit(proc)
            assert line.startswith("Error: environment lab is locked by "), line
            assert f"deploy {stacks[0]} to live" in line and line.endswith("(waited 1 s)"), line
            assert state(lab).get_environment("lab").live_colour == live
            assert admin_states(lab) == before  # traffic untouched
            # Again, willing to wait: it runs once the deploy is done (--to the live colour: HAProxy agrees only).
            rerun = lab.cli("switch", "--env", "lab", "--to", live, "--lock-wait", "60")
            assert rerun.returncode == 0, rerun.stderr
            assert "waiting up to 60 s for the lock" in rerun.stderr
            assert deploy.wait(timeout=60).returncode == 0
        finally:
            deploy.kill()
        assert not locked(lab)
        assert admin_states(lab) == before


def test_case_14_the_holder_of_the_lock_is_killed(lab: Lab, front, fault, stacks, tmp_path) -> None:
    first_event = last_event_id(lab)
    path = slow_app(tmp_path)
    stack = stacks[0]
    with fault(14) as case:
        holder = Background(lab, *deploy_args(stack, path, extra=("--timeout", "60", "--lock-ttl", "3")))
        try:
            holder.wait_line(f"{stack}_web: ", timeout=30)  # in Swarm, waiting, holding the lock
            holder.kill()  # SIGKILL: no release, no record
            injected = case.inject()
            held = state(lab).lock_status("lab")
            assert held is not None and held.purpose == f"deploy {stack} to live"
            assert held.expires_in <= 3
            rerun = Background(lab, *deploy_args(stack, path, extra=("--timeout", "60", "--lock-wait", "30")))
            case.detected(rerun.wait_line("waiting up to 30 s for the lock", timeout=20, after=injected))
            proc = rerun.wait(timeout=90)
        finally:
            holder.kill()
        case.check_exit(proc)
        assert [r["result"] for r in records(lab, stack)] == ["succeeded"]  # the killed one never got to record
        took = [e for e in events_since(lab, first_event) if e["kind"] == "locked"]
        assert len(took) == 2 and "took_over_expired_from" in took[1]["detail"]
        assert not locked(lab)
