"""Business logic: takes the payload the API hands on and routes it, by endpoint, to the rule that applies.

The controller never touches HTTP (that is the API's job) nor storage (the adapter's); it raises only the
controller's exceptions and lets the adapter's pass through.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

{% if cookiecutter.example_resource == "yes" -%}
from .adapter import ItemStore
from .exceptions import ValidationFailed

MAX_QUANTITY = 1000
NAME_MAX = 64


class Controller:
    """Routes each endpoint's payload to its operation."""

    def __init__(self, store: ItemStore) -> None:
        self.store = store
        self._routes: dict[str, Callable[[dict[str, Any]], Any]] = {
            "health": lambda _payload: self.health(),
            "items.create": self.create_item,
            "items.validate": self.validate_item,
            "items.delete": self.delete_item,
        }

    def handle(self, endpoint: str, payload: dict[str, Any]) -> Any:
        """Run the operation behind ``endpoint`` with ``payload``."""
        try:
            operation = self._routes[endpoint]
        except KeyError:
            raise LookupError(f"no operation for endpoint {endpoint!r}") from None  # a programming error: 500
        return operation(payload)

    def health(self) -> dict[str, str]:
        """Healthy when the store answers."""
        self.store.ping()
        return {"status": "ok"}

    def validate_item(self, payload: dict[str, Any]) -> dict[str, bool]:
        """Check an item against the business rules; ``ValidationFailed`` names the first rule broken."""
        name = payload["name"].strip()
        quantity = payload["quantity"]
        if not name:
            raise ValidationFailed("name must not be blank")
        if len(name) > NAME_MAX:
            raise ValidationFailed(f"name must be at most {NAME_MAX} characters")
        if not 1 <= quantity <= MAX_QUANTITY:
            raise ValidationFailed(f"quantity must be from 1 to {MAX_QUANTITY}, not {quantity}")
        return {"valid": True}

    def create_item(self, payload: dict[str, Any]) -> dict[str, object]:
        """Validate, then store."""
        self.validate_item(payload)
        return self.store.create(payload["name"].strip(), payload["quantity"])

    def delete_item(self, payload: dict[str, Any]) -> None:
        """Delete by id."""
        self.store.delete(payload["id"])
{%- else -%}
from .adapter import Store


class Controller:
    """Routes each endpoint's payload to its operation."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._routes: dict[str, Callable[[dict[str, Any]], Any]] = {
            "health": lambda _payload: self.health(),
        }

    def handle(self, endpoint: str, payload: dict[str, Any]) -> Any:
        """Run the operation behind ``endpoint`` with ``payload``."""
        try:
            operation = self._routes[endpoint]
        except KeyError:
            raise LookupError(f"no operation for endpoint {endpoint!r}") from None  # a programming error: 500
        return operation(payload)

    def health(self) -> dict[str, str]:
        """Healthy when every dependency answers."""
        self.store.ping()
        return {"status": "ok"}
{%- endif %}
