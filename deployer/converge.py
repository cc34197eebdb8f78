"""Deciding, from what the Swarm API says, whether the services of a deploy have converged.

``assess`` is a pure function of one poll's answers, so the rules are unit-tested on recorded
JSON; ``Watcher`` does the polling through the Docker SDK's low-level client.

Rules, per service this deploy defines:
- It converged when its desired replicas run the current task template, no task of an older
  template is still meant to run, and, when this deploy started a rolling update, Swarm says
  that update ``completed`` (so Swarm's own ``monitor`` window has passed).
- A service created for the first time has no UpdateStatus (moby#28012) and Swarm does not watch
  it, so we do what Swarm does for updates: its tasks must stay Running for the service's
  ``update_config.monitor`` (Swarm's default, 5 s, when unset) before they count. The same holds
  after a new task failed, and for a spec change that started no rolling update: a crash-looping
  container is briefly Running between crashes.
- An update that ends in ``rollback_*`` or ``paused`` failed; so did a service whose new tasks
  failed ``MAX_FAILURES`` times (outside a rolling update, where Swarm's failure_action rules), and
  one with a task Swarm has kept pending for ``UNSCHEDULABLE_GRACE_SECONDS`` because no node can take
  it (a host-mode port already held, a placement constraint no node meets, more memory reserved than
  any node has): Swarm says so from the first second, so the deploy fails then, not at the deadline;
  the deadline passing is a failure too.
- Every progress line of a service not yet running names the state of its newest waiting task and
  Swarm's message for it, and each node Swarm reports down that holds one of its tasks, by hostname.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import docker.errors
import requests.exceptions

from deployer.errors import DockerUnavailableError

MAX_FAILURES = 3
# How long a task may wait for a node Swarm says it has none for ("no suitable node (...)") before the deploy
# fails: long enough for a port or memory an old task still holds to be freed during an update, far shorter
# than any --timeout. A placement no node meets never resolves by itself.
UNSCHEDULABLE_GRACE_SECONDS = 15.0
UNSCHEDULABLE = "no suitable node"
DEFAULT_MONITOR_SECONDS = 5.0  # Swarm's default update_config.monitor
POLL_SECONDS = 0.1  # a few small API calls per service; keeps the exit close to convergence
ENGINE_RETRY_SECONDS = 0.5  # between attempts while the manager's Engine does not answer (a daemon restarting)
# What a manager whose daemon restarts answers: nothing (refused, reset, timed out), or 5xx while its swarm
# comes back ("This node is not a swarm manager"). The deploy is in Swarm's raft log already: wait for it.
_ENGINE_LOST = (requests.exceptions.ConnectionError, requests.exceptions.Timeout)

Phase = Literal["waiting", "converged", "failed"]
_FAILED_TASK_STATES = {"failed", "rejected"}
# A task of a replicated service that ends by itself ("complete": its container exited 0) is as good as failed:
# Swarm restarts it. It is also how a task Swarm stopped for failing its health check ends when its process exits
# 0 on SIGTERM (busybox httpd does): the task says only "finished", never "unhealthy".
_ENDED = "complete"


@dataclass(frozen=True)
class Before:
    """A service as it was before the deploy (``exists`` False when the deploy creates it)."""

    name: str
    exists: bool
    version: int | None = None
    template: Mapping[str, Any] | None = None
    update_status: Mapping[str, Any] | None = None
    task_ids: frozenset[str] = frozenset()

    @property
    def created(self) -> bool:
        """True when this deploy creates the service."""
        return not self.exists


@dataclass(frozen=True)
class ServiceState:
    """One service's verdict after a poll."""

    name: str
    phase: Phase
    running: int
    desired: int
    detail: str
    changed: bool = True
    update_state: str | None = None
    image: str | None = None
    # What a waiting service with a task no node can take will be called if the deploy ends now (another
    # service failed): Swarm's reason, not "starting", whether or not this task has outlived the grace yet.
    unschedulable: str | None = field(default=None, compare=False)

    def line(self) -> str:
        """A progress line for humans."""
        return f"{self.name}: {self.running}/{self.desired} running, {self.detail}"

    def as_dict(self) -> dict[str, Any]:
        """The state as JSON-ready data."""
        return {
            "service": self.name,
            "phase": self.phase,
            "running": self.running,
            "desired": self.desired,
            "detail": self.detail,
            "changed": self.changed,
            "update_state": self.update_state,
            "image": self.image,
        }


