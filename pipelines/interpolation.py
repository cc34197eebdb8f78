"""``$[[ inputs.name ]]`` and ``$[[ component.name ]]`` filled in as GitLab fills them when a file with a ``spec:``
header is included: the given inputs are checked against the spec (unknown, missing, type, options, regex),
defaults fill the rest, and each interpolation is replaced. A value that is a whole interpolation keeps its input's
type (an array input becomes a list); one inside other text becomes text. The functions GitLab offers after ``|``
are applied: ``truncate(offset, length)`` and ``posix_escape`` exactly, ``expand_vars`` as the identity (the
variables it would expand are known only when a pipeline is created).

The component context (GitLab 18.6+): a component's ``spec: component: [name, sha, version, reference]`` says
which of GitLab's facts about the include it may use; only those are there to interpolate
(``yaml_context.component.slice(*declared)``), and a file included otherwise than as a component has none. An
interpolation that names nothing is GitLab's error, in GitLab's words (``Interpolation::Access``): "unknown
interpolation provided: `sha` in `component.sha`". ``$[[ matrix.X ]]`` is left for ``parallel:matrix``, as GitLab
leaves it. Offline, what GitLab would resolve (the newest release matching ``@1``, a commit's SHA) is
:data:`COMPONENT_PLACEHOLDERS`' stand-in.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import PurePath
from typing import Any

from pipelines.gitlab_regex import SPACE, GitLabRegexError, gitlab_regex, re2_compile, regex_search

INPUT_TYPES = ("string", "number", "boolean", "array")
# What spec: component may declare: GitLab's Header::Component::ALLOWED_VALUES, in its order.
COMPONENT_FIELDS = ("name", "sha", "version", "reference")
# Stand-ins for what only GitLab knows: the file linted on its own, a partial version (@1) GitLab resolves to its
# newest release, a commit's SHA. Plain text any field accepts, and plainly not a real value.
COMPONENT_PLACEHOLDERS = {field: f"component-{field}" for field in COMPONENT_FIELDS}
# Contexts GitLab leaves alone when it includes a file (Interpolation::Block::SKIP_INTERPOLATION_CONTEXTS):
# ``$[[ matrix.X ]]`` is filled in later, per parallel:matrix job.
SKIPPED_CONTEXTS = ("matrix",)
# ``$[[ CONTEXT.name ]]`` (``inputs``, ``component``, or a context GitLab does not know), with optional
# ``| function`` parts. On RE2: with Python's re, a scalar of n characters with no closing ]] costs n**2.
INTERPOLATION = re2_compile(rf"\$\[\[{SPACE}*([A-Za-z0-9_-]+)\.([A-Za-z0-9_.-]*?){SPACE}*(\|[^\]]*)?\]\]")
# References (after the @ of a component address) GitLab resolves to a release of a CI/CD Catalog resource:
# a full version, a partial one (its newest matching release), ~latest. Anything else (a branch, a commit SHA)
# has no version: GitLab's null.
_FULL_VERSION = re2_compile(r"[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?")
_PARTIAL_VERSION = re2_compile(r"[0-9]+(\.[0-9]+)?|~latest")
_COMMIT_SHA = re2_compile(r"[0-9a-f]{40}|[0-9a-f]{64}|\$CI_COMMIT_SHA|\$\{CI_COMMIT_SHA\}")
_TRUNCATE = re.compile(r"truncate\(\s*(\d{1,9})\s*,\s*(\d{1,9})\s*\)")
_SHELL_SAFE = re.compile(r"[A-Za-z0-9_\-.,:+/@\n]")


class InterpolationError(Exception):
    """Why the inputs given to an include cannot be used, in one line."""


def type_ok(value: Any, kind: str) -> bool:
    """Whether ``value`` is of the ``spec: inputs`` type ``kind``."""
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "array":
        return isinstance(value, list)
    return isinstance(value, str)


def input_values(spec: Mapping[str, Any] | None, given: Any) -> dict[str, Any]:
    """The inputs an include gets: ``given`` checked against ``spec`` (the file's ``spec:`` header, or None when
    it has none), defaults added. Raises ``InterpolationError`` with GitLab's reason."""
    declared = spec.get("inputs") if isinstance(spec, Mapping) else None
    declared = declared if isinstance(declared, dict) else {}
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise InterpolationError("inputs: must be a mapping of input names to values")
    if given and spec is None:
        raise InterpolationError("given inputs, but the included file has no spec: header declaring inputs")
    unknown = [name for name in given if name not in declared]
    if unknown:
        raise InterpolationError(f"unknown input arguments: {', '.join(map(str, unknown))}")
    values: dict[str, Any] = {}
    for name, definition in declared.items():
        definition = definition if isinstance(definition, dict) else {}
        if name in given:
            value = given[name]
        elif "default" in definition:
            value = definition["default"]
        else:
            raise InterpolationError(f"input {name!r}: required value has not been provided")
        kind = definition.get("type", "string")
        if value is None:
            values[name] = value  # a null default: GitLab fills in nothing (GNOME's citemplates rely on it)
            continue
        if not type_ok(value, kind):
            raise InterpolationError(f"input {name!r}: provided value is not a {kind}")
        options = definition.get("options")
        if isinstance(options, list) and value not in options:
            raise InterpolationError(f"input {name!r}: {value!r} is not one of its options")
        regex = definition.get("regex")
        if isinstance(regex, str) and isinstance(value, str) and name in given:
            try:
                compiled = gitlab_regex(regex)
            except GitLabRegexError as exc:
                raise InterpolationError(f"input {name!r}: its regex {regex!r} {exc.reason}") from None
            if not regex_search(compiled, value):
                raise InterpolationError(f"input {name!r}: provided value does not match required RegEx pattern")
        values[name] = value
    return values


