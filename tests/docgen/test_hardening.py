"""One team's input never takes the portal down, and no input reads what it should not: each case goes through
the real command line (`auto-docs build`) and checks the exit code and the one line that says what happened.

- local paths stay inside the manifest's (or descriptor's) folder, unless the manifest allows more;
- names and versions from the environment-state service are checked whole;
- a page nested too deep for docutils/Sphinx becomes a notice, the rest is published;
- fetched docs and specs have size and time budgets, named when exceeded.
"""

from __future__ import annotations

import io
import json
import tarfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from docgen import sources
from docgen.cli import main
from docgen.manifest import load_manifest
from docgen.sphinx_sanitise import MAX_PAGE_DEPTH
from tests.docgen.servers import HEADER_DELAY, https_files

TOOLKIT_MANIFEST = Path(__file__).resolve().parents[2] / "docgen" / "toolkit-docs" / "services.yml"
SPEC = (
    "openapi: 3.0.3\ninfo: {title: T, version: '1'}\n"
    "paths:\n  /ping:\n    get:\n      responses: {'200': {description: OK}}\n"
)
SECRET = "TOP-SECRET-ON-THE-BUILD-MACHINE"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def build(capsys: pytest.CaptureFixture[str], tmp_path: Path, *source: str) -> tuple[int, str, dict[str, Any]]:
    """``auto-docs build`` into tmp_path/public; (exit code, stderr, the JSON report)."""
    report = tmp_path / "report.json"
    code = main(
        [
            "build",
            *source,
            "--out",
            str(tmp_path / "public"),
            "--cache",
            str(tmp_path / ".cache"),
            "--json-report",
            str(report),
        ]
    )
    err = capsys.readouterr().err
    return code, err, json.loads(report.read_text()) if report.exists() else {}


def warning_of(err: str, start: str) -> str:
    """The one warning line that starts with ``start`` (there must be exactly one)."""
    lines = [line for line in err.splitlines() if line.startswith(f"warning: {start}")]
    assert len(lines) == 1, err
    return lines[0]


def site_text(public: Path) -> str:
    return "\n".join(
        p.read_text(errors="replace") for p in public.rglob("*") if p.suffix in (".html", ".json", ".yaml")
    )


# --------------------------------------------------------------------------------------------------------------
# 1. local paths stay inside the manifest's folder


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """Files of the build machine, beside the portal's folder (not inside it)."""
    root = tmp_path / "machine"
    write(root / "secret.yaml", f"openapi: 3.0.3\ninfo: {{title: {SECRET}, version: '1'}}\npaths: {{}}\n")
    write(root / "docs" / "index.md", f"# {SECRET}\n")
    write(root / "auto-service.yml", "name: stolen\nversion: v1\nspec: secret.yaml\n")
    return root


def test_paths_outside_the_manifest_folder_are_refused_per_service(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, outside: Path
) -> None:
    portal = tmp_path / "portal"
    write(portal / "good" / "openapi.yaml", SPEC)
    write(portal / "good" / "docs" / "index.md", "# Good\n\nPublished.\n")
    (portal / "link").symlink_to(outside / "secret.yaml")
    manifest = {
        "services": [
            {"name": "good", "version": "v1", "docs": "good/docs", "spec": "good/openapi.yaml"},
            {"name": "abs", "version": "v1", "spec": str(outside / "secret.yaml")},
            {"name": "absmissing", "version": "v1", "spec": str(outside / "no-such-file.yaml")},
            {"name": "dotdot", "version": "v1", "spec": "../machine/secret.yaml"},
            {"name": "symlink", "version": "v1", "spec": "link"},
            {"name": "absdocs", "version": "v1", "docs": str(outside / "docs"), "spec": "good/openapi.yaml"},
        ]
    }
    write(portal / "services.yml", yaml.safe_dump(manifest))

    code, err, report = build(capsys, tmp_path, "--manifest", str(portal / "services.yml"))

    assert code == 0, err
    status = {s["name"]: s["status"] for s in report["services"]}
    assert status == {
        "good": "published",
        "abs": "quarantined",
        "absmissing": "quarantined",
        "dotdot": "quarantined",
        "symlink": "quarantined",
        "absdocs": "published",  # its spec is inside; its docs are not read
    }
    where = portal / "services.yml"
    assert warning_of(err, "abs: quarantined") == (
        f"warning: abs: quarantined: spec not read: '{outside / 'secret.yaml'}' is outside the folder of {where}; "
        "local paths must stay inside it"
    )
    # A file that exists and one that does not: the same reason (nothing outside is looked at).
    assert warning_of(err, "absmissing: quarantined") == warning_of(err, "abs: quarantined").replace(
        "abs:", "absmissing:"
    ).replace("secret.yaml", "no-such-file.yaml")
    assert "outside the folder of" in warning_of(err, "dotdot: quarantined")
    assert "'link' is outside the folder of" in warning_of(err, "symlink: quarantined")
    assert warning_of(err, "absdocs: docs not read") == (
        f"warning: absdocs: docs not read: '{outside / 'docs'}' is outside the folder of {where}; "
        "local paths must stay inside it"
    )
    public = tmp_path / "public"
    assert SECRET not in site_text(public)
    assert "Published." in (public / "services" / "good" / "index.html").read_text()
    assert "/api/good/v1/ping" in json.loads((public / "openapi.json").read_text())["paths"]


