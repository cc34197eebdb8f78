"""The checks of a spec that its JSON Schema cannot make, each with the verdict its specification gives.

A walk over every Schema Object, Parameter, Header and Security Scheme of a Swagger 2.0 / OpenAPI 3.0 /
3.1 document, that knows where each node is (so every finding has a path that exists in the document):
defaults against their schema, the Schema Objects against the version's schema dialect (3.x), Discriminator
fields, oauth2 scopes (2.0), the ``items`` of arrays (2.0 simple values, 3.0 schemas), the schemes Security
Requirements name, paths that differ only in template names (3.x), ``nullable`` in 3.1, duplicated parameters,
tags and enum values.

The verdicts follow the specifications (see ``docgen/SPEC-DIFFERENCES.md``): what a version says MUST is
an error, what it says SHOULD or only recommends is a warning. ``openapi-spec-validator`` makes all of
them errors, and checks a 2.0 Schema Object against the 3.0 dialect (so ``type: file`` fails there).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from autocore.issues import SEVERITY_ERROR, SEVERITY_WARNING
from docgen.spec_dialect import DialectChecker, dialect_checker
from docgen.spec_messages import Finding, MetaSchema, expected_types, explain, found, shown, unexpected

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# Keys whose values are data, never Schema Objects (and never searched for one).
_DATA = frozenset({"default", "example", "examples", "enum", "const", "x-example", "x-examples"})
_SUBSCHEMA = ("additionalProperties", "items", "not", "if", "then", "else", "contains", "propertyNames")
_SUBSCHEMA += ("unevaluatedItems", "unevaluatedProperties", "additionalItems", "contentSchema")
_SUBSCHEMA_MAPS = ("properties", "patternProperties", "definitions", "$defs", "dependentSchemas")
_SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems", "items")
# The keys of a 2.0 Parameter, Items or Header Object that constrain its value (what its default must meet).
_SIMPLE_KEYS = (
    *("type", "format", "items", "enum", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum"),
    *("maxLength", "minLength", "pattern", "maxItems", "minItems", "uniqueItems", "multipleOf"),
)
_DISCRIMINATOR_FIELDS = ("propertyName", "mapping")


@dataclass(frozen=True)
class Verdict:
    """One finding of the walk with its rule and severity."""

    parts: tuple[Any, ...]
    message: str
    rule: str
    severity: str = SEVERITY_ERROR


def spec_family(document: dict[str, Any]) -> str | None:
    """``"2.0"``, ``"3.0"`` or ``"3.1"`` (3.2 is walked as 3.1); ``None`` for anything else."""
    if str(document.get("swagger")) == "2.0":
        return "2.0"
    version = str(document.get("openapi", ""))
    if version.startswith("3.0"):
        return "3.0"
    if version.startswith(("3.1", "3.2")):
        return "3.1"
    return None


# --------------------------------------------------------------------------- where things are


def _local(document: Any, node: Any) -> Any:
    """``node`` with a local ``$ref`` followed (through chains); ``None`` when it does not resolve."""
    seen = 0
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and seen < 20:
        ref = node["$ref"]
        if not ref.startswith("#"):
            return None
        node = pointer(document, ref[1:])
        seen += 1
    return node


def pointer(document: Any, fragment: str) -> Any:
    from urllib.parse import unquote

    node = document
    for token in unquote(fragment).split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return None
    return node


def to_pointer(parts: tuple[Any, ...]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _items(node: Any) -> Iterator[tuple[Any, Any]]:
    return iter(node.items()) if isinstance(node, dict) else iter(())


def _path_items(document: dict[str, Any], family: str) -> Iterator[tuple[tuple[Any, ...], dict[str, Any]]]:
    sections = ["paths"] + (["webhooks"] if family == "3.1" else [])
    for section in sections:
        for url, item in _items(document.get(section)):
            if isinstance(item, dict):
                yield (section, url), item
    if family == "3.1":
        for name, item in _items((document.get("components") or {}).get("pathItems")):
            if isinstance(item, dict):
                yield ("components", "pathItems", name), item


def _operations(item_parts: tuple[Any, ...], item: dict[str, Any]) -> Iterator[tuple[tuple[Any, ...], dict[str, Any]]]:
    for method in METHODS:
        if isinstance(item.get(method), dict):
            yield (*item_parts, method), item[method]


def parameter_lists(document: dict[str, Any], family: str) -> Iterator[tuple[tuple[Any, ...], list[Any]]]:
    """Every ``parameters`` list of a path item or operation, with its parts."""
    for item_parts, item in _path_items(document, family):
        if isinstance(item.get("parameters"), list):
            yield (*item_parts, "parameters"), item["parameters"]
        for op_parts, operation in _operations(item_parts, item):
            if isinstance(operation.get("parameters"), list):
                yield (*op_parts, "parameters"), operation["parameters"]


def _media_schemas(parts: tuple[Any, ...], holder: Any) -> Iterator[tuple[Any, ...]]:
    """The schemas of a 3.x object with ``schema`` and/or ``content`` (Parameter, Header, Media Type holder)."""
    if not isinstance(holder, dict) or "$ref" in holder:
        return
    if isinstance(holder.get("schema"), dict):
        yield (*parts, "schema")
    for media, entry in _items(holder.get("content")):
        if isinstance(entry, dict) and isinstance(entry.get("schema"), (dict, bool)):
            yield (*parts, "content", media, "schema")


def _response_schemas(parts: tuple[Any, ...], response: Any, family: str) -> Iterator[tuple[Any, ...]]:
    if not isinstance(response, dict) or "$ref" in response:
        return
    if family == "2.0":
        if isinstance(response.get("schema"), dict):
            yield (*parts, "schema")
        return
    yield from _media_schemas(parts, response)
    for name, header in _items(response.get("headers")):
        yield from _media_schemas((*parts, "headers", name), header)


def root_schemas(document: dict[str, Any], family: str) -> Iterator[tuple[tuple[Any, ...], bool]]:
    """``(parts, response_root)`` of every Schema Object written where a schema is expected (not the ones
    nested in another schema); ``response_root`` marks a 2.0 response's schema (where ``type: file`` is allowed)."""
    if family == "2.0":
        for name, schema in _items(document.get("definitions")):
            if isinstance(schema, dict):
                yield ("definitions", name), False
        for name, param in _items(document.get("parameters")):
            if isinstance(param, dict) and isinstance(param.get("schema"), dict):
                yield ("parameters", name, "schema"), False
        for name, response in _items(document.get("responses")):
            for parts in _response_schemas(("responses", name), response, family):
                yield parts, True
    else:
        components = document.get("components") if isinstance(document.get("components"), dict) else {}
        for name, schema in _items(components.get("schemas")):
            if isinstance(schema, (dict, bool)):
                yield ("components", "schemas", name), False
        for kind in ("parameters", "headers"):
            for name, holder in _items(components.get(kind)):
                for parts in _media_schemas(("components", kind, name), holder):
                    yield parts, False
        for name, body in _items(components.get("requestBodies")):
            for parts in _media_schemas(("components", "requestBodies", name), body):
                yield parts, False
        for name, response in _items(components.get("responses")):
            for parts in _response_schemas(("components", "responses", name), response, family):
                yield parts, False
    for item_parts, item in _path_items(document, family):
        yield from ((p, False) for p in _operation_schemas(item_parts, item, family))
        for op_parts, operation in _operations(item_parts, item):
            yield from ((p, False) for p in _operation_schemas(op_parts, operation, family))
            for code, response in _items(operation.get("responses")):
                for parts in _response_schemas((*op_parts, "responses", code), response, family):
                    yield parts, family == "2.0"
            if family != "2.0":
                for parts in _media_schemas((*op_parts, "requestBody"), operation.get("requestBody")):
                    yield parts, False


