"""End-to-end deploys on the lab: real swarm managers over mutual TLS, the real CLI."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from deployer.converge import UNSCHEDULABLE_GRACE_SECONDS
from deployer.lab import certs
from tests.support import http_get

pytestmark = pytest.mark.lab

BLUE = "10.213.1.2"


def compose(tmp_path: Path, name: str, services: dict) -> str:
    """Write a compose file; services maps name -> (image, extra YAML lines)."""
    lines = ["services:"]
    for service, (image, extra) in services.items():
        lines += [f"  {service}:", f"    image: {image}"]
        lines += [f"    {line}" for line in extra]
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return str(path)


FAST_UPDATE = [
    "deploy:",
    "  replicas: 1",
    "  update_config: {order: stop-first, failure_action: pause, monitor: 2s}",
    "  rollback_config: {order: stop-first, monitor: 1s}",
    "  restart_policy: {condition: any, delay: 1s}",
]
CRASH = ['command: ["sh", "-c", "sleep 1; exit 3"]']


def deploy(lab, stack: str, *files: str, extra: tuple[str, ...] = ()) -> tuple[int, dict | None, str]:
    args = ["deploy", "--env", "lab", "--stack", stack, "--resolve-image", "never", "--json", *extra]
    for f in files:
        args += ["-c", f]
    proc = lab.cli(*args)
    summary = json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else None
    return proc.returncode, summary, proc.stderr


def service_of(lab, stack: str, name: str, colour: str = "blue") -> dict | None:
    api = lab.docker(colour)
    found = [s for s in api.services(filters={"name": f"{stack}_{name}"}) if s["Spec"]["Name"] == f"{stack}_{name}"]
    return {"api": api, **found[0]} if found else None


def running_images(service: dict) -> list[str]:
    tasks = service["api"].tasks(filters={"service": service["ID"], "desired-state": "running"})
    return sorted(t["Spec"]["ContainerSpec"]["Image"].split("@")[0] for t in tasks if t["Status"]["State"] == "running")


def test_create_then_update_then_rollback_command(lab, stack, tmp_path) -> None:
    port = ["ports:", "  - {target: 8080, published: 18181, protocol: tcp, mode: host}"]
    v1 = compose(tmp_path, "v1.yml", {"web": ("auto-lab/web:1", [*port, *FAST_UPDATE])})
    code, summary, err = deploy(lab, stack, v1)
    assert code == 0, err
    assert summary["result"] == "converged" and summary["colour"] == "blue"
    assert summary["manager"] == f"tcp://{BLUE}:2376"
    assert [(s["service"], s["running"], s["desired"]) for s in summary["services"]] == [(f"{stack}_web", 1, 1)]
    assert "version 1" in http_get(f"http://{BLUE}:18181/", timeout=10)[1]

    v2 = compose(tmp_path, "v2.yml", {"web": ("auto-lab/web:2", [*port, *FAST_UPDATE])})
    code, summary, err = deploy(lab, stack, v2)
    assert code == 0, err
    assert summary["services"][0]["update_state"] == "completed"
    assert running_images(service_of(lab, stack, "web")) == ["auto-lab/web:2"]
    assert "version 2" in http_get(f"http://{BLUE}:18181/", timeout=10)[1]

    # The deploy was recorded in the environment-state service.
    from deployer.state.client import StateClient

    env = StateClient.from_env(lab.env).get_environment("lab")
    stacks = {s.name: s for s in env.clusters["blue"].stacks}
    assert [(s.name, s.image, s.replicas) for s in stacks[stack].services] == [("web", "auto-lab/web:2", 1)]

    proc = lab.cli("status", "--env", "lab", "--stack", stack)
    assert proc.returncode == 0, proc.stderr
    assert f"{stack}_web: 1/1 running" in proc.stdout

    proc = lab.cli("rollback", "--env", "lab", "--stack", stack, "--service", "web", "--timeout", "60")
    assert proc.returncode == 0, proc.stderr
    assert running_images(service_of(lab, stack, "web")) == ["auto-lab/web:1"]


def test_crashing_update_is_rolled_back_and_exits_3(lab, stack, tmp_path) -> None:
    good = compose(tmp_path, "good.yml", {"web": ("auto-lab/web:1", FAST_UPDATE)})
    assert deploy(lab, stack, good)[0] == 0
    bad = compose(tmp_path, "bad.yml", {"web": ("auto-lab/web:2", [*CRASH, *FAST_UPDATE])})
    code, summary, err = deploy(lab, stack, bad, extra=("--rollback-on-failure", "--timeout", "90"))
    assert code == 3, err
    assert summary["result"] == "rolled-back"
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"Error: deploy of {stack} failed: {stack}_web: ")
    assert last.endswith("; rolled back to the previous version")
    assert running_images(service_of(lab, stack, "web")) == ["auto-lab/web:1"]


def test_swarm_auto_rollback_still_exits_3(lab, stack, tmp_path) -> None:
    """docker/cli#6752: the CLI exits 0 after Swarm rolled back; we must not."""
    auto = [line.replace("failure_action: pause", "failure_action: rollback") for line in FAST_UPDATE]
    good = compose(tmp_path, "good.yml", {"web": ("auto-lab/web:1", auto)})
    assert deploy(lab, stack, good)[0] == 0
    bad = compose(tmp_path, "bad.yml", {"web": ("auto-lab/web:2", [*CRASH, *auto])})
    code, summary, err = deploy(lab, stack, bad, extra=("--timeout", "90"))
    assert code == 3, err
    assert "Swarm rolled the update back (rollback_" in err
    assert running_images(service_of(lab, stack, "web")) == ["auto-lab/web:1"]


