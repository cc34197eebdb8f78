"""What GitLab checks of the jobs of a merged pipeline that a schema cannot see: stages, ``needs:`` and
``dependencies:`` targets (``parallel:`` names included), a job's ``script:``/``run:``/``trigger:``,
``only:``/``except:`` beside ``rules:``, and durations.

The checks see the pipeline as GitLab does: includes merged, ``extends`` followed, references resolved; hidden
jobs (``.name``) are templates and are not checked. A :class:`World` says what could not be read: when some
include was not read offline, a target or stage that may come from it is a warning, not an error.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from autocore.issues import SEVERITY_ERROR, SEVERITY_WARNING, Issue, issue_message
from autocore.text import json_path
from pipelines.durations import check_duration

DEFAULT_STAGES = (".pre", "build", "test", "deploy", ".post")
# Top-level keys that are not jobs (``pages`` is a job, with a schema of its own).
RESERVED_KEYS = frozenset(
    {"$schema", "spec", "image", "services", "before_script", "after_script", "variables", "cache", "default"}
    | {"stages", "include", "workflow", "types"}
)
_MAX_LISTED = 20  # stage names an issue lists: a file may declare thousands, and each issue would repeat them all
_MAX_PARALLEL = 200  # GitLab's limit on the jobs one parallel: makes


@dataclass
class World:
    """What lint knows of the pipeline beyond the merged file."""

    open: bool = False  # something was not read (a remote include, or the file is a component others include)
    stages_certain: bool = True  # stages: is the file's own, or nothing unread could set it
    incomplete: set[str] = field(default_factory=set)  # jobs that extend something unknown

    def soft(self) -> str:
        return SEVERITY_WARNING if self.open else SEVERITY_ERROR

    def hint(self) -> str:
        return " (it may come from an include: not read offline)" if self.open else ""


def jobs_of(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every job of ``body``, hidden templates included: its non-reserved keys whose value is a mapping."""
    return {k: v for k, v in body.items() if isinstance(k, str) and k not in RESERVED_KEYS and isinstance(v, dict)}


