"""The demo's pure parts: its progress lines, its commands as data, its v2 edits, the portal's catalogue reader."""

from __future__ import annotations

import io
import os
import signal
import sys
import time
from pathlib import Path

import pytest
import yaml

from autocore import runner
from deployer.errors import NotConvergedError
from deployer.lab import demo, demo_portal
from deployer.lab import demo_commands as cmd
from deployer.lab.demo_steps import Step, error_line, run_steps, step_failed, step_ok, step_start
from deployer.lab.load import Load
from docgen.sources import Fetcher, SourceError


def test_step_lines() -> None:
    assert step_start(3, 8, "deploy v1 to the live colour") == "[3/8] deploy v1 to the live colour ..."
    assert step_ok(12.34) == " ok (12.3 s)"
    assert step_ok(1.0, "blue: converged\x1b[2J") == " ok (1.0 s)\n      blue: converged\\x1b[2J"
    assert step_failed(0.04) == " failed (0.0 s)"
    assert error_line(5, "switch", "boom\nsecond line") == "Error: step 5 (switch): boom second line"


def test_run_steps_stops_at_the_first_failure_with_one_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    def fail() -> str:
        raise NotConvergedError("auto-deploy deploy exited 3: tasks keep failing")

    ran = []
    steps = [Step("one", lambda: "fine"), Step("two", fail), Step("three", lambda: ran.append(3) or "")]
    out = io.StringIO()
    code, results = run_steps(steps, out)
    assert code == 3 and ran == []
    assert [r.status for r in results] == ["ok", "failed"]
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("[1/3] one ... ok (") and lines[1] == "      fine"
    assert lines[2].startswith("[2/3] two ... failed (")
    assert capsys.readouterr().err == "Error: step 2 (two): auto-deploy deploy exited 3: tasks keep failing\n"


def test_run_steps_turns_an_os_error_into_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    def fail() -> str:
        raise FileNotFoundError(2, "No such file or directory")

    code, results = run_steps([Step("bake", fail)], io.StringIO())
    assert code == 1 and results[0].status == "failed"
    assert capsys.readouterr().err == "Error: step 1 (bake): FileNotFoundError: [Errno 2] No such file or directory\n"


