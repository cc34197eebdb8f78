"""GitLab's REST API through python-gitlab: settings, the client, and errors translated at this boundary.

Settings come from the command line and the environment: ``GITLAB_URL`` (else ``CI_SERVER_URL``),
``GITLAB_TOKEN``, the project (``--project``, else ``CI_PROJECT_ID``) and an optional CA file
(``--ca-file``, else ``GITLAB_CA_FILE``). TLS is always verified: there is no switch to turn it off.

Every python-gitlab or requests exception raised inside :func:`api_errors` leaves as one of the
``pipelines.errors`` GitLab errors (exit code 4), with a one-line, actionable message that never holds
the token or any other secret handed to it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import gitlab
import requests
from gitlab.v4.objects import Project

from autocore.text import display
from pipelines.errors import (
    GitLabAuthError,
    GitLabGoneError,
    GitLabNotFoundError,
    GitLabPermissionError,
    GitLabUnreachableError,
    PipelinesConfigError,
    PipelinesGitLabError,
)

URL_ENV = "GITLAB_URL"
CI_URL_ENV = "CI_SERVER_URL"
TOKEN_ENV = "GITLAB_TOKEN"
PROJECT_ENV = "CI_PROJECT_ID"
CA_FILE_ENV = "GITLAB_CA_FILE"

DEFAULT_TIMEOUT = 30.0  # seconds per request
MAX_RETRIES = 3  # after a 5xx, 429 or a timeout; python-gitlab's own default (10) waits over a minute and a half
_MAX_MESSAGE = 200
_REDACTED = "[redacted]"
# What a secret looks like even when we were not told its value: PEM blocks, GitLab tokens.
_PEM_BLOCK = re.compile(r"-----BEGIN [^-]*-----.*?(-----END [^-]*-----|$)", re.DOTALL)
_TOKEN_LIKE = re.compile(r"\b(glpat|gldt|glrt|glcbt|glptt|glft|glimt|glagent|gloas|glsoat)-[A-Za-z0-9_.-]{8,}")


@dataclass(frozen=True)
class GitLabSettings:
    """Where GitLab is and how to talk to it. ``token`` is left out of ``repr`` so it cannot leak in a log."""

    url: str
    token: str = field(repr=False)
    project: str | None = None
    ca_file: str | None = None
    timeout: float = DEFAULT_TIMEOUT

    @property
    def ssl_verify(self) -> bool | str:
        """What requests' ``verify`` gets: the CA file when one is set, else the system's trust store."""
        return self.ca_file or True


def load_settings(
    environ: Mapping[str, str],
    *,
    project: str | None = None,
    ca_file: str | None = None,
    need_project: bool = True,
) -> GitLabSettings:
    """Read the GitLab settings; raise ``PipelinesConfigError`` naming the variable or flag that is missing."""
    url = (environ.get(URL_ENV) or environ.get(CI_URL_ENV) or "").strip()
    if not url:
        raise PipelinesConfigError(f"{URL_ENV} is not set: set it to GitLab's address, such as https://gitlab.com")
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.netloc:
        # The token travels in a header: never over plain HTTP.
        raise PipelinesConfigError(f"{URL_ENV} must be an https:// URL such as https://gitlab.com, not {url!r}")
    url = url.rstrip("/")
    url = url.removesuffix("/api/v4")  # the API path is python-gitlab's to add
    token = environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise PipelinesConfigError(f"{TOKEN_ENV} is not set: set it to a GitLab access token with scope api")
    project = (project or environ.get(PROJECT_ENV) or "").strip() or None
    if need_project and not project:
        raise PipelinesConfigError(f"no GitLab project: pass --project ID_OR_PATH or set {PROJECT_ENV}")
    ca_file = ca_file or environ.get(CA_FILE_ENV) or None
    if ca_file and not Path(ca_file).is_file():
        raise PipelinesConfigError(f"the GitLab CA file {ca_file} does not exist (--ca-file / {CA_FILE_ENV})")
    return GitLabSettings(url=url, token=token, project=project, ca_file=ca_file)


class _Gitlab(gitlab.Gitlab):
    """python-gitlab with a bounded number of retries on every request."""

    def http_request(self, *args: Any, max_retries: int = MAX_RETRIES, **kwargs: Any) -> requests.Response:
        return super().http_request(*args, max_retries=max_retries, **kwargs)


def connect(settings: GitLabSettings, *, session: requests.Session | None = None) -> gitlab.Gitlab:
    """A python-gitlab client: TLS verified (system store or the CA file), a timeout, transient errors retried.

    Nothing is sent until the first call. ``session`` lets a caller bring its own ``requests.Session``.
    """
    return _Gitlab(
        settings.url,
        private_token=settings.token,
        ssl_verify=settings.ssl_verify,
        timeout=settings.timeout,
        retry_transient_errors=True,
        user_agent="auto-pipelines",
        session=session,
    )


def project_of(client: gitlab.Gitlab, settings: GitLabSettings) -> Project:
    """The settings' project, lazily: no request is made until one of its endpoints is called."""
    if not settings.project:
        raise PipelinesConfigError(f"no GitLab project: pass --project ID_OR_PATH or set {PROJECT_ENV}")
    return client.projects.get(settings.project, lazy=True)


