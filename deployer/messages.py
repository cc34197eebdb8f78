"""How every toolkit CLI reports problems: one line per message, JSON paths for places in a document,
and an argument parser whose errors are one ``Error:`` line with exit code 2."""

from __future__ import annotations

import argparse
import re
from typing import Any

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse that exits 2 with one ``Error:`` line, like every other bad input."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"Error: {message} (see {self.prog} --help)\n")


def one_line(message: str, limit: int | None = None) -> str:
    """``message`` with its whitespace runs collapsed to single spaces; cut to ``limit`` characters when given."""
    message = " ".join(str(message).split())
    if limit is not None and len(message) > limit:
        return message[: limit - 3] + "..."
    return message


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
