"""The lab as the platform runs: each colour a manager and two workers, each node its own ``dockerd`` in its own
network and UTS namespaces, joined into one swarm per colour; images reach the workers only through the lab's
private registry; HAProxy has every node as a server.

The session's lab is the single-node one (tests/support.py: the fastest); this module grows it with
``auto-deploy lab up --workers 2``, as a user would, and brings it back to a single node when it is done, as the
other tests expect it. Without the lab (or docker-registry) the tests skip, or fail when CI=true.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deployer.lab import daemons, front, registry
from deployer.lab import lab as lab_module
from deployer.lab.layout import CLUSTERS, LabPaths, lab_dir
from tests.support import Lab, http_get, unavailable

pytestmark = pytest.mark.lab

WORKERS = 2
APP_PORT = 18080


@pytest.fixture(scope="module")
def multinode(lab: Lab) -> Iterator[dict[str, Any]]:
    """The lab with two workers per colour; ``{"info": lab up's JSON, "seconds", "env": for the CLI}``."""
    if shutil.which("docker-registry") is None:
        unavailable("docker-registry is not installed (make system installs it)")
    # The lab's own settings (its directory, ports) as this session has them, for the commands run below.
    env = {**lab.env, **{k: v for k, v in os.environ.items() if k.startswith("AUTO_LAB_")}}
    started = time.monotonic()
    proc = lab.cli("lab", "up", "--workers", str(WORKERS), env=env)
    seconds = time.monotonic() - started
    try:
        assert proc.returncode == 0, proc.stderr
        values = lab_module.env_values()
        env.update(values, DOCKER_CONFIG=values["AUTO_LAB_DOCKER_CONFIG"])  # the registry's login
        yield {"info": json.loads(proc.stdout), "seconds": seconds, "env": env}
    finally:
        lab_module.up(workers=0)  # the single-node lab the other tests expect
    status = lab_module.status()
    assert status["up"] and status["workers"] == 0
    assert [[n["hostname"] for n in status[c]["nodes"]] for c in CLUSTERS] == [["blue-manager"], ["green-manager"]]


def swarm_nodes(lab: Lab, colour: str) -> list[dict]:
    api = lab.docker(colour)
    try:
        return api.nodes()
    finally:
        api.close()


def test_each_colour_is_a_manager_and_two_workers_with_their_own_hostnames(lab: Lab, multinode) -> None:
    assert multinode["seconds"] < 60, multinode["info"]["actions"]
    hostnames = []
    for colour in CLUSTERS:
        nodes = swarm_nodes(lab, colour)
        summary = sorted(
            (n["Description"]["Hostname"], n["Spec"]["Role"], n["Status"]["State"], n["Status"]["Addr"]) for n in nodes
        )
        prefix = "10.213.1" if colour == "blue" else "10.213.2"
        assert summary == [
            (f"{colour}-manager", "manager", "ready", f"{prefix}.2"),
            (f"{colour}-worker-1", "worker", "ready", f"{prefix}.3"),
            (f"{colour}-worker-2", "worker", "ready", f"{prefix}.4"),
        ]
        hostnames += [n["Description"]["Hostname"] for n in nodes]
        described = multinode["info"]["clusters"][colour]["nodes"]
        assert [(n["hostname"], n["role"]) for n in described] == [(h, r) for h, r, _, _ in summary]
    assert len(set(hostnames)) == 6
    assert multinode["info"]["registry"]["address"] == registry.address()


def worker_client(node_hostname: str) -> contextlib.closing[Any]:
    """A ``docker.DockerClient`` on a worker's local socket (workers listen on no TCP port), closed after use."""
    colour, _, index = node_hostname.partition("-worker-")
    return contextlib.closing(daemons.docker_client(LabPaths(lab_dir()).node(CLUSTERS[colour].worker(int(index)))))


def test_a_stack_on_the_workers_pulls_from_the_registry_converges_and_answers_through_haproxy(
    lab: Lab, multinode, tmp_path: Path
) -> None:
    live = lab.live_colour()
    workers = [f"{live}-worker-{i}" for i in range(1, WORKERS + 1)]
    version = f"mn-{uuid.uuid4().hex[:8]}"
    local = f"auto-lab/web:{version}"
    # An image only the registry has: pushed from the blue manager under a new tag, which is then taken away.
    blue = lab.docker("blue")
    try:
        blue.tag("auto-lab/web:2", "auto-lab/web", version)
        image, pushed = registry.publish(blue, local, LabPaths(lab_dir()))
        assert pushed and image == f"{registry.address()}/{local}"
        blue.remove_image(local)
        blue.remove_image(image)
    finally:
        blue.close()
    for worker in workers:
        with worker_client(worker) as client:
            assert not any(image in (i.get("RepoTags") or []) for i in client.api.images())
    # Nothing else answers on the live colour's 18080 (the front app of other tests runs on its manager).
    api = lab.docker(live)
    try:
        for service in api.services():
            ports = (service.get("Endpoint") or {}).get("Spec", {}).get("Ports") or []
            if any(p.get("PublishedPort") == APP_PORT for p in ports):
                api.remove_service(service["ID"])
    finally:
        api.close()
    stack = f"mn{uuid.uuid4().hex[:6]}"
    compose = tmp_path / "stack.yml"
    compose.write_text(f"""services:
  web:
    image: {image}
    environment: {{APP_VERSION: {version}}}
    ports:
      - {{target: 8080, published: {APP_PORT}, protocol: tcp, mode: host}}
    deploy:
      replicas: {WORKERS}
      placement: {{constraints: ["node.role == worker"], max_replicas_per_node: 1}}
      update_config: {{order: stop-first, failure_action: rollback, monitor: 1s}}
      restart_policy: {{condition: any, delay: 1s}}
""")
    try:
        started = time.monotonic()
        proc = lab.cli(
            "deploy", "--env", "lab", "--stack", stack, "-c", str(compose), "--colour", "live",
            "--resolve-image", "never", "--with-registry-auth", "--json", env=multinode["env"],
        )  # fmt: skip
        deploy_seconds = time.monotonic() - started
        assert proc.returncode == 0, proc.stderr
        summary = json.loads(proc.stdout)
        assert summary["result"] == "converged" and summary["colour"] == live
        assert [(s["service"], s["running"], s["desired"]) for s in summary["services"]] == [
            (f"{stack}_web", WORKERS, WORKERS)
        ]
        api = lab.docker(live)
        try:
            hostnames = {n["ID"]: n["Description"]["Hostname"] for n in api.nodes()}
            tasks = api.tasks(filters={"service": f"{stack}_web", "desired-state": "running"})
        finally:
            api.close()
        on = sorted(hostnames[t["NodeID"]] for t in tasks if t["Status"]["State"] == "running")
        assert on == workers  # one task on each worker, none on the manager
        # The workers pulled the image from the registry, with the credentials the deploy handed them.
        for worker in workers:
            with worker_client(worker) as client:
                digests = [d for i in client.api.images() for d in (i.get("RepoDigests") or [])]
                assert any(d.startswith(f"{registry.address()}/auto-lab/web@sha256:") for d in digests), digests
        # The overlay network between workers: worker-1's task reaches worker-2's on its overlay address.
        by_node = {hostnames[t["NodeID"]]: t for t in tasks}
        overlay = next(
            a["Addresses"][0].split("/")[0]
            for a in by_node[workers[1]]["NetworksAttachments"]
            if a["Network"]["Spec"]["Name"] == f"{stack}_default"
        )
        container = by_node[workers[0]]["Status"]["ContainerStatus"]["ContainerID"]
        with worker_client(workers[0]) as client:
            code, output = client.containers.get(container).exec_run(
                ["busybox", "timeout", "5", "wget", "-qO-", f"http://{overlay}:8080/"]
            )
        assert (code, output.decode().strip()) == (0, f"version {version}")
        # Through HAProxy: the live colour's servers are its three nodes; the workers answer, the manager does not.
        url = multinode["env"]["AUTO_LAB_FRONT_URL"] + "/"
        deadline = time.monotonic() + 15
        while True:
            servers = front.status(LabPaths(lab_dir()).root)["servers"]
            up = sorted(name for name, s in servers.items() if s["status"] == "UP")
            if up == workers or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert up == workers, servers
        assert {name for name in servers if name.startswith(f"{live}-")} == {f"{live}-manager", *workers}
        answers = {http_get(url, timeout=10)[1].strip() for _ in range(6)}
        assert answers == {f"version {version}"}
        print(f"multi-node: lab up --workers {WORKERS} {multinode['seconds']:.1f} s; deploy {deploy_seconds:.1f} s")
    finally:
        lab.remove_stack(stack, wait=False)


def test_lab_status_shows_every_node(lab: Lab, multinode) -> None:
    proc = lab.cli("lab", "status", env=multinode["env"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    status = json.loads(proc.stdout)
    assert status["up"] is True and status["workers"] == WORKERS
    assert status["registry"]["status"] == "up"
    for colour, cluster in CLUSTERS.items():
        rows = status[colour]["nodes"]
        assert [(r["hostname"], r["role"], r["state"], r["availability"], r["address"], r["daemon"]) for r in rows] == [
            (n.hostname, n.role, "ready", "active", n.address, "up") for n in cluster.nodes(WORKERS)
        ]
        assert all(r["pid"] and r["netns"] == n.netns for r, n in zip(rows, cluster.nodes(WORKERS), strict=True))
