"""Request validation of the environment-state server: decoded JSON and query strings in, typed values out.

Every check of what a client sent lives here and fails the same way, with :class:`BadRequest` and a
one-line message naming the field; the HTTP layer turns it into a 400. Nothing here touches the
database or the socket.

Names, addresses and labels go through ``autocore.names``: the whole value must match its pattern and
no control character may hide in it (``re.match`` lets ``web\\n`` through a ``^...$`` pattern). Numbers
from headers and query strings are ASCII digits only (``"²".isdigit()`` is true, ``int("²")`` fails).
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field
from typing import Any, NoReturn

from autocore.errors import BudgetExceededError, NotFiniteError
from autocore.loading import Budget, load_json
from autocore.names import has_control, is_valid
from autocore.text import display
from deployer.state.contract import (
    ADDRESS_RE,
    AUDIT_KINDS,
    COLOURS,
    DEFAULT_LIMIT,
    DEPLOY_FLAGS,
    DEPLOY_OPTIONS,
    DOCS_VERSION_RE,
    IDEMPOTENCY_KEY_RE,
    MAX_ACTOR,
    MAX_BODY,
    MAX_BODY_DEPTH,
    MAX_COMPOSE_FILE,
    MAX_DETAIL,
    MAX_DOCS_VERSION,
    MAX_IMAGE,
    MAX_INT_DIGITS,
    MAX_JOB_URL,
    MAX_LIMIT,
    MAX_OTHER_MANAGERS,
    MAX_OWNER,
    MAX_PURPOSE,
    MAX_REASON,
    MAX_REPLICAS,
    MAX_RESULT,
    MAX_STACK,
    MAX_TTL,
    MAX_URL,
    MIN_TTL,
    NAME_RE,
    RESERVED_DETAIL,
    RESOLVE_IMAGE,
    RESULT_RE,
    STACK_RE,
)


class BadRequest(Exception):
    """The request is invalid; ``message`` is one line saying which field and why (a 400)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def bad(message: str) -> NoReturn:
    raise BadRequest(message)


def show(value: Any) -> str:
    """A short, one-line rendering of a client-supplied value for error messages."""
    if isinstance(value, str):
        return repr(display(value, 60))
    return display(json.dumps(value), 60)


# --------------------------------------------------------------------------------------------------
# Typed requests


@dataclass(frozen=True)
class EnvironmentSpec:
    """PUT .../environments/NAME: the live colour, each colour's ``(manager_address, docker_port)`` and its
    other managers (an empty tuple when it lists none)."""

    live_colour: str
    clusters: dict[str, tuple[str, int]]
    actor: str | None
    other_managers: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class SwitchRequest:
    """POST .../switch: make ``to`` live if ``expected_live`` still is."""

    expected_live: str
    to: str
    actor: str | None
    reason: str | None
    job_url: str | None


@dataclass(frozen=True)
class DeploymentRecord:
    """POST .../deployments: one deployment as the deployer reports it."""

    colour: str
    stack: str
    services: list[dict[str, Any]]
    compose: list[dict[str, str]]
    result: str
    actor: str
    job_url: str | None
    options: dict[str, Any] | None


@dataclass(frozen=True)
class DeploymentFilter:
    """GET .../deployments: which deployments, and how many."""

    colour: str | None
    stack: str | None
    result: str | None
    limit: int


@dataclass(frozen=True)
class LockRequest:
    """POST .../lock: take or renew the lock."""

    owner: str
    purpose: str
    ttl: float
    actor: str | None
    job_url: str | None


@dataclass(frozen=True)
class ReleaseRequest:
    """DELETE .../lock: release the own lock (``owner``) or anybody's (``owner`` None: forced)."""

    owner: str | None
    actor: str | None


@dataclass(frozen=True)
class AuditEvent:
    """POST .../events: a deploy, rollback or switch outcome for the history."""

    kind: str
    actor: str
    result: str
    job_url: str | None
    detail: dict[str, Any]


# --------------------------------------------------------------------------------------------------
# Bodies and query strings


# What one request body may cost to decode: 200,000 ``[`` is a one-line 400, not a RecursionError.
_BODY_BUDGET = Budget(max_bytes=MAX_BODY, max_depth=MAX_BODY_DEPTH, max_int_digits=MAX_INT_DIGITS)
_BODY = "request body"
_DIGITS = re.compile(r"[0-9]{1,18}")  # ASCII only; 18 digits stay below 2**63