def test_new_service_that_crashes_is_removed_with_rollback(lab, stack, tmp_path) -> None:
    bad = compose(tmp_path, "bad.yml", {"web": ("auto-lab/web:1", [*CRASH, *FAST_UPDATE])})
    code, summary, err = deploy(lab, stack, bad, extra=("--rollback-on-failure", "--timeout", "90"))
    assert code == 3, err
    assert "tasks keep failing" in err
    assert summary["rollback"][0]["detail"] == "removed (created by the failed deploy)"
    assert service_of(lab, stack, "web") is None


def test_timeout_exits_3(lab, stack, tmp_path) -> None:
    pending = ["deploy:", "  placement: {constraints: [node.labels.auto-lab-never == yes]}"]
    f = compose(tmp_path, "pending.yml", {"web": ("auto-lab/web:1", pending)})
    started = time.monotonic()
    code, summary, err = deploy(lab, stack, f, extra=("--timeout", "4"))
    assert code == 3, err
    assert time.monotonic() - started < 30
    assert summary["result"] == "timed-out"
    # Swarm's own reason is in the message (the grace for an unschedulable task is longer than this timeout).
    assert (
        f"Error: deploy of {stack} did not converge within 4 s: {stack}_web: starting; task pending: "
        "no suitable node (scheduling constraints not satisfied on 1 node) (0/1 running)"
    ) in err


def test_a_task_no_node_can_take_fails_the_deploy_after_the_grace_not_at_the_timeout(lab, stack, tmp_path) -> None:
    pending = ["deploy:", "  placement: {constraints: [node.labels.auto-lab-never == yes]}"]
    f = compose(tmp_path, "pending.yml", {"web": ("auto-lab/web:1", pending)})
    started = time.monotonic()
    code, summary, err = deploy(lab, stack, f, extra=("--timeout", "120"))
    took = time.monotonic() - started
    assert code == 3, err
    assert UNSCHEDULABLE_GRACE_SECONDS <= took < UNSCHEDULABLE_GRACE_SECONDS + 20, took
    assert summary["result"] == "failed"
    assert (
        f"Error: deploy of {stack} failed: {stack}_web: Swarm cannot schedule a task: "
        "no suitable node (scheduling constraints not satisfied on 1 node) (0/1 running)"
    ) in err


def test_another_teams_broken_service_does_not_fail_this_deploy(lab, stack, tmp_path) -> None:
    theirs = compose(tmp_path, "theirs.yml", {"broken": ("auto-lab/web:1", CRASH)})
    assert deploy(lab, stack, theirs, extra=("--no-wait",))[0] == 0
    mine = compose(tmp_path, "mine.yml", {"api": ("auto-lab/web:2", FAST_UPDATE)})
    code, summary, err = deploy(lab, stack, mine)
    assert code == 0, err
    assert [s["service"] for s in summary["services"]] == [f"{stack}_api"]
    assert service_of(lab, stack, "broken") is not None  # --prune is never implied


def test_dry_run_prints_the_command_and_touches_nothing(lab, stack, tmp_path) -> None:
    f = compose(tmp_path, "svc.yml", {"web": ("auto-lab/web:1", [])})
    proc = lab.cli("deploy", "--env", "lab", "--stack", stack, "-c", f, "--resolve-image", "never", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == (
        f"DOCKER_HOST=tcp://{BLUE}:2376 DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH='<private temporary directory>' "
        f"docker stack deploy --compose-file {f} --resolve-image never --detach=true {stack}"
    )
    assert service_of(lab, stack, "web") is None


def test_wrong_ca_is_refused_and_nothing_deployed(lab, stack, tmp_path) -> None:
    wrong = certs.make_ca("not the lab CA")
    bundle = certs.write_bundle(tmp_path / "wrong", wrong, certs.issue(wrong, "intruder", client=True))
    f = compose(tmp_path, "svc.yml", {"web": ("auto-lab/web:1", [])})
    proc = lab.cli("deploy", "--env", "lab", "--stack", stack, "-c", f, "--cert-dir", str(bundle))
    assert proc.returncode == 4, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"Error: TLS with the Docker Engine at tcp://{BLUE}:2376 failed (certificate not trusted or client "
        "certificate refused): check the CA and client certificate for this cluster"
    )
    assert service_of(lab, stack, "web") is None


