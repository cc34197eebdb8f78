"""Fault matrix, deploy faults: what Swarm or the manager does wrong while ``auto-deploy deploy`` runs.

Cases 2 (the manager's daemon restarts), 4 (no such image), 5 (crash loop), 6 (health check never passes),
7 (timeout), 20 (expired client certificate, wrong CA) and 21 (tasks Swarm cannot schedule). Each deploys a
stack of its own next to the front app, whose traffic through HAProxy must not see a single failure.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from deployer.converge import UNSCHEDULABLE_GRACE_SECONDS
from deployer.lab import certs, daemons
from deployer.lab import lab as lab_module
from deployer.lab.layout import CLUSTERS, DOCKER_PORT, LabPaths, lab_dir
from deployer.lab.processes import alive
from tests.faults.harness import (
    FAST_DEPLOY,
    Background,
    compose,
    deploy_args,
    records,
    services_of,
    stack_name,
    state,
    summary,
    wait_for,
)
from tests.support import Lab, other_colour

pytestmark = pytest.mark.lab

CRASH = ['command: ["sh", "-c", "exit 3"]']  # crashes at once: within any monitor window
NEVER_PLACED = ["  placement: {constraints: [node.labels.auto-lab-never == yes]}"]


@pytest.fixture
def stack(lab: Lab) -> Any:
    """A fresh stack name, removed from both colours afterwards."""
    name = stack_name()
    yield name
    lab.remove_stack(name, wait=False)


def running_images(lab: Lab, colour: str, service: str) -> list[str]:
    """The images of the service's running tasks."""
    api = lab.docker(colour)
    try:
        tasks = api.tasks(filters={"service": service, "desired-state": "running"})
    finally:
        api.close()
    return sorted(t["Spec"]["ContainerSpec"]["Image"].split("@")[0] for t in tasks if t["Status"]["State"] == "running")


def unlocked(lab: Lab) -> None:
    """The environment's lock is free."""
    assert state(lab).lock_status("lab") is None


def test_case_02_the_managers_daemon_restarts_while_the_deployer_waits(lab: Lab, front, fault, stack, tmp_path) -> None:
    idle = other_colour(front["live"])  # the next release goes to the idle colour: the live one keeps serving
    slow_settle = [line.replace("monitor: 1s", "monitor: 4s") for line in FAST_DEPLOY]
    path = compose(tmp_path, "app.yml", {"web": ("auto-lab/web:2", slow_settle)})
    npaths = LabPaths(lab_dir()).colour(idle)
    with fault(2) as case:
        deploy = Background(lab, *deploy_args(stack, path, colour="idle", extra=("--timeout", "90")))
        try:
            deploy.wait_line(f"{stack}_web: ", timeout=60)  # waiting for convergence
            pid = daemons.dockerd_pid(npaths)
            assert pid, f"the {idle} manager's dockerd is not running"
            os.kill(pid, signal.SIGTERM)  # a restart: the daemon stops its containers, then comes back
            injected = case.inject()
            case.detected(deploy.wait_line("is not answering", timeout=30, after=injected))
            wait_for(lambda: not alive(pid), 30, "the daemon's exit")
            lab_module.up(workers=0)  # starts it again (and nothing else: the rest of the lab is up)
            deploy.wait_line("answers again", timeout=60)
            proc = deploy.wait(timeout=120)
        finally:
            deploy.kill()
            lab_module.up(workers=0)
        case.check_exit(proc)
        report = summary(proc)
        assert report and report["result"] == "converged" and report["colour"] == idle, proc.stderr
        assert f"the Docker Engine at tcp://{CLUSTERS[idle].address}:{DOCKER_PORT} is not answering" in proc.stderr
        assert [r["result"] for r in records(lab, stack)] == ["succeeded"]
        unlocked(lab)
        assert running_images(lab, idle, f"{stack}_web") == ["auto-lab/web:2"]
        rerun = lab.cli(*deploy_args(stack, path, colour="idle", extra=("--timeout", "60")))
        assert rerun.returncode == 0, rerun.stderr
        assert summary(rerun)["result"] == "converged"