def test_a_descriptor_outside_the_manifest_folder_is_bad_input(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, outside: Path
) -> None:
    portal = tmp_path / "portal"
    write(portal / "services.yml", "services:\n  - descriptor: ../machine/auto-service.yml\n")
    code, err, _ = build(capsys, tmp_path, "--manifest", str(portal / "services.yml"))
    assert code == 2
    assert err == (
        f"Error: {portal / 'services.yml'}: services[0]: descriptor '../machine/auto-service.yml' is outside the "
        f"folder of {portal / 'services.yml'}; local paths must stay inside it\n"
    )
    # the same words for a descriptor that does not exist out there
    write(portal / "services.yml", "services:\n  - descriptor: ../machine/nothing/auto-service.yml\n")
    code, err, _ = build(capsys, tmp_path, "--manifest", str(portal / "services.yml"))
    assert code == 2
    assert "descriptor '../machine/nothing/auto-service.yml' is outside the folder of" in err
    assert not (tmp_path / "public").exists()


def test_a_descriptors_paths_stay_inside_its_own_folder(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, outside: Path
) -> None:
    portal = tmp_path / "portal"
    write(portal / "shared.yaml", SPEC)  # inside the manifest's folder, but not the descriptor's
    write(portal / "orders" / "openapi.yaml", SPEC)
    write(portal / "orders" / "auto-service.yml", "name: orders\nversion: v1\nspec: openapi.yaml\n")
    write(portal / "billing" / "auto-service.yml", "name: billing\nversion: v1\nspec: ../shared.yaml\n")
    write(
        portal / "services.yml",
        "services:\n  - descriptor: orders/auto-service.yml\n  - descriptor: billing/auto-service.yml\n",
    )
    code, err, report = build(capsys, tmp_path, "--manifest", str(portal / "services.yml"))
    assert code == 0, err
    assert {s["name"]: s["status"] for s in report["services"]} == {"orders": "published", "billing": "quarantined"}
    assert warning_of(err, "billing: quarantined") == (
        f"warning: billing: quarantined: spec not read: '../shared.yaml' is outside the folder of "
        f"{portal / 'billing' / 'auto-service.yml'}; local paths must stay inside it"
    )


def test_a_descriptor_as_the_manifest_reads_only_its_own_folder(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, outside: Path
) -> None:
    project = tmp_path / "project"
    descriptor = write(project / "auto-service.yml", f"name: orders\nversion: v1\ndocs: {outside / 'docs'}\n")
    code, err, report = build(capsys, tmp_path, "--manifest", str(descriptor))
    assert code == 0, err
    assert report["services"][0]["status"] == "docs-only"
    assert warning_of(err, "orders: docs not read") == (
        f"warning: orders: docs not read: '{outside / 'docs'}' is outside the folder of {descriptor}; "
        "local paths must stay inside it"
    )
    assert SECRET not in site_text(tmp_path / "public")


