"""What the pipelines tests share: gitlab-ci-local, checked once per module, and the projects its tests run
(made once per module that uses them: a module's tests change their checkouts)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.pipelines import gitlab_ci_local as gcl
from tests.pipelines import projects
from tests.support import unavailable


@pytest.fixture(scope="module")
def gitlab_ci_local() -> str:
    for tool in ("git", "rsync", "python3"):
        if shutil.which(tool) is None:
            unavailable(f"{tool} is not installed (make system installs it)")
    found = gcl.executable()
    if found is None:
        unavailable("gitlab-ci-local is not installed: run `make gitlab-ci-local`")
    version = subprocess.run([found, "--version"], capture_output=True, text=True, timeout=60, check=False)
    if version.returncode != 0:
        unavailable(f"{found} --version failed: {(version.stderr or version.stdout).strip()[-300:]}")
    assert version.stdout.strip() == gcl.VERSION, f"{found} is {version.stdout.strip()}, not {gcl.VERSION}"
    return found


@pytest.fixture(scope="module")
def toolkit(tmp_path_factory: pytest.TempPathFactory, gitlab_ci_local: str) -> Path:
    """The toolkit's work tree as it is now, committed on main with a GitLab origin."""
    return projects.toolkit_snapshot(tmp_path_factory)


@pytest.fixture(scope="module")
def components(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str]]:
    """The toolkit's current templates/ published as auto/toolkit 1.0.0 on the fake GitLab (git config)."""
    git_root = gcl.component_project(projects.ROOT / "templates", tmp_path_factory.mktemp("gitlab") / "git")
    return gcl.insteadof(git_root)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, gitlab_ci_local: str) -> Path:
    """The template baked with its defaults, committed on main with its GitLab origin."""
    return projects.baked_service(tmp_path_factory)


@pytest.fixture(scope="module")
def production_service(tmp_path_factory: pytest.TempPathFactory, gitlab_ci_local: str) -> Path:
    """The service with the production deploy and the switch in its pipeline (see projects.production_project)."""
    return projects.production_project(tmp_path_factory)
