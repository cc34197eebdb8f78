"""The ``cookiecutter-auto-service`` template: every service it bakes passes its own checks the moment it exists.

Two bakes (the defaults, and non-default answers without the example resource) share one virtualenv made from
the generated ``pyproject.toml``; each runs the commands of its own ``tox.ini`` (lint, test, docs, spec) in it.
The stack file is checked against the Compose specification, the pipeline against GitLab's CI schema (both
check-jsonschema's built-in schemas), the descriptor with the docs portal's own loader. Bad answers must stop
the bake with one line and leave nothing behind, and ``cruft`` must be able to create and update a service.

Needs PyPI (the shared virtualenv) and git (cruft); without them the tests skip, or fail when CI=true.
"""

from __future__ import annotations

import configparser
import json
import os
import shlex
import shutil
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cookiecutter.exceptions import FailedHookException
from cookiecutter.main import cookiecutter

from docgen.manifest import load_descriptor
from tests.support import unavailable

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "cookiecutter-auto-service"
CUSTOM = {
    "service_name": "Billing API",
    "service_slug": "billing-api",
    "api_version": "v2",
    "port": "9090",
    "example_resource": "no",
    "description": "Invoices: \"quoted\" and 'single'.",
    "owner": "Team Ledger",
}
TOX_ENVS = ["lint", "test", "docs", "spec"]
TIMEOUT = 300


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without what would leak pytest or virtualenv settings into a child."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PYTHON", "VIRTUAL_ENV", "TOX_"))}
    env.update(extra)
    return env


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``command``; the result holds its output either way."""
    return subprocess.run(
        command, cwd=cwd, env=env or clean_env(), capture_output=True, text=True, timeout=TIMEOUT, check=False
    )


def bake(output_dir: Path, **answers: str) -> Path:
    """Generate a service with ``answers`` (defaults for the rest) into ``output_dir``."""
    return Path(cookiecutter(str(TEMPLATE), no_input=True, extra_context=answers, output_dir=str(output_dir)))


@pytest.fixture(scope="module", autouse=True)
def cookiecutter_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep cookiecutter's and cruft's replay files and clones out of the home directory."""
    home = tmp_path_factory.mktemp("cookiecutter-home")
    config = home / "config.yaml"
    config.write_text(f"cookiecutters_dir: {home / 'templates'}\nreplay_dir: {home / 'replay'}\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COOKIECUTTER_CONFIG", str(config))
        yield


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The two bakes: ``default`` and ``custom``."""
    out = tmp_path_factory.mktemp("bakes")
    return {"default": bake(out / "default"), "custom": bake(out / "custom", **CUSTOM)}


@pytest.fixture(scope="module")
def service_venv(projects: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One virtualenv with both services installed (editable) from their own pyproject.toml, extras and all."""
    home = tmp_path_factory.mktemp("venv") / "venv"
    venv.EnvBuilder(with_pip=True).create(home)
    python = str(home / "bin" / "python")
    pip = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    for command in (
        [*pip, "-e", f"{projects['default']}[test]"],
        [*pip, "--no-deps", "-e", str(projects["custom"])],
    ):
        result = run(command, cwd=home)
        if result.returncode != 0:
            unavailable(f"cannot install the generated service ({' '.join(command[3:])}): {result.stderr[-1500:]}")
    return home


