"""docgen.site and docgen.sphinx_ext: the portal's source tree, a real Sphinx build, safety and incremental builds."""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import yaml
from sphinx.builders.html import StandaloneHTMLBuilder

from docgen.errors import DocgenError
from docgen.site import EXIT_SITE_BUILD, Portal, ServicePage, SiteBuildError, render_sources
from docgen.sitebuild import build_site, write_sources
from docgen.sphinx_ext import strip_myst_front_matter

from .conftest import sample_portal, service_spec

INJECTION = "x\n\n```{raw} html\n<script>window.__pwned=1</script>\n```\n\n<img src=x onerror=alert(1)>"


# --------------------------------------------------------------------------------------------------------------
# HTML inspection


class _Tags(HTMLParser):
    """Every start tag with its attributes, and the text of inline scripts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inline_scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"
        if self._in_script:
            self.inline_scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.inline_scripts[-1] += data


def parse(path: Path) -> _Tags:
    parser = _Tags()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def scripts(page: _Tags) -> list[tuple[str | None, str]]:
    """(src, inline text) of each script tag, with Sphinx's cache-busting ``?v=`` removed and paths reduced to
    their file name (pages at different depths)."""
    found = []
    for (tag, attrs), text in zip([t for t in page.tags if t[0] == "script"], page.inline_scripts, strict=True):
        assert tag == "script"
        src = attrs.get("src")
        found.append((src.split("?")[0].rsplit("/", 1)[-1] if src else None, text.strip()))
    return found


def body_text(path: Path) -> str:
    """The page's main content as text (no tags)."""
    text = path.read_text(encoding="utf-8")
    body = text.split('<div class="body" role="main">', 1)[1].split('<div class="sphinxsidebar"', 1)[0]
    return html.unescape(re.sub(r"<[^>]+>", "", body))


def all_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# --------------------------------------------------------------------------------------------------------------
# render_sources


def test_layout(make_portal: Callable[..., Portal]) -> None:
    sources = render_sources(make_portal())
    expected = {
        "conf.py",
        "index.md",
        "guide/index.md",
        "guide/start.md",
        "services/index.md",
        "services/orders/index.md",  # the service's own
        "services/orders/usage.md",
        "services/orders/img/flow.png",
        "services/billing/index.md",  # generated
        "services/billing/overview.md",
        "services/legacy/index.md",  # generated, with the quarantine notice
        "api/index.md",
        "api/orders.md",
        "api/billing.md",
        "_docgen/api/orders.json",
        "_docgen/api/billing.json",
        "_docgen/quarantine/legacy.json",
        "_docgen/services/legacy.json",
        "_docgen/portal.json",
        "_extra/openapi.json",
        "_extra/openapi.yaml",
    }
    assert expected <= set(sources)
    assert "api/legacy.md" not in sources and "_docgen/api/legacy.json" not in sources
    assert list(sources) == sorted(sources)
    assert all(isinstance(v, bytes) for v in sources.values())
    # the service's own pages are copied as they are
    assert sources["services/orders/index.md"] == make_portal().services[0].docs["index.md"]
    legacy_index = sources["services/legacy/index.md"].decode()
    assert legacy_index.index("{docgen-quarantine} legacy") < legacy_index.index("{docgen-toctree}")
    assert "{docgen-api} orders" in sources["api/orders.md"].decode()
    assert json.loads(sources["_docgen/quarantine/legacy.json"])["reasons"] == make_portal().services[2].quarantine
    assert json.loads(sources["_docgen/services/billing.json"])["pages"] == [
        "services/billing/faq",
        "services/billing/overview",
    ]

    conf: dict[str, Any] = {}
    exec(compile(sources["conf.py"], "conf.py", "exec"), conf)  # noqa: S102 - our own generated file
    assert conf["project"] == "AUTO platform"
    assert conf["extensions"] == ["myst_parser", "docgen.sphinx_ext"]
    assert conf["myst_enable_extensions"] == []
    assert conf["myst_heading_anchors"] == 3
    assert conf["html_theme"] == "alabaster"
    assert conf["html_extra_path"] == ["_extra"]
    assert {"_docgen", "_extra"} <= set(conf["exclude_patterns"])
    assert conf["html_show_sourcelink"] is False and conf["html_copy_source"] is False
    assert "about.html" not in str(conf["html_sidebars"]) and "donate.html" not in str(conf["html_sidebars"])


