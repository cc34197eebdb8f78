"""The colours' Docker Engines: per colour a manager and its workers, each a ``dockerd`` in its own namespaces.

Started detached inside ``ip netns exec`` and ``unshare --uts`` (:func:`deployer.lab.argv.netns_dockerd_argv`),
all at once; probed over their local unix socket (``/_ping``). Through the Docker SDK, per colour and both colours
at once: the manager is made a Swarm manager with the lab's images, each worker joins its swarm, nodes that are no
longer the lab's are removed from it, and every node must be Ready. Stopped by pid, containers first.
"""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from deployer.errors import DeployerError
from deployer.lab.argv import netns_dockerd_argv, parse_cgroup_mounts
from deployer.lab.image import ensure_images
from deployer.lab.layout import CLUSTERS, Cluster, ColourPaths, LabPaths, Node
from deployer.lab.processes import containers_of, leftover_pids, leftover_pids_of, our_pid, stop_pids
from deployer.lab.runner import spawn, wait_ready

DOCKERD_READY_TIMEOUT = 30.0
NODES_READY_TIMEOUT = 30.0  # a joined worker is Ready in ~1.5 s; a restarted one reconnects as fast
STOP_TIMEOUT = 15.0  # dockerd gets --shutdown-timeout 5 for its containers, plus its own shutdown
SWARM_PORT = 2377


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


