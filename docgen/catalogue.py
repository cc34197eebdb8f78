"""The service catalogue on the portal's landing page, as data: one row per service, pure and deterministic.

:func:`docgen.site.render_sources` writes the rows into ``_docgen/catalogue.json`` (built here by
:func:`catalogue_row`); the ``docgen-catalogue`` directive (:mod:`docgen.catalogue_sphinx`) renders them as a
table of docutils text nodes, so no service title, version or quarantine reason is ever parsed as Markdown or
HTML. :class:`EnvironmentStatus` is what ``--from-env`` learned from the environment-state service (the live
colour, when each live service was last deployed), handed from :mod:`docgen.environment` to the site.

Every value from outside is cut to one clean line here (:func:`first_line`); a value the state service did not
give, or gave in a form that is not a timestamp, is shown as :data:`UNKNOWN`, never a failure.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from docgen.names import valid_name

__all__ = [
    "CATALOGUE_FILE",
    "NOT_DEPLOYED",
    "STATUS_DOCS_ONLY",
    "STATUS_PUBLISHED",
    "STATUS_QUARANTINED",
    "UNKNOWN",
    "EnvironmentStatus",
    "catalogue_row",
    "colour_of",
    "first_line",
    "quarantine_reason",
    "service_status",
    "spec_version",
    "status_text",
    "utc_timestamp",
]

CATALOGUE_FILE = "_docgen/catalogue.json"
STATUS_PUBLISHED = "published"
STATUS_QUARANTINED = "quarantined"
STATUS_DOCS_ONLY = "docs-only"
UNKNOWN = "unknown"
NOT_DEPLOYED = "not deployed"
MAX_REASON = 200  # characters of a quarantine reason in the catalogue (the service's page has them all)
MAX_VALUE = 100  # characters of a version or a colour
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_SPACES = re.compile(r"\s+")
_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # ISO 8601, UTC, seconds (the state contract's Timestamp)
_MAX_TIMESTAMP = 64


def _shorten(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


def first_line(value: Any, limit: int = MAX_REASON) -> str:
    """The first line of ``value`` that holds anything, as one clean line: no control character, whitespace
    runs as one space, at most ``limit`` characters (an ellipsis when cut). ``""`` for None or a blank value."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    for line in text.splitlines():  # \n, \r, \v, \f, \x1c-\x1e, \x85, \u2028, \u2029
        clean = _SPACES.sub(" ", _CONTROL.sub(" ", line)).strip()
        if clean:
            return _shorten(clean, limit)
    return ""


def quarantine_reason(reasons: Sequence[Any]) -> str:
    """What the catalogue shows after ``quarantined:``: the first line of the first reason. A reason that only
    introduces the ones after it ("the spec has 3 validation error(s):") is followed by the first of those."""
    lines = [line for line in (first_line(r, limit=10 * MAX_REASON) for r in reasons) if line]
    if not lines:
        return ""
    shown = lines[0]
    if shown.endswith(":") and len(lines) > 1:
        shown = f"{shown} {lines[1]}"
    return _shorten(shown, MAX_REASON)


def service_status(api: Any, quarantine: Sequence[Any], status: str | None = None) -> str:
    """published (an API reference), quarantined (a spec that is not published) or docs-only (no spec).

    ``status`` is the orchestrator's word when it gave one: it tells a quarantined service that has no reason
    from one that has no spec. The API reference decides whether a service is published.
    """
    if api is not None:
        return STATUS_PUBLISHED
    if status == STATUS_DOCS_ONLY:
        return STATUS_DOCS_ONLY
    if status == STATUS_QUARANTINED or any(first_line(r) for r in quarantine):
        return STATUS_QUARANTINED
    return STATUS_DOCS_ONLY


def status_text(status: str, reason: str = "") -> str:
    """The status as the catalogue writes it: ``published``, ``quarantined: <reason>`` or ``docs only``."""
    if status == STATUS_PUBLISHED:
        return "published"
    if status == STATUS_QUARANTINED:
        return f"quarantined: {reason}" if reason else "quarantined"
    return "docs only"


def spec_version(api: Any, fallback: Any) -> str:
    """The spec's ``info.version`` when the service publishes one, else ``fallback`` (the manifest's version)."""
    info = api.get("info") if isinstance(api, Mapping) else None
    version = info.get("version") if isinstance(info, Mapping) else None
    if isinstance(version, str | int | float) and not isinstance(version, bool):
        shown = first_line(version, MAX_VALUE)
        if shown:
            return shown
    return first_line(fallback, MAX_VALUE)


def utc_timestamp(value: Any) -> str:
    """``value`` (a timestamp with a time zone, as text or a datetime) as ISO 8601 UTC to the second
    (``2026-11-25T06:30:00Z``), or :data:`UNKNOWN` (missing, not a timestamp, no time zone)."""
    if isinstance(value, str):
        if not value or len(value) > _MAX_TIMESTAMP:
            return UNKNOWN
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            return UNKNOWN
    if not isinstance(value, dt.datetime) or value.tzinfo is None or value.utcoffset() is None:
        return UNKNOWN
    try:
        return value.astimezone(dt.UTC).strftime(_TIMESTAMP_FORMAT)
    except (OverflowError, ValueError):
        return UNKNOWN


def colour_of(value: Any) -> str:
    """A colour as the state service named it (``blue``, ``green``), or :data:`UNKNOWN`."""
    return value if valid_name(value) else UNKNOWN


@dataclass(frozen=True)
class EnvironmentStatus:
    """What ``--from-env`` learned about an environment: its live colour, and when each service running in that
    colour was last deployed (ISO 8601 UTC, or :data:`UNKNOWN` when the state service did not say)."""

    name: str
    live_colour: str = UNKNOWN
    deployed: Mapping[str, str] = field(default_factory=dict)  # service name -> last deploy time

    def deployment(self, service: str) -> dict[str, str] | None:
        """``{"colour", "at"}`` for a service running in the live colour, None when it is not deployed there."""
        if service not in self.deployed:
            return None
        return {"colour": colour_of(self.live_colour), "at": utc_timestamp(self.deployed[service])}

    def as_dict(self) -> dict[str, str]:
        return {"name": first_line(self.name, MAX_VALUE) or UNKNOWN, "live_colour": colour_of(self.live_colour)}


def catalogue_row(
    *,
    name: str,
    title: Any,
    version: Any,
    api: Any,
    quarantine: Sequence[Any],
    status: str | None = None,
    environment: EnvironmentStatus | None = None,
) -> dict[str, Any]:
    """One service's row of ``_docgen/catalogue.json`` (every value a plain, one-line string)."""
    kind = service_status(api, quarantine, status)
    reason = quarantine_reason(quarantine) if kind == STATUS_QUARANTINED else ""
    row: dict[str, Any] = {
        "name": name,
        "title": first_line(title) or name,
        "version": spec_version(api, version),
        "status": kind,
        "reason": reason,
        "status_text": status_text(kind, reason),
    }
    if environment is not None:
        row["deployed"] = environment.deployment(name)
    return row
