"""A component's ``spec: inputs``, checked as GitLab checks them when the component is included: each
``$[[ inputs.x ]]`` declared, each declaration's type, default, options and regex consistent. A declared input
that no interpolation uses is a warning: GitLab has no such rule, but it is often a slip.

A component linted on its own has no includer to give its inputs: :func:`placeholders` puts in their place a
value of the declared type (the default where there is one), so that the schema judges the rest.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from autocore.issues import SEVERITY_WARNING, Issue, issue_message
from autocore.text import json_path
from pipelines.gitlab_regex import GitLabRegexError, gitlab_regex, regex_search
from pipelines.gitlab_yaml import Reference
from pipelines.interpolation import INPUT_TYPES, INTERPOLATION, type_ok

PLACEHOLDER = "input-value"


def placeholders(node: Any, spec_inputs: dict[str, Any], *, references: bool = True) -> Any:
    """A copy where ``$[[ inputs.x ]]`` stands for what an includer would most likely pass: its default, else a
    value of its type the schema accepts (a whole-value interpolation keeps its type; inside other text, the
    default as text or ``input-value``). ``references``: unresolved ``!reference`` tags become text too (for
    the schema); kept as they are otherwise."""

    def declared_of(name: str) -> dict[str, Any]:
        declared = spec_inputs.get(name)
        return declared if isinstance(declared, dict) else {}

    def typed(name: str) -> Any:
        declared = declared_of(name)
        kind = declared.get("type", "string")
        if "default" in declared and type_ok(declared["default"], kind):
            return declared["default"]
        if kind == "string" and isinstance(declared.get("options"), list) and declared["options"]:
            return str(declared["options"][0])
        if kind == "string":
            # A required string input stands for what the includer passes: a CI variable is the one value
            # every string field accepts (a URL field, say, wants https://... or $VARIABLE).
            return "$INPUTS_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()
        return {"number": 1, "boolean": True, "array": []}.get(kind, PLACEHOLDER)

    def inside(match: Any) -> str:
        declared = declared_of(match.group(2))
        default = declared.get("default")
        if match.group(1) == "inputs" and not match.group(3) and isinstance(default, str | int | float):
            return str(default).lower() if isinstance(default, bool) else str(default)
        return PLACEHOLDER

    def text(value: str) -> Any:
        if "$[[" not in value:
            return value
        whole = INTERPOLATION.fullmatch(value.strip())
        if whole and whole.group(1) == "inputs" and not whole.group(3):
            return typed(whole.group(2))
        return INTERPOLATION.sub(inside, value)

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            return text(item)
        if isinstance(item, dict):
            return {(INTERPOLATION.sub(inside, k) if isinstance(k, str) else k): walk(v) for k, v in item.items()}
        if isinstance(item, list):
            return [walk(v) for v in item]
        if isinstance(item, Reference) and references:
            return PLACEHOLDER
        return item

    return walk(node)


def _input_uses(node: Any, where: tuple[Any, ...] = ()) -> Iterator[tuple[str, tuple[Any, ...]]]:
    if isinstance(node, str):
        for match in INTERPOLATION.finditer(node):
            if match.group(1) == "inputs":
                yield match.group(2), where
    elif isinstance(node, dict):
        for key, value in node.items():
            if isinstance(key, str):
                for match in INTERPOLATION.finditer(key):
                    if match.group(1) == "inputs":
                        yield match.group(2), (*where, key)
            yield from _input_uses(value, (*where, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _input_uses(value, (*where, index))


def input_issues(file: str, spec: dict[str, Any] | None, body: dict[str, Any]) -> list[Issue]:
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
            message = f"input {name!r} is declared but never used"
            issues.append(Issue(file, json_path(where), message, "unused-input", SEVERITY_WARNING))
        if not isinstance(declared, dict):
            continue  # `name:` alone is a required string input; other shapes are schema errors
        kind = declared.get("type", "string")
        if kind not in INPUT_TYPES:
            message = f"input {name!r}: type {kind!r} is not one of {', '.join(INPUT_TYPES)}"
            issues.append(Issue(file, json_path((*where, "type")), message, "input-type"))
            continue
        has_default = "default" in declared
        default = declared.get("default")
        if has_default and default is not None and not type_ok(default, kind):
            message = f"input {name!r}: default {default!r} is not a {kind}"
            issues.append(Issue(file, json_path((*where, "default")), message, "input-default-type"))
        options = declared.get("options")
        if isinstance(options, list):
            for index, option in enumerate(options):
                if not type_ok(option, kind):
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
