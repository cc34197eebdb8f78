"""GitLab collapsible log sections, emitted only when running in GitLab CI (GITLAB_CI set)."""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TextIO

_ESC = "\x1b[0K"


def section_start(name: str, header: str, *, now: float, collapsed: bool = False) -> str:
    """The marker GitLab reads as the start of a section (see GitLab's "custom collapsible sections")."""
    options = "[collapsed=true]" if collapsed else ""
    return f"{_ESC}section_start:{int(now)}:{_section_id(name)}{options}\r{_ESC}{header}\n"


def section_end(name: str, *, now: float) -> str:
    """The marker that closes the section ``name``."""
    return f"{_ESC}section_end:{int(now)}:{_section_id(name)}\r{_ESC}\n"


def _section_id(name: str) -> str:
    # GitLab accepts letters, digits, '_', '.' and '-' in section names.
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


@contextmanager
def section(
    name: str,
    header: str,
    *,
    stream: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
    collapsed: bool = False,
    header_outside_ci: bool = True,
) -> Iterator[None]:
    """Wrap output in a collapsible section under GitLab CI; elsewhere print the header only (or nothing,
    with ``header_outside_ci=False``, for commands whose plain output is already complete)."""
    out = stream or sys.stderr
    in_gitlab = bool((os.environ if environ is None else environ).get("GITLAB_CI"))
    if in_gitlab:
        out.write(section_start(name, header, now=time.time(), collapsed=collapsed))
    elif header_outside_ci:
        out.write(f"== {header}\n")
    out.flush()
    try:
        yield
    finally:
        if in_gitlab:
            out.write(section_end(name, now=time.time()))
            out.flush()