def test_deterministic(make_portal: Callable[..., Portal]) -> None:
    first = render_sources(make_portal(hostile=True))
    portal = make_portal(hostile=True)
    portal.services.reverse()  # the orchestrator's order does not matter
    assert render_sources(portal) == first
    assert render_sources(make_portal(hostile=True)) == first


def test_downloads_are_the_merged_document(make_portal: Callable[..., Portal]) -> None:
    portal = make_portal()
    portal.merged["info"]["description"] = "Ünïcode – kept as is"
    sources = render_sources(portal)
    assert json.loads(sources["_extra/openapi.json"]) == portal.merged
    assert yaml.safe_load(sources["_extra/openapi.yaml"]) == portal.merged
    assert "Ünïcode".encode() in sources["_extra/openapi.yaml"]
    assert list(yaml.safe_load(sources["_extra/openapi.yaml"])) == list(portal.merged)  # key order kept


def test_untrusted_strings_never_reach_generated_markdown(make_portal: Callable[..., Portal]) -> None:
    portal = make_portal()
    portal.title = INJECTION
    for service in portal.services:
        service.title = INJECTION
        service.version = INJECTION
        service.source = INJECTION
    portal.services[2].quarantine = [INJECTION]
    portal.services[0].api["info"]["description"] = INJECTION  # type: ignore[index]
    sources = render_sources(portal)
    docs = {f"services/{s.name}/{p}" for s in portal.services for p in s.docs}
    generated = {path: content.decode() for path, content in sources.items() if path.endswith(".md")}
    for path, text in generated.items():
        if path in docs:
            continue
        assert "script" not in text and "onerror" not in text and "raw" not in text, path
    conf = sources["conf.py"].decode()
    assert f"project = {INJECTION!r}" in conf  # a Python literal, never code
    assert json.loads(sources["_docgen/portal.json"])["title"] == INJECTION


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: setattr(p.services[0], "name", "Orders"), "bad service name"),
        (lambda p: setattr(p.services[0], "name", "../x"), "bad service name"),
        (lambda p: setattr(p.services[0], "name", "index"), "reserved"),
        (lambda p: setattr(p.services[1], "name", "orders"), "duplicate"),
        (lambda p: p.services[0].docs.update({"../../conf.md": b""}), "unsafe path"),
        (lambda p: p.services[0].docs.update({"/etc/x.md": b""}), "unsafe path"),
        (lambda p: p.services[0].docs.update({"a//b.md": b""}), "unsafe path"),
        (lambda p: p.services[0].docs.update({"a\\b.md": b""}), "unsafe path"),
        (lambda p: p.services[0].docs.update({"page.html": b"<script>"}), "neither"),
        (lambda p: p.services[0].docs.update({"logo.svg": b"<svg onload=alert(1)>"}), "neither"),
        (lambda p: p.guide.update({"x.md": "not bytes"}), "not bytes"),
        (lambda p: p.guide.update({"start.MD": b"# Again"}), "more than one page"),
        (lambda p: p.merged.update({"x": float("nan")}), "JSON"),
    ],
)
def test_bad_input_is_refused(
    make_portal: Callable[..., Portal], change: Callable[[Portal], Any], message: str
) -> None:
    portal = make_portal()
    change(portal)
    with pytest.raises(SiteBuildError, match=message) as info:
        render_sources(portal)
    assert isinstance(info.value, DocgenError)
    assert info.value.exit_code == EXIT_SITE_BUILD == 5


# --------------------------------------------------------------------------------------------------------------
# write_sources


def test_write_sources_touches_only_changes(tmp_path: Path) -> None:
    src = tmp_path / "src"
    assert write_sources({"a.md": b"a", "d/b.md": b"b", "d/e/c.md": b"c"}, src) == ["a.md", "d/b.md", "d/e/c.md"]
    before = (src / "a.md").stat().st_mtime_ns
    os.utime(src / "a.md", ns=(before - 10**9, before - 10**9))  # so that a rewrite would show
    kept = (src / "a.md").stat().st_mtime_ns
    (src / "stray.txt").write_bytes(b"x")
    changed = write_sources({"a.md": b"a", "d/b.md": b"B", "d/e": b"now a file"}, src)
    assert changed == ["d/b.md", "d/e", "d/e/c.md", "stray.txt"]
    assert (src / "a.md").stat().st_mtime_ns == kept
    assert all_files(src) == {"a.md": b"a", "d/b.md": b"B", "d/e": b"now a file"}
    assert write_sources({"a.md": b"a", "d/b.md": b"B", "d/e": b"now a file"}, src) == []
    with pytest.raises(SiteBuildError, match="unsafe path"):
        write_sources({"../escape.md": b"x"}, src)