def test_allow_paths_lets_the_manifest_owner_name_more(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, outside: Path
) -> None:
    portal = tmp_path / "portal"
    write(portal / "guide" / "index.md", "# Guide\n")
    write(
        portal / "services.yml",
        "allow_paths: [../machine/secret.yaml, ../machine/docs]\nguide: guide\nservices:\n"
        "  - {name: shared, version: v1, docs: ../machine/docs, spec: ../machine/secret.yaml}\n"
        "  - {name: other, version: v1, spec: ../machine/auto-service.yml}\n",
    )
    code, err, report = build(capsys, tmp_path, "--manifest", str(portal / "services.yml"))
    assert code == 0, err
    assert {s["name"]: s["status"] for s in report["services"]} == {"shared": "published", "other": "quarantined"}
    assert warning_of(err, "other: quarantined") == (
        f"warning: other: quarantined: spec not read: '../machine/auto-service.yml' is outside the folder of "
        f"{portal / 'services.yml'} or its allow_paths; local paths must stay inside it"
    )
    # a guide outside is the manifest's own mistake: bad input
    write(portal / "services.yml", "guide: ../machine/docs\nservices:\n  - {name: a, version: v1, spec: guide}\n")
    code, err, _ = build(capsys, tmp_path, "--manifest", str(portal / "services.yml"))
    assert code == 2
    assert err.count("\n") == 1 and "guide '../machine/docs' is outside the folder of" in err
    write(portal / "services.yml", "allow_paths: ../x\nservices:\n  - {name: a, version: v1, spec: a.yaml}\n")
    code, err, _ = build(capsys, tmp_path, "--manifest", str(portal / "services.yml"))
    assert code == 2
    assert "'allow_paths' must be a list of paths" in err


def test_the_toolkits_own_manifest_allows_the_state_contract() -> None:
    manifest = load_manifest(TOOLKIT_MANIFEST)
    state = next(s for s in manifest.services if s.name == "state")
    assert state.refused == ()
    assert state.spec is not None and Path(state.spec).is_file()
    assert all(s.refused == () for s in manifest.services)


# --------------------------------------------------------------------------------------------------------------
# 2. names from the environment-state service


def _environment(services: list[dict[str, Any]], idle: list[dict[str, Any]]) -> dict[str, Any]:
    """An Environment answer of the state service whose live colour (green) runs ``services``, blue ``idle``."""

    def stacks(services: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"name": "shop", "deployed_at": "2024-01-01T00:00:00Z", "deployed_by": "ci", "services": services}]

    return {
        "name": "prod",
        "live_colour": "green",
        "revision": 1,
        "updated_at": "2024-01-01T00:00:00Z",
        "clusters": {
            colour: {
                "manager_address": "10.0.0.1",
                "docker_port": 2376,
                "live": colour == "green",
                "stacks": stacks(services if colour == "green" else idle),
            }
            for colour in ("blue", "green")
        },
    }


