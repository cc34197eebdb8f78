"""JSON-Schema errors about a Swagger/OpenAPI document, said in a spec author's words, at the node they are about.

``explain`` turns one ``jsonschema`` error of the OpenAPI meta-schema into findings ``(parts, message)``
whose ``parts`` are the path of a node that exists in the document (an unexpected property is named by
its own key). For a ``oneOf``/``anyOf`` it picks the branch the node was meant to be, by the keys the
node has (a parameter with ``in:`` and ``name:`` is a Parameter, never a Reference), and explains that
branch's errors instead of "is not valid under any of the given schemas" or "'$ref' is a required property".
"""

from __future__ import annotations

import ast
import difflib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from autocore.issues import issue_message

_TYPE_NAMES = {
    "object": "an object",
    "array": "an array",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "null": "null",
}
_EXTRAS = re.compile(r"^(.*?) (?:was|were) unexpected\)?$")
_SHOWN = 60  # characters of a value quoted in a message


@dataclass(frozen=True)
class Finding:
    """One problem at ``parts`` (a path that exists in the document), worded for the spec's author."""

    parts: tuple[Any, ...]
    message: str
    keyword: str  # the JSON-Schema keyword that failed ("type", "required", ...)


def type_name(value: Any) -> str:
    """The JSON type of a Python value as an article and a noun: ``an integer``, ``a string``, ``null``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def shown(value: Any) -> str:
    """A value as the author wrote it (JSON), cut short: ``0``, ``false``, ``"abc"``."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except ValueError:
        text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def found(value: Any) -> str:
    """``an integer (0)``, ``a string ("x")``, ``an object``: what was found, for a wrong-type message."""
    kind = type_name(value)
    if isinstance(value, (dict, list)) or value is None:
        return kind
    return f"{kind} ({shown(value)})"


def expected_types(expected: Any) -> str:
    names = [expected] if isinstance(expected, str) else list(expected or [])
    words = [_TYPE_NAMES.get(str(name), repr(name)) for name in names]
    return " or ".join(words) if words else "another type"


def wrong_type(expected: Any, value: Any) -> str:
    """``expected a string, found an integer (0)``."""
    return f"expected {expected_types(expected)}, found {found(value)}"


def unexpected(name: str, allowed: Any) -> str:
    """``unexpected property 'schemaa': did you mean 'schema'?`` (the closest allowed name, when one is close)."""
    names = [str(a) for a in allowed or () if isinstance(a, str)]
    close = difflib.get_close_matches(str(name), names, n=1, cutoff=0.6)
    hint = f": did you mean {close[0]!r}?" if close else ""
    return f"unexpected property {name!r}{hint}"


# --------------------------------------------------------------------------- the meta-schema


class MetaSchema:
    """The OpenAPI meta-schema, to follow its local ``$ref``s when choosing a branch."""

    def __init__(self, root: Any) -> None:
        self.root = root

    def resolve(self, schema: Any, depth: int = 0) -> Any:
        while isinstance(schema, dict) and isinstance(schema.get("$ref"), str) and depth < 20:
            ref = schema["$ref"]
            if not ref.startswith("#/"):
                return schema
            node = self.root
            for token in ref[2:].split("/"):
                token = token.replace("~1", "/").replace("~0", "~")
                node = node.get(token) if isinstance(node, dict) else None
            if node is None:
                return schema
            schema, depth = node, depth + 1
        return schema

    def shape(self, schema: Any, depth: int = 0) -> tuple[set[str], set[str], dict[str, list[Any]]]:
        """(property names, required names, allowed values of constrained properties) of a branch,
        through its ``$ref``, ``allOf`` and the ``$ref`` next to other keywords (3.1)."""
        properties: set[str] = set()
        required: set[str] = set()
        values: dict[str, list[Any]] = {}
        if depth > 6:
            return properties, required, values
        schema = self.resolve(schema)
        if not isinstance(schema, dict):
            return properties, required, values
        props = schema.get("properties")
        if isinstance(props, dict):
            properties |= set(props)
            for name, sub in props.items():
                sub = self.resolve(sub)
                if isinstance(sub, dict):
                    if isinstance(sub.get("enum"), list):
                        values[name] = list(sub["enum"])
                    elif "const" in sub:
                        values[name] = [sub["const"]]
        if isinstance(schema.get("required"), list):
            required |= {str(r) for r in schema["required"]}
        inner = list(schema.get("allOf") or [])
        if isinstance(schema.get("$ref"), str):
            inner.append({"$ref": schema["$ref"]})
        for sub in inner:
            p, r, v = self.shape(sub, depth + 1)
            properties |= p
            required |= r
            for name, allowed in v.items():
                values.setdefault(name, allowed)
        return properties, required, values


def _branch_score(instance: Any, shape: tuple[set[str], set[str], dict[str, list[Any]]], errors: int) -> tuple:
    properties, required, values = shape
    if not isinstance(instance, dict):
        return (0, 0, 0, -errors)
    keys = set(instance)
    # A key whose value the branch rules out ('in: query' against the path branch) decides first.
    contradicted = sum(1 for name, allowed in values.items() if name in instance and instance[name] not in allowed)
    missing = len(required - keys)
    known = len(keys & properties)
    return (-contradicted, known - missing, -missing, -errors)


# --------------------------------------------------------------------------- explaining


def explain(error: Any, meta: MetaSchema) -> list[Finding]:
    """The findings of one top-level ``jsonschema`` error, without repeats, in document order."""
    return list(dict.fromkeys(_explain(error, meta, 0)))


def _explain(error: Any, meta: MetaSchema, depth: int) -> Iterator[Finding]:
    if error.validator in ("oneOf", "anyOf") and error.context and depth < 12:
        branch = _chosen_branch(error, meta)
        if branch is not None:
            for sub in branch:
                yield from _explain(sub, meta, depth + 1)
            return
    yield from _leaf(error)


