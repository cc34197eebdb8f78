"""auto-pipelines lint against check-jsonschema and gitlab-ci-local, on real GitLab CI files and broken ones.

The files: the real-world corpus (tests/pipelines/realworld/INDEX.tsv: ci/ and components/, files GitLab runs)
and the broken ones (every variant of realworld/broken/VARIANTS.yaml, materialised in a temporary directory,
and the real files of realworld/refused/, which GitLab itself refuses). Each tool judges each file on its own:

  * auto-pipelines lint: `.venv/bin/python -m pipelines lint --json FILE`, one process per file (exit 0 accepts);
    also `lint_file()` in-process, for timing, and whether a variant gets exactly its one expected error.
  * check-jsonschema --builtin-schema vendor.gitlab-ci FILE (exit 0 accepts).
  * gitlab-ci-local --list, the file as .gitlab-ci.yml in a git repository of its own (committed, with an
    origin), the required inputs of a component given (`--input`); without network (`unshare -rn`): includes it
    would fetch fail as they would offline. Skipped, with a note, when gitlab-ci-local is not installed
    (`make gitlab-ci-local`); without unshare, files with an include: are left out.

Per tool: real files wrongly failed (count and names), broken files caught. A broken file counts as caught when
the tool refuses it and accepts the real file it was made from; when the tool refuses that real file already,
its verdict says nothing ("cannot tell"). Then lint's own time per real file (median and worst, in-process,
median of --repeat runs) and for a generated pipeline of --lines lines (stages, needs, extends of templates,
rules, !reference), median of 5 runs.

Files and tools are the same on every machine; the times are this machine's. Nothing leaves loopback.

Run: `.venv/bin/python benchmarks/lint_corpus.py [--json report.json] [--jobs 8] [--repeat 3] [--lines 10000]`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autocore.issues import SEVERITY_ERROR  # noqa: E402
from pipelines.lint import lint_file  # noqa: E402
from tests.pipelines import gitlab_ci_local as gcl  # noqa: E402
from tests.pipelines.test_realworld import (  # noqa: E402
    REALWORLD,
    broken_text,
    load_variants,
    real_files,
    refused_files,
)

BIN = Path(sys.executable).parent
LINT = "auto-pipelines lint"
SCHEMA = "check-jsonschema"
GCL = "gitlab-ci-local --list"
TOOLS = (LINT, SCHEMA, GCL)
TOOL_TIMEOUT = 120  # seconds for one file, any tool
SYNTHETIC_RUNS = 5
REMOTE_INCLUDES = ("remote:", "project:", "component:", "template:", "http://", "https://")


@dataclass
class Case:
    """One file to judge: a real one (``base`` None) or a broken one (``base``: the real file it comes from)."""

    label: str  # "ci/x.gitlab-ci.yml", or a variant's name, or "refused/x.gitlab-ci.yml"
    path: Path  # the file, under the work directory
    real: bool
    base: str | None = None  # the real file a variant was made from
    expected: dict[str, str] | None = None  # a variant's rule, path, message
    verdicts: dict[str, Verdict] = field(default_factory=dict)


@dataclass
class Verdict:
    refused: bool | None  # None: not run
    seconds: float = 0.0
    reason: str = ""  # the tool's last words when it refuses; why it did not run otherwise
    exact: bool | None = None  # lint only: exactly the expected error


_NOISE = ("    at ", "parsing and downloads", "json schema validated", "For further", "\t• Copy", "\t• Use --")
# check-jsonschema's headlines, which say that something failed but not what
_GENERIC = ("Several files failed to parse", "Failed to parse", "Schema validation errors were encountered")
_TELLING = ("could not be fetched", "cannot be found", "not found", "invalid", "error", "failed", "must", "could not")


def _tail(text: str, limit: int = 160) -> str:
    """Why a tool refused a file, in a line: its first lines that say so, else its last two lines."""
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith(_NOISE)]
    lines = [line for line in lines if not line.startswith(_GENERIC)]
    telling = [line for line in lines if "::$" in line or any(word in line.lower() for word in _TELLING)]
    return " | ".join(telling[:2] or lines[-2:])[:limit]


def _run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[int, str, str, float]:
    """Exit code, stdout, stderr and wall seconds of one tool run (-1 on timeout)."""
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            argv, cwd=cwd, env=env, capture_output=True, text=True, errors="replace", timeout=TOOL_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        return -1, "", f"timed out after {TOOL_TIMEOUT} s", time.perf_counter() - started
    return proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - started


# --------------------------------------------------------------------------- the files


def materialise(work: Path) -> list[Case]:
    cases = []
    for name in real_files():
        path = work / "real" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes((REALWORLD / name).read_bytes())
        cases.append(Case(name, path, real=True))
    for variant in load_variants():
        path = work / "broken" / variant["name"] / Path(variant["base"]).name
        path.parent.mkdir(parents=True)
        path.write_text(broken_text(variant), encoding="utf-8")
        expected = {k: variant[k] for k in ("rule", "path", "message")}
        cases.append(Case(variant["name"], path, real=False, base=variant["base"], expected=expected))
    for name in refused_files():
        path = work / "real" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes((REALWORLD / name).read_bytes())
        cases.append(Case(name, path, real=False))
    return cases


def _component_inputs(text: str) -> dict[str, str]:
    """Values for a component's required inputs (no default), so that gitlab-ci-local can expand it."""
    try:
        documents = [d for d in yaml.load_all(text, Loader=_Loader) if d is not None]
    except yaml.YAMLError:
        return {}
    if len(documents) < 2 or not isinstance(documents[0], dict) or not isinstance(documents[0].get("spec"), dict):
        return {}
    inputs = documents[0]["spec"].get("inputs") or {}
    given = {}
    for name, declared in inputs.items() if isinstance(inputs, dict) else ():
        declared = declared if isinstance(declared, dict) else {}
        if "default" not in declared:
            kind = declared.get("type", "string")
            given[str(name)] = {"number": "1", "boolean": "true", "array": "[]"}.get(kind, "test")
    return given


