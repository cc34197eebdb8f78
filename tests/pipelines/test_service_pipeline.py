"""A generated service's ``.gitlab-ci.yml``, run with gitlab-ci-local's shell executor, offline.

The cookiecutter with its default answers, committed with ``origin`` https://gitlab.example.test/team/orders.git,
its components resolved over git from a stand-in for the toolkit published on GitLab (see ``gitlab_ci_local.py``):
which jobs exist on the default branch and on a feature branch, the ``test`` job (tox lint, test, docs, spec), the
``pages`` job (auto-docs from the service's ``auto-service.yml``, the toolkit installed from the snapshot through
the component's ``toolkit-package`` input), and, with the production deploy and the switch added to its descriptor
and re-rendered with ``auto-pipelines render``, both manual and on the default branch only. The jobs that deploy
run on the lab: test_lab_pipelines.py.

Without gitlab-ci-local (``make gitlab-ci-local``), rsync, git or python3 the tests skip, or fail when CI=true.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.pipelines import gitlab_ci_local as gcl
from tests.pipelines.gitlab_ci_local import assert_passed
from tests.pipelines.projects import (
    FEATURE,
    LIST_TIMEOUT,
    listed_when,
    service_run,
)

pytestmark = pytest.mark.system  # runs gitlab-ci-local (npm) and Debian's docker-registry

TEST_JOB_TIMEOUT = 900  # tox lint,test,docs,spec, about 1.2 min
PAGES_TIMEOUT = 600


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
