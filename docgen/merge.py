"""Merge many services' Swagger 2.0 / OpenAPI 3.x specs into one OpenAPI 3.1.0 document for the portal.

Three pure steps (nothing is read or written, inputs are never mutated and results share nothing with them):

* :func:`to_openapi31` converts one document (Swagger 2.0 or OpenAPI 3.0.x) to OpenAPI 3.1.0;
* :func:`fragment` makes one service's part of the portal: its paths routed under ``/api/{name}/{version}``,
  its components, security schemes, webhooks and tags namespaced with the service name, every ``$ref``
  rewritten. A fragment is a valid OpenAPI 3.1.0 document on its own (the service's API page);
* :func:`combine` joins fragments into the platform's document, renaming operationIds used twice.

Specs are expected to be valid (see :mod:`docgen.validate`): malformed parts are carried over, not repaired.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

from docgen.validate import METHODS

OPENAPI_VERSION = "3.1.0"
COMPONENT_KINDS = (
    "schemas",
    "responses",
    "parameters",
    "examples",
    "requestBodies",
    "headers",
    "securitySchemes",
    "links",
    "callbacks",
    "pathItems",
)
SERVICE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
SERVICE_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

_NOT_COMPONENT_CHAR = re.compile(r"[^A-Za-z0-9.\-_]")  # component names must match ^[a-zA-Z0-9.\-_]+$
_NOT_IDENTIFIER_CHAR = re.compile(r"[^A-Za-z0-9_]")
_OPENAPI_30 = re.compile(r"^3\.0\.\d+")
_OPENAPI_31 = re.compile(r"^3\.1\.\d+")
# Keys whose values are data (examples, defaults, enums), where a "$ref" key is just data.
_DATA_KEYS = frozenset({"example", "examples", "default", "enum", "const"})
# Characters a URI fragment may hold unencoded besides the unreserved ones (RFC 3986 pchar).
_FRAGMENT_SAFE = "!$&'()*+,;=:@"
_JSON = "application/json"
_URLENCODED = "application/x-www-form-urlencoded"
_MULTIPART = "multipart/form-data"

# Schema keywords holding subschemas (OpenAPI 3.0 and JSON Schema 2020-12 as used by OpenAPI 3.1).
_SCHEMA_MAPS = ("properties", "patternProperties", "dependentSchemas", "$defs", "definitions")
_SCHEMA_SINGLE = (
    "additionalProperties",
    "items",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
    "additionalItems",
    "contentSchema",
)
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems", "items")

# Swagger 2.0 keys of a non-body parameter, header or items object that become its OpenAPI 3 schema.
_SIMPLE_SCHEMA_KEYS = (
    "type",
    "format",
    "default",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "enum",
    "multipleOf",
)
_OPERATION_COPY_KEYS = ("tags", "summary", "description", "externalDocs", "operationId", "deprecated", "security")
_QUERY_STYLES = {
    "csv": ("form", False),
    "multi": ("form", True),
    "ssv": ("spaceDelimited", False),
    "pipes": ("pipeDelimited", False),
}
_OAUTH2_FLOWS = {
    "implicit": ("implicit", ("authorizationUrl",)),
    "password": ("password", ("tokenUrl",)),
    "application": ("clientCredentials", ("tokenUrl",)),
    "accessCode": ("authorizationCode", ("authorizationUrl", "tokenUrl")),
}


@dataclass(frozen=True)
class ServiceSpec:
    """One service's validated spec and where the portal routes it."""

    name: str  # matches ^[a-z0-9][a-z0-9-]*$
    version: str  # e.g. "v1", matches ^[A-Za-z0-9][A-Za-z0-9._-]*$
    document: Mapping[str, Any]  # a valid Swagger 2.0, OpenAPI 3.0.x or 3.1.x document
    deprecated_aliases: bool = False

    def __post_init__(self) -> None:
        # Both end up in URLs, component names and operationIds: refuse anything else early.
        if not isinstance(self.name, str) or not SERVICE_NAME.match(self.name):
            raise ValueError(f"service name {self.name!r} does not match {SERVICE_NAME.pattern}")
        if not isinstance(self.version, str) or not SERVICE_VERSION.match(self.version):
            raise ValueError(
                f"version {self.version!r} of service {self.name!r} does not match {SERVICE_VERSION.pattern}"
            )


@dataclass
class MergeResult:
    """The platform's document and the operationIds that :func:`combine` had to rename."""

    document: dict[str, Any]
    renamed_operation_ids: list[tuple[str, str, str]] = field(default_factory=list)  # (service, old, new)


# --------------------------------------------------------------------------- helpers


def _plain(value: Any) -> Any:
    """A deep copy made of dicts and lists only: no Mapping proxies, tuples or objects shared by YAML anchors."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return copy.deepcopy(value)


def _pointer_tokens(ref: str) -> list[str] | None:
    """The tokens of a local ``#/a/b`` ref, percent-decoded then ``~1``/``~0`` unescaped; None for other refs."""
    if not ref.startswith("#/"):
        return None
    return [token.replace("~1", "/").replace("~0", "~") for token in unquote(ref[2:]).split("/")]


def _pointer(tokens: Sequence[str]) -> str:
    """``['paths', '/a/{id}']`` -> ``#/paths/~1a~1%7Bid%7D``: a JSON pointer, percent-encoded for a URI fragment."""
    escaped = (quote(token.replace("~", "~0").replace("/", "~1"), safe=_FRAGMENT_SAFE) for token in tokens)
    return "#/" + "/".join(escaped)


