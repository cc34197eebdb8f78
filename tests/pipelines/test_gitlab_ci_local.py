"""The pipelines themselves, run with gitlab-ci-local's shell executor: the jobs really execute.

* The toolkit's own ``.gitlab-ci.yml``: ``lint``, ``unit`` and ``pages`` in a committed snapshot of the
  current work tree (never ``test``: that job is ``make test``, this suite).
* A generated service's ``.gitlab-ci.yml`` (the cookiecutter with its default answers, committed with
  ``origin`` https://gitlab.example.test/team/orders.git), its components resolved over git from a stand-in
  for the toolkit published on GitLab (see ``gitlab_ci_local.py``): which jobs exist on the default branch
  and on a feature branch, the ``test`` job (tox lint, test, docs, spec), the ``pages`` job (auto-docs from
  the service's ``auto-service.yml``, the toolkit installed from the snapshot through the component's
  ``toolkit-package`` input), and, on the feature branch, ``build`` (logged in to a private registry beside
  the lab with the job's credentials, built on the runner's daemon, pushed) then ``deploy-staging`` (logged
  in again; the lab's live node pulls the private image through ``--with-registry-auth``).
* The same service with the production deploy and the switch added to its descriptor and re-rendered with
  ``auto-pipelines render``: both are manual and on the default branch only; ``deploy-production`` deploys
  into the idle colour of the lab and the ``switch`` job makes it live behind HAProxy.

Without gitlab-ci-local (``make gitlab-ci-local``), rsync, git or python3 the tests skip, or fail when CI=true.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.pipelines import gitlab_ci_local as gcl
from tests.pipelines.gitlab_ci_local import assert_passed, job_results
from tests.pipelines.registry import Registry
from tests.support import LAB_ADDRESSES, Lab, bake_service, http_get, other_colour, unavailable

pytestmark = pytest.mark.system  # runs gitlab-ci-local (npm) and Debian's docker-registry

ROOT = gcl.ROOT
SLUG, PORT = "orders", 8080  # the template's default answers
SERVICE_ORIGIN = f"https://{gcl.FAKE_GITLAB}/team/{SLUG}.git"
TOOLKIT_ORIGIN = f"https://{gcl.FAKE_GITLAB}/{gcl.COMPONENT_PROJECT}.git"
FEATURE = "feature/gitlab-ci-local"
LIST_TIMEOUT = 120
TOOLKIT_TIMEOUT = 900  # lint + unit + pages, about 1.5 min
TEST_JOB_TIMEOUT = 900  # tox lint,test,docs,spec, about 1.2 min
PAGES_TIMEOUT = 600
DEPLOY_TIMEOUT = 600


@pytest.fixture(scope="module")
def toolkit(tmp_path_factory: pytest.TempPathFactory, gitlab_ci_local: str) -> Path:
    """The toolkit's work tree as it is now, committed on main with a GitLab origin."""
    repo = gcl.snapshot_worktree(ROOT, tmp_path_factory.mktemp("toolkit") / "toolkit")
    gcl.commit_repo(repo, origin=TOOLKIT_ORIGIN)
    return repo


# --- the toolkit's own pipeline ------------------------------------------------------------------


@pytest.fixture(scope="module")
def toolkit_run(toolkit: Path, gitlab_ci_local: str) -> gcl.Result:
    # The unit job on tests/autocore only: this suite runs every unit test itself, and the job's own run of all of
    # them took four minutes of CI; what is checked here is the job (tox's unit env, its markers, its exit).
    variables = {"UNIT_TESTS": "tests/autocore"}
    command = gcl.command(toolkit, ["lint", "unit", "pages"], gcl=gitlab_ci_local, variables=variables)
    result = gcl.run(command, TOOLKIT_TIMEOUT)
    print(f"toolkit lint+unit+pages: {result.seconds:.0f} s")
    return result


def test_toolkit_pipeline_on_the_default_branch_has_lint_unit_test_pages(toolkit: Path, gitlab_ci_local: str) -> None:
    result = gcl.run(gcl.command(toolkit, list_jobs=True, gcl=gitlab_ci_local), LIST_TIMEOUT)
    assert result.returncode == 0, result.tail()
    assert gcl.jobs_listed(result.output) == ["lint", "unit", "test", "pages"]


def test_toolkit_lint_job_passes(toolkit_run: gcl.Result, toolkit: Path) -> None:
    assert_passed(toolkit_run, "lint")
    assert re.search(r"^lint\s+>.*lint: OK", toolkit_run.output, re.M), toolkit_run.tail()
    # Installed into the job's own virtualenv, not the machine's Python.
    assert (toolkit / ".venv" / "bin" / "tox").exists()


def test_toolkit_unit_job_passes(toolkit_run: gcl.Result) -> None:
    assert_passed(toolkit_run, "unit")
    assert re.search(r"^unit\s+>.*unit: OK", toolkit_run.output, re.M), toolkit_run.tail()
    assert re.search(r"^unit\s+>\s+tests/autocore/test_\w+\.py \.", toolkit_run.output, re.M)  # pytest ran them
    assert "test" not in job_results(toolkit_run.output)  # never `make test` from inside the suite


def test_toolkit_pages_job_builds_the_portal(toolkit_run: gcl.Result, toolkit: Path) -> None:
    assert_passed(toolkit_run, "pages")
    public = toolkit / "public"
    assert (public / "index.html").is_file()
    assert json.loads((public / "openapi.json").read_text())["openapi"].startswith("3.")
    assert json.loads((toolkit / "docs-report.json").read_text())


# --- a generated service's pipeline --------------------------------------------------------------


