"""auto-deploy deploy against `docker stack deploy --detach=false`, on the lab, alternating.

For each round and each tool: create a 2-replica stack, then update it (new image); then, once,
an update whose tasks crash under `failure_action: rollback` (docker/cli#6752).
Prints, per tool: wall time of create and update, how long after the last task reached Running
(and, for updates, after Swarm marked the update completed) the tool exited, and the verdicts.
The ratio is auto-deploy's total wall time over the CLI's, in this one run. Where auto-deploy's time
goes comes from its own `--json` report (seconds per phase: state-service calls, the lock, the docker
CLI's `stack deploy --detach=true`, the Engine API while waiting); what is left is start-up (the
interpreter, imports, TLS material) and printing.

Run as root: `.venv/bin/python benchmarks/deploy_overhead.py [--rounds 3]`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import docker

from deployer import engine
from deployer.converge import parse_timestamp
from deployer.lab import lab
from deployer.state.client import StateClient

STACK_TEMPLATE = """services:
  web:
    image: auto-lab/web:{version}
    {command}
    deploy:
      replicas: 2
      update_config: {{parallelism: 1, order: stop-first, failure_action: {action}, monitor: 2s}}
      rollback_config: {{parallelism: 1, order: stop-first, monitor: 1s}}
      restart_policy: {{condition: any, delay: 1s}}
