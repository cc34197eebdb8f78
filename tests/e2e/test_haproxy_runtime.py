"""The HAProxy runtime client against a real HAProxy on loopback, in front of two tiny servers."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from deployer.errors import HAProxyError
from deployer.haproxy import Runtime, render_config


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _app(colour: str) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):  # noqa: N802 - http.server's naming
            body = colour.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def haproxy(tmp_path):
    binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(binary).exists():
        if os.environ.get("CI") == "true":
            pytest.fail("haproxy is not installed (make test installs it)")
        pytest.skip("haproxy is not installed")
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
    subprocess.run([binary, "-W", "-D", "-p", str(pidfile), "-f", str(config)], check=True, capture_output=True)
    runtime = Runtime(str(tmp_path / "admin.sock"))
    deadline = time.monotonic() + 10
    while True:
        try:
            runtime.command("show info")
            break
        except HAProxyError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    yield {"runtime": runtime, "url": f"http://127.0.0.1:{front}/", "pidfile": pidfile, "state": tmp_path / "state"}
    os.kill(int(pidfile.read_text().split()[0]), signal.SIGTERM)
    blue.shutdown()
    green.shutdown()


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


def test_switch_traffic_with_the_runtime_api(haproxy) -> None:
    rt: Runtime = haproxy["runtime"]
    rt.wait_up("app", "blue", 10)
    assert get(haproxy["url"]) == "blue"
    rt.set_state("app", "green", "drain")
    assert rt.wait_up("app", "green", 10) > 0  # a real check had to pass first
    assert get(haproxy["url"]) == "blue"  # drain: checked, no traffic
    rt.set_state("app", "green", "ready")
    rt.set_state("app", "blue", "drain")
    assert rt.wait_drained("app", "blue", 10) >= 0
    rt.set_state("app", "blue", "maint")
    assert {get(haproxy["url"]) for _ in range(5)} == {"green"}
    admin = {name: s.admin for name, s in rt.servers("app").items()}
    assert admin == {"blue": "maint", "green": "ready", "dead": "maint"}


def test_a_dead_colour_never_counts_as_up(haproxy) -> None:
    rt: Runtime = haproxy["runtime"]
    rt.set_state("app", "dead", "drain")
    with pytest.raises(HAProxyError, match=r"^app/dead is not healthy after 1.5 s \(status DOWN"):
        rt.wait_up("app", "dead", 1.5)


def test_admin_state_survives_a_reload(haproxy) -> None:
    rt: Runtime = haproxy["runtime"]
    rt.set_state("app", "green", "ready")
    rt.set_state("app", "blue", "maint")
    rt.save_state(haproxy["state"])
    os.kill(int(haproxy["pidfile"].read_text().split()[0]), signal.SIGUSR2)
    time.sleep(1.0)
    admin = {name: s.admin for name, s in rt.servers("app").items()}
    assert admin["blue"] == "maint" and admin["green"] == "ready"


def test_errors_are_one_clear_line(haproxy, tmp_path) -> None:
    with pytest.raises(HAProxyError, match=r"^HAProxy refused 'set server app/purple state ready': No such server"):
        haproxy["runtime"].set_state("app", "purple", "ready")
    with pytest.raises(HAProxyError) as err:
        Runtime(str(tmp_path / "nothing.sock")).servers("app")
    assert str(err.value) == (
        f"HAProxy admin socket {tmp_path / 'nothing.sock'} is not answering (FileNotFoundError): is HAProxy running?"
    )
