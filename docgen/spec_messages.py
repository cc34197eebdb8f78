"""JSON-Schema errors about a Swagger/OpenAPI document, said in a spec author's words, at the node they are about.

``explain`` turns one ``jsonschema`` error of the OpenAPI meta-schema into findings ``(parts, message)``
whose ``parts`` are the path of a node that exists in the document (an unexpected property is named by
its own key, with the closest allowed name or the reason it is not allowed: a field of the other major
version, a path without '/'). For a ``oneOf``/``anyOf`` it picks the branch the node was meant to be: by the
kind the node names (``in: query``, ``type: oauth2``; when it names none of the branches' kinds, the message
lists them all), then by the keys the node has (a parameter with ``in:`` and ``name:`` is a Parameter, never a
Reference), and explains that branch's errors instead of "is not valid under any of the given schemas" or
"'$ref' is a required property".
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


def unexpected(name: str, allowed: Any, why: str = "") -> str:
    """``unexpected property 'schemaa': did you mean 'schema'?`` (the closest allowed name, when one is close;
    else ``why``, when there is one: ``unexpected property 'pets' (a path starts with '/')``)."""
    names = [str(a) for a in allowed or () if isinstance(a, str)]
    close = difflib.get_close_matches(str(name), names, n=1, cutoff=0.6)
    close = close or [a for a in names if a.lower() == str(name).lower()]
    if close:
        return f"unexpected property {name!r}: did you mean {close[0]!r}?"
    return f"unexpected property {name!r}" + (f" ({why})" if why else "")


def not_one_of(allowed: list[Any], value: Any) -> str:
    """``expected one of "path", "query"; found "paht": did you mean "path"?`` (``expected "path", ...`` for one)."""
    choices = ", ".join(shown(a) for a in list(allowed)[:12])
    close = ""
    if isinstance(value, str):
        near = difflib.get_close_matches(value, [a for a in allowed if isinstance(a, str)], n=1, cutoff=0.6)
        near = near or [a for a in allowed if isinstance(a, str) and a.lower() == value.lower()]
        close = f": did you mean {shown(near[0])}?" if near else ""
    if len(allowed) == 1:
        return f"expected {choices}, found {shown(value)}{close}"
    return f"expected one of {choices}; found {shown(value)}{close}"


# Why a name is not allowed where it is, by the patterns of the names that are (the keys of Paths, Responses...).
_CODES_3 = "a response is keyed by an HTTP status code such as 200, a range such as 2XX or 'default'"
_PATTERN_WORDS = {
    "^/": "a path starts with '/'",
    "^\\/": "a path starts with '/'",
    "^([0-9]{3})$|^(default)$": "a response is keyed by a three-digit HTTP status code or 'default'",
    "^[1-5](?:\\d{2}|XX)$": _CODES_3,
    "^[1-5](?:[0-9]{2}|XX)$": _CODES_3,
    "^(get|put|post|delete|options|head|patch|trace)$": "an operation is keyed by a lower-case HTTP method",
}
_METHOD_NAMES = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# A field of the other major version, met where it is not allowed: (a field the object has, so that the hint is
# about this object, or None for any object of the version; what the version has instead).
_SWAGGER_INSTEAD = {
    "requestBody": (
        "consumes",
        "an OpenAPI 3 field: Swagger 2.0 describes a request body with an 'in: body' parameter",
    ),
    "components": (
        "swagger",
        "an OpenAPI 3 field: Swagger 2.0 has 'definitions', 'parameters', 'responses' and 'securityDefinitions'",
    ),
    "servers": ("swagger", "an OpenAPI 3 field: Swagger 2.0 has 'host', 'basePath' and 'schemes'"),
    "content": (
        "examples",
        "an OpenAPI 3 field: a Swagger 2.0 response has a 'schema' and lists media types in 'produces'",
    ),
    "nullable": (
        None,
        "an OpenAPI 3.0 keyword: Swagger 2.0 has none; the extension 'x-nullable: true' is the usual one",
    ),
    "example": (
        "collectionFormat",
        "Swagger 2.0 has 'example' in a Schema Object only; the extension 'x-example' is the usual one here",
    ),
}
_SWAGGER_INSTEAD.update(
    {
        name: ("schema", "a body parameter or a response describes its value in 'schema'")
        for name in ("type", "format", "items", "enum", "default", "properties", "$ref")
    }
)
_OPENAPI_INSTEAD = {
    "definitions": ("openapi", "a Swagger 2.0 field: OpenAPI 3 keeps schemas in 'components/schemas'"),
    "securityDefinitions": ("openapi", "a Swagger 2.0 field: OpenAPI 3 has 'components/securitySchemes'"),
    "host": ("openapi", "a Swagger 2.0 field: OpenAPI 3 has 'servers'"),
    "basePath": ("openapi", "a Swagger 2.0 field: OpenAPI 3 has 'servers'"),
    "schemes": ("openapi", "a Swagger 2.0 field: OpenAPI 3 has 'servers'"),
    "produces": (None, "a Swagger 2.0 field: OpenAPI 3 names the media types as the keys of 'content'"),
    "consumes": (None, "a Swagger 2.0 field: OpenAPI 3 names the media types as the keys of 'content'"),
    "schema": ("content", "a Swagger 2.0 field: an OpenAPI 3 response has its schema in 'content', by media type"),
}
_OPENAPI_INSTEAD.update(
    {
        name: ("style", "a Swagger 2.0 field: an OpenAPI 3 parameter or header describes its value in 'schema'")
        for name in ("type", "format", "items", "collectionFormat", "enum", "default", "minimum", "maximum", "pattern")
    }
)


def why_unexpected(name: str, schema: Any, allowed: list[str], family: str | None) -> tuple[str, bool]:
    """Why ``name`` is not allowed in the object ``schema`` describes (``allowed``: its fixed field names), or '';
    and whether that reason is surer than the closest allowed name (a field of the other version is: 'type' in a
    3.x parameter is Swagger 2.0's, not a misspelled 'style')."""
    hints = _SWAGGER_INSTEAD if family == "2.0" else _OPENAPI_INSTEAD if family in ("3.0", "3.1") else {}
    if name in hints:
        where, words = hints[name]
        if where is None or where in allowed:
            return words, True
    patterns = list(schema.get("patternProperties") or ()) if isinstance(schema, dict) else []
    for pattern in patterns:
        words = _PATTERN_WORDS.get(pattern)
        if words and not re.search(pattern, str(name)):
            return words, False
    return "", False


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

    @property
    def family(self) -> str | None:
        """``"2.0"``, ``"3.0"`` or ``"3.1"`` for the JSON Schema of an OpenAPI document; ``None`` for a schema
        dialect's meta-schema (the Schema Object checks of 3.x)."""
        root = self.root if isinstance(self.root, dict) else {}
        if "Swagger 2.0" in str(root.get("title", "")):
            return "2.0"
        name = str(root.get("id") or root.get("$id") or "")
        for family in ("3.0", "3.1"):
            if f"/oas/{family}/schema/" in name:
                return family
        return None

    def shape(self, schema: Any, depth: int = 0, union: bool = True) -> Shape:
        """The keys a branch knows, requires and fixes, through its ``$ref``, ``allOf`` and the ``$ref`` next to
        other keywords (3.1); with ``union``, also what its own ``oneOf``/``anyOf`` branches know (a 2.0
        non-body parameter is one of four kinds: it knows the keys of all four, and ``in`` names one of them)."""
        shape = Shape(set(), set(), {}, {})
        if depth > 6:
            return shape
        schema = self.resolve(schema)
        if not isinstance(schema, dict):
            return shape
        props = schema.get("properties")
        if isinstance(props, dict):
            shape.properties |= set(props)
            for name, sub in props.items():
                sub = self.resolve(sub)
                if not isinstance(sub, dict):
                    continue
                allowed = list(sub["enum"]) if isinstance(sub.get("enum"), list) else None
                if allowed is None and "const" in sub:
                    allowed = [sub["const"]]
                if allowed is None:
                    continue
                if len(allowed) == 1 and isinstance(allowed[0], str):
                    shape.tags[name] = allowed  # 'in: path', 'type: oauth2': the kind of object
                else:
                    shape.values[name] = allowed
        if isinstance(schema.get("required"), list):
            shape.required |= {str(r) for r in schema["required"]}
        inner = list(schema.get("allOf") or [])
        if isinstance(schema.get("$ref"), str):
            inner.append({"$ref": schema["$ref"]})
        for sub in inner:
            shape.merge(self.shape(sub, depth + 1, union))
        branches = schema.get("oneOf") or schema.get("anyOf")
        if union and isinstance(branches, list) and branches:
            shapes = [self.shape(branch, depth + 1, union=False) for branch in branches]
            for other in shapes:
                shape.properties |= other.properties
            shape.required |= set.intersection(*(other.required for other in shapes))
            for key in set.intersection(*(set(other.tags) for other in shapes)):
                if key not in shape.tags:
                    shape.tags[key] = list(dict.fromkeys(v for other in shapes for v in other.tags[key]))
        return shape


@dataclass
class Shape:
    """What a branch of a ``oneOf``/``anyOf`` knows about the node it describes."""

    properties: set[str]
    required: set[str]
    tags: dict[str, list[Any]]  # keys whose value names the kind of object: 'in: path', 'type: oauth2'
    values: dict[str, list[Any]]  # other keys with a fixed set of values: 'required: true', 'collectionFormat'

    def merge(self, other: Shape) -> None:
        self.properties |= other.properties
        self.required |= other.required
        for name, allowed in other.tags.items():
            self.tags.setdefault(name, allowed)
        for name, allowed in other.values.items():
            self.values.setdefault(name, allowed)


def _branch_score(instance: Any, shape: Shape, tags: set[str], errors: int) -> tuple[int, ...]:
    if not isinstance(instance, dict):
        return (0, 0, 0, 0, -errors)
    keys = set(instance)
    # A tag every branch has ('in' of the parameter kinds) that the node's value rules out decides first; a
    # branch without that key (a Reference) is not ruled out by it.
    wrong_tag = sum(1 for name in tags if name in instance and instance[name] not in shape.tags[name])
    other = {**shape.values, **{name: allowed for name, allowed in shape.tags.items() if name not in tags}}
    wrong_value = sum(1 for name, allowed in other.items() if name in instance and instance[name] not in allowed)
    missing = len(shape.required - keys)
    known = len(keys & shape.properties)
    return (-wrong_tag, known - missing, -missing, -wrong_value, -errors)


# --------------------------------------------------------------------------- explaining


def explain(error: Any, meta: MetaSchema) -> list[Finding]:
    """The findings of one top-level ``jsonschema`` error, without repeats, in document order."""
    return list(dict.fromkeys(_explain(error, meta, 0)))


def _explain(error: Any, meta: MetaSchema, depth: int) -> Iterator[Finding]:
    if error.validator in ("oneOf", "anyOf") and error.context and depth < 12:
        branch = _chosen_branch(error, meta)
        if isinstance(branch, Finding):
            yield branch
            return
        if branch is not None:
            for sub in branch:
                yield from _explain(sub, meta, depth + 1)
            return
    yield from _leaf(error, meta)


def _chosen_branch(error: Any, meta: MetaSchema) -> list[Any] | Finding | None:
    """The errors of the branch the node was meant to be (the errors are about the node or inside it); or,
    when the node's kind ('in', 'type') is none of the branches', that one finding."""
    groups: dict[int, list[Any]] = {}
    for sub in error.context:
        index = sub.relative_schema_path[0] if sub.relative_schema_path else 0
        groups.setdefault(int(index), []).append(sub)
    branches = error.schema.get(error.validator) if isinstance(error.schema, dict) else None
    if not isinstance(branches, list) or not groups:
        return None
    if len(groups) < len(branches):
        return None  # some branch matched: a oneOf that matched several is the library's message
    shapes = {index: meta.shape(branches[index]) for index in groups}
    tags = set.intersection(*(set(shape.tags) for shape in shapes.values()))
    instance = error.instance
    if isinstance(instance, dict):
        for name in sorted(tags):
            if name in instance and all(instance[name] not in shape.tags[name] for shape in shapes.values()):
                allowed = list(dict.fromkeys(v for index in sorted(shapes) for v in shapes[index].tags[name]))
                return Finding((*error.absolute_path, name), not_one_of(allowed, instance[name]), "enum")
    best = max(groups, key=lambda index: _branch_score(instance, shapes[index], tags, _weight(groups[index])))
    return _narrowest(groups[best])


def _weight(errors: list[Any]) -> int:
    return sum(1 + _weight(list(e.context or ())) // 4 for e in errors)


def _narrowest(errors: list[Any]) -> list[Any]:
    """Within one branch: the errors deepest in the document say more; a ``required`` on the node and an
    unexpected property are both kept (they are the two halves of a misspelling). A ``oneOf`` the node matched
    more than once because a required key is missing ('in' of a 3.0 parameter) only echoes that key."""
    deepest = max(len(e.absolute_path) for e in errors)
    keep = [e for e in errors if len(e.absolute_path) == deepest]
    keep += [e for e in errors if len(e.absolute_path) < deepest and e.validator in _STRUCTURAL]
    wanting = {tuple(e.absolute_path) for e in keep if e.validator == "required"}
    mistyped = {tuple(e.absolute_path) for e in keep if e.validator == "type"}
    return [
        e
        for e in keep
        if not (_matched_several(e) and tuple(e.absolute_path) in wanting)
        and not (e.validator in _ECHOES_OF_TYPE and tuple(e.absolute_path) in mistyped)
    ]


_ECHOES_OF_TYPE = frozenset({"enum", "const", "format", "pattern"})


def _matched_several(error: Any) -> bool:
    return bool(error.validator == "oneOf" and not error.context)


_STRUCTURAL = frozenset({"required", "additionalProperties", "unevaluatedProperties"})


def _leaf(error: Any, meta: MetaSchema) -> Iterator[Finding]:
    parts = tuple(error.absolute_path)
    instance, schema, keyword = error.instance, error.schema, error.validator
    if keyword in ("additionalProperties", "unevaluatedProperties") and isinstance(instance, dict):
        allowed = _allowed_names(schema)
        for name in _extras(error, schema):
            if name in instance:
                why, sure = why_unexpected(name, schema, allowed, meta.family)
                if sure:
                    message = f"unexpected property {name!r} ({why})"
                else:
                    message = unexpected(name, allowed + _pattern_names(schema), why)
                yield Finding((*parts, name), message, keyword)
        return
    if keyword == "required":
        missing = error.message.split(" is a required property")[0]
        try:
            name = ast.literal_eval(missing)
        except (ValueError, SyntaxError):
            name = missing
        hint = ""
        if name == "required" and _is_path(instance):
            hint = " (a path parameter must say 'required: true')"
        elif name == "scopes":
            hint = " (an oauth2 flow lists its scopes; 'scopes: {}' for none)"
        yield Finding(parts, f"missing required field {name!r}{hint}", keyword)
        return
    if keyword == "type":
        yield Finding(parts, wrong_type(error.validator_value, instance) + _type_hint(parts, instance, meta), keyword)
        return
    if keyword in ("enum", "const"):
        allowed = list(error.validator_value) if keyword == "enum" else [error.validator_value]
        hint = ""
        if meta.family == "2.0" and parts and parts[-1] == "type" and instance == "file" and "file" not in allowed:
            hint = " ('file' is a type only for a formData parameter and at the root of a response's schema)"
        elif meta.family == "2.0" and parts and parts[-1] == "type" and instance == "object" and "array" in allowed:
            hint = " (only a Schema Object, such as a body parameter's schema, can be an object)"
        yield Finding(parts, not_one_of(allowed, instance) + hint, keyword)
        return
    if keyword == "pattern" and parts == ("openapi",) and meta.family in ("3.0", "3.1"):
        example = {"3.0": "3.0.3", "3.1": "3.1.0"}[meta.family]
        message = f"expected a version of the form {meta.family}.x such as {shown(example)}, found {shown(instance)}"
        yield Finding(parts, message, keyword)
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


def _type_hint(parts: tuple[Any, ...], instance: Any, meta: MetaSchema) -> str:
    """What the author of a value of the wrong type most likely meant, for two common slips."""
    if len(parts) >= 3 and parts[-1] == "required" and parts[-3] == "properties" and isinstance(instance, bool):
        return f" (an object lists its required properties by name: 'required: [{parts[-2]}]' next to 'properties')"
    if meta.family == "3.0" and parts and parts[-1] == "type" and isinstance(instance, list):
        if "null" in instance:
            return " (an OpenAPI 3.0 'type' is one name; for null, add 'nullable: true')"
        return " (an OpenAPI 3.0 'type' is one name; for several, use 'oneOf')"
    return ""


def _pattern_names(schema: Any) -> list[str]:
    """Names a pattern of ``schema`` spells out (the HTTP methods of a 3.x Path Item), for 'did you mean'."""
    patterns = schema.get("patternProperties") or () if isinstance(schema, dict) else ()
    return list(_METHOD_NAMES) if any("get|put|post" in str(p) for p in patterns) else []


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
