"""Read the compose files of a deploy: which services it defines, and their text for the record."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from autocore.errors import ToolkitError
from autocore.loading import load_yaml
from deployer.errors import ConfigError
from deployer.state.contract import COMPOSE_SERVICE_RE, DOCS_LABELS, DOCS_VERSION_RE, STACK_RE


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
    docs: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def swarm_names(self, stack: str) -> list[str]:
        """The names Swarm gives these services inside ``stack``."""
        return [f"{stack}_{name}" for name in self.services]


def check_stack_name(stack: str) -> str:
    """Reject a stack name Docker would refuse, before touching anything."""
    if not STACK_RE.fullmatch(stack):
        raise ConfigError(f"invalid stack name {stack!r}: use letters, digits, '_', '.' or '-'")
    return stack


def load(paths: list[str]) -> ComposeSet:
    """Read and parse every compose file; the union of their services is what this deploy waits for."""
    if not paths:
        raise ConfigError("no compose file: pass -c FILE at least once")
    files: list[ComposeFile] = []
    services: dict[str, None] = {}
    labels: dict[str, dict[str, str]] = {}
    for path in paths:
        try:
            text = Path(path).read_text()
        except FileNotFoundError:
            raise ConfigError(f"compose file {path} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read compose file {path}: {exc}") from None
        try:
            document = load_yaml(text, f"compose file {path}", loader=yaml.SafeLoader)
        except ToolkitError as exc:  # past a budget
            raise ConfigError(str(exc)) from None
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
            if not isinstance(name, str) or not COMPOSE_SERVICE_RE.fullmatch(name):
                raise ConfigError(f"compose file {path}: invalid service name {name!r}")
            services.setdefault(name, None)
            # Later files override earlier ones, as `docker stack deploy -c a -c b` merges them.
            labels.setdefault(name, {}).update(_docs_labels(section[name], path, name))
        files.append(ComposeFile(path, text))
    if not services:
        raise ConfigError(f"compose files {', '.join(paths)} define no service: nothing to deploy")
    docs = {name: _check_docs(found, name) for name, found in labels.items() if found}
    return ComposeSet(tuple(files), tuple(services), docs)


def _docs_labels(service: Any, path: str, name: str) -> dict[str, str]:
    """The ``auto.docs.*`` entries of a service's ``deploy.labels`` (a mapping or a list of ``k=v``)."""
    deploy = service.get("deploy") if isinstance(service, dict) else None
    raw = deploy.get("labels") if isinstance(deploy, dict) else None
    if isinstance(raw, list):
        raw = dict(str(item).partition("=")[::2] for item in raw)
    if not isinstance(raw, dict):
        return {}
    found = {}
    for label, key in DOCS_LABELS.items():
        if label in raw:
            value = raw[label]
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"compose file {path}: service {name}: label {label} must be a non-empty string")
            found[key] = value.strip()
    return found


def _check_docs(found: dict[str, str], name: str) -> dict[str, str]:
    if "spec_url" not in found or "version" not in found:
        raise ConfigError(
            f"service {name}: auto.docs.* labels need both auto.docs.version and auto.docs.spec; add the missing one"
        )
    if not DOCS_VERSION_RE.fullmatch(found["version"]):
        raise ConfigError(f"service {name}: auto.docs.version {found['version']!r} must look like v1 or 2.0")
    for key in ("spec_url", "docs_url"):
        url = found.get(key)
        if url is not None and (not url.startswith("https://") or any(ch.isspace() for ch in url) or "${" in url):
            label = "auto.docs.spec" if key == "spec_url" else "auto.docs.url"
            raise ConfigError(f"service {name}: label {label} must be an https:// URL, not {url!r}")
    return found
