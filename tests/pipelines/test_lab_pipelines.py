"""A generated service's deploy jobs, run with gitlab-ci-local's shell executor against the lab.

* On the feature branch, ``build`` (logged in to a private registry beside the lab with the job's credentials,
  built on the runner's daemon, pushed) then ``deploy-staging`` (logged in again; the lab's live node pulls the
  private image through ``--with-registry-auth``).
* With the production deploy and the switch in its descriptor: ``deploy-production`` deploys into the idle colour
  of the lab and the ``switch`` job makes it live behind HAProxy.

Without gitlab-ci-local (``make gitlab-ci-local``), rsync, git or python3 the tests skip, or fail when CI=true.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.pipelines import gitlab_ci_local as gcl
from tests.pipelines.gitlab_ci_local import assert_passed
from tests.pipelines.projects import (
    FEATURE,
    PORT,
    SLUG,
    service_run,
)
from tests.pipelines.registry import Registry
from tests.support import LAB_ADDRESSES, Lab, http_get, other_colour, unavailable

pytestmark = pytest.mark.system  # runs gitlab-ci-local (npm) and Debian's docker-registry

DEPLOY_TIMEOUT = 600


# --- deploy-staging against the lab --------------------------------------------------------------


def lab_variables(lab: Lab, path: Path) -> Path:
    """The CI/CD variables a project would hold for the lab environment, as gitlab-ci-local's variables file:
    the Docker TLS files as file-type variables (what ``auto-pipelines secrets push`` stores), the state
    service's URL, token and CA."""
    certs = Path(lab.env["AUTO_DOCKER_CERT_PATH"])

    def file_variable(source: Path) -> dict:
        return {"type": "file", "values": {"*": source.read_text()}}

    variables = {
        "AUTO_DOCKER_CA": file_variable(certs / "ca.pem"),
        "AUTO_DOCKER_CERT": file_variable(certs / "cert.pem"),
        "AUTO_DOCKER_KEY": file_variable(certs / "key.pem"),
        "AUTO_STATE_URL": lab.env["AUTO_STATE_URL"],
        "AUTO_STATE_TOKEN": Path(lab.env["AUTO_STATE_TOKEN_FILE"]).read_text().strip(),
        "AUTO_STATE_CA": file_variable(Path(lab.env["AUTO_STATE_CA"])),
    }
    path.write_text(yaml.safe_dump(variables))
    return path


def build_commit_image(lab: Lab, repo: Path, branch: str, scratch: Path) -> tuple[str, str]:
    """The service's image as the build job would tag it (``IMAGE:SHORT_SHA`` of ``branch``'s commit), built
    on both lab daemons from the committed tree; ``(repository, tag)``."""
    from deployer.lab import service_image

    gcl.checkout(repo, branch)
    sha = gcl.git(repo, "rev-parse", "HEAD").strip()
    context = scratch / "context"
    context.mkdir()
    archive = scratch / "commit.tar"
    gcl.git(repo, "archive", "--format=tar", "-o", str(archive), "HEAD")
    with tarfile.open(archive) as tar:
        tar.extractall(context, filter="data")
    repository = f"auto-lab/{SLUG}-{uuid.uuid4().hex[:6]}"
    tag = f"{repository}:{sha[:8]}"  # gitlab-ci-local's CI_COMMIT_SHORT_SHA has 8 characters
    service_image.build_service_image(context, tag, cert_path=lab.env["AUTO_DOCKER_CERT_PATH"])
    return repository, tag


@pytest.fixture
def runner_tools(tmp_path: Path) -> Path:
    """The runner's "toolkit image": auto-deploy (this checkout) and the docker CLI on PATH, nothing else."""
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "auto-deploy").symlink_to(Path(sys.prefix) / "bin" / "auto-deploy")
    return tools


def lab_job(lab: Lab, repo: Path, branch: str, job: str, tools: Path, **options: Any) -> gcl.Result:
    """Run one deploy or switch ``job`` of ``repo`` on ``branch`` against the lab, its CI/CD variables in a
    variables file that exists only while the job runs."""
    variables_file = lab_variables(lab, repo / ".gitlab-ci-local-variables.yml")
    try:
        # Where the switch finds HAProxy is the runner host's setting (HAProxy runs beside it).
        haproxy = {name: lab.env[name] for name in ("AUTO_HAPROXY_SOCKET", "AUTO_HAPROXY_BACKEND")}
        result = service_run(
            repo, branch, [job], DEPLOY_TIMEOUT, path_prepend=[str(tools)], runner_env=haproxy, **options
        )
    finally:
        variables_file.unlink()
    print(f"{repo.name} {job} job: {result.seconds:.0f} s")
    return result


