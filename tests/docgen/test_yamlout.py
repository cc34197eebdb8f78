"""The fast YAML writer: whatever it writes, PyYAML reads back as the same data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from docgen import yamlout

TRICKY = {
    "openapi": "3.1.0",
    "plain": "List orders",
    "keywords": ["yes", "No", "on", "OFF", "null", "~", "true", "y", "n", ".inf", "nan"],
    "numbers-as-text": ["1", "1.0", "0x1F", "1e3", "012", "-1", "+1", "1_000", "2024-01-01", "12:30"],
    "numbers": [0, -3, 1.5, 1e-07, 1e20, -0.0, 10**30, float("inf"), float("-inf")],
    "indicators": ["- a", "a: b", "a #b", "#x", "&a", "*a", "!t", "%p", "@x", "`x", "|", ">", "'q'", '"q"'],
    "brackets": ["[a]", "{a}", "a,b", "? a"],
    "spaces": [" lead", "trail ", "", " ", "a  b"],
    "lines": "one\ntwo\n\tthree\r\n",
    "unicode": ["żółć", "日本", "emoji 😀", "nel\x85", "ls\u2028", "bom\ufeff", "del\x7f", "c1\x9b"],
    "/api/orders/v1/orders/{orderId}": {"get": {"responses": {"200": {"description": "ok"}}}},
    "empty": {"map": {}, "list": [], "none": None},
    "nested": [[1, [2, []]], [{"a": [{"b": {}}]}], {"k": [[], {}]}],
    "booleans": [True, False],
    "200": "a numeric key",
}


def test_tricky_values_round_trip() -> None:
    text = yamlout.dump(TRICKY)
    assert yaml.safe_load(text) == json.loads(json.dumps(TRICKY))
    assert yamlout.dump({}) == "{}\n"
    assert yamlout.dump([1]) == "- 1\n"


def test_reads_like_pyyaml_block_style() -> None:
    data = {"paths": {"/a": {"get": {"tags": ["x", "z"], "parameters": [{"name": "id", "in": "path"}]}}}}
    assert yamlout.dump(data) == yaml.safe_dump(data, sort_keys=False)


@pytest.mark.system
def test_real_world_specs_round_trip() -> None:
    from tests.docgen.realworld import spec_paths

    try:
        paths = spec_paths()
    except RuntimeError as exc:
        pytest.skip(f"real-world corpus unavailable: {exc}")  # test_realworld.py fails in CI for this
    for path in paths:
        if path.suffix == ".json":
            data = json.loads(Path(path).read_text())
            assert yaml.load(yamlout.dump(data), Loader=yaml.CSafeLoader) == data, path