def test_case_04_the_image_does_not_exist(lab: Lab, front, fault, stack, tmp_path) -> None:
    missing = f"auto-lab/missing:{stack}"
    path = compose(tmp_path, "app.yml", {"web": (missing, FAST_DEPLOY)})
    with fault(4) as case:
        case.inject()
        proc = lab.cli(*deploy_args(stack, path, extra=("--timeout", "90")))
        case.detected()
        line = case.check_exit(proc)
        assert line.startswith(f"Error: deploy of {stack} failed: {stack}_web: ")
        assert "tasks keep failing" in line and "No such image" in line, line
        assert [(r["result"], [s["image"] for s in r["services"]]) for r in records(lab, stack)] == [
            ("failed", [missing])
        ]
        unlocked(lab)
        fixed = compose(tmp_path, "fixed.yml", {"web": ("auto-lab/web:1", FAST_DEPLOY)})
        rerun = lab.cli(*deploy_args(stack, fixed, extra=("--timeout", "60")))
        assert rerun.returncode == 0, rerun.stderr
        assert [r["result"] for r in records(lab, stack)] == ["succeeded", "failed"]


def test_case_05_a_crash_looping_new_version_is_rolled_back(lab: Lab, front, fault, stack, tmp_path) -> None:
    live = front["live"]
    good = compose(tmp_path, "good.yml", {"web": ("auto-lab/web:1", FAST_DEPLOY)})
    assert lab.cli(*deploy_args(stack, good)).returncode == 0
    bad = compose(tmp_path, "bad.yml", {"web": ("auto-lab/web:2", [*CRASH, *FAST_DEPLOY])})
    with fault(5) as case:
        case.inject()
        proc = lab.cli(*deploy_args(stack, bad, extra=("--rollback-on-failure", "--timeout", "90")))
        case.detected()
        line = case.check_exit(proc)
        assert summary(proc)["result"] == "rolled-back"
        assert line.startswith(f"Error: deploy of {stack} failed: {stack}_web: ")
        assert line.endswith("; rolled back to the previous version")
        assert running_images(lab, live, f"{stack}_web") == ["auto-lab/web:1"]
        assert [r["result"] for r in records(lab, stack)] == ["rolled_back", "succeeded"]
        unlocked(lab)
        fixed = compose(tmp_path, "fixed.yml", {"web": ("auto-lab/web:2", FAST_DEPLOY)})
        rerun = lab.cli(*deploy_args(stack, fixed, extra=("--timeout", "60")))
        assert rerun.returncode == 0, rerun.stderr
        assert running_images(lab, live, f"{stack}_web") == ["auto-lab/web:2"]


def test_case_06_a_health_check_that_never_passes(lab: Lab, front, fault, stack, tmp_path) -> None:
    def with_check(command: str) -> list[str]:
        return [
            f'healthcheck: {{test: ["CMD", "sh", "-c", "{command}"], interval: 1s, timeout: 1s, retries: 1}}',
            *FAST_DEPLOY,
        ]

    path = compose(tmp_path, "app.yml", {"web": ("auto-lab/web:1", with_check("exit 1"))})
    with fault(6) as case:
        case.inject()
        proc = lab.cli(*deploy_args(stack, path, extra=("--rollback-on-failure", "--timeout", "90")))
        case.detected()
        line = case.check_exit(proc)
        assert line.startswith(f"Error: deploy of {stack} failed: {stack}_web: tasks keep failing"), line
        assert "failed its health check" in line, line
        assert summary(proc)["rollback"][0]["detail"] == "removed (created by the failed deploy)"
        assert services_of(lab, front["live"], stack) == []
        assert [r["result"] for r in records(lab, stack)] == ["rolled_back"]
        unlocked(lab)
        fixed = compose(tmp_path, "fixed.yml", {"web": ("auto-lab/web:1", with_check("exit 0"))})
        rerun = lab.cli(*deploy_args(stack, fixed, extra=("--timeout", "60")))
        assert rerun.returncode == 0, rerun.stderr


def test_case_07_the_deploy_times_out(lab: Lab, front, fault, stack, tmp_path) -> None:
    path = compose(tmp_path, "pending.yml", {"web": ("auto-lab/web:1", ["deploy:", *NEVER_PLACED])})
    with fault(7) as case:
        case.inject()
        proc = lab.cli(*deploy_args(stack, path, extra=("--timeout", "4")))
        case.detected()
        line = case.check_exit(proc)
        assert case.detect_seconds < 20
        assert summary(proc)["result"] == "timed-out"
        # Swarm's own reason is in the message (the grace for an unschedulable task is longer than this timeout).
        assert line == (
            f"Error: deploy of {stack} did not converge within 4 s: {stack}_web: starting; task pending: "
            "no suitable node (scheduling constraints not satisfied on 1 node) (0/1 running); "
            f"{stack}_web left as they are (use --rollback-on-failure or auto-deploy rollback)"
        )
        assert [r["result"] for r in records(lab, stack)] == ["timed_out"]
        unlocked(lab)
        fixed = compose(tmp_path, "fixed.yml", {"web": ("auto-lab/web:1", FAST_DEPLOY)})
        rerun = lab.cli(*deploy_args(stack, fixed, extra=("--timeout", "60")))
        assert rerun.returncode == 0, rerun.stderr