def test_strip_myst_front_matter() -> None:
    text = "---\nmyst:\n  enable_extensions: [substitution]\norphan: true\ntitle: T\n---\n# Page\n"
    cleaned = strip_myst_front_matter(text)
    assert "myst" not in cleaned and "substitution" not in cleaned
    assert yaml.safe_load(cleaned.split("---")[1]) == {"orphan": True, "title": "T"}
    assert cleaned.count("\n") == text.count("\n")  # warnings keep their line numbers
    assert cleaned.endswith("---\n# Page\n")
    # MyST reads an unterminated block to the end of the file: so does the check
    unterminated = "---\nsubstitutions: {a: b}\n{{ env }}\n"
    assert "substitutions" not in strip_myst_front_matter("---\nsubstitutions: {a: b}\n")
    assert strip_myst_front_matter(unterminated) == unterminated  # not YAML: MyST ignores it too
    assert strip_myst_front_matter("# No front matter\n---\nmyst: {}\n") == "# No front matter\n---\nmyst: {}\n"


# --------------------------------------------------------------------------------------------------------------
# a real build


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """The sample portal, hostile pages included, built once for the tests below."""
    root = tmp_path_factory.mktemp("site")
    result = build_site(render_sources(sample_portal(hostile=True)), root / "work", root / "public")
    return root / "public", result


def test_build_publishes_operations_and_notices(built: tuple[Path, Any]) -> None:
    out, result = built
    assert result.out_dir == out
    assert result.docs_read > 10
    assert "conf.py" in result.changed_sources
    for name, version in (("orders", "v1"), ("billing", "v2")):
        page = (out / "api" / f"{name}.html").read_text()
        text = body_text(out / "api" / f"{name}.html")
        base = f"/api/{name}/{version}"
        for method, path in (("GET", "/items"), ("POST", "/items"), ("DELETE", "/items/{id}")):
            assert f"{method} {base}{path}" in text
        assert f'id="op-{name}-listitems"' in page
        assert f'href="#schema-{name}-item"' in page and f'id="schema-{name}-item"' in page
        assert "Deprecated" in text and "How many items at most." in text
        assert f"{name.capitalize()} API" in text  # the service title, set by the directive
    legacy = body_text(out / "services" / "legacy" / "index.html")
    landing = body_text(out / "api" / "index.html")
    for text in (legacy, landing):
        assert "API reference not published" in text
        assert "spec has 2 validation issue(s): $.paths is missing" in text
        assert "operationId clash with orders" in text
    # the service's own index page gets the notice machinery's header too
    assert "API reference" in body_text(out / "services" / "orders" / "index.html")
    assert not (out / "api" / "legacy.html").exists()
    # downloads at the site root, linked from the landing page
    assert json.loads((out / "openapi.json").read_text()) == sample_portal().merged
    assert yaml.safe_load((out / "openapi.yaml").read_text()) == sample_portal().merged
    assert 'href="../openapi.json"' in (out / "api" / "index.html").read_text()
    assert 'href="../openapi.yaml"' in (out / "api" / "index.html").read_text()
    assert (out / "_images" / "flow.png").exists()
    assert not (out / ".buildinfo").exists() and not (out / "_sources").exists()
    assert (out / "searchindex.js").exists()


