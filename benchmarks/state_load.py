"""The environment-state service under load: many concurrent readers and writers on loopback.

Starts ``auto-deploy state serve`` on 127.0.0.1 (a free port) with a temporary SQLite database, then
runs READERS reader threads (``get_environment``, every tenth call ``history``) and WRITERS writer
threads (``record_event``, each with a unique marker) through the real ``StateClient`` for SECONDS
seconds, spread over PROCESSES client processes so that the clients' GIL does not become the bottleneck.
Prints calls, HTTP attempts, timeouts, errors, and p50/p99/max latency per kind, then checks in the
database that every acknowledged write is there exactly once, under the id it was acknowledged with,
and how many writes reported as failed were applied anyway. Stops by itself; touches nothing but
loopback and its temporary directory.

Usage: python benchmarks/state_load.py [--readers 500] [--writers 100] [--seconds 30]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import queue
import re
import secrets
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deployer.errors import DeployerError  # noqa: E402 - after the path is set
from deployer.state.client import StateClient  # noqa: E402

ENV = "bench"
CLUSTERS = {"blue": ("10.213.1.2", 2376), "green": ("10.213.2.2", 2376)}
MAX_CLIENTS = 2000  # readers + writers: a bound on what one run may start
MAX_SECONDS = 300


class CountingSession(requests.Session):
    """requests.Session that counts HTTP attempts (a call that was retried makes more than one)."""

    def __init__(self) -> None:
        super().__init__()
        self.trust_env = False
        self.attempts = 0
        self.failures: Counter[str] = Counter()  # why attempts failed (each may have been retried)

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.attempts += 1
        try:
            response = super().request(*args, **kwargs)
        except requests.RequestException as exc:
            reason = getattr(exc.args[0] if exc.args else None, "reason", None)
            self.failures[f"{type(exc).__name__}({type(reason).__name__ if reason else ''})"] += 1
            raise
        if response.status_code >= 500:
            self.failures[f"HTTP {response.status_code}"] += 1
        return response


def _outcome(exc: BaseException) -> str:
    """A short name for a failure: timeouts apart from other errors."""
    text = str(exc)
    if "deadline" in text or "ReadTimeout" in text or "did not answer" in text:
        return "timeout"
    if "may have been applied" in text:
        return f"{type(exc).__name__} (may have been applied)"
    return type(exc).__name__


def _reader(url: str, stop_at: float, out: dict[str, Any]) -> None:
    session = CountingSession()
    client = StateClient(url, session=session)
    calls = 0
    while time.time() < stop_at:
        started = time.perf_counter()
        kind = "history" if calls % 10 == 9 else "read"
        try:
            if kind == "history":
                client.history(ENV, limit=20)
            else:
                client.get_environment(ENV)
            out["latency"][kind].append(time.perf_counter() - started)
        except DeployerError as exc:
            out["errors"][f"{kind}: {_outcome(exc)}"] += 1
            out["samples"].setdefault(_outcome(exc), str(exc))
        calls += 1
    out["calls"] += calls
    out["attempts"] += session.attempts
    out["failures"].update(session.failures)


def _writer(url: str, token: str, stop_at: float, name: str, out: dict[str, Any]) -> None:
    session = CountingSession()
    client = StateClient(url, token=token, session=session)
    calls = 0
    while time.time() < stop_at:
        marker = f"{name}-{calls}"
        started = time.perf_counter()
        try:
            event_id = client.record_event(
                ENV, kind="deploy", actor="bench", result="converged", detail={"marker": marker}
            )
            out["latency"]["write"].append(time.perf_counter() - started)
            out["acked"].append((marker, event_id))
        except DeployerError as exc:
            out["errors"][f"write: {_outcome(exc)}"] += 1
            out["samples"].setdefault(_outcome(exc), str(exc))
            out["failed"].append(marker)
        calls += 1
    out["calls"] += calls
    out["attempts"] += session.attempts
    out["failures"].update(session.failures)


def _empty_totals() -> dict[str, Any]:
    """What one client thread (or process) counts."""
    return {
        "latency": {"read": [], "history": [], "write": []},
        "errors": Counter(),
        "samples": {},
        "acked": [],
        "failed": [],
        "calls": 0,
        "attempts": 0,
        "failures": Counter(),
    }


def client_process(index: int, url: str, token: str, readers: int, writers: int, stop_at: float, results: Any) -> None:
    """One client process: ``readers`` + ``writers`` threads until ``stop_at``; puts its results."""
    lock = threading.Lock()
    totals = _empty_totals()

    def run(target: Any, *args: Any) -> None:
        own = _empty_totals()
        try:
            target(*args, own)
        finally:
            with lock:
                for kind, values in own["latency"].items():
                    totals["latency"][kind].extend(values)
                totals["errors"].update(own["errors"])
                for key, value in own["samples"].items():
                    totals["samples"].setdefault(key, value)
                totals["acked"].extend(own["acked"])
                totals["failed"].extend(own["failed"])
                totals["calls"] += own["calls"]
                totals["attempts"] += own["attempts"]
                totals["failures"].update(own["failures"])

    go = threading.Event()

    def gated(target: Any, *args: Any) -> None:
        go.wait()  # every thread starts its calls at once: the last started are not late
        run(target, *args)

    # Readers and writers interleaved, so that neither kind is all at the end of the queue.
    kinds = [
        "w" if n * writers // max(1, readers + writers) != (n + 1) * writers // max(1, readers + writers) else "r"
        for n in range(readers + writers)
    ]
    threads = []
    for n, kind in enumerate(kinds):
        args = (_writer, url, token, stop_at, f"p{index}w{n}") if kind == "w" else (_reader, url, stop_at)
        threads.append(threading.Thread(target=gated, args=args, daemon=True))
    for thread in threads:
        thread.start()
    go.set()
    for thread in threads:
        thread.join(max(1.0, stop_at - time.time() + 90))  # a call in flight ends within its deadline
    hung = sum(thread.is_alive() for thread in threads)
    with lock:
        totals["errors"] = dict(totals["errors"])
        totals["failures"] = dict(totals["failures"])
        totals["hung"] = hung
        results.put(totals)


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _start_server(workdir: Path, token: str, workers: int | None) -> tuple[subprocess.Popen[bytes], str, Path]:
    token_file = workdir / "token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    log = workdir / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTO_STATE_")}
    argv = [sys.executable, "-m", "deployer", "state", "serve", "--db", str(workdir / "state.db")]
    argv += ["--listen", "127.0.0.1:0", "--token-file", str(token_file)]
    if workers is not None:
        argv += ["--workers", str(workers)]
    with log.open("wb") as handle:
        server = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=handle)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = re.search(r"state service listening on (http://127\.0\.0\.1:[0-9]+)", log.read_text())
        if found:
            return server, found.group(1), log
        if server.poll() is not None:
            raise SystemExit(f"the state service did not start: {log.read_text().strip()[-500:]}")
        time.sleep(0.05)
    server.kill()
    raise SystemExit("the state service did not say it listens within 30 s")


def _percentiles(values: list[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    return f"p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  max {ordered[-1] * 1000:7.1f} ms"


def _verify(db_path: Path, acked: list[tuple[str, int]], failed: list[str]) -> dict[str, int]:
    """What the database says about the writes: every acknowledged one present once, under its id."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT id, detail FROM events WHERE environment = ? AND kind = 'deploy'", (ENV,))
        stored: dict[str, list[int]] = {}
        for event_id, detail in rows:
            stored.setdefault(json.loads(detail)["marker"], []).append(event_id)
    finally:
        conn.close()
    return {
        "acknowledged": len(acked),
        "acknowledged and present": sum(1 for marker, _ in acked if marker in stored),
        "acknowledged but missing": sum(1 for marker, _ in acked if marker not in stored),
        "acknowledged under another id": sum(1 for m, i in acked if m in stored and i not in stored[m]),
        "applied more than once": sum(1 for ids in stored.values() if len(ids) > 1),
        "reported failed": len(failed),
        "reported failed but applied": sum(1 for marker in failed if marker in stored),
        "events stored": sum(len(ids) for ids in stored.values()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=500)
    parser.add_argument("--writers", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--processes", type=int, default=max(1, min(8, (os.cpu_count() or 2) - 1)))
    parser.add_argument("--workers", type=int, help="the server's --workers (default: its own)")
    args = parser.parse_args()
    if not 0 < args.readers + args.writers <= MAX_CLIENTS or min(args.readers, args.writers) < 0:
        parser.error(f"readers + writers must be 1 to {MAX_CLIENTS}")
    if not 0 < args.seconds <= MAX_SECONDS:
        parser.error(f"--seconds must be more than 0 and at most {MAX_SECONDS}")
    processes = max(1, min(args.processes, args.readers + args.writers))

    token = secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="state-load-") as tmp:
        workdir = Path(tmp)
        server, url, log = _start_server(workdir, token, args.workers)
        try:
            StateClient(url, token=token).put_environment(ENV, "blue", CLUSTERS, actor="bench")
            print(
                f"{args.readers} readers + {args.writers} writers for {args.seconds:g} s against {url} "
                f"({processes} client processes)",
                flush=True,
            )
            context = multiprocessing.get_context("spawn")  # no threads or locks inherited by fork
            results = context.Queue()
            stop_at = time.time() + 5 + args.seconds  # 5 s for the processes to start
            workers = [
                context.Process(target=client_process, args=(i, url, token, r, w, stop_at, results), daemon=True)
                for i, (r, w) in enumerate(
                    zip(_split(args.readers, processes), _split(args.writers, processes), strict=True)
                )
            ]
            for worker in workers:
                worker.start()
            collected: list[dict[str, Any]] = []
            for _ in workers:
                try:
                    collected.append(results.get(timeout=max(1.0, stop_at - time.time() + 120)))
                except queue.Empty:
                    break
            for worker in workers:
                worker.join(10)
                if worker.is_alive():
                    worker.kill()
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()

        latency: dict[str, list[float]] = {"read": [], "history": [], "write": []}
        errors: Counter[str] = Counter()
        failures: Counter[str] = Counter()
        samples: dict[str, str] = {}
        acked: list[tuple[str, int]] = []
        failed: list[str] = []
        calls = attempts = hung = 0
        for part in collected:
            for kind, values in part["latency"].items():
                latency[kind].extend(values)
            errors.update(part["errors"])
            failures.update(part["failures"])
            for key, value in part["samples"].items():
                samples.setdefault(key, value)
            acked.extend(part["acked"])
            failed.extend(part["failed"])
            calls += part["calls"]
            attempts += part["attempts"]
            hung += part["hung"]
        server_log = log.read_text(errors="replace").splitlines()
        verdict = _verify(workdir / "state.db", acked, failed)

    timeouts = sum(n for key, n in errors.items() if key.endswith(": timeout"))
    print(f"client processes reporting: {len(collected)}/{len(workers)}; threads still running at the end: {hung}")
    print(f"calls {calls}  ({calls / args.seconds:.0f}/s)  HTTP attempts {attempts}  retried {attempts - calls}")
    print(f"failed attempts (retried unless they ended a call): {dict(failures) or 0}")
    print(f"timeouts {timeouts}  other errors {sum(errors.values()) - timeouts}")
    for key, count in sorted(errors.items()):
        print(f"  {key}: {count}")
    for key, text in sorted(samples.items()):
        print(f"  e.g. {key}: {text[:200]}")
    for kind, values in latency.items():
        print(f"{kind:<8} ok {len(values):>7}  {_percentiles(values)}")
    print("writes:")
    for key, value in verdict.items():
        print(f"  {key}: {value}")
    problems = [line for line in server_log if "internal error" in line or "Traceback" in line]
    print(f"server log: {len(server_log)} lines, {len(problems)} internal errors")
    ok = (
        verdict["acknowledged but missing"] == 0
        and verdict["acknowledged under another id"] == 0
        and verdict["applied more than once"] == 0
        and len(collected) == len(workers)
    )
    print("every acknowledged write is present exactly once" if ok else "WRITES LOST OR DUPLICATED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
