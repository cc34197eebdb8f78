"""What every fault case shares: the request loop through HAProxy, the measures, running the CLI and reading it.

A case runs inside ``with fault(N) as case:`` (the ``fault`` fixture): a bounded request loop runs against the
lab's front (HAProxy) for the whole case; ``case.inject()`` marks the moment the fault is put in, and
``case.detected()`` the moment the deployer's exit (or its first progress line naming the fault) shows it. On
the way out the case's measures are kept for the session's summary, and the loop must have seen no failed request
unless the row says the fault takes the front itself down.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deployer.haproxy import Runtime
from deployer.lab.load import Load, LoadResult
from deployer.state.client import StateClient
from tests.faults.matrix import Row, row
from tests.support import FRONT_STACK, ROOT, Lab

LOAD_CONNECTIONS = 2  # enough to see a failed request, little enough to leave the 2 CI cores to the lab
MEASURES: list[dict[str, Any]] = []  # one entry per case that ran, for the session's summary

# Fast settings merged over every stack a case deploys: the verdicts come in seconds, not minutes.
FAST_DEPLOY = [
    "deploy:",
    "  replicas: 1",
    "  update_config: {order: stop-first, failure_action: pause, monitor: 1s}",
    "  rollback_config: {order: stop-first, monitor: 1s}",
    "  restart_policy: {condition: any, delay: 1s}",
]


def stack_name() -> str:
    """A fresh stack name."""
    return f"f{uuid.uuid4().hex[:8]}"


def compose(directory: Path, name: str, services: Mapping[str, tuple[str, list[str]]]) -> str:
    """Write a compose file (``services``: name -> (image, extra YAML lines)); its path."""
    lines = ["services:"]
    for service, (image, extra) in services.items():
        lines += [f"  {service}:", f"    image: {image}", *(f"    {line}" for line in extra)]
    path = directory / name
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def deploy_args(stack: str, *files: str, colour: str = "live", extra: tuple[str, ...] = ()) -> list[str]:
    """``auto-deploy deploy`` arguments for the lab (images are local: ``--resolve-image never``)."""
    args = ["deploy", "--env", "lab", "--stack", stack, "--resolve-image", "never", "--colour", colour, "--json"]
    for path in files:
        args += ["-c", path]
    return [*args, *extra]


def error_line(proc: subprocess.CompletedProcess[str] | Finished) -> str:
    """The one ``Error: …`` line a failed command ends with; no traceback anywhere in its output."""
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("Error: "), proc.stderr
    assert sum(line.startswith("Error: ") for line in lines) == 1, proc.stderr
    return lines[-1]


def summary(proc: subprocess.CompletedProcess[str] | Finished) -> dict[str, Any] | None:
    """The ``--json`` report on stdout, if any."""
    text = proc.stdout.strip()
    return json.loads(text) if text.startswith("{") else None


def state(lab: Lab, **env: str) -> StateClient:
    """A client of the lab's state service (``env`` overrides the lab's variables)."""
    return StateClient.from_env({**lab.env, **env})


def records(lab: Lab, stack: str) -> list[dict[str, Any]]:
    """The deploys of ``stack`` the state service recorded, newest first."""
    return state(lab).deployments("lab", stack=stack, limit=50)


def record(client: StateClient, env: str, colour: str, version: str, files: dict[str, Path]) -> None:
    """Record that the front app's ``version`` runs on ``colour`` (as it does)."""
    client.record_deployment(
        env, colour=colour, stack=FRONT_STACK, services=[{"name": "web", "image": f"auto-lab/web:{version}",
        "replicas": 1}], compose=[{"file": "web.yml", "content": files[version].read_text()}], result="succeeded",
        actor="fault matrix", options={"resolve_image": "never", "with_registry_auth": False, "prune": False},
    )  # fmt: skip


def last_event_id(lab: Lab) -> int:
    """The id of the environment's newest audit event (0 when none)."""
    return max((e["id"] for e in state(lab).history("lab", limit=1)), default=0)


def events_since(lab: Lab, first: int) -> list[dict[str, Any]]:
    """The audit events after ``first``, oldest first."""
    return [e for e in reversed(state(lab).history("lab", limit=200)) if e["id"] > first]


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll ``predicate`` until it is truthy (its value) or ``timeout`` passes (AssertionError naming ``what``)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout:g} s"
        time.sleep(interval)


@dataclass
class Finished:
    """A finished background command: its exit code and output, and when each stderr line arrived."""

    returncode: int
    stdout: str
    stderr: str
    lines: list[tuple[float, str]]


