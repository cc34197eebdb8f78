"""The deploy, status and rollback operations: resolve, connect, run, wait, roll back, record.

Each takes its I/O as arguments (state client, runner, engine connector, output stream) so tests
swap in a real local server or a recording rather than deep mocks.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO

from autocore.ci_log import section
from deployer import commands, compose, engine, lock, managers
from deployer.converge import Before, ServiceState, Watcher
from deployer.errors import ConfigError, DeployerError, OperationFailed
from deployer.runner import Runner
from deployer.state.contract import DEPLOY_TARGETS
from deployer.tls import TLSMaterial, private_cert_dir

DRY_RUN_CERT_PATH = "<private temporary directory>"


@dataclass
class DeployOptions:
    """What ``auto-deploy deploy`` was asked to do."""

    stack: str
    compose_files: list[str]
    timeout: float = 300.0
    prune: bool = False
    with_registry_auth: bool = False
    resolve_image: str = "always"
    wait: bool = True
    rollback_on_failure: bool = False
    dry_run: bool = False
    docker_cli: str = "docker"
    detach_flag: bool = True
    colour: str = "live"  # live, idle, blue or green
    take_lock: bool = True  # False when the caller (a switch) already holds the environment's lock


@dataclass
class Report:
    """The outcome of an operation, printed as the ``--json`` summary."""

    operation: str
    environment: str
    stack: str
    colour: str | None = None
    manager: str | None = None
    result: str = "pending"
    message: str = ""
    command: str | None = None
    services: list[dict[str, Any]] = field(default_factory=list)
    rollback: list[dict[str, Any]] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)
    duration_seconds: float = 0.0
    recorded: bool = False
    # Seconds spent per phase (state, lock, docker, engine), for "where did the time go" (--json).
    phases: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {k: v for k, v in self.__dict__.items() if k != "started_at"}


@dataclass
class Context:
    """The I/O a deploy needs, passed in so tests can use the real lab or local stand-ins."""

    state: Any  # deployer.state.client.StateClient
    runner: Runner
    connect: engine.Connector = engine.connect
    out: TextIO = field(default_factory=lambda: sys.stderr)  # the stream at construction (a test may capture it)
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    clock_start: float = field(default_factory=time.monotonic)
    lock_wait: float = lock.DEFAULT_WAIT
    lock_ttl: float = lock.DEFAULT_TTL
    phases: dict[str, float] = field(default_factory=dict)  # seconds per phase, added up as they end

    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        """Add the time the ``with`` block takes to ``phases[phase]``."""
        started = time.monotonic()
        try:
            yield
        finally:
            self.phases[phase] = round(self.phases.get(phase, 0.0) + time.monotonic() - started, 4)

    @contextmanager
    def locked(self, env_name: str, purpose: str, *, enabled: bool = True) -> Iterator[Any]:
        """The environment's lock for a ``with`` block (a no-op when ``enabled`` is False); taking and
        releasing it count as the ``lock`` phase."""
        if not enabled:
            yield None
            return
        held = lock.held(
            self.state,
            env_name,
            purpose=purpose,
            actor=lock.actor(self.environ),
            job_url=self.environ.get("CI_JOB_URL"),
            ttl=self.lock_ttl,
            wait=self.lock_wait,
            say=self.say,
        )
        with self.timed("lock"):
            taken = held.__enter__()
        try:
            yield taken
        except BaseException as exc:
            with self.timed("lock"):
                if not held.__exit__(type(exc), exc, exc.__traceback__):
                    raise
        else:
            with self.timed("lock"):
                held.__exit__(None, None, None)

    def say(self, line: str) -> None:
        """Progress for humans, on stderr, with the time since start."""
        self.out.write(f"[{time.monotonic() - self.clock_start:6.1f}s] {line}\n")
        self.out.flush()


def _failed_summary(states: list[ServiceState]) -> str:
    bad = [s for s in states if s.phase != "converged"]
    return "; ".join(f"{s.name}: {s.detail} ({s.running}/{s.desired} running)" for s in bad)


def deploy(env_name: str, options: DeployOptions, material: TLSMaterial, ctx: Context) -> Report:
    """Deploy compose files into a stack on the environment's live cluster and wait for it.

    Returns the report on success; raises OperationFailed (exit 3) when it did not converge,
    after rolling back when asked to.
    """
    compose.check_stack_name(options.stack)
    files = compose.load(options.compose_files)
    if options.dry_run:
        return _deploy(env_name, options, material, ctx, files)
    # Fail fast on an unknown environment or a bad answer, before queueing for the lock.
    with ctx.timed("state"):
        target_cluster(ctx.state, env_name, options.colour)
    with ctx.locked(env_name, f"deploy {options.stack} to {options.colour}", enabled=options.take_lock):
        return _deploy(env_name, options, material, ctx, files)


def target_cluster(state: Any, env_name: str, colour: str) -> Any:
    """The cluster a command acts on: the live one, the idle one, or a colour by name."""
    if colour not in DEPLOY_TARGETS:
        raise ConfigError(f"invalid colour {colour!r}: use one of {', '.join(DEPLOY_TARGETS)}")
    if colour == "live":
        return state.resolve(env_name)
    environment = state.get_environment(env_name)
    return environment.idle_cluster if colour == "idle" else environment.clusters[colour]


def _deploy(
    env_name: str, options: DeployOptions, material: TLSMaterial, ctx: Context, files: compose.ComposeSet
) -> Report:
    report = Report("deploy", env_name, options.stack, phases=ctx.phases)
    with ctx.timed("state"):  # again, under the lock: a switch may have happened while we queued
        cluster = target_cluster(ctx.state, env_name, options.colour)
    report.colour, report.manager = cluster.colour, commands.docker_host(cluster.manager_address, cluster.docker_port)
    role = "live" if cluster.live else "idle"
    ctx.say(f"environment {env_name}: deploying to {cluster.colour} ({role}), manager {report.manager}")

    def build(cert_path: str) -> commands.Command:
        env = commands.docker_tls_env(cluster.manager_address, cluster.docker_port, cert_path)
        return commands.stack_deploy(
            options.stack,
            [f.path for f in files.files],
            env=env,
            prune=options.prune,
            with_registry_auth=options.with_registry_auth,
            resolve_image=options.resolve_image,
            docker=options.docker_cli,
            detach_flag=options.detach_flag,
        )

    if options.dry_run:
        report.command = build(DRY_RUN_CERT_PATH).display()
        report.result = "dry-run"
        report.services = [{"service": name} for name in files.swarm_names(options.stack)]
        report.message = "dry run: nothing was touched"
        return report

    with private_cert_dir(material) as cert_dir:
        with ctx.timed("engine"):
            api, cluster = managers.connect(ctx.connect, cluster, cert_dir, ctx.say)
            report.manager = cluster.docker_host
            watcher = Watcher(api)
            watcher.calibrate()
            names = files.swarm_names(options.stack)
            befores = watcher.snapshot(names)
        command = build(cert_dir)
        report.command = command.display()
        with section(
            f"deploy_{options.stack}", f"docker stack deploy {options.stack}", stream=ctx.out, environ=ctx.environ
        ):
            with ctx.timed("docker"):
                result = ctx.runner(command)
            for line in result.output.splitlines():
                ctx.say(f"docker: {line}")
        if result.returncode != 0:
            last = next((ln for ln in reversed(result.output.splitlines()) if ln.strip()), "no output")
            raise ConfigError(f"docker stack deploy failed ({last.strip()}): check the compose files")
        if not options.wait:
            report.result = "submitted"
            report.message = "submitted without waiting (--no-wait)"
            report.services = [{"service": n} for n in names]
            # One look, so that the record names each service's image and replicas as Swarm took them.
            _record(ctx, env_name, cluster.colour, options, files, report, watcher.poll(befores))
            return report
        with (
            section(
                f"wait_{options.stack}", f"waiting for {len(names)} service(s)", stream=ctx.out, environ=ctx.environ
            ),
            ctx.timed("engine"),
        ):
            states, timed_out = watcher.wait(
                befores, options.timeout, on_change=lambda s: ctx.say(s.line()), on_engine=ctx.say
            )
        report.services = [s.as_dict() for s in states]
        if not timed_out and all(s.phase == "converged" for s in states):
            report.result = "converged"
            report.message = f"{len(states)} service(s) converged on {cluster.colour}"
            report.duration_seconds = round(time.time() - report.started_at, 3)
            _record(ctx, env_name, cluster.colour, options, files, report, states)
            return report

        reason = _failed_summary(states)
        report.result = "timed-out" if timed_out else "failed"
        message = (
            f"deploy of {options.stack} did not converge within {options.timeout:.0f} s: {reason}"
            if timed_out
            else f"deploy of {options.stack} failed: {reason}"
        )
        swarm_rolling = {s.name: befores[s.name] for s in states if (s.update_state or "").startswith("rollback")}
        if options.rollback_on_failure:
            targets = {s.name: befores[s.name] for s in states if s.changed}
            done = "rolled back to the previous version"
        else:
            # Swarm rolling back by itself (failure_action: rollback): report where it ends, not midway.
            targets, done = swarm_rolling, "Swarm rolled back to the previous version"
        if targets:
            rolled = _roll_back(ctx, watcher, targets, swarm_rolling, cert_dir, cluster, options)
            report.rollback = [s.as_dict() for s in rolled]
            if all(s.phase == "converged" for s in rolled):
                report.result = "rolled-back"
                message += f"; {done}"
            else:
                message += f"; rollback incomplete: {_failed_summary(rolled)}"
        left = [s.name for s in states if s.changed and s.name not in targets and s.phase != "converged"]
        if left:
            message += f"; {', '.join(left)} left as they are (use --rollback-on-failure or auto-deploy rollback)"
        report.message = message
        report.duration_seconds = round(time.time() - report.started_at, 3)
        _record(ctx, env_name, cluster.colour, options, files, report, states)
        raise OperationFailed(message, report)


def _roll_back(
    ctx: Context,
    watcher: Watcher,
    targets: dict[str, Before],
    swarm_rolling: Mapping[str, Before],
    cert_dir: str,
    cluster: Any,
    options: DeployOptions,
) -> list[ServiceState]:
    """Put back ``targets`` and wait: Swarm's own rollback, ``service rollback``, or ``service rm``."""
    env = commands.docker_tls_env(cluster.manager_address, cluster.docker_port, cert_dir)
    with section(
        f"rollback_{options.stack}", f"rolling back {len(targets)} service(s)", stream=ctx.out, environ=ctx.environ
    ):
        created = [name for name, before in targets.items() if before.created]
        if created:
            result = ctx.runner(commands.service_remove(created, env=env, docker=options.docker_cli))
            ctx.say(f"removing services this deploy created: {', '.join(created)} (exit {result.returncode})")
        for name, before in targets.items():
            if before.created:
                continue
            if name in swarm_rolling:
                ctx.say(f"{name}: Swarm is rolling back by itself; waiting for it to finish")
                continue
            result = ctx.runner(commands.service_rollback(name, env=env, docker=options.docker_cli))
            ctx.say(f"{name}: docker service rollback (exit {result.returncode})")
        rolled, _ = watcher.wait(targets, options.timeout, rollback=True, on_change=lambda s: ctx.say(s.line()))
    return rolled


