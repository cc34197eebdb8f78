"""The dialect check asks jsonschema-rs first: it must never call a schema valid that jsonschema refuses."""

from __future__ import annotations

from typing import Any

import pytest

from docgen.spec_dialect import dialect_checker

SCHEMAS: list[tuple[str, dict[str, Any], bool]] = [
    ("3.0", {"type": "string", "pattern": "^\\p{L}+$"}, True),  # ECMA-262 with the u flag: valid
    ("3.0", {"type": "string", "pattern": "(unclosed"}, False),
    ("3.0", {"type": "string", "minLength": -1}, False),
    ("3.0", {"type": "object", "properties": {"a": {"type": "strin"}}}, False),
    ("3.0", {"type": "array", "items": {"$ref": "#/components/schemas/A"}}, True),
    ("3.1", {"type": ["string", "null"], "pattern": "^[a-z]+$"}, True),
    ("3.1", {"type": "string", "pattern": "[z-a]"}, False),
    ("3.1", {"$ref": "#/$defs/x", "description": "siblings are fine in 3.1"}, True),
    ("3.1", {"type": "object", "required": "name"}, False),
    ("3.1", {"patternProperties": {"^x-(": {}}}, False),
]


@pytest.mark.parametrize(("family", "schema", "valid"), SCHEMAS, ids=lambda v: str(v)[:40])
def test_jsonschema_rs_and_jsonschema_give_one_verdict(family: str, schema: dict[str, Any], valid: bool) -> None:
    checker = dialect_checker(family, None)
    assert checker is not None and checker._fast is not None
    precise = list(checker._explain(schema))
    assert (precise == []) is valid
    assert checker._fast.is_valid(schema) is valid
    assert [e.message for e in checker.errors(schema)] == [e.message for e in precise]


def test_an_unknown_dialect_is_not_judged() -> None:
    assert dialect_checker("3.1", "https://example.invalid/dialect") is None
