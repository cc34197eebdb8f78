"""HAProxy for the blue/green switch: the config template, and a client of its runtime API.

The runtime API is a line protocol on the admin socket (``stats socket … level admin``); each
command gets its own connection (non-interactive mode). Server state: ``ready`` takes traffic,
``drain`` takes none but keeps its health checks, ``maint`` takes none and is not checked.
:meth:`Runtime.servers` reads ``show stat`` and takes the admin state from the bits of
``show servers state`` (a DOWN server looks the same in ``show stat`` whether in drain or ready).
Admin state survives a reload when :meth:`Runtime.save_state` wrote the server-state file just
before :meth:`Runtime.reload`.

A colour is one server named for it, or one server per node named ``COLOUR-…`` (``blue-manager``,
``blue-worker-1``…: a host-mode port answers only on the nodes that run a task, and each node's check tells
HAProxy which): :func:`colour_servers` finds them, and the ``*_colour_*`` methods act on them all.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import os
import signal
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jinja2

from autocore.files import write_atomic
from autocore.resources import TEMPLATES_PACKAGE, package_folder
from deployer.errors import ConfigError, HAProxyError

STATES = ("ready", "drain", "maint")
PASSING_CHECKS = ("L4OK", "L6OK", "L7OK")  # L7OKC too
# srv_admin_state bits of `show servers state` (HAProxy's enum srv_admin).
ADMIN_MAINT_BITS = 0x01 | 0x02 | 0x20  # forced, inherited (track), DNS resolution
ADMIN_DRAIN_BITS = 0x08 | 0x10  # forced, inherited (track)
__all__ = [
    "HAProxyError",
    "Runtime",
    "ServerStat",
    "colour_servers",
    "parse_servers_state",
    "parse_stat",
    "render_config",
]


def render_config(context: Mapping[str, Any], *, template: str = "haproxy.cfg.j2") -> str:
    """The HAProxy configuration for ``context`` (see templates/haproxy.cfg.j2 for the keys).

    Required: ``frontend_bind``, ``servers`` (``name``, ``address``, ``port``, ``enabled``),
    ``admin_socket``, ``state_file``; optional: ``backend`` ("app"), ``health_path`` ("/health"),
    ``stats_bind`` (none).
    """
    templates = package_folder(TEMPLATES_PACKAGE)  # the toolkit's templates/, installed
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates), undefined=jinja2.StrictUndefined, autoescape=False,
        keep_trailing_newline=True,
    )  # fmt: skip
    values = {"backend": "app", "health_path": "/health", "stats_bind": None, **context}
    try:
        return env.get_template(template).render(**values)
    except jinja2.TemplateNotFound:
        raise ConfigError(f"HAProxy template {template} not found in {templates}: is the toolkit complete?") from None
    except jinja2.UndefinedError as exc:
        raise ConfigError(f"HAProxy config context is incomplete: {exc.message}") from None


@dataclass(frozen=True)
class ServerStat:
    """One server of a backend, from ``show stat``."""

    name: str
    status: str  # UP, DOWN, MAINT, DRAIN, NOLB, "UP 1/2"…
    scur: int  # current sessions
    stot: int  # total sessions
    check_status: str  # L7OK, L4CON, INI… ("" when not checked; the "* " of a running check is dropped)
    weight: int
    admin_state: int | None = None  # srv_admin_state bits from `show servers state`, when known

    @property
    def admin(self) -> str:
        """The admin state we set: ready, drain or maint.

        From the admin bits when known: a server that is DOWN shows "DOWN" in ``show stat`` whether
        it is in drain or ready. Without them, from the status (and a weight of 0 for drain).
        """
        if self.admin_state is not None:
            if self.admin_state & ADMIN_MAINT_BITS:
                return "maint"
            return "drain" if self.admin_state & ADMIN_DRAIN_BITS else "ready"
        if self.status.startswith("MAINT"):
            return "maint"
        if self.status.startswith("DRAIN") or self.weight == 0:
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
    """The servers of ``backend`` in ``show stat`` CSV output (admin bits unknown)."""
    servers = {}
    for row in csv.DictReader(io.StringIO(text.lstrip("# "))):
        if row.get("pxname") != backend or row.get("svname") in (None, "FRONTEND", "BACKEND"):
            continue
        servers[row["svname"]] = ServerStat(
            name=row["svname"],
            status=row.get("status") or "",
            scur=_int(row.get("scur")),
            stot=_int(row.get("stot")),
            check_status=(row.get("check_status") or "").removeprefix("* "),
            weight=_int(row.get("weight")),
        )
    return servers


def parse_servers_state(text: str, backend: str) -> dict[str, int]:
    """``srv_admin_state`` of each server of ``backend`` in ``show servers state`` output."""
    columns: list[str] = []
    states = {}
    for line in text.splitlines():
        if line.startswith("# "):
            columns = line[2:].split()
            continue
        fields = line.split()
        if not columns or len(fields) < len(columns):
            continue  # the format version line, blank lines
        row = dict(zip(columns, fields, strict=False))
        if row.get("be_name") == backend and "srv_name" in row:
            states[row["srv_name"]] = _int(row.get("srv_admin_state"))
    return states


def colour_servers(names: Iterable[str], colour: str) -> list[str]:
    """The servers of ``colour`` among ``names``: the one named for it, and every ``COLOUR-…`` one (a node each)."""
    return sorted(name for name in names if name == colour or name.startswith(f"{colour}-"))


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def _check_name(kind: str, name: str) -> None:
    # The runtime API splits commands on ";" and words on blanks: refuse what would change the command.
    if not name or any(c.isspace() or c in ";/#\\" for c in name):
        raise ConfigError(f"invalid HAProxy {kind} name {name!r}: check the backend and colour names")


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
        """Send one command on its own connection; return HAProxy's whole answer."""
        if not line.strip() or "\n" in line or "\r" in line:
            raise ConfigError(f"a HAProxy runtime command is one non-empty line, not {line!r}")
        where = self.address or "(none)"
        try:
            with self._connect() as sock:
                sock.sendall(line.encode() + b"\n")
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
        except TimeoutError:
            raise HAProxyError(
                f"HAProxy admin socket {where} did not answer {line.split()[0]!r} within {self.timeout:g} s: "
                "is HAProxy overloaded or stuck?"
            ) from None
        except PermissionError:
            raise HAProxyError(f"HAProxy admin socket {where}: permission denied (mode 600): run as root") from None
        except (OSError, ValueError):  # refused, missing, bad tcp:HOST:PORT …
            raise HAProxyError(f"HAProxy admin socket {where} is not answering: is HAProxy running?") from None
        return b"".join(chunks).decode(errors="replace")

    def set_state(self, backend: str, server: str, state: str) -> None:
        """Put a server in ready, drain or maint; HAProxy's answer is empty on success."""
        if state not in STATES:
            raise ConfigError(f"HAProxy server state must be one of {', '.join(STATES)}, not {state!r}")
        _check_name("backend", backend)
        _check_name("server", server)
        answer = self.command(f"set server {backend}/{server} state {state}").strip()
        if answer:
            raise HAProxyError(
                f"HAProxy refused 'set server {backend}/{server} state {state}': {answer.splitlines()[0]}"
            )

    def servers(self, backend: str) -> dict[str, ServerStat]:
        """Every server of ``backend``: ``show stat``, with the admin bits of ``show servers state``."""
        _check_name("backend", backend)
        servers = parse_stat(self.command("show stat"), backend)
        if not servers:
            raise HAProxyError(f"HAProxy has no backend {backend!r} with servers: check AUTO_HAPROXY_BACKEND")
        admin = parse_servers_state(self.command(f"show servers state {backend}"), backend)
        return {
            name: dataclasses.replace(stat, admin_state=admin[name]) if name in admin else stat
            for name, stat in servers.items()
        }

    def server(self, backend: str, name: str) -> ServerStat:
        """One server of ``backend``."""
        servers = self.servers(backend)
        if name not in servers:
            raise HAProxyError(f"HAProxy backend {backend} has no server {name!r} (has {', '.join(sorted(servers))})")
        return servers[name]

    def wait_up(
        self, backend: str, server: str, timeout: float, interval: float = 0.1, *, keep: str | None = None
    ) -> float:
        """Wait until the server's health check passes (it must be in drain or ready); seconds waited.

        ``keep`` (drain or ready): the admin state we put the server in; found back in maint (a reload loaded a
        server-state file saved before we set it), it is set again.
        """
        started = self._clock()
        while True:
            stat = self.server(backend, server)
            if stat.healthy and stat.admin != "maint":
                return self._clock() - started
            if keep and stat.admin == "maint":
                self.set_state(backend, server, keep)
            if self._clock() - started >= timeout:
                hint = ": it is in maint, where no checks run" if stat.admin == "maint" else ": check its /health"
                raise HAProxyError(
                    f"{backend}/{server} is not healthy after {timeout:g} s (status {stat.status}, "
                    f"check {stat.check_status or 'none'}){hint}"
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

    def colour_servers(self, backend: str, colour: str) -> list[str]:
        """The servers of ``colour`` in ``backend`` (see :func:`colour_servers`); HAProxyError when it has none."""
        servers = self.servers(backend)
        names = colour_servers(servers, colour)
        if not names:
            raise HAProxyError(
                f"HAProxy backend {backend} has no server for {colour} (has {', '.join(sorted(servers))})"
            )
        return names

    def set_colour_state(self, backend: str, colour: str, state: str) -> list[str]:
        """Put every server of ``colour`` in ready, drain or maint; returns their names."""
        names = self.colour_servers(backend, colour)
        for name in names:
            self.set_state(backend, name, state)
        return names

    def wait_colour_up(
        self, backend: str, colour: str, timeout: float, interval: float = 0.1, *, keep: str | None = None
    ) -> float:
        """Wait until a server of ``colour`` passes its check, in drain or ready (HAProxy sends traffic only to
        those that pass: nodes without a task fail theirs); seconds waited. ``keep``: as :meth:`wait_up`."""
        if self.colour_servers(backend, colour) == [colour]:  # one server for the colour: as :meth:`wait_up`
            return self.wait_up(backend, colour, timeout, interval, keep=keep)
        started = self._clock()
        while True:
            servers = self.servers(backend)
            names = colour_servers(servers, colour)
            if any(servers[n].healthy and servers[n].admin != "maint" for n in names):
                return self._clock() - started
            for name in names if keep else ():
                if servers[name].admin == "maint":
                    self.set_state(backend, name, keep)
            if not names or self._clock() - started >= timeout:
                seen = "; ".join(
                    f"{n}: status {servers[n].status}, check {servers[n].check_status or 'none'}"
                    + (" (maint: no checks run)" if servers[n].admin == "maint" else "")
                    for n in names
                )
                raise HAProxyError(
                    f"{backend}/{colour}: no server is healthy after {timeout:g} s ({seen or 'it has no server'})"
                )
            self._sleep(interval)

    def wait_colour_drained(self, backend: str, colour: str, timeout: float, interval: float = 0.05) -> float:
        """Wait until no server of ``colour`` has a current session; seconds waited."""
        if self.colour_servers(backend, colour) == [colour]:  # one server for the colour: as :meth:`wait_drained`
            return self.wait_drained(backend, colour, timeout, interval)
        started = self._clock()
        while True:
            servers = self.servers(backend)
            busy = {n: servers[n].scur for n in colour_servers(servers, colour) if servers[n].scur}
            if not busy:
                return self._clock() - started
            if self._clock() - started >= timeout:
                left = ", ".join(f"{n} {count}" for n, count in sorted(busy.items()))
                raise HAProxyError(f"{backend}/{colour} still has session(s) after {timeout:g} s: {left}")
            self._sleep(interval)

    def worker_pid(self) -> int:
        """The pid of the worker answering on the socket (``show info``); a reload changes it."""
        answer = self.command("show info")
        for line in answer.splitlines():
            if line.startswith("Pid:"):
                return _int(line.split(":", 1)[1].strip())
        first = answer.strip().splitlines()[0] if answer.strip() else "an empty answer"
        raise HAProxyError(f"HAProxy answered 'show info' without its Pid ({first!r}): is this HAProxy's admin socket?")

    def reload(self, master_pid: int, timeout: float = 10.0, interval: float = 0.05) -> float:
        """Reload a master-worker HAProxy (SIGUSR2 to ``master_pid``) and wait for the new worker.

        Save the admin state first (:meth:`save_state`) so that it survives. A master that only just
        started drops a SIGUSR2 that comes before it is ready, so the signal is repeated each second
        until a new worker answers. Returns the seconds waited.
        """
        before = self.worker_pid()
        started = self._clock()
        signalled = None
        while True:
            now = self._clock()
            if signalled is None or now - signalled >= 1.0:
                try:
                    os.kill(master_pid, signal.SIGUSR2)
                except ProcessLookupError:
                    raise HAProxyError(f"HAProxy master {master_pid} is not running: check its pidfile") from None
                signalled = now
            self._sleep(interval)
            with contextlib.suppress(HAProxyError):  # the socket changes hands during the reload
                if self.worker_pid() != before:
                    return self._clock() - started
            if self._clock() - started >= timeout:
                raise HAProxyError(
                    f"HAProxy (master {master_pid}) did not start a new worker within {timeout:g} s: "
                    "check the configuration with haproxy -c -f and the master's log"
                )

    def save_state(self, path: str | os.PathLike[str]) -> None:
        """Write ``show servers state`` to ``path`` atomically, for the next reload to load."""
        text = self.command("show servers state")
        if not text.startswith("1\n"):  # the file format version HAProxy 2.x writes and reads
            first = text.strip().splitlines()[0] if text.strip() else "an empty answer"
            raise HAProxyError(f"HAProxy answered 'show servers state' with {first!r}: is the socket level admin?")
        write_atomic(path, text, durable=True)
