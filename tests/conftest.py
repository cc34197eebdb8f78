"""Fixtures for every test package: the lab (real Docker Engines in swarm mode over TLS), one per session.

When CI=true a lab that cannot start FAILS the tests that use it; elsewhere they are skipped with the reason.
How the suite is spread over xdist workers, the lab's tests in one of them: tests/scheduling.py.
"""

from __future__ import annotations

import pytest

from tests.support import Lab, start_lab

pytest_plugins = ["tests.scheduling", "tests.faults.summary"]


@pytest.fixture(autouse=True)
def _outside_a_gitlab_job(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test sees the same output inside a GitLab job (the toolkit's own `unit` job) as outside one:
    GITLAB_CI turns on collapsible log sections. A test about sections sets it itself."""
    monkeypatch.delenv("GITLAB_CI", raising=False)


@pytest.fixture(scope="session")
def lab() -> Lab:
    """Bring the lab up (idempotent) and hand out its environment; it stays up for later runs."""
    return start_lab()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that uses the lab is a ``lab`` test, marked or not: ``-m "not lab"`` leaves it out."""
    for item in items:
        if "lab" in getattr(item, "fixturenames", ()) and item.get_closest_marker("lab") is None:
            item.add_marker(pytest.mark.lab)
