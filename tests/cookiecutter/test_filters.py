"""The template's answer filters (``cookiecutter-auto-service/auto_service_filters.py``) on their own.

Every string, however hostile, must come back unchanged when the generated file's own language reads the
literal: Python (``ast.literal_eval``), YAML (PyYAML, as the portal and the pipeline tools read it), TOML
(``tomllib``) and Markdown (markdown-it, CommonMark: the text of the paragraph is the answer).
"""

from __future__ import annotations

import ast
import importlib.util
import tomllib
import unicodedata
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from markdown_it import MarkdownIt

TEMPLATE = Path(__file__).resolve().parents[2] / "cookiecutter-auto-service"


def load_filters() -> ModuleType:
    """The filters module, loaded from its file (not left on sys.path)."""
    spec = importlib.util.spec_from_file_location(
        "auto_service_filters_under_test", TEMPLATE / "auto_service_filters.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FILTERS = load_filters()
NASTY = [
    "",
    "plain",
    "a \"double\" and 'single' quote",
    '"""; __import__("os").system("touch PWNED"); """',
    "'''; raise SystemExit; '''",
    "back\\slash\\",
    'ends with a quote"',
    "line\nbreak\r\n and tab\t and nul \x00 and esc \x1b[31m and del \x7f and nel \x85",
    "line sep \u2028 para sep \u2029 bidi \u202e override \u2066 isolate bom \ufeff zwsp \u200b",
    "private \ue000 unassigned \U000e0080 nonchar \ufffe",
    "emoji 😀 👍🏽 wide ８０８０ 日本語 ünïcödé",
    "key: value # comment - item & anchor *alias ! tag % directive @ ` backtick | > fold { flow } [ seq ]",
    "${IMAGE} $(id) `id` {{ not jinja }} {% no %}",
    "x" * 300,
    "word " * 80,
    "日本語のテキスト" * 30,
    "\x00" * 50 + "x" * 50,
]


@pytest.mark.parametrize("text", NASTY)
def test_python_string_reads_back(text: str) -> None:
    """``py_str`` is a Python literal of exactly ``text``, one-line or wrapped."""
    for indent in (0, 4, 12):
        literal = FILTERS.python_string(text, indent)
        assert ast.literal_eval(literal) == text
        tree = ast.parse(f"x = {literal}\n")
        assert isinstance(tree.body[0], ast.Assign) and len(tree.body) == 1


def columns(line: str) -> int:
    """Display width as ruff counts it for E501."""
    return sum(2 if unicodedata.east_asian_width(char) in ("W", "F") else 1 for char in line)


@pytest.mark.parametrize("text", NASTY)
def test_python_string_fits_the_line_length(text: str) -> None:
    """Wrapped or not, no line of the literal goes past 120 columns, even indented by 12."""
    source = " " * 12 + "value = " + FILTERS.python_string(text, 12)
    assert all(columns(line) <= 120 for line in source.splitlines()), source
    assert all(char.isprintable() for line in source.splitlines() for char in line)


def test_python_string_as_docstring() -> None:
    """A wrapped literal as a module's first statement is still its docstring."""
    text = "Orders: " + "a long description " * 10
    module = ast.parse(FILTERS.python_string(text) + "\n")
    assert ast.get_docstring(module, clean=False) == text


@pytest.mark.parametrize("text", NASTY)
def test_yaml_and_toml_strings_read_back(text: str) -> None:
    """``yaml_str`` / ``toml_str`` are one double-quoted scalar of exactly ``text``."""
    literal = FILTERS.quoted(text)
    assert "\n" not in literal and "\r" not in literal
    assert yaml.safe_load(f"key: {literal}\nafter: 1\n") == {"key": text, "after": 1}
    assert yaml.safe_load(f"- {literal}\n") == [text]
    assert tomllib.loads(f"key = {literal}\nafter = 1\n") == {"key": text, "after": 1}
    assert tomllib.loads(f"authors = [{{ name = {literal} }}]\n") == {"authors": [{"name": text}]}


def inline_text(markdown: str) -> tuple[str, str]:
    """The kind of the first block markdown-it sees (``paragraph``/``heading``) and its inline text."""
    tokens = MarkdownIt("commonmark").parse(markdown)
    inline = next(t for t in tokens if t.type == "inline")
    assert inline.children is not None
    kinds = {child.type for child in inline.children}
    assert kinds <= {"text"}, kinds  # no emphasis, links, code, html or entities: all of it is text
    return tokens[0].type.removesuffix("_open"), "".join(child.content for child in inline.children)


@pytest.mark.parametrize(
    "text",
    [
        "plain text",
        "*em* _u_ **strong** `code` [link](x.md) ![img](y.png) <b>html</b> &amp; &#35; a\\b",
        "- a list item",
        "+ another",
        "* and another",
        "1. ordered",
        "12) ordered",
        "> a quote",
        "# a heading ##",
        "=== setext",
        "% a MyST comment",
        "(target)= a MyST target",
        "{role}`x` and $math$ and | table | cell |",
        "~~~ fence",
        "``` fence",
        "<div>block html</div>",
        "https://example.com/auto link",
    ],
)
def test_markdown_text_is_literal(text: str) -> None:
    """``md_text`` reads back as the same text, in a paragraph and in a heading."""
    escaped = FILTERS.markdown_text(text)
    assert inline_text(f"{escaped}\n") == ("paragraph", text)
    assert inline_text(f"# {escaped} (v1)\n") == ("heading", f"{text} (v1)")