# --------------------------------------------------------------------------- errors


def scrub(text: str, secrets: Iterable[str] = (), limit: int = _MAX_MESSAGE) -> str:
    """``text`` without any of ``secrets`` (nor any line of them), PEM blocks or GitLab tokens, on one line of at
    most ``limit`` characters."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, _REDACTED)
        for line in secret.splitlines():
            if len(line.strip()) >= 8:  # a line of a PEM is as secret as the whole
                text = text.replace(line.strip(), _REDACTED)
    text = _PEM_BLOCK.sub(_REDACTED, text)
    text = _TOKEN_LIKE.sub(_REDACTED, text)
    return display(text, limit)


def _flatten(message: Any) -> str:
    """GitLab's ``message`` is a string, or for validation errors a dict such as ``{"key": ["has already been
    taken"]}``."""
    if isinstance(message, dict):
        return "; ".join(f"{k} {_flatten(v)}" for k, v in message.items())
    if isinstance(message, list):
        return ", ".join(_flatten(v) for v in message)
    if isinstance(message, bytes):
        return message.decode("utf-8", "replace")
    return str(message)


def _gitlab_message(exc: gitlab.exceptions.GitlabError) -> tuple[str, dict[str, Any]]:
    """GitLab's own words (``message`` or ``error``) and the parsed JSON body, if it was JSON."""
    body: dict[str, Any] = {}
    try:
        parsed = json.loads(exc.response_body or b"")
        if isinstance(parsed, dict):
            body = parsed
    except (ValueError, TypeError):
        pass
    message = body.get("message", body.get("error", exc.error_message))
    return _flatten(message), body


def translate(
    exc: Exception, settings: GitLabSettings, doing: str, *, secrets: Iterable[str] = (), hint_403: str = ""
) -> PipelinesGitLabError:
    """The ``pipelines.errors`` exception for a python-gitlab or requests exception raised while ``doing``."""
    hidden = [settings.token, *secrets]
    url = settings.url
    if isinstance(exc, requests.exceptions.SSLError):
        return GitLabUnreachableError(
            f"TLS verification of GitLab at {url} failed while {doing}: if it uses a private CA, pass --ca-file "
            f"or set {CA_FILE_ENV}"
        )
    if isinstance(exc, requests.exceptions.Timeout):
        return GitLabUnreachableError(
            f"GitLab unreachable at {url}: no answer within {settings.timeout:g}s while {doing} (retried)"
        )
    if isinstance(exc, requests.exceptions.RequestException):
        return GitLabUnreachableError(
            f"GitLab unreachable at {url} while {doing}: the connection failed; check {URL_ENV} and the network"
        )
    if isinstance(exc, gitlab.exceptions.RedirectError):
        return PipelinesGitLabError(
            f"GitLab at {url} redirected the request while {doing}: set {URL_ENV} to GitLab's final https address"
        )
    if isinstance(exc, gitlab.exceptions.GitlabParsingError):
        return PipelinesGitLabError(
            f"GitLab at {url} did not answer with JSON while {doing}: is {URL_ENV} the address of a GitLab?"
        )
    if not isinstance(exc, gitlab.exceptions.GitlabError):
        return PipelinesGitLabError(f"unexpected failure while {doing}: {scrub(type(exc).__name__, hidden)}")
    code = exc.response_code
    message, body = _gitlab_message(exc)
    said = scrub(message, hidden)
    if code == 401:
        return GitLabAuthError(
            f"GitLab at {url} refused the token (401) while {doing}: check {TOKEN_ENV} (expired or revoked?) and "
            "that it has scope api"
        )
    if code == 403:
        if body.get("error") == "insufficient_scope" or "insufficient_scope" in message:
            return GitLabPermissionError(
                f"the token's scopes are too narrow (403) while {doing}: {TOKEN_ENV} needs scope api"
            )
        hint = f": {hint_403}" if hint_403 else ""
        return GitLabPermissionError(f"the token lacks permission (403) while {doing}{hint}")
    if code == 404:
        return GitLabNotFoundError(
            f"project or resource not found (404: {said}) while {doing}: check --project / {PROJECT_ENV} "
            f"({settings.project!r}: an ID or a full path such as group/app) and that the token can see it"
        )
    if code == 410:
        return GitLabGoneError(f"this GitLab removed the endpoint (410) used while {doing}")
    if code is None:
        return PipelinesGitLabError(f"GitLab failed while {doing}: {said}")
    retried = " (after retries)" if code >= 500 or code == 429 else ""
    return PipelinesGitLabError(f"GitLab answered {code}{retried} while {doing}: {said}")


@contextmanager
def api_errors(
    settings: GitLabSettings, doing: str, *, secrets: Iterable[str] = (), hint_403: str = ""
) -> Iterator[None]:
    """Turn python-gitlab and requests exceptions raised inside into ``pipelines.errors`` ones."""
    try:
        yield
    except (gitlab.exceptions.GitlabError, requests.exceptions.RequestException) as exc:
        # ``from None``: the original may carry the response body or the request, which may hold a secret.
        raise translate(exc, settings, doing, secrets=secrets, hint_403=hint_403) from None
