"""Where the lab is: its fixed network plan, its names and ports, and the layout of the lab directory.

Nothing here touches the machine; everything is derived from constants and ``AUTO_LAB_DIR`` /
``AUTO_LAB_STATE_PORT``, so every other lab module (and ``lab env``) agrees on the same places.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from deployer.errors import ConfigError

LAB_DIR_ENV = "AUTO_LAB_DIR"
DEFAULT_LAB_DIR = "/var/lib/auto-lab"
STATE_PORT_ENV = "AUTO_LAB_STATE_PORT"
DEFAULT_STATE_PORT = 8787
STATE_HOST = "127.0.0.1"
ENVIRONMENT = "lab"
LIVE_COLOUR = "blue"
ACTOR = "auto-deploy lab"
DOCKER_PORT = 2376
BLUE_ADDRESS = "10.213.1.2"
GREEN_ADDRESS = "10.213.2.2"
MARKER = ".auto-lab"  # only a directory holding this file is ever deleted by down()


@dataclass(frozen=True)
class Cluster:
    """The fixed network plan of one colour."""

    colour: str
    netns: str
    host_if: str  # veth end on the host (interface names are limited to 15 characters)
    ns_if: str  # veth end inside the namespace
    host_address: str
    address: str  # the manager address: dockerd listens here
    prefix: int = 24

    @property
    def docker_host(self) -> str:
        """``DOCKER_HOST`` for this cluster."""
        return f"tcp://{self.address}:{DOCKER_PORT}"


CLUSTERS: dict[str, Cluster] = {
    "blue": Cluster("blue", "auto-lab-blue", "alab-blue", "alab-blue-ns", "10.213.1.1", BLUE_ADDRESS),
    "green": Cluster("green", "auto-lab-green", "alab-green", "alab-green-ns", "10.213.2.1", GREEN_ADDRESS),
}


@dataclass(frozen=True)
class LabPaths:
    """The layout of the lab directory."""

    root: Path

    @property
    def certs(self) -> Path:
        return self.root / "certs"

    @property
    def ca_cert(self) -> Path:
        return self.certs / "ca.pem"

    @property
    def client(self) -> Path:
        return self.certs / "client"

    @property
    def state_tls(self) -> Path:
        return self.certs / "state"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def token(self) -> Path:
        return self.state / "token"

    @property
    def state_db(self) -> Path:
        return self.state / "state.db"

    @property
    def state_log(self) -> Path:
        return self.state / "server.log"

    @property
    def state_pid(self) -> Path:
        return self.state / "server.pid"

    def colour(self, colour: str) -> ColourPaths:
        """The paths of one colour's daemon."""
        return ColourPaths(self.root / colour)


@dataclass(frozen=True)
class ColourPaths:
    """The files of one colour's ``dockerd``."""

    root: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def exec_root(self) -> Path:
        return self.root / "exec"

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def log(self) -> Path:
        return self.root / "dockerd.log"

    @property
    def pidfile(self) -> Path:
        return self.root / "dockerd.pid"

    @property
    def tls(self) -> Path:
        return self.root / "tls"


def lab_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The lab directory: ``AUTO_LAB_DIR`` or ``/var/lib/auto-lab``; refuses dangerous values."""
    env = os.environ if environ is None else environ
    raw = env.get(LAB_DIR_ENV) or DEFAULT_LAB_DIR
    path = Path(raw)
    if not path.is_absolute():
        raise ConfigError(f"{LAB_DIR_ENV} must be an absolute path, not {raw!r}")
    path = Path(os.path.normpath(path))
    # down() deletes this directory: never accept / or a top-level system directory.
    if len(path.parts) < 3:
        raise ConfigError(f"{LAB_DIR_ENV}={raw} is too close to /: use a dedicated directory")
    return path


def state_port(environ: Mapping[str, str] | None = None) -> int:
    """The state service port: ``AUTO_LAB_STATE_PORT`` or 8787."""
    env = os.environ if environ is None else environ
    raw = env.get(STATE_PORT_ENV) or str(DEFAULT_STATE_PORT)
    try:
        port = int(raw)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise ConfigError(f"{STATE_PORT_ENV} must be a TCP port number (1-65535), not {raw!r}")
    return port


def state_url(port: int | None = None) -> str:
    """The base URL of the lab's state service."""
    return f"https://{STATE_HOST}:{state_port() if port is None else port}"


def client_cert_dir() -> Path:
    """The Docker client bundle (``ca.pem``, ``cert.pem``, ``key.pem``) for both clusters."""
    return LabPaths(lab_dir()).client
