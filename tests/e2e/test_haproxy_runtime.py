"""The HAProxy runtime client against a real HAProxy on loopback, in front of two tiny servers.

Each test starts its own HAProxy from ``render_config`` on free ports in tmp_path (never the lab's),
with two Python HTTP servers on 127.0.0.1 as the colours. Every loop is bounded.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from deployer.errors import HAProxyError
from deployer.haproxy import Runtime, render_config
from tests.support import haproxy_binary

pytestmark = pytest.mark.system  # runs Debian's haproxy


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _app(colour: str) -> ThreadingHTTPServer:
    """Answers its colour on every path, after 1 s on /slow; /health is 200 like any path."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive towards HAProxy

        def do_GET(self):  # noqa: N802 - http.server's naming
            if self.path == "/slow":
                time.sleep(1.0)
            body = colour.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request, client_address):  # HAProxy's checks close with a reset: not news
            pass

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def haproxy(tmp_path):
    binary = haproxy_binary()
    blue, green = _app("blue"), _app("green")
    front = _free_port()
    config = tmp_path / "haproxy.cfg"
    context = {
        "frontend_bind": f"127.0.0.1:{front}",
        "admin_socket": str(tmp_path / "admin.sock"),
        "state_file": str(tmp_path / "state"),
        "servers": [
            {"name": "blue", "address": "127.0.0.1", "port": blue.server_address[1], "enabled": True},
            {"name": "green", "address": "127.0.0.1", "port": green.server_address[1], "enabled": False},
            {"name": "dead", "address": "127.0.0.1", "port": _free_port(), "enabled": False},
        ],
    }
    config.write_text(render_config(context))
    pidfile = tmp_path / "pid"
    subprocess.run(
        [binary, "-W", "-D", "-p", str(pidfile), "-f", str(config)], check=True, capture_output=True, timeout=30
    )
    runtime = Runtime(str(tmp_path / "admin.sock"))
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                runtime.command("show info")
                break
            except HAProxyError:
                assert time.monotonic() < deadline, "HAProxy did not open its admin socket within 10 s"
                time.sleep(0.05)
        yield {
            "runtime": runtime,
            "port": front,
            "url": f"http://127.0.0.1:{front}/",
            "pidfile": pidfile,
            "state": tmp_path / "state",
            "apps": {"blue": blue, "green": green},
        }
    finally:
        master = int(pidfile.read_text().split()[0])
        with contextlib.suppress(ProcessLookupError):
            os.kill(master, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and Path(f"/proc/{master}").exists():
            time.sleep(0.05)
        blue.shutdown()
        green.shutdown()


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


def admin(rt: Runtime) -> dict[str, str]:
    return {name: s.admin for name, s in rt.servers("app").items()}


def test_switch_traffic_with_the_runtime_api(haproxy) -> None:
    rt: Runtime = haproxy["runtime"]
    rt.wait_up("app", "blue", 10)
    assert admin(rt) == {"blue": "ready", "green": "maint", "dead": "maint"}
    assert get(haproxy["url"]) == "blue"
    rt.set_state("app", "green", "drain")
    assert admin(rt)["green"] == "drain"
    assert rt.wait_up("app", "green", 10) > 0  # a real check had to pass first
    assert rt.server("app", "green").status == "DRAIN"
    assert {get(haproxy["url"]) for _ in range(5)} == {"blue"}  # drain: checked, no traffic
    rt.set_state("app", "green", "ready")
    rt.set_state("app", "blue", "drain")
    assert admin(rt) == {"blue": "drain", "green": "ready", "dead": "maint"}
    assert rt.wait_drained("app", "blue", 10) >= 0
    rt.set_state("app", "blue", "maint")
    assert {get(haproxy["url"]) for _ in range(5)} == {"green"}
    assert admin(rt) == {"blue": "maint", "green": "ready", "dead": "maint"}


def test_a_dead_colour_never_counts_as_up(haproxy) -> None:
    rt: Runtime = haproxy["runtime"]
    rt.set_state("app", "dead", "drain")
    with pytest.raises(HAProxyError, match=r"^app/dead is not healthy after 1.5 s \(status DOWN, check L4CON\)"):
        rt.wait_up("app", "dead", 1.5)
    assert admin(rt)["dead"] == "drain"  # show stat only says DOWN; the admin bits say drain


def test_wait_drained_waits_for_the_request_in_flight(haproxy) -> None:
    rt: Runtime = haproxy["runtime"]
    rt.wait_up("app", "blue", 10)
    rt.set_state("app", "green", "drain")
    rt.wait_up("app", "green", 10)
    # A keep-alive client connection: one slow request in flight on blue, then more on the same connection.
    conn = http.client.HTTPConnection("127.0.0.1", haproxy["port"], timeout=10)
    answers: list[str] = []

    def slow() -> None:
        conn.request("GET", "/slow")
        answers.append(conn.getresponse().read().decode())

    thread = threading.Thread(target=slow)
    thread.start()
    deadline = time.monotonic() + 5
    while rt.server("app", "blue").scur == 0:
        assert time.monotonic() < deadline, "the slow request never reached blue"
        time.sleep(0.02)
    rt.set_state("app", "green", "ready")
    rt.set_state("app", "blue", "drain")
    waited = rt.wait_drained("app", "blue", 10)
    thread.join(5)
    assert 0.3 < waited < 5 and answers == ["blue"]  # it finished on blue, nothing was cut
    rt.set_state("app", "blue", "maint")
    for _ in range(3):  # the same client connection now lands on green
        conn.request("GET", "/")
        assert conn.getresponse().read().decode() == "green"
    conn.close()
    with pytest.raises(HAProxyError, match=r"^app/green still has 1 session\(s\) after 0.3 s$"):
        thread = threading.Thread(target=lambda: get(haproxy["url"] + "slow"))
        thread.start()
        deadline = time.monotonic() + 5
        while rt.server("app", "green").scur == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        try:
            rt.wait_drained("app", "green", 0.3)
        finally:
            thread.join(5)


def test_switch_under_load_fails_no_request(haproxy) -> None:
    rt: Runtime = haproxy["runtime"]
    rt.wait_up("app", "blue", 10)
    stop = threading.Event()
    results: dict[str, int] = {"blue": 0, "green": 0, "failed": 0}

    def load() -> None:
        with requests.Session() as session:  # keep-alive client, loopback only, bounded by `stop` and a deadline
            deadline = time.monotonic() + 20
            while not stop.is_set() and time.monotonic() < deadline:
                try:
                    answer = session.get(haproxy["url"], timeout=5)
                    results[answer.text if answer.status_code == 200 else "failed"] += 1
                except requests.RequestException:
                    results["failed"] += 1

    threads = [threading.Thread(target=load) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.5)
        rt.set_state("app", "green", "drain")
        rt.wait_up("app", "green", 10)
        rt.set_state("app", "green", "ready")
        rt.set_state("app", "blue", "drain")
        rt.wait_drained("app", "blue", 10)
        rt.set_state("app", "blue", "maint")
        haproxy["apps"]["blue"].shutdown()  # the old colour goes away, with HAProxy's idle connections to it
        haproxy["apps"]["blue"].server_close()
        time.sleep(0.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
    assert results["failed"] == 0, results
    assert results["blue"] > 0 and results["green"] > 0, results


def test_admin_state_survives_a_reload(haproxy) -> None:
    rt: Runtime = haproxy["runtime"]
    rt.set_state("app", "green", "ready")
    rt.set_state("app", "blue", "maint")
    rt.set_state("app", "dead", "drain")
    before = rt.worker_pid()
    rt.save_state(haproxy["state"])
    assert haproxy["state"].read_text().startswith("1\n# be_id be_name")
    # At once: a master that just started drops an early SIGUSR2, reload() sends it again.
    assert rt.reload(int(haproxy["pidfile"].read_text().split()[0]), timeout=10) < 10
    assert rt.worker_pid() != before
    assert admin(rt) == {"blue": "maint", "green": "ready", "dead": "drain"}
    rt.wait_up("app", "green", 10)
    assert get(haproxy["url"]) == "green"


def test_errors_are_one_clear_line(haproxy, tmp_path) -> None:
    rt: Runtime = haproxy["runtime"]
    with pytest.raises(HAProxyError, match=r"^HAProxy refused 'set server app/purple state ready': No such server"):
        rt.set_state("app", "purple", "ready")
    with pytest.raises(HAProxyError, match=r"^HAProxy refused 'set server web/blue state ready': No such backend"):
        rt.set_state("web", "blue", "ready")
    assert rt.command("bogus").startswith("Unknown command")
    with pytest.raises(HAProxyError) as err:
        Runtime(str(tmp_path / "nothing.sock")).servers("app")
    assert str(err.value) == f"HAProxy admin socket {tmp_path / 'nothing.sock'} is not answering: is HAProxy running?"


def test_a_stopped_haproxy_is_not_answering(tmp_path) -> None:
    binary = haproxy_binary()
    context = {
        "frontend_bind": f"127.0.0.1:{_free_port()}",
        "admin_socket": str(tmp_path / "admin.sock"),
        "state_file": str(tmp_path / "state"),
        "servers": [{"name": "blue", "address": "127.0.0.1", "port": _free_port(), "enabled": True}],
    }
    (tmp_path / "haproxy.cfg").write_text(render_config(context))
    proc = subprocess.Popen(
        [binary, "-W", "-f", str(tmp_path / "haproxy.cfg")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    rt = Runtime(f"unix:{tmp_path / 'admin.sock'}")
    try:
        deadline = time.monotonic() + 10
        while not (tmp_path / "admin.sock").exists():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        rt.command("show info")
    finally:
        proc.kill()  # no clean shutdown: the socket file stays behind, nobody listens
        proc.wait(10)
    worker_gone = time.monotonic() + 5
    while time.monotonic() < worker_gone:
        try:
            rt.command("show info")
        except HAProxyError as exc:
            assert str(exc) == f"HAProxy admin socket {tmp_path / 'admin.sock'} is not answering: is HAProxy running?"
            break
        time.sleep(0.05)
    else:
        pytest.fail("the admin socket still answered 5 s after HAProxy was killed")


@pytest.mark.lab
def test_lab_haproxy_routes_to_the_live_colour(lab) -> None:
    """After ``lab.up()``: HAProxy answers on its admin socket, the live colour ready, the idle one maint."""
    from deployer.lab import front
    from deployer.lab import lab as lab_module

    live = requests.get(
        f"{lab.env['AUTO_STATE_URL']}/v1/environments/lab", verify=lab.env["AUTO_STATE_CA"], timeout=10
    ).json()["live_colour"]
    idle = "green" if live == "blue" else "blue"
    rt = Runtime(lab.env["AUTO_HAPROXY_SOCKET"])
    assert lab.env["AUTO_HAPROXY_BACKEND"] == "app"
    assert lab.env["AUTO_LAB_FRONT_URL"] == f"http://127.0.0.1:{front.front_port()}"
    stats = rt.servers("app")
    assert {name: s.admin for name, s in stats.items()} == {live: "ready", idle: "maint"}
    status = lab_module.status()["haproxy"]
    assert status["status"] == "up" and status["servers"][live]["admin"] == "ready"
    # Nothing changed: making sure again neither restarts nor reloads it.
    before = rt.worker_pid()
    root = Path(lab.info["lab_dir"])
    addresses = {colour: spec["manager_address"] for colour, spec in lab.info["clusters"].items()}
    assert front.ensure(root, addresses, live, front.front_port()) is None
    assert rt.worker_pid() == before