"""


def sdk(env: dict[str, str]) -> docker.APIClient:
    """The same TLS-verified SDK client auto-deploy uses (immune to REQUESTS_CA_BUNDLE)."""
    return engine.connect(env["BENCH_MANAGER"], 2376, env["AUTO_DOCKER_CERT_PATH"])


def convergence_times(api: docker.APIClient, service: str) -> tuple[float, float | None]:
    """(last running task's start, UpdateStatus.CompletedAt or None) on the daemon's clock."""
    svc = api.inspect_service(service)
    tasks = api.tasks(filters={"service": svc["ID"], "desired-state": "running"})
    running = [parse_timestamp(t["Status"]["Timestamp"]) for t in tasks if t["Status"]["State"] == "running"]
    completed = (svc.get("UpdateStatus") or {}).get("CompletedAt")
    return (max(running) if running else float("nan")), (parse_timestamp(completed) if completed else None)


def remove_stack(api: docker.APIClient, stack: str) -> None:
    for svc in api.services(filters={"label": f"com.docker.stack.namespace={stack}"}):
        api.remove_service(svc["ID"])
    deadline = time.time() + 60
    while time.time() < deadline:
        busy = api.containers(filters={"label": f"com.docker.stack.namespace={stack}"}, all=True)
        nets = api.networks(filters={"label": f"com.docker.stack.namespace={stack}"})
        if not busy and not nets:
            return
        for net in nets:
            with contextlib.suppress(docker.errors.APIError):
                api.remove_network(net["Id"])
        time.sleep(0.5)


def run_tool(tool: str, stack: str, compose: str, env: dict[str, str]) -> tuple[float, float, int, dict[str, float]]:
    docker_env = {
        **env,
        "DOCKER_HOST": f"tcp://{env['BENCH_MANAGER']}:2376",
        "DOCKER_TLS_VERIFY": "1",
        "DOCKER_CERT_PATH": env["AUTO_DOCKER_CERT_PATH"],
    }
    if tool == "auto-deploy":
        argv = [sys.executable, "-m", "deployer", "deploy", "--env", "lab", "--stack", stack, "-c", compose]
        argv += ["--resolve-image", "never", "--timeout", "180", "--json"]
        run_env = env
    else:
        argv = ["docker", "stack", "deploy", "--detach=false", "--resolve-image", "never", "-c", compose, stack]
        run_env = docker_env
    start = time.time()
    proc = subprocess.run(argv, env=run_env, capture_output=True, text=True, check=False)
    end = time.time()
    phases: dict[str, float] = {}
    if tool == "auto-deploy" and proc.stdout.strip():
        phases = json.loads(proc.stdout).get("phases", {})
    return end - start, end, proc.returncode, phases


def startup_seconds(argv: list[str], rounds: int = 5) -> float:
    """The median wall time of a command that only starts and exits."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    lab.up()
    env = {**os.environ, **lab.env_values()}
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    # Both tools go to the live colour's manager (a switch may have made green live).
    env["BENCH_MANAGER"] = StateClient.from_env(env).resolve("lab").manager_address
    api = sdk(env)
    workdir = Path(tempfile.mkdtemp(prefix="deploy-bench-"))
    files = {}
    for name, version, command, action in (
        ("v1", 1, "", "pause"),
        ("v2", 2, "", "pause"),
        ("crash", 2, 'command: ["sh", "-c", "sleep 1; exit 3"]', "rollback"),
    ):
        files[name] = workdir / f"{name}.yml"
        files[name].write_text(STACK_TEMPLATE.format(version=version, command=command, action=action))

    tools = ["auto-deploy", "docker stack deploy --detach=false"]
    results: dict[str, dict[str, list[float]]] = {t: {} for t in tools}

    def record(tool: str, key: str, value: float) -> None:
        results[tool].setdefault(key, []).append(value)

    for round_no in range(args.rounds):
        order = tools if round_no % 2 == 0 else list(reversed(tools))
        for tool in order:
            stack = "bench"
            remove_stack(api, stack)
            for phase in ("v1", "v2"):
                wall, end, code, phases = run_tool(tool, stack, str(files[phase]), env)
                last_running, completed = convergence_times(api, f"{stack}_web")
                record(tool, f"{phase} wall s", wall)
                record(tool, f"{phase} exit after last Running s", end - last_running)
                if completed:
                    record(tool, f"{phase} exit after update completed s", end - completed)
                record(tool, f"{phase} exit code", code)
                if tool == "auto-deploy":
                    for name, seconds in phases.items():
                        record(tool, f"{phase} phase {name} s", seconds)
                    record(tool, f"{phase} phase start-up and the rest s", wall - sum(phases.values()))
            print(f"round {round_no + 1}: {tool} done", file=sys.stderr)
    verdicts = {}
    for tool in tools:
        stack = "benchcrash"
        remove_stack(api, stack)
        run_tool(tool, stack, str(files["v1"]), env)
        _, _, code, _ = run_tool(tool, stack, str(files["crash"]), env)
        state = (api.inspect_service(f"{stack}_web").get("UpdateStatus") or {}).get("State")
        verdicts[tool] = {"exit code": code, "swarm update state": state, "right verdict": code != 0}
        remove_stack(api, stack)
    remove_stack(api, "bench")

    summary = {}
    for tool in tools:
        summary[tool] = {k: round(statistics.median(v), 3) for k, v in results[tool].items()}
    ours = sum(sum(results[tools[0]][f"{p} wall s"]) for p in ("v1", "v2"))
    theirs = sum(sum(results[tools[1]][f"{p} wall s"]) for p in ("v1", "v2"))
    overhead = {}
    for phase in ("v1", "v2"):
        ours_median = summary[tools[0]][f"{phase} wall s"]
        theirs_median = summary[tools[1]][f"{phase} wall s"]
        overhead[phase] = {
            "auto-deploy minus docker stack deploy s": round(ours_median - theirs_median, 3),
            **{
                k.removeprefix(f"{phase} phase "): v
                for k, v in summary[tools[0]].items()
                if k.startswith(f"{phase} phase")
            },
        }
    report = {
        "rounds": args.rounds,
        "start-up alone s": {
            "python -c pass": round(startup_seconds([sys.executable, "-c", "pass"]), 3),
            "auto-deploy --version": round(startup_seconds([sys.executable, "-m", "deployer", "--version"]), 3),
        },
        "where auto-deploy's time goes (medians)": overhead,
        "median per tool": summary,
        "wall-time ratio auto-deploy / docker stack deploy --detach=false": round(ours / theirs, 3),
        "crashing update (failure_action: rollback)": verdicts,
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
