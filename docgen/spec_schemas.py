"""The JSON Schema of each OpenAPI version, as openapi-spec-validator ships and applies it, without its start-up.

openapi-spec-validator's schema check is ``validator_for(schema)(schema)`` over the schema files it ships
(``resources/schemas/v{2.0,3.0,3.1,3.2}/schema.json``), with jsonschema-rs for "is it valid?" when installed.
Importing the package costs a quarter of a second (pydantic-settings, requests, jsonschema-path), paid by
every ``auto-docs`` run, so the same files are read straight from where it is installed and the same two
validators are built here, once per process and version. ``tests/docgen/test_spec_schemas.py`` checks that
the files and the version detection stay what openapi-spec-validator uses.
"""

from __future__ import annotations

import importlib.util
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

# openapi-spec-validator's SpecVersionFinder: the first keyword present whose value starts major.minor.
_VERSIONS = (("swagger", "2.0"), ("openapi", "3.0"), ("openapi", "3.1"), ("openapi", "3.2"))
_MAJOR_MINOR = re.compile(r"(?P<major>\d+)\.(?P<minor>\d+)(\..*)?")


@dataclass(frozen=True)
class VersionSchema:
    """One version's JSON Schema with its validators: ``precise`` (jsonschema: every error, explained) and
    ``fast`` (jsonschema-rs, or None when it is not installed)."""

    version: str
    schema: dict[str, Any]
    precise: Any
    fast: Any


def spec_version(document: dict[str, Any]) -> str | None:
    """``"2.0"``, ``"3.0"``, ``"3.1"`` or ``"3.2"`` as openapi-spec-validator detects it; None when it cannot."""
    for keyword, version in _VERSIONS:
        value = document.get(keyword)
        if not isinstance(value, str):
            continue
        match = _MAJOR_MINOR.match(value)
        if match and f"{match['major']}.{match['minor']}" == version:
            return version
    return None


def _schemas_dir() -> Path:
    """Where openapi-spec-validator's schema files are, found without importing the package."""
    found = importlib.util.find_spec("openapi_spec_validator")
    if found is None or not found.submodule_search_locations:
        raise RuntimeError("openapi-spec-validator is not installed (pip install openapi-spec-validator)")
    return Path(next(iter(found.submodule_search_locations))) / "resources" / "schemas"


@cache
def version_schema(version: str) -> VersionSchema:
    """The schema and validators of ``version`` (one of :func:`spec_version`'s answers), built once."""
    from jsonschema.validators import validator_for

    schema = json.loads((_schemas_dir() / f"v{version}" / "schema.json").read_text(encoding="utf-8"))
    precise = validator_for(schema)(schema)
    try:
        import jsonschema_rs

        fast = jsonschema_rs.validator_cls_for(schema)(schema)
    except ImportError:  # pragma: no cover - a dependency; without it jsonschema checks everything
        fast = None
    return VersionSchema(version, schema, precise, fast)
