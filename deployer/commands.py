"""Docker commands as data: pure functions that build argv and environment.

Nothing here runs anything; ``deployer.runner`` executes what these return. Tests
assert the argv and environment as exact strings.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

RESOLVE_IMAGE_CHOICES = ("always", "changed", "never")

# Variables that would make the docker CLI talk to another engine or loosen TLS; we own them.
_DOCKER_CONNECTION_VARS = (
    "DOCKER_HOST",
    "DOCKER_CONTEXT",
    "DOCKER_TLS",
    "DOCKER_TLS_VERIFY",
    "DOCKER_CERT_PATH",
)
_SECRET_NAME = re.compile(r"TOKEN|PASSWORD|PASSWD|SECRET|KEY|AUTH|CREDENTIAL|PRIVATE", re.IGNORECASE)
REDACTED = "[redacted]"


@dataclass(frozen=True)
class Command:
    """An argv plus the environment variables the toolkit sets for it."""

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)

    def full_env(self, base: Mapping[str, str]) -> dict[str, str]:
        """The environment to run with: ``base`` minus docker connection variables, plus ours."""
        merged = {k: v for k, v in base.items() if k not in _DOCKER_CONNECTION_VARS}
        merged.update(self.env)
        return merged

    def display(self) -> str:
        """The command as one shell line, environment first, secrets redacted."""
        assignments = [f"{name}={shlex.quote(redact_value(name, value))}" for name, value in self.env.items()]
        return " ".join([*assignments, shlex.join(self.argv)])


def redact_value(name: str, value: str) -> str:
    """Hide the value of a variable whose name says it holds a secret, or that holds PEM text."""
    if _SECRET_NAME.search(name) or "-----BEGIN" in value:
        return REDACTED
    return value


def docker_cli(environ: Mapping[str, str]) -> str:
    """The docker client to run: ``AUTO_DOCKER_CLI`` when set, else ``docker`` on PATH."""
    return environ.get("AUTO_DOCKER_CLI") or "docker"


def docker_host(address: str, port: int) -> str:
    """``tcp://IP:PORT`` for an engine, with IPv6 literals in brackets."""
    ip = ipaddress.ip_address(address)
    host = f"[{ip}]" if ip.version == 6 else str(ip)
    return f"tcp://{host}:{port}"


def docker_tls_env(address: str, port: int, cert_path: str) -> dict[str, str]:
    """The environment that points the docker CLI at one engine with mutual TLS, always verified."""
    return {
        "DOCKER_HOST": docker_host(address, port),
        "DOCKER_TLS_VERIFY": "1",
        "DOCKER_CERT_PATH": cert_path,
    }


def stack_deploy(
    stack: str,
    compose_files: Sequence[str],
    *,
    env: Mapping[str, str],
    prune: bool = False,
    with_registry_auth: bool = False,
    resolve_image: str = "always",
    docker: str = "docker",
    detach_flag: bool = True,
) -> Command:
    """``docker stack deploy`` for ``stack``; detached, because the deployer does the waiting.

    ``detach_flag`` is False for clients older than 26, which lack ``--detach`` and never wait.
    """
    if resolve_image not in RESOLVE_IMAGE_CHOICES:
        raise ValueError(f"resolve_image must be one of {RESOLVE_IMAGE_CHOICES}")
    argv = [docker, "stack", "deploy"]
    for path in compose_files:
        argv += ["--compose-file", path]
    argv += ["--resolve-image", resolve_image]
    if prune:
        argv.append("--prune")
    if with_registry_auth:
        argv.append("--with-registry-auth")
    if detach_flag:
        argv.append("--detach=true")
    argv.append(stack)
    return Command(tuple(argv), dict(env))


def service_rollback(service: str, *, env: Mapping[str, str], docker: str = "docker") -> Command:
    """``docker service rollback`` of one service, detached: the deployer waits through the SDK."""
    return Command((docker, "service", "rollback", "--detach", service), dict(env))


def service_remove(services: Sequence[str], *, env: Mapping[str, str], docker: str = "docker") -> Command:
    """``docker service rm`` of services this deploy created and must take back."""
    return Command((docker, "service", "rm", *services), dict(env))