def test_hostile_markdown_is_inert(built: tuple[Path, Any]) -> None:
    out, result = built
    hostile_path = out / "services" / "orders" / "hostile.html"
    hostile = parse(hostile_path)
    clean = parse(out / "services" / "orders" / "usage.html")
    # the only scripts are the theme's, exactly those of a clean page
    assert scripts(hostile) == scripts(clean)
    for tag, attrs in hostile.tags:
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
        for attr in ("href", "src", "action", "content"):
            value = (attrs.get(attr) or "").replace(" ", "").lower()
            assert not value.startswith(("javascript:", "data:", "vbscript:", "file:")), (tag, attrs)
            if attr == "src":
                assert not value.startswith(("http:", "https:", "//")), (tag, attrs)
        assert (
            tag not in {"iframe", "object", "embed", "meta"}
            or attrs.get("charset")
            or attrs.get("name") == ("viewport")
        ), (tag, attrs)
    text = body_text(hostile_path)
    # the HTML is shown as text, the remote image became a link
    assert "<script>window.__pwned = 1; alert(1)</script>" in text
    assert '<a class="docgen-remote-image reference external" href="https://example.com/a.png">remote</a>' in (
        hostile_path.read_text()
    )
    assert "The end of the hostile page." in text
    # nothing of the build machine was read
    passwd = Path("/etc/passwd").read_text().splitlines()[0]
    for path, content in all_files(out).items():
        assert passwd.encode() not in content, path
    assert not (out / "_images" / "passwd").exists() and not (out / "_downloads").exists()
    assert any('"raw" directive disabled' in w for w in result.warnings)
    assert sum("File and URL access deactivated" in w for w in result.warnings) == 2  # csv-table :file: :url:
    assert any("bad service name '../../../../etc/passwd'" in w for w in result.warnings)
    assert "API reference not published" in text  # the portal's directives are harmless in a team's page
    assert any("include" in w and "disabled" in w for w in result.warnings)
    # MyST front matter could not switch the substitution extension on
    front = body_text(out / "services" / "orders" / "frontmatter.html")
    assert "BuildEnvironment" not in front and "42" not in front
    assert "refresh" not in (out / "services" / "orders" / "frontmatter.html").read_text()


def test_untrusted_strings_are_escaped_in_the_html(tmp_path: Path, built: tuple[Path, Any]) -> None:
    portal = sample_portal()
    portal.title = INJECTION
    portal.services[0].title = INJECTION
    portal.services[0].api["paths"]["/api/orders/v1/items"]["get"]["description"] = INJECTION  # type: ignore[index]
    portal.services[0].api["paths"]["/api/orders/v1/items"]["get"]["summary"] = "<b onmouseover=alert(1)>x</b>"  # type: ignore[index]
    portal.services[2].quarantine = [INJECTION]
    result = build_site(render_sources(portal), tmp_path / "work", tmp_path / "public")
    clean_scripts = scripts(parse(built[0] / "guide" / "start.html"))  # a portal with ordinary titles
    pages = ("index.html", "api/index.html", "api/orders.html", "services/index.html", "services/legacy/index.html")
    for page in pages:
        parsed = parse(tmp_path / "public" / page)
        assert scripts(parsed) == clean_scripts, page
        assert "<script>window.__pwned" not in (tmp_path / "public" / page).read_text(), page
        assert not any(a.startswith("on") for _tag, attrs in parsed.tags for a in attrs), page
        assert not any(tag in {"img", "b"} for tag, _attrs in parsed.tags), page
    assert "<script>window.__pwned=1</script>" in body_text(tmp_path / "public" / "api" / "orders.html")
    assert "<b onmouseover=alert(1)>x</b>" in body_text(tmp_path / "public" / "api" / "orders.html")
    assert "<img src=x onerror=alert(1)>" in body_text(tmp_path / "public" / "services" / "legacy" / "index.html")
    assert not any("raw" in w for w in result.warnings)


def test_own_index_page_gets_the_header_and_the_quarantine_notice(tmp_path: Path) -> None:
    portal = sample_portal()
    legacy = portal.services[2]
    legacy.docs["index.md"] = b"---\norphan: false\n---\n# Legacy, our way\n\nOur own words.\n"
    build_site(render_sources(portal), tmp_path / "work", tmp_path / "public")
    page = (tmp_path / "public" / "services" / "legacy" / "index.html").read_text()
    text = body_text(tmp_path / "public" / "services" / "legacy" / "index.html")
    assert text.index("Legacy, our way") < text.index("API reference not published") < text.index("Our own words.")
    assert "operationId clash with orders" in text
    assert page.count("docgen-quarantine") == 2  # the notice and its list of reasons
    assert page.count("docgen-service-header") == 1


