"""Fixtures for the docs portal's site tests: a small portal with two published services and a quarantined one."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from docgen.site import Portal, ServicePage
from tests.support import unavailable

# A page that tries everything a team's Markdown must not be able to do.
HOSTILE_MD = b"""# Hostile page

<script>window.__pwned = 1; alert(1)</script>

Inline <img src=x onerror="window.__pwned = 1; alert(1)"> HTML.

```{raw} html
<script>window.__pwned = 1; alert('raw')</script>
```

```{eval-rst}
.. raw:: html

   <script>window.__pwned = 1; alert('eval-rst')</script>

.. include:: /etc/passwd

`rst link <javascript:alert(1)>`_
```

```{include} /etc/passwd
```

```{literalinclude} /etc/passwd
```

```{csv-table} Read the build machine
:file: /etc/passwd
```

```{csv-table} Fetch from the network
:url: http://127.0.0.1:9/x.csv
```

```{docgen-api} ../../../../etc/passwd
```

```{docgen-quarantine} legacy
```

[click me](javascript:alert(1))

![remote](https://example.com/a.png)

![inline data](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)

![escape](../../../../../../etc/passwd)

```{math}
e^{i\\pi} + 1 = 0
```

The end of the hostile page.
"""

# Front matter that would switch MyST's substitution extension on (unsandboxed Jinja2 with `env` in scope).
FRONT_MATTER_MD = b"""---
myst:
  enable_extensions: ["substitution"]
  substitutions:
    answer: "42"
html_meta:
  http-equiv=refresh: "0; url=https://example.com/"
orphan: true
---

# Front matter

Value: {{ env.__class__.__name__ }} and {{ answer }}.
"""


def _operation(summary: str, op_id: str, tag: str, **extra: Any) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": op_id,
        "summary": summary,
        "tags": [tag],
        "responses": {"200": {"description": "OK"}},
    }
    op.update(extra)
    return op


def service_spec(name: str, version: str = "v1", *, description: str = "Orders placed by customers.") -> dict:
    """A standalone OpenAPI 3.1.0 document shaped like the orchestrator's per-service documents."""
    base = f"/api/{name}/{version}"
    tag = f"{name}: items"
    item = f"{name}.Item"
    return {
        "openapi": "3.1.0",
        "info": {"title": f"{name} API", "version": version, "description": description},
        "tags": [{"name": tag, "description": f"The {name} items."}],
        "paths": {
            f"{base}/items": {
                "get": _operation(
                    f"List {name} items",
                    f"{name}.listItems",
                    tag,
                    parameters=[
                        {
                            "name": "limit",
                            "in": "query",
                            "required": False,
                            "description": "How many items at most.",
                            "schema": {"type": "integer", "format": "int32"},
                        }
                    ],
                    responses={
                        "200": {
                            "description": "The items.",
                            "content": {
                                "application/json": {
                                    "schema": {"type": "array", "items": {"$ref": f"#/components/schemas/{item}"}}
                                }
                            },
                        }
                    },
                ),
                "post": _operation(
                    f"Create a {name} item",
                    f"{name}.createItem",
                    tag,
                    requestBody={
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{item}"}}},
                    },
                    responses={"201": {"description": "Created."}},
                ),
            },
            f"{base}/items/{{id}}": {
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "delete": _operation(f"Delete a {name} item", f"{name}.deleteItem", tag, deprecated=True),
            },
        },
        "components": {
            "schemas": {
                item: {
                    "type": "object",
                    "description": f"One {name} item.",
                    "required": ["id"],
                    "properties": {
                        "id": {"type": "string", "description": "Identifier."},
                        "state": {"type": "string", "enum": ["new", "done"]},
                        "tags": {"type": ["array", "null"], "items": {"type": "string"}},
                    },
                }
            }
        },
    }


def merged_spec(services: list[ServicePage]) -> dict[str, Any]:
    """A stand-in for the orchestrator's merged document: the services' paths and schemas together."""
    merged: dict[str, Any] = {"openapi": "3.1.0", "info": {"title": "Platform", "version": "1"}, "paths": {}}
    schemas: dict[str, Any] = {}
    for service in services:
        if service.api:
            merged["paths"].update(service.api["paths"])
            schemas.update(service.api["components"]["schemas"])
    merged["components"] = {"schemas": schemas}
    return merged


def sample_portal(*, hostile: bool = False) -> Portal:
    """Two published services (orders, billing) and a quarantined one (legacy); ``hostile`` adds attack pages."""
    orders_docs = {
        "index.md": b"# Orders\n\nThe orders service.\n\n```{toctree}\nusage\n```\n",
        "usage.md": b"# Using orders\n\nCall the API.\n\n![diagram](img/flow.png)\n",
        "img/flow.png": b"\x89PNG\r\n\x1a\n" + b"\0" * 16,
    }
    if hostile:
        orders_docs["hostile.md"] = HOSTILE_MD
        orders_docs["frontmatter.md"] = FRONT_MATTER_MD
        orders_docs["index.md"] += b"\n```{toctree}\nhostile\n```\n"
    services = [
        ServicePage(
            name="orders",
            version="v1",
            title="Orders",
            docs=orders_docs,
            api=service_spec("orders"),
            quarantine=[],
            source="https://git.example/orders",
        ),
        ServicePage(
            name="billing",
            version="v2",
            title="Billing",
            docs={"overview.md": b"# Billing overview\n\nInvoices.\n", "faq.md": b"# FAQ\n\nNone yet.\n"},
            api=service_spec("billing", "v2", description="Invoices and payments."),
            quarantine=[],
        ),
        ServicePage(
            name="legacy",
            version="v1",
            title="Legacy",
            docs={"notes.md": b"# Legacy notes\n\nOld.\n"},
            api=None,
            quarantine=["spec has 2 validation issue(s): $.paths is missing", "operationId clash with orders"],
        ),
    ]
    return Portal(
        title="AUTO platform",
        guide={
            "index.md": b"# Platform guide\n\nHow to use the platform.\n\n```{toctree}\nstart\n```\n",
            "start.md": b"# Getting started\n\nStart here.\n",
        },
        services=services,
        merged=merged_spec(services),
    )


@pytest.fixture
def make_portal() -> Callable[..., Portal]:
    """The :func:`sample_portal` factory."""
    return sample_portal


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Validating and merging are offline: any connection attempt fails the test (modules opt in with
    ``pytestmark = pytest.mark.usefixtures("no_network")``)."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


# The suite's Chromium (Debian's), for the browser tests: headless, no network of its own.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed")
    if not os.access(CHROMIUM, os.X_OK):
        unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        except Error as exc:
            unavailable(f"Chromium does not start: {exc}")
        yield chromium
        chromium.close()
