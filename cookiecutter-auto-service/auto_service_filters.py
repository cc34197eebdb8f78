"""Jinja filters that write the template's answers into the generated files as literals of each file's language.

cookiecutter loads this module (``_extensions`` in ``cookiecutter.json``; it puts the template directory on
``sys.path`` while it bakes, and so does cruft). No answer is ever spliced between quotes by hand:

* ``py_str``: a double-quoted Python string literal; a long one is wrapped in parentheses, one literal per
  line (implicit concatenation), so that the generated code stays within ruff's line length of 120.
* ``yaml_str`` / ``toml_str``: a double-quoted YAML or TOML scalar.
* ``md_text``: text for a Markdown (CommonMark / MyST) paragraph or heading, Markdown's syntax escaped.

All three quoted forms share one escaping: ``\\`` and ``"`` are backslash-escaped and every character that is
not printable (``str.isprintable``: controls, line and paragraph separators, format, surrogate, private-use and
unassigned code points) becomes ``\\uXXXX`` or ``\\UXXXXXXXX``, escapes that Python, YAML and TOML all read
the same way. Everything else is written as itself (the files are UTF-8).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from jinja2 import Environment
from jinja2.ext import Extension

# A one-line literal up to this width (quotes included) stays on the assignment's line; a wrapped literal's
# pieces are at most WRAP wide, so that indentation (up to 16) + WRAP + 2 quotes fits in 120 columns.
ONE_LINE = 72
WRAP = 96
# Markdown: escaped everywhere (inline syntax, MyST roles, HTML, entities, tables) ...
MARKDOWN_INLINE = frozenset("\\`*_{}[]<>#|!&~$")
# ... and, at the start of a line, what would begin a block (list, quote, setext rule, MyST comment/target).
MARKDOWN_LINE_START = frozenset("-+=>%(:")
ORDERED_LIST = re.compile(r"([0-9]{1,9})([.)])")


def _escaped(char: str) -> str:
    """``char`` as it is written inside a double-quoted Python, YAML or TOML string."""
    if char in '\\"':
        return "\\" + char
    if char.isprintable():
        return char
    code = ord(char)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _width(char: str, text: str) -> int:
    """Columns ``text`` (``char`` as written) takes: two for a wide character, as ruff counts it."""
    if text != char:
        return len(text)
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def quoted(value: Any) -> str:
    """``value`` (as text) as one double-quoted string: valid Python, YAML (1.1 and 1.2) and TOML."""
    return '"' + "".join(_escaped(char) for char in str(value)) + '"'


def python_string(value: Any, indent: int = 0) -> str:
    """``value`` as a Python string literal; wrapped in parentheses, one piece a line, when it is long.

    ``indent`` is the indentation of the line the literal is on (the pieces go 4 deeper).
    """
    pieces = [(text, _width(char, text)) for char in str(value) for text in [_escaped(char)]]
    if sum(width for _, width in pieces) + 2 <= ONE_LINE:
        return quoted(value)
    lines: list[list[tuple[str, int]]] = [[]]
    for piece in pieces:
        line = lines[-1]
        if line and sum(width for _, width in line) + piece[1] > WRAP:
            # Break after the line's last space when the word after it fits on the next line with ``piece``.
            spaces = [i for i, (text, _) in enumerate(line) if text == " "]
            cut = len(line)
            if spaces and sum(width for _, width in line[spaces[-1] + 1 :]) + piece[1] <= WRAP:
                cut = spaces[-1] + 1
            lines[-1], rest = line[:cut], line[cut:]
            lines.append(rest)
        lines[-1].append(piece)
    pad = " " * (indent + 4)
    body = "".join(f'{pad}"{"".join(text for text, _ in line)}"\n' for line in lines)
    return f"(\n{body}{' ' * indent})"


def markdown_text(value: Any) -> str:
    """``value`` as literal Markdown text on one line: inline syntax and a leading block marker escaped."""
    text = " ".join(str(value).split())
    text = "".join("\\" + char if char in MARKDOWN_INLINE else char for char in text)
    if text[:1] in MARKDOWN_LINE_START:
        text = "\\" + text
    return ORDERED_LIST.sub(r"\1\\\2", text, count=1) if ORDERED_LIST.match(text) else text


class AnswerFilters(Extension):
    """Registers ``py_str``, ``yaml_str``, ``toml_str`` and ``md_text``."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.filters.update(
            py_str=python_string,
            yaml_str=quoted,
            toml_str=quoted,
            md_text=markdown_text,
        )
