"""The demo's docs side: the service's published pages (HTTPS on loopback), the portal's manifest, the portal's
server, and what its landing page says.

* The service's GitLab Pages stand-in: its ``docs_url`` is ``https://127.0.0.1:PORT/demo-orders`` (baked into
  its stack's ``auto.docs.spec`` label), served over TLS by :class:`PagesServer` with the lab state service's
  own certificate (the lab CA, SAN 127.0.0.1), which ``auto-docs --ca-file`` trusts.
* The portal is a static site: ``python -m deployer.lab.demo_portal DIR PORT PIDFILE`` serves it on 127.0.0.1
  after the demo has ended, until the next demo replaces it or the demo directory goes (``make lab-down``).
* :func:`catalogue_rows` reads the landing page's service catalogue back from the generated HTML.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import os
import shutil
import signal
import socket
import ssl
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from html.parser import HTMLParser
from pathlib import Path

import yaml

from autocore import runner

HOST = "127.0.0.1"
DEFAULT_PORTAL_PORT = 18800
PORTAL_PORT_ENV = "AUTO_LAB_DEMO_PORTAL_PORT"
# The pages' port is baked into the service (its docs_url, in its README too): a fixed one keeps the baked files,
# and so the image's build cache, the same from one run to the next.
DEFAULT_PAGES_PORT = 18443
PAGES_PORT_ENV = "AUTO_LAB_DEMO_PAGES_PORT"
SERVER_MODULE = "deployer.lab.demo_portal"


# --- pure parts ------------------------------------------------------------------------------------


def portal_manifest(repo: Path) -> str:
    """The demo portal's ``services.yml``: the toolkit's own guide and the lab's environment-state service (its
    contract); ``--from-env lab`` adds the live services."""
    toolkit_docs = repo / "docgen" / "toolkit-docs"
    contract = repo / "deployer" / "state" / "contract.yaml"
    manifest = {
        "title": "AUTO lab",
        "description": "The services live in the lab environment, documented from the environment-state service.",
        "guide": str(toolkit_docs / "guide"),
        "gateway": "/",
        "allow_paths": [str(toolkit_docs), str(contract)],
        "services": [
            {
                "name": "state",
                "version": "v1",
                "title": "Environment-state service",
                "docs": str(toolkit_docs / "samples" / "state-service" / "docs"),
                "spec": str(contract),
            }
        ],
    }
    return "# Written by `make demo` (deployer/lab/demo_portal.py).\n" + yaml.safe_dump(manifest, sort_keys=False)


def portal_port(environ: Mapping[str, str], name: str = PORTAL_PORT_ENV, default: int = DEFAULT_PORTAL_PORT) -> int:
    """The portal's port on 127.0.0.1: AUTO_LAB_DEMO_PORTAL_PORT, default 18800 (or another ``name``'s)."""
    value = environ.get(name, str(default))
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        raise ValueError(f"{name}={value!r} is not a port number")
    return int(value)


def pages_port(environ: Mapping[str, str]) -> int:
    """The service's pages' port on 127.0.0.1: AUTO_LAB_DEMO_PAGES_PORT, default 18443."""
    return portal_port(environ, PAGES_PORT_ENV, DEFAULT_PAGES_PORT)


def server_argv(python: str, directory: Path, port: int, pid_file: Path) -> list[str]:
    """The portal's server, a process of its own that outlives the demo."""
    return [python, "-m", SERVER_MODULE, str(directory), str(port), str(pid_file)]


class _Catalogue(HTMLParser):
    """The text of every cell of the landing page's ``docgen-catalogue`` table, row by row."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._depth = 0  # > 0 inside the catalogue table
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = (dict(attrs).get("class") or "").split()
        if tag == "table" and (self._depth or "docgen-catalogue" in classes):
            self._depth += 1
        elif self._depth and tag == "tr":
            self.rows.append([])
        elif self._depth and tag in ("td", "th") and self.rows:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self._depth:
            self._depth -= 1
        elif self._depth and tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def catalogue_rows(html: str) -> list[list[str]]:
    """The landing page's service catalogue: the header row, then one row per service (service, version, status,
    live colour, last deploy)."""
    parser = _Catalogue()
    parser.feed(html)
    return [row for row in parser.rows if row]


def service_row(html: str, name: str) -> dict[str, str] | None:
    """The catalogue's row of service ``name`` as ``{header: cell}``, or None when it is not listed."""
    rows = catalogue_rows(html)
    if not rows:
        return None
    header = [cell.lower() for cell in rows[0]]
    for row in rows[1:]:
        if row and row[0].split()[0:1] == [name]:
            return dict(zip(header, row, strict=False))
    return None


