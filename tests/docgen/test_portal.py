"""`auto-docs build` and `auto-docs merge` end to end, through the command line, on the toolkit's own
sample portal (docgen/toolkit-docs) and on an environment served by the real environment-state service."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from deployer.state.client import StateClient
from deployer.state.server import make_server
from docgen.cli import main
from docgen.validate import validate
from tests.docgen.servers import https_files

SAMPLES = Path(__file__).resolve().parents[2] / "docgen" / "toolkit-docs"
CONTRACT = Path(__file__).resolve().parents[2] / "deployer" / "state" / "contract.yaml"


@pytest.fixture
def samples(tmp_path: Path) -> Path:
    """A copy of the toolkit's sample portal (the state contract copied in) that a test may change."""
    root = tmp_path / "portal"
    shutil.copytree(SAMPLES, root)
    shutil.copyfile(CONTRACT, root / "contract.yaml")
    manifest = root / "services.yml"
    manifest.write_text(manifest.read_text().replace("../../deployer/state/contract.yaml", "contract.yaml"))
    return root


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def build(capsys: pytest.CaptureFixture[str], root: Path, *extra: str) -> tuple[int, str, dict[str, Any]]:
    report = root / "report.json"
    code, _, err = run(
        capsys,
        "build",
        "--manifest",
        str(root / "services.yml"),
        "--out",
        str(root / "public"),
        "--cache",
        str(root / ".cache"),
        "--json-report",
        str(report),
        *extra,
    )
    return code, err, json.loads(report.read_text()) if report.exists() else {}


def site_text(public: Path) -> str:
    return "\n".join(
        p.read_text(errors="replace") for p in public.rglob("*") if p.suffix in (".html", ".json", ".yaml")
    )


def test_build_publishes_valid_services_and_quarantines_the_broken_one(capsys, samples: Path) -> None:
    code, err, report = build(capsys, samples)
    assert code == 0, err
    status = {s["name"]: s["status"] for s in report["services"]}
    assert status == {"state": "published", "orders": "published", "billing": "published", "inventory": "quarantined"}
    inventory = next(s for s in report["services"] if s["name"] == "inventory")
    rules = sorted({i["rule"] for i in inventory["issues"]})
    assert rules == ["multiple-body", "schema"]
    assert "4 service(s): 3 published, 1 quarantined, 0 docs only" in err
    assert "warning: inventory: quarantined: the spec has 2 validation error(s):" in err

    public = samples / "public"
    merged = json.loads((public / "openapi.json").read_text())
    assert yaml.safe_load((public / "openapi.yaml").read_text()) == merged
    assert validate(merged, service="merged", source="openapi.json") == []
    assert "/api/orders/v1/orders/{orderId}" in merged["paths"]
    assert merged["paths"]["/api/v1/orders/orders"]["get"]["deprecated"] is True
    assert "/api/billing/v2/invoices/{invoiceId}/receipt" in merged["paths"]
    assert not [p for p in merged["paths"] if p.startswith("/api/inventory/")]
    # The quarantined service's page is published, with the notice saying why.
    page = (public / "services" / "inventory" / "index.html").read_text()
    assert "API reference not published" in page
    assert "has 2 body parameters" in page
    # Scrubbed: no internal host or repository anywhere in the published site.
    assert "auto.internal" not in site_text(public)
    assert {r["rule"] for s in report["services"] for r in s["scrubbed"]} == {"internal-gitlab", "internal-hosts"}


def test_strict_refuses_and_publishes_nothing(capsys, samples: Path) -> None:
    code, err, report = build(capsys, samples, "--strict")
    assert code == 3
    assert "Error: --strict: " in err
    assert not (samples / "public").exists()
    assert report["exit_code"] == 3


