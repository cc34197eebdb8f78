"""The toolkit's release: the pipeline of the tag 1.2.0, run for real with gitlab-ci-local (shell executor).

The toolkit's work tree is committed in a repository of its own with its GitLab origin (``auto/toolkit``) and tagged
``1.2.0``; the tag's pipeline runs ``dist``, ``publish-package``, ``publish-image`` and ``release`` (the suite's own
jobs, lint, unit and test, run on the default branch in test_toolkit_pipeline.py), with:

* GitLab's package registry played by a real package index, pypiserver, on loopback at the address GitLab gives the
  registry (``CI_API_V4_URL/projects/ID/packages/pypi``), refusing every request without the job token: ``twine``
  uploads with it as GitLab documents, and ``pip`` downloads and installs the release from there;
* the container registry played by Debian's docker-registry beside the lab (HTTPS from the lab's CA, basic auth),
  the image built by one lab daemon (the runner's: ``DOCKER_HOST``) from the lab's offline base images, pushed,
  then pulled and run by the other;
* the release: gitlab-ci-local runs the job's script and leaves its ``release:`` keyword alone (4.72 only checks it
  against GitLab's schema; it has no release-cli or glab step), so the test turns the job's ``release:`` into the
  ``glab release create`` command GitLab's runner is given (``Gitlab::Ci::Build::Releaser``) and that into the
  request it makes (POST /projects/:id/releases), and checks tag, name and notes against the changelog.

A tag whose version has no section in CHANGELOG.md stops the pipeline in ``dist``, before anything is published.
Without gitlab-ci-local, rsync, git, python3, docker-registry or the lab the tests skip, or fail when CI=true.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import shutil
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines.changelog import read_changelog, release_notes
from tests.pipelines import gitlab_ci_local as gcl
from tests.pipelines.gitlab_ci_local import assert_passed, job_results
from tests.pipelines.registry import Registry, address
from tests.support import Lab, other_colour, stop_process, unavailable

ROOT = gcl.ROOT
TAG = "1.2.0"
UNRELEASED = "99.0.0"  # a version the changelog never has a section for
TOOLKIT_ORIGIN = f"https://{gcl.FAKE_GITLAB}/{gcl.COMPONENT_PROJECT}.git"
RELEASE_JOBS = ["dist", "publish-package", "publish-image", "release"]
PROJECT_ID = "4242"  # the toolkit project's id, in the package registry's address
JOB_TOKEN_USER = "gitlab-ci-token"
REGISTRY_PORT = 5446  # not the service pipeline tests' 5443: their registries never meet
LIST_TIMEOUT = 120
RELEASE_TIMEOUT = 900
DIST_TIMEOUT = 300
GITLAB_CI = yaml.safe_load((ROOT / ".gitlab-ci.yml").read_text())


def job_lines(output: str, job: str) -> list[str]:
    """What ``job`` printed (gitlab-ci-local's ``JOB > line``), in order."""
    return [m["line"] for m in re.finditer(rf"^{re.escape(job)} +> ?(?P<line>.*)$", output, re.M)]


# --- the release job as GitLab runs it ---------------------------------------------------------------------------

_VARIABLE = re.compile(r"\$(?:\{(?P<braced>\w+)\}|(?P<plain>\w+))")


def shell_expand(text: str, variables: Mapping[str, str]) -> str:
    """``$NAME`` and ``${NAME}`` as the job's shell expands them inside double quotes (unset: empty)."""
    return _VARIABLE.sub(lambda m: variables.get(m["braced"] or m["plain"], ""), text)


def glab_release_request(release: Mapping[str, Any], variables: Mapping[str, str], project_dir: Path) -> dict:
    """The body of ``POST /projects/:id/releases`` a job's ``release:`` makes, as GitLab runs it since 18.0.

    GitLab's runner is given ``glab release create -R "$CI_PROJECT_PATH" "TAG_NAME" --name "NAME"
    --experimental-notes-text-or-file "DESCRIPTION" --ref "REF" --no-update --no-close-milestone``
    (``Gitlab::Ci::Build::Releaser#glab_create_command``; ``ref`` defaults to ``$CI_COMMIT_SHA``), each value in
    double quotes of the job's shell; glab takes DESCRIPTION as a file's path when such a file exists (in the project
    directory, where the job runs: GitLab's docs for ``release:description``), else as the text; ``name`` defaults to
    the tag name."""
    tag_name = shell_expand(release["tag_name"], variables)
    description = shell_expand(release["description"], variables)
    path = project_dir / description
    if " " not in description and not Path(description).is_absolute() and path.is_file():
        description = path.read_text()
    return {
        "tag_name": tag_name,
        "name": shell_expand(release.get("name") or tag_name, variables),
        "description": description,
        "ref": shell_expand(release.get("ref") or "$CI_COMMIT_SHA", variables),
    }


# --- a package index standing in for GitLab's PyPI package registry ---------------------------------------------

# pypiserver (its own WSGI app, as `pypi-server run` serves it) under GitLab's path for a project's PyPI registry,
# answering only the job token's basic auth: uploads (twine POSTs to the registry's URL itself), listings, downloads.
SERVE_INDEX = """
import hmac, os, sys
from wsgiref.simple_server import WSGIRequestHandler, make_server
import pypiserver

root, prefix, port_file = sys.argv[1], sys.argv[2], sys.argv[3]
user, token = os.environ["INDEX_USER"].encode(), os.environ["INDEX_TOKEN"].encode()

def auther(name, password):
    return hmac.compare_digest(name.encode(), user) & hmac.compare_digest(password.encode(), token)

index = pypiserver.app(
    roots=[root], authenticate=["update", "download", "list"], auther=auther, disable_fallback=True, overwrite=False
)

def app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path != prefix and not path.startswith(prefix + "/"):
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\\n"]
    environ["SCRIPT_NAME"], environ["PATH_INFO"] = prefix, path[len(prefix):] or "/"
    return index(environ, start_response)

class Handler(WSGIRequestHandler):
    def log_message(self, format, *args):
        sys.stderr.write("%s %s\\n" % (self.address_string(), format % args))

server = make_server("127.0.0.1", 0, app, handler_class=Handler)
with open(port_file + ".tmp", "w") as fh:
    fh.write(str(server.server_port))
os.replace(port_file + ".tmp", port_file)
server.serve_forever()
"""
INDEX_READY_TIMEOUT = 20.0


@dataclass
class PackageIndex:
    """A running pypiserver; ``token`` is what the job's CI_JOB_TOKEN holds."""

    root: Path
    project_id: str = PROJECT_ID
    user: str = JOB_TOKEN_USER
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def prefix(self) -> str:
        return f"/api/v4/projects/{self.project_id}/packages/pypi"

    @property
    def api_v4_url(self) -> str:
        """What the job's CI_API_V4_URL holds."""
        return f"http://127.0.0.1:{self.port}/api/v4"

    def simple_url(self, *, auth: bool = True) -> str:
        credentials = f"{self.user}:{self.token}@" if auth else ""
        return f"http://{credentials}127.0.0.1:{self.port}{self.prefix}/simple"

    def start(self) -> PackageIndex:
        if importlib_missing("pypiserver"):
            unavailable("pypiserver is not installed: pip install -e '.[test]'")
        packages = self.root / "packages"
        packages.mkdir(parents=True)
        port_file = self.root / "port"
        env = {**gcl.base_env(), "INDEX_USER": self.user, "INDEX_TOKEN": self.token}
        log = (self.root / "index.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-c", SERVE_INDEX, str(packages), self.prefix, str(port_file)],
            env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + INDEX_READY_TIMEOUT
        while not port_file.exists() or self.get("/simple/", auth=False)[0] != 401:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"pypiserver did not start: {self.log()[-2000:]}")
            time.sleep(0.1)
            if port_file.exists():
                self.port = int(port_file.read_text())
        return self

    def stop(self) -> None:
        stop_process(self.process)

    def log(self) -> str:
        return (self.root / "index.log").read_text(errors="replace")

    def get(self, path: str, *, auth: bool = True) -> tuple[int, bytes]:
        """``GET`` a path under the registry's address; ``(status, body)``."""
        if not self.port:
            return 0, b""
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{self.prefix}{path}")
        if auth:
            request.add_header("Authorization", "Basic " + b64encode(f"{self.user}:{self.token}".encode()).decode())
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except OSError:
            return 0, b""

    def files(self, project: str) -> dict[str, str]:
        """``{file name: sha256}`` the project's simple page (PEP 503) lists."""
        status, body = self.get(f"/simple/{project}/")
        assert status == 200, (status, body[:300])
        return dict(
            (m["name"], m["sha"])
            for m in re.finditer(r'href="[^"#]*/(?P<name>[^/"#]+)#sha256=(?P<sha>[0-9a-f]{64})"', body.decode())
        )


