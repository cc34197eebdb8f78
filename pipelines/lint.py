"""Offline lint of GitLab CI files and CI/CD components.

:func:`lint_file` returns every problem as an :class:`Issue`, never stopping at the first one:
the body against GitLab's CI JSON schema (vendored by check-jsonschema), then what a schema cannot
see: stages, ``needs``/``extends``/``dependencies`` targets, ``!reference`` targets, and the
component's ``spec: inputs`` (declared vs used, types, defaults, options, regexes).

Every regex that untrusted text meets here runs on RE2 (google-re2), as GitLab's own ``UntrustedRegexp``
does: a component's ``spec: inputs`` regexes, the ``$[[ inputs.x ]]`` scanner and the patterns of GitLab's
CI schema. RE2 never backtracks, so a match costs time linear in the text; Python's ``re`` takes 59 s to try
``^(a+)+$`` on 30 characters, and minutes for the schema's ``cache:key`` pattern on a long key. A pattern RE2
refuses (backreferences, lookarounds) is one GitLab refuses too, and is reported as such.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from autocore.issues import SEVERITY_ERROR, SEVERITY_WARNING, Issue, issue_message
from autocore.text import json_path
from pipelines.errors import PipelinesConfigError
from pipelines.gitlab_yaml import Reference, load_pipeline, resolve_references

DEFAULT_STAGES = (".pre", "build", "test", "deploy", ".post")
INPUT_TYPES = ("string", "number", "boolean", "array")
# Top-level keys that are not jobs (``pages`` is a job, with a schema of its own).
RESERVED_KEYS = frozenset(
    {"$schema", "spec", "image", "services", "before_script", "after_script", "variables", "cache", "default"}
    | {"stages", "include", "workflow"}
)
_PLACEHOLDER = "input-value"
_MAX_LISTED = 20  # stage names an issue lists: a file may declare thousands, and each issue would repeat them all
# GitLab's whitespace (Ruby's \s), spelled out: RE2's \s lacks \v.
_SPACE = r"[\t\n\v\f\r ]"


# --------------------------------------------------------------------------- GitLab regexes (RE2)


class GitLabRegexError(Exception):
    """A regex GitLab would refuse; ``reason`` says why, in one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@cache
def _re2_options() -> Any:
    try:
        import re2
    except ImportError:
        raise PipelinesConfigError(
            "google-re2 is not installed: it matches GitLab's regexes as GitLab does (RE2)"
        ) from None
    options = re2.Options()
    options.log_errors = False  # RE2 would log every refused pattern on stderr, past our one-line errors
    return options


@lru_cache(maxsize=256)  # bounded: a file may hold thousands of distinct regexes, each RE2 object up to 8 MiB
def re2_compile(pattern: str) -> Any:
    """``pattern`` compiled by RE2; raises ``GitLabRegexError`` with RE2's reason when RE2 refuses it."""
    options = _re2_options()  # first: it says so in one line when google-re2 is missing
    import re2

    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else b"refused"
        text = reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)
        raise GitLabRegexError(text) from None
    except UnicodeEncodeError:  # a lone surrogate, which YAML's \ud800 can make: not UTF-8, not a GitLab regex
        raise GitLabRegexError("not UTF-8 text") from None


def input_regex_pattern(regex: str) -> str:
    """The pattern of a ``spec: inputs`` regex, which may be written between slashes (``/^v[0-9]+$/``)."""
    return regex[1:-1] if len(regex) > 1 and regex.startswith("/") and regex.endswith("/") else regex