def docker_get(sock: Path, path: str, timeout: float = 2.0) -> Any:
    """``GET path`` on the daemon's local API, as JSON; None when it does not answer 200."""
    conn = _UnixHTTPConnection(sock, timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        return json.loads(body) if resp.status == 200 else None
    except (OSError, ValueError):
        return None
    finally:
        conn.close()


def dockerd_pid(paths: ColourPaths) -> int | None:
    """The pid of the node's running ``dockerd``, or None."""
    return our_pid(paths.pidfile, str(paths.data))


def answering(paths: ColourPaths, timeout: float = 1.0) -> bool:
    """Whether the node's ``dockerd`` answers on its unix socket."""
    return paths.socket.exists() and docker_ping(paths.socket, timeout=timeout)


def start_dockerd(node: Node, paths: LabPaths, dockerd: str) -> subprocess.Popen[bytes]:
    """Start the node's ``dockerd`` in its namespaces (detached; output in its log)."""
    npaths = paths.node(node)
    for directory in (npaths.root, npaths.data, npaths.exec_root):
        directory.mkdir(parents=True, exist_ok=True)
    npaths.root.chmod(0o700)
    npaths.pidfile.unlink(missing_ok=True)  # stale: its process is gone (checked by the caller)
    mounts = parse_cgroup_mounts(Path("/proc/self/mounts").read_text())
    argv = netns_dockerd_argv(node, npaths, mounts, dockerd=dockerd)
    return spawn(argv, log=npaths.log)


def wait_dockerd(node: Node, paths: LabPaths, proc: subprocess.Popen[bytes] | None) -> None:
    """Wait until the node's ``dockerd`` answers; DeployerError with its log's last line if not."""
    npaths = paths.node(node)
    wait_ready(
        lambda: docker_ping(npaths.socket, timeout=1.0),
        proc,
        what=f"the {node.hostname} dockerd",
        log=npaths.log,
        timeout=DOCKERD_READY_TIMEOUT,
    )


def docker_client(cpaths: ColourPaths) -> Any:
    """A ``docker.DockerClient`` on the node's local unix socket."""
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
    client.swarm.init(advertise_addr=cluster.address, listen_addr=f"{cluster.address}:{SWARM_PORT}")
    return "created"


def ensure_joined(node: Node, client: Any, cluster: Cluster, token: str, known: set[str]) -> str | None:
    """Make the worker's daemon a member of its colour's swarm; what was done, if anything.

    A worker the manager knows (its node ID in ``known``) stays as it is: a restarted daemon rejoins by itself.
    One in another swarm, or half-joined, leaves it first.
    """
    swarm = client.info().get("Swarm", {})
    state = swarm.get("LocalNodeState", "")
    if state == "active" and swarm.get("NodeID") in known:
        return None
    if state != "inactive":
        client.swarm.leave(force=True)
    client.swarm.join(
        remote_addrs=[f"{cluster.address}:{SWARM_PORT}"],
        join_token=token,
        listen_addr=f"{node.address}:{SWARM_PORT}",
        advertise_addr=node.address,
    )
    return f"joined {node.hostname} to the {cluster.colour} swarm"


def prune_nodes(api: Any, cluster: Cluster, keep: set[str]) -> list[str]:
    """Remove from the manager's node list every worker that is not one of the lab's current nodes (``keep``:
    their node IDs): a worker taken away by ``--workers``, or one whose data was lost and joined again."""
    removed = []
    for entry in api.nodes():
        if entry["ID"] in keep or (entry.get("Spec") or {}).get("Role") == "manager":
            continue
        api.remove_node(entry["ID"], force=True)
        hostname = (entry.get("Description") or {}).get("Hostname") or entry["ID"][:12]
        removed.append(
            f"removed node {hostname} ({(entry.get('Status') or {}).get('State')}) from the {cluster.colour} swarm"
        )
    return removed


def not_ready(entries: Iterable[Mapping[str, Any]], ids: Mapping[str, str]) -> list[str]:
    """Hostnames of the nodes in ``ids`` (node ID → hostname) that the manager does not report Ready."""
    ready = {e.get("ID") for e in entries if (e.get("Status") or {}).get("State") == "ready"}
    return sorted(hostname for node_id, hostname in ids.items() if node_id not in ready)


def wait_nodes_ready(api: Any, cluster: Cluster, ids: Mapping[str, str], timeout: float = NODES_READY_TIMEOUT) -> None:
    """Wait until the manager reports every node in ``ids`` Ready; DeployerError naming the others."""
    deadline = time.monotonic() + timeout
    while waiting := not_ready(api.nodes(), ids):
        if time.monotonic() > deadline:
            raise DeployerError(
                f"the {cluster.colour} swarm's nodes {', '.join(waiting)} are not Ready after {timeout:g} s"
            )
        time.sleep(0.1)


def _start_all(
    paths: LabPaths, dockerd: str, nodes: list[Node], restart: set[str], actions: list[str]
) -> dict[Node, Any]:
    procs: dict[Node, subprocess.Popen[bytes] | None] = {}
    for node in nodes:
        npaths = paths.node(node)
        pid = dockerd_pid(npaths)
        if pid and node.role == "manager" and node.colour in restart:  # it serves the old certificate: restart it
            stop_pids([pid], STOP_TIMEOUT)
            pid = None
        elif pid and (name := (docker_get(npaths.socket, "/info") or {}).get("Name")) not in (None, node.hostname):
            # Started before nodes had their own UTS namespace (Swarm calls it by the machine's name): once.
            stop_pids(containers_of(node), 0)
            stop_pids([pid], STOP_TIMEOUT)
            pid = None
            actions.append(f"stopped {node.hostname} dockerd, which ran as {name!r}")
        if pid is None:
            # What a killed daemon left (containerd, shims, containers whose PID 1 ignores
            # SIGTERM): kill it quickly, Swarm reschedules the tasks.
            stop_pids(leftover_pids_of(node, paths), 1)
            procs[node] = start_dockerd(node, paths, dockerd)
            actions.append(f"started {node.hostname} dockerd")
        else:
            procs[node] = None
    return procs


def _wait_started(node: Node, paths: LabPaths, dockerd: str, proc: subprocess.Popen[bytes] | None) -> str | None:
    try:
        wait_dockerd(node, paths, proc)
    except DeployerError:
        if proc is None:
            raise
        # A killed daemon's containerd can still hold its socket for a moment: clear it, try once more.
        stop_pids(leftover_pids_of(node, paths), 3)
        wait_dockerd(node, paths, start_dockerd(node, paths, dockerd))
        return f"restarted {node.hostname} dockerd after a failed start"
    return None


def _bring_up(
    cluster: Cluster,
    nodes: list[Node],
    paths: LabPaths,
    dockerd: str,
    procs: Mapping[Node, Any],
    with_images: Callable[[Cluster], list[str]] | None,
) -> list[str]:
    """One colour: manager up with its swarm and images, workers joined, strangers removed, all Ready;
    ``with_images(cluster)`` runs beside the workers' joining once the manager has its images."""
    actions: list[str] = []
    manager, workers = nodes[0], nodes[1:]
    if done := _wait_started(manager, paths, dockerd, procs[manager]):
        actions.append(done)
    client = docker_client(paths.node(manager))
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        if ensure_swarm(cluster, client) == "created":
            actions.append(f"initialised the {cluster.colour} swarm")
        actions += [f"imported {ref} into {cluster.colour}" for ref in ensure_images(client, [])]
        after_images = pool.submit(with_images, cluster) if with_images else None
        ids = {client.info()["Swarm"]["NodeID"]: manager.hostname}
        if workers:
            client.swarm.reload()
            token = client.swarm.attrs["JoinTokens"]["Worker"]
            known = {entry["ID"] for entry in client.api.nodes()}
            for worker in workers:
                if done := _wait_started(worker, paths, dockerd, procs[worker]):
                    actions.append(done)
                wclient = docker_client(paths.node(worker))
                try:
                    if done := ensure_joined(worker, wclient, cluster, token, known):
                        actions.append(done)
                    ids[wclient.info()["Swarm"]["NodeID"]] = worker.hostname
                finally:
                    wclient.close()
        actions += prune_nodes(client.api, cluster, set(ids))
        wait_nodes_ready(client.api, cluster, ids)
        if after_images:
            actions += after_images.result()
    finally:
        pool.shutdown(wait=True)
        client.close()
    return actions


def ensure_daemons(
    paths: LabPaths,
    dockerd: str,
    workers: int,
    restart: Iterable[str] = (),
    with_images: Callable[[Cluster], list[str]] | None = None,
) -> list[str]:
    """Start every node's daemon that does not run (and restart the managers in ``restart``, e.g. a new
    certificate), wait for them, make each manager a Swarm manager with the lab's images and join its
    ``workers`` workers; returns what was done. Both colours are brought up at once, and ``with_images``
    (e.g. pushing the images to the registry) runs for each colour as soon as its manager has its images."""
    actions: list[str] = []
    plan = {cluster.colour: cluster.nodes(workers) for cluster in CLUSTERS.values()}
    procs = _start_all(paths, dockerd, [n for nodes in plan.values() for n in nodes], set(restart), actions)
    with ThreadPoolExecutor(max_workers=len(plan)) as pool:
        futures = [
            pool.submit(_bring_up, CLUSTERS[c], nodes, paths, dockerd, procs, with_images) for c, nodes in plan.items()
        ]
        for future in futures:
            actions += future.result()
    return actions


def kill_nodes(nodes: Iterable[Node], paths: LabPaths) -> None:
    """Kill nodes that are to be deleted: their containers, daemons, containerd and shims, all at once."""
    nodes = list(nodes)
    stop_pids(set().union(*(containers_of(n) for n in nodes)), 0)
    stop_pids([p for n in nodes if (p := dockerd_pid(paths.node(n)))], 0)
    for _ in range(3):
        leftovers = set().union(*(leftover_pids_of(n, paths) for n in nodes))
        if not leftovers:
            break
        stop_pids(leftovers, 1)


def stop_daemons(paths: LabPaths) -> None:
    """Stop every node's containers, daemon, containerd and shims; idempotent."""
    nodes = [n for c in CLUSTERS.values() for n in c.all_nodes()]
    # Containers first, at once: their PID 1 often ignores SIGTERM and dockerd would wait for
    # each; everything is deleted anyway.
    containers = set().union(*(containers_of(n) for n in nodes))
    stop_pids(containers, 0)
    daemons = [p for n in nodes if (p := dockerd_pid(paths.node(n)))]
    stop_pids(daemons, STOP_TIMEOUT)  # dockerd stops its containers itself on SIGTERM
    for _ in range(3):  # containerd, shims and containers it could not stop; they may respawn once
        leftovers = leftover_pids(paths)
        if not leftovers:
            break
        stop_pids(leftovers, 3)


def node_status(paths: LabPaths, cluster: Cluster, workers: int) -> list[dict[str, Any]]:
    """Every node of the colour: the lab's view (namespace, daemon, its hostname) and the manager's (Swarm's
    state, availability, address) of the node ID the daemon reports (of its hostname when the daemon does not
    answer); nodes the manager lists that are none of the lab's daemons are listed too (``expected`` false)."""
    manager = paths.colour(cluster.colour)
    entries = {e.get("ID"): e for e in (docker_get(manager.socket, "/nodes") or [])} if manager.socket.exists() else {}
    result = []
    for node in cluster.nodes(workers):
        npaths = paths.node(node)
        info = docker_get(npaths.socket, "/info") if npaths.socket.exists() else None
        row: dict[str, Any] = {
            "hostname": node.hostname,
            "role": node.role,
            "address": node.address,
            "netns": node.netns,
            "pid": dockerd_pid(npaths),
            "daemon": "up" if info else "down",
        }
        if info and info.get("Name") != node.hostname:
            row["daemon_hostname"] = info.get("Name")  # a daemon started before nodes had their own hostnames
        node_id = ((info or {}).get("Swarm") or {}).get("NodeID")
        if node_id is None:  # the daemon does not answer: the manager's word on the node by that name
            named = [i for i, e in entries.items() if (e.get("Description") or {}).get("Hostname") == node.hostname]
            node_id = next(iter(named), None)
        row.update(_swarm_view(entries.pop(node_id, None)))
        result.append(row)
    for entry in entries.values():  # known to the swarm, not one of the lab's daemons
        hostname = (entry.get("Description") or {}).get("Hostname")
        result.append({"hostname": hostname, "role": None, "expected": False, **_swarm_view(entry)})
    return result


def _swarm_view(entry: Mapping[str, Any] | None) -> dict[str, Any]:
    if not entry:  # the manager does not answer, or does not know the node
        return {"state": "unknown", "availability": None, "swarm_address": None, "swarm_role": None, "node_id": None}
    status, spec = entry.get("Status") or {}, entry.get("Spec") or {}
    return {
        "state": status.get("State"),
        "availability": spec.get("Availability"),
        "swarm_address": status.get("Addr"),
        "swarm_role": spec.get("Role"),
        "node_id": entry.get("ID"),
    }
