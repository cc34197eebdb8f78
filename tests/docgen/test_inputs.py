"""The portal's inputs: the manifest and descriptors, reading docs and specs locally and over HTTPS, scrubbing."""

from __future__ import annotations

import io
import re
import tarfile
from pathlib import Path

import pytest

from docgen.errors import ConfigError
from docgen.manifest import ScrubRule, ServiceEntry, load_descriptor, load_manifest
from docgen.scrub import scrub_markdown, scrub_spec
from docgen.sources import Fetcher, docs_from_archive, docs_from_folder, read_service, shown_url
from tests.docgen.servers import https_files


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# ---- manifest and descriptor


def test_manifest_with_entries_and_a_descriptor(tmp_path: Path) -> None:
    write(tmp_path / "billing/auto-service.yml", "name: billing\nversion: 2\ndocs: docs\nspec: openapi.yaml\n")
    (tmp_path / "guide").mkdir()
    manifest = load_manifest(
        write(
            tmp_path / "services.yml",
            "title: Shop\nguide: guide\ngateway: https://api.shop.example\n"
            "scrub:\n  - {name: corp-hosts, pattern: '[a-z0-9.-]+\\.corp\\.example', replace: internal-host}\n"
            "services:\n"
            "  - {name: orders, version: v1, docs: orders/docs, spec: https://orders.example/openapi.json,"
            " deprecated_aliases: true, title: Orders}\n"
            "  - descriptor: billing/auto-service.yml\n",
        )
    )
    assert manifest.title == "Shop"
    assert manifest.gateway == "https://api.shop.example"
    assert manifest.guide == (tmp_path / "guide").resolve()
    assert [r.name for r in manifest.scrub] == ["corp-hosts"]
    orders, billing = manifest.services
    assert orders == ServiceEntry(
        "orders",
        "v1",
        "Orders",
        str((tmp_path / "orders/docs").resolve()),
        "https://orders.example/openapi.json",
        True,
        str(tmp_path / "services.yml"),
    )
    assert (billing.name, billing.version, billing.title) == ("billing", "2", "billing")
    assert billing.spec == str((tmp_path / "billing/openapi.yaml").resolve())
    assert billing.origin == str(tmp_path / "billing/auto-service.yml")


def test_a_descriptor_is_a_one_service_manifest(tmp_path: Path) -> None:
    path = write(tmp_path / "auto-service.yml", "name: orders\nversion: v1\nspec: openapi.yaml\n")
    manifest = load_manifest(path)
    assert [s.name for s in manifest.services] == ["orders"]
    assert load_descriptor(path) == manifest.services[0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "a manifest is a mapping with a 'services' list"),
        ("services: [\n", "services.yml:2: not valid YAML"),
        ("services: []\n", "'services' must be a non-empty list"),
        ("servics: []\n", "unknown key 'servics'"),
        ("services:\n  - {name: Orders, version: v1, spec: a.json}\n", "must be lower-case letters, digits and '-'"),
        ("services:\n  - {name: a, version: 'v 1', spec: a.json}\n", "version 'v 1' must look like v1 or 2.0"),
        ("services:\n  - {name: a, version: v1}\n", "service a has neither docs nor spec: give at least one"),
        ("services:\n  - {name: a, version: v1, spec: http://x/a.json}\n", "only https:// URLs are fetched"),
        ("services:\n  - {name: a, version: v1, spec: a.json, specs: b}\n", "unknown key 'specs'"),
        (
            "services:\n  - {name: a, version: v1, spec: a.json}\n  - {name: a, version: v2, spec: b.json}\n",
            "service 'a' is listed twice",
        ),
        ("services:\n  - {descriptor: nope/auto-service.yml}\n", "does not exist: check the path"),
        ("scrub: [{name: x, pattern: '('}]\nservices: [{name: a, version: v1, spec: a}]\n", "not a valid regular"),
        ("scrub: [{name: x, pattern: 'a*'}]\nservices: [{name: a, version: v1, spec: a}]\n", "matches the empty"),
        ("guide: nope\nservices: [{name: a, version: v1, spec: a}]\n", "guide folder"),
    ],
)
def test_manifest_errors_are_one_clear_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_manifest(write(tmp_path / "services.yml", text))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="manifest .*nope.yml does not exist: check the path"):
        load_manifest(tmp_path / "nope.yml")


# ---- docs folders and archives


