"""The one place where the toolkit runs another program.

Products build their commands as data (an argv and an environment) and hand them here; each product
translates ``ProgramNotFoundError`` and ``CommandTimedOutError`` into its own one-line message (which
package to install, which variable to set) at its boundary.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from autocore.errors import CommandTimedOutError, ProgramNotFoundError


def execute(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    timeout: float | None = 600,
    merge_stderr: bool = False,
    log: Path | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` to its end (never raising on its exit status) and return what it did.

    Output is captured (stderr into stdout with ``merge_stderr``), or appended to ``log`` instead, for
    programs that daemonize and would keep a pipe open. Standard input is ``input`` or nothing.
    """
    argv = list(argv)
    try:
        if log is not None:
            with open(log, "ab") as out:
                completed = subprocess.run(
                    argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=_env(env),
                    cwd=cwd, timeout=timeout, check=False,
                )  # fmt: skip
            return subprocess.CompletedProcess(argv, completed.returncode, "", "")
        return subprocess.run(
            argv,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
            text=True,
            env=_env(env),
            cwd=cwd,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise ProgramNotFoundError(argv[0]) from exc
    except subprocess.TimeoutExpired as exc:
        raise CommandTimedOutError(argv, exc.timeout) from exc


def spawn(
    argv: Sequence[str], *, log: Path, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start a long-running program detached (its own session, output appended to ``log``)."""
    with open(log, "ab") as out:
        try:
            return subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # survives the CLI's exit and its Ctrl-C
                close_fds=True,
                env=_env(env),
                cwd=cwd,
            )
        except FileNotFoundError as exc:
            raise ProgramNotFoundError(argv[0]) from exc


def _env(env: Mapping[str, str] | None) -> dict[str, str] | None:
    return dict(env) if env is not None else None
