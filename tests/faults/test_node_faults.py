"""Fault matrix, node faults: the lab grown to a manager and two workers per colour (``lab up --workers 2``, once for
the module, back to the single-node lab at its end, as the rest of the suite expects).

Case 1: a worker's daemon killed by its pid while a deploy to the idle colour waits for its tasks; case 3: the
registry the workers pull from is down; case 16: a switch asked for while a node of the idle colour is down;
case 19: a worker's veth taken down (the manager and the worker cut apart) mid-deploy. The front app stays where
the single-node lab had it (the live colour's manager): not one request through HAProxy may fail.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from deployer.lab import daemons, registry
from deployer.lab import lab as lab_module
from deployer.lab.layout import CLUSTERS, LabPaths, lab_dir
from tests.faults.harness import (
    Background,
    admin_states,
    compose,
    deploy_args,
    record,
    records,
    stack_name,
    state,
    wait_for,
)
from tests.support import FRONT_STACK, Lab, other_colour, unavailable

pytestmark = pytest.mark.lab

WORKERS = 2
ON_WORKERS = [
    "deploy:",
    "  replicas: 2",
    '  placement: {constraints: ["node.role == worker"]}',
    "  update_config: {order: stop-first, failure_action: pause, monitor: 1s}",
    "  restart_policy: {condition: any, delay: 1s}",
]


@pytest.fixture(scope="module")
def multinode(lab: Lab, front: dict[str, Any]) -> Iterator[dict[str, str]]:
    """The lab with two workers per colour (after ``front``: the front app stays on the live manager); the CLI's
    environment, with the registry's login that ``--with-registry-auth`` hands the workers."""
    if shutil.which("docker-registry") is None:
        unavailable("docker-registry is not installed (make system installs it)")
    env = {**lab.env, **{k: v for k, v in os.environ.items() if k.startswith("AUTO_LAB_")}}
    try:
        proc = lab.cli("lab", "up", "--workers", str(WORKERS), env=env)
        assert proc.returncode == 0, proc.stderr
        values = lab_module.env_values()
        env.update(values, DOCKER_CONFIG=values["AUTO_LAB_DOCKER_CONFIG"])
        yield env
    finally:
        lab_module.up(workers=0)  # the single-node lab the other tests expect


@pytest.fixture
def stack(lab: Lab) -> Iterator[str]:
    name = stack_name()
    yield name
    lab.remove_stack(name, wait=False)


def test_case_01_a_worker_dies_mid_deploy(lab: Lab, front, multinode, fault, stack, tmp_path) -> None:
    idle = other_colour(front["live"])
    worker = CLUSTERS[idle].worker(1)
    image = f"{registry.address()}/auto-lab/web:2"  # only the registry has it for the workers
    path = compose(tmp_path, "app.yml", {"web": (image, ON_WORKERS)})
    args = deploy_args(stack, path, colour="idle", extra=("--with-registry-auth", "--timeout", "120"))
    with fault(1) as case:
        deploy = Background(lab, *args, env=multinode)
        try:
            deploy.wait_line(f"{stack}_web: ", timeout=60)  # in Swarm, tasks on their way to the workers
            pid = daemons.dockerd_pid(LabPaths(lab_dir()).node(worker))
            assert pid, f"{worker.hostname}'s dockerd is not running"
            os.kill(pid, signal.SIGKILL)
            injected = case.inject()
            case.detected(deploy.wait_line(f"node {worker.hostname} is down", timeout=60, after=injected))
            proc = deploy.wait(timeout=120)
        finally:
            deploy.kill()
            lab_module.up(workers=WORKERS)  # the worker's daemon back (it rejoins its swarm by itself)
        case.check_exit(proc)
        assert [r["result"] for r in records(lab, stack)] == ["succeeded"]
        assert state(lab).lock_status("lab") is None
        rerun = lab.cli(*args, env=multinode)
        assert rerun.returncode == 0, rerun.stderr


def test_case_03_a_worker_cannot_pull_the_image(lab: Lab, front, multinode, fault, stack, tmp_path) -> None:
    image = f"{registry.address()}/auto-lab/web:1"  # on no worker yet: each must pull it
    path = compose(tmp_path, "app.yml", {"web": (image, ON_WORKERS)})
    args = deploy_args(stack, path, colour="idle", extra=("--with-registry-auth", "--timeout", "120"))
    paths = LabPaths(lab_dir())
    with fault(3) as case:
        try:
            registry.stop(paths)  # by its pid
            case.inject()
            proc = lab.cli(*args, env=multinode)
            case.detected()
        finally:
            registry.ensure_running(paths)
        line = case.check_exit(proc)
        assert line.startswith(f"Error: deploy of {stack} failed: {stack}_web: tasks keep failing"), line
        assert [r["result"] for r in records(lab, stack)] == ["failed"]
        assert state(lab).lock_status("lab") is None
        rerun = lab.cli(*args, env=multinode)
        assert rerun.returncode == 0, rerun.stderr


