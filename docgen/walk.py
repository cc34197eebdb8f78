"""Walking OpenAPI documents: JSON pointers, ``$ref`` rewriting and a typed visitor of OpenAPI 3.x objects.

The shared ground of :mod:`docgen.swagger2`, :mod:`docgen.convert` and :mod:`docgen.merge`: nothing here knows
about services or versions, only how an OpenAPI document is laid out and how its references are written.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote, unquote

from docgen.validate import METHODS

# Keys whose values are data (examples, defaults, enums), where a "$ref" key is just data.
DATA_KEYS = frozenset({"example", "examples", "default", "enum", "const"})
# Characters a URI fragment may hold unencoded besides the unreserved ones (RFC 3986 pchar).
_FRAGMENT_SAFE = "!$&'()*+,;=:@"

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


def plain_copy(value: Any) -> Any:
    """A deep copy made of dicts and lists only: no Mapping proxies, tuples or objects shared by YAML anchors."""
    kind = type(value)
    if kind is dict:
        return {key: plain_copy(item) for key, item in value.items()}
    if kind is list:
        return [plain_copy(item) for item in value]
    if kind in _IMMUTABLE:
        return value
    if isinstance(value, Mapping):
        return {key: plain_copy(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain_copy(item) for item in value]
    return copy.deepcopy(value)


_IMMUTABLE = frozenset({str, int, float, bool, type(None)})


def pointer_tokens(ref: str) -> list[str] | None:
    """The tokens of a local ``#/a/b`` ref, percent-decoded then ``~1``/``~0`` unescaped; None for other refs."""
    if not ref.startswith("#/"):
        return None
    return [token.replace("~1", "/").replace("~0", "~") for token in unquote(ref[2:]).split("/")]


def to_pointer(tokens: Sequence[str]) -> str:
    """``['paths', '/a/{id}']`` -> ``#/paths/~1a~1%7Bid%7D``: a JSON pointer, percent-encoded for a URI fragment."""
    escaped = (quote(token.replace("~", "~0").replace("/", "~1"), safe=_FRAGMENT_SAFE) for token in tokens)
    return "#/" + "/".join(escaped)


def rewrite_refs(value: Any, rewrite: Callable[[str], str]) -> Any:
    """``value`` with every ``$ref`` rewritten, for parts whose structure is unknown (``x-`` extensions)."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "$ref" and isinstance(item, str):
                out[key] = rewrite(item)
            elif key in DATA_KEYS:
                out[key] = item
            else:
                out[key] = rewrite_refs(item, rewrite)
        return out
    if isinstance(value, list):
        return [rewrite_refs(item, rewrite) for item in value]
    return value


def is_ref(node: Any) -> bool:
    return isinstance(node, dict) and isinstance(node.get("$ref"), str)


def unique_name(candidate: str, taken: set[str] | Mapping[str, Any]) -> str:
    """``candidate``, or ``candidate_2``, ``candidate_3``... whichever is not taken yet."""
    if candidate not in taken:
        return candidate
    number = 2
    while f"{candidate}_{number}" in taken:
        number += 1
    return f"{candidate}_{number}"


# --------------------------------------------------------------------------- walking an OpenAPI 3.x document

OperationHook = Callable[[dict[str, Any], str], None]


class Walker:
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
        operation: OperationHook | None = None,
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
                node[key] = rewrite_refs(node[key], self.ref_hook)

    def _map(self, node: Any, visit: Callable[[Any], Any]) -> None:
        """``visit`` every value of a map (skipping ``x-`` extensions, which get their refs rewritten)."""
        if not isinstance(node, dict):
            return
        for key in node:
            if isinstance(key, str) and key.startswith("x-"):
                if self.ref_hook is not None:
                    node[key] = rewrite_refs(node[key], self.ref_hook)
            else:
                node[key] = visit(node[key])

    def _or_ref(self, visit: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def visit_or_ref(node: Any) -> Any:
            if not is_ref(node):
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
        if not isinstance(node, dict) or (self.ref_hook is None and self.schema_hook is None):
            return node  # nothing to do inside a schema: an operation or link walk does not descend
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
