"""A scripted Docker Engine API: the few endpoints the deployer's SDK calls use, answered from JSON that
the test scripts and may change over time.

Served over HTTP on a unix socket (the usual case: the test's connector gives the deployer a real
``docker.APIClient(base_url="unix://...")``), or over HTTPS with client certificates on 127.0.0.1 (to
drive the production ``deployer.engine.connect`` itself).

Each service is scripted as a list of *frames*, ``(service JSON or None, tasks)``: every
``GET /services/{id}`` answers the next frame (the last one repeats) and ``GET /tasks`` answers the
tasks of the frame served last. The Watcher inspects then lists the tasks of each service once per
poll, so one frame is one poll. ``None`` is a service that does not exist (404).
"""

from __future__ import annotations

import json
import os
import re
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

STACK_LABEL = "com.docker.stack.namespace"
API_VERSION = "1.45"
Frame = tuple[dict[str, Any] | None, list[dict[str, Any]]]


def engine_time(seconds: float) -> str:
    """A timestamp the way the Engine writes them: RFC 3339, UTC, nanoseconds."""
    whole = datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{whole}.{int((seconds % 1) * 1e9):09d}Z"


# ---- JSON shaped like the Engine's (API 1.45)


def template(image: str, *, force: int = 0) -> dict[str, Any]:
    """A service's TaskTemplate; Swarm pins the image to the digest it resolved."""
    return {"ContainerSpec": {"Image": f"{image}@sha256:{'ab' * 32}", "Init": False}, "ForceUpdate": force}


def service(
    name: str,
    image: str,
    *,
    sid: str,
    version: int,
    replicas: int = 1,
    update: Mapping[str, Any] | None = None,
    monitor_seconds: float | None = None,
    stack: str | None = None,
) -> dict[str, Any]:
    """The inspect answer of a replicated service of a stack (``stack_name``)."""
    spec: dict[str, Any] = {
        "Name": name,
        "Labels": {STACK_LABEL: stack or name.split("_", 1)[0]},
        "TaskTemplate": template(image),
        "Mode": {"Replicated": {"Replicas": replicas}},
    }
    if monitor_seconds is not None:
        spec["UpdateConfig"] = {"Parallelism": 1, "Monitor": int(monitor_seconds * 1e9), "FailureAction": "pause"}
    answer: dict[str, Any] = {
        "ID": sid,
        "Version": {"Index": version},
        "CreatedAt": "2026-11-25T06:00:00.000000000Z",
        "UpdatedAt": "2026-11-25T06:30:00.000000000Z",
        "Spec": spec,
    }
    if update is not None:
        answer["UpdateStatus"] = dict(update)
    return answer


def update_status(state: str, message: str = "", started: str = "2026-11-25T06:31:00.000000000Z") -> dict[str, Any]:
    """A service's UpdateStatus (``updating``, ``completed``, ``paused``, ``rollback_started``...)."""
    status = {"State": state, "StartedAt": started}
    if message:
        status["Message"] = message
    return status


def task(
    tid: str,
    of: Mapping[str, Any],
    state: str = "running",
    *,
    desired: str = "running",
    age: float = 60.0,
    err: str | None = None,
    node: str = "node-1",
) -> dict[str, Any]:
    """A task of service ``of`` (its current template), in ``state`` since ``age`` seconds."""
    status: dict[str, Any] = {"Timestamp": engine_time(time.time() - age), "State": state, "Message": state}
    if err is not None:
        status["Err"] = err
    return {
        "ID": tid,
        "ServiceID": of["ID"],
        "NodeID": node,
        "Slot": 1,
        "Spec": json.loads(json.dumps(of["Spec"]["TaskTemplate"])),
        "DesiredState": desired,
        "Status": status,
    }


# ---- the server


@dataclass
class _Script:
    frames: list[Frame]
    served: int = 0  # the frame answered last
    upcoming: int = 0  # the frame the next inspect answers

    def current(self) -> Frame:
        return self.frames[self.served]


@dataclass
class Request:
    """One request the engine answered."""

    method: str
    path: str  # without the /vX.Y prefix
    query: dict[str, str]
    status: int
    peer_cn: str | None = None  # the client certificate's common name, over TLS


