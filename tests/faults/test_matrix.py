"""The fault matrix's bookkeeping, without the lab: every row has its test, every test its row, README agrees."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from tests.faults import readme_table
from tests.faults.matrix import BY_NUMBER, ROWS

CASE_TEST = re.compile(r"^test_case_(\d\d)_")
MODULES = sorted(p.stem for p in Path(__file__).parent.glob("test_*_faults.py"))


def case_tests() -> dict[int, list[str]]:
    """``{case number: [module::test, ...]}`` of every ``test_case_NN_…`` in the fault modules."""
    found: dict[int, list[str]] = {}
    for module_name in MODULES:
        module = importlib.import_module(f"tests.faults.{module_name}")
        for name in dir(module):
            if match := CASE_TEST.match(name):
                found.setdefault(int(match.group(1)), []).append(f"{module_name}::{name}")
    return found


def test_every_row_has_exactly_one_test_and_every_test_a_row() -> None:
    tests = case_tests()
    assert sorted(tests) == sorted(BY_NUMBER), "rows without a test, or tests without a row"
    assert all(len(names) == 1 for names in tests.values()), tests
    assert len(ROWS) == len(BY_NUMBER)  # no number twice


def test_readme_has_the_generated_table() -> None:
    text = readme_table.README.read_text()
    assert readme_table.current(text) == readme_table.block(), (
        "README's fault matrix is out of date: python -m tests.faults.readme_table --write"
    )
