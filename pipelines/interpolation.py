"""``$[[ inputs.name ]]`` filled in as GitLab fills it when a file with a ``spec:`` header is included: the
given inputs are checked against the spec (unknown, missing, type, options, regex), defaults fill the rest, and
each interpolation is replaced. A value that is a whole interpolation keeps its input's type (an array input
becomes a list); one inside other text becomes text. The functions GitLab offers after ``|`` are applied:
``truncate(offset, length)`` and ``posix_escape`` exactly, ``expand_vars`` as the identity (the variables it
would expand are known only when a pipeline is created).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pipelines.gitlab_regex import SPACE, GitLabRegexError, gitlab_regex, re2_compile, regex_search

INPUT_TYPES = ("string", "number", "boolean", "array")
# ``$[[ inputs.name ]]``, ``$[[ component.name ]]``, each with optional ``| function`` parts. On RE2: with
# Python's re, a scalar of n characters with no closing ]] costs n**2.
INTERPOLATION = re2_compile(rf"\$\[\[{SPACE}*(inputs|component)\.([A-Za-z0-9_.-]*?){SPACE}*(\|[^\]]*)?\]\]")
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
    """``node`` with every ``$[[ inputs.x ]]`` (and ``$[[ component.x ]]``) filled in. Raises
    ``InterpolationError`` for an input the spec does not declare, or an unknown function."""
    context = {"inputs": inputs, "component": component or {}}

    def value_of(match: Any) -> Any:
        scope, name, functions = match.group(1), match.group(2), match.group(3)
        if name not in context[scope]:
            what = f"$[[ {scope}.{name} ]]"
            raise InterpolationError(f"{what}: unknown interpolation key" if scope == "inputs" else f"{what}: unknown")
        return _apply(context[scope][name], functions)

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