class _Loader(yaml.SafeLoader):
    """Safe YAML that reads GitLab's !reference tags (as plain lists)."""


_Loader.add_constructor("!reference", lambda loader, node: loader.construct_sequence(node))


# --------------------------------------------------------------------------- the tools


def judge_lint(case: Case, work: Path) -> Verdict:
    code, out, err, seconds = _run([sys.executable, "-m", "pipelines", "lint", "--json", str(case.path)], work)
    if code not in (0, 3):  # 2: not a file lint can read (GitLab cannot either)
        return Verdict(True, seconds, _tail(err or out))
    try:
        issues = json.loads(out)[0]["issues"]
    except (ValueError, IndexError, KeyError, TypeError):
        return Verdict(code != 0, seconds, _tail(out + err))
    errors = [i for i in issues if i["severity"] == SEVERITY_ERROR]
    exact = None
    if case.expected is not None:
        want = case.expected
        exact = len(errors) == 1 and (errors[0]["rule"], errors[0]["path"]) == (want["rule"], want["path"])
        exact = exact and want["message"] in errors[0]["message"]
    reason = "; ".join(f"{e['rule']} {e['path']}" for e in errors[:3])
    return Verdict(code != 0, seconds, reason, exact)


def judge_schema(case: Case, work: Path) -> Verdict:
    argv = [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.gitlab-ci", str(case.path)]
    code, out, err, seconds = _run(argv, work)
    return Verdict(code != 0, seconds, "" if code == 0 else _tail(out + err))


def gitlab_ci_local_judge(gcl_path: str | None, isolate: list[str] | None) -> Callable[[Case, Path], Verdict]:
    def judge(case: Case, work: Path) -> Verdict:
        if gcl_path is None:
            return Verdict(None, reason="gitlab-ci-local is not installed (make gitlab-ci-local)")
        text = case.path.read_text(encoding="utf-8")
        if isolate is None and "include" in text and any(word in text for word in REMOTE_INCLUDES):
            return Verdict(None, reason="left out: it has includes to fetch and unshare -rn is not available")
        project = work / "gcl" / case.label.replace("/", "__")
        project.mkdir(parents=True)
        (project / ".gitlab-ci.yml").write_text(text, encoding="utf-8")
        gcl.commit_repo(project, origin=f"https://{gcl.FAKE_GITLAB}/corpus/project.git")
        invocation = gcl.command(project, gcl=gcl_path, list_jobs=True, inputs=_component_inputs(text))
        argv = [*(isolate or []), *invocation.argv]
        code, out, err, seconds = _run(argv, project, invocation.env)
        shutil.rmtree(project, ignore_errors=True)
        return Verdict(code != 0, seconds, "" if code == 0 else _tail(out + err))

    return judge


def network_isolation() -> list[str] | None:
    """``unshare -rn`` when this machine allows it (a network namespace of one's own, loopback only)."""
    if shutil.which("unshare") is None:
        return None
    probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True, check=False)
    return ["unshare", "-rn"] if probe.returncode == 0 else None


