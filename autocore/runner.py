"""The one place where the toolkit runs another program.

Products build their commands as data (an argv and an environment) and hand them here; each product
translates ``ProgramNotFoundError`` and ``CommandTimedOutError`` into its own one-line message (which
package to install, which variable to set) at its boundary.
"""

from __future__ import annotations

import signal
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


def execute_interruptible(
    argv: Sequence[str],
    *,
    stdout: Path,
    stderr: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 600,
    grace: float = 30,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` to its end, its output written to the files ``stdout`` and ``stderr`` (returned as text too).

    On Ctrl-C or SIGTERM (a ``KeyboardInterrupt`` here) the child gets one SIGINT and up to ``grace`` seconds
    to unwind (``auto-deploy`` releases its lock and removes its key material), SIGKILL after that; then the
    interruption goes on. ``subprocess.run`` would kill it after a quarter of a second. The child has its own
    process group: a terminal's Ctrl-C reaches only us, so it gets exactly one SIGINT, never a second one in the
    middle of its cleanup.
    """
    argv = list(argv)
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        try:
            process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=_env(env), cwd=cwd, process_group=0
            )
        except FileNotFoundError as exc:
            raise ProgramNotFoundError(argv[0]) from exc
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            _stop(process, grace)
            raise CommandTimedOutError(argv, exc.timeout) from exc
        except KeyboardInterrupt:
            _stop(process, grace)
            raise
    return subprocess.CompletedProcess(
        argv, code, Path(stdout).read_text(errors="replace"), Path(stderr).read_text(errors="replace")
    )


def _stop(process: subprocess.Popen[bytes], grace: float) -> None:
    """One SIGINT, ``grace`` seconds to exit, then SIGKILL."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    except KeyboardInterrupt:  # a second Ctrl-C: stop waiting
        process.kill()
        process.wait()
        raise


def _env(env: Mapping[str, str] | None) -> dict[str, str] | None:
    return dict(env) if env is not None else None
