"""A blue/green switch under wrk load through the lab's HAProxy (32 keep-alive connections).

1. steady state: wrk for STEADY seconds against the live colour;
2. the new release (auto-lab/web:2) is deployed to the idle colour, then wrk runs for RUN seconds
   and `auto-deploy switch` starts SWITCH_AT seconds in.
Prints requests sent and failed, the switch's duration and phases (health, drain, traffic), and
p50/p99 latency across the switch against steady state. Run as root: the lab must be able to start.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from deployer.lab import demo, lab

STACK_FILE = Path(lab.__file__).with_name("demo-stack.yml")
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def parse_wrk(text: str) -> dict[str, float]:
    """Requests, errors and latency percentiles (ms) from `wrk --latency` output."""
    out: dict[str, float] = {}
    if m := re.search(r"(\d+) requests in ([\d.]+)(\w+)", text):
        out["requests"] = float(m.group(1))
    out["rps"] = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    errors = 0.0
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text):
        errors += sum(float(g) for g in m.groups())
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", text):
        errors += float(m.group(1))
    out["failed"] = errors
    for pct in ("50", "99"):
        if m := re.search(rf"^\s+{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M):
            out[f"p{pct}_ms"] = float(m.group(1)) * UNITS[m.group(2)]
    return out


def wrk(url: str, seconds: int, connections: int) -> str:
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s", url]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "deployer", *args], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"auto-deploy {args[0]} failed: {proc.stderr.strip().splitlines()[-1]}")
    return proc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steady", type=int, default=15)
    parser.add_argument("--run", type=int, default=50)
    parser.add_argument("--switch-at", type=int, default=20)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    lab.up()
    env = demo.demo_env()
    url = env["AUTO_LAB_FRONT_URL"] + "/"
    common = ["--env", "lab", "--stack", "demo", "--resolve-image", "never", *demo.registry_args(env)]
    with tempfile.TemporaryDirectory() as directory:
        v1, v2 = Path(directory, "v1.yml"), Path(directory, "v2.yml")
        v1.write_text(demo.stack_text(STACK_FILE.read_text(), "1", env))
        v2.write_text(demo.stack_text(STACK_FILE.read_text(), "2", env))
        cli(env, "deploy", *common, "-c", str(v1), "--colour", "live")
        steady = parse_wrk(wrk(url, args.steady, args.connections))
        cli(env, "deploy", *common, "-c", str(v2), "--colour", "idle")
    result: dict[str, str] = {}
    runner = threading.Thread(target=lambda: result.update(out=wrk(url, args.run, args.connections)))
    runner.start()
    time.sleep(args.switch_at)
    started = time.monotonic()
    report = json.loads(cli(env, "switch", "--env", "lab", "--json").stdout)
    switch_wall = time.monotonic() - started
    runner.join()
    during = parse_wrk(result["out"])
    timings = {s["service"]: s["seconds"] for s in report["services"] if "seconds" in s}
    summary = {
        "connections": args.connections,
        "requests sent (run across the switch)": int(during.get("requests", 0)),
        "requests failed": int(during["failed"]),
        "requests/s": round(during["rps"]),
        "switch wall s": round(switch_wall, 3),
        "switch phases s": timings,
        "old colour without sessions after s": timings.get("drain_seconds"),
        "traffic moved after the idle colour was healthy s": timings.get("traffic_seconds"),
        "steady p50/p99 ms": [steady.get("p50_ms"), steady.get("p99_ms")],
        "across the switch p50/p99 ms": [during.get("p50_ms"), during.get("p99_ms")],
        "p99 ratio (switch/steady)": round(during["p99_ms"] / steady["p99_ms"], 2) if steady.get("p99_ms") else None,
    }
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