def tox_commands(project: Path, env_name: str) -> list[list[str]]:
    """The commands ``tox -e <env_name>`` would run, read from the generated tox.ini."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(project / "tox.ini")
    lines = parser[f"testenv:{env_name}"]["commands"].strip().splitlines()
    return [shlex.split(line.replace("{posargs}", "")) for line in lines if line.strip()]


@pytest.mark.parametrize("env_name", TOX_ENVS)
@pytest.mark.parametrize("which", ["default", "custom"])
def test_generated_checks_pass(projects: dict[str, Path], service_venv: Path, which: str, env_name: str) -> None:
    """Each tox environment's commands pass in the freshly generated project."""
    project = projects[which]
    bin_dir = service_venv / "bin"
    env = clean_env(PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", VIRTUAL_ENV=str(service_venv))
    for command in tox_commands(project, env_name):
        result = run(command, cwd=project, env=env)
        output = f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        assert result.returncode == 0, f"{' '.join(command)} failed in {which}:\n{output}"


def test_longest_slug_and_empty_description(service_venv: Path, tmp_path: Path) -> None:
    """The longest slug the hook allows still lints at line-length 120; an empty description still matches the spec."""
    slug = "a-very-long-service-slug-for-line-lengths"
    assert len(slug) == 41
    project = bake(tmp_path, service_slug=slug, description="")
    env = clean_env(PATH=f"{service_venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    for env_name in ("lint", "spec"):
        for command in tox_commands(project, env_name):
            result = run(command, cwd=project, env=env)
            assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout}{result.stderr}"


def test_default_answers(projects: dict[str, Path]) -> None:
    """The defaults: slug derived from the name, the example resource included."""
    project = projects["default"]
    assert project.name == "orders"
    assert (project / "orders" / "api.py").read_text().count("/items") == 3
    assert (project / "tests" / "units" / "test_items.py").is_file()
    spec = json.loads((project / "openapi.json").read_text())
    assert set(spec["paths"]) == {"/health", "/items", "/items/validate", "/items/{item_id}"}


def test_custom_answers_without_example(projects: dict[str, Path]) -> None:
    """Non-default answers: package name from the slug, only /health, the example's tests removed."""
    project = projects["custom"]
    assert project.name == "billing-api"
    package = project / "billing_api"
    assert {p.name for p in package.glob("*.py")} >= {"api.py", "controller.py", "adapter.py", "exceptions.py"}
    assert "items" not in (package / "api.py").read_text()
    assert not (project / "tests" / "units" / "test_items.py").exists()
    assert not (project / "tests" / "functional" / "test_items.py").exists()
    spec = json.loads((project / "openapi.json").read_text())
    assert set(spec["paths"]) == {"/health"}
    assert spec["info"] == {"title": "Billing API", "description": CUSTOM["description"], "version": "v2"}
    assert "EXPOSE 9090" in (project / "Dockerfile").read_text()


@pytest.mark.parametrize("which", ["default", "custom"])
def test_descriptor_is_what_the_portal_reads(projects: dict[str, Path], which: str) -> None:
    """auto-service.yml has exactly the descriptor's keys (the portal's and `pipeline:`); the portal reads it."""
    project = projects[which]
    raw = yaml.safe_load((project / "auto-service.yml").read_text())
    assert set(raw) == {"name", "version", "title", "docs", "spec", "deprecated_aliases", "pipeline"}
    entry = load_descriptor(project / "auto-service.yml")
    expected = ("orders", "v1", "Orders") if which == "default" else ("billing-api", "v2", "Billing API")
    assert (entry.name, entry.version, entry.title) == expected
    assert entry.docs is not None and Path(entry.docs, "index.md").is_file()
    assert entry.spec is not None and Path(entry.spec).is_file()
    assert entry.deprecated_aliases is False


def check_jsonschema(*args: str) -> subprocess.CompletedProcess[str]:
    """Run check-jsonschema from this suite's environment."""
    if shutil.which("check-jsonschema", path=str(Path(sys.executable).parent)) is None:
        unavailable("check-jsonschema is not installed (pip install check-jsonschema)")
    return run([str(Path(sys.executable).parent / "check-jsonschema"), *args], cwd=ROOT)


@pytest.mark.parametrize("which", ["default", "custom"])
def test_stack_file_is_valid_compose(projects: dict[str, Path], which: str) -> None:
    """docker-stack.yml validates against the Compose specification and has the deployer's labels."""
    stack = projects[which] / "docker-stack.yml"
    result = check_jsonschema("--builtin-schema", "vendor.compose-spec", str(stack))
    assert result.returncode == 0, result.stdout + result.stderr
    services = yaml.safe_load(stack.read_text())["services"]
    (service,) = services.values()
    deploy = service["deploy"]
    version = "v1" if which == "default" else "v2"
    assert deploy["labels"]["auto.docs.version"] == version
    assert deploy["labels"]["auto.docs.spec"].startswith("https://")
    assert deploy["labels"]["auto.docs.spec"].endswith("/openapi.json")
    update = deploy["update_config"]
    assert (update["failure_action"], update["order"]) == ("rollback", "start-first") and update["monitor"]
    assert deploy["rollback_config"]
    assert service["healthcheck"]["test"][0] == "CMD"
    assert service["image"].startswith("${IMAGE:-")


@pytest.mark.parametrize("which", ["default", "custom"])
def test_pipeline_is_valid_gitlab_ci(projects: dict[str, Path], which: str) -> None:
    """.gitlab-ci.yml validates against GitLab's CI schema and includes the toolkit's four components."""
    pipeline = projects[which] / ".gitlab-ci.yml"
    result = check_jsonschema("--builtin-schema", "vendor.gitlab-ci", "--data-transform", "gitlab-ci", str(pipeline))
    assert result.returncode == 0, result.stdout + result.stderr
    components = [item["component"] for item in yaml.safe_load(pipeline.read_text())["include"]]
    names = [c.split("/")[-1] for c in components]
    assert names == ["build@1", "test@1", "deploy-staging@1", "pages@1"]
    assert all(c.startswith("$CI_SERVER_FQDN/auto/toolkit/") for c in components)


@pytest.mark.parametrize("which", ["default", "custom"])
def test_pipeline_is_what_auto_pipelines_renders_from_the_descriptor(projects: dict[str, Path], which: str) -> None:
    """.gitlab-ci.yml is exactly the render of auto-service.yml's `pipeline:` section (the real CLI, --check)."""
    project = projects[which]
    before = (project / ".gitlab-ci.yml").read_bytes()
    result = run([sys.executable, "-m", "pipelines", "render", "--check"], cwd=project)
    up_to_date = ".gitlab-ci.yml is up to date (build, test, deploy-staging, pages)\n"
    assert (result.returncode, result.stderr) == (0, up_to_date), result.stdout + result.stderr
    assert (project / ".gitlab-ci.yml").read_bytes() == before
    slug = CUSTOM["service_slug"] if which == "custom" else "orders"
    staging = yaml.safe_load(before)["include"][2]["inputs"]
    assert staging == {"service": slug, "url": f"https://{slug}.staging.example.com"}


def test_dockerfile(projects: dict[str, Path]) -> None:
    """Overridable base image, non-root user, health check."""
    text = (projects["default"] / "Dockerfile").read_text()
    assert text.startswith("ARG BASE_IMAGE=python:3.11-slim\nFROM ${BASE_IMAGE}\n")
    assert "\nUSER 10001\n" in text and "\nHEALTHCHECK " in text


@pytest.mark.parametrize(
    ("answers", "words"),
    [
        ({"service_slug": "Bad_Slug"}, "service_slug 'Bad_Slug' is not valid"),
        ({"service_slug": "x"}, "service_slug 'x' is not valid"),
        ({"service_slug": "json"}, "would shadow Python's own 'json'"),
        ({"api_version": "1.0"}, "api_version '1.0' is not valid"),
        ({"port": "80"}, "port '80' is not valid"),
        ({"port": "http"}, "port 'http' is not valid"),
    ],
)
def test_bad_answers_fail_cleanly(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], answers: dict[str, str], words: str
) -> None:
    """One line on stderr saying what to do, and nothing left on disk."""
    capfd.readouterr()
    with pytest.raises(FailedHookException):
        bake(tmp_path, **answers)
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("Error: ") and words in err[0], err[0]
    assert list(tmp_path.iterdir()) == []


