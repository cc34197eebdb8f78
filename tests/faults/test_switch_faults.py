"""Fault matrix, switch faults: a lost compare-and-set, HAProxy reloaded during a switch, HAProxy down.

Cases 15, 17 and 18. The front app runs on both colours (version 1 on the live one, 2 on the idle one), so traffic
may move either way without a failed request. The switches that move traffic act on a throwaway environment over
the lab's clusters and its HAProxy, whose records say what runs where (the live colour's release, and a newer one
on the idle colour, kept by the switch): nothing is replayed, and the lab's own environment stays as it is.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from deployer import cli
from deployer.haproxy import Runtime
from deployer.lab import front as front_module
from deployer.lab import lab as lab_module
from deployer.lab.layout import lab_dir
from deployer.lab.processes import read_pid
from deployer.state.client import StateClient
from tests.faults.harness import Background, admin_states, record, state, wait_for
from tests.support import FRONT_STACK, Lab, front_deploy_args, other_colour

pytestmark = pytest.mark.lab

FRONT = front_module.FrontPaths(lab_dir())
RELOADS = 3


@pytest.fixture(scope="module")
def both(lab: Lab, front: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The front app on both colours: version 1 live (the module's ``front``), version 2 on the idle colour."""
    idle = other_colour(front["live"])
    proc = lab.cli(*front_deploy_args(front["files"]["2"], "idle", "--timeout", "60"))
    assert proc.returncode == 0, proc.stderr
    yield {**front, "idle": idle}
    api = lab.docker(idle)  # the idle colour as it was: without the front app
    try:
        for service in api.services(filters={"label": f"com.docker.stack.namespace={FRONT_STACK}"}):
            api.remove_service(service["ID"])
    finally:
        api.close()


def throwaway(lab: Lab, both: dict[str, Any]) -> str:
    """A new environment over the lab's clusters and HAProxy, the lab's live colour live, whose records say what
    runs: version 1 on the live colour, a newer version 2 on the idle one (the release a switch promotes)."""
    client = state(lab)
    lab_env = client.get_environment("lab")
    name = f"fault-{uuid.uuid4().hex[:6]}"
    clusters = {c: (lab_env.clusters[c].manager_address, lab_env.clusters[c].docker_port) for c in lab_env.clusters}
    client.put_environment(name, both["live"], clusters, actor="fault matrix")
    record(client, name, both["live"], "1", both["files"])
    record(client, name, both["idle"], "2", both["files"])
    return name


def switch_back(lab: Lab, env: str, both: dict[str, Any]) -> None:
    """Traffic back on the lab's live colour, through ``env`` (a record first: the live colour keeps version 1)."""
    client = state(lab)
    if client.get_environment(env).live_colour != both["live"]:
        record(client, env, both["live"], "1", both["files"])
        proc = lab.cli("switch", "--env", env, "--to", both["live"], "--lock-wait", "30")
        assert proc.returncode == 0, proc.stderr
    proc = lab.cli("switch", "--env", "lab", "--to", both["live"], "--lock-wait", "30")  # HAProxy agrees with lab
    assert proc.returncode == 0, proc.stderr


