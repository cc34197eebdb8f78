"""Fixtures of the template's test modules: cookiecutter's home kept out of ``~``, one service virtualenv.

The virtualenv is made once per session from a generated ``pyproject.toml`` (extras and all), so every module
that runs a generated service's own checks (``helpers.run_tox_env``) shares it.
"""

from __future__ import annotations

import venv
from collections.abc import Iterator
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

from tests.cookiecutter.helpers import TEMPLATE, run
from tests.support import unavailable


@pytest.fixture(scope="session")
def cookiecutter_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home for cookiecutter's and cruft's replay files and clones; ``config.yaml`` in it points there."""
    home = tmp_path_factory.mktemp("cookiecutter-home")
    (home / "config.yaml").write_text(f"cookiecutters_dir: {home / 'templates'}\nreplay_dir: {home / 'replay'}\n")
    return home


@pytest.fixture(scope="module", autouse=True)
def cookiecutter_config(cookiecutter_home: Path) -> Iterator[Path]:
    """Keep cookiecutter's and cruft's replay files and clones out of the home directory (COOKIECUTTER_CONFIG)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COOKIECUTTER_CONFIG", str(cookiecutter_home / "config.yaml"))
        yield cookiecutter_home


@pytest.fixture(scope="session")
def service_venv(cookiecutter_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One virtualenv with a generated service installed (editable) from its own pyproject.toml, extras and all.

    Every generated project runs its checks in it from its own directory, so its own package is the one imported.
    """
    base = tmp_path_factory.mktemp("venv")
    config = str(cookiecutter_home / "config.yaml")
    project = Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(base), config_file=config))
    home = base / "venv"
    venv.EnvBuilder(with_pip=True).create(home)
    command = [str(home / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    result = run([*command, "-e", f"{project}[test]"], cwd=home)
    if result.returncode != 0:
        unavailable(f"cannot install the generated service ({project.name}[test]): {result.stderr[-1500:]}")
    return home
