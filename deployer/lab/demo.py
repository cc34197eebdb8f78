"""``make demo``: v1 on the live colour, v2 on the idle one, a switch under load, and the figures.

Runs the real ``auto-deploy`` commands against the lab (``make demo`` has brought it up). With workers, the
stack names the lab registry's copy of each image and is deployed with ``--with-registry-auth`` and the
registry's login (``AUTO_LAB_DOCKER_CONFIG``): the workers pull it from there.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from importlib.resources import as_file, files
from pathlib import Path

from deployer.lab import lab
from deployer.lab.layout import LabPaths, lab_dir
from deployer.lab.load import Load

STACK = "demo"
STACK_FILE = files("deployer.lab") / "demo-stack.yml"  # package data: found in a wheel as in the source tree


def demo_env() -> dict[str, str]:
    """The environment of the demo's commands: the lab's variables; with workers, the registry's login too."""
    values = lab.env_values()
    env = {**os.environ, **values}
    if "AUTO_LAB_DOCKER_CONFIG" in values:  # the login --with-registry-auth hands the nodes
        env["DOCKER_CONFIG"] = values["AUTO_LAB_DOCKER_CONFIG"]
    return env


def stack_text(text: str, version: str, env: Mapping[str, str], nodes: int | None = None) -> str:
    """The demo stack for ``auto-lab/web:VERSION``: from the lab registry when the lab has one, one replica per
    node of a colour (``nodes``; the lab's own count when None)."""
    image = f"auto-lab/web:{version}"
    if registry := env.get("AUTO_LAB_REGISTRY"):
        image = f"{registry}/{image}"
    if nodes is None:
        nodes = 1 + (LabPaths(lab_dir(env)).recorded_workers() or 0)
    return text.replace("auto-lab/web:1", image).replace("replicas: 1\n", f"replicas: {nodes}\n", 1)


def registry_args(env: Mapping[str, str]) -> list[str]:
    """``--with-registry-auth`` when the lab has a registry (its workers pull from it)."""
    return ["--with-registry-auth"] if env.get("AUTO_LAB_REGISTRY") else []


def _cli(env: dict[str, str], *args: str, capture: bool = False) -> subprocess.CompletedProcess:
    print(f"$ auto-deploy {shlex.join(args)}", flush=True)
    proc = subprocess.run(
        [sys.executable, "-m", "deployer", *args], env=env, text=True, check=False,
        stdout=subprocess.PIPE if capture else None,
    )  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"Error: auto-deploy {args[0]} exited {proc.returncode}")
    return proc


def main() -> int:
    """Run the demo; exit non-zero when a step fails or a request failed."""
    env = demo_env()
    _cli(env, "resolve", "--env", "lab")
    with as_file(STACK_FILE) as stack_file, tempfile.TemporaryDirectory(prefix="auto-demo-") as directory:
        files = {}
        for version in ("1", "2"):
            files[version] = Path(directory, f"demo-stack-v{version}.yml")
            files[version].write_text(stack_text(stack_file.read_text(), version, env))
        common = ["--env", "lab", "--stack", STACK, "--resolve-image", "never", "--timeout", "120", *registry_args(env)]
        print("== v1 to the live colour", flush=True)
        _cli(env, "deploy", *common, "-c", str(files["1"]), "--colour", "live", "--rollback-on-failure")
        print("== v2 to the idle colour", flush=True)
        _cli(env, "deploy", *common, "-c", str(files["2"]), "--colour", "idle", "--rollback-on-failure")
    url = env["AUTO_LAB_FRONT_URL"] + "/"
    print(f"== switch while a load runs against HAProxy ({url})", flush=True)
    with Load(url, connections=4, max_seconds=120) as load:
        time.sleep(1.0)
        started = time.monotonic()
        proc = _cli(env, "switch", "--env", "lab", "--json", capture=True)
        switch_seconds = time.monotonic() - started
        time.sleep(1.0)
    report = json.loads(proc.stdout)
    timings = {s["service"]: s["seconds"] for s in report["services"] if "seconds" in s}
    result = load.result
    print(f"switch: {report['message']}")
    print(f"switch took {switch_seconds:.2f} s in all; traffic moved in {timings.get('traffic_seconds', 0):.2f} s")
    print(f"load: {result.line()}")
    _cli(env, "history", "--env", "lab", "--limit", "6")
    print(f"now: curl {url}  (the lab stays up: 'make lab-down' removes it)")
    return 0 if result.failed == 0 else 3


if __name__ == "__main__":
    sys.exit(main())
