"""Offline lint of GitLab CI files and CI/CD components, in GitLab's order.

:func:`lint_file` processes a file as GitLab does before it checks anything: includes read and merged
(``pipelines.includes``), then ``extends`` followed (``pipelines.extends``), then ``!reference`` tags resolved,
the lists they bring into ``script:`` and ``rules:`` flattened (``pipelines.references``). The checks then run
on the merged jobs: GitLab's CI schema, relaxed where GitLab is less strict (``pipelines.schema``), what a
schema cannot see (``pipelines.job_checks``), a component's ``spec: inputs`` (``pipelines.input_checks``).
Every problem is returned, never only the first one.

What cannot be read offline (a remote or template include, another project's component) lowers every check
that depends on it to a warning: a ``needs:`` target, an ``extends`` base, a ``!reference``, a stage, a
script that may come from there. A component file is linted as the includer will see it: its jobs may extend
or reference what the includer defines, so the same checks are warnings there too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autocore.issues import SEVERITY_ERROR, SEVERITY_WARNING, Issue
from autocore.text import json_path
from pipelines.extends import resolve_extends
from pipelines.gitlab_yaml import DuplicateKey, Loaded, load_document
from pipelines.includes import IncludeSettings, assemble
from pipelines.input_checks import input_issues, placeholders
from pipelines.interpolation import standalone_component
from pipelines.job_checks import (
    RESERVED_KEYS,
    World,
    jobs_of,
    keyword_issues,
    needs_issues,
    stage_issues,
    visible,
)
from pipelines.references import flatten_entries, resolve_references
from pipelines.schema import drop_nulls_below_keywords, schema_issues


@dataclass(frozen=True)
class LintOptions:
    """How to lint: where includes are read from, and whether duplicate keys are errors (``--strict``)."""

    includes: IncludeSettings = field(default_factory=IncludeSettings)
    strict: bool = False


def _duplicate_issues(file: str, duplicates: list[tuple[str, DuplicateKey]], strict: bool) -> list[Issue]:
    severity = SEVERITY_ERROR if strict else SEVERITY_WARNING
    issues = []
    for source, duplicate in duplicates:
        message = (
            f"key {duplicate.key!r} is written twice in one mapping (lines {duplicate.first_line} and "
            f"{duplicate.second_line}): GitLab keeps the last and ignores the first"
        )
        issues.append(
            Issue(source or file, json_path((*duplicate.where, duplicate.key)), message, "duplicate-key", severity)
        )
    return issues


def _checked_document(body: dict[str, Any], include: Any, jobs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What the schema sees: the pipeline's global keys, its include: as written, and its visible jobs (hidden
    templates are not jobs: GitLab checks only what they give the jobs that extend them)."""
    document = {k: v for k, v in body.items() if not isinstance(k, str) or k in RESERVED_KEYS}
    if include is not None:
        document["include"] = include
    document.update({name: drop_nulls_below_keywords(job) for name, job in jobs.items()})
    return document


def lint_loaded(file: str, loaded: Loaded, options: LintOptions | None = None) -> list[Issue]:
    """Lint an already-loaded file; ``file`` names it in the issues."""
    options = options or LintOptions()
    spec, own = loaded.spec, loaded.body
    inputs = spec.get("inputs") if spec and isinstance(spec.get("inputs"), dict) else {}
    if spec is not None:
        # A component on its own: its inputs as an includer would most likely give them (their defaults), so that
        # extends, references and stages named through inputs are followed as GitLab will follow them.
        component = standalone_component(file)  # its name where templates/ says it; placeholders for the rest
        loaded = Loaded(spec, placeholders(own, inputs, references=False, component=component), loaded.duplicates)
    assembled = assemble(loaded, file, options.includes)
    issues = _duplicate_issues(file, [(file, d) for d in loaded.duplicates] + assembled.duplicates, options.strict)
    issues += assembled.issues
    extended = resolve_extends(assembled.body, file)
    resolved, unresolved = resolve_references(extended.body, file)
    world = World(
        open=bool(assembled.unread) or spec is not None,
        stages_certain="stages" in own or "types" in own or not (assembled.unread or spec is not None),
        incomplete=extended.incomplete,
    )
    for problem in extended.problems:
        soft = problem.rule == "unknown-extends" and world.open
        message = problem.message + (world.hint() if soft else "")
        issues.append(
            Issue(file, json_path(problem.where), message, problem.rule, SEVERITY_WARNING if soft else SEVERITY_ERROR)
        )
    # A reference copied by extends into other jobs is one mistake: said once, where it is written first.
    unresolved_once = list({(u.reference.parts, u.reference.line): u for u in reversed(unresolved)}.values())[::-1]
    for u in unresolved_once:
        message = f"{u.reference} names nothing: {u.reason}{world.hint()}"
        issues.append(Issue(file, json_path(u.where), message, "unknown-reference", world.soft()))
    all_jobs = jobs_of(resolved)
    for name in [*all_jobs, "default", "workflow"]:
        entry = resolved.get(name)
        if isinstance(entry, dict):
            resolved[name], too_deep = flatten_entries(entry)
            for key in too_deep:
                message = f"{key}: nests lists deeper than GitLab's limit of 10 levels"
                issues.append(Issue(file, json_path((name, key)), message, "nesting-depth"))
    all_jobs = jobs_of(resolved)
    jobs = visible(all_jobs)
    spec_issues = input_issues(file, spec, own)
    if spec is not None:
        # The schema also checks input types and defaults: say it once, in our words.
        ours = {i.path for i in spec_issues}
        issues += [i for i in schema_issues(file, {"spec": spec}) if i.path not in ours]
    document = _checked_document(resolved, own.get("include"), jobs)
    checked = stage_issues(file, resolved, jobs, world) if spec is None or "stages" in own else []
    # (a component's stages are its includer's, whichever they are)
    checked += needs_issues(file, resolved, all_jobs, jobs, world)
    checked += keyword_issues(file, jobs, world)
    # Where a check of ours and the schema find the same value wrong, it is said once, in our words.
    ours = {i.path for i in checked}
    schema = schema_issues(file, placeholders(document, inputs), [u.where for u in unresolved])
    issues += [i for i in schema if i.path not in ours] + checked
    if assembled.unread:
        shown = ", ".join(assembled.unread[:3]) + (", ..." if len(assembled.unread) > 3 else "")
        message = f"{len(assembled.unread)} include(s) not read offline ({shown}): what depends on them is a warning"
        issues.append(Issue(file, "$.include", message, "include-not-read", SEVERITY_WARNING))
    return issues + spec_issues


def lint_document(
    file: str, spec: dict[str, Any] | None, body: dict[str, Any], options: LintOptions | None = None
) -> list[Issue]:
    """Lint an already-loaded ``(spec header or None, body)``; ``file`` names it in the issues."""
    return lint_loaded(file, Loaded(spec, body), options)


def lint_file(path: str | Path, options: LintOptions | None = None) -> list[Issue]:
    """Lint one GitLab CI file or CI/CD component; returns its issues (errors and warnings).

    Raises ``PipelinesConfigError`` for a missing, unreadable or unparsable file.
    """
    return lint_loaded(str(path), load_document(path), options)
