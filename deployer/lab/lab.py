"""The embedded local lab, orchestrated: ``up``, ``down``, ``status`` and ``env`` over its parts.

Two Swarm clusters (blue, green), each a manager and ``--workers`` workers (2 for a new lab; 0 is the
single-node lab, the fastest). Every node is a real ``dockerd`` in its own network and UTS namespaces
(hostnames ``blue-manager``, ``blue-worker-1``…), its veth a port of the colour's bridge on the host
(``10.213.X.1``); managers at ``10.213.X.2``, reachable with mutual TLS only on port 2376, workers at
``10.213.X.3``…, joined to their manager's swarm. With workers, the lab's private registry
(:mod:`~deployer.lab.registry`) serves every node, and the lab's images reach workers only through it.
The environment-state service on loopback over HTTPS, seeded with the environment ``lab`` (blue live);
HAProxy on 127.0.0.1:18000 in front of every node's port 18080, the live colour's servers ready and
the idle one's in maintenance. Everything lives under one lab directory (``AUTO_LAB_DIR``, default
``/var/lib/auto-lab``) so that ``down`` can remove it all.

One module per concern, this one only puts them in order:

* :mod:`~deployer.lab.layout`: names, addresses, ports and the lab directory's layout
* :mod:`~deployer.lab.argv`: every command as data (pure argv builders)
* :mod:`~deployer.lab.runner`: the one way to run them (over :mod:`autocore.runner`)
* :mod:`~deployer.lab.bundles`: the TLS material; :mod:`~deployer.lab.network`: bridges, namespaces and veths
* :mod:`~deployer.lab.daemons`: the nodes' ``dockerd`` and their swarms; :mod:`~deployer.lab.image`: the app image
* :mod:`~deployer.lab.registry`: the private registry the nodes pull from (with workers)
* :mod:`~deployer.lab.state_service`: the state service and its seed; :mod:`~deployer.lab.front`: HAProxy
* :mod:`~deployer.lab.processes` and :mod:`~deployer.lab.teardown`: finding, stopping and removing it all

Nothing is re-exported: a name is imported from the module that defines it.
"""

from __future__ import annotations

import os
import shlex
import shutil
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from deployer.errors import ConfigError
from deployer.lab import bundles, daemons, front, image, network, registry, runner, state_service, teardown
from deployer.lab.layout import (
    CLUSTERS,
    DEFAULT_WORKERS,
    DOCKER_PORT,
    ENVIRONMENT,
    LIVE_COLOUR,
    MARKER,
    MAX_WORKERS,
    Cluster,
    LabPaths,
    check_workers,
    lab_dir,
    state_port,
    state_url,
)
from deployer.state.contract import COLOURS

# --- preconditions ---------------------------------------------------------------------------------


def _require_root() -> None:
    if os.geteuid() != 0:
        raise ConfigError("the lab needs root: run it with sudo")


def _require_tools(workers: int = 0) -> str:
    """Check the host tools the lab uses; return the dockerd path."""
    if workers:
        registry.find_binary()
    for tool in ("ip", "mount", "umount", "unshare"):
        if not shutil.which(tool):
            raise ConfigError(f"{tool} not found: {runner.install_hint(tool)}")
    dockerd = shutil.which("dockerd")
    if not dockerd:
        raise ConfigError("dockerd not found: apt-get install docker.io")
    if not (shutil.which("haproxy") or Path(front.HAPROXY_BINARY).exists()):  # checked before anything starts
        raise ConfigError(f"haproxy not found: {runner.install_hint('haproxy')}")
    return dockerd


# --- public API ------------------------------------------------------------------------------------


def workers_of(paths: LabPaths, workers: int | None = None) -> int:
    """The worker count per colour: ``workers`` when given, else the lab's own (2 for a new lab)."""
    if workers is not None:
        return check_workers(workers)
    recorded = paths.recorded_workers()
    return DEFAULT_WORKERS if recorded is None else recorded


