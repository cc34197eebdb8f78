"""Fixtures for every test package: the lab (real Docker Engines in swarm mode over TLS), one per session.

When CI=true a lab that cannot start FAILS the tests that use it; elsewhere they are skipped with the reason.
"""

from __future__ import annotations

import pytest

from tests.support import Lab, start_lab


@pytest.fixture(scope="session")
def lab() -> Lab:
    """Bring the lab up (idempotent) and hand out its environment; it stays up for later runs."""
    return start_lab()