EXPIRED_ON = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) - dt.timedelta(days=1)


def expired_bundle(directory: Path) -> Path:
    """The lab's own CA, and a client certificate it signed that expired yesterday."""
    ca = certs.load_ca(LabPaths(lab_dir()).certs)
    expired = certs.issue(ca, "expired deployer", client=True, starts=EXPIRED_ON - dt.timedelta(days=30), days=30)
    return certs.write_bundle(directory, ca, expired)


def test_case_20_an_expired_client_certificate_or_a_wrong_ca(lab: Lab, front, fault, stack, tmp_path) -> None:
    wrong = certs.make_ca("not the lab CA")
    bundles = {
        "expired": expired_bundle(tmp_path / "expired"),
        "wrong CA": certs.write_bundle(tmp_path / "wrong", wrong, certs.issue(wrong, "intruder", client=True)),
    }
    path = compose(tmp_path, "app.yml", {"web": ("auto-lab/web:1", FAST_DEPLOY)})
    manager = CLUSTERS[front["live"]].docker_host
    says = {  # an expired certificate is named before any connection; the Engine's alert cannot tell a wrong CA
        "expired": f"Error: the client certificate from {bundles['expired'] / 'cert.pem'} expired on "
        f"{EXPIRED_ON:%Y-%m-%d %H:%M} UTC: renew it, then deploy again",
        "wrong CA": f"Error: TLS with the Docker Engine at {manager} failed (certificate not trusted or client "
        "certificate refused): check the CA and client certificate for this cluster",
    }
    with fault(20) as case:
        case.inject()
        for what, bundle in bundles.items():
            proc = lab.cli(*deploy_args(stack, path, extra=("--cert-dir", str(bundle))))
            if what == "expired":
                case.detected()
            line = case.check_exit(proc)
            assert line == says[what], what
            assert "PRIVATE KEY" not in proc.stdout + proc.stderr
            assert services_of(lab, front["live"], stack) == []
            assert records(lab, stack) == []
            unlocked(lab)
        rerun = lab.cli(*deploy_args(stack, path, extra=("--timeout", "60")))
        assert rerun.returncode == 0, rerun.stderr


def test_case_21_tasks_swarm_cannot_schedule_fail_after_the_grace(lab: Lab, front, fault, stack, tmp_path) -> None:
    held_port = ["ports:", "  - {target: 8080, published: 18080, protocol: tcp, mode: host}", *FAST_DEPLOY]
    too_big = [*FAST_DEPLOY, "  resources: {reservations: {memory: 1000G}}"]
    path = compose(
        tmp_path,
        "app.yml",
        {  # the front app holds 18080 on the live colour's only node
            "port": ("auto-lab/web:1", held_port),
            "placed": ("auto-lab/web:1", [*FAST_DEPLOY, *NEVER_PLACED]),
            "memory": ("auto-lab/web:1", too_big),
        },
    )
    with fault(21) as case:
        case.inject()
        started = time.monotonic()
        proc = lab.cli(*deploy_args(stack, path, extra=("--timeout", "120")))
        took = time.monotonic() - started
        case.detected()
        line = case.check_exit(proc)
        assert UNSCHEDULABLE_GRACE_SECONDS <= took < UNSCHEDULABLE_GRACE_SECONDS + 20, took
        assert summary(proc)["result"] == "failed"
        assert line.startswith(f"Error: deploy of {stack} failed: ")
        for service, reason in (
            ("port", "host-mode port already in use on 1 node"),
            ("placed", "scheduling constraints not satisfied on 1 node"),
            ("memory", "insufficient resources on 1 node"),
        ):
            assert f"{stack}_{service}: Swarm cannot schedule a task: no suitable node ({reason})" in line, line
        assert [(r["result"], len(r["services"])) for r in records(lab, stack)] == [("failed", 3)]
        unlocked(lab)
        fixed = compose(tmp_path, "fixed.yml", {name: ("auto-lab/web:1", FAST_DEPLOY) for name in ("placed", "memory")})
        rerun = lab.cli(*deploy_args(stack, fixed, extra=("--timeout", "60")))
        assert rerun.returncode == 0, rerun.stderr
