"""How names and addresses from outside are checked: the whole value must match, and no control character
may hide in it.

``re.match(r"^[a-z]+$", "web\\n")`` succeeds (``$`` also matches before a final newline), which is how a
forged line reaches a log or a generated file. Every name, address, label or slug a toolkit command accepts
is checked here, with ``fullmatch``.
"""

from __future__ import annotations

import re

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def is_valid(pattern: re.Pattern[str], value: object) -> bool:
    """Whether ``value`` is a string that ``pattern`` matches whole and that holds no control character."""
    return isinstance(value, str) and not _CONTROL.search(value) and pattern.fullmatch(value) is not None


def has_control(value: str) -> bool:
    """Whether ``value`` holds a control character (a newline, an escape, a NUL, a line separator...)."""
    return _CONTROL.search(value) is not None