def test_case_19_the_link_between_the_manager_and_a_worker_is_cut(
    lab: Lab, front, multinode, fault, stack, tmp_path
) -> None:
    idle = other_colour(front["live"])
    worker = CLUSTERS[idle].worker(2)
    image = f"{registry.address()}/auto-lab/web:2"
    path = compose(tmp_path, "app.yml", {"web": (image, ON_WORKERS)})
    args = deploy_args(stack, path, colour="idle", extra=("--with-registry-auth", "--timeout", "120"))
    with fault(19) as case:
        deploy = Background(lab, *args, env=multinode)
        try:
            deploy.wait_line(f"{stack}_web: ", timeout=60)
            subprocess.run(["ip", "link", "set", worker.host_if, "down"], check=True)  # its veth, on the host side
            injected = case.inject()
            case.detected(deploy.wait_line(f"node {worker.hostname} is down", timeout=60, after=injected))
            proc = deploy.wait(timeout=120)
        finally:
            deploy.kill()
            subprocess.run(["ip", "link", "set", worker.host_if, "up"], check=False)
            lab_module.up(workers=WORKERS)  # addresses and routes as they were; the worker Ready again
        case.check_exit(proc)
        assert [r["result"] for r in records(lab, stack)] == ["succeeded"]
        assert state(lab).lock_status("lab") is None
        rerun = lab.cli(*args, env=multinode)
        assert rerun.returncode == 0, rerun.stderr


def node_down(lab: Lab, colour: str, hostname: str) -> bool:
    api = lab.docker(colour)
    try:
        nodes = api.nodes()
    finally:
        api.close()
    return any(n["Description"]["Hostname"] == hostname and n["Status"]["State"] == "down" for n in nodes)


def test_case_16_the_idle_colour_is_partly_unhealthy_when_a_switch_is_asked_for(
    lab: Lab, front, multinode, fault, tmp_path
) -> None:
    live, idle = front["live"], other_colour(front["live"])
    worker = CLUSTERS[idle].worker(1)
    # A throwaway environment over the lab's clusters: the front app's version 1 recorded on the live colour, and
    # version 2 deployed for real on the idle colour's two workers (one task each, from the registry).
    client = state(lab)
    lab_env = client.get_environment("lab")
    env = f"fault-{uuid.uuid4().hex[:6]}"
    clusters = {c: (lab_env.clusters[c].manager_address, lab_env.clusters[c].docker_port) for c in lab_env.clusters}
    client.put_environment(env, live, clusters, actor="fault matrix")
    record(client, env, live, "1", front["files"])
    release = compose(
        tmp_path,
        "v2.yml",
        {"web": (f"{registry.address()}/auto-lab/web:2", [
            "ports:", "  - {target: 8080, published: 18080, protocol: tcp, mode: host}",
            *[line for line in ON_WORKERS if "placement" not in line],
            '  placement: {constraints: ["node.role == worker"], max_replicas_per_node: 1}',
        ])},
    )  # fmt: skip
    args = ["deploy", "--env", env, "--stack", FRONT_STACK, "-c", release, "--colour", "idle", "--resolve-image",
            "never", "--with-registry-auth", "--timeout", "90"]  # fmt: skip
    before = admin_states(lab)
    try:
        proc = lab.cli(*args, env=multinode)
        assert proc.returncode == 0, proc.stderr
        with fault(16) as case:
            pid = daemons.dockerd_pid(LabPaths(lab_dir()).node(worker))
            assert pid, f"{worker.hostname}'s dockerd is not running"
            try:
                os.kill(pid, signal.SIGKILL)
                case.inject()
                wait_for(
                    lambda: node_down(lab, idle, worker.hostname), 60, f"Swarm marking {worker.hostname} down", 0.5
                )
                switch = Background(lab, "switch", "--env", env, "--timeout", "60", "--lock-wait", "10", env=multinode)
                case.detected(switch.wait_line(f"node {worker.hostname} is down", timeout=30))
                refused = switch.wait(timeout=120)
            finally:
                lab_module.up(workers=WORKERS)  # the worker back: Swarm places the task it could not place
            line = case.check_exit(refused)
            assert line.startswith(f"Error: the idle colour {idle} did not converge: "), line
            assert f"node {worker.hostname} is down" in line and line.endswith("; traffic not moved"), line
            assert client.get_environment(env).live_colour == live
            assert admin_states(lab) == before  # traffic untouched
            assert client.lock_status(env) is None
        # The rerun, the fault gone, is outside the measured window: its two switches move traffic on purpose (a
        # switch under load is measured by the switch tests; one CI run here saw 17 requests answered 503 around
        # these switches, right after the worker came back: see the closing note of issue 16).
        rerun = lab.cli("switch", "--env", env, "--timeout", "60", "--lock-wait", "10", env=multinode)
        assert rerun.returncode == 0, rerun.stderr
        # Back: version 1 recorded again on the live colour (it still runs there), so nothing is replayed.
        record(client, env, live, "1", front["files"])
        back = lab.cli("switch", "--env", env, "--to", live, "--lock-wait", "10", env=multinode)
        assert back.returncode == 0, back.stderr
    finally:
        lab.cli("switch", "--env", "lab", "--to", live, "--lock-wait", "30")  # HAProxy in line with the lab again
        api = lab.docker(idle)
        try:
            for service in api.services(filters={"label": f"com.docker.stack.namespace={FRONT_STACK}"}):
                api.remove_service(service["ID"])
        finally:
            api.close()
