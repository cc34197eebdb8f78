"""Blue/green switches on the lab: real clusters, real HAProxy, a bounded load on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from deployer.haproxy import Runtime
from deployer.lab.load import Load
from deployer.state.client import StateClient
from tests.support import front_deploy_args as deploy_args
from tests.support import other_colour

pytestmark = pytest.mark.lab


def state(lab) -> StateClient:
    return StateClient.from_env(lab.env)


def admin_states(lab) -> dict[str, str]:
    runtime = Runtime(lab.env["AUTO_HAPROXY_SOCKET"])
    return {name: stat.admin for name, stat in runtime.servers("app").items()}


@pytest.fixture
def front(lab, tmp_path):
    """The front app (port 18080) on the live colour, nothing else publishing 18080, HAProxy consistent."""
    return lab.front(tmp_path)


def test_switch_under_load_drops_nothing_and_switches_back(lab, front) -> None:
    old = front["live"]
    new = other_colour(old)
    proc = lab.cli(*deploy_args(front["files"]["2"], "idle"))
    assert proc.returncode == 0, proc.stderr
    url = lab.env["AUTO_LAB_FRONT_URL"] + "/"
    with Load(url, connections=4, max_seconds=120) as load:
        time.sleep(1)
        proc = lab.cli("switch", "--env", "lab", "--json")
        time.sleep(1)
    result = load.result
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["result"] == "switched" and report["colour"] == new
    assert result.failed == 0, result.errors
    assert result.sent > 200
    assert set(result.bodies) == {"version 1", "version 2"}
    assert state(lab).get_environment("lab").live_colour == new
    assert admin_states(lab) == {new: "ready", old: "maint"}

    with Load(url, connections=4, max_seconds=120) as load:
        proc = lab.cli("switch", "--env", "lab")
    assert proc.returncode == 0, proc.stderr
    assert load.result.failed == 0, load.result.errors
    # Switching back replayed the newest live deploy (version 2) on the old colour first.
    assert set(load.result.bodies) == {"version 2"}
    assert state(lab).get_environment("lab").live_colour == old
    events = state(lab).history("lab", limit=20)
    switches = [e for e in events if e["kind"] == "switch"]
    assert [e["detail"]["result"] for e in switches[:2]] == ["switched", "switched"]


def test_switch_refused_when_idle_cluster_is_down(lab, front) -> None:
    from deployer.lab import lab as lab_module
    from deployer.lab.layout import lab_dir

    old = front["live"]
    idle = other_colour(old)
    pid = int(Path(lab_dir(), idle, "dockerd.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    try:
        time.sleep(0.5)
        before = admin_states(lab)
        proc = lab.cli("switch", "--env", "lab")
        assert proc.returncode == 4, proc.stderr
        address = {"blue": "10.213.1.2", "green": "10.213.2.2"}[idle]
        assert proc.stderr.strip().splitlines()[-1] == (
            f"Error: the Docker Engine at tcp://{address}:2376 is unreachable: check the cluster is up"
        )
        assert state(lab).get_environment("lab").live_colour == old
        assert admin_states(lab) == before == {old: "ready", idle: "maint"}
        assert state(lab).lock_status("lab") is None
    finally:
        lab_module.up()


def test_switch_with_nothing_ever_deployed(lab) -> None:
    client = state(lab)
    lab_env = client.get_environment("lab")
    name = f"empty-{uuid.uuid4().hex[:6]}"
    clusters = {c: (lab_env.clusters[c].manager_address, lab_env.clusters[c].docker_port) for c in ("blue", "green")}
    client.put_environment(name, lab_env.live_colour, clusters)
    proc = lab.cli("switch", "--env", name)
    try:
        assert proc.returncode == 0, proc.stderr
        assert "nothing deployed on the live colour to replay: clone skipped" in proc.stderr
        assert client.get_environment(name).live_colour == other_colour(lab_env.live_colour)
    finally:
        back = lab.cli("switch", "--env", name, "--to", lab_env.live_colour)
        assert back.returncode == 0, back.stderr
    assert admin_states(lab)[lab_env.live_colour] == "ready"


def test_deploy_waits_for_or_is_refused_by_a_running_switch(lab, front) -> None:
    first_event = max((e["id"] for e in state(lab).history("lab", limit=1)), default=0)
    switch = subprocess.Popen(
        [sys.executable, "-m", "deployer", "switch", "--env", "lab"], env=lab.env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while state(lab).lock_status("lab") is None:
            assert time.monotonic() < deadline, "the switch never took the lock"
            time.sleep(0.05)
        refused = lab.cli(*deploy_args(front["files"]["1"], "live", "--lock-wait", "0"))
        assert refused.returncode == 4
        last = refused.stderr.strip().splitlines()[-1]
        assert last.startswith("Error: environment lab is locked by ") and "switch to" in last
        waited = lab.cli(*deploy_args(front["files"]["1"], "live", "--lock-wait", "120"))
        assert waited.returncode == 0, waited.stderr
    finally:
        assert switch.wait(timeout=180) == 0, switch.stderr.read()
    # Never both at once: from the switch on, every lock taken was released before the next.
    events = [e for e in reversed(state(lab).history("lab", limit=100)) if e["id"] > first_event]
    kinds = [e["kind"] for e in events if e["kind"] in ("locked", "unlocked", "lock_forced")]
    assert kinds[:2] == ["locked", "unlocked"] and len(kinds) >= 4
    assert all(a != b for a, b in zip(kinds, kinds[1:], strict=False)), kinds
    # Put traffic back where the fixture found it.
    assert lab.cli("switch", "--env", "lab", "--to", front["live"]).returncode == 0


def test_crashed_switch_leaves_a_lock_that_expires_and_the_next_switch_recovers(lab, front) -> None:
    argv = [sys.executable, "-m", "deployer", "switch", "--env", "lab", "--lock-ttl", "3"]
    crashed = subprocess.Popen(argv, env=lab.env, text=True, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    for line in crashed.stderr:
        if "replaying deploy" in line:
            crashed.kill()  # SIGKILL: no cleanup, no release
            break
    crashed.wait(timeout=30)
    held = state(lab).lock_status("lab")
    assert held is not None and held.purpose.startswith("switch to")
    proc = lab.cli("switch", "--env", "lab", "--lock-wait", "60")
    assert proc.returncode == 0, proc.stderr
    assert "waiting up to 60 s for the lock" in proc.stderr
    env = state(lab).get_environment("lab")
    assert env.live_colour == other_colour(front["live"])
    assert admin_states(lab) == {env.live_colour: "ready", front["live"]: "maint"}
    took_over = [e for e in state(lab).history("lab", limit=30) if e["kind"] == "locked"]
    assert "took_over_expired_from" in took_over[0]["detail"]
    assert lab.cli("switch", "--env", "lab", "--to", front["live"]).returncode == 0