def test_bad_answer_on_the_command_line(tmp_path: Path) -> None:
    """The cookiecutter CLI: exit 1, our one line is all of stderr, and nothing is written."""
    command = [sys.executable, "-m", "cookiecutter", "--no-input", "-o", str(tmp_path), str(TEMPLATE), "api_version=2"]
    result = run(command, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Error: api_version '2' is not valid: use 'v' and a number (e.g. v1); nothing was generated."
    ]
    assert list(tmp_path.iterdir()) == []


def test_template_openapi_is_current() -> None:
    """The template's openapi.json is exactly what tools/refresh_openapi.py makes from the generated code."""
    result = run([sys.executable, str(TEMPLATE / "tools" / "refresh_openapi.py"), "--check"], cwd=ROOT)
    assert result.returncode == 0, result.stderr


# --- cruft ---------------------------------------------------------------------------------------------------------


def git(cwd: Path, *args: str) -> None:
    """Run git in ``cwd`` (a throw-away repository of this test) and insist it works."""
    who = {"NAME": "AUTO test", "EMAIL": "test@example.com"}
    env = clean_env(**{f"GIT_{role}_{key}": value for role in ("AUTHOR", "COMMITTER") for key, value in who.items()})
    result = run(["git", "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false", *args], cwd=cwd, env=env)
    assert result.returncode == 0, f"git {' '.join(args)}: {result.stderr}"


