"""Read the compose files of a deploy: which services it defines, and their text for the record."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from deployer.errors import ConfigError

STACK_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")
SERVICE_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


@dataclass(frozen=True)
class ComposeFile:
    """One compose file as given on the command line, with its text."""

    path: str
    content: str


@dataclass(frozen=True)
class ComposeSet:
    """The compose files of one deploy and the services they define, in first-seen order."""

    files: tuple[ComposeFile, ...]
    services: tuple[str, ...]

    def swarm_names(self, stack: str) -> list[str]:
        """The names Swarm gives these services inside ``stack``."""
        return [f"{stack}_{name}" for name in self.services]


def check_stack_name(stack: str) -> str:
    """Reject a stack name Docker would refuse, before touching anything."""
    if not STACK_NAME.match(stack):
        raise ConfigError(f"invalid stack name {stack!r}: use letters, digits, '_', '.' or '-'")
    return stack


def load(paths: list[str]) -> ComposeSet:
    """Read and parse every compose file; the union of their services is what this deploy waits for."""
    if not paths:
        raise ConfigError("no compose file: pass -c FILE at least once")
    files: list[ComposeFile] = []
    services: dict[str, None] = {}
    for path in paths:
        try:
            text = Path(path).read_text()
        except FileNotFoundError:
            raise ConfigError(f"compose file {path} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read compose file {path}: {exc}") from None
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark else ""
            raise ConfigError(f"compose file {path} is not valid YAML{where}: fix the file") from None
        if not isinstance(document, dict):
            raise ConfigError(f"compose file {path} is not a mapping with a 'services' key")
        section = document.get("services") or {}
        if not isinstance(section, dict):
            raise ConfigError(f"compose file {path}: 'services' must be a mapping of service names")
        for name in section:
            if not isinstance(name, str) or not SERVICE_NAME.match(name):
                raise ConfigError(f"compose file {path}: invalid service name {name!r}")
            services.setdefault(name, None)
        files.append(ComposeFile(path, text))
    if not services:
        raise ConfigError(f"compose files {', '.join(paths)} define no service: nothing to deploy")
    return ComposeSet(tuple(files), tuple(services))
