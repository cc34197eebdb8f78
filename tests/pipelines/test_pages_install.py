"""The pages component's install step, run in sh as a job would run it (a stand-in ``pip`` records what it got):
auto-toolkit of the component's own release, from the toolkit project's package registry with the job's token,
which reaches pip only through its environment."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pipelines.gitlab_yaml import load_document
from pipelines.interpolation import component_values, input_values, interpolate

ROOT = Path(__file__).resolve().parents[2]
PAGES = ROOT / "templates" / "pages.yml"
TOKEN = "glcbt-64_s3cr3tJ0bT0ken"
API = "https://gitlab.example.test/api/v4"
RECORDING_PIP = '#!/bin/sh\nprintf "argv=%s\\nindex=%s\\n" "$*" "${PIP_INDEX_URL:-}" > "$PIP_RECORD"\n'


def install_step(given: dict[str, Any], version: str | None) -> str:
    """The shell text of the pages job's install step, as GitLab interpolates it for ``@version``."""
    loaded = load_document(PAGES)
    known = {"name": "pages", "version": version, "reference": version or "main"}
    body = interpolate(loaded.body, input_values(loaded.spec, given), component_values(loaded.spec, known))
    (step,) = [line for line in body["pages"]["script"] if "pip install" in line]
    return step


def run_step(step: str, tmp_path: Path) -> dict[str, str]:
    (tmp_path / "pip").write_text(RECORDING_PIP)
    (tmp_path / "pip").chmod(0o755)
    env = {
        "PATH": f"{tmp_path}:{os.environ['PATH']}",
        "CI_API_V4_URL": API,
        "CI_JOB_TOKEN": TOKEN,
        "PIP_RECORD": str(tmp_path / "record"),
    }
    done = subprocess.run(["sh", "-ec", step], env=env, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    assert TOKEN not in done.stdout + done.stderr
    return dict(line.split("=", 1) for line in (tmp_path / "record").read_text().splitlines())


def test_the_release_of_the_component_comes_from_the_toolkit_registry(tmp_path: Path) -> None:
    got = run_step(install_step({}, "1.2.0"), tmp_path)
    assert got["argv"] == "install auto-toolkit==1.2.0"
    assert got["index"] == (
        f"https://gitlab-ci-token:{TOKEN}@gitlab.example.test/api/v4/projects/auto%2Ftoolkit/packages/pypi/simple"
    )
    assert TOKEN not in got["argv"]


@pytest.mark.parametrize(
    ("given", "version", "argv", "index"),
    [
        ({}, None, "install auto-toolkit", "projects/auto%2Ftoolkit"),  # a branch include: no version, newest
        ({"package-index": "pip"}, "1.2.0", "install auto-toolkit==1.2.0", ""),
        ({"package-index": "https://pypi.example.test/simple"}, "1.2.0", "install auto-toolkit==1.2.0", "pypi.example"),
        ({"toolkit-package": "./dist/auto_toolkit-1.2.0-py3-none-any.whl"}, "1.2.0", "install ./dist/", ""),
    ],
)
def test_the_other_ways_to_get_the_toolkit(
    given: dict[str, Any], version: str | None, argv: str, index: str, tmp_path: Path
) -> None:
    got = run_step(install_step(given, version), tmp_path)
    assert got["argv"].startswith(argv)
    assert index in got["index"] if index else got["index"] == ""
