"""Where the lab is: its fixed network plan, its names and ports, and the layout of the lab directory.

Nothing here touches the machine; everything is derived from constants and ``AUTO_LAB_DIR`` /
``AUTO_LAB_STATE_PORT``, so every other lab module (and ``lab env``) agrees on the same places.
"""

from __future__ import annotations

import ipaddress
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
DEFAULT_WORKERS = 2  # workers per colour of a new lab (`lab up --workers N`); an existing lab keeps its count
MAX_WORKERS = 9  # interface names (15 characters at most) and addresses are planned for this many
WORKERS_FILE = "workers"  # the lab directory's record of its worker count


@dataclass(frozen=True)
class Node:
    """One node of a colour's swarm: its own ``dockerd`` in its own network and UTS namespace.

    Index 0 is the manager (the only node whose Engine API listens on TCP, with mutual TLS); 1… are workers.
    Every node's veth is a port of the colour's bridge on the host, whose address is ``host_address``.
    """

    colour: str
    index: int
    netns: str
    host_if: str  # veth end on the host, a port of the colour's bridge (at most 15 characters)
    ns_if: str  # veth end inside the namespace
    host_address: str  # the colour's bridge: the nodes' gateway, and the host as the nodes see it
    address: str
    prefix: int = 24

    @property
    def role(self) -> str:
        """``manager`` or ``worker``, as Swarm says it."""
        return "manager" if self.index == 0 else "worker"

    @property
    def hostname(self) -> str:
        """The node's hostname (its own UTS namespace), as Swarm shows it: ``blue-manager``, ``blue-worker-1``."""
        return f"{self.colour}-manager" if self.index == 0 else f"{self.colour}-worker-{self.index}"

    @property
    def key(self) -> str:
        """Its directory under the lab directory: the colour for the manager (as before workers), else the hostname."""
        return self.colour if self.index == 0 else self.hostname

    @property
    def docker_host(self) -> str:
        """``DOCKER_HOST`` of the node's Engine over TCP (managers only listen there)."""
        return f"tcp://{self.address}:{DOCKER_PORT}"


@dataclass(frozen=True)
class Cluster:
    """The fixed network plan of one colour: the manager's names and address, the colour's bridge."""

    colour: str
    netns: str  # the manager's
    host_if: str  # the manager's veth end on the host (interface names are limited to 15 characters)
    ns_if: str  # the manager's veth end inside its namespace
    host_address: str  # the colour's bridge on the host
    address: str  # the manager address: dockerd listens here
    prefix: int = 24

    @property
    def docker_host(self) -> str:
        """``DOCKER_HOST`` for this cluster."""
        return f"tcp://{self.address}:{DOCKER_PORT}"

    @property
    def bridge(self) -> str:
        """The host bridge every node's veth is a port of."""
        return f"{self.host_if}-br"

    @property
    def manager(self) -> Node:
        """The manager node (the names and address the single-node lab always had)."""
        return Node(self.colour, 0, self.netns, self.host_if, self.ns_if, self.host_address, self.address, self.prefix)

    def worker(self, index: int) -> Node:
        """Worker ``index`` (1…MAX_WORKERS): the manager's address plus ``index``."""
        if not 1 <= index <= MAX_WORKERS:
            raise ValueError(f"a lab worker index is 1 to {MAX_WORKERS}, not {index}")
        host_if = f"{self.host_if}-w{index}"
        address = str(ipaddress.ip_address(self.address) + index)
        return Node(
            self.colour, index, f"{self.netns}-worker-{index}", host_if, f"{host_if}ns", self.host_address, address,
            self.prefix,
        )  # fmt: skip

    def nodes(self, workers: int) -> list[Node]:
        """The manager and ``workers`` workers."""
        return [self.manager, *(self.worker(i) for i in range(1, workers + 1))]

    def all_nodes(self) -> list[Node]:
        """Every node the plan has room for: what teardown looks for, whatever the lab's worker count was."""
        return self.nodes(MAX_WORKERS)


CLUSTERS: dict[str, Cluster] = {
    "blue": Cluster("blue", "auto-lab-blue", "alab-blue", "alab-blue-ns", "10.213.1.1", BLUE_ADDRESS),
    "green": Cluster("green", "auto-lab-green", "alab-green", "alab-green-ns", "10.213.2.1", GREEN_ADDRESS),
}


def as_node(where: Cluster | Node) -> Node:
    """A node; a cluster stands for its manager."""
    return where.manager if isinstance(where, Cluster) else where


def check_workers(workers: int) -> int:
    """``workers`` if the plan has room for it; ConfigError otherwise."""
    if not 0 <= workers <= MAX_WORKERS:
        raise ConfigError(f"--workers must be 0 to {MAX_WORKERS}, not {workers}")
    return workers


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

    @property
    def workers_file(self) -> Path:
        return self.root / WORKERS_FILE

    @property
    def registry(self) -> Path:
        return self.root / "registry"

    def colour(self, colour: str) -> ColourPaths:
        """The paths of one colour's manager daemon."""
        return ColourPaths(self.root / colour)

    def node(self, node: Node) -> ColourPaths:
        """The paths of one node's daemon (a manager's are its colour's)."""
        return ColourPaths(self.root / node.key)

    def recorded_workers(self) -> int | None:
        """The worker count the lab was last brought up with; None for a new lab, 0 for a lab made before workers."""
        try:
            return check_workers(int(self.workers_file.read_text().strip()))
        except (OSError, ValueError, ConfigError):
            pass
        return 0 if self.colour(LIVE_COLOUR).data.is_dir() else None


@dataclass(frozen=True)
class ColourPaths:
    """The files of one node's ``dockerd`` (named for the colour's manager, the only node there once was)."""

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