def _chosen_branch(error: Any, meta: MetaSchema) -> list[Any] | None:
    """The errors of the branch the node was meant to be (the errors are about the node or inside it)."""
    groups: dict[int, list[Any]] = {}
    for sub in error.context:
        index = sub.relative_schema_path[0] if sub.relative_schema_path else 0
        groups.setdefault(int(index), []).append(sub)
    branches = error.schema.get(error.validator) if isinstance(error.schema, dict) else None
    if not isinstance(branches, list) or not groups:
        return None
    if len(groups) < len(branches):
        return None  # some branch matched: a oneOf that matched several is the library's message
    best = max(
        groups,
        key=lambda index: _branch_score(error.instance, meta.shape(branches[index]), _weight(groups[index])),
    )
    return _narrowest(groups[best])


def _weight(errors: list[Any]) -> int:
    return sum(1 + _weight(list(e.context or ())) // 4 for e in errors)


def _narrowest(errors: list[Any]) -> list[Any]:
    """Within one branch: the errors deepest in the document say more; a ``required`` on the node and an
    unexpected property are both kept (they are the two halves of a misspelling)."""
    deepest = max(len(e.absolute_path) for e in errors)
    keep = [e for e in errors if len(e.absolute_path) == deepest]
    keep += [e for e in errors if len(e.absolute_path) < deepest and e.validator in _STRUCTURAL]
    return keep


_STRUCTURAL = frozenset({"required", "additionalProperties", "unevaluatedProperties"})


def _leaf(error: Any) -> Iterator[Finding]:
    parts = tuple(error.absolute_path)
    instance, schema, keyword = error.instance, error.schema, error.validator
    if keyword in ("additionalProperties", "unevaluatedProperties") and isinstance(instance, dict):
        allowed = _allowed_names(schema)
        for name in _extras(error, schema):
            if name in instance:
                yield Finding((*parts, name), unexpected(name, allowed), keyword)
        return
    if keyword == "required":
        missing = error.message.split(" is a required property")[0]
        try:
            name = ast.literal_eval(missing)
        except (ValueError, SyntaxError):
            name = missing
        hint = " (a path parameter must say 'required: true')" if name == "required" and _is_path(instance) else ""
        yield Finding(parts, f"missing required field {name!r}{hint}", keyword)
        return
    if keyword == "type":
        yield Finding(parts, wrong_type(error.validator_value, instance), keyword)
        return
    if keyword in ("enum", "const"):
        allowed = error.validator_value if keyword == "enum" else [error.validator_value]
        choices = ", ".join(shown(a) for a in list(allowed)[:12])
        close = ""
        if isinstance(instance, str):
            near = difflib.get_close_matches(instance, [a for a in allowed if isinstance(a, str)], n=1, cutoff=0.6)
            close = f": did you mean {shown(near[0])}?" if near else ""
        if len(allowed) == 1:
            yield Finding(parts, f"expected {choices}, found {shown(instance)}{close}", keyword)
        else:
            yield Finding(parts, f"expected one of {choices}; found {shown(instance)}{close}", keyword)
        return
    if keyword == "format":
        yield Finding(parts, f"not a valid {error.validator_value}: {shown(instance)}", keyword)
        return
    if keyword == "not" and isinstance(error.validator_value, dict) and "required" in error.validator_value:
        names = " and ".join(repr(n) for n in error.validator_value["required"])
        yield Finding(parts, f"{names} cannot be used together", keyword)
        return
    if keyword == "uniqueItems":
        yield Finding(parts, "the items must be unique: " + _repeats(instance), keyword)
        return
    if keyword in ("oneOf", "anyOf"):
        yield Finding(parts, _short(error, f"does not match any of the forms allowed here ({keyword})"), keyword)
        return
    yield Finding(parts, issue_message(_without_instance(error)), str(keyword))


def _is_path(instance: Any) -> bool:
    return isinstance(instance, dict) and instance.get("in") == "path"


def _repeats(instance: Any) -> str:
    if not isinstance(instance, list):
        return shown(instance)
    seen: list[Any] = []
    repeated: list[Any] = []
    for item in instance:
        if item in seen and item not in repeated:
            repeated.append(item)
        seen.append(item)
    return ", ".join(shown(r) for r in repeated) + (" is repeated" if len(repeated) == 1 else " are repeated")


def _short(error: Any, text: str) -> str:
    if error.validator == "oneOf" and not error.context:
        return "matches more than one of the forms allowed here (oneOf): it must match exactly one"
    return text


def _without_instance(error: Any) -> str:
    """The library's message, with the (possibly huge) instance it starts with replaced by a short form."""
    message = str(error.message)
    head = repr(error.instance)
    if message.startswith(head):
        return shown(error.instance) + message[len(head) :]
    return message


def _allowed_names(schema: Any) -> list[str]:
    names = list(schema.get("properties") or ()) if isinstance(schema, dict) else []
    return names


def _extras(error: Any, schema: Any) -> list[str]:
    """The unexpected property names: from the schema when it says what is allowed, else from the message."""
    instance = error.instance
    if error.validator == "additionalProperties" and isinstance(schema, dict):
        properties = schema.get("properties") or {}
        patterns = [re.compile(p) for p in (schema.get("patternProperties") or {})]
        return [k for k in instance if k not in properties and not any(p.search(str(k)) for p in patterns)]
    match = _EXTRAS.search(str(error.message).split("(", 1)[-1])
    if match:
        try:
            names = ast.literal_eval(f"[{match.group(1)}]")
            return [str(n) for n in names]
        except (ValueError, SyntaxError):
            pass
    return []