def component_context(name: str, reference: str) -> dict[str, Any]:
    """GitLab's facts about a component included as ``PATH/NAME@REFERENCE``, as far as they are known offline:
    ``version`` is the reference when it is a full version, GitLab's null (None) for a branch or a commit, and
    :data:`COMPONENT_PLACEHOLDERS`' stand-in for what GitLab resolves (``@1``, ``@1.2``, ``@~latest``, a CI
    variable); ``sha`` is the reference when it is a commit SHA, else the stand-in."""
    if _FULL_VERSION.fullmatch(reference):
        version: str | None = reference
    elif _PARTIAL_VERSION.fullmatch(reference) or ("$" in reference and not _COMMIT_SHA.fullmatch(reference)):
        version = COMPONENT_PLACEHOLDERS["version"]
    else:
        version = None
    sha = reference if _COMMIT_SHA.fullmatch(reference) else COMPONENT_PLACEHOLDERS["sha"]
    return {"name": name, "sha": sha, "version": version, "reference": reference}


def standalone_component(file: str) -> dict[str, Any]:
    """The component context of a file linted on its own: the name GitLab gives a component at
    ``templates/NAME.yml`` or ``templates/NAME/template.yml``, and :data:`COMPONENT_PLACEHOLDERS` for what only
    an include would tell (sha, version, reference; the name of a file elsewhere)."""
    context: dict[str, Any] = dict(COMPONENT_PLACEHOLDERS)
    path = PurePath(file)
    if path.suffix == ".yml" and path.parent.name == "templates":
        context["name"] = path.stem
    elif path.name == "template.yml" and path.parent.parent.name == "templates":
        context["name"] = path.parent.name
    return context


def component_problems(spec: Mapping[str, Any] | None) -> list[tuple[tuple[Any, ...], str]]:
    """What GitLab says of ``spec: component`` when it is not a list of :data:`COMPONENT_FIELDS`: ``(where
    under spec: component, message)`` pairs, one per wrong entry, in GitLab's words (Header::Component's
    validations). Left empty (null) it is GitLab's default, no field."""
    declared = spec.get("component") if isinstance(spec, Mapping) else None
    if declared is None:
        return []
    prefix = "header:spec:component config"
    if not isinstance(declared, list):
        return [((), f"{prefix} should be an array of strings")]
    problems: list[tuple[tuple[Any, ...], str]] = []
    for index, field in enumerate(declared):
        if not isinstance(field, str):
            problems.append(((index,), f"{prefix} should be an array of strings"))
        elif field not in COMPONENT_FIELDS:
            problems.append(((index,), f"{prefix} contains unknown values: {field}"))
    return problems


def declared_component(spec: Mapping[str, Any] | None) -> list[str]:
    """The fields ``spec: component`` declares that GitLab knows, once each, in the order written."""
    declared = spec.get("component") if isinstance(spec, Mapping) else None
    if not isinstance(declared, list):
        return []
    return list(dict.fromkeys(f for f in declared if isinstance(f, str) and f in COMPONENT_FIELDS))


