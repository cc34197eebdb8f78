"""What the pipelines tests share: gitlab-ci-local, checked once per module."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.pipelines import gitlab_ci_local as gcl
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
