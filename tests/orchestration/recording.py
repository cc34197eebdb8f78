"""A recording runner: a ``deployer.runner.Runner`` that records each Command and answers from a script.

A rule matches the words after the program (``("stack", "deploy")``) and, optionally, the engine the
command is pointed at (``DOCKER_HOST``). Its ``then`` hook runs when the command "runs": that is where
a test makes the scripted engine change, as the real docker CLI would make Swarm change. A command no
rule matches fails the test.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field

from deployer.commands import Command
from deployer.runner import Result


@dataclass(frozen=True)
class Call:
    """One command as the deployer ran it, with what the files it named held at that moment."""

    argv: tuple[str, ...]
    env: dict[str, str]
    display: str
    compose: dict[str, str]  # --compose-file path -> content when the command ran
    cert_files: dict[str, int]  # DOCKER_CERT_PATH's files -> their mode, when the command ran


@dataclass
class Rule:
    words: tuple[str, ...]
    host: str | None
    result: Result
    then: Callable[[Command], None] | None


@dataclass
class RecordingRunner:
    """Records every Command; answers with the first rule that matches."""

    calls: list[Call] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)

    def on(
        self,
        *words: str,
        host: str | None = None,
        returncode: int = 0,
        output: str = "",
        then: Callable[[Command], None] | None = None,
    ) -> RecordingRunner:
        """Answer commands starting with ``words`` (after the program), on engine ``host`` if given."""
        self.rules.append(Rule(tuple(words), host, Result(returncode, output), then))
        return self

    def __call__(self, command: Command) -> Result:
        compose = {}
        for flag, value in zip(command.argv, command.argv[1:], strict=False):
            if flag == "--compose-file" and os.path.exists(value):
                with open(value) as handle:
                    compose[value] = handle.read()
        cert_dir = command.env.get("DOCKER_CERT_PATH", "")
        cert_files = {}
        if cert_dir and os.path.isdir(cert_dir):
            cert_files = {
                name: stat.S_IMODE(os.stat(os.path.join(cert_dir, name)).st_mode) for name in os.listdir(cert_dir)
            }
        self.calls.append(Call(command.argv, dict(command.env), command.display(), compose, cert_files))
        for rule in self.rules:
            if command.argv[1 : 1 + len(rule.words)] == rule.words and rule.host in (
                None,
                command.env.get("DOCKER_HOST"),
            ):
                if rule.then is not None:
                    rule.then(command)
                return rule.result
        raise AssertionError(f"the test did not script this command: {command.display()}")

    @property
    def argvs(self) -> list[tuple[str, ...]]:
        """The argv of every call, in order."""
        return [c.argv for c in self.calls]
