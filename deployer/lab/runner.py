"""The lab's one way to run a command: thin wrappers over :mod:`autocore.runner`.

They add what the lab's commands need on top: ``check`` (a failure becomes a one-line DeployerError
with the end of the command's output), the install hint of a missing program (ConfigError), and the
lab's wording of a timeout.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from autocore import runner
from deployer.errors import ConfigError, DeployerError

INSTALL_HINTS = {
    "dockerd": "apt-get install docker.io",
    "ip": "apt-get install iproute2",
    "mount": "apt-get install mount",
    "umount": "apt-get install mount",
    "busybox": "apt-get install busybox-static",
    "haproxy": "apt-get install haproxy",
    "docker-registry": "apt-get install docker-registry",
    "unshare": "apt-get install util-linux",
}


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    input: bytes | None = None,
    timeout: float = 60,
    env: Mapping[str, str] | None = None,
    detail_lines: int = 1,
    log: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing its output; on failure when ``check``, DeployerError with the last
    ``detail_lines`` lines of its output (one for short commands, more for a build's log).

    With ``log`` the output is appended to that file instead (for programs that daemonize), and a
    failure names the file's last line.
    """
    argv = list(argv)
    try:
        proc = runner.execute(
            argv, env=env, input=input.decode() if input is not None else None, timeout=timeout, log=log
        )
    except runner.ProgramNotFoundError as exc:
        raise ConfigError(f"{argv[0]} not found: {install_hint(argv[0])}") from exc
    except runner.CommandTimedOutError as exc:
        raise DeployerError(f"{shlex.join(argv)} did not finish within {timeout:.0f} s") from exc
    if check and proc.returncode != 0:
        output = proc.stderr or proc.stdout or ""
        if log is not None:
            tail = log_tail(log)
            output = f"{tail} (log: {log})" if tail else ""
        lines = [line.rstrip() for line in output.splitlines() if line.strip()]
        detail = "\n".join(lines[-detail_lines:]).strip() or f"exit status {proc.returncode}"
        separator = "\n" if "\n" in detail else " "  # a build's log starts on a line of its own
        raise DeployerError(f"{shlex.join(argv)} failed:{separator}{detail}")
    return proc


def spawn(
    argv: Sequence[str], *, log: Path, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start a long-running command detached (own session, output appended to ``log``)."""
    try:
        return runner.spawn(argv, log=log, env=env, cwd=cwd)
    except runner.ProgramNotFoundError as exc:
        raise ConfigError(f"{argv[0]} not found: {install_hint(argv[0])}") from exc


def install_hint(program: str) -> str:
    """What to install when ``program`` is missing."""
    return INSTALL_HINTS.get(Path(program).name, "install it and retry")


def last_line(text: str) -> str:
    """The last non-blank line of ``text``, stripped."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def log_tail(path: Path) -> str:
    """The last line of a log file (read from its last 4 KiB), or "" when it cannot be read."""
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - 4096))
            return last_line(fh.read().decode(errors="replace"))
    except OSError:
        return ""


BUILD_DETAIL_LINES = 15


def run_build(
    argv: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """:func:`run` with a build's view of failure: the last 15 lines of output, not one."""
    return run(argv, env=env, timeout=timeout, check=check, detail_lines=BUILD_DETAIL_LINES)


def wait_ready(
    ready: Callable[[], bool],
    proc: subprocess.Popen[bytes] | None,
    *,
    what: str,
    log: Path,
    timeout: float,
    where: str = "",
) -> None:
    """Poll ``ready`` until it says yes; DeployerError naming ``what`` and its log's last line when the
    program ``proc`` exits first or ``timeout`` seconds pass (``where`` says what was asked, e.g. a URL)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if proc is not None and proc.poll() is not None:
            raise DeployerError(f"{what} exited ({proc.returncode}): {log_tail(log)} (log: {log})")
        time.sleep(0.2)
    raise DeployerError(f"{what} did not answer{where} within {timeout:.0f} s: {log_tail(log)} (log: {log})")
