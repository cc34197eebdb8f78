"""The blue/green switch: bring the idle colour level with the live one, then move traffic.

Steps, under the environment's lock:
1. replay on the idle cluster what was last deployed on the live one (per stack and service, the
   newest successful deploy; a service deployed to the idle colour more recently is the release
   being promoted and is kept); nothing to replay is fine and said so; a deployed service the idle
   colour runs and the live one no longer does is named in a warning (it goes live too);
2. wait until every service of those stacks on the idle cluster runs its replicas, and HAProxy's
   health check of the idle colour passes;
3. move traffic in HAProxy: idle ready, live drain, wait until the live colour has no sessions,
   live maint;
4. flip the live colour in the state service with compare-and-set.
Before step 3 a failure leaves the live colour serving, untouched. From step 3 on, a failure puts
traffic back on the old colour.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from autocore.ci_log import section
from deployer import deploy, lock, managers
from deployer.converge import Watcher
from deployer.errors import ConfigError, DeployerError, NotConvergedError
from deployer.haproxy import Runtime, colour_servers
from deployer.state.contract import COLOURS, other_colour
from deployer.tls import TLSMaterial, private_cert_dir

# How long after moving traffic the switch looks at HAProxy's admin states once more: a reload that began just
# before has started its new process by then (a few hundred milliseconds here).
RELOAD_SETTLE_SECONDS = 0.5


@dataclass
class SwitchOptions:
    """What ``auto-deploy switch`` was asked to do."""

    to: str | None = None
    dry_run: bool = False
    timeout: float = 300.0  # for the replay and for the idle colour to become healthy
    drain_timeout: float = 30.0
    backend: str = "app"
    docker_cli: str = "docker"
    detach_flag: bool = True
    # HAProxy's server-state file (``AUTO_HAPROXY_STATE_FILE``): written once traffic has moved, so that a reload
    # that comes after the switch loads the switched state, not one saved before it.
    state_file: str | None = None


@dataclass(frozen=True)
class Replay:
    """One recorded deploy to run again on the idle colour."""

    deployment: Mapping[str, Any]
    services: tuple[str, ...]

    @property
    def stack(self) -> str:
        """The stack the deploy went into."""
        return str(self.deployment["stack"])


def replay_plan(
    live: Iterable[Mapping[str, Any]],
    idle: Iterable[Mapping[str, Any]],
    running: set[str] | None = None,
    idle_running: set[str] | None = None,
) -> tuple[list[Replay], list[str]]:
    """Which successful live deploys to replay on the idle colour, oldest first, and what is kept.

    ``live`` and ``idle`` are deployment records (any order). For each stack/service the newest
    record wins; when the idle colour's is newer than the live one's, the idle colour keeps it.
    ``running`` (Swarm names, ``stack_service``) limits the replay to what still runs on the live
    cluster: a stack removed since it was deployed is not brought back. ``idle_running`` likewise:
    a newer idle deploy is kept only while its service still runs on the idle cluster.
    """

    def newest(records: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], Mapping[str, Any]]:
        latest: dict[tuple[str, str], Mapping[str, Any]] = {}
        for record in sorted(records, key=lambda r: r["id"]):
            for service in record.get("services") or []:
                latest[(record["stack"], service["name"])] = record
        return latest

    live_latest, idle_latest = newest(live), newest(idle)
    chosen: dict[int, list[str]] = {}
    records: dict[int, Mapping[str, Any]] = {}
    kept = []
    for (stack, service), record in sorted(live_latest.items()):
        if running is not None and f"{stack}_{service}" not in running:
            continue
        idle_record = idle_latest.get((stack, service))
        still_there = idle_running is None or f"{stack}_{service}" in idle_running
        if idle_record is not None and idle_record["id"] > record["id"] and still_there:
            kept.append(f"{stack}/{service}: the idle colour has a newer deploy (#{idle_record['id']}), kept")
            continue
        chosen.setdefault(record["id"], []).append(service)
        records[record["id"]] = record
    plan = [Replay(records[i], tuple(chosen[i])) for i in sorted(chosen)]
    return plan, kept


def replay_files(replay: Replay, directory: Path) -> list[str]:
    """Write a recorded deploy's compose files, plus an override pinning the recorded images."""
    paths = []
    for index, item in enumerate(replay.deployment.get("compose") or []):
        path = directory / f"{index:02d}-{Path(item['file']).name}"
        path.write_text(item["content"])
        paths.append(str(path))
    images = {
        s["name"]: {"image": s["image"]}
        for s in replay.deployment.get("services") or []
        if s.get("image") and s["name"] in replay.services
    }
    if images:
        # Images as Swarm resolved them: the compose text may say ${IMAGE}, which only the job knew. At the recorded
        # files' own compose version: docker stack deploy refuses to merge files of different versions.
        override: dict[str, Any] = {"services": images}
        if version := _compose_version(replay.deployment.get("compose") or []):
            override["version"] = version
        path = directory / "zz-recorded-images.yml"
        path.write_text(yaml.safe_dump(override, sort_keys=True))
        paths.append(str(path))
    return paths


