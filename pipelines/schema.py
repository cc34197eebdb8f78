"""GitLab's CI JSON schema (as check-jsonschema vendors it), made to agree with GitLab where it is stricter.

The schema is a community description of what GitLab accepts, and in a few places it refuses what GitLab runs.
Where the two disagree, GitLab wins: :data:`RELAXATIONS` lists each change made to the schema, with the GitLab
behaviour it follows, and :func:`drop_nulls_below_keywords` is the one change made to the document instead.
Patterns run on RE2 (``pipelines.gitlab_regex``): the schema's own ``cache:key`` pattern backtracks in n**2
on Python's ``re``.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from autocore.issues import Issue, issue_message
from autocore.text import json_path
from pipelines.errors import PipelinesConfigError
from pipelines.gitlab_regex import GitLabRegexError, re2_compile, regex_search


@dataclass(frozen=True)
class Relaxation:
    """The schema keyword ``keyword`` removed at JSON pointer ``pointer``, because GitLab does not check it."""

    pointer: str
    keyword: str
    gitlab: str  # what GitLab does instead, and where it says so


RELAXATIONS = (
    Relaxation(
        "/definitions/artifacts/properties/paths",
        "minItems",
        "artifacts:paths: [] is accepted: Entry::Artifacts checks paths only as an array of strings",
    ),
    Relaxation(
        "/definitions/artifacts/properties/exclude",
        "minItems",
        "artifacts:exclude: [] is accepted: Entry::Artifacts checks exclude only as an array of strings",
    ),
    Relaxation(
        "/definitions/tags/items/anyOf/0",
        "minLength",
        "a tag may be empty text (a component's empty default): GitLab's tags entry is ArrayOfStrings, any string",
    ),
    Relaxation(
        "/properties/spec/properties/component",
        "uniqueItems",
        "spec:component: [version, version] is accepted: Header::Component checks an array of its allowed strings "
        "and uses config.uniq",
    ),
    Relaxation(
        "/properties/spec/properties/component",
        "type",
        "spec:component: left empty (null) is accepted: an entry with no value is its default, [] (Entry::Factory's "
        "Unspecified); any other shape is reported by lint's own check, in GitLab's words (input_checks)",
    ),
)
# A key of a job left empty (``variables:`` with nothing under it, ``cache: {paths: }``) is a key left unspecified
# to GitLab: its entries validate with allow_nil and build an Undefined entry for nil (gitlab-org/omnibus-gitlab
# runs a job with ``variables:`` empty). The schema wants a value. A job whose ``script:`` is empty is reported
# by lint's own check, in GitLab's words.
NULL_TOLERANT_DEPTH = 1  # job -> keyword: nulls at this depth (and deeper) are dropped before validation


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


def relaxed_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``schema`` with every :data:`RELAXATIONS` applied. A relaxation whose place the schema no longer
    has is an error: the vendored schema changed, and the list must be read again."""
    relaxed = copy.deepcopy(schema)
    for relaxation in RELAXATIONS:
        node: Any = relaxed
        for part in relaxation.pointer.strip("/").split("/"):
            node = node[int(part)] if isinstance(node, list) else node.get(part)
            if node is None:
                break
        if not isinstance(node, dict) or relaxation.keyword not in node:
            raise PipelinesConfigError(
                f"GitLab's CI schema has no {relaxation.keyword} at {relaxation.pointer} any more: "
                "check pipelines/schema.py's RELAXATIONS against the new schema"
            )
        del node[relaxation.keyword]
    return relaxed


def _pattern_keyword(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    """jsonschema's ``pattern`` on RE2. Same message as jsonschema's."""
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

    schema = relaxed_schema(json.loads(schema_path().read_text(encoding="utf-8")))
    return validators.extend(Draft7Validator, {"pattern": _pattern_keyword})(schema)


def drop_nulls_below_keywords(job: Any, depth: int = 0) -> Any:
    """``job`` without the nulls GitLab reads as "not given" (see ``NULL_TOLERANT_DEPTH``)."""
    if isinstance(job, dict):
        return {
            k: drop_nulls_below_keywords(v, depth + 1)
            for k, v in job.items()
            if not (v is None and depth >= NULL_TOLERANT_DEPTH - 1)
        }
    if isinstance(job, list):
        return [drop_nulls_below_keywords(v, depth + 1) for v in job]
    return job


def _explain(error: Any) -> Any:
    """The most telling error under a oneOf/anyOf: branches that want another type entirely are left out."""
    from jsonschema.exceptions import best_match

    if not error.context:
        return error
    telling = [e for e in error.context if not (e.validator == "type" and not e.relative_path)]
    return best_match(telling or error.context)


def _hashable(part: Any) -> Any:
    """A path part as a set member: YAML keys may be lists or mappings (``? [a, b]``), which do not hash."""
    try:
        hash(part)
    except TypeError:
        return ("unhashable", repr(part))
    return part


def schema_issues(file: str, document: dict[str, Any], skip: Sequence[tuple[Any, ...]] = ()) -> list[Issue]:
    """What GitLab's (relaxed) schema says of ``document``; nothing under a path in ``skip`` (unresolved
    references, reported as such)."""
    issues: list[Issue] = []
    skipped = {tuple(map(_hashable, s)) for s in skip}  # a set: errors x unresolved references would be quadratic
    for error in _validator().iter_errors(document):
        shown = _explain(error)
        where = tuple(shown.absolute_path)
        key = tuple(map(_hashable, where))
        if skipped and any(key[:n] in skipped for n in range(len(key) + 1)):
            continue
        message = shown.message
        if shown.validator == "additionalProperties" and "not allowed" not in message:
            message = f"additional properties are not allowed: {message}"
        issues.append(Issue(file, json_path(where), issue_message(message), "schema"))
    return issues