class Background:
    """``auto-deploy ARGS`` running in the background; its stderr lines are read as they come, with their time."""

    def __init__(self, lab: Lab, *args: str, env: Mapping[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "deployer", *args], env=dict(env or lab.env), cwd=ROOT, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        self.lines: list[tuple[float, str]] = []
        self._changed = threading.Condition()
        self._stdout: list[str] = []
        self._readers = [
            threading.Thread(target=self._read_stderr, daemon=True),
            threading.Thread(target=lambda: self._stdout.append(self.proc.stdout.read()), daemon=True),  # type: ignore[union-attr]
        ]
        for reader in self._readers:
            reader.start()

    def _read_stderr(self) -> None:
        for line in self.proc.stderr:  # type: ignore[union-attr]
            with self._changed:
                self.lines.append((time.monotonic(), line.rstrip("\n")))
                self._changed.notify_all()

    def wait_line(self, needle: str, timeout: float, *, after: float = 0.0) -> float:
        """Wait for a stderr line containing ``needle`` (arrived after ``after``); the time it arrived."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for at, line in self.lines:
                    if needle in line and at >= after:
                        return at
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.proc.poll() is not None and not self._readers[0].is_alive()):
                    raise AssertionError(f"no line with {needle!r} within {timeout:g} s:\n" + self.text())
                self._changed.wait(min(remaining, 0.2))

    def text(self) -> str:
        """Stderr so far."""
        return "\n".join(line for _, line in self.lines)

    def wait(self, timeout: float) -> Finished:
        """Wait for the command to exit (killed after ``timeout``)."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"auto-deploy did not exit within {timeout:g} s:\n{self.text()}") from None
        for reader in self._readers:
            reader.join(timeout=10)
        return Finished(self.proc.returncode, "".join(self._stdout), self.text() + "\n", list(self.lines))

    def kill(self) -> None:
        """SIGKILL it (no cleanup of its own), when it still runs."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


@dataclass
class Case:
    """One case of the matrix while it runs: its row, the request loop, and the moments it measures."""

    lab: Lab
    row: Row
    load: Load | None = None
    injected: float | None = None
    detect_seconds: float | None = None
    result: LoadResult | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    def inject(self) -> float:
        """Mark the moment the fault is put in (call it right after)."""
        self.injected = time.monotonic()
        return self.injected

    def detected(self, at: float | None = None) -> float:
        """Mark the moment the deployer shows the fault (its exit, or its first line naming it)."""
        assert self.injected is not None, "inject() first"
        self.detect_seconds = round((time.monotonic() if at is None else at) - self.injected, 2)
        return self.detect_seconds

    def check_exit(self, proc: subprocess.CompletedProcess[str] | Finished) -> str | None:
        """The exit code is the row's; a failure ends with one ``Error: …`` line (returned), never a traceback."""
        assert proc.returncode == self.row.exit_code, f"exit {proc.returncode}:\n{proc.stderr}"
        assert "Traceback" not in proc.stderr, proc.stderr
        return error_line(proc) if self.row.exit_code else None

    def __enter__(self) -> Case:
        url = self.lab.env["AUTO_LAB_FRONT_URL"] + "/"
        self.load = Load(url, connections=LOAD_CONNECTIONS, max_seconds=240).start()
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        assert self.load is not None
        self.result = self.load.stop()
        MEASURES.append(
            {
                "case": self.row.number,
                "fault": self.row.fault,
                "exit_code": self.row.exit_code,
                "detect_seconds": self.detect_seconds,
                "requests": self.result.sent,
                "failed_requests": self.result.failed,
                "seconds": round(self.result.seconds, 2),
                "passed": kind is None,
                **self.notes,
            }
        )
        if kind is None and self.row.live_served:
            assert self.result.sent > 0, "the request loop sent nothing"
            assert self.result.failed == 0, f"{self.result.failed} requests failed: {self.result.errors}"


def case(lab: Lab, number: int) -> Case:
    """Case ``number`` of the matrix, to run in a ``with``."""
    return Case(lab, row(number))


def services_of(lab: Lab, colour: str, stack: str) -> list[str]:
    """The names of the stack's services on a colour."""
    api = lab.docker(colour)
    try:
        return sorted(s["Spec"]["Name"] for s in api.services(filters={"label": f"com.docker.stack.namespace={stack}"}))
    finally:
        api.close()


def admin_states(lab: Lab) -> dict[str, str]:
    """Each HAProxy server of the lab's backend and its admin state."""
    return {name: s.admin for name, s in Runtime(lab.env["AUTO_HAPROXY_SOCKET"]).servers("app").items()}