@dataclass
class ScriptedEngine:
    """One swarm manager's Engine API, answering from scripted frames."""

    name: str
    swarm_manager: bool = True
    requests: list[Request] = field(default_factory=list)
    _scripts: dict[str, _Script] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: socketserver.BaseServer | None = None
    _thread: threading.Thread | None = None
    socket_path: str | None = None
    port: int | None = None

    # ---- scripting

    def script(self, name: str, *frames: Frame) -> None:
        """Replace what the engine says about service ``name`` from now on."""
        if not frames:
            raise ValueError("script() needs at least one frame")
        with self._lock:
            self._scripts[name] = _Script(list(frames))

    @property
    def writes(self) -> list[Request]:
        """Every request that is not a read: the deployer must change nothing through the SDK."""
        return [r for r in self.requests if r.method not in ("GET", "HEAD")]

    # ---- answers

    def _services(self) -> list[dict[str, Any]]:
        found = []
        for script in self._scripts.values():
            svc, _ = script.current()
            if svc is not None:
                found.append(svc)
        return found

    def _inspect(self, ident: str) -> dict[str, Any] | None:
        for name, script in self._scripts.items():
            ids = {name} | {f[0]["ID"] for f in script.frames if f[0] is not None}
            if ident in ids:
                script.served = script.upcoming
                script.upcoming = min(script.upcoming + 1, len(script.frames) - 1)
                return script.current()[0]
        return None

    def _tasks(self, services: Iterable[str]) -> list[dict[str, Any]]:
        wanted = set(services)
        tasks: list[dict[str, Any]] = []
        for name, script in self._scripts.items():
            svc, frame_tasks = script.current()
            if svc is not None and (not wanted or wanted & {name, svc["ID"]}):
                tasks += frame_tasks
        return tasks

    def answer(self, method: str, path: str, query: dict[str, str]) -> tuple[int, Any]:
        """The (status, JSON body) for one request."""
        filters = _filters(query.get("filters"))
        with self._lock:
            if method == "GET" and path == "/_ping":
                return 200, "OK"
            if method == "GET" and path == "/version":
                return 200, {
                    "Version": "26.1.5",
                    "ApiVersion": API_VERSION,
                    "MinAPIVersion": "1.24",
                    "Os": "linux",
                    "Arch": "amd64",
                }
            if method == "GET" and path == "/info":
                swarm = (
                    {"NodeID": f"{self.name}-node-1", "LocalNodeState": "active", "ControlAvailable": True}
                    if self.swarm_manager
                    else {"NodeID": "", "LocalNodeState": "inactive", "ControlAvailable": False}
                )
                return 200, {
                    "ID": f"{self.name}-engine",
                    "Name": f"{self.name}-manager",
                    "ServerVersion": "26.1.5",
                    "SystemTime": engine_time(time.time()),
                    "Swarm": swarm,
                }
            if method == "GET" and path == "/nodes":
                return 200, [{"ID": f"{self.name}-node-1", "Spec": {"Role": "manager", "Availability": "active"}}]
            if method == "GET" and path == "/services":
                return 200, [s for s in self._services() if _service_matches(s, filters)]
            match = re.fullmatch(r"/services/([^/]+)", path)
            if method == "GET" and match:
                found = self._inspect(match.group(1))
                if found is None:
                    return 404, {"message": f"service {match.group(1)} not found"}
                return 200, found
            if method == "GET" and path == "/tasks":
                desired = set(filters.get("desired-state", []))
                tasks = self._tasks(filters.get("service", []))
                return 200, [t for t in tasks if not desired or t["DesiredState"] in desired]
        return 404, {"message": "page not found"}

    # ---- serving

    def serve_unix(self, path: str) -> str:
        """Listen on the unix socket ``path``; returns the ``unix://`` base URL."""
        self.socket_path = path
        self._start(_UnixServer(path, _handler(self)))
        return f"unix://{path}"

    def serve_tls(self, context: ssl.SSLContext) -> int:
        """Listen on 127.0.0.1 (an ephemeral port) with HTTPS; returns the port."""
        server = _TLSServer(("127.0.0.1", 0), _handler(self), context)
        self.port = server.server_address[1]
        self._start(server)
        return self.port

    def _start(self, server: socketserver.BaseServer) -> None:
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop answering; the socket goes away (a cluster that is down)."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
        if self.socket_path and os.path.exists(self.socket_path):
            os.unlink(self.socket_path)
        self._server = None


def _filters(raw: str | None) -> dict[str, list[str]]:
    """The Engine's ``filters`` query parameter: ``{"key": ["v"]}`` or ``{"key": {"v": true}}``."""
    if not raw:
        return {}
    decoded = json.loads(raw)
    return {
        key: list(value) if isinstance(value, list) else [k for k, on in value.items() if on]
        for key, value in decoded.items()
    }


def _service_matches(svc: Mapping[str, Any], filters: Mapping[str, list[str]]) -> bool:
    spec = svc["Spec"]
    for wanted in filters.get("label", []):
        key, sep, value = wanted.partition("=")
        labels = spec.get("Labels") or {}
        if key not in labels or (sep and labels[key] != value):
            return False
    names = filters.get("name", [])
    if names and not any(spec["Name"].startswith(n) for n in names):
        return False
    ids = filters.get("id", [])
    return not ids or any(svc["ID"].startswith(i) for i in ids)


def _handler(engine: ScriptedEngine) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "Docker/26.1.5 (linux)"
        sys_version = ""
        timeout = 10

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            split = urlsplit(self.path)
            path = re.sub(r"^/v[0-9]+\.[0-9]+(?=/)", "", split.path)
            query = dict(parse_qsl(split.query))
            status, body = engine.answer(self.command, path, query)
            peer = None
            if isinstance(self.connection, ssl.SSLSocket):
                cert = self.connection.getpeercert() or {}
                peer = next((v for rdn in cert.get("subject", ()) for k, v in rdn if k == "commonName"), None)
            with engine._lock:
                engine.requests.append(Request(self.command, path, query, status, peer))
            text = body if isinstance(body, str) else json.dumps(body)
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain" if isinstance(body, str) else "application/json")
            self.send_header("Api-Version", API_VERSION)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = do_PUT = do_HEAD = _serve  # noqa: N815 - http.server's naming

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's signature
            pass

    return Handler


class _UnixServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    block_on_close = False

    def get_request(self) -> tuple[socket.socket, Any]:
        request, _ = super().get_request()
        return request, ("unix", 0)  # BaseHTTPRequestHandler wants a (host, port) client address


class _TLSServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], handler: Callable[..., Any], context: ssl.SSLContext
    ) -> None:  # fmt: skip
        self.context = context
        super().__init__(address, handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The handshake runs in the request's thread; a refused client certificate only ends this one.
        try:
            request.settimeout(10)
            tls = self.context.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            self.shutdown_request(tls)