def test_more_url_tricks(tmp_path: Path) -> None:
    tricks = b"""# Tricks

![png data](data:image/png;base64,iVBORw0KGgo=)

![protocol relative](//example.com/a.png)

```{image} https://example.com/b.png
:alt: remote directive image
```

```{figure} ../../conf.py
A caption.
```

[conf](../../conf.py) and {download}`passwd <../../../../../../etc/passwd>` and [fine](https://example.com/)

```{eval-rst}
.. meta::
   :http-equiv=refresh: 0; url=https://example.com/

.. image:: javascript:alert(1)

`vb <vbscript:msgbox(1)>`_ and `jsfile <JaVa\tScRiPt:alert(1)>`_
```

```{toctree}
Evil <javascript://%0aalert(1)>
Good <https://example.com/>
```
"""
    portal = sample_portal()
    portal.services[1].docs["tricks.md"] = tricks
    build_site(render_sources(portal), tmp_path / "work", tmp_path / "public")
    out = tmp_path / "public"
    page = out / "services" / "billing" / "tricks.html"
    parsed = parse(page)
    for tag, attrs in parsed.tags:
        for attr in ("href", "src", "content"):
            value = re.sub(r"[\x00-\x20]", "", attrs.get(attr) or "").lower()
            assert not value.startswith(("javascript:", "data:", "vbscript:")), (tag, attrs)
        if tag == "img":
            pytest.fail(f"no image should be left: {attrs}")
        assert not (tag == "meta" and "http-equiv" in attrs), attrs
    source = page.read_text()
    assert 'href="https://example.com/b.png"' in source  # remote image -> link
    assert 'href="https://example.com/"' in source  # ordinary links stay
    assert not (out / "_downloads").exists()
    assert sorted(p.name for p in (out / "_images").iterdir()) == ["flow.png"]  # the orders service's own
    # the toctree's javascript: entry is gone from every page's navigation, the https one stays
    for html_file in out.rglob("*.html"):
        hrefs = [re.sub(r"[\x00-\x20]", "", a.get("href") or "").lower() for _t, a in parse(html_file).tags]
        assert not [h for h in hrefs if h.startswith(("javascript:", "vbscript:", "data:"))], html_file
    assert '<a class="reference external" href="https://example.com/">Good</a>' in source
    assert ">Evil<" not in source


def test_odd_specs_and_an_empty_portal_build(tmp_path: Path) -> None:
    odd = {
        "openapi": "3.1.0",
        "tags": "not a list",
        "paths": {
            "/api/odd/v1/x": {
                "get": {
                    "parameters": "nope",
                    "responses": [1, 2],
                    "tags": "t",
                    "requestBody": 5,
                    "description": 7,
                    "operationId": ["x"],
                },
                "post": "not an operation",
                "put": {"responses": {"200": {"$ref": "#/components/responses/Loop"}}},
            },
            "/api/odd/v1/y": [],
        },
        "components": {
            "schemas": {
                "odd.A": [],
                "odd.B": {"properties": "x", "required": 3, "type": 5},
                "odd.Self": {"type": "object", "properties": {"me": {"$ref": "#/components/schemas/odd.Self"}}},
                "odd.Deep": {"type": "array", "items": {"type": "array", "items": {"type": "array", "items": {}}}},
            },
            "responses": {"Loop": {"$ref": "#/components/responses/Loop"}},
        },
    }
    portal = Portal(
        "Odd", {}, [ServicePage("odd", "v1", "", {}, odd, [])], {"openapi": "3.1.0", "info": {}, "paths": {}}
    )
    result = build_site(render_sources(portal), tmp_path / "work", tmp_path / "public")
    assert result.warnings == []
    text = body_text(tmp_path / "public" / "api" / "odd.html")
    assert "GET /api/odd/v1/x" in text and "PUT /api/odd/v1/x" in text and "POST" not in text
    assert "odd API" in text  # no title: the service's name
    assert "array of array of array of any" in text

    empty = build_site(render_sources(Portal("Empty", {}, [], {})), tmp_path / "work2", tmp_path / "public2")
    assert empty.warnings == []
    assert "No API reference is published." in body_text(tmp_path / "public2" / "api" / "index.html")


def test_parallel_build(tmp_path: Path) -> None:
    portal = sample_portal()
    portal.services[1].docs["Upper.MD"] = b"# Shouted page\n"  # the orchestrator accepts any letter case
    result = build_site(render_sources(portal), tmp_path / "work", tmp_path / "public", jobs=2)
    assert result.docs_read > 10
    assert "GET /api/billing/v2/items" in body_text(tmp_path / "public" / "api" / "billing.html")
    assert "Shouted page" in body_text(tmp_path / "public" / "services" / "billing" / "index.html")  # its toctree
    assert "Shouted page" in body_text(tmp_path / "public" / "services" / "billing" / "Upper.html")
    with pytest.raises(SiteBuildError, match="jobs"):
        build_site({}, tmp_path / "work", tmp_path / "public", jobs=0)


# --------------------------------------------------------------------------------------------------------------
# incremental builds and failures


