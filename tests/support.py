"""What several test packages share: skip-or-fail for missing parts, the lab's handle, small HTTP/stack helpers.

A test that needs a real component (the lab, HAProxy, Chromium, gitlab-ci-local, the corpus…) calls
:func:`unavailable` when it is missing: a skip on a developer's machine, a failure when ``CI=true``.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

from deployer import engine

ROOT = Path(__file__).resolve().parents[1]
LAB_ADDRESSES = {"blue": "10.213.1.2", "green": "10.213.2.2"}


def unavailable(reason: str) -> NoReturn:
    """Skip for lack of ``reason``, or fail when CI=true (CI must have everything the suite needs)."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"required in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def haproxy_binary() -> str:
    """Debian's haproxy, or :func:`unavailable`."""
    binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(binary).exists():
        unavailable("haproxy is not installed (make test installs it)")
    return binary


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
        return engine.connect(LAB_ADDRESSES[colour], 2376, self.env["AUTO_DOCKER_CERT_PATH"])

    def remove_stack(self, stack: str, *, wait: bool = True) -> None:
        """The stack's services gone on both colours; with ``wait``, its containers too (host port, image freed)."""
        label = f"com.docker.stack.namespace={stack}"
        for colour in LAB_ADDRESSES:
            api = self.docker(colour)
            try:
                for service in api.services(filters={"label": label}):
                    api.remove_service(service["ID"])
                deadline = time.monotonic() + 60
                while wait and api.containers(all=True, filters={"label": label}) and time.monotonic() < deadline:
                    time.sleep(0.5)
            finally:
                api.close()

    def remove_images(self, *tags: str) -> None:
        """``docker image rm TAGS`` on both colours (what is missing is no error)."""
        from deployer.lab import service_image

        for colour in LAB_ADDRESSES:
            env = service_image.docker_env(colour, self.env["AUTO_DOCKER_CERT_PATH"], self.env)
            subprocess.run([service_image.docker_cli(self.env), "image", "rm", *tags], env=env, capture_output=True)


def start_lab() -> Lab:
    """Bring the lab up (idempotent) and hand out its environment, or :func:`unavailable`."""
    if os.geteuid() != 0:
        unavailable("lab not available: the lab needs root")
    try:
        from deployer.lab import lab as lab_module

        info = lab_module.up()
        exports = parse_exports(lab_module.env_lines())
    except Exception as exc:  # noqa: BLE001 - any failure to start is reported, not hidden
        unavailable(f"lab not available: {type(exc).__name__}: {exc}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTO_", "DOCKER_", "GITLAB_"))}
    env.update(exports)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    return Lab(env, info)


def http_get(url: str, timeout: float = 20) -> tuple[int, str]:
    """GET ``url`` until it answers (connection errors retried until ``timeout``); ``(status, body)``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status, response.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