@pytest.fixture(scope="module")
def components(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str]]:
    """The toolkit's current templates/ published as auto/toolkit 1.0.0 on the fake GitLab (git config)."""
    git_root = gcl.component_project(ROOT / "templates", tmp_path_factory.mktemp("gitlab") / "git")
    return gcl.insteadof(git_root)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, gitlab_ci_local: str) -> Path:
    """The template baked with its defaults, committed on main with its GitLab origin."""
    project = bake_service(tmp_path_factory)
    gcl.commit_repo(project, origin=SERVICE_ORIGIN)
    return project


def service_run(service: Path, branch: str, jobs: list[str], timeout: float, **options) -> gcl.Result:
    gcl.checkout(service, branch)
    return gcl.run(gcl.command(service, jobs, **options), timeout)


@pytest.mark.parametrize(
    ("branch", "present", "absent"),
    [(gcl.DEFAULT_BRANCH, "pages", "deploy-staging"), (FEATURE, "deploy-staging", "pages")],
    ids=["default-branch", "feature-branch"],
)
def test_service_jobs_per_branch(
    service: Path, components: list, gitlab_ci_local: str, branch: str, present: str, absent: str
) -> None:
    result = service_run(service, branch, [], LIST_TIMEOUT, gcl=gitlab_ci_local, git_config=components, list_jobs=True)
    assert result.returncode == 0, result.tail()
    jobs = gcl.jobs_listed(result.output)
    assert present in jobs and absent not in jobs, jobs
    assert {"build", "test"} <= set(jobs)
    # `@1` was resolved to the tag through `git ls-remote`, and the templates fetched over git.
    assert (service / ".gitlab-ci-local/includes" / gcl.FAKE_GITLAB / gcl.COMPONENT_PROJECT / "1.0.0").is_dir()


def test_service_test_job_runs_tox_lint_test_docs_spec(service: Path, components: list, gitlab_ci_local: str) -> None:
    result = service_run(service, FEATURE, ["test"], TEST_JOB_TIMEOUT, gcl=gitlab_ci_local, git_config=components)
    print(f"service test job: {result.seconds:.0f} s")
    assert_passed(result, "test")
    for env in ("lint", "test", "docs", "spec"):
        assert re.search(rf"^test\s+>\s+{env}: OK", result.output, re.M), f"tox {env} did not run\n{result.tail()}"
    assert re.search(r"^test\s+>\s+\S.* passed", result.output, re.M)  # pytest's summary: the tests ran


def test_service_pages_job_builds_public(service: Path, components: list, gitlab_ci_local: str, toolkit: Path) -> None:
    result = service_run(
        service,
        gcl.DEFAULT_BRANCH,
        ["pages"],
        PAGES_TIMEOUT,
        gcl=gitlab_ci_local,
        git_config=components,
        inputs={"pages:toolkit-package": str(toolkit)},  # the current toolkit, not a release from PyPI
    )
    print(f"service pages job: {result.seconds:.0f} s")
    assert_passed(result, "pages")
    assert (service / "public" / "index.html").is_file()
    spec = json.loads((service / "public" / "openapi.json").read_text())
    assert spec["info"]["title"] == "Orders"
    report = json.loads((service / "docs-report.json").read_text())
    assert report


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


@pytest.fixture(scope="module")
def production_service(tmp_path_factory: pytest.TempPathFactory, gitlab_ci_local: str) -> Path:
    """The template baked with its defaults, its descriptor's pipeline extended with the production deploy and
    the switch, ``.gitlab-ci.yml`` re-rendered with the real ``auto-pipelines render``, committed on main."""
    project = bake_service(tmp_path_factory)
    descriptor = project / "auto-service.yml"
    data = yaml.safe_load(descriptor.read_text())
    data["pipeline"]["components"] = ["build", "test", "deploy-staging", "deploy-production", "switch", "pages"]
    data["pipeline"]["inputs"]["deploy-production"] = {"url": f"https://{SLUG}.example.com"}
    descriptor.write_text(yaml.safe_dump(data, sort_keys=False))
    render = subprocess.run(
        [sys.executable, "-m", "pipelines", "render"], cwd=project, capture_output=True, text=True, timeout=120
    )
    assert render.returncode == 0, render.stderr
    gcl.commit_repo(project, origin=SERVICE_ORIGIN)
    return project


def listed_when(list_output: str) -> dict[str, str]:
    """``{job: when}`` from ``gitlab-ci-local --list`` (name, then description, stage and when columns)."""
    lines = list_output.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("name ") and "when" in line)
    when_at = lines[header].index("when")
    return {row.split()[0]: row[when_at:].split()[0] for row in lines[header + 1 :] if row.strip()}


def test_production_jobs_are_manual_on_the_default_branch_only(
    production_service: Path, components: list, gitlab_ci_local: str
) -> None:
    options = {"gcl": gitlab_ci_local, "git_config": components, "list_jobs": True}
    on_main = service_run(production_service, gcl.DEFAULT_BRANCH, [], LIST_TIMEOUT, **options)
    assert on_main.returncode == 0, on_main.tail()
    assert listed_when(on_main.output) == {
        "build": "on_success", "test": "on_success", "deploy-production": "manual", "switch": "manual",
        "pages": "on_success",
    }  # fmt: skip
    on_branch = service_run(production_service, FEATURE, [], LIST_TIMEOUT, **options)
    assert on_branch.returncode == 0, on_branch.tail()
    assert listed_when(on_branch.output) == {
        "build": "on_success",
        "test": "on_success",
        "deploy-staging": "on_success",
    }


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
