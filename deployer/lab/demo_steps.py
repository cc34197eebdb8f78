"""The demo's progress display: a numbered step list, each step's time, one ``Error: step N (name): …`` line.

A step is a name and a function returning a short note (shown after ``ok``). :func:`run_steps` runs them in
order and stops at the first failure: a :class:`~autocore.errors.ToolkitError` (the toolkit's own one-line
errors), an OSError or a bad answer (ValueError, KeyError: a file, a socket, a Docker SDK call), or Ctrl-C /
SIGTERM, never a traceback. The line formats are pure functions (tests/unit/test_demo_steps.py).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

from autocore.errors import EXIT_INTERRUPTED, ToolkitError
from autocore.text import display


@dataclass(frozen=True)
class Step:
    """One step of the demo: what it does (one line), and the function doing it (returns a short note)."""

    name: str
    action: Callable[[], str]


def step_start(index: int, total: int, name: str) -> str:
    """``[3/8] deploy v1 to the live colour ...`` (the result follows on the same line)."""
    return f"[{index}/{total}] {name} ..."


def step_ok(seconds: float, note: str = "") -> str:
    """`` ok (12.3 s)``, and the step's note on the next line, indented under the step's name."""
    line = f" ok ({seconds:.1f} s)"
    return line + (f"\n      {display(note)}" if note else "")


def step_failed(seconds: float) -> str:
    """`` failed (12.3 s)``."""
    return f" failed ({seconds:.1f} s)"


def error_line(index: int, name: str, message: object) -> str:
    """``Error: step 3 (deploy v1 to the live colour): …``: the only line a failure prints."""
    return f"Error: step {index} ({name}): {display(message)}"


@dataclass
class StepResult:
    """What a step did: its name, ``ok``/``failed``/``interrupted``, its seconds and note."""

    name: str
    status: str
    seconds: float
    note: str = ""


def run_steps(steps: Sequence[Step], out: TextIO | None = None) -> tuple[int, list[StepResult]]:
    """Run ``steps`` in order, showing each; stop at the first failure. Returns the exit code and the results."""
    out = out or sys.stdout
    results: list[StepResult] = []
    total = len(steps)
    for index, step in enumerate(steps, 1):
        print(step_start(index, total, step.name), end="", file=out, flush=True)
        started = time.monotonic()
        try:
            note = step.action()
        except ToolkitError as exc:
            seconds = time.monotonic() - started
            results.append(StepResult(step.name, "failed", seconds, str(exc)))
            print(step_failed(seconds), file=out, flush=True)
            print(error_line(index, step.name, exc), file=sys.stderr, flush=True)
            return exc.exit_code or 1, results
        except (OSError, ValueError, KeyError, RuntimeError) as exc:  # the lab or a file said no: still one line
            seconds = time.monotonic() - started
            results.append(StepResult(step.name, "failed", seconds, str(exc)))
            print(step_failed(seconds), file=out, flush=True)
            print(error_line(index, step.name, f"{type(exc).__name__}: {exc}"), file=sys.stderr, flush=True)
            return 1, results
        except KeyboardInterrupt:
            seconds = time.monotonic() - started
            results.append(StepResult(step.name, "interrupted", seconds))
            print(" interrupted", file=out, flush=True)
            print(error_line(index, step.name, "interrupted"), file=sys.stderr, flush=True)
            return EXIT_INTERRUPTED, results
        seconds = time.monotonic() - started
        results.append(StepResult(step.name, "ok", seconds, note))
        print(step_ok(seconds, note), file=out, flush=True)
    return 0, results
