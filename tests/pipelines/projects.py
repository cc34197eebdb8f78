"""What the pipeline tests share about the projects they run: the generated service's answers and GitLab origin,
the toolkit's origin, the feature branch, and running some of a project's jobs with gitlab-ci-local."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.pipelines import gitlab_ci_local as gcl
from tests.support import bake_service

ROOT = gcl.ROOT
SLUG, PORT = "orders", 8080  # the template's default answers
SERVICE_ORIGIN = f"https://{gcl.FAKE_GITLAB}/team/{SLUG}.git"
TOOLKIT_ORIGIN = f"https://{gcl.FAKE_GITLAB}/{gcl.COMPONENT_PROJECT}.git"
FEATURE = "feature/gitlab-ci-local"
LIST_TIMEOUT = 120


def service_run(service: Path, branch: str, jobs: list[str], timeout: float, **options) -> gcl.Result:
    gcl.checkout(service, branch)
    return gcl.run(gcl.command(service, jobs, **options), timeout)


def toolkit_snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The toolkit's work tree as it is now, committed on main with a GitLab origin."""
    repo = gcl.snapshot_worktree(ROOT, tmp_path_factory.mktemp("toolkit") / "toolkit")
    gcl.commit_repo(repo, origin=TOOLKIT_ORIGIN)
    return repo


def baked_service(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template baked with its defaults, committed on main with its GitLab origin."""
    project = bake_service(tmp_path_factory)
    gcl.commit_repo(project, origin=SERVICE_ORIGIN)
    return project


def production_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
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