def test_rebuild_after_one_change_redoes_only_that_service(capsys, samples: Path) -> None:
    assert build(capsys, samples)[0] == 0
    code, err, report = build(capsys, samples)
    assert code == 0
    assert all(s["cached"] for s in report["services"] if s["status"] != "docs-only")
    public = samples / "public"
    unchanged, changed = public / "services" / "orders" / "index.html", public / "services" / "billing" / "index.html"
    inodes = (unchanged.stat().st_ino, changed.stat().st_ino)
    spec = samples / "samples" / "billing" / "swagger.yaml"
    spec.write_text(spec.read_text().replace("Invoices and payments.", "Invoices, payments and refunds."))
    (samples / "samples" / "billing" / "docs" / "index.md").write_text("# Billing\n\nNow with refunds.\n")
    code, err, report = build(capsys, samples)
    assert code == 0
    assert {s["name"]: s["cached"] for s in report["services"]} == {
        "state": True,
        "orders": True,
        "billing": False,
        "inventory": True,
    }
    match = err.split("site written to ")[1]
    rebuilt = int(match.split("(")[1].split(" ")[0])
    assert 1 <= rebuilt <= 4, err  # billing's page and API page, the API landing page: not the whole site
    assert "Now with refunds." in changed.read_text()
    # Publishing links what Sphinx did not rewrite from the previous site and copies the rest.
    assert unchanged.stat().st_ino == inodes[0]
    assert changed.stat().st_ino != inodes[1]
    assert "Invoices, payments and refunds." in (samples / "public" / "api" / "billing.html").read_text()


def test_merge_writes_json_or_yaml(capsys, samples: Path) -> None:
    out = samples / "merged.yaml"
    code, _, err = run(capsys, "merge", "--manifest", str(samples / "services.yml"), "--out", str(out))
    assert code == 0, err
    assert yaml.safe_load(out.read_text())["openapi"] == "3.1.0"
    code, _, err = run(capsys, "merge", "--manifest", str(samples / "services.yml"), "--out", str(samples / "x.txt"))
    assert code == 2
    assert err == "Error: --out " + str(samples / "x.txt") + ": name the merged spec .json, .yaml or .yml\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["build"], "Error: nothing to build: pass --manifest services.yml or --from-env ENV\n"),
        (["build", "--manifest", "/nonexistent/services.yml"], "does not exist: check the path\n"),
        (["build", "--from-env", "prod"], "AUTO_STATE_URL is not set"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, monkeypatch, argv: list[str], message: str) -> None:
    monkeypatch.delenv("AUTO_STATE_URL", raising=False)
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert message in err
    assert err.count("\n") == 1 and err.startswith("Error: ")


def _docs_archive() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in (("docs/index.md", b"# Payments\n\nHow to pay.\n"), ("docs/faq.md", b"# FAQ\n")):
            info = tarfile.TarInfo(name)
            info.size = len(text)
            archive.addfile(info, io.BytesIO(text))
    return buffer.getvalue()


def test_build_from_environment(capsys, monkeypatch, tmp_path: Path) -> None:
    payments = {
        "openapi": "3.0.3",
        "info": {"title": "Payments", "version": "3.0.0"},
        "paths": {"/pay": {"post": {"operationId": "pay", "responses": {"204": {"description": "Paid."}}}}},
    }
    routes = {
        "/payments/openapi.json": (200, json.dumps(payments).encode(), {}),
        "/payments/docs.tar.gz": (200, _docs_archive(), {}),
    }
    server = make_server(str(tmp_path / "state.db"), "127.0.0.1", 0, "tok", None, None)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        state_url = f"http://127.0.0.1:{server.server_address[1]}"
        client = StateClient(state_url, token="tok", retries=0)
        client.put_environment("prod", "green", {"blue": ("10.0.0.1", 2376), "green": ("10.0.0.2", 2376)})
        with https_files(tmp_path, routes) as docs:
            for colour, spec in (("green", "/payments/openapi.json"), ("blue", "/gone.json")):
                client.record_deployment(
                    "prod",
                    colour=colour,
                    stack="shop",
                    services=[
                        {
                            "name": "payments",
                            "image": "shop/payments:3",
                            "replicas": 2,
                            "docs": {
                                "version": "v3",
                                "spec_url": docs.url + spec,
                                "docs_url": docs.url + "/payments/docs.tar.gz",
                            },
                        },
                        {"name": "worker", "image": "shop/worker:1", "replicas": 1},
                    ],
                    compose=[],
                    result="succeeded",
                    actor="ci",
                )
            monkeypatch.setenv("AUTO_STATE_URL", state_url)
            out = tmp_path / "public"
            code, _, err = run(
                capsys,
                "build",
                "--from-env",
                "prod",
                "--out",
                str(out),
                "--cache",
                str(tmp_path / "cache"),
                "--ca-file",
                docs.ca_file,
            )
            assert code == 0, err
            assert "shop/worker: no auto.docs.* labels, not documented" in err
            assert "/gone.json" not in docs.asked  # only the live colour (green) is documented
        merged = json.loads((out / "openapi.json").read_text())
        assert list(merged["paths"]) == ["/api/payments/v3/pay"]
        assert "How to pay." in (out / "services" / "payments" / "index.html").read_text()

        server.shutdown()
        server.server_close()  # now nothing listens there
        monkeypatch.setenv("AUTO_STATE_RETRIES", "0")
        code, _, err = run(capsys, "build", "--from-env", "prod", "--out", str(tmp_path / "p2"))
        assert code == 4
        assert err.startswith("Error: ") and err.count("\n") == 1
        assert not (tmp_path / "p2").exists()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


