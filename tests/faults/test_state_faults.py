"""Fault matrix, state-service faults: the environment-state service down, going down mid-deploy, slow or answering
garbage, out of disk.

Cases 8, 9, 10 and 11. The lab's own service is stopped and started again by its pid (case 8, 9); a plain-HTTP
proxy on loopback stands between the deployer and the service to slow it down or answer garbage (case 10); a
second instance of the service runs on a small tmpfs that is then filled (case 11: the lab's database stays where
it is). Traffic through HAProxy never depends on the state service: not one request may fail.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from deployer.lab import state_service
from deployer.lab.layout import LabPaths, lab_dir, state_port
from deployer.state.client import StateClient
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
from tests.support import ROOT, Lab, stop_process

pytestmark = pytest.mark.lab

PATHS = LabPaths(lab_dir())
MALFORMED = {
    "name": "lab",
    "live_colour": "blue",
    "revision": 1,
    "clusters": {
        "blue": {"manager_address": "10.213.1.300", "docker_port": 2376, "live": True, "stacks": []},
        "green": {"manager_address": "10.213.2.2", "docker_port": 2376, "live": False, "stacks": []},
    },
}


@pytest.fixture
def stack(lab: Lab) -> Iterator[str]:
    """A fresh stack name, removed from both colours afterwards."""
    name = stack_name()
    yield name
    lab.remove_stack(name, wait=False)


@pytest.fixture
def app(tmp_path: Path) -> str:
    """A one-service compose file that converges in a few seconds."""
    return compose(tmp_path, "app.yml", {"web": ("auto-lab/web:1", FAST_DEPLOY)})


def kill_state_service() -> int:
    """SIGKILL the lab's state service by its pid (no goodbye to its clients); the pid."""
    pid = state_service.state_pid(PATHS)
    assert pid, "the lab's state service is not running"
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: state_service.state_pid(PATHS) is None, 10, "the state service's exit")
    return pid


def restart_state_service() -> None:
    """The lab's state service running and healthy again (its database is where it was)."""
    state_service.ensure_running(PATHS, state_port())


def test_case_08_the_state_service_is_down_when_the_deploy_starts(lab: Lab, front, fault, stack, app) -> None:
    env = {**lab.env, "AUTO_STATE_RETRIES": "2"}
    with fault(8) as case:
        try:
            kill_state_service()
            case.inject()
            proc = lab.cli(*deploy_args(stack, app), env=env)
            case.detected()
        finally:
            restart_state_service()
        line = case.check_exit(proc)
        assert line == (
            f"Error: environment-state service at {lab.env['AUTO_STATE_URL']} unreachable after 3 attempts "
            "(last: ConnectionError): check AUTO_STATE_URL and that the service is up"
        )
        assert case.detect_seconds < 10
        assert services_of(lab, front["live"], stack) == []  # refused before Swarm
        assert records(lab, stack) == []
        assert state(lab).lock_status("lab") is None
        rerun = lab.cli(*deploy_args(stack, app, extra=("--timeout", "60")))
        assert rerun.returncode == 0, rerun.stderr


def test_case_09_the_state_service_goes_down_before_the_deploy_is_recorded(
    lab: Lab, front, fault, stack, tmp_path
) -> None:
    settle = [line.replace("monitor: 1s", "monitor: 3s") for line in FAST_DEPLOY]
    path = compose(tmp_path, "app.yml", {"web": ("auto-lab/web:1", settle)})
    # The default settings: the record is retried until AUTO_STATE_DEADLINE (60 s), not AUTO_STATE_RETRIES times.
    env = lab.env
    with fault(9) as case:
        deploy = Background(lab, *deploy_args(stack, path, extra=("--timeout", "60", "--lock-ttl", "3")), env=env)
        try:
            deploy.wait_line(f"{stack}_web: ", timeout=30)  # in Swarm; waiting for it to converge
            injected = case.inject()
            kill_state_service()
            case.detected(deploy.wait_line("could not renew the lock", timeout=20, after=injected))
            deploy.wait_line(f"{stack}_web: 1/1 running, converged", timeout=30)  # now it records: retrying
            restart_state_service()
            proc = deploy.wait(timeout=60)
        finally:
            deploy.kill()
            restart_state_service()
        case.check_exit(proc)
        assert "not recorded" not in proc.stderr, proc.stderr
        report = summary(proc)
        assert report["result"] == "converged" and report["recorded"] is True
        assert [r["result"] for r in records(lab, stack)] == ["succeeded"]  # recorded once, retries included
        assert state(lab).lock_status("lab") is None
        rerun = lab.cli(*deploy_args(stack, path, extra=("--timeout", "60")))
        assert rerun.returncode == 0, rerun.stderr
        assert [r["result"] for r in records(lab, stack)] == ["succeeded", "succeeded"]