def test_run_steps_reports_an_interruption_as_130(capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted() -> str:
        raise KeyboardInterrupt

    code, results = run_steps([Step("bake", interrupted)], io.StringIO())
    assert code == 130 and results[0].status == "interrupted"
    assert capsys.readouterr().err == "Error: step 1 (bake): interrupted\n"


def test_commands_are_exact() -> None:
    assert cmd.bake_argv("py", Path("/t"), Path("/w"), "https://127.0.0.1:9/demo-orders") == [
        "py", "-m", "cookiecutter", "--no-input", "--output-dir", "/w", "/t", "service_name=Demo Orders",
        "port=18080", "docs_url=https://127.0.0.1:9/demo-orders",
    ]  # fmt: skip
    assert cmd.tox_argv("tox", Path("/w/tox")) == ["tox", "-e", "test", "--workdir", "/w/tox"]
    assert cmd.spec_write_argv("py") == ["py", "-m", "demo_orders.openapi", "--write", "openapi.json"]
    assert cmd.deploy_argv("py", "idle", registry=True) == [
        "py", "-m", "deployer", "deploy", "--env", "lab", "--stack", "demo-orders", "--compose-file",
        "docker-stack.yml", "--compose-file", "docker-stack.lab.yml", "--colour", "idle", "--resolve-image", "never",
        "--rollback-on-failure", "--timeout", "180", "--json", "--with-registry-auth",
    ]  # fmt: skip
    assert "--with-registry-auth" not in cmd.deploy_argv("py", "live", registry=False)
    assert cmd.switch_argv("py") == ["py", "-m", "deployer", "switch", "--env", "lab", "--json"]
    assert cmd.switch_argv("py", to="blue") == [
        "py", "-m", "deployer", "switch", "--env", "lab", "--to", "blue", "--lock-wait", "60",
    ]  # fmt: skip
    assert cmd.docs_argv("py", Path("/w/m.yml"), Path("/w/p"), Path("/w/c"), "/ca.pem", Path("/w/r.json")) == [
        "py", "-m", "docgen", "build", "--manifest", "/w/m.yml", "--from-env", "lab", "--out", "/w/p",
        "--cache", "/w/c", "--ca-file", "/ca.pem", "--json-report", "/w/r.json",
    ]  # fmt: skip
    assert demo_portal.server_argv("py", Path("/p"), 18800, Path("/p.pid")) == [
        "py", "-m", "deployer.lab.demo_portal", "/p", "18800", "/p.pid",
    ]  # fmt: skip
    assert cmd.stack_env("auto-lab/demo-orders:2") == {"IMAGE": "auto-lab/demo-orders:2"}
    assert cmd.child_env({"PATH": "/bin", "VIRTUAL_ENV": "/v", "PYTHONPATH": "x", "TOX_ENV": "y"}, A="1") == {
        "PATH": "/bin", "A": "1",
    }  # fmt: skip


def test_lab_override_is_a_compose_file_for_the_service() -> None:
    override = yaml.safe_load(cmd.lab_override("3.8", 3))
    assert override["version"] == "3.8"
    service = override["services"]["demo-orders"]
    assert service["ports"] == [{"target": 18080, "published": 18080, "protocol": "tcp", "mode": "host"}]
    assert service["deploy"] == {"replicas": 3, "update_config": {"order": "stop-first", "monitor": "2s"}}
    assert service["healthcheck"]["interval"] == "2s"
    assert service["stop_grace_period"] == "2s"


def test_release_2_edits_apply_once_and_say_what_is_missing() -> None:
    files = {path: f"before {old} after" for path, old, _ in cmd.RELEASE_2}
    files["demo_orders/__init__.py"] = 'API_VERSION = "v1"\n__version__ = "0.1.0"\n'
    edited = cmd.apply_edits(files, cmd.RELEASE_2)
    assert edited["demo_orders/__init__.py"] == 'API_VERSION = "v2"\n__version__ = "0.2.0"\n'
    assert edited["docker-stack.yml"] == 'before auto.docs.version: "v2" after'
    with pytest.raises(ValueError, match=r"pyproject.toml: 'version = \"0.1.0\"' not found"):
        cmd.apply_edits({**files, "pyproject.toml": "version = '9'"}, cmd.RELEASE_2)


CATALOGUE = """<html><body><p>intro</p>
<table class="docutils align-default docgen-catalogue" id="service-catalogue"><caption>Services</caption>
<thead><tr><th class="head"><p>Service</p></th><th class="head"><p>Version</p></th><th class="head"><p>Status</p></th>
<th class="head"><p>Live colour</p></th><th class="head"><p>Last deployed (UTC)</p></th></tr></thead>
<tbody><tr><th class="stub"><p><a href="services/demo-orders/"><span>demo-orders</span></a></p></th><td><p>v2</p></td>
<td><p>published</p></td><td><p>green</p></td><td><p><code>2026-12-02T00:04:16Z</code></p></td></tr>
<tr><th class="stub"><p>orders</p></th><td><p>v1</p></td><td><p>quarantined: spec not read</p></td><td><p>green</p></td>
<td><p>x</p></td></tr></tbody></table><table><tr><td>other</td></tr></table></body></html>"""


def test_the_catalogue_is_read_from_the_portal_html() -> None:
    rows = demo_portal.catalogue_rows(CATALOGUE)
    assert rows[0] == ["Service", "Version", "Status", "Live colour", "Last deployed (UTC)"]
    assert len(rows) == 3  # not the other table's row
    row = demo_portal.service_row(CATALOGUE, "demo-orders")
    assert row == {
        "service": "demo-orders", "version": "v2", "status": "published", "live colour": "green",
        "last deployed (utc)": "2026-12-02T00:04:16Z",
    }  # fmt: skip
    demo.check_row(row, "v2", "green")
    with pytest.raises(NotConvergedError, match="not demo-orders v2 live on blue"):
        demo.check_row(row, "v2", "blue")
    assert demo_portal.service_row(CATALOGUE, "billing") is None
    assert demo_portal.service_row("<html></html>", "demo-orders") is None


def test_portal_manifest_names_the_guide_and_the_state_service(tmp_path: Path) -> None:
    manifest = yaml.safe_load(demo_portal.portal_manifest(Path("/repo")))
    assert manifest["guide"] == "/repo/docgen/toolkit-docs/guide"
    assert [s["name"] for s in manifest["services"]] == ["state"]
    assert manifest["services"][0]["spec"] == "/repo/deployer/state/contract.yaml"
    assert demo_portal.portal_port({}) == 18800 and demo_portal.portal_port({"AUTO_LAB_DEMO_PORTAL_PORT": "9"}) == 9
    with pytest.raises(ValueError, match="not a port number"):
        demo_portal.portal_port({"AUTO_LAB_DEMO_PORTAL_PORT": "0x10"})


def test_api_version_and_last_error() -> None:
    assert demo.api_version('{"info": {"version": "v2"}}') == "v2"
    with pytest.raises(ValueError, match="not an OpenAPI document"):
        demo.api_version("<html>")
    assert demo.last_error("[0.1s] waiting\nError: tasks keep failing\nrolled back\n") == "tasks keep failing"
    assert demo.last_error("one\ntwo\n") == "two"
    assert demo.last_error("") == "(no output)"


def test_load_labels_answers_and_refuses_other_hosts() -> None:
    with pytest.raises(ValueError, match="loopback"):
        Load("http://10.0.0.1/")
    assert Load("http://127.0.0.1:1/x", label=demo.api_version).label is demo.api_version


def test_docs_fetch_hosts_keeps_auto_docs_off_other_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTO_DOCS_FETCH_HOSTS", "127.0.0.1")
    with pytest.raises(SourceError, match="not fetched, its host is not in AUTO_DOCS_FETCH_HOSTS"):
        Fetcher().get("https://auto.pages.example.com/orders/openapi.json", 100)


def test_an_interrupted_command_gets_one_sigint_and_time_to_unwind(tmp_path: Path) -> None:
    # The child records the SIGINT it gets, takes a moment to "release its lock", and exits 130.
    script = (
        "import signal, sys, time\n"
        "def stop(*_):\n"
        "    time.sleep(0.5); open(sys.argv[1], 'a').write('unwound\\n'); sys.exit(130)\n"
        "signal.signal(signal.SIGINT, stop)\n"
        "print('ready', flush=True); time.sleep(30)\n"
    )
    marker = tmp_path / "marker"
    out, err = tmp_path / "out", tmp_path / "err"
    argv = [sys.executable, "-c", script, str(marker)]

    def interrupt_soon(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt_soon)
    try:
        signal.setitimer(signal.ITIMER_REAL, 1.0)
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            runner.execute_interruptible(argv, stdout=out, stderr=err, timeout=30, grace=10)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert marker.read_text() == "unwound\n"  # one SIGINT, and it was waited for
    assert time.monotonic() - started < 10
    proc = runner.execute_interruptible([sys.executable, "-c", "print('hi')"], stdout=out, stderr=err)
    assert (proc.returncode, proc.stdout) == (0, "hi\n")
    with pytest.raises(runner.ProgramNotFoundError):
        runner.execute_interruptible(["/nonexistent/x"], stdout=out, stderr=err)


def test_the_portal_server_serves_and_stops_when_its_pid_file_goes(tmp_path: Path) -> None:
    import socket
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    site, pid_file, log = tmp_path / "portal", tmp_path / "portal.pid", tmp_path / "server.log"
    site.mkdir()
    (site / "index.html").write_text("<p>demo-orders</p>")
    demo_portal.start_server(sys.executable, site, port, pid_file, log)
    pid = int(pid_file.read_text())
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
        assert response.read() == b"<p>demo-orders</p>"
    pid_file.unlink()  # what make lab-down does to the demo directory
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        try:  # reap it: it is our child here
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            break
        time.sleep(0.1)
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