def json_body(raw: bytes) -> Any:
    """Decode a request body: UTF-8 JSON without duplicate keys, NaN or Infinity, within its budgets."""
    try:
        return load_json(raw.decode("utf-8"), _BODY, budget=_BODY_BUDGET)
    except BudgetExceededError as exc:
        bad(str(exc))  # "request body: nested deeper than 128 levels, over the nesting depth budget of 128: ..."
    except NotFiniteError as exc:
        bad(f"request body is not valid JSON: {str(exc).removeprefix(_BODY + ': ')}")
    except (UnicodeDecodeError, ValueError) as exc:
        bad(f"request body is not valid JSON: {exc}")


def content_length(raw: str | None) -> int | None:
    """The Content-Length header as a number, None when absent; BadRequest unless ASCII digits."""
    if raw is None:
        return None
    if not _DIGITS.fullmatch(raw.strip()):
        bad(f"Content-Length must be a number of bytes, not {show(raw)}")
    return int(raw.strip())


def idempotency_key(raw: str | None) -> str | None:
    """The optional Idempotency-Key header."""
    if raw is None:
        return None
    if not is_valid(IDEMPOTENCY_KEY_RE, raw.strip()):
        bad(f"Idempotency-Key {show(raw)} does not match {IDEMPOTENCY_KEY_RE.pattern}")
    return raw.strip()


def allow_params(params: dict[str, str], allowed: tuple[str, ...]) -> None:
    """Refuse query parameters the endpoint does not know."""
    for key in params:
        if key not in allowed:
            hint = ", ".join(allowed) if allowed else "none"
            bad(f"unknown query parameter {show(key)}; allowed: {hint}")


def limit(params: dict[str, str]) -> int:
    """The ``limit`` query parameter, DEFAULT_LIMIT when absent."""
    raw = params.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    if not _DIGITS.fullmatch(raw) or not 1 <= int(raw) <= MAX_LIMIT:
        bad(f"limit must be an integer from 1 to {MAX_LIMIT}, not {show(raw)}")
    return int(raw)


# --------------------------------------------------------------------------------------------------
# Fields


