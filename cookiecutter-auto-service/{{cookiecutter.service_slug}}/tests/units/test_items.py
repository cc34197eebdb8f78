"""The example resource, layer by layer: one failing path for each exception class."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from flexmock import flexmock

from {{ cookiecutter.__package_name }}.adapter import ItemStore
from {{ cookiecutter.__package_name }}.controller import Controller
from {{ cookiecutter.__package_name }}.exceptions import (
    Conflict,
    NotFound,
    UpstreamUnavailable,
    ValidationFailed,
)


def test_create_and_delete(client: TestClient) -> None:
    """The happy path through all three layers."""
    created = client.post("/items", json={"name": "widget", "quantity": 3})
    assert created.status_code == 201
    item = created.json()
    assert item["name"] == "widget" and item["quantity"] == 3 and item["id"]
    assert client.delete(f"/items/{item['id']}").status_code == 204


def test_validate_accepts(client: TestClient) -> None:
    """A good item is valid and is not stored."""
    response = client.post("/items/validate", json={"name": "widget", "quantity": 3})
    assert response.status_code == 200
    assert response.json() == {"valid": True}


# --- API layer: MalformedRequest ----------------------------------------------------------------------------------


def test_malformed_payload_is_400(client: TestClient) -> None:
    """A payload that is not the documented shape never reaches the controller."""
    flexmock(Controller).should_receive("handle").never()
    response = client.post("/items", json={"name": "widget"})
    assert response.status_code == 400
    problem = response.json()
    assert problem["type"] == "malformed-request"
    assert "quantity" in problem["detail"]


# --- controller layer: ValidationFailed ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        ({"name": "  ", "quantity": 1}, "blank"),
        ({"name": "x" * 65, "quantity": 1}, "at most 64"),
        ({"name": "widget", "quantity": 0}, "from 1 to 1000"),
    ],
)
def test_validation_failed(controller: Controller, payload: dict[str, object], words: str) -> None:
    """The controller names the rule broken."""
    with pytest.raises(ValidationFailed, match=words):
        controller.handle("items.validate", payload)


def test_invalid_item_is_not_stored(controller: Controller, store: ItemStore) -> None:
    """Create validates first and never calls the adapter for a bad item."""
    flexmock(store).should_receive("create").never()
    with pytest.raises(ValidationFailed):
        controller.handle("items.create", {"name": "widget", "quantity": 5000})


def test_validation_failed_is_422(client: TestClient) -> None:
    """Over HTTP, ValidationFailed is 422."""
    response = client.post("/items/validate", json={"name": "widget", "quantity": -1})
    assert response.status_code == 422
    assert response.json()["type"] == "validation-failed"


# --- adapter layer: Conflict, NotFound, UpstreamUnavailable --------------------------------------------------------


def test_conflict(store: ItemStore) -> None:
    """Two items may not share a name."""
    store.create("widget", 1)
    with pytest.raises(Conflict, match="already exists"):
        store.create("widget", 2)


def test_conflict_is_409(client: TestClient) -> None:
    """Over HTTP, Conflict is 409."""
    assert client.post("/items", json={"name": "widget", "quantity": 1}).status_code == 201
    assert client.post("/items", json={"name": "widget", "quantity": 1}).status_code == 409


def test_not_found(store: ItemStore) -> None:
    """Deleting what is not there."""
    with pytest.raises(NotFound):
        store.delete("nope")


def test_not_found_is_404(client: TestClient) -> None:
    """Over HTTP, NotFound is 404."""
    response = client.delete("/items/nope")
    assert response.status_code == 404
    assert response.json()["detail"] == "no item with id 'nope'"


def test_upstream_unavailable(store: ItemStore) -> None:
    """A store that does not answer."""
    store.online = False
    with pytest.raises(UpstreamUnavailable):
        store.create("widget", 1)


def test_upstream_unavailable_is_503(store: ItemStore, client: TestClient) -> None:
    """Over HTTP, UpstreamUnavailable from the adapter is 503 (the adapter mocked with flexmock)."""
    flexmock(store).should_receive("create").with_args("widget", 1).and_raise(UpstreamUnavailable("down")).once()
    response = client.post("/items", json={"name": "widget", "quantity": 1})
    assert response.status_code == 503
    assert response.json()["detail"] == "down"
