"""The watcher while the manager's Engine does not answer (its daemon restarting): it waits, says so, goes on."""

from __future__ import annotations

import pytest
import requests.exceptions

from deployer.converge import Before, Watcher
from deployer.errors import DockerUnavailableError

TEMPLATE = {"ContainerSpec": {"Image": "auto-lab/web:1"}, "ForceUpdate": 0}
SERVICE = {
    "ID": "s1",
    "Version": {"Index": 1},
    "Spec": {"Name": "t_web", "TaskTemplate": TEMPLATE, "Mode": {"Replicated": {"Replicas": 1}}},
}
TASK = {"ID": "a", "Spec": TEMPLATE, "DesiredState": "running", "NodeID": "n1", "Status": {"State": "running"}}


class FlakyEngine:
    """An APIClient whose calls fail while ``down`` says so (a count of calls, or forever)."""

    base_url = "https://10.213.2.2:2376"

    def __init__(self, down: int | None, *, dies_after: int | None = None) -> None:
        self.down = down
        self.dies_after = dies_after  # calls answered before it goes away for good

    def _maybe_fail(self) -> None:
        if self.dies_after is not None:
            if self.dies_after == 0:
                self.down = None
            self.dies_after -= 1
        if self.down is None:
            raise requests.exceptions.ConnectionError("refused")
        if self.down > 0:
            self.down -= 1
            raise requests.exceptions.ConnectionError("refused")

    def nodes(self) -> list:
        self._maybe_fail()
        return []

    def inspect_service(self, name: str) -> dict:
        self._maybe_fail()
        return SERVICE

    def tasks(self, filters: dict) -> list:
        self._maybe_fail()
        return [TASK]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.01)


def watcher(engine: FlakyEngine, clock: Clock) -> Watcher:
    return Watcher(engine, clock=clock, sleep=clock.sleep, wall=clock)


def test_an_engine_that_comes_back_is_waited_for_and_said_twice() -> None:
    clock, lines = Clock(), []
    engine = FlakyEngine(down=5)
    before = {"t_web": Before("t_web", exists=False)}
    states, timed_out = watcher(engine, clock).wait(before, 60, on_engine=lines.append)
    assert not timed_out and [s.phase for s in states] == ["converged"]
    assert lines[0].startswith("the Docker Engine at tcp://10.213.2.2:2376 is not answering (ConnectionError)")
    assert lines[1].startswith("the Docker Engine at tcp://10.213.2.2:2376 answers again after ")
    assert len(lines) == 2


def test_an_engine_gone_at_the_deadline_times_out_with_the_last_states() -> None:
    clock = Clock()
    engine = FlakyEngine(down=0, dies_after=3)  # one poll (nodes, service, tasks): running, not settled yet
    states, timed_out = watcher(engine, clock).wait({"t_web": Before("t_web", exists=False)}, 3)
    assert timed_out
    assert states[0].detail.endswith("; the Docker Engine at tcp://10.213.2.2:2376 stopped answering")


def test_an_engine_that_never_answered_is_unreachable() -> None:
    clock = Clock()
    with pytest.raises(DockerUnavailableError, match="is unreachable: check the cluster is up"):
        watcher(FlakyEngine(down=None), clock).wait({"t_web": Before("t_web", exists=False)}, 2)
