"""Presentation: receives each request's payload, hands it to the controller, and shapes the response.

No business rule and no data access here. Request bodies are described with pydantic models so that the
OpenAPI document (``openapi.json``) is generated from this code.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel{% if cookiecutter.example_resource == "yes" %}, Field{% endif %}

from .controller import Controller

router = APIRouter()


class Problem(BaseModel):
    """An error response (RFC 9457 problem details)."""

    type: str
    title: str
    status: int
    detail: str


class Health(BaseModel):
    """The service is up and its dependencies answer."""

    status: str


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the problem documents an endpoint can return (``app.py`` adds the schema)."""
    content = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    return {code: {"description": HTTPStatus(code).phrase, "content": content} for code in codes}


def controller(request: Request) -> Controller:
    """The controller the app was created with."""
    return request.app.state.controller


@router.get("/health", response_model=Health, responses=problems(503), tags=["health"])
def health(request: Request) -> dict[str, str]:
    """Whether the service and its dependencies answer (used by Docker's HEALTHCHECK and the deployer)."""
    return controller(request).handle("health", {})
{% if cookiecutter.example_resource == "yes" %}

class ItemIn(BaseModel):
    """An item to create or validate."""

    name: str = Field(description="unique, 1-64 characters", examples=["widget"])
    quantity: int = Field(description="from 1 to 1000", examples=[3])


class Item(ItemIn):
    """A stored item."""

    id: str


class Validation(BaseModel):
    """The item passes every business rule."""

    valid: bool


@router.post("/items", status_code=201, response_model=Item, responses=problems(400, 409, 422, 503), tags=["items"])
def create_item(item: ItemIn, request: Request) -> dict[str, object]:
    """Create an item."""
    return controller(request).handle("items.create", item.model_dump())


@router.post("/items/validate", response_model=Validation, responses=problems(400, 422), tags=["items"])
def validate_item(item: ItemIn, request: Request) -> dict[str, bool]:
    """Check an item against the business rules without storing it."""
    return controller(request).handle("items.validate", item.model_dump())


@router.delete("/items/{item_id}", status_code=204, responses=problems(404, 503), tags=["items"])
def delete_item(item_id: str, request: Request) -> None:
    """Delete an item."""
    controller(request).handle("items.delete", {"id": item_id})
{%- endif %}
