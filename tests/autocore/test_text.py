from __future__ import annotations

import pytest

from autocore.text import display, json_path, one_line


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain name", "plain name"),
        ("two\nlines\r\n", "two lines"),
        ("tab\there", "tab here"),
        ("\x1b[2Jcleared", "\\x1b[2Jcleared"),
        ("\x1b[0Ksection_start:1:fake\r\x1b[0K", "\\x1b[0Ksection_start:1:fake \\x1b[0K"),
        ("evil\u202egnp.exe", "evil\\u202egnp.exe"),
        ("zero\u200bwidth", "zero\\u200bwidth"),
        ("nul\x00byte\x7f", "nul\\x00byte\\x7f"),
        ("c1\x9bcontrol", "c1\\x9bcontrol"),
        ("café ✓ 日本", "café ✓ 日本"),
    ],
)
def test_display_keeps_one_line_and_escapes_what_would_act_on_a_terminal(raw: str, shown: str) -> None:
    assert display(raw) == shown


def test_display_cuts_to_its_limit_after_escaping() -> None:
    assert display("\x1b" * 10, limit=11) == "\\x1b\\x1b..."
    assert len(display("x" * 500, limit=300)) == 300


def test_one_line_collapses_whitespace_only() -> None:
    assert one_line("a \n\t b") == "a b"
    assert one_line("abcdef", 5) == "ab..."


def test_json_path() -> None:
    assert json_path(["paths", "/items/{id}", "post", "parameters", 1]) == "$.paths['/items/{id}'].post.parameters[1]"
    assert json_path(["it's", True]) == "$['it\\'s'].True"
