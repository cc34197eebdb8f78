"""How ``make test`` spreads the suite over pytest-xdist workers (``-n auto``).

The lab is one per machine (/var/lib/auto-lab), so every test module that uses it runs in one work unit, ``lab``,
on one worker, and first: it is the longest unit, and its tests mostly wait on Swarm while the other workers run
the CPU-bound modules beside it, each module a unit of its own (its module and session fixtures made once).

The units are told apart by node id alone (the controller never sees the items' marks), so the lab's modules are
listed here, and collection fails when a test that uses the lab sits in a module outside the list.
(xdist's own ``--dist loadgroup`` would read an ``xdist_group`` mark instead, but pytest 9 no longer lets it
rename the items it groups, so its groups fall apart.)
"""

from __future__ import annotations

from typing import Any

import pytest

LAB_UNIT = "lab"
# The modules with a test that uses the lab (a directory ends with "/").
LAB_MODULES = (
    "tests/e2e/",
    "tests/faults/",
    "tests/pipelines/test_lab_pipelines.py",
    "tests/pipelines/test_release_pipeline.py",
)


def unit_of(nodeid: str) -> str:
    """The work unit of a test: ``lab`` for the lab's modules, else its module's path."""
    module = nodeid.split("::", 1)[0]
    return LAB_UNIT if module.startswith(LAB_MODULES) else module


@pytest.hookimpl(trylast=True)  # after tests/conftest.py has marked every test that uses the lab
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Refuse a lab test outside LAB_MODULES (it would run beside the lab unit, on the same lab), then put the lab's
    unit first; the sort is stable and a pure function of the collection, as xdist needs every worker's order to
    be the same."""
    strays = sorted(
        {
            item.nodeid.split("::", 1)[0]
            for item in items
            if item.get_closest_marker("lab") and unit_of(item.nodeid) != LAB_UNIT
        }
    )
    if strays:
        raise pytest.UsageError(
            f"{', '.join(strays)} use(s) the lab: add the module to LAB_MODULES in tests/scheduling.py, so that its "
            "tests run in the lab's xdist unit"
        )
    items.sort(key=lambda item: unit_of(item.nodeid) != LAB_UNIT)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """xdist's loadscope scheduling, with ``unit_of`` as the scope, in collection order (the lab's unit first)."""
    from xdist.scheduler import LoadScopeScheduling

    class LabFirst(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return unit_of(nodeid)

    config.option.loadscopereorder = False  # by test count, the lab's unit would not come first
    return LabFirst(config, log)