def _status(task: Mapping[str, Any]) -> Mapping[str, Any]:
    return task.get("Status") or {}


def _same_template(task: Mapping[str, Any], template: Mapping[str, Any]) -> bool:
    spec = task.get("Spec") or {}
    # Swarm copies the task template into each task; ForceUpdate bumps redeploy unchanged specs.
    return spec.get("ContainerSpec") == template.get("ContainerSpec") and spec.get("ForceUpdate", 0) == template.get(
        "ForceUpdate", 0
    )


def parse_timestamp(text: str) -> float:
    """An Engine timestamp (RFC 3339 with nanoseconds) as seconds since the epoch."""
    text = text.strip().replace("Z", "+00:00")
    if "." in text:
        head, rest = text.split(".", 1)
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[:digits][:6].ljust(6, '0')}{rest[digits:]}"
    return dt.datetime.fromisoformat(text).timestamp()


def desired_replicas(spec: Mapping[str, Any], tasks: Iterable[Mapping[str, Any]]) -> int:
    """How many tasks should run: the replica count, or one per node for global services."""
    mode = spec.get("Mode") or {}
    if "Replicated" in mode:
        return int((mode["Replicated"] or {}).get("Replicas", 1))
    if "Global" in mode:
        return len({t.get("NodeID") for t in tasks if t.get("DesiredState") == "running" and t.get("NodeID")})
    raise ValueError(f"unsupported service mode {sorted(mode)}: only replicated and global services are waited for")


def monitor_seconds(spec: Mapping[str, Any]) -> float:
    """The service's ``update_config.monitor`` in seconds (Swarm's API gives nanoseconds)."""
    monitor = (spec.get("UpdateConfig") or {}).get("Monitor")
    return monitor / 1e9 if monitor else DEFAULT_MONITOR_SECONDS


def swarm_says(task: Mapping[str, Any]) -> str:
    """What Swarm says about a task that is not running: its state and its error or message."""
    status = _status(task)
    state = status.get("State") or "unknown"
    why = status.get("Err") or status.get("Message") or ""
    return f"task {state}: {why}" if why and why.lower() != state else f"task {state}"


def failure_reason(task: Mapping[str, Any]) -> str:
    """Why a task failed, as Swarm says it; for one that ended by itself, what that means."""
    status = _status(task)
    if status.get("State") == _ENDED:
        code = (status.get("ContainerStatus") or {}).get("ExitCode", 0)
        return f"the task ended (exit {code}): its container stopped by itself or failed its health check"
    return str(status.get("Err") or status.get("Message") or status.get("State"))


def unschedulable(task: Mapping[str, Any]) -> bool:
    """Whether Swarm keeps the task pending because no node can take it."""
    status = _status(task)
    return status.get("State") == "pending" and str(status.get("Err") or "").startswith(UNSCHEDULABLE)