def test_unknown_environment_exits_2(lab) -> None:
    proc = lab.cli("resolve", "--env", "nowhere")
    assert proc.returncode == 2
    assert proc.stderr.startswith("Error: unknown environment 'nowhere'")


def test_resolve_prints_live_colour(lab) -> None:
    proc = lab.cli("resolve", "--env", "lab", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["docker_host"] == f"tcp://{BLUE}:2376" and data["colour"] == "blue"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_state_service_down_is_a_clear_error_after_bounded_retries(lab) -> None:
    env = {**lab.env, "AUTO_STATE_URL": f"http://127.0.0.1:{_free_port()}", "AUTO_STATE_RETRIES": "2"}
    env.pop("AUTO_STATE_CA", None)
    started = time.monotonic()
    proc = lab.cli("resolve", "--env", "lab", env=env)
    assert proc.returncode == 4
    assert time.monotonic() - started < 20
    line = proc.stderr.strip()
    assert line.startswith("Error: environment-state service at http://127.0.0.1:") and "after 3 attempts" in line


def test_malformed_state_answer_is_refused(lab, tmp_path) -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            body = json.dumps(
                {
                    "name": "lab",
                    "live_colour": "blue",
                    "revision": 1,
                    "clusters": {
                        "blue": {"manager_address": "10.213.1.300", "docker_port": 2376, "live": True, "stacks": []},
                        "green": {"manager_address": "10.213.2.2", "docker_port": 2376, "live": False, "stacks": []},
                    },
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {**lab.env, "AUTO_STATE_URL": f"http://127.0.0.1:{server.server_address[1]}"}
        env.pop("AUTO_STATE_CA", None)
        f = compose(tmp_path, "svc.yml", {"web": ("auto-lab/web:1", [])})
        proc = lab.cli("deploy", "--env", "lab", "--stack", "never", "-c", f, env=env)
    finally:
        server.shutdown()
    assert proc.returncode == 4
    assert proc.stderr.startswith("Error: ") and "10.213.1.300" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_no_secret_in_any_output(lab, stack, tmp_path) -> None:
    token = Path(lab.env["AUTO_STATE_TOKEN_FILE"]).read_text().strip()
    key = (Path(lab.env["AUTO_DOCKER_CERT_PATH"]) / "key.pem").read_text()
    env = {k: v for k, v in lab.env.items() if k != "AUTO_DOCKER_CERT_PATH"}
    for part, name in (("ca", "AUTO_DOCKER_CA"), ("cert", "AUTO_DOCKER_CERT"), ("key", "AUTO_DOCKER_KEY")):
        env[name] = (Path(lab.env["AUTO_DOCKER_CERT_PATH"]) / f"{part}.pem").read_text()
    f = compose(tmp_path, "svc.yml", {"web": ("auto-lab/web:1", FAST_UPDATE)})
    outputs = []
    for args in (
        ("deploy", "--env", "lab", "--stack", stack, "-c", f, "--resolve-image", "never", "--json"),
        ("deploy", "--env", "lab", "--stack", stack, "-c", f, "--dry-run"),
        ("status", "--env", "lab", "--stack", stack, "--json"),
    ):
        proc = lab.cli(*args, env=env)
        assert proc.returncode == 0, proc.stderr
        outputs.append(proc.stdout + proc.stderr)
    key_body = "".join(key.strip().splitlines()[1:-1])
    for text in outputs:
        assert token not in text
        assert key_body[:40] not in text and "PRIVATE KEY" not in text


def test_sigterm_mid_wait_removes_the_private_tls_directory(lab, stack, tmp_path) -> None:
    """GitLab cancels a job with SIGTERM: the key material written for the deploy must not stay behind."""
    import signal
    import subprocess
    import sys

    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    pending = ["deploy:", "  placement: {constraints: [node.labels.auto-lab-never == yes]}"]
    f = compose(tmp_path, "pending.yml", {"web": ("auto-lab/web:1", pending)})
    env = {**lab.env, "TMPDIR": str(private_tmp)}
    argv = [sys.executable, "-m", "deployer", "deploy", "--env", "lab", "--stack", stack, "-c", f]
    proc = subprocess.Popen(
        [*argv, "--resolve-image", "never", "--timeout", "120"], env=env, stderr=subprocess.PIPE, text=True
    )
    for line in proc.stderr:
        if "starting" in line:  # waiting for convergence: the TLS directory exists now
            assert [p.name[:16] for p in private_tmp.iterdir()] == ["auto-deploy-tls-"]
            break
    proc.send_signal(signal.SIGTERM)
    rest = proc.stderr.read()
    assert proc.wait(timeout=30) == 130
    assert rest.strip().splitlines()[-1] == "Error: interrupted; temporary TLS material was removed"
    assert list(private_tmp.iterdir()) == []
