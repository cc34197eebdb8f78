"""Fixtures of the fault matrix, and its summary: every case's measures, printed at the end of the session and
written to ``fault-matrix.json`` in the session's temporary directory."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.faults.harness import MEASURES, Case, case, wait_for
from tests.support import Lab

_REPORT: list[Path] = []


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
def fault(lab: Lab) -> Callable[[int], Case]:
    """``with fault(N) as case:`` runs case N of the matrix (see tests/faults/harness.py)."""
    return lambda number: case(lab, number)


@pytest.fixture(scope="session", autouse=True)
def _measures_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    yield
    if MEASURES:
        path = tmp_path_factory.getbasetemp() / "fault-matrix.json"
        path.write_text(json.dumps(sorted(MEASURES, key=lambda m: m["case"]), indent=2))
        _REPORT.append(path)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The matrix's figures: per case, the time to detect and the requests that failed through HAProxy."""
    if not MEASURES:
        return
    write = terminalreporter.write_line
    terminalreporter.section("fault matrix")
    write(f"{'case':>4}  {'exit':>4}  {'detect s':>8}  {'requests':>8}  {'failed':>6}  {'ran s':>6}  fault")
    for m in sorted(MEASURES, key=lambda m: m["case"]):
        detect = "-" if m["detect_seconds"] is None else f"{m['detect_seconds']:.2f}"
        status = "" if m["passed"] else "  (FAILED)"
        write(
            f"{m['case']:>4}  {m['exit_code']:>4}  {detect:>8}  {m['requests']:>8}  {m['failed_requests']:>6}"
            f"  {m['seconds']:>6.1f}  {m['fault']}{status}"
        )
    for path in _REPORT:
        write(f"measures: {path}")