def component_values(spec: Mapping[str, Any] | None, known: Mapping[str, Any] | None) -> dict[str, Any]:
    """What ``$[[ component.x ]]`` may name in a file with ``spec``: the declared fields GitLab knows of the
    include (``known``; None or empty when the file is not included as a component). Raises
    ``InterpolationError`` with GitLab's header error when ``spec: component`` is wrong."""
    problems = component_problems(spec)
    if problems:
        messages = list(dict.fromkeys(m for _, m in problems if m.endswith("should be an array of strings")))
        declared = spec.get("component") if isinstance(spec, Mapping) else None
        unknown = [str(f) for f in declared if f not in COMPONENT_FIELDS] if isinstance(declared, list) else []
        if unknown:
            messages.append(f"header:spec:component config contains unknown values: {', '.join(unknown)}")
        raise InterpolationError(", ".join(messages[:3]))
    known = known or {}
    return {field: known[field] for field in declared_component(spec) if field in known}


def access(scopes: Mapping[str, Any], path: str) -> Any:
    """The value ``$[[ PATH ]]`` names in ``scopes`` (``{"inputs": ..., "component": ...}``), walked as GitLab
    walks it (at most five dot-separated parts); raises ``InterpolationError`` in GitLab's words for the first
    part that names nothing."""
    value: Any = scopes
    for segment in path.split(".", 4):
        if not isinstance(value, Mapping) or segment not in value:
            raise InterpolationError(f"unknown interpolation provided: `{segment}` in `{path}`")
        value = value[segment]
    return value


def interpolation_uses(node: Any, where: tuple[Any, ...] = ()) -> Iterator[tuple[str, str, tuple[Any, ...]]]:
    """Every ``$[[ CONTEXT.name ]]`` under ``node`` (keys included): ``(context, name, where)``."""
    if isinstance(node, str):
        for match in INTERPOLATION.finditer(node):
            yield match.group(1), match.group(2), where
    elif isinstance(node, dict):
        for key, value in node.items():
            if isinstance(key, str):
                for match in INTERPOLATION.finditer(key):
                    yield match.group(1), match.group(2), (*where, key)
            yield from interpolation_uses(value, (*where, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from interpolation_uses(value, (*where, index))


def _posix_escape(text: str) -> str:
    """Ruby's ``Shellwords.escape``: every character but the safe ones behind a backslash; '' for empty text."""
    if not text:
        return "''"
    return "".join(c if _SHELL_SAFE.fullmatch(c) else "'\n'" if c == "\n" else "\\" + c for c in text)


def _apply(value: Any, functions: str | None) -> Any:
    if not functions:
        return value
    for function in (f.strip() for f in functions.lstrip("|").split("|")):
        truncate = _TRUNCATE.fullmatch(function)
        if truncate:
            start, length = int(truncate.group(1)), int(truncate.group(2))
            value = str(value)[start : start + length]
        elif function == "posix_escape":
            value = _posix_escape(str(value))
        elif function == "expand_vars":
            value = str(value)  # the variables are known only when the pipeline is created
        else:
            raise InterpolationError(f"unknown interpolation function {function!r}")
    return value


def interpolate(node: Any, inputs: Mapping[str, Any], component: Mapping[str, Any] | None = None) -> Any:
    """``node`` with every ``$[[ inputs.x ]]`` and ``$[[ component.x ]]`` filled in (``component``: what
    :func:`component_values` gives; a null fills in nothing inside text, as GitLab's ``nil.to_s``). Raises
    ``InterpolationError`` in GitLab's words for what names nothing (an undeclared input or component field, an
    unknown context), or an unknown function."""
    context = {"inputs": inputs, "component": component or {}}

    def value_of(match: Any) -> Any:
        scope, name, functions = match.group(1), match.group(2), match.group(3)
        if scope in SKIPPED_CONTEXTS:
            return match.group(0)
        return _apply(access(context, f"{scope}.{name}"), functions)

    def text(value: str) -> Any:
        if "$[[" not in value:
            return value
        whole = INTERPOLATION.fullmatch(value.strip())
        if whole:
            return value_of(whole)
        return INTERPOLATION.sub(lambda m: _as_text(value_of(m)), value)

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            return text(item)
        if isinstance(item, dict):
            return {(text(k) if isinstance(k, str) else k): walk(v) for k, v in item.items()}
        if isinstance(item, list):
            return [walk(v) for v in item]
        return item

    return walk(node)


def _as_text(value: Any) -> str:
    """An input's value inside other text: Ruby's ``to_s`` for the scalars GitLab allows there."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)