def _operation_schemas(parts: tuple[Any, ...], holder: dict[str, Any], family: str) -> Iterator[tuple[Any, ...]]:
    """The schemas of the parameters written inline in a path item or operation."""
    params = holder.get("parameters")
    for index, param in enumerate(params if isinstance(params, list) else []):
        if not isinstance(param, dict):
            continue
        if family == "2.0":
            if isinstance(param.get("schema"), dict):
                yield (*parts, "parameters", index, "schema")
        else:
            yield from _media_schemas((*parts, "parameters", index), param)


def subschemas(parts: tuple[Any, ...], schema: Any) -> Iterator[tuple[tuple[Any, ...], dict[str, Any]]]:
    """``schema`` and every Schema Object nested in it (not through ``$ref``), with their parts."""
    todo: list[tuple[tuple[Any, ...], Any]] = [(parts, schema)]
    while todo:
        where, node = todo.pop()
        if not isinstance(node, dict):
            continue
        yield where, node
        nested: list[tuple[tuple[Any, ...], Any]] = []
        for key in _SUBSCHEMA:
            if isinstance(node.get(key), dict):
                nested.append(((*where, key), node[key]))
        for key in _SUBSCHEMA_MAPS:
            for name, sub in _items(node.get(key)):
                nested.append(((*where, key, name), sub))
        for key in _SUBSCHEMA_LISTS:
            if isinstance(node.get(key), list):
                nested += [((*where, key, index), sub) for index, sub in enumerate(node[key])]
        todo += reversed(nested)