# --------------------------------------------------------------------------- timing


def time_in_process(cases: list[Case], repeat: int) -> dict[str, float]:
    """Milliseconds per real file: the median of ``repeat`` runs of lint_file(), after one warm-up pass."""
    real = [c for c in cases if c.real]
    for case in real:
        lint_file(case.path)
    times = {}
    for case in real:
        runs = []
        for _ in range(repeat):
            started = time.perf_counter()
            lint_file(case.path)
            runs.append((time.perf_counter() - started) * 1000)
        times[case.label] = statistics.median(runs)
    return times


def synthetic_pipeline(lines: int) -> str:
    """A valid pipeline of at least ``lines`` lines: 12 stages, 24 templates (rules, before_script through
    !reference), and jobs that extend them, need jobs of the stage before, and add rules of their own."""
    stages = [f"stage-{i:02d}" for i in range(12)]
    out = ["stages:", *(f"  - {s}" for s in stages), "", ".setup:", "  script:", "    - ./ci/setup.sh", ""]
    for t in range(24):
        out += [
            f".rules-{t:02d}:",
            "  rules:",
            "    - if: $CI_PIPELINE_SOURCE == 'merge_request_event'",
            f"    - if: $CI_COMMIT_BRANCH == 'release-{t}'",
            "      when: manual",
            "      allow_failure: true",
            "",
            f".tpl-{t:02d}:",
            f"  image: registry.example.test/build/image-{t}:1.0",
            "  before_script:",
            "    - !reference [.setup, script]",
            f"    - echo template {t}",
            "  variables:",
            f"    TEMPLATE: tpl-{t:02d}",
            "  retry: 1",
            "  timeout: 45 minutes",
            "",
        ]
    per_job, per_stage = 17, None
    count = max(1, (lines - len(out)) // per_job + 1)
    per_stage = -(-count // len(stages))
    for j in range(count):
        stage = j // per_stage
        needs = [f"job-{n:05d}" for n in range((stage - 1) * per_stage, stage * per_stage)][j % per_stage :][:2]
        out += [
            f"job-{j:05d}:",
            f"  extends: .tpl-{j % 24:02d}",
            f"  stage: {stages[stage]}",
            f"  needs: [{', '.join(needs)}]" if stage else "  needs: []",
            "  script:",
            f"    - make target-{j}",
            f"    - ./ci/report.sh {j}",
            "  rules:",
            f"    - !reference [.rules-{j % 24:02d}, rules]",
            "    - if: $CI_COMMIT_TAG",
            "      when: never",
            "  artifacts:",
            "    paths:",
            f"      - out/{j}/",
            "    expire_in: 1 week",
            "  variables:",
            f'    JOB_NUMBER: "{j}"',
        ]
    return "\n".join(out) + "\n"


def time_synthetic(work: Path, lines: int) -> dict[str, Any]:
    path = work / "synthetic.gitlab-ci.yml"
    text = synthetic_pipeline(lines)
    path.write_text(text, encoding="utf-8")
    issues = lint_file(path)  # warm-up, and the check that it is valid
    runs = []
    for _ in range(SYNTHETIC_RUNS):
        started = time.perf_counter()
        lint_file(path)
        runs.append((time.perf_counter() - started) * 1000)
    errors = [i for i in issues if i.severity == SEVERITY_ERROR]
    return {
        "lines": text.count("\n"),
        "jobs": text.count("\njob-"),
        "median_ms": statistics.median(runs),
        "runs_ms": runs,
        "errors": len(errors),
        "first_errors": [f"{i.rule} {i.path}: {i.message}" for i in errors[:3]],
    }


# --------------------------------------------------------------------------- the report


def summarise(cases: list[Case]) -> dict[str, Any]:
    real = {c.label: c for c in cases if c.real}
    summary: dict[str, Any] = {}
    for tool in TOOLS:
        ran = [c for c in real.values() if c.verdicts[tool].refused is not None]
        wrongly = [{"file": c.label, "reason": c.verdicts[tool].reason} for c in ran if c.verdicts[tool].refused]
        caught, missed, cannot_tell, not_run = [], [], [], []
        exact = 0
        for case in (c for c in cases if not c.real):
            verdict = case.verdicts[tool]
            base = real.get(case.base) if case.base else None
            if verdict.refused is None or (base is not None and base.verdicts[tool].refused is None):
                not_run.append(case.label)
            elif base is not None and base.verdicts[tool].refused:
                cannot_tell.append(case.label)
            elif verdict.refused:
                caught.append(case.label)
                exact += bool(verdict.exact)
            else:
                missed.append(case.label)
        summary[tool] = {
            "real_files": len(real),
            "real_files_run": len(ran),
            "real_wrongly_failed": wrongly,
            "broken_files": sum(not c.real for c in cases),
            "broken_caught": caught,
            "broken_missed": missed,
            "broken_cannot_tell": cannot_tell,
            "broken_not_run": not_run,
            "process_seconds_median": _median_seconds([c.verdicts[tool] for c in cases]),
        }
        if tool == LINT:
            summary[tool]["broken_exact"] = exact
            summary[tool]["variants"] = sum(c.expected is not None for c in cases)
    return summary


def _median_seconds(verdicts: list[Verdict]) -> float | None:
    ran = [v.seconds for v in verdicts if v.refused is not None]
    return statistics.median(ran) if ran else None


def print_table(summary: dict[str, Any], timing: dict[str, Any]) -> None:
    print(
        f"{'tool':24} {'real files wrongly failed':>27} {'broken files caught':>21} {'cannot tell':>12} {'s/file':>7}"
    )
    for tool, s in summary.items():
        wrong = f"{len(s['real_wrongly_failed'])} of {s['real_files_run']}"
        caught = f"{len(s['broken_caught'])} of {s['broken_files']}"
        seconds = "-" if s["process_seconds_median"] is None else f"{s['process_seconds_median']:.2f}"
        print(f"{tool:24} {wrong:>27} {caught:>21} {len(s['broken_cannot_tell']):>12} {seconds:>7}")
    lint = summary[LINT]
    print(f"\n{LINT}: {lint['broken_exact']} of {lint['variants']} variants get exactly their expected error")
    for tool, s in summary.items():
        if s["real_wrongly_failed"]:
            print(f"\n{tool} fails these real files:")
            for entry in s["real_wrongly_failed"]:
                print(f"  {entry['file']}: {entry['reason']}")
        if s["broken_missed"]:
            print(f"{tool} accepts these broken files: {', '.join(s['broken_missed'])}")
        if s["broken_not_run"]:
            print(f"{tool} did not judge {len(s['broken_not_run'])} broken file(s)")
    per_file = timing["per_real_file_ms"]
    worst = max(per_file, key=per_file.get)
    synthetic = timing["synthetic"]
    print(
        f"\nlint_file() per real file (median of {timing['repeat']} runs each): median {timing['median_ms']:.1f} ms, "
        f"worst {per_file[worst]:.1f} ms ({worst})"
    )
    print(
        f"lint_file() on a generated {synthetic['lines']}-line pipeline ({synthetic['jobs']} jobs): median of "
        f"{SYNTHETIC_RUNS} runs {synthetic['median_ms']:.0f} ms, {synthetic['errors']} error(s)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="files judged at once (processes)")
    parser.add_argument("--repeat", type=int, default=3, help="in-process lint runs per real file (median kept)")
    parser.add_argument("--lines", type=int, default=10_000, help="size of the generated pipeline (default 10000)")
    parser.add_argument("--tools", default=",".join(TOOLS), help=f"a comma-separated subset of: {', '.join(TOOLS)}")
    args = parser.parse_args()
    chosen = {t.strip() for t in args.tools.split(",")}
    gcl_path = gcl.executable()
    isolate = network_isolation()
    notes = []
    if gcl_path is None:
        notes.append("gitlab-ci-local is not installed (make gitlab-ci-local): its column is empty")
    if isolate is None:
        notes.append("unshare -rn is not available: gitlab-ci-local was not run on files with includes to fetch")
    judges: dict[str, Callable[[Case, Path], Verdict]] = {
        LINT: judge_lint,
        SCHEMA: judge_schema,
        GCL: gitlab_ci_local_judge(gcl_path, isolate),
    }
    with tempfile.TemporaryDirectory(prefix="lint-corpus-") as tmp:
        work = Path(tmp)
        cases = materialise(work)
        print(
            f"{sum(c.real for c in cases)} real files, {sum(not c.real for c in cases)} broken files", file=sys.stderr
        )
        for tool in TOOLS:
            judge = judges[tool] if tool in chosen else (lambda case, work: Verdict(None, reason="not chosen"))
            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
                verdicts = list(pool.map(lambda case, judge=judge: judge(case, work), cases))
            for case, verdict in zip(cases, verdicts, strict=True):
                case.verdicts[tool] = verdict
            print(f"{tool}: {time.perf_counter() - started:.1f} s", file=sys.stderr)
        per_file = time_in_process(cases, args.repeat)
        timing = {
            "repeat": args.repeat,
            "per_real_file_ms": per_file,
            "median_ms": statistics.median(per_file.values()),
            "worst_ms": max(per_file.values()),
            "synthetic": time_synthetic(work, args.lines),
        }
    summary = summarise(cases)
    print_table(summary, timing)
    for note in notes:
        print(f"note: {note}")
    lint = summary[LINT]
    print(
        f"result: lint wrongly fails {len(lint['real_wrongly_failed'])}/{lint['real_files']} real files and catches "
        f"{len(lint['broken_caught'])}/{lint['broken_files']} broken ones ({lint['broken_exact']}/{lint['variants']} "
        "variants exactly); "
        + "; ".join(
            f"{tool} {len(s['real_wrongly_failed'])}/{s['real_files_run']} and {len(s['broken_caught'])}/"
            f"{s['broken_files']}"
            for tool, s in summary.items()
            if tool != LINT and s["real_files_run"]
        )
        + f"; lint {timing['median_ms']:.0f} ms/file median, {timing['worst_ms']:.0f} ms worst, "
        f"{timing['synthetic']['lines']} lines in {timing['synthetic']['median_ms']:.0f} ms"
    )
    if args.json:
        report = {
            "tools": summary,
            "timing": timing,
            "notes": notes,
            "files": [
                {
                    "file": c.label,
                    "real": c.real,
                    "base": c.base,
                    "verdicts": {t: v.__dict__ for t, v in c.verdicts.items()},
                }
                for c in cases
            ],
        }
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    failed = lint["real_wrongly_failed"] or lint["broken_missed"] or timing["synthetic"]["errors"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