def up(workers: int | None = None) -> dict[str, Any]:
    """Bring the lab up, or repair what is missing; idempotent. Returns a description of the lab.

    ``workers``: per colour (0 to 9); None keeps the lab's count (2 for a new lab). Fewer than the lab has
    removes the extra workers, their daemons, namespaces and data.
    """
    _require_root()
    paths = LabPaths(lab_dir())
    workers = workers_of(paths, workers)
    dockerd = _require_tools(workers)
    port = state_port()
    started = time.monotonic()
    actions: list[str] = []
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.root.chmod(0o755)
    (paths.root / MARKER).touch()
    paths.workers_file.write_text(f"{workers}\n")  # what `lab up` without --workers repairs next time

    reissued = bundles.ensure_certs(paths)
    if reissued:
        actions.append("issued certificates: " + ", ".join(sorted(reissued)))
    actions += _remove_extra_workers(paths, workers)
    namespaces = network.netns_list()
    for cluster in CLUSTERS.values():
        network.ensure_network(cluster, cluster.nodes(workers), namespaces)
    if not workers:
        registry.stop(paths)  # the single-node lab has none; its data stays for the next --workers
    images = [f"{image.IMAGE_REPOSITORY}:{tag}" for tag in image.IMAGE_TAGS]
    # The state service and the registry start while the daemons do; the images are pushed from the blue
    # manager as soon as it has them, while the workers join.
    with ThreadPoolExecutor(max_workers=2) as pool:
        state_started = pool.submit(state_service.ensure_running, paths, port, restart="state" in reissued)
        registry_started = (
            pool.submit(registry.ensure_running, paths, restart="registry" in reissued) if workers else None
        )

        def publish(cluster: Cluster) -> list[str]:
            if registry_started is None or cluster.colour != "blue":
                return []
            done = registry_started.result()
            pushed = _publish_images(paths, images)
            return [*([done] if done else []), *(f"pushed {ref} to the registry" for ref in pushed)]

        actions += daemons.ensure_daemons(paths, dockerd, workers, restart=reissued, with_images=publish)
        if state_started.result():
            actions.append("started the state service")
    if workers:
        images += [registry.reference(ref) for ref in images]
    seeded = state_service.seed(paths, port)
    if seeded == "created":
        actions.append(f"seeded environment {ENVIRONMENT!r} ({LIVE_COLOUR} live)")
    live = state_service.live_colour(paths, port)
    done = front.ensure(paths.root, front_servers(workers), live, front.front_port())
    if done:
        actions.append(done)

    description = describe(paths, port)
    description.update(
        seeded=seeded,
        actions=actions,
        images=images,
        seconds=round(time.monotonic() - started, 2),
    )
    return description


def front_servers(workers: int) -> dict[str, list[tuple[str, str]]]:
    """HAProxy's servers per colour, ``(name, address)``: every node of the colour.

    The single-node lab's server is named for its colour, as always; with workers each server is named for
    its node's hostname (``blue-manager``, ``blue-worker-1``…), and the colour's servers are those whose name
    is the colour or starts with ``COLOUR-`` (see :func:`deployer.haproxy.colour_servers`).
    """
    return {
        cluster.colour: [
            (cluster.colour if workers == 0 else node.hostname, node.address) for node in cluster.nodes(workers)
        ]
        for cluster in CLUSTERS.values()
    }


def _publish_images(paths: LabPaths, refs: list[str]) -> list[str]:
    """Push the lab's images from the blue manager to the registry; what was pushed."""
    client = daemons.docker_client(paths.colour("blue"))
    pushed = []
    try:
        for ref in refs:
            target, did = registry.publish(client.api, ref, paths)
            if did:
                pushed.append(target)
    finally:
        client.close()
    return pushed


def _remove_extra_workers(paths: LabPaths, workers: int) -> list[str]:
    """Stop and remove the workers beyond ``workers`` (their daemons, namespaces, veths, cgroups and data).

    Everything of theirs is deleted, so their daemons are killed at once (a worker's dockerd takes ~2.5 s to
    stop on SIGTERM). Their manager forgets them when it is next brought up (:func:`deployer.lab.daemons.prune_nodes`).
    """
    namespaces = network.netns_list()
    extra = [
        node
        for cluster in CLUSTERS.values()
        for node in (cluster.worker(i) for i in range(workers + 1, MAX_WORKERS + 1))
        if paths.node(node).root.exists() or node.netns in namespaces or Path("/sys/class/net", node.host_if).exists()
    ]
    if not extra:
        return []
    daemons.kill_nodes(extra, paths)
    for node in extra:
        npaths = paths.node(node)
        if npaths.root.exists():
            teardown.unmount_all(npaths.root)
            shutil.rmtree(npaths.root, ignore_errors=True)
        network.remove_node_network(node, namespaces)
        teardown.remove_cgroups(node)
    return [f"removed {node.hostname}" for node in extra]


