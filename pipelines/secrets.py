"""``secrets push``: the deployer's Docker TLS files as GitLab CI/CD variables of one environment.

Each of ``AUTO_DOCKER_CA``, ``AUTO_DOCKER_CERT`` and ``AUTO_DOCKER_KEY`` becomes a project variable of
type ``file``, protected, raw (no ``$`` expansion), scoped to the environment, and masked where GitLab
allows it (PEM files never: they span several lines). The material is found and checked by the
deployer's own loader first (the key must belong to the certificate), so nothing bad is ever uploaded.
It takes the same shapes as ``auto-deploy`` (``--cert-dir``, or each variable as PEM text, base64 of PEM,
or a file path: see ``deployer.tls``), and what is uploaded is always the PEM itself.

No value is ever printed, nor any part of one: not in the report, not in a dry run, not in an error.
GitLab's own error messages are scrubbed of the values, and of any run of 8 or more of their characters.

What is there already is read first (``GET .../variables/:key?filter[environment_scope]=ENV``); the
report says per variable created / updated (which attributes) / unchanged, never a value.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import gitlab
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from autocore.errors import ToolkitError
from deployer import tls
from pipelines.errors import GitLabPartialError, PipelinesConfigError, PipelinesGitLabError
from pipelines.gitlab_api import GitLabSettings, api_errors

CREATED = "created"
UPDATED = "updated"
UNCHANGED = "unchanged"
# GitLab's rule for a masked value: one line, at least 8 characters, all from the Base64 alphabet
# (RFC 4648, both variants) plus @ : . ~ (docs: "CI/CD variables", "Mask a CI/CD variable").
_MASKABLE = re.compile(r"\A[A-Za-z0-9+/=_@:.~-]{8,}\Z")
# GitLab's environment names: letters, digits, spaces and - _ / $ { } . ; a variable's scope may also use *.
_ENVIRONMENT = re.compile(r"\A[A-Za-z0-9 _/${}.*-]+\Z")
# The attributes compared, as the report names them.
_COMPARED = {
    "value": "value",
    "variable_type": "type",
    "protected": "protected",
    "masked": "masked",
    "raw": "raw",
    "environment_scope": "scope",
}
_HINT_403 = "managing CI/CD variables needs the Maintainer role on the project"
# The shortest run of a value's characters that counts as a leak when found in a message from GitLab.
FRAGMENT = 8
_REDACTED = "[redacted]"


def mask_verdict(value: str) -> tuple[bool, str]:
    """Whether GitLab can mask ``value``, and if not, why (safe to print: it never quotes the value)."""
    if "\n" in value.strip() or "\r" in value.strip():
        return False, "GitLab cannot mask multi-line values"
    if len(value) < 8:
        return False, "GitLab cannot mask values shorter than 8 characters"
    if not _MASKABLE.match(value):
        return False, "GitLab can mask only values made of Base64 characters and @ : . ~"
    return True, ""


def check_environment(environment: str) -> str:
    """The environment name, or ``PipelinesConfigError`` when GitLab would refuse it as a scope."""
    if not environment or not _ENVIRONMENT.match(environment):
        raise PipelinesConfigError(
            f"--environment {environment!r} is not a GitLab environment name (letters, digits, spaces, - _ / $ {{ }} .)"
        )
    return environment


def load_tls(cert_dir: str | None, environ: Mapping[str, str]) -> tls.TLSMaterial:
    """The deployer's TLS material, validated by the deployer's loader (the key matches the certificate,
    the CA parses); its error becomes ``PipelinesConfigError``. Messages name variables and files (a path only
    when the value plainly is one), never any part of a value."""
    try:
        return tls.load_material(cert_dir, environ)
    except ToolkitError as exc:
        raise PipelinesConfigError(str(exc)) from None


def _fingerprint(pem: bytes) -> str:
    """SHA-256 of the (first) certificate in ``pem``: safe to print, unlike a key."""
    cert = x509.load_pem_x509_certificates(pem)[0]
    return "sha256:" + hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def redact_fragments(text: str, secrets: Iterable[str], size: int = FRAGMENT) -> str:
    """``text`` with every run of ``size`` or more characters that also occurs in one of ``secrets`` replaced.

    ``gitlab_api.scrub`` removes whole values and whole lines of them; this also catches a part of a line
    (GitLab cutting a long value short in its message). The PEM armour lines are left out of what is
    searched: they are no secret, and words such as "CERTIFICATE" must not be redacted from GitLab's text.
    """
    haystacks = []
    for secret in secrets:
        body = [line for line in secret.splitlines() if not line.lstrip().startswith("-----")]
        # Messages reach us on one line (whitespace collapsed): search the value the same way.
        haystacks.append(" ".join(" ".join(body).split()))
    hidden = [False] * len(text)
    for start in range(len(text) - size + 1):
        window = text[start : start + size]
        if window.strip() and any(window in haystack for haystack in haystacks):
            hidden[start : start + size] = [True] * size
    out: list[str] = []
    for index, char in enumerate(text):
        if not hidden[index]:
            out.append(char)
        elif index == 0 or not hidden[index - 1]:
            out.append(_REDACTED)
    return "".join(out)


@contextmanager
def _api_guard(settings: GitLabSettings, doing: str, secrets: list[str]) -> Iterator[None]:
    """``api_errors``, plus ``redact_fragments`` on the message it raises."""
    try:
        with api_errors(settings, doing, secrets=secrets, hint_403=_HINT_403):
            yield
    except PipelinesGitLabError as exc:
        message = str(exc)
        cleaned = redact_fragments(message, secrets)
        if cleaned == message:
            raise
        raise type(exc)(cleaned) from None


@dataclass(frozen=True)
class DesiredVariable:
    """A variable as ``secrets push`` wants it. ``value`` is left out of ``repr``."""

    key: str
    value: str = field(repr=False)
    environment_scope: str
    masked: bool
    mask_reason: str
    fingerprint: str | None  # certificates only, never keys
    variable_type: str = "file"
    protected: bool = True
    raw: bool = True

    def body(self) -> dict[str, Any]:
        """What is sent to GitLab to create or update it."""
        return {
            "key": self.key,
            "value": self.value,
            "variable_type": self.variable_type,
            "protected": self.protected,
            "masked": self.masked,
            "raw": self.raw,
            "environment_scope": self.environment_scope,
        }


def desired_variables(material: tls.TLSMaterial, environment: str) -> list[DesiredVariable]:
    """The three variables for ``material`` in ``environment``, in the order CA, certificate, key."""
    out = []
    for part, key in tls.ENV_NAMES.items():
        value = getattr(material, part).pem.decode("ascii", "replace")
        masked, reason = mask_verdict(value)
        fingerprint = _fingerprint(getattr(material, part).pem) if part in ("ca", "cert") else None
        out.append(DesiredVariable(key, value, environment, masked, reason, fingerprint))
    return out


@dataclass(frozen=True)
class VariableChange:
    """What ``secrets push`` did (or, in a dry run, would do) to one variable."""

    key: str
    action: str  # created, updated or unchanged
    changed: tuple[str, ...]  # report names of the attributes that differ, for "updated"
    masked: bool
    mask_reason: str
    fingerprint: str | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, without the value."""
        out: dict[str, Any] = {
            "key": self.key,
            "action": self.action,
            "changed": list(self.changed),
            "variable_type": "file",
            "protected": True,
            "raw": True,
            "masked": self.masked,
        }
        if self.mask_reason:
            out["not_masked_because"] = self.mask_reason
        if self.fingerprint:
            out["sha256_fingerprint"] = self.fingerprint
        return out