def fields(value: Any, what: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict:
    if not isinstance(value, dict):
        bad(f"{what} must be a JSON object")
    unknown = sorted(set(value) - set(required) - set(optional))
    if unknown:
        bad(f"{what} has unknown field {show(unknown[0])}")
    for key in required:
        if key not in value:
            bad(f"{what} is missing {key!r}")
    return value


def colour(value: Any, what: str) -> str:
    if value not in COLOURS or not isinstance(value, str):
        bad(f"{what} must be blue or green, not {show(value)}")
    return value


def integer(value: Any, what: str, low: int, high: int) -> int:
    # bool is an int in Python but not in JSON; refuse true/false as numbers.
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        bad(f"{what} must be an integer from {low} to {high}, not {show(value)}")
    return value


def text(value: Any, what: str, max_len: int, *, pattern: re.Pattern[str] | None = None) -> str:
    if not isinstance(value, str) or not value or len(value) > max_len:
        bad(f"{what} must be a non-empty string of at most {max_len} characters")
    if pattern is not None and not is_valid(pattern, value):
        bad(f"{what} {show(value)} does not match {pattern.pattern}")
    return value


def line(value: Any, what: str, max_len: int) -> str:
    """A non-empty one-line string: no control characters."""
    checked = text(value, what, max_len)
    if has_control(checked):
        bad(f"{what} must not contain control characters")
    return checked


def optional_line(value: Any, what: str, max_len: int) -> str | None:
    """A :func:`line`, or None when absent (or null)."""
    return None if value is None else line(value, what, max_len)


def actor(value: Any) -> str:
    """Who did it: required with deployments and audit events."""
    return line(value, "actor", MAX_ACTOR)


def optional_actor(value: Any) -> str | None:
    return optional_line(value, "actor", MAX_ACTOR)


def optional_text(value: Any, what: str, max_len: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_len:
        bad(f"{what} must be a string of at most {max_len} characters or null")
    return value


def seconds(value: Any, what: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        bad(f"{what} must be a number of seconds from {low:g} to {high:g}, not {show(value)}")
    return float(value)


def https_url(value: Any, what: str) -> str:
    url = text(value, what, MAX_URL)
    if not url.startswith("https://") or any(ch.isspace() for ch in url) or has_control(url):
        bad(f"{what} must be an https:// URL without spaces")
    return url


def environment_name(name: str) -> str:
    """The name of an environment to create (reads answer 404 for a malformed one instead)."""
    if not is_valid(NAME_RE, name):
        bad(f"invalid environment name {show(name)}: it must match {NAME_RE.pattern}")
    return name


# --------------------------------------------------------------------------------------------------
# Requests


def environment_spec(value: Any) -> EnvironmentSpec:
    body = fields(value, "body", ("live_colour", "clusters"), ("actor",))
    live_colour = colour(body["live_colour"], "live_colour")
    clusters_in = fields(body["clusters"], "clusters", COLOURS)
    specs = {c: _cluster_spec(clusters_in[c], c) for c in COLOURS}
    others = {c: _other_managers(clusters_in[c], c, specs[c][0]) for c in COLOURS}
    if specs["blue"] == specs["green"]:
        bad("clusters.blue and clusters.green have the same address and port; they must differ")
    if specs["blue"][1] == specs["green"][1]:
        shared = {specs["blue"][0], *others["blue"]} & {specs["green"][0], *others["green"]}
        if shared:
            bad(f"manager {show(min(shared))} is in both clusters.blue and clusters.green; a manager has one swarm")
    return EnvironmentSpec(live_colour, specs, optional_actor(body.get("actor")), others)


def _cluster_spec(value: Any, of: str) -> tuple[str, int]:
    what = f"clusters.{of}"
    spec = fields(value, what, ("manager_address", "docker_port"), ("other_managers",))
    address = spec["manager_address"]
    canonical = ip_literal(address)
    if canonical is None:
        bad(f"{what}.manager_address must be an IPv4 or IPv6 literal, not {show(address)}")
    return canonical, integer(spec["docker_port"], f"{what}.docker_port", 1, 65535)


def _other_managers(value: dict[str, Any], of: str, manager: str) -> tuple[str, ...]:
    """``clusters.COLOUR.other_managers``: IP literals (canonical), none repeated, none the manager itself."""
    what = f"clusters.{of}.other_managers"
    raw = value.get("other_managers", [])
    if not isinstance(raw, list) or len(raw) > MAX_OTHER_MANAGERS:
        bad(f"{what} must be a list of at most {MAX_OTHER_MANAGERS} IP addresses")
    seen = [manager]
    for i, item in enumerate(raw):
        canonical = ip_literal(item)
        if canonical is None:
            bad(f"{what}[{i}] must be an IPv4 or IPv6 literal, not {show(item)}")
        if canonical in seen:
            bad(f"{what}[{i}] {show(canonical)} is listed twice (manager_address included)")
        seen.append(canonical)
    return tuple(seen[1:])


def ip_literal(value: Any) -> str | None:
    """The canonical text of an IP literal, or None: an IPv6 zone may only be an interface name or number.

    ``ipaddress`` accepts any text after ``%`` (``fe80::1%eth0\\nFORGED``), so its answer is checked too.
    """
    if not isinstance(value, str) or not is_valid(ADDRESS_RE, value):
        return None
    try:
        canonical = str(ipaddress.ip_address(value))
    except ValueError:
        return None
    return canonical if is_valid(ADDRESS_RE, canonical) else None


def switch_request(value: Any) -> SwitchRequest:
    body = fields(value, "body", ("expected_live", "to"), ("actor", "reason", "job_url"))
    expected = colour(body["expected_live"], "expected_live")
    to = colour(body["to"], "to")
    if to == expected:
        bad(f"to must be the other colour than expected_live ({expected}), not {to}")
    return SwitchRequest(
        expected_live=expected,
        to=to,
        actor=optional_actor(body.get("actor")),
        reason=optional_text(body.get("reason"), "reason", MAX_REASON),
        job_url=optional_line(body.get("job_url"), "job_url", MAX_JOB_URL),
    )


def deployment_record(value: Any) -> DeploymentRecord:
    body = fields(
        value,
        "body",
        ("colour", "stack", "services", "compose", "result", "actor"),
        ("job_url", "options"),
    )
    record_colour = colour(body["colour"], "colour")
    stack = text(body["stack"], "stack", MAX_STACK, pattern=STACK_RE)
    services = _services(body["services"])
    compose = _compose(body["compose"])
    result = text(body["result"], "result", MAX_RESULT, pattern=RESULT_RE)
    record_actor = actor(body["actor"])
    # One line like every other job_url: it is shown by `auto-deploy history` and CI logs.
    job_url = optional_line(body.get("job_url"), "job_url", MAX_JOB_URL)
    options = _deploy_options(body.get("options"))
    return DeploymentRecord(record_colour, stack, services, compose, result, record_actor, job_url, options)


def _services(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        bad("services must be a non-empty list")
    seen: set[str] = set()
    services = []
    for index, item in enumerate(value):
        what = f"services[{index}]"
        item = fields(item, what, ("name", "image", "replicas"), ("docs",))
        name = text(item["name"], f"{what}.name", MAX_STACK, pattern=STACK_RE)
        if name in seen:
            bad(f"services lists {name!r} twice")
        seen.add(name)
        image = text(item["image"], f"{what}.image", MAX_IMAGE)
        if any(ch.isspace() for ch in image) or has_control(image):
            bad(f"{what}.image must not contain whitespace")
        replicas = integer(item["replicas"], f"{what}.replicas", 0, MAX_REPLICAS)
        record: dict[str, Any] = {"name": name, "image": image, "replicas": replicas}
        if item.get("docs") is not None:
            record["docs"] = _docs(item["docs"], f"{what}.docs")
        services.append(record)
    return services


def _docs(value: Any, what: str) -> dict[str, str]:
    """Where a service publishes its documentation: what ``auto-docs build --from-env`` fetches."""
    item = fields(value, what, ("version", "spec_url"), ("docs_url",))
    docs = {
        "version": text(item["version"], f"{what}.version", MAX_DOCS_VERSION, pattern=DOCS_VERSION_RE),
        "spec_url": https_url(item["spec_url"], f"{what}.spec_url"),
    }
    if item.get("docs_url") is not None:
        docs["docs_url"] = https_url(item["docs_url"], f"{what}.docs_url")
    return docs


def _compose(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list):
        bad("compose must be a list of {file, content}")
    files = []
    for index, item in enumerate(value):
        what = f"compose[{index}]"
        item = fields(item, what, ("file", "content"))
        name = line(item["file"], f"{what}.file", MAX_COMPOSE_FILE)
        if not isinstance(item["content"], str):
            bad(f"{what}.content must be a string")
        files.append({"file": name, "content": item["content"]})
    return files


def _deploy_options(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    options = fields(value, "options", (), DEPLOY_OPTIONS)
    if "resolve_image" in options and options["resolve_image"] not in RESOLVE_IMAGE:
        bad(f"options.resolve_image must be one of {', '.join(RESOLVE_IMAGE)}, not {show(options['resolve_image'])}")
    for key in DEPLOY_FLAGS:
        if key in options and not isinstance(options[key], bool):
            bad(f"options.{key} must be true or false, not {show(options[key])}")
    return dict(options)


def deployment_filter(params: dict[str, str]) -> DeploymentFilter:
    allow_params(params, ("colour", "stack", "result", "limit"))
    count = limit(params)
    return DeploymentFilter(
        colour=colour(params["colour"], "colour") if "colour" in params else None,
        stack=text(params["stack"], "stack", MAX_STACK, pattern=STACK_RE) if "stack" in params else None,
        result=text(params["result"], "result", MAX_RESULT, pattern=RESULT_RE) if "result" in params else None,
        limit=count,
    )


def lock_request(value: Any) -> LockRequest:
    body = fields(value, "body", ("owner", "purpose", "ttl_seconds"), ("actor", "job_url"))
    return LockRequest(
        owner=line(body["owner"], "owner", MAX_OWNER),
        purpose=line(body["purpose"], "purpose", MAX_PURPOSE),
        ttl=seconds(body["ttl_seconds"], "ttl_seconds", MIN_TTL, MAX_TTL),
        actor=optional_actor(body.get("actor")),
        job_url=optional_line(body.get("job_url"), "job_url", MAX_JOB_URL),
    )


def release_request(params: dict[str, str]) -> ReleaseRequest:
    allow_params(params, ("owner", "force", "actor"))
    owner = params.get("owner")
    force = params.get("force")
    if force is not None and force != "true":
        bad(f"force must be true when given, not {show(force)}")
    if (owner is None) == (force is None):
        bad("give exactly one of owner=OWNER (release your own lock) and force=true (release anybody's)")
    if owner is not None:
        owner = line(owner, "owner", MAX_OWNER)
    return ReleaseRequest(owner, optional_actor(params.get("actor")))


def audit_event(value: Any) -> AuditEvent:
    body = fields(value, "body", ("kind", "actor", "result", "detail"), ("job_url",))
    kind = body["kind"]
    if kind not in AUDIT_KINDS or not isinstance(kind, str):
        bad(f"kind must be one of {', '.join(AUDIT_KINDS)}, not {show(kind)}")
    event_actor = actor(body["actor"])
    result = text(body["result"], "result", MAX_RESULT, pattern=RESULT_RE)
    job_url = optional_line(body.get("job_url"), "job_url", MAX_JOB_URL)
    detail = body["detail"]
    if not isinstance(detail, dict):
        bad("detail must be a JSON object")
    reserved = sorted(set(detail) & set(RESERVED_DETAIL))
    if reserved:
        bad(f"detail must not contain {show(reserved[0])}: the service sets it")
    size = len(json.dumps(detail, separators=(",", ":")).encode())
    if size > MAX_DETAIL:
        bad(f"detail is {size} bytes as JSON; the limit is {MAX_DETAIL}")
    return AuditEvent(kind, event_actor, result, job_url, detail)