def importlib_missing(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is None


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run(argv: list, *, cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 300, stdin: str | None = None):
    """``argv`` in ``cwd``, in the environment a user has (the suite's virtualenv off PATH unless ``env``)."""
    return subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=dict(env or gcl.base_env()), input=stdin, capture_output=True,
        text=True, timeout=timeout, check=False,
    )  # fmt: skip


# --- fixtures ------------------------------------------------------------------------------------------------------


def tagged_toolkit(tmp_path_factory: pytest.TempPathFactory, tag: str) -> tuple[Path, str]:
    """The toolkit's work tree as it is now, committed on main with its GitLab origin and tagged ``tag``."""
    repo = gcl.snapshot_worktree(ROOT, tmp_path_factory.mktemp("toolkit") / "toolkit")
    return repo, gcl.tag_repo(repo, tag, origin=TOOLKIT_ORIGIN)


@pytest.fixture(scope="module")
def release_repo(tmp_path_factory: pytest.TempPathFactory, gitlab_ci_local: str) -> tuple[Path, str]:
    return tagged_toolkit(tmp_path_factory, TAG)


@pytest.fixture
def package_index(tmp_path: Path) -> Iterator[PackageIndex]:
    index = PackageIndex(tmp_path / "index").start()
    try:
        yield index
    finally:
        index.stop()