def _compose_version(items: Iterable[Mapping[str, Any]]) -> str | None:
    """The ``version`` the recorded compose files declare (the first that does), if any."""
    for item in items:
        try:
            data = yaml.safe_load(item.get("content") or "")
        except yaml.YAMLError:
            continue
        if isinstance(data, dict) and data.get("version") is not None:
            return str(data["version"])
    return None


def switch(
    env_name: str, options: SwitchOptions, material: TLSMaterial, ctx: deploy.Context, haproxy: Runtime
) -> deploy.Report:
    """Switch the environment's live colour (see the module's steps). Raises DeployerError subclasses."""
    report = deploy.Report("switch", env_name, "-")
    environment = ctx.state.get_environment(env_name)
    target = options.to or environment.idle_colour
    if target not in COLOURS:
        raise ConfigError(f"invalid colour {target!r}: use blue or green")
    if options.dry_run:
        return _plan_only(env_name, environment, target, report, ctx, material)
    with ctx.locked(env_name, f"switch to {target}"):
        environment = ctx.state.get_environment(env_name)  # it may have changed while we waited
        return _switch_locked(env_name, environment, target, options, material, ctx, haproxy, report)


REPLAYED_RESULTS = ("succeeded", "submitted")  # a --no-wait deploy is part of the colour too


def _records(ctx: deploy.Context, env_name: str, colour: str) -> list[dict[str, Any]]:
    """The deploys a switch replays, newest first: those that converged and those submitted with --no-wait."""
    found = [
        r for result in REPLAYED_RESULTS for r in ctx.state.deployments(env_name, colour, result=result, limit=1000)
    ]
    return sorted(found, key=lambda record: -int(record["id"]))


def _plan_only(
    env_name: str, environment: Any, target: str, report: deploy.Report, ctx: deploy.Context, material: TLSMaterial
) -> deploy.Report:
    live = environment.live_colour
    running = _running_services(environment.clusters[live], material, ctx)  # reads only
    plan, kept = replay_plan(_records(ctx, env_name, live), _records(ctx, env_name, target), running)
    report.colour = target
    report.result = "dry-run"
    steps = [f"replay #{r.deployment['id']} ({r.stack}: {', '.join(r.services)}) on {target}" for r in plan] + kept
    report.services = [{"service": step} for step in steps]
    report.message = (
        f"dry run: would switch {env_name} from {live} to {target} replaying {len(plan)} deploy(s); nothing touched"
        if target != live
        else f"dry run: {target} is already live; would only check HAProxy sends it the traffic"
    )
    return report


