"""A component's ``spec: inputs`` and ``spec: component``, checked as GitLab checks them when the component is
included: each ``$[[ inputs.x ]]`` declared, each declaration's type, default, options and regex consistent;
``spec: component`` a list of GitLab's fields, each ``$[[ component.x ]]`` one of them and declared, no context
GitLab does not know (``$[[ foo.x ]]``). A declared input that no interpolation uses is a warning: GitLab has no
such rule, but it is often a slip.

A component linted on its own has no includer to give its inputs, nor a reference it is included at:
:func:`placeholders` puts in their place a value of the declared type (the default where there is one), and for
``$[[ component.x ]]`` what ``interpolation.standalone_component`` knows (the name, from where the file is), so that the
schema judges the rest.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from autocore.issues import SEVERITY_WARNING, Issue, issue_message
from autocore.text import json_path
from pipelines.gitlab_regex import GitLabRegexError, gitlab_regex, regex_search
from pipelines.gitlab_yaml import Reference
from pipelines.interpolation import (
    COMPONENT_FIELDS,
    COMPONENT_PLACEHOLDERS,
    INPUT_TYPES,
    INTERPOLATION,
    SKIPPED_CONTEXTS,
    InterpolationError,
    access,
    component_problems,
    declared_component,
    interpolation_uses,
    type_ok,
)

PLACEHOLDER = "input-value"


def placeholders(
    node: Any,
    spec_inputs: dict[str, Any],
    *,
    references: bool = True,
    component: Mapping[str, Any] | None = None,
) -> Any:
    """A copy where ``$[[ inputs.x ]]`` stands for what an includer would most likely pass: its default, else a
    value of its type the schema accepts (a whole-value interpolation keeps its type; inside other text, the
    default as text or ``input-value``); ``$[[ component.x ]]`` for ``component``'s value (default:
    :data:`COMPONENT_PLACEHOLDERS`); ``$[[ matrix.X ]]`` stays, as GitLab leaves it. ``references``: unresolved
    ``!reference`` tags become text too (for the schema); kept as they are otherwise."""
    known = dict(COMPONENT_PLACEHOLDERS) if component is None else dict(component)

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
        context, name = match.group(1), match.group(2)
        if context in SKIPPED_CONTEXTS:
            return str(match.group(0))
        if context == "component":
            value = known.get(name, COMPONENT_PLACEHOLDERS.get(name, PLACEHOLDER))
            return "" if value is None else str(value)
        declared = declared_of(name)
        default = declared.get("default")
        if context == "inputs" and not match.group(3) and isinstance(default, str | int | float):
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


def context_issues(file: str, spec: dict[str, Any] | None, body: dict[str, Any]) -> list[Issue]:
    """``spec: component`` and every ``$[[ CONTEXT.x ]]`` but inputs, as GitLab judges them when it includes the
    file as a component: its header errors, then each interpolation that names nothing, in GitLab's words."""
    issues = [
        Issue(file, json_path(("spec", "component", *where)), issue_message(message), "spec-component")
        for where, message in component_problems(spec)
    ]
    declared = declared_component(spec)
    scopes = {"inputs": {}, "component": dict.fromkeys(declared, "")}
    for context, name, where in interpolation_uses(body):
        if context == "inputs" or context in SKIPPED_CONTEXTS:
            continue
        path = f"{context}.{name}"
        if spec is None:
            if context == "component":
                message = f"$[[ {path} ]] is used but the file has no spec: header declaring component"
                issues.append(Issue(file, json_path(where), message, "undeclared-component"))
            continue  # without a header GitLab interpolates nothing: other $[[ ]] text is text
        try:
            access(scopes, path)
        except InterpolationError as exc:
            field = name.split(".", 1)[0]
            if context != "component":
                hint = ": GitLab interpolates only inputs and component when it includes a file"
                rule = "unknown-interpolation"
            elif field not in COMPONENT_FIELDS:
                hint, rule = f": spec: component offers {', '.join(COMPONENT_FIELDS)}", "undeclared-component"
            elif field not in declared:
                hint, rule = f": add {field} to spec: component", "undeclared-component"
            else:
                hint, rule = "", "unknown-interpolation"  # component.version.x: a field's value is text
            issues.append(Issue(file, json_path(where), f"{exc}{hint}", rule))
    return issues


def input_issues(file: str, spec: dict[str, Any] | None, body: dict[str, Any]) -> list[Issue]:
    inputs = spec.get("inputs") if spec else None
    inputs = inputs if isinstance(inputs, dict) else {}
    issues: list[Issue] = []
    used: set[str] = set()
    for context, name, where in interpolation_uses(body):
        if context != "inputs":
            continue
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
    return issues + context_issues(file, spec, body)


def _show(values: list[Any]) -> str:
    return ", ".join(repr(v) for v in values)
