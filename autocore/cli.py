"""The entry scaffold of every toolkit command: how it parses, reports and exits.

A command gives its parser and a dispatch function; ``run_command`` does the rest the same way for all
three tools: one ``Error: …`` line on stderr (through ``text.display``) and the error's exit code, the
``--json`` report of a failed operation on stdout, and Ctrl-C or SIGTERM (GitLab cancelling a job)
unwound as an interruption, exit 130.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

from autocore.errors import EXIT_INTERRUPTED, ToolkitError
from autocore.text import display


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse that exits 2 with one ``Error:`` line, like every other bad input."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"Error: {display(message)} (see {self.prog} --help)\n")


def error_line(message: Any) -> str:
    """The one line a command prints for an error."""
    return f"Error: {display(message)}"


def _interrupt(signum: int, frame: Any) -> None:
    # GitLab cancels a job with SIGTERM: unwind like Ctrl-C so that cleanup (temporary key material,
    # half-written files) runs.
    raise KeyboardInterrupt


def run_command(
    parser: argparse.ArgumentParser,
    dispatch: Callable[[argparse.Namespace], int],
    argv: Sequence[str] | None,
    *,
    interrupted: str = "interrupted",
) -> int:
    """Parse ``argv``, run ``dispatch`` and turn what it raises into the exit code; returns that code."""
    args = parser.parse_args(argv)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if in_main_thread else None
    try:
        return dispatch(args)
    except ToolkitError as exc:
        report = exc.json_report()
        if report is not None and getattr(args, "json", False):
            print(json.dumps(report, indent=2, sort_keys=True))
        print(error_line(exc), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(error_line(interrupted), file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
