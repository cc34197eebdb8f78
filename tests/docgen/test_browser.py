"""The built portal in a real browser (Chromium through playwright): content visible, hostile pages inert, and
no request ever leaves the site.

Needs Debian's Chromium (/usr/bin/chromium) and the Python playwright package; when either is missing the
tests are skipped, or fail when CI=true.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from docgen.site import render_sources
from docgen.sitebuild import build_site

from .conftest import sample_portal

pytestmark = [pytest.mark.browser, pytest.mark.system]


# More ways a page could run script: every one must end up as text.
XSS_MD = b"""# Evil <img src=x onerror="window.__pwned = 1"> title

<svg onload="window.__pwned = 1"></svg>

<iframe srcdoc="<script>parent.__pwned = 1</script>"></iframe>

<details open ontoggle="window.__pwned = 1; alert('toggle')">x</details>

<a href="javascript:window.__pwned=1">click</a>

![x](data:image/png;base64,iVBORw0KGgo=)

```{eval-rst}
.. raw:: html
   :file: /etc/passwd

`js <javascript:window.__pwned=1>`_
```
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    portal = sample_portal(hostile=True)
    portal.services[1].docs["xss.md"] = XSS_MD
    out = tmp_path_factory.mktemp("browser") / "public"
    build_site(render_sources(portal), out.parent / "work", out)
    return out


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


@pytest.fixture(scope="module")
def base_url(site: Path) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@dataclass
class Watch:
    """What one page did: every request, dialog, console error and uncaught exception."""

    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)


@pytest.fixture
def page(browser: Any, base_url: str) -> Iterator[tuple[Any, Watch]]:
    context = browser.new_context()
    tab = context.new_page()
    watch = Watch()
    tab.on("request", lambda request: watch.requests.append(request.url))

    def on_dialog(dialog: Any) -> None:
        watch.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    tab.on("dialog", on_dialog)

    def on_console(msg: Any) -> None:
        if msg.type == "error":
            watch.console_errors.append(f"{msg.text} @ {msg.location.get('url')}")

    tab.on("console", on_console)
    tab.on("pageerror", lambda exc: watch.page_errors.append(str(exc)))
    tab.on("response", lambda response: watch.not_found.append(response.url) if response.status >= 400 else None)
    try:
        yield tab, watch
    finally:
        context.close()


def _assert_stayed_home(watch: Watch, base_url: str) -> None:
    outside = [url for url in watch.requests if not url.startswith(base_url)]
    assert outside == [], outside
    assert watch.dialogs == []
    assert watch.page_errors == []
    # Chromium asks every site for /favicon.ico (the portal has none) and logs the 404 as a console error
    missing = [url for url in watch.not_found if url != base_url + "favicon.ico"]
    assert missing == [], missing
    errors = [e for e in watch.console_errors if not e.endswith(f"@ {base_url}favicon.ico")]
    assert errors == [], errors


def test_operations_and_quarantine_notices_are_visible(page: tuple[Any, Watch], base_url: str) -> None:
    tab, watch = page
    for name, version in (("orders", "v1"), ("billing", "v2")):
        tab.goto(f"{base_url}api/{name}.html")
        for op_id, method, path in (
            ("listitems", "GET", "/items"),
            ("createitem", "POST", "/items"),
            ("deleteitem", "DELETE", "/items/{id}"),
        ):
            heading = tab.locator(f"section#op-{name}-{op_id} > h3")
            assert heading.is_visible()
            assert heading.inner_text().startswith(f"{method} /api/{name}/{version}{path}")
        assert tab.locator(f"#schema-{name}-item").is_visible()
    for path in ("services/legacy/index.html", "api/index.html"):
        tab.goto(base_url + path)
        notice = tab.locator(".docgen-quarantine")
        assert notice.is_visible()
        assert "API reference not published" in notice.inner_text()
        assert "operationId clash with orders" in notice.inner_text()
    assert tab.locator("a[href='../openapi.json']").is_visible()
    assert tab.request.get(base_url + "openapi.yaml").ok
    _assert_stayed_home(watch, base_url)


@pytest.mark.parametrize(
    "path",
    [
        "services/orders/hostile.html",
        "services/billing/xss.html",
        "services/orders/frontmatter.html",
        "services/orders/usage.html",
        "index.html",
    ],
)
def test_hostile_pages_are_inert(page: tuple[Any, Watch], base_url: str, path: str) -> None:
    tab, watch = page
    tab.goto(base_url + path)
    tab.wait_for_load_state("load")
    # the theme's own scripts did run: a missing __pwned is meaningful
    assert tab.evaluate("typeof DOCUMENTATION_OPTIONS") == "object"
    # give toggles, iframes and onload handlers their chance
    for link in tab.locator("a.docgen-remote-image, details").all():
        assert link.is_visible()
    tab.wait_for_timeout(200)
    assert tab.evaluate("typeof window.__pwned") == "undefined"
    assert tab.locator("script:not([src])").count() == 1  # the theme's search-box line
    assert tab.locator("iframe, object, embed").count() == 0
    _assert_stayed_home(watch, base_url)


@pytest.mark.parametrize(("query", "expected"), [("invoices", "Billing"), ("evil", "onerror")])
def test_search_works_offline(page: tuple[Any, Watch], base_url: str, query: str, expected: str) -> None:
    tab, watch = page
    tab.goto(f"{base_url}search.html?q={query}")
    results = tab.locator("#search-results li")
    results.first.wait_for(timeout=15_000)
    # a hostile page title is listed as text
    assert any(expected in text for text in results.all_inner_texts())
    tab.wait_for_timeout(200)
    assert tab.evaluate("typeof window.__pwned") == "undefined"
    _assert_stayed_home(watch, base_url)
