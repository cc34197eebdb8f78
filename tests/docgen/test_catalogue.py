"""The landing page's service catalogue: docgen.catalogue (the rows), docgen.site (``_docgen/catalogue.json`` and
the landing page), docgen.catalogue_sphinx (the table), docgen.environment (live colour and deploy times)."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from deployer.state.client import StateClient
from deployer.state.server import make_server
from docgen.catalogue import (
    UNKNOWN,
    EnvironmentStatus,
    first_line,
    quarantine_reason,
    service_status,
    spec_version,
    utc_timestamp,
)
from docgen.environment import ENVIRONMENT_EXTRA, environment_status, live_status, read_environment, resolve_manifest
from docgen.manifest import Manifest
from docgen.site import Portal, ServicePage, SiteBuildError, render_sources
from docgen.sitebuild import build_site

from .conftest import merged_spec, service_spec

# A quarantine reason that tries Markdown, MyST, HTML, a link and control characters; the lines after its first
# must never be shown in the catalogue.
HOSTILE_REASON = (
    "bad <b onmouseover=alert(1)>spec</b> [click](javascript:alert(1)) `{raw}` **x**\x1b[31m\x07 end\n"
    "```{raw} html\n<script>window.__pwned=1</script>\n```"
)
HOSTILE_SHOWN = "bad <b onmouseover=alert(1)>spec</b> [click](javascript:alert(1)) `{raw}` **x** [31m end"


def three_services(*, quarantine: list[str] | None = None) -> Portal:
    """A published (orders), a quarantined (legacy) and a docs-only (guides) service, given out of order."""
    api = service_spec("orders")
    api["info"]["version"] = "1.4.2"  # the spec's own version wins over the manifest's
    services = [
        ServicePage(
            name="orders",
            version="v1",
            title="Orders",
            docs={},
            api=api,
            quarantine=[],
            status="published",
        ),
        ServicePage(
            name="legacy",
            version="v3",
            title="Legacy <i>service</i>",
            docs={"notes.md": b"# Notes\n"},
            api=None,
            quarantine=[HOSTILE_REASON, "operationId clash with orders"] if quarantine is None else quarantine,
            status="quarantined",
        ),
        ServicePage(
            name="guides",
            version="v2",
            title="Guides",
            docs={"index.md": b"# Guides\n\nHow we work.\n"},
            api=None,
            quarantine=[],
            status="docs-only",
        ),
    ]
    return Portal(title="AUTO platform", guide={}, services=services, merged=merged_spec(services))


def catalogue(portal: Portal) -> dict[str, Any]:
    return json.loads(render_sources(portal)["_docgen/catalogue.json"])


# --------------------------------------------------------------------------------------------------------------
# the rows


def test_first_line_is_one_clean_line() -> None:
    assert first_line("one\ntwo") == "one"
    assert first_line("\n  \r\n  second line \u2028third") == "second line"
    assert first_line("tab\there\x1b[1m\x00!") == "tab here [1m !"
    assert first_line("a\u2029b") == "a"
    assert first_line(None) == "" and first_line(" \n ") == ""
    assert first_line("x" * 300) == "x" * 199 + "…"
    assert first_line(42) == "42"


def test_quarantine_reason_is_the_first_line_of_the_first_error() -> None:
    assert quarantine_reason([HOSTILE_REASON, "second reason"]) == HOSTILE_SHOWN
    assert quarantine_reason(["", "  ", "spec not readable: boom\ntraceback"]) == "spec not readable: boom"
    # a heading that introduces the errors is followed by the first of them
    reasons = ["the spec has 2 validation error(s):", "$.info: 'version' is required [schema]", "$.x: bad [schema]"]
    assert quarantine_reason(reasons) == "the spec has 2 validation error(s): $.info: 'version' is required [schema]"
    assert quarantine_reason(["ends with a colon:"]) == "ends with a colon:"
    assert quarantine_reason([]) == ""
    assert len(quarantine_reason(["y" * 5000])) == 200


def test_status_and_version() -> None:
    assert service_status({"openapi": "3.1.0"}, []) == "published"
    assert service_status(None, ["why"]) == "quarantined"
    assert service_status(None, []) == "docs-only"
    assert service_status(None, [], "quarantined") == "quarantined"  # quarantined without a reason
    assert service_status(None, ["stale"], "docs-only") == "docs-only"
    assert spec_version({"info": {"version": "2.0.1"}}, "v2") == "2.0.1"
    assert spec_version({"info": {"version": 3}}, "v2") == "3"
    for odd in ({"info": {"version": ""}}, {"info": {"version": True}}, {"info": []}, {}, None, {"info": {}}):
        assert spec_version(odd, "v2") == "v2"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("2026-11-25T06:30:00Z", "2026-11-25T06:30:00Z"),
        ("2026-11-25T07:30:00.123+01:00", "2026-11-25T06:30:00Z"),
        (dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC), "2026-01-02T03:04:05Z"),
        ("2026-11-25T06:30:00", UNKNOWN),  # no time zone: not a time we can state
        ("", UNKNOWN),
        ("yesterday", UNKNOWN),
        ("2026-11-25T06:30:00Z\n<script>", UNKNOWN),
        (None, UNKNOWN),
        (1700000000, UNKNOWN),
        ("9" * 1000, UNKNOWN),
    ],
)
def test_utc_timestamp(value: Any, shown: str) -> None:
    assert utc_timestamp(value) == shown


# --------------------------------------------------------------------------------------------------------------
# render_sources


def test_catalogue_without_environment() -> None:
    data = catalogue(three_services())
    assert data["environment"] is None
    assert [s["name"] for s in data["services"]] == ["guides", "legacy", "orders"]  # sorted by name
    guides, legacy, orders = data["services"]
    assert orders == {
        "name": "orders",
        "title": "Orders",
        "version": "1.4.2",
        "status": "published",
        "reason": "",
        "status_text": "published",
    }
    assert legacy["status"] == "quarantined" and legacy["version"] == "v3"
    assert legacy["status_text"] == f"quarantined: {HOSTILE_SHOWN}"
    assert guides["status_text"] == "docs only" and guides["version"] == "v2"
    assert all("deployed" not in s for s in data["services"])


def test_catalogue_with_environment() -> None:
    portal = three_services()
    portal.environment = EnvironmentStatus("prod", "green", {"orders": "2026-11-25T06:30:00Z", "legacy": UNKNOWN})
    data = catalogue(portal)
    assert data["environment"] == {"name": "prod", "live_colour": "green"}
    deployed = {s["name"]: s["deployed"] for s in data["services"]}
    assert deployed == {
        "guides": None,  # not deployed in the live colour
        "legacy": {"colour": "green", "at": UNKNOWN},
        "orders": {"colour": "green", "at": "2026-11-25T06:30:00Z"},
    }
    odd = EnvironmentStatus("prod", "pink\n<b>", {"orders": "not a time"})
    assert odd.deployment("orders") == {"colour": UNKNOWN, "at": UNKNOWN}
    with pytest.raises(SiteBuildError, match="EnvironmentStatus"):
        render_sources(Portal("t", {}, [], {}, environment={"name": "prod"}))  # type: ignore[arg-type]


def test_landing_page_keeps_its_content_and_holds_no_untrusted_text() -> None:
    portal = three_services()
    portal.guide = {"index.md": b"# Platform guide\n"}
    portal.environment = EnvironmentStatus("prod", "blue", {"orders": "2026-11-25T06:30:00Z"})
    index = render_sources(portal)["index.md"].decode()
    assert index.index("{docgen-portal} title") < index.index("{docgen-catalogue}") < index.index("{toctree}")
    assert "guide/index" in index and "services/index" in index and "api/index" in index
    for untrusted in ("onmouseover", "script", "javascript", "Legacy", "1.4.2", "prod", "2026"):
        assert untrusted not in index


def test_quarantined_without_a_reason_and_the_status_derived() -> None:
    portal = three_services(quarantine=[])
    for service in portal.services:
        service.status = None
    rows = {s["name"]: s for s in catalogue(portal)["services"]}
    assert rows["legacy"]["status_text"] == "docs only"  # no status, no reason, no spec: docs only
    portal.services[1].status = "quarantined"
    rows = {s["name"]: s for s in catalogue(portal)["services"]}
    assert rows["legacy"]["status_text"] == "quarantined"


# --------------------------------------------------------------------------------------------------------------
# docgen.environment


def test_environment_status_never_fails_on_a_thin_answer() -> None:
    assert environment_status("prod", object()) == EnvironmentStatus("prod", UNKNOWN, {})
    assert environment_status("prod", SimpleNamespace(live_colour="green", clusters={})).live_colour == UNKNOWN
    stack = SimpleNamespace(services=[SimpleNamespace(name="orders"), SimpleNamespace(name="Bad Name")])
    newer = SimpleNamespace(deployed_at="2026-01-01T00:00:00Z", services=[SimpleNamespace(name="orders")])
    env = SimpleNamespace(live_colour="blue", clusters={"blue": SimpleNamespace(stacks=[stack, newer])})
    status = environment_status("prod", env)
    assert status.live_colour == "blue"
    assert status.deployed == {"orders": UNKNOWN}  # no deployed_at: unknown; the first stack's, as documented


@pytest.fixture
def state_service(tmp_path: Path) -> Iterator[str]:
    """The real environment-state service on loopback."""
    server = make_server(str(tmp_path / "state.db"), "127.0.0.1", 0, "tok", None, None)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_from_env_gives_the_live_colour_and_deploy_times(state_service: str) -> None:
    client = StateClient(state_service, token="tok", retries=0)
    client.put_environment("prod", "green", {"blue": ("10.0.0.1", 2376), "green": ("10.0.0.2", 2376)})
    docs = {"version": "v3", "spec_url": "https://docs.invalid/payments.json"}
    for colour, stack in (("green", "shop"), ("blue", "old")):
        client.record_deployment(
            "prod",
            colour=colour,
            stack=stack,
            services=[
                {"name": "payments", "image": "shop/payments:3", "replicas": 2, "docs": docs},
                {"name": "worker", "image": "shop/worker:1", "replicas": 1},
            ],
            compose=[],
            result="succeeded",
            actor="ci",
        )
    entries, warnings, status = read_environment("prod", client)
    assert [e.name for e in entries] == ["payments"]
    assert warnings == ["shop/worker: no auto.docs.* labels, not documented"]
    assert status.name == "prod" and status.live_colour == "green"
    assert set(status.deployed) == {"payments", "worker"}
    at = status.deployed["payments"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", at)
    assert abs(dt.datetime.fromisoformat(at) - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)

    manifest, notes = resolve_manifest(None, "prod", {"AUTO_STATE_URL": state_service, "AUTO_STATE_RETRIES": "0"})
    assert notes == warnings
    assert live_status(manifest) == status and manifest.extra[ENVIRONMENT_EXTRA] == status


def test_a_manifest_alone_has_no_live_status() -> None:
    manifest = Manifest("T", "", None, "/", (), (), "services.yml")
    assert live_status(manifest) is None
    assert live_status(replace(manifest, extra={ENVIRONMENT_EXTRA: {"live_colour": "green"}})) is None


# --------------------------------------------------------------------------------------------------------------
# a real build


def _cells(row: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]


def test_the_catalogue_in_the_html(tmp_path: Path) -> None:
    portal = three_services()
    portal.environment = EnvironmentStatus("prod", "green", {"orders": "2026-11-25T06:30:00Z", "legacy": ""})
    result = build_site(render_sources(portal), tmp_path / "work", tmp_path / "public")
    assert not result.warnings, result.warnings
    page = (tmp_path / "public" / "index.html").read_text(encoding="utf-8")
    assert "<h1>AUTO platform" in page  # the title, as before
    table = page[page.index('<table class="docgen-table docgen-catalogue') : page.index("</table>")]
    assert "<caption>" in table and "Service catalogue" in table
    head, body = table.split("</thead>")
    assert _cells(head) == ["Service", "Version", "Status", "Live colour", "Last deployed (UTC)"]
    rows = [_cells(row) for row in body.split("</tr>") if "<td" in row]
    assert rows == [
        ["Guides", "v2", "docs only", "not deployed", "not deployed"],
        [
            "Legacy &lt;i&gt;service&lt;/i&gt;",
            "v3",
            f"quarantined: {html.escape(HOSTILE_SHOWN, quote=False)}",
            "green",
            "unknown",
        ],
        ["Orders", "1.4.2", "published", "green", "2026-11-25T06:30:00Z"],
    ]
    assert 'href="services/orders/index.html"' in table and 'href="services/legacy/index.html"' in table
    assert "Deployments in environment" in page and ">prod<" in page
    # nothing of the hostile reason became markup, and nothing after its first line is shown
    assert "<b" not in table and "<i>" not in table
    assert not [
        href
        for href in re.findall(r'href="([^"]*)"', table)
        if not href.startswith(("services/", "#service-catalogue"))
    ]
    assert "onmouseover=" not in re.sub(r"&lt;.*?&gt;", "", table)
    assert "\x1b" not in page and "\x07" not in page
    assert "__pwned" not in page and "<script>window" not in page

    # without --from-env: three columns, no environment line
    portal.environment = None
    build_site(render_sources(portal), tmp_path / "work", tmp_path / "public")
    page = (tmp_path / "public" / "index.html").read_text(encoding="utf-8")
    table = page[page.index('<table class="docgen-table docgen-catalogue') : page.index("</table>")]
    assert _cells(table.split("</thead>")[0]) == ["Service", "Version", "Status"]
    assert "Deployments in environment" not in page