def deploy_inputs(job: str, repository: str) -> dict[str, str]:
    """The deploy component's inputs for the lab: its environment, the image built there, no registry pulls."""
    return {f"{job}:environment": "lab", f"{job}:image": repository, f"{job}:resolve-image": "never"}


# No registry in the lab: the deploy components log in only where CI_REGISTRY is set. The lab is one node
# without IPVS: the stack file's host-mode switch and one replica.
LAB_DEPLOY_VARIABLES = {"CI_REGISTRY": "", "PUBLISH_MODE": "host", "REPLICAS": "1"}


def running_images(lab: Lab, colour: str, *, digests: bool = False) -> list[str]:
    """The images of the service's running tasks on one colour (none where the service does not exist),
    without the ``@sha256:…`` Swarm pins them by unless ``digests``."""
    import docker.errors

    api = lab.docker(colour)
    try:
        tasks = api.tasks(filters={"service": f"{SLUG}_{SLUG}", "desired-state": "running"})
    except docker.errors.NotFound:
        return []
    finally:
        api.close()
    images = [t["Spec"]["ContainerSpec"]["Image"] for t in tasks]
    return images if digests else [image.split("@")[0] for image in images]


def assert_healthy(colour: str) -> None:
    status, body = http_get(f"http://{LAB_ADDRESSES[colour]}:{PORT}/health", timeout=30)
    assert status == 200 and json.loads(body) == {"status": "ok"}


