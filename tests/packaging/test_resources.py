"""The one version and the data files, as the installed toolkit (here: the editable install) finds them."""

from __future__ import annotations

import importlib
import importlib.metadata
from importlib.resources import as_file
from pathlib import Path

import pytest

from autocore import resources, version
from autocore.resources import TEMPLATES_PACKAGE, ResourceNotFoundError, package_folder
from deployer.cli import main as deploy_main
from deployer.haproxy import render_config
from deployer.lab import demo
from docgen.cli import main as docs_main
from pipelines.cli import main as pipelines_main
from pipelines.locations import TEMPLATES_DIR

ROOT = Path(__file__).resolve().parents[2]


def test_the_version_is_the_installed_distributions() -> None:
    assert version.toolkit_version() == importlib.metadata.version("auto-toolkit")


def test_not_installed_the_version_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(version, "DISTRIBUTION", "auto-toolkit-that-is-not-installed")
    assert version.toolkit_version() == version.UNKNOWN_VERSION == "0+unknown"


@pytest.mark.parametrize(
    ("prog", "main"), [("auto-deploy", deploy_main), ("auto-docs", docs_main), ("auto-pipelines", pipelines_main)]
)
def test_every_command_prints_the_one_version(prog: str, main, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code in (0, None)
    out, err = capsys.readouterr()
    assert (out, err) == (f"{prog} {version.toolkit_version()}\n", "")


def test_help_names_the_version_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        pipelines_main(["--help"])
    assert "--version" in capsys.readouterr().out


def _same_files(folder: Path, source: Path) -> None:
    names = sorted(p.name for p in source.iterdir() if p.is_file())
    assert names, source
    for name in names:
        assert (folder / name).read_bytes() == (source / name).read_bytes(), name


def test_the_templates_package_is_the_repositorys_templates_folder() -> None:
    # templates/ at the root (where GitLab's CI/CD catalog wants it), installed as a data package of its own: the
    # folder itself in the editable install the suite runs on, a copy in a wheel's.
    folder = package_folder(TEMPLATES_PACKAGE)
    assert folder == TEMPLATES_DIR
    _same_files(folder, ROOT / "templates")
    assert {"haproxy.cfg.j2", "service-pipeline.yml.j2", "build.yml"} <= {p.name for p in folder.iterdir()}


def test_a_regular_packages_folder() -> None:
    folder = package_folder("deployer.state")
    assert (folder / "contract.yaml").read_bytes() == (ROOT / "deployer" / "state" / "contract.yaml").read_bytes()


def test_a_missing_package_is_one_error() -> None:
    with pytest.raises(ResourceNotFoundError, match="not installed: install auto-toolkit again"):
        package_folder("auto_toolkit_no_such_data")


def test_a_namespace_package_in_two_folders_is_read_from_the_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "first" / "auto_probe_data", tmp_path / "second" / "auto_probe_data"
    for folder in (first, second):
        folder.mkdir(parents=True)
        (folder / "x.yml").write_text("a: 1\n")
    monkeypatch.syspath_prepend(str(second.parent))
    monkeypatch.syspath_prepend(str(first.parent))
    importlib.invalidate_caches()
    assert resources.package_folder("auto_probe_data") == first


def test_the_haproxy_configuration_renders_from_the_templates_package() -> None:
    context = {"frontend_bind": "127.0.0.1:1", "admin_socket": "/a", "state_file": "/s", "servers": []}
    assert "backend app" in [line.strip() for line in render_config(context).splitlines()]


def test_the_demo_stack_is_package_data() -> None:
    with as_file(demo.STACK_FILE) as stack:
        assert stack.read_text() == (ROOT / "deployer" / "lab" / "demo-stack.yml").read_text()
        assert "auto-lab/web:1" in stack.read_text()