def _switch_locked(
    env_name: str,
    environment: Any,
    target: str,
    options: SwitchOptions,
    material: TLSMaterial,
    ctx: deploy.Context,
    haproxy: Runtime,
    report: deploy.Report,
) -> deploy.Report:
    started = time.monotonic()
    old = environment.live_colour
    report.colour = target
    timings: dict[str, float] = {}
    detail: dict[str, Any] = {"from": old, "to": target}
    try:
        # HAProxy must answer before anything is replayed or moved: down, it is refused at once (exit 4).
        haproxy.servers(options.backend)
        if target == old:
            _route(
                haproxy,
                options.backend,
                to=target,
                away=other_colour(target),
                options=options,
                timings=timings,
                ctx=ctx,
            )
            report.result = "unchanged"
            report.message = f"{target} is already live; HAProxy sends it the traffic"
            return report
        idle = environment.clusters[target]
        running = _running_services(environment.clusters[old], material, ctx)
        idle_running = _running_services(idle, material, ctx)  # exit 4 here when the idle cluster is down
        live_records, idle_records = _records(ctx, env_name, old), _records(ctx, env_name, target)
        plan, kept = replay_plan(live_records, idle_records, running, idle_running)
        for line in kept:
            ctx.say(line)
        handled = {f"{r.stack}_{s}" for r in plan for s in r.services} | _kept_services(kept)
        left = left_running([*live_records, *idle_records], handled, running, idle_running)
        if left:
            detail["left_running"] = left
            ctx.say(
                f"warning: {target} still runs {', '.join(left)}, which {old} no longer runs: it goes live with the "
                f"switch (`docker stack rm` it on {target} first if it was removed on purpose)"
            )
        with section(
            "switch_replay", f"replaying {len(plan)} deploy(s) onto {target}", stream=ctx.out, environ=ctx.environ
        ):
            replayed = _replay(env_name, target, plan, options, material, ctx)
        detail["replayed"] = replayed
        names = sorted(handled)
        with section("switch_health", f"waiting for {target} to be healthy", stream=ctx.out, environ=ctx.environ):
            _wait_idle_healthy(idle, names, options, material, ctx, haproxy, bool(plan or kept), timings)
        # From here on traffic moves: any failure puts it back on the old colour.
        try:
            with section("switch_traffic", f"moving traffic {old} -> {target}", stream=ctx.out, environ=ctx.environ):
                _route(haproxy, options.backend, to=target, away=old, options=options, timings=timings, ctx=ctx)
            ctx.state.switch(
                env_name, old, target, actor=lock.actor(ctx.environ), reason="auto-deploy switch",
                job_url=ctx.environ.get("CI_JOB_URL"),
            )  # fmt: skip
        except BaseException:
            ctx.say(f"switch failed after traffic moved: sending traffic back to {old}")
            _restore(haproxy, options.backend, old=old, new=target, ctx=ctx)
            raise
        report.result = "switched"
        report.message = (
            f"{target} is live (replayed {len(plan)} deploy(s)); {old} drained in "
            f"{timings.get('drain_seconds', 0):.2f} s, traffic moved in {timings.get('traffic_seconds', 0):.2f} s"
        )
        return report
    except DeployerError as exc:
        report.result = "failed"
        report.message = str(exc)
        raise
    finally:
        report.duration_seconds = round(time.monotonic() - started, 3)
        report.services = [{"service": k, "seconds": round(v, 3)} for k, v in timings.items()]
        report.services.append({"service": "detail", **detail})
        deploy.record_event(ctx, env_name, "switch", report)


def left_running(
    records: Iterable[Mapping[str, Any]], handled: set[str], running: set[str], idle_running: set[str]
) -> list[str]:
    """The deployed services (Swarm names) the idle colour runs that the switch does not handle (neither replays
    nor keeps) and the live colour no longer runs: a stack removed from the live colour, still up on the idle one
    from an earlier deploy or switch, would go live again. Services no deploy recorded (the colour's own tools)
    are not named."""
    deployed = {f"{r['stack']}_{s['name']}" for r in records for s in r.get("services") or []}
    return sorted((idle_running & deployed) - handled - running)


def _running_services(cluster: Any, material: TLSMaterial, ctx: deploy.Context) -> set[str]:
    """The Swarm services on a cluster now (by name)."""
    with private_cert_dir(material) as cert_dir:
        api, _ = managers.connect(ctx.connect, cluster, cert_dir, ctx.say)
        return {s["Spec"]["Name"] for s in api.services()}


def _kept_services(kept: list[str]) -> set[str]:
    return {line.split(":", 1)[0].replace("/", "_", 1) for line in kept}


def _replay(
    env_name: str,
    target: str,
    plan: list[Replay],
    options: SwitchOptions,
    material: TLSMaterial,
    ctx: deploy.Context,
) -> list[int]:
    if not plan:
        ctx.say(f"nothing deployed on the live colour to replay: clone skipped, {target} is used as it is")
        return []
    done = []
    for replay in plan:
        recorded = replay.deployment.get("options") or {}
        with tempfile.TemporaryDirectory(prefix="auto-deploy-replay-") as directory:
            files = replay_files(replay, Path(directory))
            ctx.say(f"replaying deploy #{replay.deployment['id']} ({replay.stack}: {', '.join(replay.services)})")
            deploy.deploy(
                env_name,
                deploy.DeployOptions(
                    stack=replay.stack,
                    compose_files=files,
                    timeout=options.timeout,
                    with_registry_auth=bool(recorded.get("with_registry_auth", False)),
                    resolve_image=str(recorded.get("resolve_image", "always")),
                    docker_cli=options.docker_cli,
                    detach_flag=options.detach_flag,
                    colour=target,
                    take_lock=False,  # the switch holds the environment's lock
                ),
                material,
                ctx,
            )
        done.append(int(replay.deployment["id"]))
    return done


