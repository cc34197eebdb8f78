"""HAProxy for the blue/green switch: the config template, and a client of its runtime API.

The runtime API is a line protocol on the admin socket (``stats socket … level admin``); each
command gets its own connection (non-interactive mode). Server state: ``ready`` takes traffic,
``drain`` takes none but keeps its health checks, ``maint`` takes none and is not checked.
"""

from __future__ import annotations

import csv
import io
import os
import socket
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from deployer.errors import HAProxyError

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
STATES = ("ready", "drain", "maint")
PASSING_CHECKS = ("L4OK", "L6OK", "L7OK")  # L7OKC too
__all__ = ["HAProxyError", "Runtime", "ServerStat", "parse_stat", "render_config"]


def render_config(context: Mapping[str, Any], *, template: str = "haproxy.cfg.j2") -> str:
    """The HAProxy configuration for ``context`` (see templates/haproxy.cfg.j2 for the keys)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined, autoescape=False,
        keep_trailing_newline=True,
    )  # fmt: skip
    values = {"backend": "app", "health_path": "/health", "stats_bind": None, **context}
    return env.get_template(template).render(**values)


@dataclass(frozen=True)
class ServerStat:
    """One server of a backend, from ``show stat``."""

    name: str
    status: str  # UP, DOWN, MAINT, DRAIN, NOLB, "UP 1/2"…
    scur: int  # current sessions
    stot: int  # total sessions
    check_status: str
    weight: int

    @property
    def admin(self) -> str:
        """The admin state we set: ready, drain or maint."""
        if self.status.startswith("MAINT"):
            return "maint"
        if self.status.startswith("DRAIN") or (self.weight == 0 and not self.status.startswith("MAINT")):
            return "drain"
        return "ready"

    @property
    def healthy(self) -> bool:
        """Its last health check passed and it is settled (UP, DRAIN or NOLB, no "n/m" transition).

        Just out of maintenance HAProxy says ``DRAIN 1/2`` with check ``INI`` before any check ran:
        that is not healthy yet.
        """
        settled = self.status.startswith(("UP", "DRAIN", "NOLB")) and "/" not in self.status
        return settled and self.check_status.startswith(PASSING_CHECKS)


def parse_stat(text: str, backend: str) -> dict[str, ServerStat]:
    """The servers of ``backend`` in ``show stat`` CSV output."""
    lines = text.lstrip("# ").splitlines()
    servers = {}
    for row in csv.DictReader(io.StringIO("\n".join(lines))):
        if row.get("pxname") != backend or row.get("svname") in ("FRONTEND", "BACKEND"):
            continue
        servers[row["svname"]] = ServerStat(
            name=row["svname"],
            status=row.get("status", ""),
            scur=int(row.get("scur") or 0),
            stot=int(row.get("stot") or 0),
            check_status=row.get("check_status", ""),
            weight=int(row.get("weight") or 0),
        )
    return servers


class Runtime:
    """A client of HAProxy's runtime API over its admin socket (``PATH``, ``unix:PATH`` or ``tcp:HOST:PORT``)."""

    def __init__(
        self,
        address: str,
        timeout: float = 5.0,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.address = address.removeprefix("unix:")
        self.timeout = timeout
        self._sleep = sleep
        self._clock = clock

    def _connect(self) -> socket.socket:
        if self.address.startswith("tcp:"):
            host, _, port = self.address[4:].rpartition(":")
            return socket.create_connection((host, int(port)), timeout=self.timeout)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.address)
        return sock

    def command(self, line: str) -> str:
        """Send one command; return HAProxy's answer."""
        try:
            with self._connect() as sock:
                sock.sendall(line.encode() + b"\n")
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
        except (OSError, ValueError) as exc:
            raise HAProxyError(
                f"HAProxy admin socket {self.address or '(none)'} is not answering ({type(exc).__name__}): "
                "is HAProxy running?"
            ) from None
        return b"".join(chunks).decode(errors="replace")

    def set_state(self, backend: str, server: str, state: str) -> None:
        """Put a server in ready, drain or maint."""
        if state not in STATES:
            raise ValueError(f"state must be one of {STATES}")
        answer = self.command(f"set server {backend}/{server} state {state}").strip()
        if answer:
            raise HAProxyError(
                f"HAProxy refused 'set server {backend}/{server} state {state}': {answer.splitlines()[0]}"
            )

    def servers(self, backend: str) -> dict[str, ServerStat]:
        """Every server of ``backend``."""
        servers = parse_stat(self.command("show stat"), backend)
        if not servers:
            raise HAProxyError(f"HAProxy has no backend {backend!r} with servers: check AUTO_HAPROXY_BACKEND")
        return servers

    def server(self, backend: str, name: str) -> ServerStat:
        """One server of ``backend``."""
        servers = self.servers(backend)
        if name not in servers:
            raise HAProxyError(f"HAProxy backend {backend} has no server {name!r} (has {', '.join(sorted(servers))})")
        return servers[name]

    def wait_up(self, backend: str, server: str, timeout: float, interval: float = 0.1) -> float:
        """Wait until the server's health check passes (it must be in drain or ready); seconds waited."""
        started = self._clock()
        while True:
            stat = self.server(backend, server)
            if stat.healthy and stat.admin != "maint":
                return self._clock() - started
            if self._clock() - started >= timeout:
                raise HAProxyError(
                    f"{backend}/{server} is not healthy after {timeout:g} s (status {stat.status}, "
                    f"check {stat.check_status or 'none'})"
                )
            self._sleep(interval)

    def wait_drained(self, backend: str, server: str, timeout: float, interval: float = 0.05) -> float:
        """Wait until the server has no current sessions; seconds waited."""
        started = self._clock()
        while True:
            stat = self.server(backend, server)
            if stat.scur == 0:
                return self._clock() - started
            if self._clock() - started >= timeout:
                raise HAProxyError(f"{backend}/{server} still has {stat.scur} session(s) after {timeout:g} s")
            self._sleep(interval)

    def save_state(self, path: str | os.PathLike[str]) -> None:
        """Write ``show servers state`` to ``path`` atomically, for the next reload to load."""
        text = self.command("show servers state")
        target = Path(path)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".server-state-")
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, target)