def test_docs_folder_keeps_pages_and_images_only(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    write(docs / "index.md", "# Orders\n")
    write(docs / "guide/usage.md", "use it\n")
    write(docs / ".hidden.md", "no\n")
    write(docs / "notes.txt", "no\n")
    (docs / "logo.png").write_bytes(b"\x89PNG")
    write(tmp_path / "secret.md", "outside\n")
    (docs / "link.md").symlink_to(tmp_path / "secret.md")
    assert docs_from_folder(docs) == {"guide/usage.md": b"use it\n", "index.md": b"# Orders\n", "logo.png": b"\x89PNG"}


def _tar(members: list[tuple[str, bytes | None, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, link, data in members:
            info = tarfile.TarInfo(name)
            if link is not None:
                info.type = tarfile.SYMTYPE
                info.linkname = link.decode()
            else:
                info.size = len(data)
            archive.addfile(info, io.BytesIO(data) if link is None else None)
    return buffer.getvalue()


def test_docs_archive_skips_escaping_paths_and_links() -> None:
    data = _tar(
        [
            ("docs/index.md", None, b"# Hi\n"),
            ("docs/../../evil.md", None, b"evil"),
            ("/etc/cron.md", None, b"abs"),
            ("docs/passwd.md", b"/etc/passwd", b""),
            ("docs/.git/config.md", None, b"hidden"),
        ]
    )
    assert docs_from_archive(data, "x") == {"index.md": b"# Hi\n"}


def test_broken_archive_is_a_problem_not_a_crash() -> None:
    with pytest.raises(Exception, match="not a readable .tar.gz docs archive"):
        docs_from_archive(b"not a tarball", "https://x/docs.tar.gz")


# ---- fetching over HTTPS


def test_fetch_spec_and_docs_over_verified_https(tmp_path: Path) -> None:
    archive = _tar([("docs/index.md", None, b"# Orders\n"), ("docs/api.md", None, b"api\n")])
    routes = {
        "/openapi.json": (200, b'{"openapi": "3.0.3"}', {}),
        "/docs.tar.gz": (200, archive, {}),
        "/moved.json": (302, b"", {"Location": "/openapi.json"}),
        "/big.json": (200, b"x" * 100, {}),
    }
    with https_files(tmp_path, routes) as server:
        fetcher = Fetcher(ca_file=server.ca_file)
        entry = ServiceEntry("orders", "v1", "Orders", f"{server.url}/docs.tar.gz", f"{server.url}/openapi.json?t=1")
        source = read_service(entry, fetcher)
        assert source.problems == []
        assert source.spec == b'{"openapi": "3.0.3"}'
        assert source.spec_name == "openapi.json"
        assert source.docs == {"index.md": b"# Orders\n", "api.md": b"api\n"}

        moved = read_service(ServiceEntry("a", "v1", "a", None, f"{server.url}/moved.json"), fetcher)
        assert moved.problems == [f"spec not read: {server.url}/moved.json: redirected (HTTP 302); list the final URL"]
        missing = read_service(
            ServiceEntry("a", "v1", "a", f"{server.url}/gone.md", f"{server.url}/nope.json?token=s3cret"), fetcher
        )
        assert missing.problems == [
            f"spec not read: {server.url}/nope.json: HTTP 404",
            f"docs not read: {server.url}/gone.md: HTTP 404",
        ]
        with pytest.raises(Exception, match="100 bytes is more than the 10 allowed"):
            fetcher.get(f"{server.url}/big.json", 10)

        untrusted = read_service(ServiceEntry("a", "v1", "a", None, f"{server.url}/openapi.json"), Fetcher())
        assert untrusted.problems == [
            f"spec not read: {server.url}/openapi.json: TLS certificate not trusted (pass --ca-file)"
        ]
    assert "s3cret" not in " ".join(missing.problems)


def test_shown_url_drops_credentials_and_query() -> None:
    assert shown_url("https://user:pw@docs.example:8443/a/b.json?token=x#y") == "https://docs.example:8443/a/b.json"


def test_local_spec_missing_is_a_problem(tmp_path: Path) -> None:
    source = read_service(ServiceEntry("a", "v1", "a", None, str(tmp_path / "nope.yaml")), Fetcher())
    assert source.problems == [f"spec not read: spec {tmp_path / 'nope.yaml'} does not exist"]


# ---- scrubbing


RULES = (  # in order: the repository URLs go first, whole
    ScrubRule("gitlab-repos", re.compile(r"https://gitlab\.corp\.example/[^\s)]+"), ""),
    ScrubRule("corp-hosts", re.compile(r"[a-z0-9.-]+\.corp\.example"), "internal-host"),
)


def test_scrub_markdown_reports_each_removal() -> None:
    docs = {
        "index.md": b"See https://gitlab.corp.example/team/orders and db1.corp.example.\n",
        "a.png": b"db1.corp.example",
    }
    out, removals = scrub_markdown("orders", docs, RULES)
    assert out["index.md"] == b"See  and internal-host.\n"
    assert out["a.png"] == b"db1.corp.example"  # images are not text
    assert [str(r) for r in removals] == [
        "orders: index.md: scrubbed 1 match(es) of gitlab-repos",
        "orders: index.md: scrubbed 1 match(es) of corp-hosts",
    ]


def test_scrub_spec_string_values_not_refs() -> None:
    spec = {
        "info": {"description": "Runs on api.corp.example"},
        "servers": [{"url": "https://api.corp.example/v1"}],
        "paths": {"/a": {"get": {"responses": {"200": {"$ref": "#/components/responses/x.corp.example"}}}}},
    }
    out, removals = scrub_spec("orders", spec, RULES)
    assert out["info"]["description"] == "Runs on internal-host"
    assert out["servers"][0]["url"] == "https://internal-host/v1"
    assert out["paths"]["/a"]["get"]["responses"]["200"]["$ref"] == "#/components/responses/x.corp.example"
    assert spec["info"]["description"] == "Runs on api.corp.example"  # the input is not modified
    assert [r.where for r in removals] == ["$.info.description", "$.servers[0].url"]