def test_incremental_rebuild_reads_only_what_changed(tmp_path: Path) -> None:
    work, out = tmp_path / "work", tmp_path / "public"
    portal = sample_portal()
    first = build_site(render_sources(portal), work, out)
    assert first.docs_read > 10
    billing_page = work / "html" / "services" / "billing" / "overview.html"
    billing_mtime = billing_page.stat().st_mtime_ns
    billing_bytes = (out / "services" / "billing" / "overview.html").read_bytes()

    again = build_site(render_sources(portal), work, out)
    assert (again.changed_sources, again.docs_read) == ([], 0)

    portal.services[0].docs["usage.md"] = b"# Using orders\n\nCall the API, version two.\n"
    one_page = build_site(render_sources(portal), work, out)
    assert one_page.changed_sources == ["services/orders/usage.md"]
    assert one_page.docs_read == 1
    assert "version two" in body_text(out / "services" / "orders" / "usage.html")
    assert billing_page.stat().st_mtime_ns == billing_mtime  # not even rewritten
    assert (out / "services" / "billing" / "overview.html").read_bytes() == billing_bytes

    portal.services[0].api["paths"]["/api/orders/v1/items"]["get"]["summary"] = "List them all"  # type: ignore[index]
    portal.merged = sample_portal().merged
    spec_change = build_site(render_sources(portal), work, out)
    assert "_docgen/api/orders.json" in spec_change.changed_sources
    assert spec_change.docs_read == 1  # api/orders, through the directive's dependency on its JSON
    assert "List them all" in body_text(out / "api" / "orders.html")
    assert billing_page.stat().st_mtime_ns == billing_mtime

    # a new service: the overview pages are re-read, and every page's navigation shows it
    portal.services.append(
        ServicePage("zeta", "v1", "Zeta service", {"intro.md": b"# Zeta intro\n"}, service_spec("zeta"), [])
    )
    added = build_site(render_sources(portal), work, out)
    assert added.docs_read <= 8, added.docs_read
    assert "Zeta service" in (out / "services" / "billing" / "overview.html").read_text()
    assert "GET /api/zeta/v1/items" in body_text(out / "api" / "zeta.html")

    # a service removed: its pages are gone from the published site
    portal.services = [s for s in portal.services if s.name != "zeta"]
    removed = build_site(render_sources(portal), work, out)
    assert "services/zeta/intro.md" in removed.changed_sources
    assert not (out / "api" / "zeta.html").exists() and not (out / "services" / "zeta").exists()
    assert "Zeta service" not in (out / "services" / "billing" / "overview.html").read_text()


def test_failed_build_leaves_out_dir_untouched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work, out = tmp_path / "work", tmp_path / "public"
    sources = render_sources(sample_portal())
    build_site(sources, work, out)
    before = snapshot(out)
    siblings = sorted(p.name for p in tmp_path.iterdir())

    # Sphinx cannot even start
    broken = dict(sources) | {"conf.py": b"raise RuntimeError('broken conf')\n"}
    with pytest.raises(SiteBuildError, match="broken conf") as info:
        build_site(broken, work, out)
    assert info.value.exit_code == EXIT_SITE_BUILD
    assert snapshot(out) == before

    # Sphinx fails half-way through writing pages
    changed = render_sources(sample_portal(hostile=True))
    real_handle_page = StandaloneHTMLBuilder.handle_page
    calls = {"n": 0}

    def failing_handle_page(self: StandaloneHTMLBuilder, *args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] > 3:
            raise OSError("disk full")
        real_handle_page(self, *args, **kwargs)

    monkeypatch.setattr(StandaloneHTMLBuilder, "handle_page", failing_handle_page)
    with pytest.raises(SiteBuildError, match="disk full"):
        build_site(changed, work, out)
    assert calls["n"] == 4
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == siblings  # no staging directory left behind

    # the next good build recovers completely
    monkeypatch.setattr(StandaloneHTMLBuilder, "handle_page", real_handle_page)
    recovered = build_site(changed, work, out)
    assert recovered.docs_read > 10  # a fresh environment after the failure
    assert (out / "services" / "orders" / "hostile.html").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == siblings


def test_out_dir_must_not_overlap_work_dir(tmp_path: Path) -> None:
    with pytest.raises(SiteBuildError, match="must not contain"):
        build_site({}, tmp_path / "work", tmp_path / "work" / "html")
    with pytest.raises(SiteBuildError, match="must not contain"):
        build_site({}, tmp_path / "public" / "work", tmp_path / "public")
