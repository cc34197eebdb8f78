"""What the template's test modules share: running commands cleanly, baking, a generated service's own checks.

The fixtures built on these (cookiecutter's home kept out of ``~``, the one service virtualenv) are in
``conftest.py``.
"""

from __future__ import annotations

import configparser
import os
import shlex
import subprocess
import sys
from pathlib import Path

from cookiecutter.main import cookiecutter

from tests.support import unavailable

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "cookiecutter-auto-service"
TIMEOUT = 300


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without what would leak pytest or virtualenv settings into a child."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PYTHON", "VIRTUAL_ENV", "TOX_"))}
    env.update(extra)
    return env


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``command``; the result holds its output either way."""
    return subprocess.run(
        command, cwd=cwd, env=env or clean_env(), capture_output=True, text=True, timeout=TIMEOUT, check=False
    )


def bake(output_dir: Path, **answers: str) -> Path:
    """Generate a service with ``answers`` (defaults for the rest) into ``output_dir``."""
    return Path(cookiecutter(str(TEMPLATE), no_input=True, extra_context=answers, output_dir=str(output_dir)))


def tox_commands(project: Path, env_name: str) -> list[list[str]]:
    """The commands ``tox -e <env_name>`` would run, read from the generated tox.ini."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(project / "tox.ini")
    lines = parser[f"testenv:{env_name}"]["commands"].strip().splitlines()
    return [shlex.split(line.replace("{posargs}", "")) for line in lines if line.strip()]


def run_tox_env(project: Path, env_name: str, service_venv: Path) -> None:
    """Run the commands of the generated project's ``tox -e <env_name>`` in ``service_venv``; each must pass."""
    bin_dir = service_venv / "bin"
    env = clean_env(PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", VIRTUAL_ENV=str(service_venv))
    for command in tox_commands(project, env_name):
        result = run(command, cwd=project, env=env)
        output = f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        assert result.returncode == 0, f"{' '.join(command)} failed in {project.name}:\n{output}"


def git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd`` (a throw-away repository of a test) and insist it works; its standard output."""
    who = {"NAME": "AUTO test", "EMAIL": "test@example.com"}
    env = clean_env(**{f"GIT_{role}_{key}": value for role in ("AUTHOR", "COMMITTER") for key, value in who.items()})
    settings = ["-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"]
    result = run(["git", *settings, *args], cwd=cwd, env=env)
    assert result.returncode == 0, f"git {' '.join(args)}: {result.stderr}"
    return result.stdout


def cruft(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run cruft from this suite's environment."""
    exe = Path(sys.executable).parent / "cruft"
    if not exe.exists():
        unavailable("cruft is not installed (pip install cruft)")
    return run([str(exe), *args], cwd=cwd)
