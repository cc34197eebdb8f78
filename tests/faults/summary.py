"""The fault matrix's summary: every case's measures, printed at the end of the session and written to
``fault-matrix.json`` in the session's temporary directory.

A plugin of the root conftest (``pytest_plugins``): a case's measures travel in its test's teardown report
(``user_properties``, filled by the ``fault`` fixture), so the summary is the same whether the session runs in one
process or under pytest-xdist, where the cases run in a worker and this runs in the controller, which never loads
tests/faults/conftest.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

MEASURE_PROPERTY = "fault-matrix"
_SEEN: list[dict[str, Any]] = []  # the measures of every case this session, from the reports


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _SEEN.extend(value for name, value in report.user_properties if name == MEASURE_PROPERTY)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """The matrix's figures: per case, the time to detect and the requests that failed through HAProxy."""
    if not _SEEN or hasattr(config, "workerinput"):  # a worker's summary is nobody's to read
        return
    measures = sorted(_SEEN, key=lambda m: m["case"])
    path = Path(str(config._tmp_path_factory.getbasetemp())) / "fault-matrix.json"  # type: ignore[attr-defined]
    path.write_text(json.dumps(measures, indent=2))
    write = terminalreporter.write_line
    terminalreporter.section("fault matrix")
    write(f"{'case':>4}  {'exit':>4}  {'detect s':>8}  {'requests':>8}  {'failed':>6}  {'ran s':>6}  fault")
    for m in measures:
        detect = "-" if m["detect_seconds"] is None else f"{m['detect_seconds']:.2f}"
        status = "" if m["passed"] else "  (FAILED)"
        write(
            f"{m['case']:>4}  {m['exit_code']:>4}  {detect:>8}  {m['requests']:>8}  {m['failed_requests']:>6}"
            f"  {m['seconds']:>6.1f}  {m['fault']}{status}"
        )
    write(f"measures: {path}")