def _record(
    ctx: Context,
    env_name: str,
    colour: str,
    options: DeployOptions,
    files: compose.ComposeSet,
    report: Report,
    states: list[ServiceState],
) -> None:
    """Record the deploy in the environment-state service; a failure to record is a warning only.

    The record (compose text, images as Swarm resolved them, options) is what a switch replays.
    """
    stack = options.stack
    succeeded = report.result == "converged"
    options_record = {
        "resolve_image": options.resolve_image,
        "with_registry_auth": options.with_registry_auth,
        "prune": options.prune,
    }
    # Every service of the deploy, whatever became of it (the record's result says how it ended): a failed
    # deploy is recorded as failed with its services, never refused for an empty list.
    services = []
    for s in states:
        if s.image is None:
            continue  # missing from Swarm: nothing to say about its image
        name = s.name.removeprefix(f"{stack}_")
        services.append({"name": name, "image": s.image, "replicas": s.desired})
        if name in files.docs:
            services[-1]["docs"] = dict(files.docs[name])
    if not services:
        ctx.say(
            "warning: the deploy was not recorded in the environment-state service: Swarm shows none of its services"
        )
        return
    try:
        with ctx.timed("state"):
            ctx.state.record_deployment(
                env_name,
                colour=colour,
                stack=stack,
                services=services,
                compose=[{"file": os.path.basename(f.path), "content": f.content} for f in files.files],
                result="succeeded" if succeeded else report.result.replace("-", "_"),
                actor=lock.actor(ctx.environ),
                job_url=ctx.environ.get("CI_JOB_URL"),
                options=options_record,
            )
        report.recorded = True
    except DeployerError as exc:
        ctx.say(f"warning: the deploy was not recorded in the environment-state service: {exc}")


