"""Fixtures of the fault matrix; its summary is tests/faults/summary.py."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.faults.harness import MEASURES, Case, case, wait_for
from tests.faults.summary import MEASURE_PROPERTY
from tests.support import Lab


@pytest.fixture(scope="module")
def front(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The front app (``demo`` stack, web:1 on port 18080) on the live colour behind HAProxy, for a whole module:
    what the request loop of every case goes through."""
    front = lab.front(tmp_path_factory.mktemp("front"))
    # HAProxy checks the new task before it sends it traffic: the cases' request loops start once it answers.
    url = lab.env["AUTO_LAB_FRONT_URL"] + "/"
    wait_for(lambda: all(_answers(url) for _ in range(5)), 30, f"the front app answering 200 at {url}", 0.2)
    return front


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def fault(lab: Lab, request: pytest.FixtureRequest) -> Iterator[Callable[[int], Case]]:
    """``with fault(N) as case:`` runs case N of the matrix (see tests/faults/harness.py); its measures go into
    the test's teardown report."""
    first = len(MEASURES)
    yield lambda number: case(lab, number)
    request.node.user_properties.extend((MEASURE_PROPERTY, m) for m in MEASURES[first:])