@pytest.fixture(scope="module")
def registry(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A private registry beside the lab (HTTPS from the lab's CA, basic auth): the GitLab container registry."""
    binary = shutil.which("docker-registry")
    if binary is None:
        unavailable("docker-registry is not installed (make system installs it)")
    started = Registry(tmp_path_factory.mktemp("registry"), binary).start()
    try:
        yield started
    finally:
        started.stop()


def push_base_image(lab: Lab, registry: Registry, colour: str, project: Path, scratch: Path) -> str:
    """The lab's offline ``auto-lab/python:3.11`` (with ``project``'s wheels) pushed to ``registry`` from the
    daemon of ``colour``, where the build job's ``docker build --pull`` finds it; its reference."""
    from deployer.lab import runner as lab_runner
    from deployer.lab import service_image

    cert = lab.env["AUTO_DOCKER_CERT_PATH"]
    requirements = service_image.project_requirements(project)
    service_image.ensure_base_image(requirements, colours=(colour,), cert_path=cert)
    reference = f"{registry.address}/auto/python:3.11"
    env = {**service_image.docker_env(colour, cert, lab.env), "DOCKER_CONFIG": str(scratch / "docker-config")}
    docker = service_image.docker_cli(lab.env)
    login = [docker, "login", "--username", registry.user, "--password-stdin", registry.address]
    lab_runner.run(login, input=registry.password.encode(), env=env)
    service_image.run([docker, "tag", service_image.BASE_IMAGE, reference], env=env)
    service_image.run([docker, "push", reference], env=env, timeout=300)
    return reference


@pytest.mark.lab
def test_service_build_then_deploy_staging_through_a_private_registry(
    lab: Lab,
    registry: Registry,
    service: Path,
    components: list,
    gitlab_ci_local: str,
    runner_tools: Path,
    tmp_path: Path,
) -> None:
    """The feature branch's pipeline as GitLab runs it: ``build`` logs in to the registry with the job's
    credentials, builds the image and pushes it; ``deploy-staging`` logs in, and the live colour's node
    pulls the private image through ``--with-registry-auth`` (the image never existed there before)."""
    from deployer.lab import service_image

    live = lab.live_colour()
    builder = other_colour(live)  # the runner's daemon: not the one that runs the service
    base = push_base_image(lab, registry, builder, service, tmp_path)
    repository = f"{registry.address}/team/{SLUG}"
    gcl.checkout(service, FEATURE)
    tag = f"{repository}:{gcl.git(service, 'rev-parse', 'HEAD').strip()[:8]}"
    job_registry = {"CI_REGISTRY": registry.address, "CI_REGISTRY_USER": registry.user}
    job_registry["CI_REGISTRY_PASSWORD"] = registry.password
    options = {"gcl": gitlab_ci_local, "git_config": components}
    lab.remove_stack(SLUG)
    try:
        built = service_run(
            service, FEATURE, ["build"], DEPLOY_TIMEOUT, variables=job_registry,
            inputs={"build:image": repository, "build:base-image": base, "build:docker-daemon": "runner"},
            # A shell runner with its own daemon (the classic builder: this docker CLI has no buildx).
            runner_env=service_image.docker_env(builder, lab.env["AUTO_DOCKER_CERT_PATH"], {}),
            **options,
        )  # fmt: skip
        print(f"service build job: {built.seconds:.0f} s")
        assert_passed(built, "build")
        status, tags = registry.get(f"team/{SLUG}/tags/list")
        assert (status, json.loads(tags)) == (200, {"name": f"team/{SLUG}", "tags": [tag.rsplit(":", 1)[1]]})
        assert registry.get(f"team/{SLUG}/tags/list", auth=False)[0] == 401  # private

        api = lab.docker(live)
        try:
            assert api.images(name=repository) == []  # only the registry has it
        finally:
            api.close()
        deployed = lab_job(
            lab, service, FEATURE, "deploy-staging", runner_tools,
            variables={**LAB_DEPLOY_VARIABLES, **job_registry},
            inputs={"deploy-staging:environment": "lab", "deploy-staging:image": repository},  # resolve-image: always
            **options,
        )  # fmt: skip
        assert_passed(deployed, "deploy-staging")
        for result in (built, deployed):
            assert registry.password not in result.output
        assert not (service / ".docker-auth").exists()  # the job-local login is gone with the job

        from deployer.state.client import StateClient

        cluster = StateClient.from_env(lab.env).get_environment("lab").clusters[live]
        assert running_images(lab, live) == [tag]
        assert all("@sha256:" in image for image in running_images(lab, live, digests=True))  # resolved
        assert_healthy(live)
        assert [s.image for s in {s.name: s for s in cluster.stacks}[SLUG].services] == [tag]
    finally:
        lab.remove_stack(SLUG)
        lab.remove_repository(repository)  # the build's tag and what the live node pulled by digest


# --- production: deploy-production and switch, by hand from the default branch --------------------


@pytest.mark.lab
def test_production_deploy_goes_to_the_idle_colour_and_the_switch_job_makes_it_live(
    lab: Lab, production_service: Path, components: list, gitlab_ci_local: str, runner_tools: Path, tmp_path: Path
) -> None:
    front = lab.front(tmp_path)  # the app HAProxy fronts, live: the switch replays it and checks its health
    old = front["live"]
    new = other_colour(old)
    lab.remove_stack(SLUG)
    repository, tag = build_commit_image(lab, production_service, gcl.DEFAULT_BRANCH, tmp_path)
    options = {"gcl": gitlab_ci_local, "git_config": components}
    try:
        deployed = lab_job(
            lab, production_service, gcl.DEFAULT_BRANCH, "deploy-production", runner_tools,
            variables=LAB_DEPLOY_VARIABLES, inputs=deploy_inputs("deploy-production", repository), **options,
        )  # fmt: skip
        assert_passed(deployed, "deploy-production")
        # Into the idle colour; the live one serves on, untouched.
        assert (running_images(lab, new), running_images(lab, old)) == ([tag], [])
        assert_healthy(new)
        assert lab.live_colour() == old

        switched = lab_job(
            lab, production_service, gcl.DEFAULT_BRANCH, "switch", runner_tools,
            inputs={"switch:environment": "lab"}, **options,
        )  # fmt: skip
        assert_passed(switched, "switch")
        assert re.search(rf"^switch\s+>.*{new} is live", switched.output, re.M), switched.tail()
        assert lab.live_colour() == new
        # The front app was replayed onto the new colour, and HAProxy sends the traffic there.
        assert "version 1" in http_get(lab.env["AUTO_LAB_FRONT_URL"] + "/", timeout=30)[1]
        assert running_images(lab, new) == [tag]
    finally:
        lab.remove_stack(SLUG)  # first: the switch back then has no reason to replay the service
        back = lab.cli("switch", "--env", "lab", "--to", old, "--lock-wait", "60")
        lab.remove_images(tag)
    assert back.returncode == 0, back.stderr