def _stack_services(api: Any, stack: str) -> list[Mapping[str, Any]]:
    return list(api.services(filters={"label": f"com.docker.stack.namespace={stack}"}))


def status(env_name: str, stack: str, material: TLSMaterial, ctx: Context) -> Report:
    """The services of ``stack`` on the live cluster: replicas running, image, update state."""
    compose.check_stack_name(stack)
    report = Report("status", env_name, stack)
    cluster = ctx.state.resolve(env_name)
    report.colour, report.manager = cluster.colour, commands.docker_host(cluster.manager_address, cluster.docker_port)
    with private_cert_dir(material) as cert_dir:
        api, cluster = managers.connect(ctx.connect, cluster, cert_dir, ctx.say)
        report.manager = cluster.docker_host
        watcher = Watcher(api)
        services = _stack_services(api, stack)
        if not services:
            raise ConfigError(f"stack {stack} has no services on {cluster.colour} ({report.manager}): check the name")
        names = sorted(s["Spec"]["Name"] for s in services)
        update_states = {s["Spec"]["Name"]: (s.get("UpdateStatus") or {}).get("State") for s in services}
        # Snapshot then poll: nothing changed in between, so this counts running replicas of the current spec.
        states = watcher.poll(watcher.snapshot(names))
    report.services = [
        {
            **s.as_dict(),
            "phase": "converged" if s.running >= s.desired else "degraded",
            "detail": f"last update {update_states[s.name]}" if update_states[s.name] else "never updated",
            "update_state": update_states[s.name],
        }
        for s in states
    ]
    degraded = [s for s in states if s.running < s.desired]
    report.result = "degraded" if degraded else "healthy"
    report.message = f"{len(states) - len(degraded)}/{len(states)} service(s) fully running"
    return report