def gitlab_regex(regex: str) -> Any:
    """A ``spec: inputs`` regex as GitLab compiles it (RE2). Raises ``GitLabRegexError``, one line saying why
    GitLab would refuse it: Python's account of a syntax error (it gives the position), else RE2's reason."""
    pattern = input_regex_pattern(regex)
    try:
        return re2_compile(pattern)
    except GitLabRegexError as refused:
        try:
            re.compile(pattern)  # only for a clearer message; the pattern is never matched by Python
        except re.error as exc:
            raise GitLabRegexError(f"does not compile: {exc}") from None
        except (RecursionError, OverflowError, ValueError):
            pass  # Python gives up on it too, with nothing clearer to say than RE2
        raise GitLabRegexError(
            f"is refused by RE2, GitLab's regex engine ({refused.reason}): GitLab would refuse it"
        ) from None


def regex_search(compiled: Any, text: str) -> bool:
    """Whether RE2-``compiled`` matches somewhere in ``text`` (GitLab's ``match?``); time linear in ``text``."""
    try:
        return compiled.search(text) is not None
    except UnicodeEncodeError:  # a lone surrogate: no UTF-8 text GitLab could be given matches
        return False


# Interpolation: ``$[[ inputs.name ]]``, ``$[[ inputs.name | function ]]``. On RE2: with Python's re, a scalar of
# n characters with no closing ]] costs n**2 (each ``$[[`` start scans to the end, twice).
_INTERPOLATION = re2_compile(rf"\$\[\[{_SPACE}*(inputs|component)\.([A-Za-z0-9_.-]*?){_SPACE}*(\|[^\]]*)?\]\]")


# --------------------------------------------------------------------------- schema


def schema_path() -> Path:
    """GitLab's CI JSON schema as vendored by check-jsonschema."""
    try:
        import check_jsonschema
    except ImportError:
        raise PipelinesConfigError("check-jsonschema is not installed: it provides GitLab's CI schema") from None
    path = Path(check_jsonschema.__file__).parent / "builtin_schemas" / "vendor" / "gitlab-ci.json"
    if not path.is_file():
        raise PipelinesConfigError(f"GitLab's CI schema is not where check-jsonschema keeps it: {path}")
    return path


