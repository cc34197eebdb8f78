"""Building blocks of the extension: untrusted values as docutils nodes, never parsed as reStructuredText.

Every string that comes from a spec or a data file goes through :func:`display_text` (control characters
removed) into ``Text``/``literal``/``paragraph`` nodes; links between the portal's pages are ``pending_xref``
nodes that Sphinx resolves. Descriptions of an OpenAPI document are CommonMark: :func:`markdown` parses them
with markdown-it (no MyST directives or roles, raw HTML shown as text, links only http/https/mailto/relative,
no image loaded), and the page then goes through :mod:`docgen.sphinx_sanitise` like every docs page.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote

from docutils import nodes
from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode
from sphinx import addnodes

__all__ = [
    "Ids",
    "as_dict",
    "as_list",
    "display_text",
    "doc_link",
    "follow_ref",
    "make_table",
    "markdown",
    "paragraphs",
    "relative_root",
    "resolve_pointer",
    "safe_url",
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
            entry.extend(_blocks_of(cell))
            row += entry
        body += row
    group += body
    return table


def _is_inline(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Text | nodes.Inline)


def _blocks_of(cell: list[nodes.Node]) -> list[nodes.Node]:
    """A cell's nodes as body elements: each run of inline nodes in one paragraph, block nodes as they are."""
    out: list[nodes.Node] = []
    run: list[nodes.Node] = []
    for node in cell:
        if _is_inline(node):
            run.append(node)
            continue
        if run:
            out.append(nodes.paragraph("", "", *run))
            run = []
        out.append(node)
    if run:
        out.append(nodes.paragraph("", "", *run))
    return out


# --------------------------------------------------------------------------------------------------------------
# JSON pointers


def resolve_pointer(root: Any, ref: Any) -> tuple[bool, Any]:
    """``(found, value)`` of a local reference such as ``#/components/schemas/Pet`` inside ``root``."""
    if not isinstance(ref, str) or not ref.startswith("#"):
        return False, None
    node = root
    if ref in {"#", "#/"}:
        return True, node
    if not ref.startswith("#/"):
        return False, None
    for raw in ref[2:].split("/"):
        token = unquote(raw).replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return False, None
    return True, node


def follow_ref(
    root: Any, value: Any, seen: frozenset[str] = frozenset()
) -> tuple[dict[str, Any] | None, frozenset[str]]:
    """``value`` with its chain of local ``$ref`` followed inside ``root`` (siblings of a ``$ref`` kept over the
    target's, as OpenAPI 3.1 allows), and ``seen`` with every reference followed. None when the chain comes back
    to a reference in ``seen`` (a cycle); an empty mapping when a reference does not resolve."""
    for _ in range(16):
        value_dict = as_dict(value)
        ref = value_dict.get("$ref")
        if not isinstance(ref, str):
            return value_dict, seen
        if ref in seen:
            return None, seen
        seen = seen | {ref}
        found, target = resolve_pointer(root, ref)
        if not found:
            return {}, seen
        siblings = {k: v for k, v in value_dict.items() if k != "$ref"}
        value = {**as_dict(target), **siblings} if siblings else target
    return None, seen


# --------------------------------------------------------------------------------------------------------------
# CommonMark descriptions

MAX_MARKDOWN_CHARS = 20_000  # a description longer than this is cut (one description cannot fill a page)
_MARKDOWN = MarkdownIt("commonmark", {"html": True, "linkify": False, "typographer": False, "maxNesting": 20})
_MARKDOWN.enable(["table", "strikethrough"])
_URL_NOISE = re.compile(r"[\x00-\x20\x7f]")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
# Anything that can make CommonMark other than a plain paragraph: inline markup, entities, line starts.
_MARKUP = re.compile(r"[*_`\[\]<>#|~!&\\\n]|^\s*(?:[-+=]|\d+[.)]|\s{4})")
_LINE_BREAK_TAG = re.compile(r"<\s*br\s*/?\s*>", re.IGNORECASE)


def safe_url(url: Any) -> bool:
    """An http, https or mailto URL, or a relative one (no scheme), as a browser reads the scheme."""
    if not isinstance(url, str):
        return False
    match = _SCHEME.match(_URL_NOISE.sub("", url))
    return match is None or match.group(1).lower() in {"http", "https", "mailto"}


def markdown(value: Any, classes: Iterable[str] = ()) -> list[nodes.Node]:
    """A CommonMark description as docutils block nodes, in a ``docgen-markdown`` container.

    Headings become rubrics (they never make sections), raw HTML is shown as text (``<br>`` is a line break),
    a link keeps its URL only when :func:`safe_url` accepts it, an image becomes a link to it (nothing is
    loaded), code stays unhighlighted.
    """
    text = display_text(value).strip()
    if not text:
        return []
    if len(text) > MAX_MARKDOWN_CHARS:
        text = text[: MAX_MARKDOWN_CHARS - 1] + "…"
    if not _MARKUP.search(text):  # most descriptions: one plain paragraph
        return [nodes.container("", nodes.paragraph(text, text), classes=["docgen-markdown", *classes])]
    try:
        body = _md_blocks(_parse_markdown(text).children)
    except (RecursionError, ValueError, TypeError, KeyError, IndexError):
        body = paragraphs(text)  # markdown-it bounds nesting; anything odd falls back to plain text
    if not body:
        return []
    return [nodes.container("", *body, classes=["docgen-markdown", *classes])]