def test_case_15_the_switch_loses_its_compare_and_set(
    lab: Lab, both, fault, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env = throwaway(lab, both)
    live, idle = both["live"], both["idle"]
    rival = state(lab)
    real_switch = StateClient.switch
    lost: list[float] = []

    def racing(self: StateClient, env_name: str, expected_live: str, to: str, **kwargs: Any) -> Any:
        real_switch(rival, env_name, expected_live, to, actor="rival")  # wins the race, between our read and write
        lost.append(case.inject())
        return real_switch(self, env_name, expected_live, to, **kwargs)

    for name in [k for k in os.environ if k.startswith(("AUTO_", "DOCKER_"))]:
        monkeypatch.delenv(name)
    for name, value in lab.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(StateClient, "switch", racing)
    try:
        with fault(15) as case:
            code = cli.main(["switch", "--env", env, "--lock-wait", "30"])
            case.detected()
            out = capsys.readouterr()
            assert lost, "the switch never reached its compare-and-set"
            proc = type("Proc", (), {"returncode": code, "stderr": out.err, "stdout": out.out})()
            line = case.check_exit(proc)
            assert line.startswith(f"Error: live colour is {idle}"), line
            assert f"sending traffic back to {live}" in out.err
            assert admin_states(lab) == {live: "ready", idle: "maint"}  # traffic back where it was
            assert state(lab).get_environment(env).live_colour == idle  # the rival's, untouched by us
            assert state(lab).lock_status(env) is None
            switches = [e for e in state(lab).history(env, limit=20) if e["kind"] == "switch"]
            assert switches[0]["detail"]["result"] == "failed"  # ours: recorded, with what happened
            monkeypatch.setattr(StateClient, "switch", real_switch)
            # Again, without a rival: a fresh environment as the first was, switched for real.
            again = throwaway(lab, both)
            rerun = lab.cli("switch", "--env", again, "--lock-wait", "30")
            assert rerun.returncode == 0, rerun.stderr
            assert admin_states(lab) == {idle: "ready", live: "maint"}
            switch_back(lab, again, both)
    finally:
        monkeypatch.setattr(StateClient, "switch", real_switch)
        switch_back(lab, "lab", both)


def test_case_17_haproxy_is_reloaded_during_a_switch(lab: Lab, both, fault) -> None:
    env = throwaway(lab, both)
    live, idle = both["live"], both["idle"]
    master = read_pid(FRONT.pid)
    assert master, "HAProxy is not running"
    reloads: list[float] = []
    stop = threading.Event()

    def reload_a_few_times() -> None:
        # As `auto-deploy lab up` reloads HAProxy: the admin state saved first, then SIGUSR2 to the master. A few
        # times, while traffic moves (reloading without a pause would restart the health checks for ever).
        runtime = Runtime(str(FRONT.socket))
        for _ in range(RELOADS):
            if stop.is_set():
                return
            runtime.save_state(FRONT.state)
            runtime.reload(master)
            reloads.append(time.monotonic())
            stop.wait(0.3)

    try:
        with fault(17) as case:
            switch = Background(lab, "switch", "--env", env, "--lock-wait", "30", "--timeout", "30", "--json")
            reloader = threading.Thread(target=reload_a_few_times, daemon=True)
            switch.wait_line("waiting for", timeout=30)  # the health step: traffic moves next
            case.inject()
            reloader.start()
            proc = switch.wait(timeout=120)
            case.detected()
            stop.set()
            reloader.join(timeout=30)
            case.check_exit(proc)
            assert reloads, "HAProxy was never reloaded during the switch"
            case.notes["reloads"] = len(reloads)
            assert state(lab).get_environment(env).live_colour == idle
            wait_for(lambda: admin_states(lab) == {idle: "ready", live: "maint"}, 5, "HAProxy keeping the switch")
            switch_back(lab, env, both)
    finally:
        stop.set()
        switch_back(lab, "lab", both)


def test_case_18_haproxy_is_down_when_a_switch_is_asked_for(lab: Lab, both, fault) -> None:
    live = both["live"]
    first_event = max((e["id"] for e in state(lab).history("lab", limit=1)), default=0)
    try:
        with fault(18) as case:
            front_module.stop(lab_dir())  # by the master's pid, from its pidfile
            case.inject()
            proc = lab.cli("switch", "--env", "lab", "--lock-wait", "30")
            case.detected()
            line = case.check_exit(proc)
            assert line == (
                f"Error: HAProxy admin socket {lab.env['AUTO_HAPROXY_SOCKET']} is not answering: is HAProxy running?"
            )
            assert "replaying" not in proc.stderr  # refused before anything was touched
            assert state(lab).get_environment("lab").live_colour == live
            assert state(lab).lock_status("lab") is None
            kinds = [e["kind"] for e in state(lab).history("lab", limit=20) if e["id"] > first_event]
            assert "deployed" not in kinds, kinds
            lab_module.up(workers=0)  # HAProxy back, its configuration and saved state as they were
            rerun = lab.cli("switch", "--env", "lab", "--to", live, "--lock-wait", "30")
            assert rerun.returncode == 0, rerun.stderr
            assert admin_states(lab)[live] == "ready"
    finally:
        lab_module.up(workers=0)
        switch_back(lab, "lab", both)