def down_nodes(nodes: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """``{node ID: its hostname}`` of the nodes Swarm reports ``down`` (or ``disconnected``)."""
    found = {}
    for node in nodes:
        state = (node.get("Status") or {}).get("State")
        if state in ("down", "disconnected") and node.get("ID"):
            found[node["ID"]] = (node.get("Description") or {}).get("Hostname") or node["ID"][:12]
    return found


def _image(template: Mapping[str, Any]) -> str | None:
    image = (template.get("ContainerSpec") or {}).get("Image")
    return image.split("@", 1)[0] if image else None


def assess(
    before: Before,
    service: Mapping[str, Any] | None,
    tasks: list[Mapping[str, Any]],
    *,
    running_since: Mapping[str, float],
    now: float,
    pending_since: Mapping[str, float] | None = None,
    down: Mapping[str, str] | None = None,
) -> ServiceState:
    """Judge one service from its inspect answer and its tasks (see the module's rules); ``pending_since``: when
    each task was first seen pending with no suitable node; ``down``: the nodes Swarm reports down, by ID."""
    if service is None:
        return ServiceState(before.name, "failed", 0, 0, "service is missing after the deploy")
    spec = service.get("Spec") or {}
    template = spec.get("TaskTemplate") or {}
    desired = desired_replicas(spec, tasks)
    version = (service.get("Version") or {}).get("Index")
    changed = before.created or version != before.version
    template_changed = before.exists and template != before.template
    update = service.get("UpdateStatus")
    fresh_update = update if (before.exists and update and update != before.update_status) else None
    update_state = fresh_update.get("State") if fresh_update else None
    image = _image(template)

    def state(phase: Phase, running: int, detail: str, unschedulable: str | None = None) -> ServiceState:
        return ServiceState(before.name, phase, running, desired, detail, changed, update_state, image, unschedulable)

    if update_state and update_state.startswith("rollback"):
        message = fresh_update.get("Message", "") if fresh_update else ""
        return state("failed", 0, f"Swarm rolled the update back ({update_state}): {message}".rstrip(": "))
    if update_state == "paused":
        message = fresh_update.get("Message", "") if fresh_update else ""
        return state("failed", 0, f"update paused: {message}".rstrip(": "))

    lost = sorted({(down or {})[t.get("NodeID")] for t in tasks if t.get("NodeID") in (down or {})})
    # A node that died holding this service's tasks, by name, in every line and in the final message.
    on_down_nodes = f"; node {', '.join(lost)} is down" if lost else ""
    current = [t for t in tasks if _same_template(t, template)]
    running = [t for t in current if _status(t).get("State") == "running" and t.get("DesiredState") == "running"]
    failures = [
        t
        for t in current
        if t.get("ID") not in before.task_ids
        and (_status(t).get("State") in _FAILED_TASK_STATES or _status(t).get("State") == _ENDED)
    ]
    # While Swarm runs a rolling update its failure_action decides (pause, rollback, continue);
    # counting crashes ourselves would cut it short and leave a half-rolled-back service.
    if len(failures) >= MAX_FAILURES and update_state != "updating":
        last = max(failures, key=lambda t: _status(t).get("Timestamp", ""))
        reason = failure_reason(last)
        message = f"tasks keep failing ({len(failures)} failed; last: {reason}){on_down_nodes}"
        return state("failed", len(running), message)
    stale = [
        t
        for t in tasks
        if not _same_template(t, template)
        and t.get("DesiredState") == "running"
        and _status(t).get("State") not in _FAILED_TASK_STATES
    ]
    if len(running) < desired:
        waiting = [t for t in current if t.get("DesiredState") == "running" and t not in running]
        stuck = [t for t in waiting if unschedulable(t)]
        cannot_schedule = None
        if stuck:
            first = min(stuck, key=lambda t: (pending_since or {}).get(t.get("ID", ""), now))
            cannot_schedule = f"Swarm cannot schedule a task: {_status(first).get('Err')}{on_down_nodes}"
            if now - (pending_since or {}).get(first.get("ID", ""), now) >= UNSCHEDULABLE_GRACE_SECONDS:
                return state("failed", len(running), cannot_schedule)
        detail = f"update {update_state}" if update_state else ("starting" if before.created else "updating")
        if failures:
            detail += f", {len(failures)} task(s) failed"
        if waiting:  # Swarm's own word on the newest task that is not running yet
            detail += f"; {swarm_says(max(waiting, key=lambda t: _status(t).get('Timestamp', '')))}"
        return state("waiting", len(running), detail + on_down_nodes, cannot_schedule)
    if stale:
        return state("waiting", len(running), f"{len(stale)} old task(s) still running")
    if fresh_update and update_state != "completed":
        return state("waiting", len(running), f"update {update_state}, Swarm is monitoring the new tasks")
    needs_settle = before.created or bool(failures) or (template_changed and fresh_update is None)
    if needs_settle:
        settle = monitor_seconds(spec)
        young = [t for t in running if now - running_since.get(t["ID"], now) < settle]
        if young:
            return state("waiting", len(running), f"checking the tasks stay up ({settle:g} s)")
    return state("converged", len(running), "converged" if changed else "unchanged, running")


def assess_rollback(before: Before, service: Mapping[str, Any] | None, tasks: list[Mapping[str, Any]]) -> ServiceState:
    """Judge a service being rolled back (or removed, when the deploy had created it)."""
    if before.created:
        if service is None:
            return ServiceState(before.name, "converged", 0, 0, "removed (created by the failed deploy)")
        return ServiceState(before.name, "waiting", 0, 0, "being removed")
    if service is None:
        return ServiceState(before.name, "failed", 0, 0, "service vanished during the rollback")
    spec = service.get("Spec") or {}
    template = spec.get("TaskTemplate") or {}
    desired = desired_replicas(spec, tasks)
    update = service.get("UpdateStatus")
    # An UpdateStatus left from an earlier rollback says nothing about this one.
    update_state = update.get("State") if update and update != before.update_status else None
    running = [
        t
        for t in tasks
        if _same_template(t, template) and _status(t).get("State") == "running" and t.get("DesiredState") == "running"
    ]
    image = _image(template)
    if update_state == "rollback_paused":
        return ServiceState(before.name, "failed", len(running), desired, "rollback paused", True, update_state, image)
    if update_state == "rollback_completed" and len(running) >= desired:
        return ServiceState(before.name, "converged", len(running), desired, "rolled back", True, update_state, image)
    return ServiceState(
        before.name, "waiting", len(running), desired, f"rolling back ({update_state})", True, update_state, image
    )


@dataclass
class Watcher:
    """Polls the Swarm API (a ``docker.APIClient``) for a set of services."""

    api: Any
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    interval: float = POLL_SECONDS
    wall: Callable[[], float] = time.time
    clock_offset: float | None = None  # the engine's wall clock minus ours, once calibrated
    _running_since: dict[str, float] = field(default_factory=dict)
    _pending_since: dict[str, float] = field(default_factory=dict)

    def calibrate(self) -> None:
        """Learn the engine's clock offset, so a task's own Running timestamp can start its monitor
        window (instead of the moment we happened to poll it)."""
        system_time = (self.api.info() or {}).get("SystemTime")
        if system_time:
            self.clock_offset = parse_timestamp(system_time) - self.wall()

    def _since(self, task: Mapping[str, Any], now: float) -> float:
        """When the task became Running, on our monotonic clock; never later than ``now``."""
        stamp = _status(task).get("Timestamp")
        if self.clock_offset is None or not stamp:
            return now
        try:
            age = self.wall() - (parse_timestamp(stamp) - self.clock_offset)
        except ValueError:
            return now
        return now - max(0.0, age)

    def inspect(self, name: str) -> Mapping[str, Any] | None:
        """The service's inspect answer, or None when it does not exist."""
        try:
            return self.api.inspect_service(name)
        except docker.errors.NotFound:
            return None

    def tasks(self, service: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
        """Every task Swarm still keeps for the service."""
        if service is None:
            return []
        return list(self.api.tasks(filters={"service": service["ID"]}))

    def down_nodes(self) -> dict[str, str]:
        """The cluster's nodes that Swarm reports down; none when the engine will not say (not a manager)."""
        try:
            return down_nodes(self.api.nodes())
        except docker.errors.APIError:
            return {}

    def snapshot(self, names: Iterable[str]) -> dict[str, Before]:
        """Record each service as it is before the deploy."""
        result = {}
        for name in names:
            service = self.inspect(name)
            if service is None:
                result[name] = Before(name, exists=False)
                continue
            result[name] = Before(
                name,
                exists=True,
                version=(service.get("Version") or {}).get("Index"),
                template=(service.get("Spec") or {}).get("TaskTemplate"),
                update_status=service.get("UpdateStatus"),
                task_ids=frozenset(t["ID"] for t in self.tasks(service)),
            )
        return result

    def poll(self, befores: Mapping[str, Before], *, rollback: bool = False) -> list[ServiceState]:
        """One look at every service."""
        now = self.clock()
        states = []
        down = self.down_nodes()
        for name, before in befores.items():
            service = self.inspect(name)
            tasks = self.tasks(service)
            for task in tasks:
                if _status(task).get("State") == "running":
                    self._running_since.setdefault(task["ID"], self._since(task, now))
                elif unschedulable(task):
                    self._pending_since.setdefault(task["ID"], now)
            if rollback:
                states.append(assess_rollback(before, service, tasks))
            else:
                states.append(
                    assess(
                        before,
                        service,
                        tasks,
                        running_since=self._running_since,
                        now=now,
                        pending_since=self._pending_since,
                        down=down,
                    )
                )
        return states

    def where(self) -> str:
        """The Engine's address as ``DOCKER_HOST`` says it (for messages)."""
        return str(getattr(self.api, "base_url", "") or "the manager").replace("https://", "tcp://", 1)

    def wait(
        self,
        befores: Mapping[str, Before],
        timeout: float,
        *,
        rollback: bool = False,
        on_change: Callable[[ServiceState], None] = lambda s: None,
        on_engine: Callable[[str], None] = lambda line: None,
    ) -> tuple[list[ServiceState], bool]:
        """Poll until every service converged or one failed, or ``timeout`` passes.

        Returns the last states and whether the deadline passed. A manager that stops answering (its daemon
        restarting) is waited for until the deadline, said once through ``on_engine`` and once again when it is
        back; still away at the deadline, the last states seen are returned as timed out, each saying so
        (DockerUnavailableError when it never answered at all).
        """
        deadline = self.clock() + timeout
        last: dict[str, str] = {}
        seen: list[ServiceState] | None = None
        lost_since: float | None = None
        while True:
            try:
                states = self.poll(befores, rollback=rollback)
            except (*_ENGINE_LOST, docker.errors.APIError) as exc:
                if isinstance(exc, docker.errors.APIError) and not exc.is_server_error():
                    raise
                now = self.clock()
                if lost_since is None:
                    lost_since = now
                    reason = exc.explanation if isinstance(exc, docker.errors.APIError) else type(exc).__name__
                    on_engine(
                        f"the Docker Engine at {self.where()} is not answering ({reason}); "
                        f"waiting for it until the timeout ({max(0.0, deadline - now):.0f} s left)"
                    )
                if now >= deadline:
                    if seen is None:
                        raise DockerUnavailableError(
                            f"the Docker Engine at {self.where()} is unreachable: check the cluster is up"
                        ) from None
                    lost = f"the Docker Engine at {self.where()} stopped answering"
                    return [replace(s, detail=f"{s.detail}; {lost}") for s in seen], True
                self.sleep(min(ENGINE_RETRY_SECONDS, max(0.0, deadline - now)))
                continue
            if lost_since is not None:
                on_engine(f"the Docker Engine at {self.where()} answers again after {self.clock() - lost_since:.1f} s")
                lost_since = None
            seen = states
            for s in states:
                if last.get(s.name) != s.line():
                    last[s.name] = s.line()
                    on_change(s)
            if any(s.phase == "failed" for s in states):
                return [_ending(s) for s in states], False
            if all(s.phase == "converged" for s in states):
                return states, False
            if self.clock() >= deadline:
                return states, True
            self.sleep(min(self.interval, max(0.0, deadline - self.clock())))


def _ending(state: ServiceState) -> ServiceState:
    """A service as the failed deploy leaves it: one still waiting on a task no node can take fails with Swarm's
    reason too (three such services fail together, not one of them and two said to be "starting")."""
    if state.phase == "waiting" and state.unschedulable:
        return replace(state, phase="failed", detail=state.unschedulable)
    return state