def _wait_idle_healthy(
    idle: Any,
    names: list[str],
    options: SwitchOptions,
    material: TLSMaterial,
    ctx: deploy.Context,
    haproxy: Runtime,
    anything_deployed: bool,
    timings: dict[str, float],
) -> None:
    """Every service of the idle colour runs its replicas, and HAProxy's check of it passes."""
    started = time.monotonic()
    with private_cert_dir(material) as cert_dir:
        api, _ = managers.connect(ctx.connect, idle, cert_dir, ctx.say)  # exit 4 when none answers
        if names:
            watcher = Watcher(api)
            states, timed_out = watcher.wait(
                watcher.snapshot(names), options.timeout, on_change=lambda s: ctx.say(s.line())
            )
            bad = [s for s in states if s.phase != "converged"]
            if timed_out or bad:
                summary = "; ".join(f"{s.name}: {s.detail}" for s in bad)
                raise NotConvergedError(f"the idle colour {idle.colour} did not converge: {summary}; traffic not moved")
    if anything_deployed:
        haproxy.set_colour_state(options.backend, idle.colour, "drain")  # checks run, no traffic yet
        try:
            timings["health_seconds"] = haproxy.wait_colour_up(
                options.backend, idle.colour, options.timeout, keep="drain"
            )
        except DeployerError as exc:
            haproxy.set_colour_state(options.backend, idle.colour, "maint")
            raise NotConvergedError(
                f"the idle colour {idle.colour} fails HAProxy's health check ({exc}); traffic not moved"
            ) from None
    timings["idle_ready_seconds"] = time.monotonic() - started


def _route(
    haproxy: Runtime,
    backend: str,
    *,
    to: str,
    away: str,
    options: SwitchOptions,
    timings: dict[str, float],
    ctx: deploy.Context,
) -> None:
    """Traffic to ``to``: ready it, drain ``away``, wait until it has no sessions, then maint it."""
    started = time.monotonic()
    haproxy.set_colour_state(backend, to, "ready")
    haproxy.set_colour_state(backend, away, "drain")
    ctx.say(f"HAProxy: {to} ready, {away} draining")
    timings["drain_seconds"] = haproxy.wait_colour_drained(backend, away, options.drain_timeout)
    haproxy.set_colour_state(backend, away, "maint")
    _keep_states(haproxy, backend, {to: "ready", away: "maint"}, ctx, options.state_file)
    timings["traffic_seconds"] = time.monotonic() - started
    # A reload that began just before: its new process may take the admin socket over after the read-back above,
    # with the state file saved before our commands. Look once more after it has had time to start.
    time.sleep(RELOAD_SETTLE_SECONDS)
    _keep_states(haproxy, backend, {to: "ready", away: "maint"}, ctx, options.state_file)
    ctx.say(f"HAProxy: {away} in maintenance after {timings['drain_seconds']:.2f} s of draining")


def _keep_states(
    haproxy: Runtime, backend: str, wanted: Mapping[str, str], ctx: deploy.Context, state_file: str | None
) -> None:
    """Read the colours' admin states back, and set again what a reload in between took away: HAProxy loads the
    server-state file saved just before it reloads, which may predate what we just set. Then save the state file
    (when known), so that the next reload loads these states. Failing to save only warns: traffic has moved."""
    servers = haproxy.servers(backend)
    for colour, state in wanted.items():
        lost = [n for n in colour_servers(servers, colour) if servers[n].admin != state]
        if lost:
            ctx.say(f"HAProxy lost the admin state of {', '.join(lost)} (reloaded meanwhile?): setting {state} again")
            haproxy.set_colour_state(backend, colour, state)
    if state_file:
        try:
            haproxy.save_state(state_file)
        except (DeployerError, OSError) as exc:
            ctx.say(f"warning: HAProxy's server-state file {state_file} was not written: {exc}")


def _restore(haproxy: Runtime, backend: str, *, old: str, new: str, ctx: deploy.Context) -> None:
    try:
        haproxy.set_colour_state(backend, old, "ready")
        haproxy.set_colour_state(backend, new, "maint")
    except DeployerError as exc:  # say it; the original failure is what the user must see
        ctx.say(f"warning: could not put traffic back on {old}: {exc}")
