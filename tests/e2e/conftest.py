"""Fixtures of the end-to-end tests on the lab (the ``lab`` fixture itself is in tests/conftest.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.support import Lab


@pytest.fixture
def stack(lab: Lab) -> Iterator[str]:
    """A fresh stack name on the live colour, removed afterwards."""
    name = f"t{uuid.uuid4().hex[:8]}"
    yield name
    lab.remove_stack(name, wait=False)
