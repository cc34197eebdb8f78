"""Building blocks of the extension: untrusted values as plain-text docutils nodes, never parsed as markup.

Every string that comes from a spec or a data file goes through :func:`display_text` (control characters
removed) into ``Text``/``literal``/``paragraph`` nodes; links between the portal's pages are ``pending_xref``
nodes that Sphinx resolves.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from docutils import nodes
from sphinx import addnodes

__all__ = [
    "Ids",
    "as_dict",
    "as_list",
    "display_text",
    "doc_link",
    "make_table",
    "paragraphs",
    "relative_root",
    "shorten",
]

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")


def display_text(value: Any) -> str:
    """An untrusted value as display text (control characters removed)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        value = json.dumps(value, ensure_ascii=False, default=str)
    return _CONTROL.sub("", value)


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` if it is a mapping, else an empty one (untrusted data has any shape)."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    """``value`` if it is a list, else an empty one."""
    return value if isinstance(value, list) else []


def paragraphs(value: Any, classes: Iterable[str] = ()) -> list[nodes.paragraph]:
    """Plain-text paragraphs: descriptions are never parsed as Markdown or HTML."""
    text = display_text(value).strip()
    if not text:
        return []
    return [
        nodes.paragraph(part.strip(), part.strip(), classes=list(classes))
        for part in _PARAGRAPH_BREAK.split(text)
        if part.strip()
    ]


def shorten(value: str, limit: int = 80) -> str:
    """``value`` cut to ``limit`` characters, with an ellipsis when it was longer."""
    return value if len(value) <= limit else value[: limit - 1] + "…"


def doc_link(target: str, text: str, refdoc: str) -> addnodes.pending_xref:
    """A link to another document (``target`` absolute, like ``/api/orders``), resolved by Sphinx."""
    xref = addnodes.pending_xref(
        "", refdomain="std", reftype="doc", reftarget=target, refexplicit=True, refwarn=True, refdoc=refdoc
    )
    xref += nodes.inline(text, text)
    return xref


def relative_root(docname: str) -> str:
    """From the HTML page of ``docname`` back to the site root (html builder: one file per document)."""
    return "../" * docname.count("/")


class Ids:
    """Unique, deterministic HTML ids for one document."""

    def __init__(self, document: nodes.document) -> None:
        self.document = document
        self.used: set[str] = set()

    def new(self, base: str) -> str:
        stem = nodes.make_id(base) or "id"
        candidate, n = stem, 1
        while candidate in self.used or candidate in self.document.ids:
            n += 1
            candidate = f"{stem}-{n}"
        self.used.add(candidate)
        return candidate


def make_table(headers: list[str], rows: list[list[list[nodes.Node]]], *classes: str) -> nodes.table:
    """A table with a header row; each cell is a list of nodes (paragraphs, or inline nodes wrapped in one)."""
    table = nodes.table(classes=["docgen-table", *classes])
    group = nodes.tgroup(cols=len(headers))
    table += group
    for _ in headers:
        group += nodes.colspec(colwidth=1)
    head_row = nodes.row()
    for header in headers:
        head_row += nodes.entry("", nodes.paragraph(header, header))
    group += nodes.thead("", head_row)
    body = nodes.tbody()
    for cells in rows:
        row = nodes.row()
        for cell in cells:
            entry = nodes.entry()
            if cell and all(isinstance(n, nodes.paragraph) for n in cell):
                entry.extend(cell)
            elif cell:
                entry += nodes.paragraph("", "", *cell)
            row += entry
        body += row
    group += body
    return table