@functools.lru_cache(maxsize=2048)
def _parse_markdown(text: str) -> SyntaxTreeNode:
    """The syntax tree of one description (a spec repeats the same descriptions many times)."""
    return SyntaxTreeNode(_MARKDOWN.parse(text))


def _md_blocks(children: list[SyntaxTreeNode]) -> list[nodes.Node]:
    out: list[nodes.Node] = []
    for child in children:
        kind = child.type
        if kind == "paragraph":
            out.append(nodes.paragraph("", "", *_md_inline_of(child)))
        elif kind == "heading":
            inline = _md_inline_of(child)
            out.append(nodes.rubric("", "", *inline, classes=["docgen-md-heading"]))
        elif kind in {"bullet_list", "ordered_list"}:
            lst: nodes.Element = nodes.bullet_list() if kind == "bullet_list" else nodes.enumerated_list()
            if kind == "ordered_list":
                lst["enumtype"] = "arabic"
                start = child.attrs.get("start")
                if isinstance(start, int) and start != 1:
                    lst["start"] = start
            for item in child.children:
                lst += nodes.list_item("", *_md_blocks(item.children))
            out.append(lst)
        elif kind == "blockquote":
            out.append(nodes.block_quote("", *_md_blocks(child.children)))
        elif kind in {"code_block", "fence"}:
            code = child.content.rstrip("\n")
            out.append(nodes.literal_block(code, code, language="text", classes=["docgen-md-code"]))
        elif kind == "html_block":
            html = child.content.rstrip("\n")
            out.append(nodes.literal_block(html, html, language="text", classes=["docgen-raw"]))
        elif kind == "hr":
            out.append(nodes.container(classes=["docgen-md-hr"]))
        elif kind == "table":
            out.append(_md_table(child))
        elif kind == "inline":
            out.append(nodes.paragraph("", "", *_md_inline(child.children)))
        elif child.children:
            out.extend(_md_blocks(child.children))
    return out


def _md_inline_of(block: SyntaxTreeNode) -> list[nodes.Node]:
    return [n for inline in block.children for n in _md_inline(inline.children)]


def _md_inline(children: list[SyntaxTreeNode]) -> list[nodes.Node]:
    out: list[nodes.Node] = []
    for child in children:
        kind = child.type
        if kind == "text":
            out.append(nodes.Text(child.content))
        elif kind == "softbreak":
            out.append(nodes.Text("\n"))
        elif kind == "hardbreak":
            out.append(nodes.inline("", "", classes=["docgen-md-br"]))
        elif kind == "code_inline":
            out.append(nodes.literal(child.content, child.content))
        elif kind == "em":
            out.append(nodes.emphasis("", "", *_md_inline(child.children)))
        elif kind == "strong":
            out.append(nodes.strong("", "", *_md_inline(child.children)))
        elif kind == "s":
            out.append(nodes.inline("", "", *_md_inline(child.children), classes=["docgen-md-strike"]))
        elif kind == "link":
            href = child.attrs.get("href")
            inner = _md_inline(child.children) or [nodes.Text(display_text(href))]
            if isinstance(href, str) and href and safe_url(href):
                out.append(nodes.reference("", "", *inner, refuri=href))
            else:
                out.append(nodes.inline("", "", *inner, classes=["docgen-blocked"]))
        elif kind == "image":
            src = child.attrs.get("src")
            alt = "".join(c.content for c in child.children if c.type == "text") or "image"
            if isinstance(src, str) and _SCHEME.match(_URL_NOISE.sub("", src)) and safe_url(src):
                out.append(nodes.reference(alt, alt, refuri=src, classes=["docgen-remote-image"]))
            else:
                label = f"[image: {shorten(alt, 60)}]"
                out.append(nodes.inline(label, label, classes=["docgen-blocked"]))
        elif kind == "html_inline":
            if _LINE_BREAK_TAG.fullmatch(child.content.strip()):
                out.append(nodes.inline("", "", classes=["docgen-md-br"]))
            else:
                out.append(nodes.literal(child.content, child.content, classes=["docgen-raw"]))
        elif child.children:
            out.extend(_md_inline(child.children))
        elif child.content:
            out.append(nodes.Text(child.content))
    return out


def _md_table(table: SyntaxTreeNode) -> nodes.table:
    rows: list[list[list[nodes.Node]]] = []
    headers: list[list[nodes.Node]] = []
    for section in table.children:
        for tr in section.children:
            cells = [[n for inline in cell.children for n in _md_inline(inline.children)] for cell in tr.children]
            if section.type == "thead" and not headers:
                headers = cells
            else:
                rows.append(cells)
    width = max([len(headers)] + [len(r) for r in rows] + [1])
    out = nodes.table(classes=["docgen-table", "docgen-md-table"])
    group = nodes.tgroup(cols=width)
    out += group
    for _ in range(width):
        group += nodes.colspec(colwidth=1)
    if headers:
        head = nodes.row()
        for cell in headers + [[]] * (width - len(headers)):
            head += nodes.entry("", nodes.paragraph("", "", *cell))
        group += nodes.thead("", head)
    body = nodes.tbody()
    for cells in rows:
        row = nodes.row()
        for cell in cells + [[]] * (width - len(cells)):
            row += nodes.entry("", nodes.paragraph("", "", *cell))
        body += row
    group += body
    return out
