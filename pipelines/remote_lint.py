"""``lint --remote``: GitLab's own CI lint, its errors and warnings shown as :class:`~pipelines.lint.Issue`.

With a project: ``POST /projects/:id/ci/lint`` with ``dry_run=true`` (a pipeline-creation simulation on
``ref``, else the default branch). Without one: the global ``POST /ci/lint`` of GitLab < 16, whose
410 Gone on newer GitLab becomes a message that says to pass a project.
"""

from __future__ import annotations

import re

import gitlab
import requests

from autocore.issues import MAX_MESSAGE, SEVERITY_ERROR, SEVERITY_WARNING, Issue
from autocore.loading import DEFAULT_BUDGET
from autocore.text import json_path
from pipelines.errors import GitLabGoneError, PipelinesConfigError
from pipelines.gitlab_api import PROJECT_ENV, GitLabSettings, api_errors, project_of, scrub, translate
from pipelines.includes import IncludeNotFound, ProjectReader

RULE = "gitlab-lint"
RULE_SKIPPED = "gitlab-lint-skipped"
_HINT_403 = "a dry-run lint simulates a pipeline, which needs at least the Developer role on the project"
# GitLab names the job in most of its messages: "jobs:build config ...", "jobs:build:rules config ...".
_JOB_PATH = re.compile(r"^jobs:(\S+?):?\s")


def _path_of(message: str) -> str:
    """A JSON path for GitLab's message when it names a job, else the document root."""
    match = _JOB_PATH.match(message)
    return json_path(match.group(1).split(":")) if match else "$"


def component_skipped(file: str) -> Issue:
    """The warning for a component file, which GitLab lints only once included with its inputs."""
    return Issue(
        file,
        "$",
        "not linted remotely: a CI/CD component (spec: header) is linted by GitLab only when included with its "
        "inputs; lint a .gitlab-ci.yml that includes it instead",
        RULE_SKIPPED,
        SEVERITY_WARNING,
    )


def _issues(file: str, errors: list[object], warnings: list[object], settings: GitLabSettings) -> list[Issue]:
    issues = []
    for severity, messages in ((SEVERITY_ERROR, errors), (SEVERITY_WARNING, warnings)):
        for message in messages or []:
            text = scrub(str(message), [settings.token], MAX_MESSAGE)
            issues.append(Issue(file, _path_of(text), f"GitLab: {text}", RULE, severity))
    return issues


def lint_remote(
    client: gitlab.Gitlab, settings: GitLabSettings, file: str, content: str, *, ref: str | None = None
) -> list[Issue]:
    """GitLab's verdict on ``content`` (the text of ``file``) as issues; an empty list when GitLab says valid.

    Raises a ``pipelines.errors`` GitLab error when GitLab refuses or cannot be reached.
    """
    if ref and not settings.project:
        raise PipelinesConfigError("--ref needs a project: pass --project ID_OR_PATH or set " + PROJECT_ENV)
    if settings.project:
        data: dict[str, object] = {"content": content, "dry_run": True}
        if ref:
            data["ref"] = ref
        project = project_of(client, settings)
        with api_errors(settings, f"linting {file} with GitLab's project CI lint", hint_403=_HINT_403):
            result = project.ci_lint.create(data)
        attributes = result.attributes
        issues = _issues(file, attributes.get("errors", []), attributes.get("warnings", []), settings)
        if not attributes.get("valid", False) and not any(i.severity == SEVERITY_ERROR for i in issues):
            issues.append(Issue(file, "$", "GitLab: invalid (it gave no reason)", RULE))
        return issues
    try:
        with api_errors(settings, f"linting {file} with GitLab's global CI lint"):
            result = client.ci_lint.create({"content": content})
    except GitLabGoneError:
        raise GitLabGoneError(
            f"this GitLab removed the global CI lint endpoint (410): pass --project or set {PROJECT_ENV}"
        ) from None
    attributes = result.attributes
    issues = _issues(file, attributes.get("errors", []), attributes.get("warnings", []), settings)
    if attributes.get("status") != "valid" and not any(i.severity == SEVERITY_ERROR for i in issues):
        issues.append(Issue(file, "$", "GitLab: invalid (it gave no reason)", RULE))
    return issues


def project_reader(client: gitlab.Gitlab, settings: GitLabSettings) -> ProjectReader:
    """How ``include: project:`` is read with ``--remote``: GitLab's repository files API
    (``GET /projects/:id/repository/files/:path/raw?ref=``), the ref omitted for the default branch as GitLab
    does. A 404 is the include's problem (an error on that include); any other failure is GitLab's (exit 4)."""

    def read(project: str, file: str, ref: str | None) -> str:
        at = f" at {ref}" if ref else ""
        doing = f"reading {file}{at} of project {project} for an include: project:"
        try:
            data = client.projects.get(project, lazy=True).files.raw(file_path=file, ref=ref)
        except gitlab.exceptions.GitlabGetError as exc:
            if exc.response_code == 404:
                raise IncludeNotFound(
                    f"GitLab has no file {file!r}{at} in project {project!r} (or the token may not read it)"
                ) from None
            raise translate(exc, settings, doing) from None
        except (gitlab.exceptions.GitlabError, requests.exceptions.RequestException) as exc:
            raise translate(exc, settings, doing) from None
        if not isinstance(data, bytes):
            raise PipelinesConfigError(f"GitLab answered no file content while {doing}")
        if len(data) > DEFAULT_BUDGET.max_bytes:
            raise IncludeNotFound(f"{file!r} has {len(data)} bytes, over the size budget of {DEFAULT_BUDGET.max_bytes}")
        try:
            return data.decode("utf-8").removeprefix("\ufeff")
        except UnicodeDecodeError as exc:
            raise IncludeNotFound(f"{file!r} is not UTF-8 text (byte {exc.start})") from None

    return read