@dataclass(frozen=True)
class PushReport:
    """The outcome of ``secrets push``."""

    project: str
    environment: str
    dry_run: bool
    variables: list[VariableChange]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, without any value."""
        return {
            "project": self.project,
            "environment": self.environment,
            "dry_run": self.dry_run,
            "variables": [v.as_dict() for v in self.variables],
        }


def _compare(desired: DesiredVariable, existing: dict[str, Any] | None) -> tuple[str, tuple[str, ...]]:
    if existing is None:
        return CREATED, ()
    wanted = desired.body()
    changed = tuple(name for attr, name in _COMPARED.items() if existing.get(attr) != wanted[attr])
    return (UPDATED, changed) if changed else (UNCHANGED, ())


def _existing(project: Any, desired: DesiredVariable) -> dict[str, Any] | None:
    """The variable of that key in that scope, or None (the caller translates other errors)."""
    try:
        found = project.variables.get(desired.key, filter={"environment_scope": desired.environment_scope})
    except gitlab.exceptions.GitlabGetError as exc:
        if exc.response_code == 404:
            return None
        raise
    attributes = dict(found.attributes)
    if attributes.get("environment_scope") != desired.environment_scope:
        return None  # an old GitLab ignored the filter: that is another scope's variable, which we leave alone
    return attributes


def push_secrets(
    client: gitlab.Gitlab,
    settings: GitLabSettings,
    environment: str,
    material: tls.TLSMaterial,
    *,
    dry_run: bool = False,
) -> PushReport:
    """Upload ``material`` as file-type, protected variables scoped to ``environment``; report what changed.

    ``dry_run`` reads only. Raises a ``pipelines.errors`` GitLab error; a failure after some writes is a
    ``GitLabPartialError`` that names what was and was not changed.
    """
    check_environment(environment)
    wanted = desired_variables(material, environment)
    secrets = [v.value for v in wanted]

    def guard(doing: str) -> Any:
        return _api_guard(settings, doing, secrets)

    try:
        # A real GET of the project first, so a 404 on a variable below means "no such variable".
        with guard(f"reading project {settings.project}"):
            project = client.projects.get(settings.project)
        name = f"{project.attributes.get('path_with_namespace', settings.project)} (id {project.get_id()})"
        plan = []
        for desired in wanted:
            with guard(f"reading variable {desired.key} (scope {environment})"):
                existing = _existing(project, desired)
            plan.append((desired, *_compare(desired, existing)))
    except PipelinesGitLabError as exc:
        raise type(exc)(f"{exc}; nothing was changed") from None

    changes = [VariableChange(d.key, a, c, d.masked, d.mask_reason, d.fingerprint) for d, a, c in plan]
    if dry_run:
        return PushReport(name, environment, True, changes)
    done: list[str] = []
    for index, (desired, action, _changed) in enumerate(plan):
        if action == UNCHANGED:
            continue
        try:
            with guard(f"{'creating' if action == CREATED else 'updating'} variable {desired.key}"):
                if action == CREATED:
                    project.variables.create(desired.body())
                else:
                    project.variables.update(
                        desired.key, desired.body(), filter={"environment_scope": desired.environment_scope}
                    )
        except PipelinesGitLabError as exc:
            not_done = [d.key for d, a, _ in plan[index:] if a != UNCHANGED]
            if not done:
                raise type(exc)(f"{exc}; nothing was changed") from None
            raise GitLabPartialError(
                f"{exc}; changed before the failure: {', '.join(done)}; not changed: {', '.join(not_done)}",
                done,
                not_done,
            ) from None
        done.append(f"{desired.key} ({action})")
    return PushReport(name, environment, False, changes)
