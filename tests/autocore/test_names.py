from __future__ import annotations

import re

import pytest

from autocore.names import has_control, is_valid

NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


@pytest.mark.parametrize("value", ["web", "orders-v2", "a" * 63])
def test_valid(value: str) -> None:
    assert is_valid(NAME, value)


@pytest.mark.parametrize("value", ["web\n", "web\r\n", "we\x00b", "Web", "", "a" * 64, None, 3, "web\u2028"])
def test_refused(value: object) -> None:
    assert not is_valid(NAME, value)


def test_control_anywhere_is_refused_even_when_the_pattern_would_allow_it() -> None:
    anything = re.compile(r".+", re.S)
    assert is_valid(anything, "fe80::1%eth0")
    assert not is_valid(anything, "fe80::1%eth0\nFORGED $(id)")
    assert has_control("x\x1b[2J") and not has_control("plain text")
