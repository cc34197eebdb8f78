"""The toolkit's own ``.gitlab-ci.yml``, run with gitlab-ci-local's shell executor: ``lint``, ``unit`` and ``pages``
really execute in a committed snapshot of the current work tree (never ``test``: that job is ``make test``, this
suite).

Without gitlab-ci-local (``make gitlab-ci-local``), rsync, git or python3 the tests skip, or fail when CI=true.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.pipelines import gitlab_ci_local as gcl
from tests.pipelines.gitlab_ci_local import assert_passed, job_results
from tests.pipelines.projects import (
    LIST_TIMEOUT,
)

pytestmark = pytest.mark.system  # runs gitlab-ci-local (npm) and Debian's docker-registry

TOOLKIT_TIMEOUT = 900  # lint + unit + pages, about 1.5 min


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
