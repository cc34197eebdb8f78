"""Text from outside (names, messages, descriptions, errors of other programs) made safe to show.

``display`` is the one function through which untrusted text reaches a terminal or a log: it keeps the
text on one line and shows control and invisible formatting characters as escapes, so nothing we print
can move the cursor, rewrite a line, fake a GitLab log section or reorder text (bidi overrides).
"""

from __future__ import annotations

import re
from typing import Any

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# C0 and C1 controls, DEL, and the invisible characters that change how text around them reads:
# zero-width joiners and spaces, bidi embeddings/overrides/isolates, line and paragraph separators, BOM.
_HIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def one_line(message: str, limit: int | None = None) -> str:
    """``message`` with its whitespace runs collapsed to single spaces; cut to ``limit`` characters when given."""
    message = " ".join(str(message).split())
    if limit is not None and len(message) > limit:
        return message[: limit - 3] + "..."
    return message


def display(text: Any, limit: int | None = None) -> str:
    """``text`` on one line, with every control or invisible character shown as an escape (``\\x1b``)."""
    return one_line(_HIDDEN.sub(_escape, " ".join(str(text).split())), limit)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def json_path(parts: Any) -> str:
    """``['paths', '/items/{id}', 'post', 'parameters', 1]`` -> ``$.paths['/items/{id}'].post.parameters[1]``."""
    out = ["$"]
    for part in parts:
        if isinstance(part, int) and not isinstance(part, bool):
            out.append(f"[{part}]")
        elif _IDENTIFIER.match(str(part)):
            out.append(f".{part}")
        else:
            escaped = str(part).replace("\\", "\\\\").replace("'", "\\'")
            out.append(f"['{escaped}']")
    return "".join(out)
