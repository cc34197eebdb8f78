"""pipelines' exceptions and the exit codes the CLI maps them to.

Library code raises these; only ``pipelines.cli`` prints them. Each message is one line that says
what went wrong and where (file and line when there is one).
"""

from __future__ import annotations

from autocore.errors import EXIT_BAD_INPUT as EXIT_BAD_INPUT  # re-exported: every exit code in one place
from autocore.errors import EXIT_INTERRUPTED as EXIT_INTERRUPTED
from autocore.errors import EXIT_OK as EXIT_OK
from autocore.errors import ToolkitError

EXIT_ISSUES = 3  # a file was read but has lint issues (errors; warnings alone do not fail)


class PipelinesError(ToolkitError):
    """Base of every error pipelines raises on purpose."""

    exit_code = EXIT_BAD_INPUT


class PipelinesConfigError(PipelinesError):
    """Bad input: a pipeline file that is missing, unreadable or not YAML."""

    exit_code = EXIT_BAD_INPUT


class RenderCheckFailed(PipelinesError):
    """``render --check``: the committed file is not what the descriptor renders to."""

    exit_code = EXIT_ISSUES


EXIT_GITLAB = 4  # the GitLab API refused the request or could not be reached


class PipelinesGitLabError(PipelinesError):
    """GitLab's API refused a request or could not be reached. The message never holds a secret."""

    exit_code = EXIT_GITLAB


class GitLabAuthError(PipelinesGitLabError):
    """401: GitLab refused the token."""


class GitLabPermissionError(PipelinesGitLabError):
    """403: the token is valid but lacks the permission (role or scope) the call needs."""


class GitLabNotFoundError(PipelinesGitLabError):
    """404: the project, or the resource inside it, does not exist or is not visible to the token."""


class GitLabGoneError(PipelinesGitLabError):
    """410: this GitLab removed the endpoint."""


class GitLabUnreachableError(PipelinesGitLabError):
    """No usable answer: connection refused, timeout, DNS or TLS verification failure."""


class GitLabPartialError(PipelinesGitLabError):
    """A run of several writes failed part-way; the message says what was and was not changed."""

    def __init__(self, message: str, done: list[str], not_done: list[str]) -> None:
        super().__init__(message)
        self.done = done
        self.not_done = not_done
