"""``deployment record``: a deploy as a deployment in GitLab's Environments.

Without an id, ``POST /projects/:id/deployments`` creates one (environment, sha, ref, tag, status) and
its id is printed, to be passed back with ``--id`` once the deploy ends: ``PUT
/projects/:id/deployments/:id`` then updates its status. In CI the inputs default to the job's
``CI_ENVIRONMENT_NAME``, ``CI_COMMIT_REF_NAME``, ``CI_COMMIT_SHA`` (and ``CI_COMMIT_TAG``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import gitlab

from pipelines.errors import PipelinesConfigError
from pipelines.gitlab_api import GitLabSettings, api_errors, project_of

STATUSES = ("running", "success", "failed", "canceled")
_SHA = re.compile(r"\A[0-9a-fA-F]{40}\Z")
_ENVIRONMENT = re.compile(r"\A[A-Za-z0-9 _/${}.-]+\Z")  # GitLab's rule for environment names
_HINT_403 = (
    "recording a deployment needs at least the Developer role, and the right to deploy to the environment "
    "when it is protected"
)


@dataclass(frozen=True)
class DeploymentRequest:
    """Validated inputs: ``deployment_id`` set means update its status, else create a deployment."""

    status: str
    environment: str | None = None
    ref: str | None = None
    sha: str | None = None
    tag: bool = False
    deployment_id: int | None = None


def deployment_request(
    environ: Mapping[str, str],
    *,
    status: str,
    environment: str | None = None,
    ref: str | None = None,
    sha: str | None = None,
    tag: bool = False,
    deployment_id: int | None = None,
) -> DeploymentRequest:
    """Fill the inputs from the CI job's variables and validate them; ``PipelinesConfigError`` says what is wrong."""
    if status not in STATUSES:
        raise PipelinesConfigError(f"--status {status!r} is not one of {', '.join(STATUSES)}")
    environment = environment or environ.get("CI_ENVIRONMENT_NAME") or None
    if environment is not None and not _ENVIRONMENT.match(environment):
        raise PipelinesConfigError(
            f"--environment {environment!r} is not a GitLab environment name (letters, digits, spaces, - _ / $ {{ }} .)"
        )
    if deployment_id is not None:
        if deployment_id <= 0:
            raise PipelinesConfigError(f"--id {deployment_id} is not a deployment id (a positive number)")
        if ref or sha or tag:
            raise PipelinesConfigError("--ref, --sha and --tag describe a new deployment: with --id only --status")
        return DeploymentRequest(status, environment, deployment_id=deployment_id)
    if not environment:
        raise PipelinesConfigError("no environment: pass --environment ENV or set CI_ENVIRONMENT_NAME")
    from_ci = ref is None
    ref = ref or environ.get("CI_COMMIT_REF_NAME") or None
    if not ref:
        raise PipelinesConfigError("no ref: pass --ref BRANCH_OR_TAG or set CI_COMMIT_REF_NAME")
    sha = sha or environ.get("CI_COMMIT_SHA") or None
    if not sha:
        raise PipelinesConfigError("no commit: pass --sha SHA or set CI_COMMIT_SHA")
    if not _SHA.match(sha):
        raise PipelinesConfigError(f"--sha {sha[:60]!r} is not a full commit SHA (40 hexadecimal characters)")
    # In a tag pipeline CI_COMMIT_REF_NAME is the tag, and GitLab wants to know it is one.
    tag = tag or (from_ci and environ.get("CI_COMMIT_TAG") == ref)
    return DeploymentRequest(status, environment, ref, sha.lower(), tag)


@dataclass(frozen=True)
class DeploymentResult:
    """A deployment as GitLab answered: created or updated."""

    action: str  # created or updated
    id: int
    iid: int | None
    status: str
    environment: str | None
    ref: str | None
    sha: str | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "action": self.action,
            "id": self.id,
            "iid": self.iid,
            "status": self.status,
            "environment": self.environment,
            "ref": self.ref,
            "sha": self.sha,
        }

    @classmethod
    def from_api(cls, action: str, data: Mapping[str, Any]) -> DeploymentResult:
        """From GitLab's deployment JSON."""
        environment = data.get("environment")
        return cls(
            action,
            int(data["id"]),
            data.get("iid"),
            str(data.get("status")),
            environment.get("name") if isinstance(environment, dict) else None,
            data.get("ref"),
            data.get("sha"),
        )


def record_deployment(client: gitlab.Gitlab, settings: GitLabSettings, request: DeploymentRequest) -> DeploymentResult:
    """Create the deployment, or update the status of ``request.deployment_id``; raise a GitLab error if refused.

    An update first reads the deployment, and refuses (changing nothing) when it belongs to another
    environment than ``request.environment``.
    """
    project = project_of(client, settings)
    if request.deployment_id is None:
        data = {
            "environment": request.environment,
            "sha": request.sha,
            "ref": request.ref,
            "tag": request.tag,
            "status": request.status,
        }
        with api_errors(settings, f"creating a deployment in {request.environment}", hint_403=_HINT_403):
            created = project.deployments.create(data)
        return DeploymentResult.from_api("created", created.attributes)
    with api_errors(settings, f"reading deployment {request.deployment_id}", hint_403=_HINT_403):
        current = project.deployments.get(request.deployment_id)
    found = DeploymentResult.from_api("read", current.attributes)
    if request.environment and found.environment and found.environment != request.environment:
        raise PipelinesConfigError(
            f"deployment {request.deployment_id} is in environment {found.environment!r}, not "
            f"{request.environment!r}: nothing was changed"
        )
    with api_errors(settings, f"updating deployment {request.deployment_id}", hint_403=_HINT_403):
        updated = project.deployments.update(request.deployment_id, {"status": request.status})
    return DeploymentResult.from_api("updated", updated)
