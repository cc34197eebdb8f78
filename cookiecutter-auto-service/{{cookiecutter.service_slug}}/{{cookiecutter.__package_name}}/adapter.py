"""Data access: every external call and every CRUD operation goes through here, and nowhere else.

{% if cookiecutter.example_resource == "yes" -%}
The example store keeps items in memory; replace ``ItemStore``'s body with calls to the real database or
service and keep its interface (and its exceptions) the same.
{%- else -%}
Add the service's data access here (one method per external call or CRUD operation), raising only the
adapter's exceptions from ``exceptions.py``.
{%- endif %}
"""

from __future__ import annotations
{% if cookiecutter.example_resource == "yes" %}
import threading
import uuid
from dataclasses import asdict, dataclass

from .exceptions import Conflict, NotFound, UpstreamUnavailable


@dataclass(frozen=True)
class ItemRecord:
    """One stored item."""

    id: str
    name: str
    quantity: int


class ItemStore:
    """The example resource's store (in memory, thread-safe)."""

    def __init__(self) -> None:
        self._items: dict[str, ItemRecord] = {}
        self._lock = threading.Lock()
        self.online = True  # set False to simulate an outage of the real store

    def _check_online(self) -> None:
        if not self.online:
            raise UpstreamUnavailable("the item store is not answering; try again later")

    def ping(self) -> None:
        """Raise ``UpstreamUnavailable`` unless the store answers."""
        self._check_online()

    def create(self, name: str, quantity: int) -> dict[str, object]:
        """Store a new item; ``Conflict`` if one of that name exists."""
        self._check_online()
        with self._lock:
            if any(item.name == name for item in self._items.values()):
                raise Conflict(f"an item named {name!r} already exists")
            record = ItemRecord(id=uuid.uuid4().hex, name=name, quantity=quantity)
            self._items[record.id] = record
        return asdict(record)

    def delete(self, item_id: str) -> None:
        """Remove an item; ``NotFound`` if there is none with that id."""
        self._check_online()
        with self._lock:
            if self._items.pop(item_id, None) is None:
                raise NotFound(f"no item with id {item_id!r}")
{%- else %}
from .exceptions import UpstreamUnavailable


class Store:
    """The service's data access. It has no store yet: ``ping`` is what ``/health`` asks."""

    def __init__(self) -> None:
        self.online = True  # set False to simulate an outage

    def ping(self) -> None:
        """Raise ``UpstreamUnavailable`` unless every dependency answers."""
        if not self.online:
            raise UpstreamUnavailable("a dependency is not answering; try again later")
{%- endif %}