def rollback(
    env_name: str,
    stack: str,
    service: str | None,
    material: TLSMaterial,
    ctx: Context,
    timeout: float,
    docker_cli: str = "docker",
) -> Report:
    """Roll back every service of ``stack`` (or one) to its previous spec and wait for it.

    Holds the environment's lock and records the outcome in the audit trail.
    """
    compose.check_stack_name(stack)
    report = Report("rollback", env_name, stack)
    with ctx.locked(env_name, f"rollback {stack}"):
        try:
            return _rollback(env_name, stack, service, material, ctx, timeout, docker_cli, report)
        finally:
            record_event(ctx, env_name, "rollback", report)


def record_event(ctx: Context, env_name: str, kind: str, report: Report) -> None:
    """Add the operation's outcome to the environment's audit trail; a failure to record only warns."""
    result = report.result if report.result != "pending" else "failed"
    detail = {"stack": report.stack, "colour": report.colour, "message": report.message, "services": report.services}
    try:
        ctx.state.record_event(
            env_name,
            kind=kind,
            actor=lock.actor(ctx.environ),
            result=result.replace("-", "_"),
            detail=detail,
            job_url=ctx.environ.get("CI_JOB_URL"),
        )
    except DeployerError as exc:
        ctx.say(f"warning: the {kind} was not recorded in the audit trail: {exc}")


def _rollback(
    env_name: str,
    stack: str,
    service: str | None,
    material: TLSMaterial,
    ctx: Context,
    timeout: float,
    docker_cli: str,
    report: Report,
) -> Report:
    cluster = ctx.state.resolve(env_name)
    report.colour, report.manager = cluster.colour, commands.docker_host(cluster.manager_address, cluster.docker_port)
    with private_cert_dir(material) as cert_dir:
        api, cluster = managers.connect(ctx.connect, cluster, cert_dir, ctx.say)
        report.manager = cluster.docker_host
        names = sorted(s["Spec"]["Name"] for s in _stack_services(api, stack))
        if service:
            wanted = service if service.startswith(f"{stack}_") else f"{stack}_{service}"
            if wanted not in names:
                raise ConfigError(
                    f"service {service} is not in stack {stack} on {cluster.colour}: known: {', '.join(names)}"
                )
            names = [wanted]
        if not names:
            raise ConfigError(f"stack {stack} has no services on {cluster.colour}: nothing to roll back")
        env = commands.docker_tls_env(cluster.manager_address, cluster.docker_port, cert_dir)
        watcher = Watcher(api)
        befores = watcher.snapshot(names)
        for name in names:
            result = ctx.runner(commands.service_rollback(name, env=env, docker=docker_cli))
            if result.returncode != 0:
                last = result.output.strip().splitlines()[-1] if result.output.strip() else "no output"
                report.message = f"cannot roll back {name}: {last}"
                raise ConfigError(report.message)
            ctx.say(f"{name}: rollback started")
        states, timed_out = watcher.wait(befores, timeout, rollback=True, on_change=lambda s: ctx.say(s.line()))
    report.services = [s.as_dict() for s in states]
    if timed_out or not all(s.phase == "converged" for s in states):
        report.result = "failed"
        report.message = f"rollback of {stack} did not converge: {_failed_summary(states)}"
        raise OperationFailed(report.message, report)
    report.result = "rolled-back"
    report.message = f"{len(states)} service(s) rolled back on {cluster.colour}"
    return report