def describe(paths: LabPaths | None = None, port: int | None = None) -> dict[str, Any]:
    """The static description of the lab: addresses, nodes, files, URLs (no probing)."""
    paths = paths or LabPaths(lab_dir())
    port = state_port() if port is None else port
    workers = paths.recorded_workers() or 0
    description: dict[str, Any] = {
        "lab_dir": str(paths.root),
        "environment": ENVIRONMENT,
        "live_colour": LIVE_COLOUR,
        "workers": workers,
        "clusters": {
            c.colour: {
                "netns": c.netns,
                "manager_address": c.address,
                "docker_port": DOCKER_PORT,
                "docker_host": c.docker_host,
                "host_address": c.host_address,
                "bridge": c.bridge,
                "nodes": [
                    {"hostname": n.hostname, "role": n.role, "address": n.address, "netns": n.netns}
                    for n in c.nodes(workers)
                ],
            }
            for c in CLUSTERS.values()
        },
        "client_cert_dir": str(paths.client),
        "state": {"url": state_url(port), "ca": str(paths.ca_cert), "token_file": str(paths.token)},
    }
    if workers:
        description["registry"] = {
            "address": registry.address(),
            "docker_config": str(registry.RegistryPaths(paths).docker_config),
        }
    return description


def status() -> dict[str, Any]:
    """Which components are up, and every node: ``{"up": bool, "blue": {..., "nodes": [...]}, ...}``.

    A colour is up when each of its nodes' daemons answers and Swarm reports each node Ready.
    """
    paths = LabPaths(lab_dir())
    port = state_port()
    workers = paths.recorded_workers() or 0
    namespaces = network.netns_list() if shutil.which("ip") else set()
    result: dict[str, Any] = {"lab_dir": str(paths.root), "workers": workers}
    for cluster in CLUSTERS.values():
        cpaths = paths.colour(cluster.colour)
        nodes = daemons.node_status(paths, cluster, workers)
        for node in nodes:
            if "netns" in node and node["netns"] not in namespaces:
                node["netns"] = None
        manager_up = daemons.answering(cpaths, timeout=1.0)
        all_ready = all(n["daemon"] == "up" and n["state"] == "ready" for n in nodes if n.get("expected", True))
        result[cluster.colour] = {
            "status": "up" if manager_up and all_ready else "down",
            "netns": cluster.netns if cluster.netns in namespaces else None,
            "pid": daemons.dockerd_pid(cpaths),
            "manager_address": cluster.address,
            "docker_host": cluster.docker_host,
            "nodes": nodes,
        }
    healthy = state_service.healthy(paths, port, timeout=1.0)
    result["state"] = {
        "status": "up" if healthy else "down",
        "pid": state_service.state_pid(paths),
        "url": state_url(port),
    }
    result["haproxy"] = front.status(paths.root)
    parts = [*COLOURS, "state", "haproxy"]
    if workers:
        result["registry"] = registry.status(paths)
        parts.append("registry")
    result["up"] = all(result[name]["status"] == "up" for name in parts)
    return result


def down() -> None:
    """Stop and remove everything the lab created; idempotent, never fails when already down."""
    _require_root()
    paths = LabPaths(lab_dir())
    front.stop(paths.root)
    state_service.stop(paths)
    registry.stop(paths)
    daemons.stop_daemons(paths)
    if paths.root.exists():
        teardown.unmount_all(paths.root)
    for cluster in CLUSTERS.values():
        network.remove_network(cluster)
        for node in cluster.all_nodes():
            teardown.remove_cgroups(node)
    teardown.remove_lab_dir(paths)


def env_values(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables that point the deployer, the switch and a load at the lab."""
    paths = LabPaths(lab_dir(environ))
    values = {
        "AUTO_STATE_URL": state_url(state_port(environ)),
        "AUTO_STATE_CA": str(paths.ca_cert),
        "AUTO_STATE_TOKEN_FILE": str(paths.token),
        "AUTO_DOCKER_CERT_PATH": str(paths.client),
        **front.env_values(paths.root, environ),
    }
    if paths.recorded_workers():  # the registry: image references, and DOCKER_CONFIG for --with-registry-auth
        values["AUTO_LAB_REGISTRY"] = registry.address()
        values["AUTO_LAB_DOCKER_CONFIG"] = str(registry.RegistryPaths(paths).docker_config)
    return values


def env_lines(environ: Mapping[str, str] | None = None) -> str:
    """Shell lines pointing the deployer at the lab (``eval "$(auto-deploy lab env)"``)."""
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in env_values(environ).items())