class Proxy:
    """A plain-HTTP proxy on loopback in front of the lab's state service (HTTPS, its CA): it passes requests on,
    holds every answer ``delay`` seconds, or answers ``garbage`` instead."""

    def __init__(self, upstream_port: int, ca: str) -> None:
        self.delay = 0.0
        self.garbage: bytes | None = None
        context = ssl.create_default_context(cafile=ca)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _relay(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if proxy.garbage is not None:
                    self._answer(200, proxy.garbage, "application/json")
                    return
                upstream = http.client.HTTPSConnection("127.0.0.1", upstream_port, context=context, timeout=30)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                    upstream.request(self.command, self.path, body=body or None, headers=headers)
                    answer = upstream.getresponse()
                    data = answer.read()
                finally:
                    upstream.close()
                time.sleep(proxy.delay)
                self._answer(answer.status, data, answer.getheader("Content-Type") or "application/json")

            def _answer(self, status: int, data: bytes, kind: str) -> None:
                with contextlib.suppress(OSError):  # a client that gave up on a slow answer
                    self.send_response(status)
                    self.send_header("Content-Type", kind)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _relay  # noqa: N815 - http.server's naming

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_case_10_the_state_service_answers_slowly_or_with_garbage(lab: Lab, front, fault, stack, app) -> None:
    proxy = Proxy(state_port(), lab.env["AUTO_STATE_CA"])
    env = {k: v for k, v in lab.env.items() if k != "AUTO_STATE_CA"}
    env.update(AUTO_STATE_URL=proxy.url, AUTO_STATE_TIMEOUT="1", AUTO_STATE_RETRIES="1", AUTO_STATE_DEADLINE="5")
    try:
        with fault(10) as case:
            proxy.delay = 3.0  # three times the read timeout
            case.inject()
            slow = lab.cli(*deploy_args(stack, app), env=env)
            case.detected()
            line = case.check_exit(slow)
            assert line.startswith(f"Error: environment-state service at {proxy.url} "), line
            assert case.detect_seconds < 8  # AUTO_STATE_DEADLINE bounds every call
            proxy.delay, proxy.garbage = 0.0, b'{"name": "lab", "live_colour": "purple", "clusters": \x00\xff'
            garbage = lab.cli(*deploy_args(stack, app), env=env)
            line = case.check_exit(garbage)
            assert line.startswith("Error: ") and "answer is not JSON" in line, line
            proxy.garbage = json.dumps(MALFORMED).encode()  # JSON, but a manager address that is no address
            wrong = lab.cli(*deploy_args(stack, app), env=env)
            assert "10.213.1.300" in case.check_exit(wrong)
            assert services_of(lab, front["live"], stack) == []
            assert records(lab, stack) == []
            assert state(lab).lock_status("lab") is None
            proxy.garbage = None  # the fault is gone: the same deploy through the same proxy goes through
            rerun = lab.cli(*deploy_args(stack, app, extra=("--timeout", "60")), env=env)
            assert rerun.returncode == 0, rerun.stderr
    finally:
        proxy.close()


@contextlib.contextmanager
def state_service_on_a_small_tmpfs(lab: Lab) -> Iterator[tuple[str, Path]]:
    """A second state service, its database on a 1 MiB tmpfs, seeded with environment ``lab`` as the lab's own
    service has it; ``(its URL, the tmpfs)``. Stopped and unmounted afterwards."""
    mount = Path(tempfile.mkdtemp(prefix="auto-fault-disk-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(mount)], check=True)
    server = None
    try:
        token = Path(lab.env["AUTO_STATE_TOKEN_FILE"]).read_text().strip()
        with socket_port() as port:
            pass
        server = subprocess.Popen(
            [sys.executable, "-m", "deployer", "state", "serve", "--db", str(mount / "state.db"),
             "--listen", f"127.0.0.1:{port}"],
            env={**os.environ, "AUTO_STATE_TOKEN": token}, cwd=ROOT, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        client = StateClient(url, token=token, retries=0)
        wait_for(lambda: _healthy(client), 20, "the second state service")
        lab_env = state(lab).get_environment("lab")
        clusters = {c: (lab_env.clusters[c].manager_address, lab_env.clusters[c].docker_port) for c in lab_env.clusters}
        client.put_environment("lab", lab_env.live_colour, clusters, actor="fault matrix")
        yield url, mount
    finally:
        stop_process(server)
        subprocess.run(["umount", str(mount)], check=False)
        mount.rmdir()


@contextlib.contextmanager
def socket_port() -> Iterator[int]:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def _healthy(client: StateClient) -> bool:
    try:
        client.health()
    except Exception:  # noqa: BLE001 - not up yet, whatever the reason
        return False
    return True


def fill(directory: Path) -> Path:
    """Fill the file system of ``directory`` to the last byte; the file that holds it all."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (65536, 512):  # big blocks, then the last partial one
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * size):
                    pass
    finally:
        os.close(fd)
    return filler


def test_case_11_the_state_services_disk_is_full(lab: Lab, front, fault, stack, app) -> None:
    with state_service_on_a_small_tmpfs(lab) as (url, mount), fault(11) as case:
        env = {k: v for k, v in lab.env.items() if k not in ("AUTO_STATE_CA", "AUTO_STATE_TOKEN_FILE")}
        env.update(AUTO_STATE_URL=url, AUTO_STATE_TOKEN=Path(lab.env["AUTO_STATE_TOKEN_FILE"]).read_text().strip())
        filler = fill(mount)
        case.inject()
        proc = lab.cli(*deploy_args(stack, app), env=env)
        case.detected()
        line = case.check_exit(proc)
        assert line == (
            f"Error: environment-state service at {url} cannot store anything (HTTP 507): its disk is full (or "
            "failing): nothing was written; free space on the service's volume"
        )
        assert services_of(lab, front["live"], stack) == []  # refused at the lock, before Swarm
        client = StateClient.from_env(env)  # reads still work on the full disk
        assert client.deployments("lab", stack=stack) == [] and client.lock_status("lab") is None
        assert client.get_environment("lab").live_colour == front["live"]
        filler.unlink()
        rerun = lab.cli(*deploy_args(stack, app, extra=("--timeout", "60")), env=env)
        assert rerun.returncode == 0, rerun.stderr
        assert [r["result"] for r in client.deployments("lab", stack=stack)] == ["succeeded"]