HOSTILE_SPECS = {
    # name: (file, text, the one-line reason the quarantine notice gives)
    "deep": ("deep.yaml", "openapi: 3.0.3\nx-deep: " + "[" * 500 + "]" * 500 + "\n", "nested deeper than 128 levels"),
    "deepjson": ("deep.json", "[" * 1000 + "]" * 1000, "nested deeper than 128 levels"),
    "bigint": ("big.yaml", "openapi: 3.0.3\nx-n: " + "9" * 5000 + "\n", "an integer of 5000 digits"),
    "nan": ("nan.json", '{"openapi": "3.0.3", "x-max": NaN}', "the number NaN is not finite"),
    "huge": ("huge.yaml", "openapi: 3.0.3\nx-max: 1e999\n", "the number 1e999 is not finite"),
    "bomb": (
        "bomb.yaml",
        "a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n"
        + "".join(f"{b}: &{b} [{','.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi", strict=True)),
        "more than 500000 nodes (YAML aliases expanded)",
    ),
}


def test_one_teams_hostile_spec_costs_only_that_team_its_reference(capsys, samples: Path) -> None:
    manifest = yaml.safe_load((samples / "services.yml").read_text())
    for name, (file, text, _) in HOSTILE_SPECS.items():
        (samples / file).write_text(text)
        manifest["services"].append({"name": name, "version": "v1", "spec": file})
    (samples / "services.yml").write_text(yaml.safe_dump(manifest))

    code, err, report = build(capsys, samples)

    assert code == 0, err
    status = {s["name"]: s["status"] for s in report["services"]}
    assert {n: status[n] for n in ("state", "orders", "billing")} == dict.fromkeys(
        ("state", "orders", "billing"), "published"
    )
    for name, (_, _, reason) in HOSTILE_SPECS.items():
        assert status[name] == "quarantined", name
        lines = [line for line in err.splitlines() if line.startswith(f"warning: {name}: quarantined")]
        assert len(lines) == 1 and reason in lines[0], (name, err)
    assert "Traceback" not in err
    public = samples / "public"

    def refuse(constant: str) -> None:
        raise AssertionError(f"openapi.json holds {constant}")

    merged = json.loads((public / "openapi.json").read_text(), parse_constant=refuse)
    assert "/api/orders/v1/orders/{orderId}" in merged["paths"]
    assert (public / "services" / "bomb" / "index.html").exists()


def test_a_warm_merge_writes_the_kept_bytes_and_rebuilds_what_it_cannot_read(capsys, samples: Path) -> None:
    cache = samples / ".cache"
    out = samples / "merged.json"
    argv = ["merge", "--manifest", str(samples / "services.yml"), "--out", str(out), "--cache", str(cache)]
    assert main(argv) == 0
    first = out.read_bytes()
    for entry in (cache / "merged").iterdir():
        entry.write_text("not JSON")  # a warm merge must not need the document itself
    out.unlink()
    assert main(argv) == 0
    assert out.read_bytes() == first
    shutil.rmtree(cache / "rendered")  # now it does: the unreadable entry is a miss, and the merge is redone
    out.unlink()
    assert main(argv) == 0
    assert out.read_bytes() == first
    capsys.readouterr()
