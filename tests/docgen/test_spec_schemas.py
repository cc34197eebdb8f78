"""docgen.spec_schemas reads openapi-spec-validator's schema files without importing it: the files, the version
detection and the verdicts must stay exactly what openapi-spec-validator itself uses."""

from __future__ import annotations

from typing import Any

import pytest
from openapi_spec_validator.shortcuts import get_validator_cls
from openapi_spec_validator.validation import exceptions as osv_errors

from docgen.spec_schemas import spec_version, version_schema
from docgen.validate import validate

VERSIONED: list[dict[str, Any]] = [
    {"swagger": "2.0"},
    {"openapi": "3.0.0"},
    {"openapi": "3.0.3"},
    {"openapi": "3.1.0"},
    {"openapi": "3.1.1-rc1"},
    {"openapi": "3.2.0"},
]
UNDETECTED: list[dict[str, Any]] = [
    {},
    {"swagger": "1.2"},
    {"openapi": "3"},
    {"openapi": "4.0.0"},
    {"openapi": "v3.0.0"},
    {"swagger": "3.0", "openapi": "2.0"},
]


@pytest.mark.parametrize("document", VERSIONED, ids=lambda d: str(d))
def test_the_schema_of_each_version_is_the_one_openapi_spec_validator_applies(document: dict[str, Any]) -> None:
    version = spec_version(document)
    assert version is not None
    assert version_schema(version).schema == dict(get_validator_cls(document).schema_validator.schema)


@pytest.mark.parametrize("document", UNDETECTED, ids=lambda d: str(d))
def test_a_document_openapi_spec_validator_cannot_place_is_not_placed(document: dict[str, Any]) -> None:
    assert spec_version(document) is None
    with pytest.raises(osv_errors.ValidatorDetectError):
        get_validator_cls(document)


def test_a_document_with_no_version_gets_the_one_message() -> None:
    issues = validate({"info": {"title": "t", "version": "1"}, "paths": {}}, service="s", source="s.yaml")
    assert [(i.path, i.message) for i in issues] == [
        ("$", "not a Swagger 2.0 or OpenAPI 3.x document: no valid 'swagger: \"2.0\"' or 'openapi: 3.x.y' key")
    ]


def test_validating_does_not_import_openapi_spec_validator() -> None:
    """Its import costs a quarter of a second on every run: only its schema files are used."""
    import subprocess
    import sys

    code = (
        "import sys; from docgen.validate import validate;"
        "validate({'openapi': '3.0.3', 'info': {'title': 't', 'version': '1'}, 'paths': {}}, service='s', source='s');"
        "print('openapi_spec_validator' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