@pytest.fixture
def template_repo(tmp_path: Path) -> Iterator[Path]:
    """A git repository holding a copy of the template in its subdirectory, as the toolkit's repository does."""
    if shutil.which("git") is None:
        unavailable("git is not installed")
    repo = tmp_path / "toolkit"
    shutil.copytree(TEMPLATE, repo / TEMPLATE.name, ignore=shutil.ignore_patterns("__pycache__", ".ruff_cache"))
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "template v1")
    yield repo


def cruft(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run cruft from this suite's environment."""
    exe = Path(sys.executable).parent / "cruft"
    if not exe.exists():
        unavailable("cruft is not installed (pip install cruft)")
    return run([str(exe), *args], cwd=cwd)


def test_cruft_create_check_update(template_repo: Path, tmp_path: Path) -> None:
    """cruft records the template; check passes at once; a template change is brought in by update."""
    out = tmp_path / "out"
    out.mkdir()
    where = ["--output-dir", str(out), "--directory", TEMPLATE.name]
    created = cruft("create", "--no-input", *where, template_repo.as_uri(), cwd=tmp_path)
    assert created.returncode == 0, created.stdout + created.stderr
    project = out / "orders"
    record: dict[str, Any] = json.loads((project / ".cruft.json").read_text())
    assert Path(record["template"].removeprefix("file://")) == template_repo
    assert record["directory"] == TEMPLATE.name
    assert record["context"]["cookiecutter"]["service_slug"] == "orders"
    checked = cruft("check", cwd=project)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    git(project, "init", "-q")  # cruft update applies the template's diff with git
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "generated")

    readme = template_repo / TEMPLATE.name / "{{cookiecutter.service_slug}}" / "README.md"
    readme.write_text(readme.read_text() + "\n## Changelog\n\nTemplate change for {{ cookiecutter.service_name }}.\n")
    git(template_repo, "commit", "-q", "-am", "template v2")
    stale = cruft("check", cwd=project)
    assert stale.returncode != 0, "cruft check should see the template has moved on"

    updated = cruft("update", "-y", cwd=project)
    assert updated.returncode == 0, updated.stdout + updated.stderr
    assert "Template change for Orders." in (project / "README.md").read_text()
    assert not list(project.rglob("*.rej"))
    again = cruft("check", cwd=project)
    assert again.returncode == 0, again.stdout + again.stderr
