"""The colours' Docker Engines: one ``dockerd`` per namespace, each a one-node Swarm with the lab's images.

Started detached inside ``ip netns exec`` (:func:`deployer.lab.argv.netns_dockerd_argv`), probed over
their local unix socket (``/_ping``), made Swarm managers and given ``auto-lab/web`` through the Docker
SDK; stopped by pid, containers first.
"""

from __future__ import annotations

import http.client
import socket
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from deployer.errors import DeployerError
from deployer.lab.argv import netns_dockerd_argv, parse_cgroup_mounts
from deployer.lab.image import ensure_images
from deployer.lab.layout import CLUSTERS, Cluster, ColourPaths, LabPaths
from deployer.lab.processes import containers_of, leftover_pids, leftover_pids_of, our_pid, stop_pids
from deployer.lab.runner import spawn, wait_ready

DOCKERD_READY_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0  # dockerd gets --shutdown-timeout 5 for its containers, plus its own shutdown


class _UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a unix socket (dockerd's local API), for a cheap readiness probe."""

    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = str(path)

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


def docker_ping(sock: Path, timeout: float = 2.0) -> bool:
    """True when the daemon behind ``sock`` answers ``/_ping`` with OK."""
    conn = _UnixHTTPConnection(sock, timeout)
    try:
        conn.request("GET", "/_ping")
        resp = conn.getresponse()
        return resp.status == 200 and resp.read().strip() == b"OK"
    except OSError:
        return False
    finally:
        conn.close()


def dockerd_pid(paths: ColourPaths) -> int | None:
    """The pid of the colour's running ``dockerd``, or None."""
    return our_pid(paths.pidfile, str(paths.data))


def answering(paths: ColourPaths, timeout: float = 1.0) -> bool:
    """Whether the colour's ``dockerd`` answers on its unix socket."""
    return paths.socket.exists() and docker_ping(paths.socket, timeout=timeout)


def start_dockerd(cluster: Cluster, paths: LabPaths, dockerd: str) -> subprocess.Popen[bytes]:
    """Start the colour's ``dockerd`` in its namespace (detached; output in its log)."""
    cpaths = paths.colour(cluster.colour)
    for directory in (cpaths.root, cpaths.data, cpaths.exec_root):
        directory.mkdir(parents=True, exist_ok=True)
    cpaths.root.chmod(0o700)
    cpaths.pidfile.unlink(missing_ok=True)  # stale: its process is gone (checked by the caller)
    mounts = parse_cgroup_mounts(Path("/proc/self/mounts").read_text())
    argv = netns_dockerd_argv(cluster, cpaths, mounts, dockerd=dockerd)
    return spawn(argv, log=cpaths.log)


def wait_dockerd(cluster: Cluster, paths: LabPaths, proc: subprocess.Popen[bytes] | None) -> None:
    """Wait until the colour's ``dockerd`` answers; DeployerError with its log's last line if not."""
    cpaths = paths.colour(cluster.colour)
    wait_ready(
        lambda: docker_ping(cpaths.socket, timeout=1.0),
        proc,
        what=f"the {cluster.colour} dockerd",
        log=cpaths.log,
        timeout=DOCKERD_READY_TIMEOUT,
    )


def docker_client(cpaths: ColourPaths) -> Any:
    """A ``docker.DockerClient`` on the colour's local unix socket."""
    import docker  # imported lazily: `lab env` and `lab status` do not need it

    return docker.DockerClient(base_url=f"unix://{cpaths.socket}", version="auto", timeout=60)


def ensure_swarm(cluster: Cluster, client: Any) -> str:
    """Make the daemon a Swarm manager on its address; "created" or "existed"."""
    swarm = client.info().get("Swarm", {})
    state = swarm.get("LocalNodeState", "")
    if state == "active" and swarm.get("ControlAvailable"):
        return "existed"
    if state != "inactive":
        raise DeployerError(
            f"the {cluster.colour} daemon is in swarm state {state!r}, not a manager:"
            " run `auto-deploy lab down` then `auto-deploy lab up`"
        )
    client.swarm.init(advertise_addr=cluster.address, listen_addr=f"{cluster.address}:2377")
    return "created"


def ensure_daemons(paths: LabPaths, dockerd: str, restart: Iterable[str] = ()) -> list[str]:
    """Start the colours' daemons that do not run (and restart those in ``restart``, e.g. a new
    certificate), wait for them, make each a Swarm manager with the lab's images; returns what was done."""
    actions: list[str] = []
    restart = set(restart)
    procs: dict[str, subprocess.Popen[bytes] | None] = {}
    for cluster in CLUSTERS.values():
        pid = dockerd_pid(paths.colour(cluster.colour))
        if pid and cluster.colour in restart:  # it serves the old certificate: restart it
            stop_pids([pid], STOP_TIMEOUT)
            pid = None
        if pid is None:
            # What a killed daemon left (containerd, shims, containers whose PID 1 ignores
            # SIGTERM): kill it quickly, Swarm reschedules the tasks.
            stop_pids(leftover_pids_of(cluster, paths), 1)
            procs[cluster.colour] = start_dockerd(cluster, paths, dockerd)
            actions.append(f"started {cluster.colour} dockerd")
        else:
            procs[cluster.colour] = None
    rootfs: list[bytes] = []
    for cluster in CLUSTERS.values():  # both daemons start in parallel; wait for each here
        try:
            wait_dockerd(cluster, paths, procs[cluster.colour])
        except DeployerError:
            if procs[cluster.colour] is None:
                raise
            # A killed daemon's containerd can still hold its socket for a moment: clear it, try once more.
            stop_pids(leftover_pids_of(cluster, paths), 3)
            procs[cluster.colour] = start_dockerd(cluster, paths, dockerd)
            wait_dockerd(cluster, paths, procs[cluster.colour])
            actions.append(f"restarted {cluster.colour} dockerd after a failed start")
        client = docker_client(paths.colour(cluster.colour))
        try:
            if ensure_swarm(cluster, client) == "created":
                actions.append(f"initialised the {cluster.colour} swarm")
            actions += [f"imported {ref} into {cluster.colour}" for ref in ensure_images(client, rootfs)]
        finally:
            client.close()
    return actions


def stop_daemons(paths: LabPaths) -> None:
    """Stop every colour's containers, daemon, containerd and shims; idempotent."""
    # Containers first, at once: their PID 1 often ignores SIGTERM and dockerd would wait for
    # each; everything is deleted anyway.
    containers = set().union(*(containers_of(c) for c in CLUSTERS.values()))
    stop_pids(containers, 0)
    daemons = [p for c in CLUSTERS.values() if (p := dockerd_pid(paths.colour(c.colour)))]
    stop_pids(daemons, STOP_TIMEOUT)  # dockerd stops its containers itself on SIGTERM
    for _ in range(3):  # containerd, shims and containers it could not stop; they may respawn once
        leftovers = leftover_pids(paths)
        if not leftovers:
            break
        stop_pids(leftovers, 3)
