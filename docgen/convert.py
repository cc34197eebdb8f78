"""Any supported spec version to OpenAPI 3.1.0: Swagger 2.0 (through :mod:`docgen.swagger2`) and OpenAPI 3.0.x.

Pure: the input is never changed and the result shares nothing with it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from docgen.swagger2 import swagger2_to_openapi30
from docgen.walk import Walker, plain_copy

OPENAPI_VERSION = "3.1.0"
_OPENAPI_30 = re.compile(r"^3\.0\.\d+")
_OPENAPI_31 = re.compile(r"^3\.1\.\d+")


def _upgrade_schema(node: dict[str, Any]) -> dict[str, Any]:
    """One OpenAPI 3.0 Schema Object as JSON Schema 2020-12 (its subschemas are already upgraded)."""
    nullable = node.get("nullable") is True
    if "$ref" in node:
        # 3.0 ignores whatever sits next to $ref, except that authors mean nullable: keep that meaning.
        reference = {"$ref": node["$ref"]}
        return {"anyOf": [reference, {"type": "null"}]} if nullable else reference
    out = dict(node)
    out.pop("nullable", None)
    for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        flag = out.get(bound)
        if isinstance(flag, bool):  # 3.0 flags the bound; 3.1 holds the number
            del out[bound]
            if flag and limit in out:
                out[bound] = out.pop(limit)
    if not nullable:
        return out
    kind = out.get("type")
    if kind is None:
        return {"anyOf": [out, {"type": "null"}]}
    if isinstance(kind, str):
        out["type"] = [kind, "null"]
    elif isinstance(kind, list) and "null" not in kind:
        out["type"] = [*kind, "null"]
    if isinstance(out.get("enum"), list) and None not in out["enum"]:
        out["enum"] = [*out["enum"], None]  # 3.0's nullable let null through an enum; 3.1 needs it listed
    return out


def _upgrade_openapi30(doc: dict[str, Any]) -> dict[str, Any]:
    doc["openapi"] = OPENAPI_VERSION
    return Walker(schema=_upgrade_schema, keep_ref_siblings=False).document(doc)


def to_openapi31(document: Mapping[str, Any]) -> dict[str, Any]:
    """Convert Swagger 2.0 or OpenAPI 3.0.x to 3.1.0 (3.1 input is copied unchanged).

    Swagger 2.0's host, basePath and schemes become ``servers``. Raises ``ValueError`` for any other version.
    """
    doc = plain_copy(document)
    if str(doc.get("swagger")) == "2.0":
        # plain_copy again: the converter may place one object at two places (a schema under two media types).
        return _upgrade_openapi30(plain_copy(swagger2_to_openapi30(doc)))
    version = str(doc.get("openapi", ""))
    if _OPENAPI_30.match(version):
        return _upgrade_openapi30(doc)
    if _OPENAPI_31.match(version):
        return doc
    found = doc.get("openapi", doc.get("swagger"))
    raise ValueError(f"not a Swagger 2.0 or OpenAPI 3.0/3.1 document (version {found!r})")