def simple_values(document: dict[str, Any]) -> Iterator[tuple[tuple[Any, ...], dict[str, Any]]]:
    """Every 2.0 non-body Parameter, response Header and their Items written in the document."""

    def with_items(parts: tuple[Any, ...], node: Any) -> Iterator[tuple[tuple[Any, ...], dict[str, Any]]]:
        while isinstance(node, dict):
            yield parts, node
            parts, node = (*parts, "items"), node.get("items")

    def headers(parts: tuple[Any, ...], response: Any) -> Iterator[tuple[tuple[Any, ...], dict[str, Any]]]:
        if isinstance(response, dict):
            for name, header in _items(response.get("headers")):
                yield from with_items((*parts, "headers", name), header)

    def params(parts: tuple[Any, ...], listing: Any) -> Iterator[tuple[tuple[Any, ...], dict[str, Any]]]:
        for index, param in enumerate(listing if isinstance(listing, list) else []):
            if isinstance(param, dict) and "$ref" not in param and param.get("in") != "body":
                yield from with_items((*parts, index), param)

    for name, param in _items(document.get("parameters")):
        if isinstance(param, dict) and param.get("in") != "body":
            yield from with_items(("parameters", name), param)
    for name, response in _items(document.get("responses")):
        yield from headers(("responses", name), response)
    for item_parts, item in _path_items(document, "2.0"):
        yield from params((*item_parts, "parameters"), item.get("parameters"))
        for op_parts, operation in _operations(item_parts, item):
            yield from params((*op_parts, "parameters"), operation.get("parameters"))
            for code, response in _items(operation.get("responses")):
                yield from headers((*op_parts, "responses", code), response)


# --------------------------------------------------------------------------- the walk


