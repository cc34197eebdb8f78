"""The lab fixture: real Docker Engines in swarm mode over TLS, started by the toolkit itself.

When CI=true a lab that cannot start FAILS the tests; elsewhere they are skipped with the reason.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from deployer import engine

ROOT = Path(__file__).resolve().parents[2]


def _lab_unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"the lab is required in CI and could not start: {reason}", pytrace=False)
    pytest.skip(f"lab not available: {reason}")


def parse_exports(text: str) -> dict[str, str]:
    """``export NAME=VALUE`` lines (shell-quoted values) into a dict."""
    result = {}
    for line in text.splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            name, value = words[1].split("=", 1)
            result[name] = value
    return result


@dataclass
class Lab:
    """What tests need to drive the lab: the CLI environment and SDK clients per colour."""

    env: dict[str, str]
    info: dict

    def cli(self, *args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
        """Run ``auto-deploy ARGS`` as a user would, with the lab's environment."""
        return subprocess.run(
            [sys.executable, "-m", "deployer", *args],
            env=env or self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def docker(self, colour: str) -> Any:
        """A low-level SDK client (``docker.APIClient``) for one colour's manager, over the lab's mutual TLS."""
        address = {"blue": "10.213.1.2", "green": "10.213.2.2"}[colour]
        return engine.connect(address, 2376, self.env["AUTO_DOCKER_CERT_PATH"])


@pytest.fixture(scope="session")
def lab() -> Lab:
    """Bring the lab up (idempotent) and hand out its environment; it stays up for later runs."""
    if os.geteuid() != 0:
        _lab_unavailable("the lab needs root")
    try:
        from deployer.lab import lab as lab_module

        info = lab_module.up()
        exports = parse_exports(lab_module.env_lines())
    except Exception as exc:  # noqa: BLE001 - any failure to start is reported, not hidden
        _lab_unavailable(f"{type(exc).__name__}: {exc}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTO_", "DOCKER_", "GITLAB_"))}
    env.update(exports)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    return Lab(env, info)


@pytest.fixture
def stack(lab: Lab):
    """A fresh stack name on the live colour, removed afterwards."""
    name = f"t{uuid.uuid4().hex[:8]}"
    yield name
    for colour in ("blue", "green"):
        api = lab.docker(colour)
        for service in api.services(filters={"label": f"com.docker.stack.namespace={name}"}):
            api.remove_service(service["ID"])
        api.close()
