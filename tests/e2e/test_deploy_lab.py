"""End-to-end deploys on the lab: real swarm managers over mutual TLS, the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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


def test_unknown_environment_exits_2(lab) -> None:
    proc = lab.cli("resolve", "--env", "nowhere")
    assert proc.returncode == 2
    assert proc.stderr.startswith("Error: unknown environment 'nowhere'")


def test_resolve_prints_live_colour(lab) -> None:
    proc = lab.cli("resolve", "--env", "lab", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["docker_host"] == f"tcp://{BLUE}:2376" and data["colour"] == "blue"


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
