"""The embedded local lab, orchestrated: ``up``, ``down``, ``status`` and ``env`` over its parts.

Two single-node Swarm clusters (blue, green), each a real ``dockerd`` in its own network namespace,
reachable from the host over a veth pair at ``10.213.X.2:2376`` with mutual TLS only; the
environment-state service on loopback over HTTPS, seeded with the environment ``lab`` (blue live);
HAProxy on 127.0.0.1:18000 in front of both colours' port 18080, the live colour's server ready and
the idle one in maintenance. Everything lives under one lab directory (``AUTO_LAB_DIR``, default
``/var/lib/auto-lab``) so that ``down`` can remove it all.

One module per concern, this one only puts them in order:

* :mod:`~deployer.lab.layout`: names, addresses, ports and the lab directory's layout
* :mod:`~deployer.lab.argv`: every command as data (pure argv builders)
* :mod:`~deployer.lab.runner`: the one way to run them (over :mod:`autocore.runner`)
* :mod:`~deployer.lab.bundles`: the TLS material; :mod:`~deployer.lab.network`: namespaces and veths
* :mod:`~deployer.lab.daemons`: the colours' ``dockerd`` and their swarms; :mod:`~deployer.lab.image`: the app image
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
from pathlib import Path
from typing import Any

from deployer.errors import ConfigError
from deployer.lab import bundles, daemons, front, image, network, runner, state_service, teardown
from deployer.lab.layout import (
    CLUSTERS,
    DOCKER_PORT,
    ENVIRONMENT,
    LIVE_COLOUR,
    MARKER,
    LabPaths,
    lab_dir,
    state_port,
    state_url,
)
from deployer.state.contract import COLOURS

# --- preconditions ---------------------------------------------------------------------------------


def _require_root() -> None:
    if os.geteuid() != 0:
        raise ConfigError("the lab needs root: run it with sudo")


def _require_tools() -> str:
    """Check the host tools the lab uses; return the dockerd path."""
    for tool in ("ip", "mount", "umount"):
        if not shutil.which(tool):
            raise ConfigError(f"{tool} not found: {runner.install_hint(tool)}")
    dockerd = shutil.which("dockerd")
    if not dockerd:
        raise ConfigError("dockerd not found: apt-get install docker.io")
    if not (shutil.which("haproxy") or Path(front.HAPROXY_BINARY).exists()):  # checked before anything starts
        raise ConfigError(f"haproxy not found: {runner.install_hint('haproxy')}")
    return dockerd


# --- public API ------------------------------------------------------------------------------------


def up() -> dict[str, Any]:
    """Bring the lab up, or repair what is missing; idempotent. Returns a description of the lab."""
    _require_root()
    dockerd = _require_tools()
    paths = LabPaths(lab_dir())
    port = state_port()
    started = time.monotonic()
    actions: list[str] = []
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.root.chmod(0o755)
    (paths.root / MARKER).touch()

    reissued = bundles.ensure_certs(paths)
    if reissued:
        actions.append("issued certificates: " + ", ".join(sorted(reissued)))
    for cluster in CLUSTERS.values():
        network.ensure_network(cluster)
    actions += daemons.ensure_daemons(paths, dockerd, restart=reissued)
    if state_service.ensure_running(paths, port, restart="state" in reissued):
        actions.append("started the state service")
    seeded = state_service.seed(paths, port)
    if seeded == "created":
        actions.append(f"seeded environment {ENVIRONMENT!r} ({LIVE_COLOUR} live)")
    addresses = {c.colour: c.address for c in CLUSTERS.values()}
    done = front.ensure(paths.root, addresses, state_service.live_colour(paths, port), front.front_port())
    if done:
        actions.append(done)

    description = describe(paths, port)
    description.update(
        seeded=seeded,
        actions=actions,
        images=[f"{image.IMAGE_REPOSITORY}:{tag}" for tag in image.IMAGE_TAGS],
        seconds=round(time.monotonic() - started, 2),
    )
    return description


def describe(paths: LabPaths | None = None, port: int | None = None) -> dict[str, Any]:
    """The static description of the lab: addresses, files, URLs (no probing)."""
    paths = paths or LabPaths(lab_dir())
    port = state_port() if port is None else port
    return {
        "lab_dir": str(paths.root),
        "environment": ENVIRONMENT,
        "live_colour": LIVE_COLOUR,
        "clusters": {
            c.colour: {
                "netns": c.netns,
                "manager_address": c.address,
                "docker_port": DOCKER_PORT,
                "docker_host": c.docker_host,
                "host_address": c.host_address,
            }
            for c in CLUSTERS.values()
        },
        "client_cert_dir": str(paths.client),
        "state": {"url": state_url(port), "ca": str(paths.ca_cert), "token_file": str(paths.token)},
    }


def status() -> dict[str, Any]:
    """Which components are up: ``{"up": bool, "blue": {...}, "green": {...}, "state": {...}}``."""
    paths = LabPaths(lab_dir())
    port = state_port()
    namespaces = network.netns_list() if shutil.which("ip") else set()
    result: dict[str, Any] = {"lab_dir": str(paths.root)}
    for cluster in CLUSTERS.values():
        cpaths = paths.colour(cluster.colour)
        result[cluster.colour] = {
            "status": "up" if daemons.answering(cpaths, timeout=1.0) else "down",
            "netns": cluster.netns if cluster.netns in namespaces else None,
            "pid": daemons.dockerd_pid(cpaths),
            "manager_address": cluster.address,
            "docker_host": cluster.docker_host,
        }
    healthy = state_service.healthy(paths, port, timeout=1.0)
    result["state"] = {
        "status": "up" if healthy else "down",
        "pid": state_service.state_pid(paths),
        "url": state_url(port),
    }
    result["haproxy"] = front.status(paths.root)
    result["up"] = all(result[name]["status"] == "up" for name in (*COLOURS, "state", "haproxy"))
    return result


def down() -> None:
    """Stop and remove everything the lab created; idempotent, never fails when already down."""
    _require_root()
    paths = LabPaths(lab_dir())
    front.stop(paths.root)
    state_service.stop(paths)
    daemons.stop_daemons(paths)
    if paths.root.exists():
        teardown.unmount_all(paths.root)
    for cluster in CLUSTERS.values():
        network.remove_network(cluster)
        teardown.remove_cgroups(cluster)
    teardown.remove_lab_dir(paths)


def env_values(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables that point the deployer, the switch and a load at the lab."""
    paths = LabPaths(lab_dir(environ))
    return {
        "AUTO_STATE_URL": state_url(state_port(environ)),
        "AUTO_STATE_CA": str(paths.ca_cert),
        "AUTO_STATE_TOKEN_FILE": str(paths.token),
        "AUTO_DOCKER_CERT_PATH": str(paths.client),
        **front.env_values(paths.root, environ),
    }


def env_lines(environ: Mapping[str, str] | None = None) -> str:
    """Shell lines pointing the deployer at the lab (``eval "$(auto-deploy lab env)"``)."""
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in env_values(environ).items())
