"""The lab's HAProxy: on loopback in front of the published app port (18080) of every node of both colours.

Configuration from templates/haproxy.cfg.j2, one server per node (a host-mode port answers on the node that
runs the task; HAProxy's checks find which); the live colour's servers enabled, the idle one's in
maintenance. A changed configuration is reloaded (SIGUSR2 to the master) after the admin state
was saved to the server-state file, so a switch's state survives ``lab up``. Its commands (a config
check, the daemonizing start) go through :mod:`deployer.lab.runner`.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from deployer.errors import ConfigError, DeployerError
from deployer.haproxy import Runtime, render_config
from deployer.lab.runner import install_hint, run

HAPROXY_BINARY = "/usr/sbin/haproxy"  # Debian's; /usr/sbin is not always in PATH
START_TIMEOUT = 30.0  # `haproxy -D` returns once the master has forked into the background
BACKEND = "app"
APP_PORT = 18080
DEFAULT_FRONT_PORT = 18000


def front_port(environ: Any = None) -> int:
    """The front's port on 127.0.0.1 (AUTO_LAB_FRONT_PORT, default 18000)."""
    value = (os.environ if environ is None else environ).get("AUTO_LAB_FRONT_PORT", str(DEFAULT_FRONT_PORT))
    try:
        port = int(value)
    except ValueError:
        raise ConfigError(f"AUTO_LAB_FRONT_PORT={value!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise ConfigError(f"AUTO_LAB_FRONT_PORT={port} is out of range")
    return port


class FrontPaths:
    """The HAProxy files under the lab directory."""

    def __init__(self, lab_root: Path) -> None:
        self.root = lab_root / "haproxy"
        self.config = self.root / "haproxy.cfg"
        self.socket = self.root / "admin.sock"
        self.state = self.root / "server-state"
        self.pid = self.root / "haproxy.pid"
        self.log = self.root / "haproxy.log"


Servers = Mapping[str, "str | Sequence[tuple[str, str]]"]


def colour_nodes(servers: Servers) -> dict[str, list[tuple[str, str]]]:
    """``{colour: [(server name, address), ...]}``; a colour given as one address is one server named for it."""
    return {colour: [(colour, nodes)] if isinstance(nodes, str) else list(nodes) for colour, nodes in servers.items()}


def config_context(paths: FrontPaths, servers: Servers, live: str, port: int) -> dict[str, Any]:
    """What the template needs: every colour's servers (an address, or ``(name, address)`` per node), the live
    colour's enabled."""
    return {
        "frontend_bind": f"127.0.0.1:{port}",
        "backend": BACKEND,
        "admin_socket": str(paths.socket),
        "state_file": str(paths.state),
        "servers": [
            {"name": name, "address": address, "port": APP_PORT, "enabled": colour == live}
            for colour, nodes in colour_nodes(servers).items()
            for name, address in nodes
        ],
    }


def haproxy_argv(paths: FrontPaths, haproxy: str = "haproxy") -> list[str]:
    """Master-worker HAProxy, daemonised, with its pidfile (the master's pid)."""
    return [haproxy, "-W", "-D", "-p", str(paths.pid), "-f", str(paths.config)]


def check_argv(config: Path, haproxy: str = "haproxy") -> list[str]:
    """Validate a configuration file without starting anything."""
    return [haproxy, "-c", "-q", "-f", str(config)]


def find_haproxy() -> str:
    """The haproxy binary: on PATH, else Debian's; ConfigError saying what to install."""
    haproxy = shutil.which("haproxy") or (HAPROXY_BINARY if Path(HAPROXY_BINARY).exists() else None)
    if haproxy is None:
        raise ConfigError(f"haproxy not found: {install_hint('haproxy')}")
    return haproxy


def _pid(paths: FrontPaths) -> int | None:
    try:
        pid = int(paths.pid.read_text().split()[0])
        os.kill(pid, 0)
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return None
    return pid if b"haproxy" in cmdline and str(paths.config).encode() in cmdline else None


def _answering(paths: FrontPaths) -> bool:
    try:
        Runtime(str(paths.socket), timeout=1.0).command("show info")
    except DeployerError:
        return False
    return True


def _wait_answering(paths: FrontPaths, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not _answering(paths):
        if time.monotonic() > deadline:
            raise DeployerError(f"HAProxy did not answer on {paths.socket} within {timeout:g} s: see {paths.log}")
        time.sleep(0.05)


def ensure(lab_root: Path, servers: Servers, live: str, port: int) -> str | None:
    """Start HAProxy, or reload it when its configuration changed; returns what was done, if anything."""
    haproxy = find_haproxy()
    paths = FrontPaths(lab_root)
    paths.root.mkdir(parents=True, exist_ok=True)
    text = render_config(config_context(paths, servers, live, port))
    pid = _pid(paths)
    if pid and paths.config.exists() and paths.config.read_text() == text and _answering(paths):
        return None
    candidate = paths.root / "haproxy.cfg.new"
    candidate.write_text(text)
    check = run(check_argv(candidate, haproxy), check=False)
    if check.returncode != 0:
        raise DeployerError(f"the rendered HAProxy config is invalid: {(check.stderr or check.stdout).strip()[:300]}")
    if pid and _answering(paths):
        Runtime(str(paths.socket)).save_state(paths.state)  # admin state (after a switch) survives
        os.replace(candidate, paths.config)
        try:
            Runtime(str(paths.socket)).reload(pid)  # waits for the new worker; resends a dropped signal
            return "reloaded HAProxy"
        except DeployerError as exc:
            # The admin state is saved already: a fresh start loads it as a reload would.
            stop(lab_root)
            _start(paths, haproxy)
            return f"restarted HAProxy (reload failed: {exc})"
    if pid:
        os.kill(pid, signal.SIGKILL)
    os.replace(candidate, paths.config)
    _start(paths, haproxy)
    return "started HAProxy"


def _start(paths: FrontPaths, haproxy: str) -> None:
    # -D daemonizes: its output goes to the log file, a pipe would stay open as long as HAProxy runs.
    run(haproxy_argv(paths, haproxy), log=paths.log, timeout=START_TIMEOUT)
    _wait_answering(paths)


def stop(lab_root: Path) -> None:
    """Stop HAProxy (master and workers); idempotent."""
    paths = FrontPaths(lab_root)
    pid = _pid(paths)
    if pid is None:
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _pid(paths):
        time.sleep(0.05)
    if _pid(paths):
        os.kill(pid, signal.SIGKILL)


def status(lab_root: Path) -> dict[str, Any]:
    """Whether HAProxy answers, and its servers' admin state."""
    paths = FrontPaths(lab_root)
    if not _answering(paths):
        return {"status": "down", "pid": _pid(paths)}
    servers = Runtime(str(paths.socket)).servers(BACKEND)
    return {
        "status": "up",
        "pid": _pid(paths),
        "url": f"http://127.0.0.1:{front_port()}",
        "servers": {name: {"admin": s.admin, "status": s.status} for name, s in servers.items()},
    }


def env_values(lab_root: Path, environ: Any = None) -> dict[str, str]:
    """The variables that point the switch and the load at the lab's HAProxy."""
    return {
        "AUTO_LAB_FRONT_URL": f"http://127.0.0.1:{front_port(environ)}",
        "AUTO_HAPROXY_SOCKET": str(FrontPaths(lab_root).socket),
        "AUTO_HAPROXY_STATE_FILE": str(FrontPaths(lab_root).state),
        "AUTO_HAPROXY_BACKEND": BACKEND,
    }
