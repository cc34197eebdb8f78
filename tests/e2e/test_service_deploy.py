"""The generated service, built from its own Dockerfile on the lab and deployed with the real CLI.

The template is baked with its default answers, its image built on both lab daemons on the lab's offline
``auto-lab/python:3.11`` base (``deployer.lab.service_image``), and deployed the way its pipeline job does:
``auto-deploy deploy --env lab --stack SLUG --compose-file docker-stack.yml --rollback-on-failure`` with
``IMAGE`` set. The lab is one node without IPVS, so the job's environment also says ``PUBLISH_MODE=host``
and ``REPLICAS=1`` (the stack file's production defaults are the routing mesh and two replicas).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from deployer.lab import service_image
from tests.support import LAB_ADDRESSES, Lab, bake_service, http_get

pytestmark = pytest.mark.lab

BLUE = LAB_ADDRESSES["blue"]
SLUG, PORT, PACKAGE = "orders", 8080, "orders"  # the template's default answers
LAB_STACK_ENV = {"PUBLISH_MODE": "host", "REPLICAS": "1"}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template baked with its defaults."""
    return bake_service(tmp_path_factory)


@pytest.fixture(scope="module")
def image(lab: Lab, project: Path) -> Iterator[str]:
    """The service's image, built on both lab daemons from the generated Dockerfile; removed afterwards."""
    tag = f"auto-lab/{SLUG}:{uuid.uuid4().hex[:8]}"
    result = service_image.build_service_image(project, tag, cert_path=lab.env["AUTO_DOCKER_CERT_PATH"])
    print(json.dumps(result))
    yield tag
    lab.remove_images(tag)


@pytest.fixture
def service_stack(lab: Lab) -> Iterator[str]:
    """The stack name the pipeline uses (the slug), removed before and after: it publishes a fixed port."""
    lab.remove_stack(SLUG)
    yield SLUG
    lab.remove_stack(SLUG)


def pipeline_deploy(
    lab: Lab, project: Path, stack: str, image: str, *extra_files: Path
) -> tuple[subprocess.CompletedProcess, float]:
    """The deploy job's command, run as a separate process in the project directory (``extra_files``: compose
    files merged over the service's own, as ``docker stack deploy -c a -c b`` merges them)."""
    env = {**lab.env, **LAB_STACK_ENV, "IMAGE": image}
    argv = [sys.executable, "-m", "deployer", "deploy", "--env", "lab", "--stack", stack]
    argv += ["--compose-file", "docker-stack.yml", "--rollback-on-failure", "--json"]
    for extra in extra_files:
        argv += ["--compose-file", str(extra)]
    started = time.monotonic()
    proc = subprocess.run(argv, cwd=project, env=env, capture_output=True, text=True, timeout=420, check=False)
    return proc, time.monotonic() - started


def test_generated_service_deploys_healthy(lab: Lab, project: Path, image: str, service_stack: str) -> None:
    proc, seconds = pipeline_deploy(lab, project, service_stack, image)
    print(f"deploy took {seconds:.1f} s")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["result"] == "converged" and summary["colour"] == "blue"
    assert [(s["service"], s["running"], s["desired"]) for s in summary["services"]] == [(f"{SLUG}_{SLUG}", 1, 1)]

    status, body = http_get(f"http://{BLUE}:{PORT}/health")
    assert status == 200 and json.loads(body) == {"status": "ok"}

    api = lab.docker("blue")
    (task,) = api.tasks(filters={"service": f"{SLUG}_{SLUG}", "desired-state": "running"})
    assert task["Spec"]["ContainerSpec"]["Image"].split("@")[0] == image
    (container,) = api.containers(filters={"label": f"com.docker.swarm.task.id={task['ID']}"})
    assert api.inspect_container(container["Id"])["State"]["Health"]["Status"] == "healthy"
    assert api.inspect_container(container["Id"])["Config"]["User"] == "10001"
    api.close()

    from deployer.state.client import StateClient

    environment = StateClient.from_env(lab.env).get_environment("lab")
    stacks = {s.name: s for s in environment.clusters["blue"].stacks}
    (service,) = stacks[SLUG].services
    assert (service.name, service.image, service.replicas) == (SLUG, image, 1)
    assert service.docs is not None
    assert (service.docs.version, service.docs.spec_url) == ("v1", "https://auto.pages.example.com/orders/openapi.json")


@pytest.fixture
def unhealthy_image(lab: Lab, image: str, tmp_path: Path) -> Iterator[str]:
    """The service's image with a command that serves HTTP but has no /health: its health check fails."""
    (tmp_path / "Dockerfile").write_text(f'FROM {image}\nCMD ["python", "-m", "http.server", "{PORT}"]\n')
    tag = f"{image}-unhealthy"
    cert = lab.env["AUTO_DOCKER_CERT_PATH"]
    service_image.build_service_image(tmp_path, tag, cert_path=cert, ensure_base=False)
    yield tag
    lab.remove_images(tag)


def test_unhealthy_service_is_rolled_back_and_exits_3(
    lab: Lab, project: Path, unhealthy_image: str, service_stack: str, tmp_path: Path
) -> None:
    # The template's own health check (every 10 s, 3 retries, 15 s to start) takes three minutes to fail three
    # tasks; the same check, faster, fails them in well under one: what is tested is the deployer's answer.
    # docker stack deploy refuses to merge files of different compose versions: the same as the service's.
    version = yaml.safe_load((project / "docker-stack.yml").read_text())["version"]
    faster = tmp_path / "faster-healthcheck.yml"
    faster.write_text(
        f'version: "{version}"\nservices:\n  {SLUG}:\n    healthcheck:\n      interval: 2s\n      timeout: 2s\n'
        "      retries: 2\n      start_period: 1s\n"
    )
    proc, seconds = pipeline_deploy(lab, project, service_stack, unhealthy_image, faster)
    print(f"failed deploy took {seconds:.1f} s")
    assert proc.returncode == 3, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["result"] == "rolled-back"
    assert "tasks keep failing" in proc.stderr
    assert summary["rollback"][0]["detail"] == "removed (created by the failed deploy)"
    api = lab.docker("blue")
    assert api.services(filters={"label": f"com.docker.stack.namespace={SLUG}"}) == []
    api.close()