@pytest.fixture
def state_answering(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A loopback stand-in for the state service that answers what the test puts in the dict (``environment``):
    the real service refuses such names when they are recorded, an older or broken one may still hold them."""
    answer: dict[str, Any] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            body = json.dumps(answer["environment"]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    monkeypatch.setenv("AUTO_STATE_URL", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("AUTO_STATE_TOKEN", "tok")
    monkeypatch.setenv("AUTO_STATE_RETRIES", "0")
    try:
        yield answer
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_bad_names_and_versions_from_the_environment_are_skipped(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, state_answering: dict[str, Any]
) -> None:
    with https_files(tmp_path, {"/openapi.yaml": (200, SPEC.encode(), {})}) as files:

        def service(name: str, version: str = "v1") -> dict[str, Any]:
            docs = {"version": version, "spec_url": f"{files.url}/openapi.yaml"}
            return {"name": name, "image": "shop/x:1", "replicas": 1, "docs": docs}

        worker = {"name": "worker\n", "image": "shop/worker:1", "replicas": 1}  # no docs labels
        state_answering["environment"] = _environment(
            [service("web\n"), service("index"), service("pay", "v1\n"), service("Web"), worker, service("orders")],
            idle=[service("old\n")],  # the other colour is not documented: dropped without a word
        )
        code, err, report = build(capsys, tmp_path, "--from-env", "prod", "--ca-file", files.ca_file)

    assert code == 0, err
    assert [s["name"] for s in report["services"]] == ["orders"]
    assert report["services"][0]["status"] == "published"
    assert warning_of(err, "shop/'web\\n'") == "warning: shop/'web\\n': not usable as a URL segment, skipped"
    assert warning_of(err, "shop/'index'") == "warning: shop/'index': not usable as a URL segment, skipped"
    assert warning_of(err, "shop/'Web'") == "warning: shop/'Web': not usable as a URL segment, skipped"
    assert warning_of(err, "shop/'worker") == "warning: shop/'worker\\n': no auto.docs.* labels, not documented"
    assert "'old\\n'" not in err and "shop/'old" not in err
    assert warning_of(err, "shop/'pay'") == "warning: shop/'pay': version 'v1\\n' not usable as a URL segment, skipped"
    assert "/api/orders/v1/ping" in json.loads((tmp_path / "public" / "openapi.json").read_text())["paths"]


def test_a_reserved_name_in_a_manifest_is_bad_input_not_a_failed_site(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    write(tmp_path / "openapi.yaml", SPEC)
    write(tmp_path / "services.yml", "services:\n  - {name: index, version: v1, spec: openapi.yaml}\n")
    code, err, _ = build(capsys, tmp_path, "--manifest", str(tmp_path / "services.yml"))
    assert code == 2
    assert err == (
        f"Error: {tmp_path / 'services.yml'}: services[0]: name 'index' is reserved by the portal "
        "(its API landing page); rename it\n"
    )


# --------------------------------------------------------------------------------------------------------------
# 3. a page nested too deep for docutils/Sphinx


def _nested_rst_list(levels: int) -> str:
    """About 10 KB at 100 levels: a list inside a list inside... in an eval-rst block."""
    return "```{eval-rst}\n" + "".join("  " * i + f"- item {i}\n\n" for i in range(levels)) + "```\n"


def _nested_directives(levels: int) -> str:
    """MyST directives in directives: each fence one backtick longer than the one inside."""
    opening = "".join("`" * (3 + levels - i) + "{note}\n" for i in range(levels))
    return opening + "deepest\n" + "".join("`" * (4 + i) + "\n" for i in range(levels))


def test_a_page_nested_too_deep_becomes_a_notice_and_the_rest_is_published(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    docs = tmp_path / "deep" / "docs"
    pages = {
        "lists": "# Deep lists\n\n" + _nested_rst_list(100),  # the reported page: 10 KB, exit 5 before
        "stack": "# Out of stack\n\n" + _nested_rst_list(1000),  # parsing itself runs out of stack
        "notes": "# Deep notes\n\n" + _nested_directives(120),
        "fine": "# Fine\n\n" + _nested_rst_list(10) + "\nStill published.\n",
    }
    assert 10_000 < len(pages["lists"]) < 12_000
    for name, text in pages.items():
        write(docs / f"{name}.md", text)
    write(docs / "index.md", "# Deep\n\n```{toctree}\n" + "\n".join(pages) + "\n```\n")
    write(tmp_path / "deep" / "openapi.yaml", SPEC)
    write(tmp_path / "ok" / "docs" / "index.md", "# Ok\n\nThe other team's page.\n")
    write(
        tmp_path / "services.yml",
        "services:\n  - {name: deep, version: v1, docs: deep/docs, spec: deep/openapi.yaml}\n"
        "  - {name: ok, version: v1, docs: ok/docs, spec: deep/openapi.yaml}\n",
    )

    code, err, report = build(capsys, tmp_path, "--manifest", str(tmp_path / "services.yml"))

    assert code == 0, err
    assert {s["status"] for s in report["services"]} == {"published"}
    notice = f"page not published: nested deeper than {MAX_PAGE_DEPTH} levels"
    for name in ("lists", "stack", "notes"):
        line = warning_of(err, f"sphinx: {tmp_path / '.cache' / 'site' / 'src' / 'services' / 'deep' / name}.md")
        assert line.endswith(f"WARNING: {notice} [docgen.depth]"), line
    assert "Traceback" not in err and "recursion" not in err
    public = tmp_path / "public" / "services"
    for name, title in (("lists", "Deep lists"), ("stack", "Out of stack"), ("notes", "Deep notes")):
        page = (public / "deep" / f"{name}.html").read_text()
        assert notice in page and f"<h1>{title}" in page, name
        assert "item 99" not in page and "deepest" not in page
    assert "Still published." in (public / "deep" / "fine.html").read_text()
    assert "The other team's page." in (public / "ok" / "index.html").read_text()


# --------------------------------------------------------------------------------------------------------------
# 4. fetched docs and specs: size and time budgets


def _archive(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _trickle() -> Iterator[bytes]:
    """A valid spec, one byte every 100 ms: about 10 s in all, every read well within the read timeout."""
    for byte in SPEC.encode():
        time.sleep(0.1)
        yield bytes([byte])


def test_fetch_budgets_are_named_in_the_quarantine_reason(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Room for a quick answer on a loaded machine (the server shares the process), none for the slow ones.
    monkeypatch.setattr(sources, "FETCH_SECONDS", 3.0)
    monkeypatch.setattr(sources, "MAX_SPEC_BYTES", 1000)
    monkeypatch.setattr(sources, "MAX_DOCS_BYTES", 20_000)
    monkeypatch.setattr(sources, "MAX_ARCHIVE_BYTES", 100_000)
    monkeypatch.setattr(sources, "MAX_ARCHIVE_MEMBERS", 50)
    routes = {
        "/openapi.yaml": (200, SPEC.encode(), {}),
        "/docs.tar.gz": (200, _archive([("docs/index.md", b"# Fetched\n\nFrom the archive.\n")]), {}),
        "/trickle.yaml": (200, _trickle, {}),
        "/late.yaml": (200, SPEC.encode(), {HEADER_DELAY: "8"}),
        "/big.yaml": (200, b"x" * 5000, {}),
        "/endless.yaml": (200, lambda: iter([b"x" * 600] * 5), {}),  # no Content-Length: counted as it comes
        "/bomb.tar.gz": (200, _archive([("docs/index.md", b"# Bomb\n"), ("docs/zeros.bin", bytes(10_000_000))]), {}),
        "/many.tar.gz": (200, _archive([(f"docs/{i}.txt", b"") for i in range(100)]), {}),
        "/big.md": (200, b"# Big\n" + b"x" * 30_000, {}),
    }
    with https_files(tmp_path, routes) as files:
        url = files.url
        services = [
            {"name": "good", "version": "v1", "docs": f"{url}/docs.tar.gz", "spec": f"{url}/openapi.yaml"},
            {"name": "trickle", "version": "v1", "spec": f"{url}/trickle.yaml?token=s3cret"},
            {"name": "late", "version": "v1", "spec": f"{url}/late.yaml"},
            {"name": "big", "version": "v1", "spec": f"{url}/big.yaml"},
            {"name": "endless", "version": "v1", "spec": f"{url}/endless.yaml"},
            {"name": "bomb", "version": "v1", "docs": f"{url}/bomb.tar.gz", "spec": f"{url}/openapi.yaml"},
            {"name": "many", "version": "v1", "docs": f"{url}/many.tar.gz", "spec": f"{url}/openapi.yaml"},
            {"name": "bigpage", "version": "v1", "docs": f"{url}/big.md", "spec": f"{url}/openapi.yaml"},
        ]
        write(tmp_path / "services.yml", yaml.safe_dump({"services": services}))
        started = time.monotonic()
        code, err, report = build(
            capsys, tmp_path, "--manifest", str(tmp_path / "services.yml"), "--ca-file", files.ca_file
        )
        elapsed = time.monotonic() - started

    assert code == 0, err
    assert elapsed < 30, elapsed  # not the trickle's 10 s, the late answer's 8 s, nor a read timeout each
    status = {s["name"]: s["status"] for s in report["services"]}
    assert status == {
        "good": "published",
        "trickle": "quarantined",
        "late": "quarantined",
        "big": "quarantined",
        "endless": "quarantined",
        "bomb": "published",
        "many": "published",
        "bigpage": "published",
    }, err
    quarantined = "quarantined: spec not read"
    assert warning_of(err, "trickle:") == (
        f"warning: trickle: {quarantined}: {url}/trickle.yaml: took longer than the 3 s allowed for a fetch"
    )
    assert warning_of(err, "late:") == (
        f"warning: late: {quarantined}: {url}/late.yaml: took longer than the 3 s allowed for a fetch"
    )
    assert (
        warning_of(err, "big:")
        == f"warning: big: {quarantined}: {url}/big.yaml: 5000 bytes is more than the 1000 allowed"
    )
    assert warning_of(err, "endless:") == (
        f"warning: endless: {quarantined}: {url}/endless.yaml: more than the 1000 bytes allowed"
    )
    assert warning_of(err, "bomb:") == (
        f"warning: bomb: docs not read: {url}/bomb.tar.gz: the docs archive expands to more than the 100000 bytes "
        "allowed"
    )
    assert warning_of(err, "many:") == (
        f"warning: many: docs not read: {url}/many.tar.gz: the docs archive has more than the 50 members allowed"
    )
    assert warning_of(err, "bigpage:") == (
        f"warning: bigpage: docs not read: {url}/big.md: 30006 bytes is more than the 20000 allowed"
    )
    assert "s3cret" not in err
    assert "From the archive." in (tmp_path / "public" / "services" / "good" / "index.html").read_text()
