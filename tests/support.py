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
from deployer.lab import lab as lab_module
from deployer.lab.layout import CLUSTERS, DOCKER_PORT, LIVE_COLOUR
from deployer.state.contract import COLOURS
from deployer.state.contract import other_colour as other_colour  # re-exported: the tests import it from here

ROOT = Path(__file__).resolve().parents[1]
LAB_ADDRESSES = {colour: CLUSTERS[colour].address for colour in COLOURS}
FRONT_STACK = "demo"  # the stack `make demo` uses too: both publish 18080, HAProxy's backend `app`
FRONT_APP = """services:
  web:
    image: auto-lab/web:{version}
    ports:
      - {{target: 8080, published: 18080, protocol: tcp, mode: host}}
    deploy:
      replicas: 1
      update_config: {{order: stop-first, failure_action: rollback, monitor: 1s}}
      restart_policy: {{condition: any, delay: 1s}}
"""


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
        return engine.connect(LAB_ADDRESSES[colour], DOCKER_PORT, self.env["AUTO_DOCKER_CERT_PATH"])

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

    def live_colour(self) -> str:
        """The lab environment's live colour, as the state service has it."""
        from deployer.state.client import StateClient

        return StateClient.from_env(self.env).get_environment("lab").live_colour

    def front(self, directory: Path) -> dict[str, Any]:
        """The front app (``auto-lab/web:1`` on port 18080, behind HAProxy) deployed on the live colour, nothing
        else publishing 18080, HAProxy in line with the state service. ``{"live": COLOUR, "files": {"1": compose
        file of web:1, "2": of web:2}}``; the files are written into ``directory``."""
        for colour in LAB_ADDRESSES:
            api = self.docker(colour)
            try:
                for service in api.services():
                    ports = (service.get("Endpoint") or {}).get("Spec", {}).get("Ports") or []
                    published = any(p.get("PublishedPort") == 18080 for p in ports)
                    if published and service["Spec"]["Name"] != f"{FRONT_STACK}_web":
                        api.remove_service(service["ID"])
            finally:
                api.close()
        live = self.live_colour()
        # Align HAProxy with the state service (an earlier run may have been interrupted).
        proc = self.cli("switch", "--env", "lab", "--to", live, "--lock-wait", "60")
        assert proc.returncode == 0, proc.stderr
        files = {}
        for version in ("1", "2"):
            files[version] = directory / f"v{version}.yml"
            files[version].write_text(FRONT_APP.format(version=version))
        proc = self.cli(*front_deploy_args(files["1"], "live"))
        assert proc.returncode == 0, proc.stderr
        return {"live": live, "files": files}

    def remove_repository(self, repository: str) -> None:
        """Every image of ``repository`` gone from both colours, tagged or only pulled by digest."""
        for colour in LAB_ADDRESSES:
            api = self.docker(colour)
            try:
                for image in api.images(name=repository):
                    api.remove_image(image["Id"], force=True)
            finally:
                api.close()

    def remove_images(self, *tags: str) -> None:
        """``docker image rm TAGS`` on both colours (what is missing is no error)."""
        from deployer.lab import service_image

        for colour in LAB_ADDRESSES:
            env = service_image.docker_env(colour, self.env["AUTO_DOCKER_CERT_PATH"], self.env)
            subprocess.run([service_image.docker_cli(self.env), "image", "rm", *tags], env=env, capture_output=True)


def front_deploy_args(path: Path, colour: str, *extra: str) -> list[str]:
    """``auto-deploy`` arguments deploying the front app's compose file ``path`` to ``colour`` (live or idle)."""
    return ["deploy", "--env", "lab", "--stack", FRONT_STACK, "-c", str(path), "--resolve-image", "never",
            "--colour", colour, *extra]  # fmt: skip


def start_lab(workers: int = 0) -> Lab:
    """Bring the lab up (idempotent) and hand out its environment, or :func:`unavailable`.

    The suite's lab is the single-node one (``workers`` 0: the fastest to bring up, and its managers hold the
    lab's images, which the tests deploy with ``--resolve-image never``); a lab left with workers is brought
    back to it. tests/e2e/test_multinode_lab.py grows it to two workers per colour and shrinks it again.
    """
    if os.geteuid() != 0:
        unavailable("lab not available: the lab needs root")
    try:
        info = lab_module.up(workers=workers)
        exports = parse_exports(lab_module.env_lines())
    except Exception as exc:  # noqa: BLE001 - any failure to start is reported, not hidden
        unavailable(f"lab not available: {type(exc).__name__}: {exc}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTO_", "DOCKER_", "GITLAB_"))}
    env.update(exports)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    lab = Lab(env, info)
    # The tests start from the lab as `lab up` seeds it, blue live; `make demo` leaves green live.
    if lab.live_colour() != LIVE_COLOUR:
        proc = lab.cli("switch", "--env", "lab", "--to", LIVE_COLOUR, "--lock-wait", "60")
        if proc.returncode != 0:
            unavailable(f"lab not available: cannot make {LIVE_COLOUR} live again: {proc.stderr.strip()}")
        lab.info = lab_module.up(workers=workers)  # HAProxy's configuration follows the live colour: written for blue
    return lab


def bake_service(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """cookiecutter-auto-service baked with its default answers (cookiecutter's replay files and clones kept
    out of the home directory)."""
    from cookiecutter.main import cookiecutter

    home = tmp_path_factory.mktemp("cookiecutter-home")
    config = home / "config.yaml"
    config.write_text(f"cookiecutters_dir: {home / 'templates'}\nreplay_dir: {home / 'replay'}\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COOKIECUTTER_CONFIG", str(config))
        output = tmp_path_factory.mktemp("bake")
        return Path(cookiecutter(str(ROOT / "cookiecutter-auto-service"), no_input=True, output_dir=str(output)))


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


def stop_process(process: subprocess.Popen[Any] | None) -> None:
    """Terminate a server the test started, killing it after 10 s; nothing when it is already gone."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