def _pattern_keyword(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    """jsonschema's ``pattern`` on RE2: the schema's own ``^[^/]*[^./][^/]*$`` (``cache:key``) backtracks in n**2
    on Python's re. Same message as jsonschema's."""
    from jsonschema.exceptions import ValidationError

    if not validator.is_type(instance, "string"):
        return
    try:
        compiled = re2_compile(pattern)
    except GitLabRegexError:  # not in the schema we vendor; a future one keeps working, on Python's re
        matched = re.search(pattern, instance) is not None
    else:
        matched = regex_search(compiled, instance)
    if not matched:
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


@cache
def _validator() -> Any:
    from jsonschema import Draft7Validator, validators

    schema = json.loads(schema_path().read_text(encoding="utf-8"))
    return validators.extend(Draft7Validator, {"pattern": _pattern_keyword})(schema)


def _substitute(node: Any, spec_inputs: dict[str, Any]) -> Any:
    """A copy where ``$[[ inputs.x ]]`` is a placeholder the schema accepts: a whole-value interpolation of a
    number/boolean/array input becomes its default (or a value of its type), any other one a string."""

    def typed(name: str) -> Any:
        declared = spec_inputs.get(name)
        declared = declared if isinstance(declared, dict) else {}
        kind = declared.get("type", "string")
        if "default" in declared and _type_ok(declared["default"], kind):
            return declared["default"]
        if kind == "string" and isinstance(declared.get("options"), list) and declared["options"]:
            return str(declared["options"][0])
        if kind == "string":
            # A required string input stands for what the includer passes: a CI variable is the one value
            # every string field accepts (a URL field, say, wants https://... or $VARIABLE).
            return "$INPUTS_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()
        return {"number": 1, "boolean": True, "array": []}.get(kind, _PLACEHOLDER)

    def text(value: str) -> Any:
        whole = _INTERPOLATION.fullmatch(value.strip())
        if whole and whole.group(1) == "inputs" and not whole.group(3):
            return typed(whole.group(2))
        return _INTERPOLATION.sub(_PLACEHOLDER, value)

    if isinstance(node, str):
        return text(node)
    if isinstance(node, dict):
        return {
            (_INTERPOLATION.sub(_PLACEHOLDER, k) if isinstance(k, str) else k): _substitute(v, spec_inputs)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_substitute(v, spec_inputs) for v in node]
    if isinstance(node, Reference):
        return _PLACEHOLDER
    return node


def _explain(error: Any) -> Any:
    """The most telling error under a oneOf/anyOf: branches that want another type entirely are left out."""
    from jsonschema.exceptions import best_match

    if not error.context:
        return error
    telling = [e for e in error.context if not (e.validator == "type" and not e.relative_path)]
    return best_match(telling or error.context)


def _schema_issues(file: str, document: dict[str, Any], skip: Sequence[tuple[Any, ...]]) -> list[Issue]:
    issues: list[Issue] = []
    skipped = {tuple(map(_hashable, s)) for s in skip}  # a set: errors x unresolved references would be quadratic
    for error in _validator().iter_errors(document):
        shown = _explain(error)
        where = tuple(shown.absolute_path)
        key = tuple(map(_hashable, where))
        if skipped and any(key[:n] in skipped for n in range(len(key) + 1)):
            continue  # under an unresolved !reference: reported as such
        message = shown.message
        if shown.validator == "additionalProperties" and "not allowed" not in message:
            message = f"additional properties are not allowed: {message}"
        issues.append(Issue(file, json_path(where), issue_message(message), "schema"))
    return issues


def _hashable(part: Any) -> Any:
    """A path part as a set member: YAML keys may be lists or mappings (``? [a, b]``), which do not hash."""
    try:
        hash(part)
    except TypeError:
        return ("unhashable", repr(part))
    return part


# --------------------------------------------------------------------------- what a schema cannot see


def _jobs(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in body.items() if isinstance(k, str) and k not in RESERVED_KEYS and isinstance(v, dict)}


def _interpolated(value: Any) -> bool:
    return isinstance(value, str) and "$[[" in value


def _stage_issues(file: str, body: dict[str, Any], jobs: dict[str, dict[str, Any]]) -> list[Issue]:
    stages = body.get("stages")
    declared = isinstance(stages, list)
    known = {".pre", ".post", *(s for s in stages if isinstance(s, str))} if declared else set(DEFAULT_STAGES)
    # Without stages: here, an included file may declare them.
    severity = SEVERITY_WARNING if not declared and "include" in body else SEVERITY_ERROR
    # Listed once for the whole file: built per issue, a file of n stages and n jobs would cost n**2.
    all_known = _listed(known)
    in_order = _listed(known, stages if declared else DEFAULT_STAGES)
    issues: list[Issue] = []
    for name, job in jobs.items():
        if name.startswith(".") or _interpolated(name):
            continue
        stage = job.get("stage")
        if stage is None:
            if "extends" in job or "test" in known:
                continue
            message = f"job {name!r} has no stage: so it runs in 'test', which is not in stages ({all_known})"
            issues.append(Issue(file, json_path((name,)), message, "undeclared-stage", severity))
        elif isinstance(stage, str) and not _interpolated(stage) and stage not in known:
            where = "stages" if declared else "GitLab's default stages"
            message = f"stage {stage!r} is not in {where} ({in_order})"
            issues.append(Issue(file, json_path((name, "stage")), message, "undeclared-stage", severity))
    return issues


def _listed(known: set[str], order: Any = None) -> str:
    names = [s for s in (order or sorted(known)) if isinstance(s, str)]
    if len(names) > _MAX_LISTED:
        return ", ".join(names[:_MAX_LISTED]) + f", ... ({len(names)} in all)"
    return ", ".join(names)


def _reference_job_issues(file: str, body: dict[str, Any], jobs: dict[str, dict[str, Any]]) -> list[Issue]:
    ranks = _stage_ranks(body)
    included = "include" in body
    soft = SEVERITY_WARNING if included else SEVERITY_ERROR
    hint = " (it may come from an include: file)" if included else ""
    issues: list[Issue] = []
    for name, job in jobs.items():
        extends = job.get("extends")
        targets = [extends] if isinstance(extends, str) else extends if isinstance(extends, list) else []
        for index, target in enumerate(targets):
            if not isinstance(target, str) or _interpolated(target) or target in jobs:
                continue
            where = (name, "extends") if isinstance(extends, str) else (name, "extends", index)
            message = f"extends {target!r}, which is not a job in this file{hint}"
            issues.append(Issue(file, json_path(where), message, "unknown-extends", soft))
        for key in ("needs", "dependencies"):
            entries = job.get(key)
            if not isinstance(entries, list):
                continue
            for index, entry in enumerate(entries):
                target = entry.get("job") if isinstance(entry, dict) else entry
                if isinstance(entry, dict) and ("project" in entry or "pipeline" in entry):
                    continue  # another project's or pipeline's job
                if not isinstance(target, str) or _interpolated(target):
                    continue
                where = (name, key, index, "job") if isinstance(entry, dict) else (name, key, index)
                if target.startswith(".") and target in jobs:
                    message = f"{key} {target!r}, a hidden job: hidden jobs never run"
                    issues.append(Issue(file, json_path(where), message, f"unknown-{key}"))
                elif target not in jobs:
                    message = f"{key} {target!r}, which is not a job in this file{hint}"
                    issues.append(Issue(file, json_path(where), message, f"unknown-{key}", soft))
                elif _stage_rank(ranks, jobs[target]) > _stage_rank(ranks, job):
                    # GitLab refuses the pipeline: "... is not defined in current or prior stages".
                    later, own = jobs[target].get("stage"), job.get("stage", "test")
                    message = f"{key} {target!r}, a job of the later stage {later!r} (this job is in {own!r})"
                    issues.append(Issue(file, json_path(where), message, f"{key}-later-stage"))
    return issues


def _stage_ranks(body: dict[str, Any]) -> dict[str, int]:
    """Each stage's place in the pipeline (its first one, as ``list.index`` would say), built once per file."""
    stages = body.get("stages")
    order = [".pre", *(stages if isinstance(stages, list) else DEFAULT_STAGES[1:-1]), ".post"]
    ranks: dict[str, int] = {}
    for index, stage in enumerate(order):
        if isinstance(stage, str):
            ranks.setdefault(stage, index)
    return ranks


def _stage_rank(ranks: dict[str, int], job: dict[str, Any]) -> int:
    """Where the job's stage comes in the pipeline; -1 when that is not known here (extends, inputs, a typo)."""
    stage = job.get("stage")
    if stage is None and "extends" in job:
        return -1
    stage = "test" if stage is None else stage
    return ranks.get(stage, -1) if isinstance(stage, str) else -1


def _input_uses(node: Any, where: tuple[Any, ...] = ()) -> Iterator[tuple[str, tuple[Any, ...]]]:
    if isinstance(node, str):
        for match in _INTERPOLATION.finditer(node):
            if match.group(1) == "inputs":
                yield match.group(2), where
    elif isinstance(node, dict):
        for key, value in node.items():
            if isinstance(key, str):
                for match in _INTERPOLATION.finditer(key):
                    if match.group(1) == "inputs":
                        yield match.group(2), (*where, key)
            yield from _input_uses(value, (*where, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _input_uses(value, (*where, index))


def _type_ok(value: Any, kind: str) -> bool:
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "array":
        return isinstance(value, list)
    return isinstance(value, str)


def _input_issues(file: str, spec: dict[str, Any] | None, body: dict[str, Any]) -> list[Issue]:
    inputs = spec.get("inputs") if spec else None
    inputs = inputs if isinstance(inputs, dict) else {}
    issues: list[Issue] = []
    used: set[str] = set()
    for name, where in _input_uses(body):
        used.add(name)
        if name not in inputs:
            message = (
                f"$[[ inputs.{name} ]] is not declared in spec: inputs"
                if spec is not None
                else f"$[[ inputs.{name} ]] is used but the file has no spec: header declaring inputs"
            )
            issues.append(Issue(file, json_path(where), message, "undeclared-input"))
    for name, declared in inputs.items():
        where = ("spec", "inputs", name)
        if name not in used:
            issues.append(Issue(file, json_path(where), f"input {name!r} is declared but never used", "unused-input"))
        if not isinstance(declared, dict):
            continue  # `name:` alone is a required string input; other shapes are schema errors
        kind = declared.get("type", "string")
        if kind not in INPUT_TYPES:
            message = f"input {name!r}: type {kind!r} is not one of {', '.join(INPUT_TYPES)}"
            issues.append(Issue(file, json_path((*where, "type")), message, "input-type"))
            continue
        has_default = "default" in declared
        default = declared.get("default")
        if has_default and not _type_ok(default, kind):
            message = f"input {name!r}: default {default!r} is not a {kind}"
            issues.append(Issue(file, json_path((*where, "default")), message, "input-default-type"))
        options = declared.get("options")
        if isinstance(options, list):
            for index, option in enumerate(options):
                if not _type_ok(option, kind):
                    message = f"input {name!r}: option {option!r} is not a {kind}"
                    issues.append(Issue(file, json_path((*where, "options", index)), message, "input-options"))
            if has_default and default not in options:
                message = f"input {name!r}: default {default!r} is not one of its options ({_show(options)})"
                issues.append(Issue(file, json_path((*where, "default")), message, "input-default-not-in-options"))
        regex = declared.get("regex")
        if isinstance(regex, str):
            try:
                compiled = gitlab_regex(regex)
            except GitLabRegexError as exc:
                message = f"input {name!r}: regex {regex!r} {exc.reason}"
                issues.append(Issue(file, json_path((*where, "regex")), issue_message(message), "input-regex"))
            else:
                if has_default and isinstance(default, str) and not regex_search(compiled, default):
                    message = f"input {name!r}: default {default!r} does not match its regex {regex!r}"
                    issues.append(Issue(file, json_path((*where, "default")), message, "input-default-regex"))
    return issues


def _show(values: list[Any]) -> str:
    return ", ".join(repr(v) for v in values)


# --------------------------------------------------------------------------- entry points


def lint_document(file: str, spec: dict[str, Any] | None, body: dict[str, Any]) -> list[Issue]:
    """Lint an already-loaded ``(spec header or None, body)``; ``file`` names it in the issues."""
    resolved, unresolved = resolve_references(body, file)
    issues = [
        Issue(file, json_path(u.where), f"{u.reference} names nothing: {u.reason}", "unknown-reference")
        for u in unresolved
    ]
    inputs = spec.get("inputs") if spec and isinstance(spec.get("inputs"), dict) else {}
    input_issues = _input_issues(file, spec, body)
    if spec is not None:
        # The schema also checks input types and defaults: say it once, in our words.
        ours = {i.path for i in input_issues}
        issues += [i for i in _schema_issues(file, {"spec": spec}, []) if i.path not in ours]
    issues += _schema_issues(file, _substitute(resolved, inputs), [u.where for u in unresolved])
    jobs = _jobs(resolved)
    issues += _stage_issues(file, resolved, jobs)
    issues += _reference_job_issues(file, resolved, jobs)
    return issues + input_issues


def lint_file(path: str | Path) -> list[Issue]:
    """Lint one GitLab CI file or CI/CD component; returns its issues (errors and warnings).

    Raises ``PipelinesConfigError`` for a missing, unreadable or unparsable file.
    """
    spec, body = load_pipeline(path)
    return lint_document(str(path), spec, body)