def visible(jobs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The jobs GitLab runs: not hidden, and not named by a component input (known only to the includer)."""
    return {k: v for k, v in jobs.items() if not k.startswith(".") and "$[[" not in k}


def _interpolated(value: Any) -> bool:
    return isinstance(value, str) and "$[[" in value


def _listed(known: set[str], order: Any = None) -> str:
    names = [s for s in (order or sorted(known)) if isinstance(s, str)]
    if len(names) > _MAX_LISTED:
        return ", ".join(names[:_MAX_LISTED]) + f", ... ({len(names)} in all)"
    return ", ".join(names)


def _declared_stages(body: dict[str, Any]) -> list[str] | None:
    stages = body.get("stages", body.get("types"))
    return [s for s in stages if isinstance(s, str)] if isinstance(stages, list) else None


def stage_of(job: dict[str, Any], world: World, name: str) -> str | None:
    """The job's stage, or None where it cannot be known here (an input, an unknown base, an unread include)."""
    stage = job.get("stage", job.get("type"))
    if isinstance(stage, str):
        return None if _interpolated(stage) or stage.startswith("$") else stage  # "$INPUTS_STAGE": the includer's
    if stage is None and not world.open and name not in world.incomplete:
        return "test"
    return None


def stage_issues(file: str, body: dict[str, Any], jobs: dict[str, dict[str, Any]], world: World) -> list[Issue]:
    declared = _declared_stages(body)
    known = {".pre", ".post", *declared} if declared is not None else set(DEFAULT_STAGES)
    severity = SEVERITY_ERROR if world.stages_certain else SEVERITY_WARNING
    all_known = _listed(known)  # once per file: built per issue, n stages and n jobs would cost n**2
    in_order = _listed(known, declared if declared is not None else DEFAULT_STAGES)
    issues: list[Issue] = []
    for name, job in jobs.items():
        unstaged = "stage" not in job and "type" not in job
        stage = "test" if unstaged and "test" not in known else stage_of(job, world, name)
        if stage is None or stage in known:
            continue
        if unstaged:
            unsure = world.open or name in world.incomplete  # an include or a base may give it a stage
            hint = " (unless what it extends or an include: not read offline gives it one)" if unsure else ""
            message = f"job {name!r} has no stage: so it runs in 'test', which is not in stages ({all_known}){hint}"
            level = SEVERITY_WARNING if unsure else severity
            issues.append(Issue(file, json_path((name,)), message, "undeclared-stage", level))
        else:
            where = "stages" if declared is not None else "GitLab's default stages"
            message = f"stage {stage!r} is not in {where} ({in_order})"
            key = "stage" if "stage" in job else "type"
            issues.append(Issue(file, json_path((name, key)), message, "undeclared-stage", severity))
    return issues


def _matrix_names(name: str, parallel: Any) -> Iterator[str]:
    """The names GitLab gives the jobs ``parallel:`` makes: ``name 1/3``, or ``name: [a, b]`` for a matrix."""
    if isinstance(parallel, int) and not isinstance(parallel, bool) and 1 < parallel <= _MAX_PARALLEL:
        yield from (f"{name} {i}/{parallel}" for i in range(1, parallel + 1))
    matrix = parallel.get("matrix") if isinstance(parallel, dict) else None
    if not isinstance(matrix, list):
        return
    made = 0
    for entry in matrix:
        if not isinstance(entry, dict):
            continue
        axes = [v if isinstance(v, list) else [v] for v in entry.values()]
        for values in itertools.product(*axes):
            made += 1
            if made > _MAX_PARALLEL:
                return
            yield f"{name}: [{', '.join(_ruby_text(v) for v in values)}]"


def _ruby_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _stage_ranks(body: dict[str, Any]) -> dict[str, int]:
    declared = _declared_stages(body)
    order = [".pre", *(declared if declared is not None else DEFAULT_STAGES[1:-1]), ".post"]
    ranks: dict[str, int] = {}
    for index, stage in enumerate(order):
        ranks.setdefault(stage, index)
    return ranks


def needs_issues(
    file: str, body: dict[str, Any], all_jobs: dict[str, dict[str, Any]], jobs: dict[str, dict[str, Any]], world: World
) -> list[Issue]:
    """``needs:`` and ``dependencies:`` targets: each a job of the pipeline, not hidden, not in a later stage."""
    ranks = _stage_ranks(body)
    instances = {n: base for base, job in jobs.items() for n in _matrix_names(base, job.get("parallel"))}
    issues: list[Issue] = []
    for name, job in jobs.items():
        own = stage_of(job, world, name)
        for key in ("needs", "dependencies"):
            entries = job.get(key)
            if not isinstance(entries, list):
                continue
            for index, entry in enumerate(entries):
                if isinstance(entry, dict) and ("project" in entry or "pipeline" in entry):
                    continue  # another project's or pipeline's job
                target = entry.get("job") if isinstance(entry, dict) else entry
                if not isinstance(target, str) or _interpolated(target) or "$" in target:
                    continue
                optional = isinstance(entry, dict) and entry.get("optional") is True
                where = (name, key, index, "job") if isinstance(entry, dict) else (name, key, index)
                base = target if target in jobs else instances.get(target)
                if base is None:
                    if target in all_jobs:
                        message = f"{key} {target!r}, a hidden job: hidden jobs never run"
                        issues.append(Issue(file, json_path(where), message, f"unknown-{key}"))
                    elif not optional:
                        message = f"{key} {target!r}, which is not a job of this pipeline{world.hint()}"
                        issues.append(Issue(file, json_path(where), message, f"unknown-{key}", world.soft()))
                    continue
                theirs = stage_of(jobs[base], world, base)
                if own is None or theirs is None or own not in ranks or theirs not in ranks:
                    continue
                if ranks[theirs] > ranks[own]:
                    # GitLab refuses the pipeline: "... is not defined in current or prior stages".
                    message = f"{key} {target!r}, a job of the later stage {theirs!r} (this job is in {own!r})"
                    issues.append(Issue(file, json_path(where), message, f"{key}-later-stage"))
    return issues


def keyword_issues(file: str, jobs: dict[str, dict[str, Any]], world: World) -> list[Issue]:
    """Each job has what runs it; ``rules:`` excludes ``only:``/``except:``/``start_in:``; durations parse."""
    issues: list[Issue] = []
    for name, job in jobs.items():
        runnable = any(job.get(k) not in (None, [], "") for k in ("script", "run", "trigger"))
        if not runnable and job.get("script") is None and name not in world.incomplete:
            # script: [] or "" is the schema's to report; a job extending an unknown base is already reported.
            unsure = world.open
            reason = " (unless an include: not read offline gives it one)" if unsure else ""
            message = f"job {name!r} has no script:, run: or trigger:, so GitLab cannot run it{reason}"
            severity = SEVERITY_WARNING if unsure else SEVERITY_ERROR
            issues.append(Issue(file, json_path((name,)), message, "job-without-script", severity))
        if job.get("rules") is not None:
            clashing = [k for k in ("only", "except") if job.get(k) is not None]
            if clashing:
                given = " and ".join(f"{k}:" for k in clashing)
                message = f"only: or except: may not be used with rules: (this job has rules: and {given})"
                issues.append(Issue(file, json_path((name,)), message, "only-with-rules"))
            if job.get("start_in") is not None:
                message = "start_in: may not be used with rules: (give start_in: in the rule instead)"
                issues.append(Issue(file, json_path((name, "start_in")), message, "only-with-rules"))
        issues += duration_issues(file, (name,), job)
    return issues


def duration_issues(file: str, where: tuple[Any, ...], entry: dict[str, Any]) -> list[Issue]:
    """``timeout``, ``start_in`` (of a delayed job) and ``artifacts:expire_in`` as GitLab parses them."""
    found: list[tuple[tuple[Any, ...], str, Any]] = []
    if "timeout" in entry:
        found.append(((*where, "timeout"), "timeout", entry["timeout"]))
    if "start_in" in entry and entry.get("when") == "delayed":
        found.append(((*where, "start_in"), "start_in", entry["start_in"]))
    artifacts = entry.get("artifacts")
    if isinstance(artifacts, dict) and "expire_in" in artifacts:
        found.append(((*where, "artifacts", "expire_in"), "expire_in", artifacts["expire_in"]))
    issues = []
    for path, keyword, value in found:
        problem = check_duration(keyword, value)
        if problem:
            issues.append(Issue(file, json_path(path), issue_message(problem), "duration"))
    return issues
