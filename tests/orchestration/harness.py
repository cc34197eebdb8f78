"""The rig every orchestration test drives: the real state service on loopback, two scripted swarm
managers (blue and green) on unix sockets, a scripted HAProxy admin socket, a recording runner, and the
connector that hands the deployer a real ``docker.APIClient`` for the right scripted engine.
"""

from __future__ import annotations

import io
import os
import re
import stat
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests.exceptions

from deployer import deploy, engine
from deployer.commands import Command
from deployer.state.client import StateClient
from deployer.state.server import make_server
from deployer.tls import TLSMaterial
from tests.orchestration.engine_api import ScriptedEngine, service, task
from tests.orchestration.haproxy_socket import HAProxySocket
from tests.orchestration.recording import RecordingRunner

TOKEN = "orchestration-token-5c1e0b7d"
ENV = "lab"
CLUSTERS = {"blue": ("10.213.1.2", 2376), "green": ("10.213.2.2", 2376)}  # data only: never connected to
HOSTS = {colour: f"tcp://{address}:{port}" for colour, (address, port) in CLUSTERS.items()}
ACTOR = "alice"
JOB_URL = "https://10.213.0.10/auto/web/-/jobs/42"
ENVIRON = {"GITLAB_USER_LOGIN": ACTOR, "CI_JOB_URL": JOB_URL}
_SAID = re.compile(r"^\[\s*[0-9]+\.[0-9]s\] ")


def no_sleep(_seconds: float) -> None:
    """Retries of the state client without waiting."""


@dataclass
class StateServer:
    """The real environment-state server, in a thread on 127.0.0.1."""

    url: str
    db_path: str
    server: ThreadingHTTPServer
    thread: threading.Thread

    @classmethod
    def start(cls, db_path: str) -> StateServer:
        server = make_server(db_path, "127.0.0.1", 0, TOKEN, access_log=False)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        thread.start()
        return cls(f"http://127.0.0.1:{server.server_address[1]}", db_path, server, thread)

    def client(self) -> StateClient:
        """A client holding the write token, without retries."""
        return StateClient(self.url, token=TOKEN, retries=0, sleep=no_sleep)

    def stop(self) -> None:
        """Stop serving (idempotent): afterwards connections are refused."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@dataclass(frozen=True)
class Connection:
    """One call of the connector: where the deployer connected, and its private TLS directory then."""

    address: str
    port: int
    cert_dir: str
    dir_mode: int
    files: dict[str, int]  # name -> mode


@dataclass
class UnixConnector:
    """An ``engine.Connector`` that gives a real ``docker.APIClient`` on the scripted engine's unix socket.

    Failing to reach the engine is translated by the production ``engine.translate``, as ``engine.connect``
    does, so an engine that is down reads as it would on the real lab.
    """

    engines: Mapping[tuple[str, int], ScriptedEngine]
    calls: list[Connection] = field(default_factory=list)
    clients: list[Any] = field(default_factory=list)

    def __call__(self, address: str, port: int, cert_dir: str) -> Any:
        files = {name: stat.S_IMODE(os.stat(os.path.join(cert_dir, name)).st_mode) for name in os.listdir(cert_dir)}
        self.calls.append(Connection(address, port, cert_dir, stat.S_IMODE(os.stat(cert_dir).st_mode), files))
        target = self.engines[(address, port)]
        try:
            api = docker.APIClient(base_url=f"unix://{target.socket_path}", version="auto", timeout=5)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise engine.translate(exc, address, port) from None
        self.clients.append(api)
        return api

    def close(self) -> None:
        for api in self.clients:
            api.close()


@dataclass
class Rig:
    """Everything a test needs, wired together; see the module docstring."""

    directory: Path
    state_server: StateServer
    state: StateClient  # what the deployer uses
    rival: StateClient  # somebody else: another job, an operator
    engines: dict[str, ScriptedEngine]
    haproxy: HAProxySocket
    runner: RecordingRunner
    connector: UnixConnector
    material: TLSMaterial
    out: io.StringIO = field(default_factory=io.StringIO)

    @property
    def blue(self) -> ScriptedEngine:
        return self.engines["blue"]

    @property
    def green(self) -> ScriptedEngine:
        return self.engines["green"]

    def context(self, *, lock_wait: float = 0.0, lock_ttl: float = 30.0) -> deploy.Context:
        """The deployer's I/O: this rig's state client, runner, connector and output."""
        return deploy.Context(
            state=self.state,
            runner=self.runner,
            connect=self.connector,
            out=self.out,
            environ=dict(ENVIRON),
            lock_wait=lock_wait,
            lock_ttl=lock_ttl,
        )

    def said(self) -> list[str]:
        """The progress lines the deployer wrote, without their time stamps."""
        return [_SAID.sub("", line) for line in self.out.getvalue().splitlines()]

    def compose(self, name: str, services: Mapping[str, str], extra: str = "") -> str:
        """Write a compose file (service -> image) and return its path."""
        lines = ["services:"]
        for svc, image in services.items():
            lines += [f"  {svc}:", f"    image: {image}", "    deploy:", "      replicas: 1"]
        path = self.directory / name
        path.write_text("\n".join(lines) + "\n" + extra)
        return str(path)

    def kinds(self) -> list[str]:
        """The kinds of the environment's history events, oldest first."""
        return [e["kind"] for e in reversed(self.state.history(ENV, limit=200))]


# ---- scripted Swarm behaviour, as hooks of the recording runner


def appears(
    target: ScriptedEngine, name: str, image: str, *steps: str, sid: str, replicas: int = 1
) -> Callable[[Command], None]:
    """On the command: service ``name`` is created; its tasks are in ``steps`` on successive polls.

    A step is a task state (``starting``, ``running``...); ``running`` tasks have run for a minute
    (past Swarm's monitor window), so the service converges on the first poll that sees them.
    """
    svc = service(name, image, sid=sid, version=1, replicas=replicas)
    frames = [
        (svc, [task(f"{sid}-t{i}", svc, step, age=60.0 if step == "running" else 0.0) for i in range(1, replicas + 1)])
        for step in steps
    ]
    return lambda _command: target.script(name, *frames)


def running(target: ScriptedEngine, name: str, image: str, *, sid: str, version: int = 10) -> dict[str, Any]:
    """Service ``name`` exists and runs ``image`` (one task); returns its inspect answer."""
    svc = service(name, image, sid=sid, version=version, update=None)
    target.script(name, (svc, [task(f"{sid}-old", svc)]))
    return svc
