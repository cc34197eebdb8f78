"""Runs the docker commands built by ``deployer.commands`` through the toolkit's one runner."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from autocore.runner import CommandTimedOutError, ProgramNotFoundError, execute
from deployer.commands import Command
from deployer.errors import ConfigError


@dataclass(frozen=True)
class Result:
    """What a command did: its exit status and its combined output."""

    returncode: int
    output: str


Runner = Callable[[Command], Result]


@functools.cache
def stack_deploy_has_detach(docker: str) -> bool:
    """Whether this docker client knows ``stack deploy --detach`` (26+); older ones never wait."""
    try:
        proc = execute([docker, "stack", "deploy", "--help"], timeout=30)
    except ProgramNotFoundError:
        return True  # the deploy itself will report the missing client
    return "--detach" in proc.stdout


def run(command: Command, *, base_env: Mapping[str, str] | None = None, timeout: float | None = 600) -> Result:
    """Run ``command`` with its environment, capturing stdout and stderr together."""
    env = command.full_env(os.environ if base_env is None else base_env)
    try:
        proc = execute(command.argv, env=env, merge_stderr=True, timeout=timeout)
    except ProgramNotFoundError as exc:
        raise ConfigError(
            f"{command.argv[0]} not found: install the Docker CLI (26 or newer) or set AUTO_DOCKER_CLI"
        ) from exc
    except CommandTimedOutError as exc:
        raise ConfigError(f"{command.argv[0]} {command.argv[1]} did not finish within {exc.timeout:.0f} s") from exc
    return Result(proc.returncode, proc.stdout or "")