def _rewrite_any(value: Any, rewrite: Callable[[str], str]) -> Any:
    """``value`` with every ``$ref`` rewritten, for parts whose structure is unknown (``x-`` extensions)."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "$ref" and isinstance(item, str):
                out[key] = rewrite(item)
            elif key in _DATA_KEYS:
                out[key] = item
            else:
                out[key] = _rewrite_any(item, rewrite)
        return out
    if isinstance(value, list):
        return [_rewrite_any(item, rewrite) for item in value]
    return value


def _is_ref(node: Any) -> bool:
    return isinstance(node, dict) and isinstance(node.get("$ref"), str)


def _unique(candidate: str, taken: set[str] | Mapping[str, Any]) -> str:
    """``candidate``, or ``candidate_2``, ``candidate_3``... whichever is not taken yet."""
    if candidate not in taken:
        return candidate
    number = 2
    while f"{candidate}_{number}" in taken:
        number += 1
    return f"{candidate}_{number}"


# --------------------------------------------------------------------------- walking an OpenAPI 3.x document

_OperationHook = Callable[[dict[str, Any], str], None]


class _Walker:
    """Visits an OpenAPI 3.x document object by object, knowing each one's type.

    Knowing the type is what keeps a property named ``nullable`` or ``$ref``, or an example that holds a
    ``"$ref"`` key, from being taken for a keyword. The document is changed in place (pass a copy):

    * ``ref`` rewrites every ``$ref`` (and a link's ``operationRef``);
    * ``schema`` replaces every Schema Object, after its subschemas were visited;
    * ``operation`` sees every operation with where it is: ``paths``, ``webhooks``, ``components`` (a
      ``components/pathItems`` entry) or ``callbacks``;
    * ``link`` sees every Link Object;
    * ``keep_ref_siblings=False`` drops what sits next to ``$ref`` in a Reference Object (OpenAPI 3.0
      ignores it; OpenAPI 3.1 allows ``summary`` and ``description``).
    """

    def __init__(
        self,
        *,
        ref: Callable[[str], str] | None = None,
        schema: Callable[[dict[str, Any]], Any] | None = None,
        operation: _OperationHook | None = None,
        link: Callable[[dict[str, Any]], None] | None = None,
        keep_ref_siblings: bool = True,
    ) -> None:
        self.ref_hook = ref
        self.schema_hook = schema
        self.operation_hook = operation
        self.link_hook = link
        self.keep_ref_siblings = keep_ref_siblings

    # -- plumbing

    def _extensions(self, node: dict[str, Any]) -> None:
        if self.ref_hook is None:
            return
        for key in node:
            if isinstance(key, str) and key.startswith("x-"):
                node[key] = _rewrite_any(node[key], self.ref_hook)

    def _map(self, node: Any, visit: Callable[[Any], Any]) -> None:
        """``visit`` every value of a map (skipping ``x-`` extensions, which get their refs rewritten)."""
        if not isinstance(node, dict):
            return
        for key in node:
            if isinstance(key, str) and key.startswith("x-"):
                if self.ref_hook is not None:
                    node[key] = _rewrite_any(node[key], self.ref_hook)
            else:
                node[key] = visit(node[key])

    def _or_ref(self, visit: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def visit_or_ref(node: Any) -> Any:
            if not _is_ref(node):
                return visit(node) if isinstance(node, dict) else node
            if self.ref_hook is not None:
                node["$ref"] = self.ref_hook(node["$ref"])
            return node if self.keep_ref_siblings else {"$ref": node["$ref"]}

        return visit_or_ref

    # -- objects

    def document(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Visit a whole document (in place); returns it."""
        self._map(doc.get("paths"), lambda item: self.path_item(item, "paths"))
        webhooks = doc.get("webhooks")
        if isinstance(webhooks, dict):  # a plain map: no x- extensions there
            for key in webhooks:
                webhooks[key] = self._or_ref(lambda item: self.path_item(item, "webhooks"))(webhooks[key])
        components = doc.get("components")
        if isinstance(components, dict):
            self._map(components.get("schemas"), self.schema)
            self._map(components.get("responses"), self._or_ref(self.response))
            self._map(components.get("parameters"), self._or_ref(self.parameter))
            self._map(components.get("examples"), self._or_ref(self.leaf))
            self._map(components.get("requestBodies"), self._or_ref(self.request_body))
            self._map(components.get("headers"), self._or_ref(self.parameter))
            self._map(components.get("securitySchemes"), self._or_ref(self.leaf))
            self._map(components.get("links"), self._or_ref(self.link))
            self._map(components.get("callbacks"), self._or_ref(self.callback))
            self._map(components.get("pathItems"), lambda item: self.path_item(item, "components"))
            self._extensions(components)
        self._extensions(doc)
        return doc

    def path_item(self, node: Any, where: str) -> Any:
        """Visit a Path Item Object; ``where`` is passed on to the operation hook."""
        if not isinstance(node, dict):
            return node
        if isinstance(node.get("$ref"), str) and self.ref_hook is not None:
            node["$ref"] = self.ref_hook(node["$ref"])  # a path item's $ref keeps its siblings
        if isinstance(node.get("parameters"), list):
            node["parameters"] = [self._or_ref(self.parameter)(param) for param in node["parameters"]]
        for method in METHODS:
            if isinstance(node.get(method), dict):
                node[method] = self.operation(node[method], where)
        self._extensions(node)
        return node

    def operation(self, node: dict[str, Any], where: str) -> dict[str, Any]:
        if self.operation_hook is not None:
            self.operation_hook(node, where)
        if isinstance(node.get("parameters"), list):
            node["parameters"] = [self._or_ref(self.parameter)(param) for param in node["parameters"]]
        if "requestBody" in node:
            node["requestBody"] = self._or_ref(self.request_body)(node["requestBody"])
        self._map(node.get("responses"), self._or_ref(self.response))
        self._map(node.get("callbacks"), self._or_ref(self.callback))
        self._extensions(node)
        return node

    def callback(self, node: dict[str, Any]) -> dict[str, Any]:
        self._map(node, lambda item: self.path_item(item, "callbacks"))
        return node

    def parameter(self, node: dict[str, Any]) -> dict[str, Any]:
        """A Parameter or Header Object."""
        if "schema" in node:
            node["schema"] = self.schema(node["schema"])
        self._map(node.get("content"), self.media_type)
        self._map(node.get("examples"), self._or_ref(self.leaf))
        self._extensions(node)
        return node

    def media_type(self, node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        if "schema" in node:
            node["schema"] = self.schema(node["schema"])
        self._map(node.get("examples"), self._or_ref(self.leaf))
        encodings = node.get("encoding")
        if isinstance(encodings, dict):
            for encoding in encodings.values():
                if isinstance(encoding, dict):
                    self._map(encoding.get("headers"), self._or_ref(self.parameter))
                    self._extensions(encoding)
        self._extensions(node)
        return node

    def leaf(self, node: dict[str, Any]) -> dict[str, Any]:
        """An object without schemas or refs inside (Example, Security Scheme): only its extensions.

        An example's ``value`` is data, never walked.
        """
        self._extensions(node)
        return node

    def request_body(self, node: dict[str, Any]) -> dict[str, Any]:
        self._map(node.get("content"), self.media_type)
        self._extensions(node)
        return node

    def response(self, node: dict[str, Any]) -> dict[str, Any]:
        self._map(node.get("headers"), self._or_ref(self.parameter))
        self._map(node.get("content"), self.media_type)
        self._map(node.get("links"), self._or_ref(self.link))
        self._extensions(node)
        return node

    def link(self, node: dict[str, Any]) -> dict[str, Any]:
        if isinstance(node.get("operationRef"), str) and self.ref_hook is not None:
            node["operationRef"] = self.ref_hook(node["operationRef"])
        if self.link_hook is not None:
            self.link_hook(node)
        self._extensions(node)
        return node

    def schema(self, node: Any) -> Any:
        """Visit a Schema Object (a boolean schema is returned as it is)."""
        if not isinstance(node, dict):
            return node
        if isinstance(node.get("$ref"), str) and self.ref_hook is not None:
            node["$ref"] = self.ref_hook(node["$ref"])
        for key in _SCHEMA_MAPS:
            if isinstance(node.get(key), dict):
                subschemas = node[key]
                for name in subschemas:
                    subschemas[name] = self.schema(subschemas[name])
        for key in _SCHEMA_SINGLE:
            if isinstance(node.get(key), dict):
                node[key] = self.schema(node[key])
        for key in _SCHEMA_LISTS:
            if isinstance(node.get(key), list):
                node[key] = [self.schema(item) for item in node[key]]
        self._extensions(node)
        return self.schema_hook(node) if self.schema_hook is not None else node


# --------------------------------------------------------------------------- OpenAPI 3.0 -> 3.1


def _upgrade_schema(node: dict[str, Any]) -> dict[str, Any]:
    """One OpenAPI 3.0 Schema Object as JSON Schema 2020-12 (its subschemas are already upgraded)."""
    nullable = node.get("nullable") is True
    if "$ref" in node:
        # 3.0 ignores whatever sits next to $ref, except that authors mean nullable: keep that meaning.
        reference = {"$ref": node["$ref"]}
        return {"anyOf": [reference, {"type": "null"}]} if nullable else reference
    out = dict(node)
    out.pop("nullable", None)
    for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        flag = out.get(bound)
        if isinstance(flag, bool):  # 3.0 flags the bound; 3.1 holds the number
            del out[bound]
            if flag and limit in out:
                out[bound] = out.pop(limit)
    if not nullable:
        return out
    kind = out.get("type")
    if kind is None:
        return {"anyOf": [out, {"type": "null"}]}
    if isinstance(kind, str):
        out["type"] = [kind, "null"]
    elif isinstance(kind, list) and "null" not in kind:
        out["type"] = [*kind, "null"]
    if isinstance(out.get("enum"), list) and None not in out["enum"]:
        out["enum"] = [*out["enum"], None]  # 3.0's nullable let null through an enum; 3.1 needs it listed
    return out


def _upgrade_openapi30(doc: dict[str, Any]) -> dict[str, Any]:
    doc["openapi"] = OPENAPI_VERSION
    return _Walker(schema=_upgrade_schema, keep_ref_siblings=False).document(doc)


# --------------------------------------------------------------------------- Swagger 2.0 -> OpenAPI 3.0


def _style(location: str, collection_format: Any) -> tuple[str, bool]:
    """OpenAPI 3 ``(style, explode)`` for a Swagger 2.0 ``collectionFormat`` (default ``csv``)."""
    if location in ("query", "formData"):
        # tsv has no OpenAPI 3 equivalent: it is described as csv (form, not exploded).
        return _QUERY_STYLES.get(collection_format or "csv", ("form", False))
    return ("simple", False)  # path and header: csv is the only format that makes sense


class _Swagger2:
    """Converts one Swagger 2.0 document to OpenAPI 3.0 (then upgraded to 3.1 by the caller)."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.consumes: list[str] = doc.get("consumes") or []
        self.produces: list[str] = doc.get("produces") or []
        params = doc.get("parameters")
        self.root_params: dict[str, Any] = params if isinstance(params, dict) else {}

    # -- references

    def ref(self, ref: str) -> str:
        """A Swagger 2.0 ``$ref`` pointing where the converted object is."""
        tokens = _pointer_tokens(ref)
        if tokens is None or len(tokens) < 2:
            return ref
        head, name = tokens[0], tokens[1]
        if head == "definitions":
            kind = "schemas"
        elif head == "responses":
            kind = "responses"
        elif head == "parameters":
            param = self.root_params.get(name)
            kind = "requestBodies" if isinstance(param, dict) and param.get("in") == "body" else "parameters"
        else:
            return ref
        return _pointer(["components", kind, *tokens[1:]])

    def generic(self, value: Any) -> Any:
        return _rewrite_any(value, self.ref)

    def resolve_param(self, raw: Any) -> tuple[Any, dict[str, Any]]:
        """``(raw, parameter)``: a ``#/parameters/X`` reference followed to the root parameter it names."""
        if _is_ref(raw):
            tokens = _pointer_tokens(raw["$ref"])
            if tokens and len(tokens) == 2 and tokens[0] == "parameters":
                target = self.root_params.get(tokens[1])
                return raw, target if isinstance(target, dict) else {}
            return raw, {}
        return raw, raw if isinstance(raw, dict) else {}

    # -- document

    def document(self) -> dict[str, Any]:
        doc = self.doc
        out: dict[str, Any] = {"openapi": "3.0.3", "info": doc.get("info", {})}
        servers = self.servers()
        if servers:
            out["servers"] = servers
        for key in ("security", "tags", "externalDocs"):
            if key in doc:
                out[key] = doc[key]
        paths: dict[str, Any] = {}
        for url, item in (doc.get("paths") or {}).items():
            paths[url] = self.generic(item) if str(url).startswith("x-") else self.path_item(item)
        out["paths"] = paths
        components: dict[str, dict[str, Any]] = {
            "schemas": {name: self.schema(schema) for name, schema in (doc.get("definitions") or {}).items()},
            "responses": {
                name: self.response(response, self.produces) for name, response in (doc.get("responses") or {}).items()
            },
            "parameters": {},
            "requestBodies": {},
            "securitySchemes": {
                name: self.security_scheme(scheme) for name, scheme in (doc.get("securityDefinitions") or {}).items()
            },
        }
        for name, param in self.root_params.items():
            if not isinstance(param, dict):
                continue
            if param.get("in") == "body":
                components["requestBodies"][name] = self.request_body(param, self.consumes or [_JSON])
            elif param.get("in") != "formData":  # formData ones are inlined into each form body using them
                components["parameters"][name] = self.parameter(param)
        components = {kind: items for kind, items in components.items() if items}
        if components:
            out["components"] = components
        for key, value in doc.items():
            if isinstance(key, str) and key.startswith("x-"):
                out[key] = self.generic(value)
        return out

    def servers(self) -> list[dict[str, str]]:
        """host, basePath and schemes as ``servers`` (the portal's routing drops them again)."""
        if not any(key in self.doc for key in ("host", "basePath", "schemes")):
            return []
        base = self.doc.get("basePath") or ""
        host = self.doc.get("host")
        if not host:
            return [{"url": base or "/"}]
        schemes = self.doc.get("schemes") or []
        return [{"url": f"{scheme}://{host}{base}"} for scheme in schemes] or [{"url": f"//{host}{base}"}]

    # -- paths

    def path_item(self, item: Any) -> Any:
        if not isinstance(item, dict):
            return item
        out: dict[str, Any] = {}
        if isinstance(item.get("$ref"), str):
            out["$ref"] = self.ref(item["$ref"])
        shared = [self.resolve_param(param) for param in item.get("parameters") or []]
        # Path-level body and formData parameters become each operation's requestBody.
        plain = [raw for raw, param in shared if param.get("in") not in ("body", "formData")]
        if plain:
            out["parameters"] = [self.parameter_or_ref(raw) for raw in plain]
        for key, value in item.items():
            if key in METHODS and isinstance(value, dict):
                out[key] = self.operation(value, shared)
            elif isinstance(key, str) and key.startswith("x-"):
                out[key] = self.generic(value)
        return out

    def operation(self, op: dict[str, Any], shared: list[tuple[Any, dict[str, Any]]]) -> dict[str, Any]:
        out: dict[str, Any] = {key: op[key] for key in _OPERATION_COPY_KEYS if key in op}
        # operation-level consumes/produces replace the root's; none at all means JSON
        consumes = op.get("consumes", self.consumes) or [_JSON]
        produces = op.get("produces", self.produces) or [_JSON]
        own = [self.resolve_param(param) for param in op.get("parameters") or []]
        overridden = {(param.get("name"), param.get("in")) for _, param in own}
        inherited = [
            (raw, param)
            for raw, param in shared
            if param.get("in") in ("body", "formData") and (param.get("name"), param.get("in")) not in overridden
        ]
        plain: list[Any] = []
        body: tuple[Any, dict[str, Any]] | None = None
        form: list[dict[str, Any]] = []
        for raw, param in inherited + own:
            if param.get("in") == "body":
                body = (raw, param)
            elif param.get("in") == "formData":
                form.append(param)
            else:
                plain.append(raw)
        if plain:
            out["parameters"] = [self.parameter_or_ref(raw) for raw in plain]
        if body is not None:
            raw, param = body
            out["requestBody"] = {"$ref": self.ref(raw["$ref"])} if _is_ref(raw) else self.request_body(param, consumes)
        elif form:
            out["requestBody"] = self.form_body(form, consumes)
        responses = op.get("responses")
        if isinstance(responses, dict):
            out["responses"] = {
                str(code): self.generic(response) if str(code).startswith("x-") else self.response(response, produces)
                for code, response in responses.items()
            }
        for key, value in op.items():
            if isinstance(key, str) and key.startswith("x-"):
                out[key] = self.generic(value)
        return out

    # -- parameters and bodies

    def parameter_or_ref(self, raw: Any) -> Any:
        if _is_ref(raw):
            return {"$ref": self.ref(raw["$ref"])}
        return self.parameter(raw)

    def parameter(self, param: dict[str, Any]) -> dict[str, Any]:
        """A non-body parameter: its type keywords become ``schema``, collectionFormat ``style``/``explode``."""
        location = param.get("in")
        out: dict[str, Any] = {"name": param.get("name"), "in": location}
        for key in ("description", "required", "deprecated"):
            if key in param:
                out[key] = param[key]
        if location == "query" and "allowEmptyValue" in param:
            out["allowEmptyValue"] = param["allowEmptyValue"]
        schema = self.simple_schema(param, extensions=False)
        if schema.get("type") == "array":
            out["style"], out["explode"] = _style(str(location), param.get("collectionFormat"))
        out["schema"] = schema
        for key, value in param.items():
            if isinstance(key, str) and key.startswith("x-") and key != "x-nullable":
                out[key] = self.generic(value)
        return out

    def simple_schema(self, obj: dict[str, Any], *, extensions: bool = True) -> dict[str, Any]:
        """The schema of a parameter, header or items object (``type: file`` is a binary string)."""
        schema = {key: obj[key] for key in _SIMPLE_SCHEMA_KEYS if key in obj}
        items = obj.get("items")
        if _is_ref(items):
            schema["items"] = {"$ref": self.ref(items["$ref"])}
        elif isinstance(items, dict):
            schema["items"] = self.simple_schema(items)
        if schema.get("type") == "file":
            schema.update(type="string", format="binary")
        if obj.get("x-nullable") is True:
            schema["nullable"] = True
        if extensions:
            for key, value in obj.items():
                if isinstance(key, str) and key.startswith("x-") and key != "x-nullable":
                    schema[key] = self.generic(value)
        return schema

    def request_body(self, param: dict[str, Any], consumes: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if "description" in param:
            out["description"] = param["description"]
        schema = self.schema(param.get("schema", {}))
        out["content"] = {media: {"schema": schema} for media in consumes}
        if "required" in param:
            out["required"] = param["required"]
        for key, value in param.items():
            if isinstance(key, str) and key.startswith("x-"):
                out[key] = self.generic(value)
        return out

    def form_body(self, form: list[dict[str, Any]], consumes: list[str]) -> dict[str, Any]:
        """formData parameters as one object schema, sent as multipart when a file is among them."""
        if any(param.get("type") == "file" for param in form):
            media = [_MULTIPART]
        else:
            media = [kind for kind in consumes if kind in (_URLENCODED, _MULTIPART)] or [_URLENCODED]
        properties: dict[str, Any] = {}
        required: list[str] = []
        encoding: dict[str, Any] = {}
        for param in form:
            name = str(param.get("name"))
            prop = self.simple_schema(param)
            if "description" in param:
                prop["description"] = param["description"]
            properties[name] = prop
            if param.get("required") is True:
                required.append(name)
            if prop.get("type") == "array":
                style, explode = _style("formData", param.get("collectionFormat"))
                encoding[name] = {"style": style, "explode": explode}
        schema: dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            schema["required"] = required
        content: dict[str, Any] = {}
        for kind in media:
            content[kind] = {"schema": schema}
            if kind == _URLENCODED and encoding:  # style/explode only mean something for urlencoded forms
                content[kind]["encoding"] = encoding
        body: dict[str, Any] = {"content": content}
        if required:
            body["required"] = True
        return body

    # -- responses

    def response(self, response: Any, produces: list[str]) -> Any:
        if _is_ref(response):
            return {"$ref": self.ref(response["$ref"])}
        if not isinstance(response, dict):
            return response
        out: dict[str, Any] = {"description": response.get("description", "")}
        headers = response.get("headers")
        if isinstance(headers, dict) and headers:
            out["headers"] = {name: self.header(header) for name, header in headers.items()}
        examples = response.get("examples") if isinstance(response.get("examples"), dict) else {}
        if "schema" in response or examples:
            content: dict[str, Any] = {}
            for media in [*produces, *(kind for kind in examples if kind not in produces)]:
                entry: dict[str, Any] = {}
                if "schema" in response:
                    entry["schema"] = self.schema(response["schema"])
                if media in examples:
                    entry["example"] = examples[media]
                content[media] = entry
            out["content"] = content
        for key, value in response.items():
            if isinstance(key, str) and key.startswith("x-"):
                out[key] = self.generic(value)
        return out

    def header(self, header: Any) -> Any:
        if not isinstance(header, dict):
            return header
        out: dict[str, Any] = {}
        if "description" in header:
            out["description"] = header["description"]
        schema = self.simple_schema(header, extensions=False)
        if schema.get("type") == "array":
            out["style"], out["explode"] = _style("header", header.get("collectionFormat"))
        out["schema"] = schema
        for key, value in header.items():
            if isinstance(key, str) and key.startswith("x-") and key != "x-nullable":
                out[key] = self.generic(value)
        return out

    # -- schemas and security

    def schema(self, node: Any) -> Any:
        """A Swagger 2.0 Schema Object in OpenAPI 3.0 terms (x-nullable, string discriminator, file type)."""
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                out[key] = self.ref(value)
            elif key == "x-nullable":
                if value is True:
                    out["nullable"] = True
            elif key == "discriminator" and isinstance(value, str):
                out[key] = {"propertyName": value}
            elif key in ("properties", "patternProperties") and isinstance(value, dict):
                out[key] = {name: self.schema(item) for name, item in value.items()}
            elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
                out[key] = self.schema(value)
            elif key in ("allOf", "anyOf", "oneOf", "items") and isinstance(value, list):
                out[key] = [self.schema(item) for item in value]
            elif key in _DATA_KEYS:
                out[key] = value
            else:
                out[key] = self.generic(value)
        if out.get("type") == "file":
            out.update(type="string", format="binary")
        return out

    def security_scheme(self, scheme: Any) -> Any:
        if not isinstance(scheme, dict):
            return scheme
        kind = scheme.get("type")
        extra = {key: value for key, value in scheme.items() if key == "description" or str(key).startswith("x-")}
        if kind == "basic":
            return {"type": "http", "scheme": "basic", **extra}
        if kind == "oauth2" and scheme.get("flow") in _OAUTH2_FLOWS:
            name, urls = _OAUTH2_FLOWS[scheme["flow"]]
            flow = {url: scheme[url] for url in urls if url in scheme}
            flow["scopes"] = scheme.get("scopes") or {}
            return {"type": "oauth2", "flows": {name: flow}, **extra}
        return scheme  # apiKey is the same in both versions


# --------------------------------------------------------------------------- public: conversion


def to_openapi31(document: Mapping[str, Any]) -> dict[str, Any]:
    """Convert Swagger 2.0 or OpenAPI 3.0.x to 3.1.0 (3.1 input is copied unchanged).

    Swagger 2.0's host, basePath and schemes become ``servers``. Raises ``ValueError`` for any other version.
    """
    doc = _plain(document)
    if str(doc.get("swagger")) == "2.0":
        # _plain again: the converter may place one object at two places (a schema under two media types).
        return _upgrade_openapi30(_plain(_Swagger2(doc).document()))
    version = str(doc.get("openapi", ""))
    if _OPENAPI_30.match(version):
        return _upgrade_openapi30(doc)
    if _OPENAPI_31.match(version):
        return doc
    found = doc.get("openapi", doc.get("swagger"))
    raise ValueError(f"not a Swagger 2.0 or OpenAPI 3.0/3.1 document (version {found!r})")


# --------------------------------------------------------------------------- public: fragment


def _namespaced(service: str, names: Any) -> dict[str, str]:
    """``{original: "service.original"}`` with characters a component name cannot hold replaced by ``_``."""
    renames: dict[str, str] = {}
    if not isinstance(names, dict):
        return renames
    taken: set[str] = set()
    for name in names:
        new = _unique(_NOT_COMPONENT_CHAR.sub("_", f"{service}.{name}"), taken)  # "a b" and "a_b" stay apart
        renames[name] = new
        taken.add(new)
    return renames


def _ref_rewriter(
    renames: Mapping[str, Mapping[str, str]], paths: Mapping[str, str], webhooks: Mapping[str, str]
) -> Callable[[str], str]:
    """Rewrites a local ref into renamed components, routed paths and renamed webhooks; others are kept."""

    def rewrite(ref: str) -> str:
        tokens = _pointer_tokens(ref)
        if tokens is None:
            return ref  # "#anchor", another document: nothing was renamed there
        if len(tokens) >= 3 and tokens[0] == "components" and tokens[2] in renames.get(tokens[1], {}):
            tokens[2] = renames[tokens[1]][tokens[2]]
        elif len(tokens) >= 2 and tokens[0] == "paths" and tokens[1] in paths:
            tokens[1] = paths[tokens[1]]
        elif len(tokens) >= 2 and tokens[0] == "webhooks" and tokens[1] in webhooks:
            tokens[1] = webhooks[tokens[1]]
        else:
            return ref
        return _pointer(tokens)

    return rewrite


def _schema_name(ref: Any) -> str | None:
    """``X`` for ``#/components/schemas/X``, else None."""
    tokens = _pointer_tokens(ref) if isinstance(ref, str) else None
    if tokens and len(tokens) == 3 and tokens[:2] == ["components", "schemas"]:
        return tokens[2]
    return None


def _add_implicit_mapping(discriminator: dict[str, Any], names: list[str]) -> None:
    """Spell out that discriminator value ``X`` means schema ``X``: once renamed, the name no longer says so."""
    mapping = discriminator.get("mapping")
    mapping = dict(mapping) if isinstance(mapping, dict) else {}
    mapped = {_schema_name(value) or value for value in mapping.values() if isinstance(value, str)}
    for name in names:
        if name not in mapping and name not in mapped:
            mapping[name] = _pointer(["components", "schemas", name])
            mapped.add(name)
    if mapping:
        discriminator["mapping"] = mapping


def _complete_discriminator_mappings(doc: dict[str, Any]) -> None:
    """Make every implicit discriminator mapping (value = schema name) explicit, before names change."""

    def from_choices(node: dict[str, Any]) -> dict[str, Any]:
        discriminator = node.get("discriminator")
        if isinstance(discriminator, dict):
            choices = [*(node.get("oneOf") or []), *(node.get("anyOf") or [])]
            names = [_schema_name(choice.get("$ref")) for choice in choices if _is_ref(choice)]
            _add_implicit_mapping(discriminator, [name for name in names if name])
        return node

    _Walker(schema=from_choices).document(doc)
    schemas = (doc.get("components") or {}).get("schemas")
    if not isinstance(schemas, dict):
        return
    for parent, schema in schemas.items():
        discriminator = schema.get("discriminator") if isinstance(schema, dict) else None
        if not isinstance(discriminator, dict) or schema.get("oneOf") or schema.get("anyOf"):
            continue
        # Inheritance: every schema whose allOf refers to this one is a possible value.
        children = [
            name
            for name, child in schemas.items()
            if isinstance(child, dict)
            and isinstance(child.get("allOf"), list)
            and any(_is_ref(part) and _schema_name(part["$ref"]) == parent for part in child["allOf"])
        ]
        _add_implicit_mapping(discriminator, children)


def _resolve_local(doc: Any, ref: str) -> Any:
    node = doc
    for token in _pointer_tokens(ref) or []:
        if not isinstance(node, dict) or token not in node:
            return None
        node = node[token]
    return node


def _target_path_item(doc: dict[str, Any], item: Any) -> Any:
    """The path item itself, or the one its local ``$ref`` points to (followed a few times at most)."""
    for _ in range(8):
        if not _is_ref(item):
            break
        target = _resolve_local(doc, item["$ref"])
        if not isinstance(target, dict):
            break
        item = target
    return item


def _drop_servers(item: Any) -> None:
    if not isinstance(item, dict):
        return
    item.pop("servers", None)
    for method in METHODS:
        if isinstance(item.get(method), dict):
            item[method].pop("servers", None)


def _operation_ids(doc: dict[str, Any]) -> set[str]:
    found: set[str] = set()

    def collect(op: dict[str, Any], where: str) -> None:
        if isinstance(op.get("operationId"), str):
            found.add(op["operationId"])

    _Walker(operation=collect).document(doc)
    return found


def fragment(spec: ServiceSpec) -> dict[str, Any]:
    """One service's part of the portal: a standalone, valid OpenAPI 3.1.0 document holding only this
    service's routed paths, namespaced components, tags, with every $ref rewritten. JSON-serialisable
    (it is cached as JSON and also rendered alone as the service's API page)."""
    doc = to_openapi31(spec.document)
    name, version = spec.name, spec.version
    route = f"/api/{name}/{version}"
    components = doc.get("components") if isinstance(doc.get("components"), dict) else {}
    paths = doc.get("paths") if isinstance(doc.get("paths"), dict) else {}
    webhooks = doc.get("webhooks") if isinstance(doc.get("webhooks"), dict) else {}
    renames = {kind: _namespaced(name, components.get(kind)) for kind in COMPONENT_KINDS}
    routed = {url: route + url for url in paths if not str(url).startswith("x-")}
    hooks = {key: f"{name}.{key}" for key in webhooks}
    schema_names = renames["schemas"]
    scheme_names = renames["securitySchemes"]
    root_security = doc.get("security") if isinstance(doc.get("security"), list) else None
    used_tags: list[str] = []

    _complete_discriminator_mappings(doc)

    def operation(op: dict[str, Any], where: str) -> None:
        tags = op.get("tags")
        if isinstance(tags, list) and tags:
            op["tags"] = [f"{name}: {tag}" for tag in tags]
        elif where != "callbacks":  # a callback is shown inside its operation, not in the navigation
            op["tags"] = [name]
        used_tags.extend(tag for tag in op.get("tags", []) if tag not in used_tags)
        # The merged root has no security: the service's root requirement moves into its operations.
        if "security" not in op and root_security and where != "callbacks":
            op["security"] = copy.deepcopy(root_security)
        if isinstance(op.get("security"), list):
            op["security"] = [
                {scheme_names.get(key, key): scopes for key, scopes in requirement.items()}
                if isinstance(requirement, dict)
                else requirement
                for requirement in op["security"]
            ]

    rewrite = _ref_rewriter(renames, routed, hooks)

    def schema(node: dict[str, Any]) -> dict[str, Any]:
        discriminator = node.get("discriminator")
        if isinstance(discriminator, dict) and isinstance(discriminator.get("mapping"), dict):
            discriminator["mapping"] = {
                key: _mapping_target(value, schema_names, rewrite) for key, value in discriminator["mapping"].items()
            }
        return node

    _Walker(ref=rewrite, schema=schema, operation=operation).document(doc)

    out_components = {
        kind: {renames[kind][key]: value for key, value in components[kind].items()}
        for kind in COMPONENT_KINDS
        if isinstance(components.get(kind), dict) and components[kind]
    }
    out: dict[str, Any] = {"openapi": OPENAPI_VERSION, "info": _fragment_info(doc, spec)}
    if "externalDocs" in doc:
        out["externalDocs"] = doc["externalDocs"]
    out["tags"] = []  # filled below, once aliases exist
    out["paths"] = {}
    if webhooks:
        out["webhooks"] = {hooks[key]: item for key, item in webhooks.items()}
    if out_components:
        out["components"] = out_components

    for url, item in paths.items():
        if url in routed:  # x- extensions of the Paths Object are the service's own: dropped
            out["paths"][routed[url]] = item
            _drop_servers(_target_path_item(out, item))  # the gateway route replaces every server
    if spec.deprecated_aliases:
        _add_aliases(out, spec, routed)

    out["tags"] = _fragment_tags(doc.get("tags"), used_tags, name)
    out["x-tagGroups"] = [{"name": name, "tags": [tag["name"] for tag in out["tags"]]}]
    return out


def _mapping_target(value: Any, schema_names: Mapping[str, str], rewrite: Callable[[str], str]) -> Any:
    """A discriminator mapping value after renaming; a bare schema name becomes an explicit ref."""
    if not isinstance(value, str):
        return value
    if value.startswith("#"):
        return rewrite(value)
    if value in schema_names:
        return _pointer(["components", "schemas", schema_names[value]])
    return value


def _fragment_info(doc: dict[str, Any], spec: ServiceSpec) -> dict[str, Any]:
    info = doc.get("info") if isinstance(doc.get("info"), dict) else {}
    out: dict[str, Any] = {"title": info.get("title", spec.name), "version": str(info.get("version", spec.version))}
    if "description" in info:
        out["description"] = info["description"]
    out["x-service"] = {"name": spec.name, "version": spec.version, "route": f"/api/{spec.name}/{spec.version}"}
    return out


def _fragment_tags(declared: Any, used: list[str], service: str) -> list[dict[str, Any]]:
    """The service's root tags renamed (descriptions kept), then every tag an operation uses that is missing."""
    tags: list[dict[str, Any]] = []
    seen: set[str] = set()
    for tag in declared if isinstance(declared, list) else []:
        if isinstance(tag, dict) and isinstance(tag.get("name"), str):
            renamed = {**tag, "name": f"{service}: {tag['name']}"}
            if renamed["name"] not in seen:
                tags.append(renamed)
                seen.add(renamed["name"])
    tags.extend({"name": tag} for tag in used if tag not in seen)
    return tags


def _add_aliases(out: dict[str, Any], spec: ServiceSpec, routed: Mapping[str, str]) -> None:
    """The deprecated ``/api/{version}/{name}{P}`` copy of every routed path."""
    if spec.name == spec.version:
        raise ValueError(f"service {spec.name!r}: deprecated aliases need a version that differs from the name")
    taken = _operation_ids(out)

    def deprecate(op: dict[str, Any], where: str) -> None:
        if where == "paths":
            op["deprecated"] = True
        if isinstance(op.get("operationId"), str):
            op["operationId"] = _unique(f"{op['operationId']}_deprecated", taken)
            taken.add(op["operationId"])

    aliases: dict[str, Any] = {}
    for url, primary in routed.items():
        alias = copy.deepcopy(_target_path_item(out, out["paths"][primary]))
        alias.pop("$ref", None)  # copied inline: the alias must not rename the shared component's operations
        _Walker(operation=deprecate).path_item(alias, "paths")
        alias["x-alias-of"] = primary
        aliases[f"/api/{spec.version}/{spec.name}{url}"] = alias
    out["paths"].update(aliases)


# --------------------------------------------------------------------------- public: combine


def _fragment_service(part: Mapping[str, Any]) -> str:
    service = (part.get("info") or {}).get("x-service") or {}
    name = service.get("name") if isinstance(service, dict) else None
    if not isinstance(name, str) or not name:
        raise ValueError("not a fragment: no info.x-service.name (make fragments with docgen.merge.fragment)")
    return name


def _merge_map(target: dict[str, Any], items: Any, what: str, service: str, owners: dict[tuple[str, str], str]) -> None:
    if not isinstance(items, dict):
        return
    for key, value in items.items():
        if key in target:
            other = owners[(what, key)]
            raise ValueError(f"{what} {key!r} of service {service!r} is already defined by service {other!r}")
        target[key] = value
        owners[(what, key)] = service


def combine(
    fragments: Sequence[dict[str, Any]],
    *,
    title: str,
    version: str,
    description: str = "",
    servers: Sequence[Mapping[str, Any]] | None = None,
) -> MergeResult:
    """Combine fragments (in the given order) into the platform's single OpenAPI 3.1.0 document.

    An operationId already used (by an earlier fragment, or earlier in the same one) is renamed
    ``{service}_{operationId}`` (characters other than letters, digits and ``_`` become ``_``; ``_2``... is
    appended while still taken) and the fragment's links to it follow. Two fragments defining the same
    path, webhook, component or tag raise ``ValueError``.
    """
    info: dict[str, Any] = {"title": title, "version": version}
    if description:
        info["description"] = description
    doc: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": info,
        "servers": _plain(list(servers)) if servers is not None else [{"url": "/"}],
        "tags": [],
        "paths": {},
    }
    webhooks: dict[str, Any] = {}
    components: dict[str, dict[str, Any]] = {}
    groups: list[Any] = []
    owners: dict[tuple[str, str], str] = {}
    tag_owners: dict[str, str] = {}
    taken: set[str] = set()
    renamed: list[tuple[str, str, str]] = []

    for original in fragments:
        part = _plain(original)
        service = _fragment_service(part)
        renames: dict[str, str] = {}

        def assign(op: dict[str, Any], where: str, service: str = service, renames: dict[str, str] = renames) -> None:
            old = op.get("operationId")
            if not isinstance(old, str):
                return
            if old in taken:
                new = _unique(_NOT_IDENTIFIER_CHAR.sub("_", f"{service}_{old}"), taken)
                op["operationId"] = new
                renames.setdefault(old, new)
                renamed.append((service, old, new))
            taken.add(op["operationId"])

        _Walker(operation=assign).document(part)
        if renames:

            def follow(link: dict[str, Any], renames: dict[str, str] = renames) -> None:
                if link.get("operationId") in renames:
                    link["operationId"] = renames[link["operationId"]]

            _Walker(link=follow).document(part)

        _merge_map(doc["paths"], part.get("paths"), "path", service, owners)
        _merge_map(webhooks, part.get("webhooks"), "webhook", service, owners)
        for kind, items in (part.get("components") or {}).items():
            _merge_map(components.setdefault(kind, {}), items, f"component {kind}", service, owners)
        for tag in part.get("tags") or []:
            tag_name = tag.get("name") if isinstance(tag, dict) else None
            if tag_name in tag_owners:
                raise ValueError(
                    f"tag {tag_name!r} of service {service!r} is already defined by service {tag_owners[tag_name]!r}"
                )
            tag_owners[str(tag_name)] = service
            doc["tags"].append(tag)
        groups.extend(part.get("x-tagGroups") or [])

    if webhooks:
        doc["webhooks"] = webhooks
    components = {kind: items for kind, items in components.items() if items}
    if components:
        doc["components"] = {kind: components[kind] for kind in sorted(components, key=_kind_order)}
    doc["x-tagGroups"] = groups
    return MergeResult(document=doc, renamed_operation_ids=renamed)


def _kind_order(kind: str) -> int:
    return COMPONENT_KINDS.index(kind) if kind in COMPONENT_KINDS else len(COMPONENT_KINDS)


def merge(
    specs: Sequence[ServiceSpec],
    *,
    title: str,
    version: str,
    description: str = "",
    servers: Sequence[Mapping[str, Any]] | None = None,
) -> MergeResult:
    """``combine([fragment(spec) for spec in specs], ...)``: the platform's document from the services' specs."""
    return combine(
        [fragment(spec) for spec in specs], title=title, version=version, description=description, servers=servers
    )