@pytest.fixture(scope="module")
def registry(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """The project's container registry: a private one beside the lab (HTTPS from the lab's CA, basic auth)."""
    binary = shutil.which("docker-registry")
    if binary is None:
        unavailable("docker-registry is not installed (make system installs it)")
    started = Registry(tmp_path_factory.mktemp("registry"), binary, address=address(port=REGISTRY_PORT)).start()
    try:
        yield started
    finally:
        started.stop()


# --- the pipeline's shape, from the file --------------------------------------------------------------------------


def test_release_jobs_run_on_plain_semver_tags_only() -> None:
    (rule,) = GITLAB_CI[".release-tag"]["rules"]
    pattern = re.fullmatch(r"\$CI_COMMIT_TAG =~ /(?P<re>.+)/", rule["if"])["re"]
    candidates = ("1.2.0", "10.0.12", "v1.2.0", "1.2", "1.2.0-rc.1", "1.2.0.1", "release-1.2.0")
    assert [tag for tag in candidates if re.search(pattern, tag)] == ["1.2.0", "10.0.12"]
    for job in RELEASE_JOBS:
        extends = GITLAB_CI[job]["extends"]
        assert ".release-tag" in ([extends] if isinstance(extends, str) else extends), job
        assert GITLAB_CI[job]["stage"] in GITLAB_CI["stages"]


def test_release_job_creates_the_release_with_the_release_keyword() -> None:
    job = GITLAB_CI["release"]
    # The components reach the CI/CD catalog only through the keyword (GitLab: "Publish a component project").
    assert job["release"] == {
        "tag_name": "$CI_COMMIT_TAG",
        "name": "AUTO toolkit $CI_COMMIT_TAG",
        "description": "./release-notes.md",
    }
    assert job["dependencies"] == ["dist"] and "release-notes.md" in GITLAB_CI["dist"]["artifacts"]["paths"]
    # glab's image, pinned to a release GitLab's releaser accepts (it falls back to release-cli below 1.58.0).
    image = re.fullmatch(r"registry\.gitlab\.com/gitlab-org/cli:v(?P<v>\d+\.\d+\.\d+)", job["image"])
    assert image and tuple(map(int, image["v"].split("."))) >= (1, 58, 0)


def test_the_package_goes_to_the_project_registry_with_the_job_token() -> None:
    script = " ".join(GITLAB_CI["publish-package"]["script"])
    assert 'TWINE_PASSWORD="${CI_JOB_TOKEN}" TWINE_USERNAME=gitlab-ci-token' in script
    assert '--repository-url "${CI_API_V4_URL}/projects/${CI_PROJECT_ID}/packages/pypi"' in script


def test_glab_release_request_reads_the_description_file_in_the_project(tmp_path: Path) -> None:
    (tmp_path / "notes.md").write_text("- Notes.\n")
    variables = {"CI_COMMIT_TAG": "1.0.0", "CI_COMMIT_SHA": "a" * 40}
    release = {"tag_name": "$CI_COMMIT_TAG", "description": "./notes.md"}
    assert glab_release_request(release, variables, tmp_path) == {
        "tag_name": "1.0.0", "name": "1.0.0", "description": "- Notes.\n", "ref": "a" * 40
    }  # fmt: skip
    release = {"tag_name": "${CI_COMMIT_TAG}", "name": "R $CI_COMMIT_TAG", "description": "Release $CI_COMMIT_TAG"}
    assert glab_release_request(release, variables, tmp_path)["description"] == "Release 1.0.0"  # text, not a file


# --- the pipeline of a tag, under gitlab-ci-local ---------------------------------------------------------------


@pytest.mark.system
@pytest.mark.parametrize(
    ("tag", "expected"),
    [(TAG, ["lint", "unit", "test", *RELEASE_JOBS]), ("v1.2.0", ["lint", "unit", "test"])],
    ids=["release-tag", "not-semver"],
)
def test_tag_pipeline_jobs(release_repo: tuple[Path, str], gitlab_ci_local: str, tag: str, expected: list) -> None:
    repo, _sha = release_repo
    result = gcl.run(gcl.tag_command(repo, tag=tag, gcl=gitlab_ci_local, list_jobs=True), LIST_TIMEOUT)
    assert result.returncode == 0, result.tail()
    assert gcl.jobs_listed(result.output) == expected  # no pages: that is the default branch's


@pytest.mark.system
def test_a_tag_without_notes_in_the_changelog_stops_in_dist(
    tmp_path_factory: pytest.TempPathFactory, gitlab_ci_local: str
) -> None:
    repo, _sha = tagged_toolkit(tmp_path_factory, UNRELEASED)
    result = gcl.run(gcl.tag_command(repo, ["dist"], tag=UNRELEASED, gcl=gitlab_ci_local), DIST_TIMEOUT)
    print(f"dist of {UNRELEASED}: {result.seconds:.0f} s")
    assert job_results(result.output).get("dist") == "FAIL", result.tail()
    errors = [line for line in job_lines(result.output, "dist") if "Error" in line]
    assert len(errors) == 1, result.tail()
    assert errors[0].startswith(f"Error: CHANGELOG.md has no section for {UNRELEASED} (releases there: {TAG}")
    assert errors[0].endswith(
        f'add "## [{UNRELEASED}] - YYYY-MM-DD" with the release\'s changes (move them from [Unreleased])'
    )
    assert not (repo / "release-notes.md").exists()
    # The wheel was built at the tag's version and would have been fine: only the notes were missing.
    assert (repo / "dist" / f"auto_toolkit-{UNRELEASED}-py3-none-any.whl").is_file()

    # The release job refuses to release without notes, in one line, whatever runs it.
    released = gcl.run(gcl.tag_command(repo, ["release"], tag=UNRELEASED, gcl=gitlab_ci_local), LIST_TIMEOUT)
    assert job_results(released.output).get("release") == "FAIL", released.tail()
    assert [line for line in job_lines(released.output, "release") if "Error" in line] == [
        "Error: release-notes.md is missing or empty: the dist job writes it from CHANGELOG.md"
    ]


def push_build_images(lab: Lab, registry: Registry, colour: str, repo: Path, scratch: Path) -> dict[str, str]:
    """The Dockerfile's build arguments for the lab: its offline ``auto-lab/python:3.11`` (a wheelhouse with the
    toolkit's dependencies) and ``auto-lab/docker-cli`` (the host's static docker client), made on ``colour``'s
    daemon by ``deployer.lab.toolkit_image`` and pushed to ``registry``, where ``docker build --pull`` finds them as
    it finds python:3.11-slim and docker:28-cli on Docker Hub."""
    from deployer.lab import runner as lab_runner
    from deployer.lab import service_image, toolkit_image

    cert = lab.env["AUTO_DOCKER_CERT_PATH"]
    docker = service_image.docker_cli(lab.env)
    env = {**service_image.docker_env(colour, cert, lab.env), "DOCKER_CONFIG": str(scratch / "docker-config")}
    requirements = tomllib.loads((repo / "pyproject.toml").read_text())["project"]["dependencies"]
    service_image.ensure_base_image(requirements, colours=(colour,), cert_path=cert, docker=docker)
    cli = toolkit_image.ensure_cli_image(
        toolkit_image.client_binary(docker), colours=(colour,), envs={colour: env}, docker=docker
    )
    login = [docker, "login", "--username", registry.user, "--password-stdin", registry.address]
    lab_runner.run(login, input=registry.password.encode(), env=env)
    pushed = {}
    for argument, local, remote in (
        ("BASE_IMAGE", service_image.BASE_IMAGE, f"{registry.address}/auto/python:3.11"),
        ("DOCKER_CLI_IMAGE", cli["image"], f"{registry.address}/auto/docker-cli:{cli['image'].rsplit(':', 1)[1]}"),
    ):
        service_image.run([docker, "tag", local, remote], env=env)
        service_image.run([docker, "push", remote], env=env, timeout=300)
        pushed[argument] = remote
    return pushed


@pytest.mark.system
@pytest.mark.lab
def test_the_tag_pipeline_publishes_the_package_the_image_and_the_release(
    lab: Lab,
    registry: Registry,
    release_repo: tuple[Path, str],
    package_index: PackageIndex,
    gitlab_ci_local: str,
    tmp_path: Path,
) -> None:
    from deployer.lab import service_image

    repo, sha = release_repo
    live = lab.live_colour()
    builder = other_colour(live)  # the runner's daemon builds and pushes; the live colour's pulls
    cert = lab.env["AUTO_DOCKER_CERT_PATH"]
    started = time.monotonic()
    build_arguments = push_build_images(lab, registry, builder, repo, tmp_path)
    prepared = time.monotonic() - started
    repository = f"{registry.address}/{gcl.COMPONENT_PROJECT}"
    image = f"{repository}:{TAG}"
    variables = {
        # The project's CI/CD settings as GitLab gives them to a job of this project.
        "CI_PROJECT_ID": PROJECT_ID,
        "CI_API_V4_URL": package_index.api_v4_url,
        "CI_JOB_TOKEN": package_index.token,
        "CI_REGISTRY": registry.address,
        "CI_REGISTRY_USER": registry.user,
        "CI_REGISTRY_PASSWORD": registry.password,
        **build_arguments,
    }
    try:
        result = gcl.run(
            gcl.tag_command(
                repo, RELEASE_JOBS, tag=TAG, gcl=gitlab_ci_local, variables=variables,
                # A shell runner with its own daemon (the classic builder: this docker CLI has no buildx).
                runner_env=service_image.docker_env(builder, cert, {}),
            ),
            RELEASE_TIMEOUT,
        )  # fmt: skip
        (tmp_path / "gitlab-ci-local.log").write_text(result.output)
        jobs = ", ".join(f"{m[1]} {m[2]}" for m in re.finditer(r"^(\S+) +finished in (.+)$", result.output, re.M))
        print(f"release pipeline: images prepared in {prepared:.0f} s, the jobs ran in {result.seconds:.0f} s ({jobs})")
        assert_passed(result, *RELEASE_JOBS, lines=150)
        for secret in (package_index.token, registry.password):
            assert secret not in result.output
        assert not (repo / ".docker-auth").exists()  # the job-local registry login is gone with the job

        # --- the package: both files in the registry, at the tag's version, as dist built them
        dist = {path.name: sha256(path) for path in (repo / "dist").iterdir()}
        assert sorted(dist) == [f"auto_toolkit-{TAG}-py3-none-any.whl", f"auto_toolkit-{TAG}.tar.gz"]
        assert package_index.files("auto-toolkit") == dist
        assert package_index.get("/simple/auto-toolkit/", auth=False)[0] == 401  # a private project's registry
        downloads = tmp_path / "downloads"
        pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
        fetched = run([*pip, "download", f"auto-toolkit=={TAG}", "--no-deps", "--index-url", package_index.simple_url(),
                       "--dest", downloads], cwd=tmp_path)  # fmt: skip
        assert fetched.returncode == 0, fetched.stderr[-2000:]
        assert {p.name: sha256(p) for p in downloads.iterdir()} == {
            f"auto_toolkit-{TAG}-py3-none-any.whl": dist[f"auto_toolkit-{TAG}-py3-none-any.whl"]
        }
        venv = tmp_path / "venv"
        assert run([sys.executable, "-m", "venv", venv], cwd=tmp_path).returncode == 0
        installed = run([venv / "bin" / "python", "-m", "pip", "--disable-pip-version-check", "install", "--no-deps",
                         "--index-url", package_index.simple_url(), f"auto-toolkit=={TAG}"], cwd=tmp_path)  # fmt: skip
        assert installed.returncode == 0, installed.stderr[-2000:]
        said = run([venv / "bin" / "auto-pipelines", "--version"], cwd=tmp_path)
        assert said.stdout == f"auto-pipelines {TAG}\n", said.stderr
        # The job token is really checked: the same upload with another token is refused.
        upload_url = f"{package_index.api_v4_url}/projects/{PROJECT_ID}/packages/pypi"
        wrong_token = {**gcl.base_env(), "TWINE_USERNAME": JOB_TOKEN_USER, "TWINE_PASSWORD": "not-the-job-token"}
        refused = run([sys.executable, "-m", "twine", "upload", "--non-interactive", "--repository-url", upload_url,
                       *sorted((repo / "dist").iterdir())], cwd=tmp_path, env=wrong_token)  # fmt: skip
        assert refused.returncode != 0 and "403" in refused.stdout + refused.stderr, refused.stdout[-1000:]

        # --- the image: in the registry under the tag only, private, pulled and run by the other colour's daemon
        status, tags = registry.get(f"{gcl.COMPONENT_PROJECT}/tags/list")
        assert (status, json.loads(tags)) == (200, {"name": gcl.COMPONENT_PROJECT, "tags": [TAG]})
        assert registry.get(f"{gcl.COMPONENT_PROJECT}/tags/list", auth=False)[0] == 401
        docker = service_image.docker_cli(lab.env)
        puller = {**service_image.docker_env(live, cert, lab.env), "DOCKER_CONFIG": str(tmp_path / "puller-config")}
        login = run([docker, "login", "--username", registry.user, "--password-stdin", registry.address],
                    cwd=tmp_path, env=puller, timeout=60, stdin=registry.password)  # fmt: skip
        assert login.returncode == 0, login.stderr
        pulled = run([docker, "pull", image], cwd=tmp_path, env=puller)
        assert pulled.returncode == 0, pulled.stderr
        ran = run([docker, "run", "--rm", "--network", "none", image, "auto-pipelines", "--version"], cwd=tmp_path,
                  env=puller)  # fmt: skip
        assert (ran.returncode, ran.stdout) == (0, f"auto-pipelines {TAG}\n"), ran.stderr
        user = run([docker, "image", "inspect", "--format", "{{.Config.User}}", image], cwd=tmp_path, env=puller)
        assert user.stdout.strip() == "10001:10001"

        # --- the release: what GitLab's releaser makes of the job's release: keyword, after its script passed
        expanded = yaml.safe_load((repo / ".gitlab-ci-local" / "expanded-gitlab-ci.yml").read_text())
        job_variables = {"CI_COMMIT_TAG": TAG, "CI_COMMIT_SHA": sha, "CI_PROJECT_PATH": gcl.COMPONENT_PROJECT}
        request = glab_release_request(expanded["release"]["release"], job_variables, repo)
        notes = release_notes(read_changelog(repo / "CHANGELOG.md"), TAG)
        assert request == {"tag_name": TAG, "name": f"AUTO toolkit {TAG}", "description": notes, "ref": sha}
        assert notes.startswith("The first release") and "### Changed" in notes
        assert job_lines(result.output, "release")[-len(notes.splitlines()) :] == notes.splitlines()
    finally:
        lab.remove_repository(repository)
        lab.remove_images(*build_arguments.values())