class Walk:
    """The checks of one document (``clean``: without the ``$ref``s that do not resolve)."""

    def __init__(self, clean: dict[str, Any], family: str) -> None:
        self.document = clean
        self.family = family
        self.verdicts: list[Verdict] = []
        self._registry: Any = None

    def run(self) -> list[Verdict]:
        roots = list(root_schemas(self.document, self.family))
        seen: set[int] = set()
        checker = self._dialect_checker() if self.family != "2.0" else None
        for parts, response_root in roots:
            schema = pointer(self.document, to_pointer(parts))
            if id(schema) in seen:
                continue
            seen.add(id(schema))
            if checker is not None:
                self._meta(checker, parts, schema)
            for where, node in subschemas(parts, schema):
                self._schema(where, node, top=where == parts and response_root)
        if self.family == "2.0":
            for parts, node in simple_values(self.document):
                self._simple(parts, node)
            self._oauth2_scopes()
        else:
            self._identical_paths()
        self._security_requirements()
        self._duplicate_parameters()
        self._duplicate_tags()
        return list(dict.fromkeys(self.verdicts))

    def add(self, parts: tuple[Any, ...], message: str, rule: str = "schema", severity: str = SEVERITY_ERROR) -> None:
        self.verdicts.append(Verdict(tuple(parts), message, rule, severity))

    # ---------------------------------------------------------------- Schema Objects

    def _dialect_checker(self) -> DialectChecker | None:
        """The meta-schema check of a 3.x Schema Object: what ``check_schema`` does, every error kept."""
        dialect = self.document.get("jsonSchemaDialect") if self.family == "3.1" else None
        checker = dialect_checker(self.family, dialect if isinstance(dialect, str) else None)
        if checker is not None:
            self._meta_schema = MetaSchema(checker.meta_schema)
        return checker

    def _meta(self, checker: DialectChecker, parts: tuple[Any, ...], schema: Any) -> None:
        if isinstance(schema, dict) and "$schema" in schema:
            return  # another dialect: not ours to judge
        try:
            errors = checker.errors(schema)
        except Exception:  # noqa: BLE001 - a schema the checker cannot walk (odd $ref) is not a verdict
            return
        for error in errors:
            for finding in explain(error, self._meta_schema):
                if self._enum_repeat(finding):
                    continue  # a warning of its own (_schema), not a failure of the dialect
                self.add((*parts, *finding.parts), finding.message)

    def _enum_repeat(self, finding: Finding) -> bool:
        return finding.keyword == "uniqueItems" and bool(finding.parts) and finding.parts[-1] == "enum"

    def _schema(self, parts: tuple[Any, ...], schema: dict[str, Any], top: bool) -> None:
        enum = schema.get("enum")
        if isinstance(enum, list):
            self._enum(parts, enum)
        if "discriminator" in schema and self.family == "3.0":  # 3.1: the dialect's meta-schema reports them
            self._discriminator((*parts, "discriminator"), schema["discriminator"])
        if "default" in schema and not (top and schema.get("type") == "file"):
            self._default(parts, schema)
        if isinstance(schema.get("allOf"), list) and isinstance(schema.get("required"), list):
            self._required_defined(parts, schema)
        if self.family == "3.0" and schema.get("type") == "array" and "items" not in schema:
            # 3.0.3 Schema Object: "items MUST be present if the type is array" (2.0 and 3.1: JSON Schema's rule).
            self.add(parts, "missing required field 'items' (an OpenAPI 3.0 schema of type 'array' MUST have items)")
        if self.family == "2.0" and isinstance(schema.get("discriminator"), str):
            self._discriminator_20(parts, schema)
        if self.family == "3.1" and "nullable" in schema:
            message = "'nullable' is not an OpenAPI 3.1 keyword and is ignored: add \"null\" to 'type' instead"
            self.add((*parts, "nullable"), message, "schema", SEVERITY_WARNING)

    def _enum(self, parts: tuple[Any, ...], enum: list[Any]) -> None:
        """Repeated enum values: JSON Schema draft 4 (Swagger 2.0) says the elements MUST be unique, the drafts
        of OpenAPI 3.0 (Wright 00) and 3.1 (2020-12) say SHOULD."""
        seen: list[Any] = []
        for index, value in enumerate(enum):
            if any(value == other and type(value) is type(other) for other in seen):
                if self.family == "2.0":
                    message = f"enum value {shown(value)} is listed more than once (the values MUST be unique)"
                    self.add((*parts, "enum", index), message, "duplicate-enum")
                else:
                    message = f"enum value {shown(value)} is listed more than once (the values SHOULD be unique)"
                    self.add((*parts, "enum", index), message, "duplicate-enum", SEVERITY_WARNING)
            seen.append(value)

    def _discriminator(self, parts: tuple[Any, ...], discriminator: Any) -> None:
        if not isinstance(discriminator, dict):
            return  # the JSON Schema reports a discriminator that is not an object
        for key in discriminator:
            if key in _DISCRIMINATOR_FIELDS:
                continue
            if not str(key).startswith("x-"):
                message = (
                    unexpected(str(key), _DISCRIMINATOR_FIELDS) + " (a Discriminator has only propertyName, mapping)"
                )
                self.add((*parts, key), message)
            elif self.family == "3.0":
                message = f"extension {key!r} in a Discriminator: OpenAPI 3.0 does not allow extensions here (3.1 does)"
                self.add((*parts, key), message, "schema", SEVERITY_WARNING)

    def _discriminator_20(self, parts: tuple[Any, ...], schema: dict[str, Any]) -> None:
        """Swagger 2.0: "The property name used MUST be defined at this schema and it MUST be in the required
        property list." (here or in the schemas of its allOf)."""
        name = schema["discriminator"]
        if name not in self._properties({"allOf": [schema]}, 0):
            message = f"discriminator {name!r} is not a property of this schema (it MUST be defined here and required)"
            self.add((*parts, "discriminator"), message)
        elif name not in self._required(schema, 0):
            message = f"discriminator {name!r} is not in this schema's 'required' list (the property MUST be required)"
            self.add((*parts, "discriminator"), message)

    def _required(self, schema: Any, depth: int) -> set[str]:
        schema = _local(self.document, schema)
        if not isinstance(schema, dict) or depth > 20:
            return set()
        names = {name for name in schema.get("required") or [] if isinstance(name, str)}
        for sub in schema.get("allOf") or []:
            names |= self._required(sub, depth + 1)
        return names

    def _required_defined(self, parts: tuple[Any, ...], schema: dict[str, Any]) -> None:
        defined = self._properties(schema, 0)
        for index, name in enumerate(schema["required"]):
            if isinstance(name, str) and name not in defined:
                message = f"required property {name!r} is not defined in 'properties' here or in the allOf schemas"
                self.add((*parts, "required", index), message, "schema", SEVERITY_WARNING)

    def _properties(self, schema: Any, depth: int) -> set[str]:
        schema = _local(self.document, schema)
        if not isinstance(schema, dict) or depth > 20:
            return set()
        names = {str(name) for name, _ in _items(schema.get("properties"))}
        for key in ("allOf", "anyOf", "oneOf"):
            for sub in schema.get(key) or []:
                names |= self._properties(sub, depth + 1)
        for key in ("items", "not"):
            if key in schema:
                names |= self._properties(schema[key], depth + 1)
        return names

    # ---------------------------------------------------------------- defaults

    def _validator(self, parts: tuple[Any, ...]) -> Any:
        """A validator of values against the Schema Object at ``parts``, its ``$ref``s resolved in the document."""
        from openapi_schema_validator import oas30_format_checker, oas31_format_checker
        from openapi_schema_validator.validators import OAS30Validator, OAS31Validator
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT4, DRAFT202012

        if self._registry is None:
            spec = DRAFT202012 if self.family == "3.1" else DRAFT4
            resource = Resource(contents=self.document, specification=spec)  # type: ignore[arg-type]
            self._registry = Registry().with_resource("urn:docgen:spec", resource)  # type: ignore[call-arg]
        cls, checker = (
            (OAS31Validator, oas31_format_checker) if self.family == "3.1" else (OAS30Validator, oas30_format_checker)
        )
        ref = {"$ref": "urn:docgen:spec#" + to_pointer(parts)}
        return cls(ref, registry=self._registry, format_checker=checker)

    def _default(self, parts: tuple[Any, ...], schema: dict[str, Any]) -> None:
        value = schema["default"]
        if value is None:
            if self._nullable(schema) or "type" not in schema:
                return
            if self.family == "3.1" and isinstance(schema.get("type"), list) and "null" in schema["type"]:
                return
            flag = "nullable: true" if self.family == "3.0" else "x-nullable: true" if self.family == "2.0" else ""
            how = f"; mark the schema {flag} or remove the default" if flag else "; remove the default"
            message = f"default is null but the schema's type is {_type_words(schema.get('type'))}{how}"
            self.add((*parts, "default"), message, "default", SEVERITY_WARNING)
            return
        try:
            errors = list(self._validator(parts).iter_errors(value))
        except Exception:  # noqa: BLE001 - a schema that cannot be compiled is reported by the dialect check
            return
        self._default_errors((*parts, "default"), errors)

    def _nullable(self, schema: dict[str, Any]) -> bool:
        return schema.get("nullable") is True or schema.get("x-nullable") is True

    def _simple(self, parts: tuple[Any, ...], node: dict[str, Any]) -> None:
        if isinstance(node.get("enum"), list):
            self._enum(parts, node["enum"])
        if node.get("type") == "array" and "items" not in node:
            # Parameter, Items and Header Objects: items is "Required if type is "array"" (the JSON Schema forgets).
            self.add(parts, "missing required field 'items' (it is required when type is 'array')")
        self._simple_default(parts, node)

    def _simple_default(self, parts: tuple[Any, ...], node: dict[str, Any]) -> None:
        """A 2.0 Parameter/Items/Header default: "Unlike JSON Schema this value MUST conform to the defined type"."""
        if "default" not in node or node.get("type") == "file":
            return
        schema = _simple_schema(node)
        from openapi_schema_validator import oas30_format_checker
        from openapi_schema_validator.validators import OAS30Validator

        try:
            errors = list(OAS30Validator(schema, format_checker=oas30_format_checker).iter_errors(node["default"]))
        except Exception:  # noqa: BLE001 - an unknown type is the JSON Schema's finding, not ours
            return
        self._default_errors((*parts, "default"), errors)

    def _default_errors(self, where: tuple[Any, ...], errors: list[Any]) -> None:
        done: set[tuple[Any, ...]] = set()
        for error in sorted(errors, key=lambda e: (len(e.absolute_path), e.validator != "type")):
            parts = (*where, *error.absolute_path)
            if parts in done:
                continue
            done.add(parts)
            verdict = self._default_verdict(error)
            if verdict is not None:
                self.add(parts, verdict[1], "default", verdict[0])

    def _default_verdict(self, error: Any) -> tuple[str, str] | None:
        value, keyword = error.instance, error.validator
        if keyword == "enum" and not isinstance(error.validator_value, list):
            return None  # an enum that is not a list: the JSON Schema says so, the default is not to blame
        if keyword in ("type", "nullable"):
            expected = error.validator_value if keyword == "type" else error.schema.get("type")
            wanted = expected_types(expected)
            message = f"default does not conform to the schema's type: expected {wanted}, found {found(value)}"
            if value is None or self.family == "3.1":
                return SEVERITY_WARNING, message
            return SEVERITY_ERROR, message
        if keyword == "format":
            return SEVERITY_WARNING, f"default {shown(value)} is not a valid {error.validator_value} (format)"
        if keyword == "enum":
            allowed = ", ".join(shown(a) for a in list(error.validator_value)[:12])
            return SEVERITY_WARNING, f"default {shown(value)} is not one of the schema's enum values ({allowed})"
        if keyword == "required":
            return SEVERITY_WARNING, f"default does not meet the schema: {error.message}"
        return SEVERITY_WARNING, f"default does not meet the schema's {keyword!r}: {_short_message(error)}"

    # ---------------------------------------------------------------- the rest

    def _oauth2_scopes(self) -> None:
        """Swagger 2.0: ``scopes`` is Required in an oauth2 Security Scheme (its JSON Schema forgets it)."""
        for name, scheme in _items(self.document.get("securityDefinitions")):
            if isinstance(scheme, dict) and scheme.get("type") == "oauth2" and "scopes" not in scheme:
                message = "missing required field 'scopes' (an oauth2 scheme lists its scopes; 'scopes: {}' for none)"
                self.add(("securityDefinitions", name), message)

    def _duplicate_parameters(self) -> None:
        """2.0 / 3.x: "The list MUST NOT include duplicated parameters" (a unique parameter is name + location)."""
        for parts, listing in parameter_lists(self.document, self.family):
            first: dict[tuple[str, str], int] = {}
            for index, raw in enumerate(listing):
                param = _local(self.document, raw)
                if not isinstance(param, dict) or not isinstance(param.get("name"), str):
                    continue
                key = (param["name"], str(param.get("in")))
                if key in first:
                    message = (
                        f"parameter {key[0]!r} in {key[1]} is listed twice (first at parameters[{first[key]}]);"
                        " the list MUST NOT include duplicated parameters"
                    )
                    self.add((*parts, index), message, "duplicate-parameter")
                else:
                    first[key] = index

    def _security_requirements(self) -> None:
        """Security Requirement Objects: "Each name MUST correspond to a security scheme which is declared" (3.x;
        2.0 says "must"); for a scheme other than oauth2 (and 3.0's openIdConnect) "the array MUST be empty" (2.0,
        3.0; 3.1 lets it list role names)."""
        if self.family == "2.0":
            schemes, where = self.document.get("securityDefinitions"), "securityDefinitions"
        else:
            components = self.document.get("components")
            schemes = components.get("securitySchemes") if isinstance(components, dict) else None
            where = "components.securitySchemes"
        schemes = schemes if isinstance(schemes, dict) else {}
        lists: list[tuple[tuple[Any, ...], Any]] = [(("security",), self.document.get("security"))]
        for item_parts, item in _path_items(self.document, self.family):
            for op_parts, operation in _operations(item_parts, item):
                lists.append(((*op_parts, "security"), operation.get("security")))
        for parts, listing in lists:
            for index, requirement in enumerate(listing if isinstance(listing, list) else []):
                for name, scopes in _items(requirement):
                    if name not in schemes:
                        message = f"security scheme {name!r} is not declared in {where}"
                        self.add((*parts, index, name), message, "security-requirement")
                        continue
                    scheme = _local(self.document, schemes[name])
                    kind = scheme.get("type") if isinstance(scheme, dict) else None
                    scoped = ("oauth2",) if self.family == "2.0" else ("oauth2", "openIdConnect")
                    if self.family != "3.1" and isinstance(kind, str) and kind not in scoped and scopes:
                        only = " and ".join(scoped)
                        message = f"the list of {kind} scheme {name!r} MUST be empty: only {only} schemes have scopes"
                        self.add((*parts, index, name), message, "security-requirement")

    def _identical_paths(self) -> None:
        """3.x: "Templated paths with the same hierarchy but different templated names MUST NOT exist as they are
        identical" (Swagger 2.0 says nothing of it)."""
        first: dict[str, str] = {}
        for url, _ in _items(self.document.get("paths")):
            shape = re.sub(r"\{[^{}]*\}", "{}", str(url))
            if shape in first:
                message = (
                    f"path {url!r} differs from {first[shape]!r} only in the names of its template parameters:"
                    " such paths are identical and MUST NOT both exist"
                )
                self.add(("paths", url), message, "identical-paths")
            else:
                first[shape] = str(url)

    def _duplicate_tags(self) -> None:
        """Tag names: "Each tag name in the list MUST be unique" (2.0, 3.0, 3.1)."""
        first: dict[str, int] = {}
        tags = self.document.get("tags")
        for index, tag in enumerate(tags if isinstance(tags, list) else []):
            name = tag.get("name") if isinstance(tag, dict) else None
            if not isinstance(name, str):
                continue
            if name in first:
                message = f"tag {name!r} is declared twice (first at tags[{first[name]}]); tag names MUST be unique"
                self.add(("tags", index, "name"), message)
            else:
                first[name] = index


def _simple_schema(node: dict[str, Any]) -> dict[str, Any]:
    schema = {key: node[key] for key in _SIMPLE_KEYS if key in node and key != "items"}
    if isinstance(node.get("items"), dict):
        schema["items"] = _simple_schema(node["items"])
    return schema


def _type_words(expected: Any) -> str:
    return expected_types(expected)


def _short_message(error: Any) -> str:
    message = str(error.message)
    head = repr(error.instance)
    return shown(error.instance) + message[len(head) :] if message.startswith(head) else message


def walk(clean: dict[str, Any], family: str) -> list[Verdict]:
    """Every verdict of the walk over ``clean`` (a document whose unresolvable ``$ref``s were dropped)."""
    return Walk(clean, family).run()