# --- the service's pages ---------------------------------------------------------------------------


def publish_pages(project: Path, pages_root: Path, slug: str) -> Path:
    """What the service's ``pages`` job publishes that the portal reads: its ``openapi.json`` at ``docs_url``."""
    target = pages_root / slug / "openapi.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    shutil.copyfile(project / "openapi.json", partial)
    os.replace(partial, target)
    return target


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass  # the demo's display stays the step list


class PagesServer:
    """``pages_root`` over HTTPS on 127.0.0.1:``port``, with the lab state service's certificate."""

    def __init__(self, pages_root: Path, port: int, cert: Path, key: Path) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)  # the key is read here, never shown
        handler = functools.partial(_QuietHandler, directory=str(pages_root))
        self.server = http.server.ThreadingHTTPServer((HOST, port), handler)
        self.server.daemon_threads = True
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="demo-pages", daemon=True)

    def url(self, slug: str) -> str:
        """The service's ``docs_url``."""
        return f"https://{HOST}:{self.port}/{slug}"

    def __enter__(self) -> PagesServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- the portal's server ---------------------------------------------------------------------------


def _server_pid(pid_file: Path) -> int | None:
    """The pid in ``pid_file`` if that process is the portal's server (a recycled pid is left alone)."""
    try:
        pid = int(pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    return pid if SERVER_MODULE.encode() in cmdline else None


def stop_server(pid_file: Path) -> None:
    """Stop the portal's server of an earlier demo, if it still runs; idempotent."""
    pid = _server_pid(pid_file)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while _server_pid(pid_file) == pid and Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    pid_file.unlink(missing_ok=True)


def start_server(python: str, directory: Path, port: int, pid_file: Path, log: Path) -> None:
    """Start the portal's server (after stopping an earlier one) and wait until it answers; OSError if it cannot."""
    stop_server(pid_file)
    runner.spawn(server_argv(python, directory, port, pid_file), log=log)
    deadline = time.monotonic() + 10
    while True:
        with contextlib.suppress(OSError), socket_to(port):
            if _server_pid(pid_file) is not None:
                return
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
            raise OSError(f"the portal's server did not start on {HOST}:{port}" + (f": {tail[0]}" if tail else ""))
        time.sleep(0.1)


@contextlib.contextmanager
def socket_to(port: int) -> Iterator[socket.socket]:
    """A connection to 127.0.0.1:``port`` (OSError when nothing listens)."""
    conn = socket.create_connection((HOST, port), timeout=1)
    try:
        yield conn
    finally:
        conn.close()


def serve(directory: Path, port: int, pid_file: Path) -> int:
    """Serve ``directory`` on 127.0.0.1:``port`` until SIGTERM, or until ``pid_file`` no longer names this process
    (a later demo took over, or ``make lab-down`` removed the demo directory)."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer((HOST, port), handler)
    server.daemon_threads = True
    pid_file.write_text(f"{os.getpid()}\n")
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())

    def watch() -> None:
        while True:
            time.sleep(2)
            try:
                mine = pid_file.read_text().strip() == str(os.getpid())
            except OSError:
                mine = False
            if not mine:
                server.shutdown()
                return

    threading.Thread(target=watch, name="demo-portal-watch", daemon=True).start()
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m deployer.lab.demo_portal DIR PORT PIDFILE``: the demo portal's server."""
    parser = argparse.ArgumentParser(prog=f"python -m {SERVER_MODULE}", description="Serve the demo's docs portal.")
    parser.add_argument("directory", type=Path)
    parser.add_argument("port", type=int)
    parser.add_argument("pid_file", type=Path)
    args = parser.parse_args(argv)
    return serve(args.directory, args.port, args.pid_file)


if __name__ == "__main__":
    sys.exit(main())
