"""Swagger 2.0 to OpenAPI 3.0: one document converted, object by object (upgraded to 3.1 by :mod:`docgen.convert`).

Body and formData parameters become request bodies (multipart when a file is among them), ``consumes`` and
``produces`` become media types, ``collectionFormat`` becomes ``style``/``explode``, ``definitions``,
``parameters`` and ``responses`` move under ``components`` with every ``$ref`` pointing at their new place.
"""

from __future__ import annotations

from typing import Any

from docgen.validate import METHODS
from docgen.walk import DATA_KEYS, is_ref, pointer_tokens, rewrite_refs, to_pointer

_JSON = "application/json"
_URLENCODED = "application/x-www-form-urlencoded"
_MULTIPART = "multipart/form-data"

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
        tokens = pointer_tokens(ref)
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
        return to_pointer(["components", kind, *tokens[1:]])

    def generic(self, value: Any) -> Any:
        return rewrite_refs(value, self.ref)

    def resolve_param(self, raw: Any) -> tuple[Any, dict[str, Any]]:
        """``(raw, parameter)``: a ``#/parameters/X`` reference followed to the root parameter it names."""
        if is_ref(raw):
            tokens = pointer_tokens(raw["$ref"])
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
            out["requestBody"] = {"$ref": self.ref(raw["$ref"])} if is_ref(raw) else self.request_body(param, consumes)
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
        if is_ref(raw):
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
        if is_ref(items):
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
        if is_ref(response):
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
            elif key in DATA_KEYS:
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


def swagger2_to_openapi30(doc: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI 3.0.3 form of a Swagger 2.0 document (which is not changed; parts of it may be shared)."""
    return _Swagger2(doc).document()
