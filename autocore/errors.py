"""The one exception base of the toolkit and the exit codes every command shares.

Library code raises a subclass; only a CLI module prints it (one ``Error:`` line) and exits with its
``exit_code``. Each product adds its own codes (3 and up) in its own ``errors`` module.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import Any

EXIT_OK = 0
EXIT_BAD_INPUT = 2  # bad input or configuration: the command line, a file or the environment
EXIT_INTERRUPTED = 130  # Ctrl-C, or SIGTERM (GitLab cancelling a job)


class ToolkitError(Exception):
    """Base of every error a toolkit command raises on purpose. The message is one line, with no secret."""

    exit_code = EXIT_BAD_INPUT

    def json_report(self) -> dict[str, Any] | None:
        """What ``--json`` prints on stdout when this error ends the command (None: nothing)."""
        return None


class ProgramNotFoundError(ToolkitError):
    """The program to run is not installed (or not on PATH)."""

    def __init__(self, program: str) -> None:
        super().__init__(f"{program} not found")
        self.program = program


class CommandTimedOutError(ToolkitError):
    """The command did not finish within its time budget; it was killed."""

    def __init__(self, argv: Sequence[str], timeout: float) -> None:
        super().__init__(f"{shlex.join(argv)} did not finish within {timeout:.0f} s")
        self.argv = tuple(argv)
        self.timeout = timeout


class BudgetExceededError(ToolkitError):
    """An untrusted input went past one of its parser's budgets (size, nesting, expansion, number size).

    The message names the input and the budget, so the one who sent it knows what to change.
    """

    def __init__(self, source: str, budget: str, limit: int, found: str) -> None:
        super().__init__(f"{source}: {found}, over the {budget} budget of {limit}: refused unread")
        self.source = source
        self.budget = budget
        self.limit = limit


class NotFiniteError(ToolkitError):
    """A number that is not finite (``1e999``, ``NaN``, ``.inf``): no JSON document can carry it."""

    def __init__(self, source: str, text: str) -> None:
        super().__init__(f"{source}: the number {text} is not finite, and JSON has no such number: write a finite one")
        self.source = source
