"""Validation of the environment-state service's answers, before anybody acts on them.

Every answer is checked against the contract and turned into the dataclasses of ``model``; anything
off raises InvalidStateError naming the environment and the field. Names, addresses and labels must
match their pattern whole and hold no control character (``autocore.names``): they are printed by
``auto-deploy`` and put into ``DOCKER_HOST``, so a manager address ``fe80::1%eth0\\nFORGED ...`` must
never get that far.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
from typing import Any, NoReturn

from autocore.names import has_control, is_valid
from deployer.errors import InvalidStateError
from deployer.state.contract import (
    ADDRESS_RE,
    COLOURS,
    DOCS_VERSION_RE,
    MAX_ID,
    MAX_OTHER_MANAGERS,
    MAX_REPLICAS_IN_ANSWER,
    STACK_RE,
    TIMESTAMP_RE,
)
from deployer.state.model import Cluster, Environment, Lock, Service, ServiceDocs, SkippedService, Stack

_HIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")  # autocore.names' control characters
_IMAGE = re.compile(r"[^\s]{1,512}")  # Service.image in contract.yaml: no whitespace


def show(value: Any) -> str:
    """A short one-line rendering of a value from an answer."""
    if isinstance(value, str):
        text = _HIDDEN.sub("?", value)
        return repr(text if len(text) <= 60 else text[:57] + "...")
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Checker:
    """Raises InvalidStateError naming the environment and the field."""

    def __init__(self, environment: str | None, what: str) -> None:
        self.prefix = f"invalid state for environment '{environment}'" if environment else f"invalid answer to {what}"

    def fail(self, problem: str) -> NoReturn:
        raise InvalidStateError(f"{self.prefix}: {problem}")

    def obj(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(f"{where} is not an object" if where != "answer" else "answer is not a JSON object")
        return value

    def get(self, mapping: dict[str, Any], key: str, where: str) -> Any:
        if key not in mapping:
            self.fail(f"{where}{key} is missing")
        return mapping[key]

    def text(self, mapping: dict[str, Any], key: str, where: str = "") -> str:
        """A non-empty one-line string: what the service sends as names and labels."""
        value = self.get(mapping, key, where)
        if not isinstance(value, str) or not value:
            self.fail(f"{where}{key} {show(value)} is not a non-empty string")
        if has_control(value):
            self.fail(f"{where}{key} {show(value)} contains control characters")
        return value

    def matching(self, mapping: dict[str, Any], key: str, where: str, pattern: re.Pattern[str], what: str) -> str:
        """A :meth:`text` that matches ``pattern`` whole."""
        value = self.text(mapping, key, where)
        if not is_valid(pattern, value):
            self.fail(f"{where}{key} {show(value)} is not {what}")
        return value

    def integer(self, mapping: dict[str, Any], key: str, where: str, low: int, high: int, what: str) -> int:
        value = self.get(mapping, key, where)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(f"{where}{key} {show(value)} is not an integer")
        if not low <= value <= high:
            self.fail(f"{where}{key} {value} is not {what}")
        return value

    def optional_text(self, mapping: dict[str, Any], key: str, where: str = "") -> str | None:
        value = self.get(mapping, key, where)
        if value is not None and (not isinstance(value, str) or not value):
            self.fail(f"{where}{key} {show(value)} is not a non-empty string or null")
        if value is not None and has_control(value):
            self.fail(f"{where}{key} {show(value)} contains control characters")
        return value

    def timestamp(self, mapping: dict[str, Any], key: str, where: str = "") -> str:
        value = self.text(mapping, key, where)
        if not is_valid(TIMESTAMP_RE, value):
            self.fail(f"{where}{key} {show(value)} is not a UTC timestamp like 2026-11-25T06:30:00Z")
        return value

    def number(self, mapping: dict[str, Any], key: str, where: str, low: float, what: str) -> float:
        value = self.get(mapping, key, where)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(f"{where}{key} {show(value)} is not a number")
        if not low <= value < float("inf"):
            self.fail(f"{where}{key} {value} is not {what}")
        return float(value)

    def items(self, mapping: dict[str, Any], key: str, where: str = "") -> list[Any]:
        value = self.get(mapping, key, where)
        if not isinstance(value, list):
            self.fail(f"{where}{key} is not a list")
        return value


def parse_environment(data: Any, name: str, skipped: list[SkippedService] | None = None) -> Environment:
    """Validate a decoded ``Environment`` answer for environment ``name``; InvalidStateError if bad.

    With ``skipped``, a service that breaks the contract is left out and recorded there instead of failing
    the whole environment (everything else is checked as strictly)."""
    check = Checker(name, f"GET /v1/environments/{name}")
    body = check.obj(data, "answer")
    if check.text(body, "name") != name:
        check.fail(f"name is {show(body['name'])}, expected '{name}'")
    live_colour = check.get(body, "live_colour", "")
    if live_colour not in COLOURS or not isinstance(live_colour, str):
        check.fail(f"live_colour is {show(live_colour)}, expected blue or green")
    revision = check.integer(body, "revision", "", 0, MAX_ID, "a revision")
    updated_at = body.get("updated_at", "")
    if not isinstance(updated_at, str):
        check.fail(f"updated_at {show(updated_at)} is not a string")
    raw_clusters = check.obj(check.get(body, "clusters", ""), "clusters")
    for colour in raw_clusters:
        if colour not in COLOURS:
            check.fail(f"clusters has unknown colour {show(colour)}")
    clusters = {colour: _parse_cluster(check, raw_clusters, colour, skipped) for colour in COLOURS}
    live = [c.colour for c in clusters.values() if c.live]
    if len(live) == 2:
        check.fail("both blue and green are marked live")
    if not live:
        check.fail("no cluster is marked live")
    if live[0] != live_colour:
        check.fail(f"clusters.{live[0]}.live is true but live_colour is {live_colour}")
    return Environment(name, live_colour, revision, clusters, updated_at)


def _parse_cluster(
    check: Checker, clusters: dict[str, Any], colour: str, skipped: list[SkippedService] | None
) -> Cluster:
    where = f"clusters.{colour}."
    if colour not in clusters:
        check.fail(f"clusters.{colour} is missing")
    raw = check.obj(clusters[colour], f"clusters.{colour}")
    address = _address(check, check.get(raw, "manager_address", where), f"{where}manager_address")
    others = raw.get("other_managers", [])
    if not isinstance(others, list) or len(others) > MAX_OTHER_MANAGERS:
        check.fail(f"{where}other_managers is not a list of at most {MAX_OTHER_MANAGERS} addresses")
    other_managers = tuple(_address(check, item, f"{where}other_managers[{i}]") for i, item in enumerate(others))
    if len({address, *other_managers}) != 1 + len(other_managers):
        check.fail(f"{where}other_managers repeats an address")
    port = check.integer(raw, "docker_port", where, 1, 65535, "a port (1-65535)")
    live = check.get(raw, "live", where)
    if not isinstance(live, bool):
        check.fail(f"{where}live {show(live)} is not true or false")
    stacks = tuple(
        _parse_stack(check, item, f"{where}stacks[{i}].", colour, skipped)
        for i, item in enumerate(check.items(raw, "stacks", where))
    )
    return Cluster(colour, address, port, live, stacks, other_managers)


def _address(check: Checker, address: Any, where: str) -> str:
    try:
        # ipaddress takes any text after an IPv6 "%" (a newline, "$(id)"): the whole must be an address.
        if not isinstance(address, str) or not is_valid(ADDRESS_RE, address):
            raise ValueError(address)
        ipaddress.ip_address(address)
    except ValueError:
        check.fail(f"{where} {show(address)} is not an IP address")
    return address


def _parse_stack(check: Checker, item: Any, where: str, colour: str, skipped: list[SkippedService] | None) -> Stack:
    raw = check.obj(item, where.rstrip("."))
    services = []
    for i, svc in enumerate(check.items(raw, "services", where)):
        try:
            services.append(_parse_service(check, svc, f"{where}services[{i}]."))
        except InvalidStateError as exc:
            if skipped is None:
                raise
            skipped.append(SkippedService(colour, raw.get("name"), svc, str(exc)))
    return Stack(
        check.matching(raw, "name", where, STACK_RE, "a stack name"),
        check.text(raw, "deployed_at", where),
        check.text(raw, "deployed_by", where),
        tuple(services),
    )


def _parse_service(check: Checker, value: Any, where: str) -> Service:
    svc = check.obj(value, where.rstrip("."))
    return Service(
        check.matching(svc, "name", where, STACK_RE, "a service name"),
        check.matching(svc, "image", where, _IMAGE, "an image reference"),
        check.integer(svc, "replicas", where, 0, MAX_REPLICAS_IN_ANSWER, "a replica count"),
        _parse_docs(check, svc.get("docs"), f"{where}docs"),
    )


def _parse_docs(check: Checker, value: Any, where: str) -> ServiceDocs | None:
    if value is None:
        return None
    raw = check.obj(value, where)
    urls = {}
    for key in ("spec_url", "docs_url"):
        url = check.text(raw, key, f"{where}.") if key == "spec_url" or key in raw else None
        if url is not None and (not url.startswith("https://") or any(ch.isspace() for ch in url)):
            check.fail(f"{where}.{key} is not an https:// URL")
        urls[key] = url
    version = check.matching(raw, "version", f"{where}.", DOCS_VERSION_RE, "an API version")
    return ServiceDocs(version, urls["spec_url"], urls["docs_url"])


def parse_lock(check: Checker, value: Any, where: str = "lock") -> Lock | None:
    """Validate a decoded ``Lock`` (or null) answer; InvalidStateError if bad."""
    if value is None:
        return None
    raw = check.obj(value, where)
    prefix = f"{where}."
    unknown = sorted(set(raw) - {f.name for f in dataclasses.fields(Lock)})
    if unknown:
        check.fail(f"{prefix}{unknown[0]} is not a field of a lock")
    return Lock(
        owner=check.text(raw, "owner", prefix),
        purpose=check.text(raw, "purpose", prefix),
        actor=check.optional_text(raw, "actor", prefix),
        job_url=check.optional_text(raw, "job_url", prefix),
        acquired_at=check.timestamp(raw, "acquired_at", prefix),
        expires_at=check.timestamp(raw, "expires_at", prefix),
        expires_in=check.number(raw, "expires_in", prefix, 0, "a number of seconds (0 or more)"),
    )


def parse_events(check: Checker, data: Any) -> list[dict[str, Any]]:
    """Validate a decoded ``EventList`` answer: what ``auto-deploy history`` prints must be there.

    Each event has an id, a timestamp, a kind, an actor (or null) and a detail object; the detail's
    ``result`` and ``job_url``, when there, are one-line strings (``job_url`` may be null).
    """
    events = list_of_objects(check, data, "events")
    for index, event in enumerate(events):
        where = f"events[{index}]."
        check.integer(event, "id", where, 1, MAX_ID, "an event id")
        check.timestamp(event, "at", where)
        check.text(event, "kind", where)
        check.optional_text(event, "actor", where)
        detail = check.obj(check.get(event, "detail", where), f"{where}detail")
        if "result" in detail:
            check.text(detail, "result", f"{where}detail.")
        if "job_url" in detail:
            check.optional_text(detail, "job_url", f"{where}detail.")
    return events


def list_of_objects(check: Checker, data: Any, key: str) -> list[dict[str, Any]]:
    """The list ``key`` of an answer, every item an object."""
    items = check.items(check.obj(data, "answer"), key)
    for index, item in enumerate(items):
        check.obj(item, f"{key}[{index}]")
    return items
