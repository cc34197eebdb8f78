"""The example resource over HTTP: create, validate, delete, and each error status."""

from __future__ import annotations

import uuid

import httpx


def test_item_lifecycle(http: httpx.Client) -> None:
    """Create, clash, delete, delete again."""
    name = f"widget-{uuid.uuid4().hex[:8]}"
    created = http.post("/items", json={"name": name, "quantity": 2})
    assert created.status_code == 201, created.text
    item_id = created.json()["id"]
    clash = http.post("/items", json={"name": name, "quantity": 2})
    assert clash.status_code == 409
    assert clash.headers["content-type"] == "application/problem+json"
    assert http.delete(f"/items/{item_id}").status_code == 204
    gone = http.delete(f"/items/{item_id}")
    assert gone.status_code == 404
    assert gone.json()["type"] == "not-found"


def test_validate(http: httpx.Client) -> None:
    """Validate answers 200 for a good item and 422 for a bad one."""
    assert http.post("/items/validate", json={"name": "ok", "quantity": 1}).json() == {"valid": True}
    bad = http.post("/items/validate", json={"name": "ok", "quantity": 0})
    assert bad.status_code == 422
    assert bad.json()["type"] == "validation-failed"


def test_malformed(http: httpx.Client) -> None:
    """A body that is not an item is 400."""
    response = http.post("/items", content=b"not json", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["type"] == "malformed-request"
