"""The lab's environment-state service: started on loopback over HTTPS, seeded with environment ``lab``.

It runs ``deployer state serve`` from this very source tree (detached, its pid in ``state/server.pid``).
Every request to it goes through the real :class:`deployer.state.client.StateClient`, with the lab's
URL, CA and token, so the lab talks to the service exactly as the deployer does.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deployer.errors import DeployerError, RefusedError, UnknownEnvironmentError
from deployer.lab.argv import state_server_argv
from deployer.lab.layout import ACTOR, CLUSTERS, DOCKER_PORT, ENVIRONMENT, LIVE_COLOUR, LabPaths, state_url
from deployer.lab.processes import our_pid, stop_pids
from deployer.lab.runner import spawn, wait_ready

if TYPE_CHECKING:
    from deployer.state.client import Environment, StateClient

STATE_READY_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0


def state_client(
    paths: LabPaths, port: int, *, token: bool = False, timeout: float = 10.0, retries: int = 3
) -> StateClient:
    """A client of the lab's state service trusting the lab's CA; with ``token``, the lab's token too."""
    from deployer.state.client import StateClient  # imported lazily: `lab env` does not need requests

    return StateClient(
        state_url(port),
        token=paths.token.read_text().strip() if token else None,
        ca_bundle=str(paths.ca_cert),
        connect_timeout=min(timeout, 3.05),
        read_timeout=timeout,
        retries=retries,
    )


def state_pid(paths: LabPaths) -> int | None:
    """The pid of the running state service, or None."""
    return our_pid(paths.state_pid, str(paths.state_db))


def healthy(paths: LabPaths, port: int, timeout: float = 2.0) -> bool:
    """Whether the state service answers ``/v1/health`` with ok (one attempt, ``timeout`` seconds)."""
    if not paths.ca_cert.exists():
        return False
    try:
        state_client(paths, port, timeout=timeout, retries=0).health()
    except DeployerError:
        return False
    return True


def _write_private(path: Path, data: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data.encode())
    finally:
        os.close(fd)


def start(paths: LabPaths, port: int) -> subprocess.Popen[bytes]:
    """Start the state service detached (a token is made on first start)."""
    paths.state.mkdir(parents=True, exist_ok=True)
    paths.state.chmod(0o700)
    if not paths.token.exists():
        _write_private(paths.token, secrets.token_urlsafe(32))
    env = dict(os.environ)
    # Run this very source tree, whatever the current directory is.
    package_parent = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
    proc = spawn(state_server_argv(paths, port), log=paths.state_log, env=env, cwd=paths.state)
    paths.state_pid.write_text(f"{proc.pid}\n")
    return proc


def wait(paths: LabPaths, port: int, proc: subprocess.Popen[bytes] | None) -> None:
    """Wait until the service is healthy; DeployerError with its log's last line if it is not."""
    wait_ready(
        lambda: healthy(paths, port, timeout=1.0),
        proc,
        what="the state service",
        log=paths.state_log,
        timeout=STATE_READY_TIMEOUT,
        where=f" on {state_url(port)}",
    )


def ensure_running(paths: LabPaths, port: int, *, restart: bool = False) -> bool:
    """Start the service unless a healthy one runs (``restart``: replace it, e.g. for a new certificate),
    then wait for it; True when it was (re)started."""
    pid = state_pid(paths)
    if pid and restart:
        stop_pids([pid], STOP_TIMEOUT)
        pid = None
    proc = None
    if pid is None or not healthy(paths, port):
        if pid is not None:  # alive but not answering: replace it
            stop_pids([pid], STOP_TIMEOUT)
        proc = start(paths, port)
    wait(paths, port, proc)
    return proc is not None


def stop(paths: LabPaths) -> None:
    """Stop the state service; idempotent."""
    pid = state_pid(paths)
    if pid:
        stop_pids([pid], STOP_TIMEOUT)


def seed_body() -> dict[str, Any]:
    """The ``lab`` environment record the state service is seeded with."""
    return {
        "live_colour": LIVE_COLOUR,
        "clusters": {c.colour: {"manager_address": c.address, "docker_port": DOCKER_PORT} for c in CLUSTERS.values()},
        "actor": ACTOR,
    }


def seed(paths: LabPaths, port: int) -> str:
    """Make sure environment ``lab`` exists with the lab's addresses; "created" or "existed".

    An existing record is left alone when its addresses match (a PUT would bump its revision on
    every ``up``), and its live colour is kept (it only changes by switch; a PUT would get 409).
    """
    body = seed_body()
    clusters = {colour: (spec["manager_address"], spec["docker_port"]) for colour, spec in body["clusters"].items()}
    client = state_client(paths, port, token=True)
    try:
        current = _existing(client)
        if current is not None:
            have = {c: (cluster.manager_address, cluster.docker_port) for c, cluster in current.clusters.items()}
            if all(have.get(colour) == spec for colour, spec in clusters.items()):
                return "existed"
        live = body["live_colour"] if current is None else current.live_colour
        client.put_environment(ENVIRONMENT, live, clusters, actor=body["actor"])
    except DeployerError as exc:
        raise RefusedError(f"seeding environment {ENVIRONMENT!r} failed: {exc}") from exc
    return "created" if current is None else "existed"


def _existing(client: StateClient) -> Environment | None:
    """Environment ``lab`` as the service has it, or None when it does not exist yet."""
    try:
        return client.get_environment(ENVIRONMENT)
    except UnknownEnvironmentError:
        return None


def live_colour(paths: LabPaths, port: int) -> str:
    """The live colour of ``lab`` as the state service says (HAProxy's configuration follows it)."""
    try:
        return state_client(paths, port).get_environment(ENVIRONMENT).live_colour
    except DeployerError as exc:
        raise RefusedError(f"reading the live colour from the state service failed: {exc}") from exc
