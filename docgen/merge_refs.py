"""Every reference of an OpenAPI 3.x document, wherever it sits: found, rewritten and checked the same way.

:mod:`docgen.merge` renames and moves what references point to, so every reference must follow, including
the ones a typed walk does not reach (inside ``x-`` extensions, in sections no schema describes). One
walk, :func:`ref_sites`, finds them all; :func:`rewrite_refs` (used by the merge) and :func:`check_refs`
(run on its result) both use it, so whatever the check looks at was rewritten.

What a reference is: a ``$ref`` string, a link's ``operationRef`` string, a discriminator's ``mapping``
value. What is data and never a reference: whatever sits under ``example``, ``default``, ``enum``,
``const``, ``x-example``, ``x-examples`` (as :mod:`docgen.validate` treats them), a list of ``examples``
(JSON Schema) and the ``value`` of an Example Object (the values of an ``examples`` map). Those keys are
keywords only in an object: in a map whose keys are names (``properties``, ``responses``, ``components/*``,
``headers``, ``content``...) a ``default`` response or a property named ``example`` is walked like any
other entry.

Both walks are iterative and linear in the size of the document; resolving a ref costs the length of its
pointer, each distinct ref once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

from autocore.text import json_path
from docgen.errors import InvalidSpecError
from docgen.walk import pointer_tokens

__all__ = [
    "DATA_KEYS",
    "DanglingRefError",
    "RefSite",
    "check_refs",
    "dangling_refs",
    "ref_sites",
    "resolves",
    "rewrite_refs",
]

# Keys of an object whose values are data, where "$ref" is just data (docgen.validate's _DATA_KEYS, plus the
# singular x-example of Swagger 2.0 parameters). "examples" is data when it is a list (JSON Schema).
DATA_KEYS = frozenset({"example", "default", "enum", "const", "x-example", "x-examples"})
# Keys of an object whose value is a map from names (not keywords) to objects.
_NAME_MAPS = frozenset(
    {
        "properties",
        "patternProperties",
        "dependentSchemas",
        "$defs",
        "definitions",
        "dependencies",
        "paths",
        "webhooks",
        "responses",
        "content",
        "headers",
        "links",
        "encoding",
        "variables",
        "scopes",
        "mapping",
        # Swagger 2.0 root sections (the documents merged are OpenAPI 3.1; kept for a complete walk)
        "parameters",
        "securityDefinitions",
    }
)
_INDEX = re.compile(r"0|[1-9][0-9]*")

# What a node is, for the walk.
_OBJECT = 0  # an object whose keys are keywords
_NAMES = 1  # a map from names to objects
_SECTIONS = 2  # the Components Object: every value is a map of names
_CALLBACKS = 3  # a map of Callback Objects: each one is itself a map (expression -> Path Item)
_EXAMPLES = 4  # a map of Example Objects: their "value" is data
_EXAMPLE = 5  # an Example Object


class RefSite(NamedTuple):
    """One reference: ``holder[key]`` is the ref string; ``kind`` is ``$ref``, ``operationRef`` or ``mapping``."""

    holder: dict[str, Any]
    key: str
    kind: str
    link: Any  # where the holder sits, for json_path (see _parts)


class DanglingRefError(InvalidSpecError):
    """A local ``$ref`` of a merged document (or of a service's fragment) does not resolve."""


def _child_kind(kind: int, key: Any, value: Any) -> int | None:
    """How to walk ``value`` found under ``key`` in a node of ``kind``; None when it is data."""
    if kind in (_NAMES, _SECTIONS, _CALLBACKS, _EXAMPLES):
        if kind == _SECTIONS:
            return _CALLBACKS if key == "callbacks" else _EXAMPLES if key == "examples" else _NAMES
        if kind == _CALLBACKS:
            return _NAMES  # a Callback Object: expressions -> Path Items
        if kind == _EXAMPLES:
            return _EXAMPLE
        return _OBJECT
    if key in DATA_KEYS or (kind == _EXAMPLE and key == "value"):
        return None
    if key == "examples":
        return _EXAMPLES if isinstance(value, dict) else None
    if key == "components":
        return _SECTIONS
    if key == "callbacks":
        return _CALLBACKS
    if key in _NAME_MAPS or key == "schemas" or key == "pathItems":
        return _NAMES
    return _OBJECT


def ref_sites(document: Any) -> Iterator[RefSite]:
    """Every reference of ``document`` (see the module's docstring), in document order.

    The holder may be changed in place (its value at ``key`` replaced) while iterating.
    """
    todo: list[tuple[Any, int, Any]] = [(document, _OBJECT, None)]
    while todo:
        node, kind, link = todo.pop()
        if isinstance(node, dict):
            children = []
            for key, value in node.items():
                if isinstance(value, str):
                    # A "$ref" anywhere: a Reference Object may stand for a map too (a Callback Object).
                    if key == "$ref" or (key == "operationRef" and kind == _OBJECT):
                        yield RefSite(node, key, key, link)
                    elif kind == _NAMES and link is not None and link[1] == "mapping" and _under_discriminator(link):
                        yield RefSite(node, key, "mapping", link)
                elif isinstance(value, dict | list):
                    child = _child_kind(kind, key, value)
                    if child is not None:
                        children.append((value, child, (link, key)))
            todo.extend(reversed(children))
        elif isinstance(node, list):
            # A list's items are objects (allOf, parameters, tags...); a list of data was skipped by its key.
            todo.extend((value, _OBJECT, (link, index)) for index, value in reversed(list(enumerate(node))))


def _under_discriminator(link: Any) -> bool:
    """Whether the map at ``link`` (reached by key "mapping") is the mapping of a Discriminator Object."""
    parent = link[0]
    return parent is not None and parent[1] == "discriminator"


def _parts(link: Any) -> list[Any]:
    parts: list[Any] = []
    while link is not None:
        link, key = link
        parts.append(key)
    parts.reverse()
    return parts


def rewrite_refs(document: Any, rewrite: Callable[[str], str], mapping: Callable[[str], str] | None = None) -> None:
    """Rewrite every reference of ``document`` in place: ``$ref`` and ``operationRef`` values with ``rewrite``,
    discriminator mapping values with ``mapping`` (default: ``rewrite`` for values starting with ``#``)."""
    rewrite_sites(list(ref_sites(document)), rewrite, mapping)


def rewrite_sites(
    sites: Iterable[RefSite], rewrite: Callable[[str], str], mapping: Callable[[str], str] | None = None
) -> None:
    """:func:`rewrite_refs` on references already found (``ref_sites`` of a document not changed since)."""
    for site in sites:
        value = site.holder[site.key]
        if site.kind == "mapping":
            if mapping is not None:
                site.holder[site.key] = mapping(value)
            elif value.startswith("#"):
                site.holder[site.key] = rewrite(value)
        else:
            site.holder[site.key] = rewrite(value)


def resolves(document: Any, ref: str) -> bool:
    """Whether the local ref ``#/...`` (a JSON Pointer in a URI fragment: percent-decoded, then ``~1`` and
    ``~0`` unescaped; list items by index) points at something in ``document``. ``#`` is the document."""
    if ref == "#":
        return True
    tokens = pointer_tokens(ref)
    if tokens is None:
        return False
    node = document
    for token in tokens:
        if isinstance(node, dict):
            if token not in node:
                return False
            node = node[token]
        elif isinstance(node, list):
            if not _INDEX.fullmatch(token) or int(token) >= len(node):
                return False
            node = node[int(token)]
        else:
            return False
    return True


def dangling_refs(document: Any) -> list[tuple[str, str]]:
    """``[(json path of the reference, ref)]`` for every local reference (``#/...``) that does not resolve."""
    known: dict[str, bool] = {}
    found: list[tuple[str, str]] = []
    for site in ref_sites(document):
        ref = site.holder[site.key]
        if not ref.startswith("#/"):
            continue  # another document, a "#anchor": not a JSON pointer into this one
        if ref not in known:
            known[ref] = resolves(document, ref)
        if not known[ref]:
            found.append((json_path([*_parts(site.link), site.key]), ref))
    return found


def check_refs(document: Any, what: str = "merged document") -> None:
    """Raise :class:`DanglingRefError` (one line: the first dangling ref, where it is, how many) unless every
    local reference of ``document`` resolves."""
    dangling = dangling_refs(document)
    if dangling:
        where, ref = dangling[0]
        message = f"{what}: {len(dangling)} $ref(s) do not resolve, the first is {ref!r} at {where}"
        raise DanglingRefError(message.replace("\r", "\\r").replace("\n", "\\n"))
