"""The release: the sdist and the wheel built from the work tree, checked, and the wheel installed (not editable)
into a fresh virtualenv, where every command's main paths run with the current directory outside the repository,
so nothing can come from the source tree. And the version: a git tag's, the same for the wheel and every command.

``python -m build`` builds the sdist from a committed snapshot of the work tree, then the wheel from that sdist
(no ``.git`` there: its version comes from the sdist's PKG-INFO). Its build backend (setuptools, setuptools-scm)
and the wheel's dependencies come from the package index, or pip's cache. One build and one virtualenv serve the
whole module.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from autocore.resources import TEMPLATES_PACKAGE  # templates/, installed
from tests.pipelines import gitlab_ci_local as gcl
from tests.support import unavailable

pytestmark = pytest.mark.system  # builds with the package index's setuptools, installs the dependencies with pip

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("autocore", "deployer", "docgen", "pipelines")  # and their subpackages (every folder with __init__.py)
DATA_FILES = ("deployer/state/contract.yaml", "deployer/lab/demo-stack.yml")
COMMANDS = ("auto-deploy", "auto-docs", "auto-pipelines")
CACHES = {"__pycache__", ".pytest_cache", ".ruff_cache", ".tox", ".venv", ".cache", ".hypothesis", ".auto-docs-cache"}
BUILD_TIMEOUT = 600
INSTALL_TIMEOUT = 900
RUN_TIMEOUT = 180
# No tag in the snapshot's repository: setuptools-scm's development version of a clean commit.
DEV_VERSION = re.compile(r"0\.1\.dev\d+\+g[0-9a-f]{7,}")


@dataclass(frozen=True)
class Dist:
    source: Path  # the repository it was built from
    sdist: Path
    wheel: Path
    version: str  # the wheel's METADATA Version


@dataclass(frozen=True)
class Venv:
    root: Path
    site: Path  # its site-packages

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    @property
    def python(self) -> str:
        return str(self.bin / "python")


# --- helpers -------------------------------------------------------------------------------------------


def run(argv: list[str], *, cwd: Path, timeout: float = RUN_TIMEOUT, venv: Venv | None = None):
    """``argv`` in ``cwd``, in the environment a user of the installed toolkit has: no PYTHONPATH, no CI or
    deployer settings, the suite's virtualenv off PATH (``venv``'s first)."""
    env = gcl.base_env(path_prepend=[str(venv.bin)] if venv else [])
    if venv is not None:
        env["VIRTUAL_ENV"] = str(venv.root)
    return subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def check(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, f"{proc.args} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def snapshot(dest: Path, *, tag: str | None = None) -> Path:
    """The work tree as it is now (tracked and untracked files, not ignored ones) committed in a repository of
    its own, tagged ``tag``; the working repository is only read (``git ls-files``)."""
    gcl.snapshot_worktree(ROOT, dest)
    gcl.commit_repo(dest)
    if tag is not None:
        gcl.git(dest, "tag", "-a", tag, "-m", f"release {tag}")
    return dest


def build(source: Path, out: Path) -> Dist:
    """``python -m build``: the sdist from ``source``, then the wheel from the sdist."""
    if importlib.util.find_spec("build") is None:
        unavailable("the `build` package is not installed: pip install -e '.[test]'")
    check(run([sys.executable, "-m", "build", "--outdir", out, source], cwd=source, timeout=BUILD_TIMEOUT))
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        version = re.search(r"^Version: (\S+)$", archive.read(metadata).decode(), re.M).group(1)
    return Dist(source, sdist, wheel, version)


def make_venv(root: Path, *, with_pip: bool = True) -> Venv:
    check(run([sys.executable, "-m", "venv", *([] if with_pip else ["--without-pip"]), root], cwd=root.parent))
    code = "import sysconfig; print(sysconfig.get_path('purelib'))"
    purelib = check(run([root / "bin" / "python", "-c", code], cwd=root.parent)).stdout.strip()
    return Venv(root, Path(purelib))


def sdist_names(dist: Dist) -> set[str]:
    with tarfile.open(dist.sdist) as archive:
        names = [m.name for m in archive.getmembers() if m.isfile()]
    prefix = f"{dist.sdist.name.removesuffix('.tar.gz')}/"
    assert all(n.startswith(prefix) for n in names), names[:5]
    return {n.removeprefix(prefix) for n in names}


def wheel_names(dist: Dist) -> set[str]:
    with zipfile.ZipFile(dist.wheel) as archive:
        return set(archive.namelist())


def runtime_files(source: Path) -> set[str]:
    """What the wheel must hold, as installed paths: every module of every package, the templates (as the data
    package), the other data files."""
    files = set(DATA_FILES)
    for package in PACKAGES:
        for init in (source / package).rglob("__init__.py"):
            files.update(p.relative_to(source).as_posix() for p in init.parent.glob("*.py"))
    templates = source / "templates"
    files.update(
        f"{TEMPLATES_PACKAGE}/{p.relative_to(templates).as_posix()}" for p in templates.rglob("*") if p.is_file()
    )
    return files


# --- fixtures ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    """The sdist and the wheel of the work tree (committed, no tag)."""
    source = snapshot(tmp_path_factory.mktemp("snapshot") / "auto-toolkit")
    return build(source, tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="module")
def venv(dist: Dist, tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """A fresh virtualenv with the wheel installed (not editable), its dependencies resolved by pip (from its cache
    when it has them). Not byte-compiled at install: the commands compile the little they import."""
    env = make_venv(tmp_path_factory.mktemp("venv") / "venv")
    argv = [env.python, "-m", "pip", "install", "--quiet", "--no-compile", dist.wheel]
    check(run(argv, cwd=env.root, timeout=INSTALL_TIMEOUT))
    return env


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """The current directory of the installed commands: outside the repository."""
    assert not tmp_path.resolve().is_relative_to(ROOT)
    return tmp_path


# --- the artefacts -------------------------------------------------------------------------------------


def test_the_version_of_an_untagged_commit_is_a_development_version(dist: Dist) -> None:
    assert DEV_VERSION.fullmatch(dist.version), dist.version
    assert dist.wheel.name == f"auto_toolkit-{dist.version}-py3-none-any.whl"
    # The wheel was built from the sdist, where there is no .git: the version came from its PKG-INFO.
    assert dist.sdist.name == f"auto_toolkit-{dist.version}.tar.gz"
    with tarfile.open(dist.sdist) as archive:
        pkg_info = archive.extractfile(f"auto_toolkit-{dist.version}/PKG-INFO").read().decode()
    assert f"\nVersion: {dist.version}\n" in pkg_info


def test_the_wheel_holds_every_runtime_file_and_nothing_else(dist: Dist) -> None:
    names = wheel_names(dist)
    installed = {n for n in names if ".dist-info/" not in n}
    expected = runtime_files(dist.source)
    assert expected - installed == set(), "missing from the wheel"
    assert installed - expected == set(), "in the wheel but not a runtime file"
    assert not any(n.startswith("tests/") or "__pycache__" in n or n.endswith(".pyc") for n in names)
    with zipfile.ZipFile(dist.wheel) as archive:
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        scripts = archive.read(entry_points).decode()
    for command, module in zip(COMMANDS, ("deployer", "docgen", "pipelines"), strict=True):
        assert f"{command} = {module}.cli:main" in scripts


def test_the_sdist_holds_the_sources_and_no_tests_or_caches(dist: Dist) -> None:
    names = sdist_names(dist)
    sources = {n.replace(f"{TEMPLATES_PACKAGE}/", "templates/", 1) for n in wheel_names(dist) if ".dist-info/" not in n}
    required = sources | {"PKG-INFO", "pyproject.toml", "README.md", "MANIFEST.in", "docgen/toolkit-docs/services.yml"}
    assert required - names == set(), "missing from the sdist"
    unwanted = ("tests/", "benchmarks/", "cookiecutter-auto-service/", ".git/", ".ci/", "docs/")
    assert not [n for n in names if n.startswith(unwanted)]
    assert not [
        n for n in names if n in (".gitlab-ci.yml", "Makefile", "tox.ini", ".gitignore", "Dockerfile", ".dockerignore")
    ]
    assert not [n for n in names if set(n.split("/")) & CACHES or n.endswith((".pyc", ".pyo"))]


def test_twine_check_passes(dist: Dist, work: Path) -> None:
    if importlib.util.find_spec("twine") is None:
        unavailable("twine is not installed: pip install -e '.[test]'")
    proc = check(run([sys.executable, "-m", "twine", "check", "--strict", dist.sdist, dist.wheel], cwd=work))
    assert proc.stdout.count("PASSED") == 2, proc.stdout


# --- the installed wheel -------------------------------------------------------------------------------


def test_installed_from_the_wheel_not_from_the_source_tree(venv: Venv, work: Path) -> None:
    code = textwrap.dedent(f"""\
        import json, autocore, deployer, docgen, pipelines
        from autocore.resources import package_folder
        print(json.dumps([m.__file__ for m in (autocore, deployer, docgen, pipelines)]
                         + [str(package_folder("{TEMPLATES_PACKAGE}"))]))
    """)
    places = json.loads(check(run([venv.python, "-c", code], cwd=work, venv=venv)).stdout)
    for place in places:
        assert Path(place).is_relative_to(venv.site), place
    assert not list(venv.site.glob("__editable__*")), "an editable install"


def test_every_command_says_the_wheels_version(venv: Venv, dist: Dist, work: Path) -> None:
    for command in COMMANDS:
        proc = check(run([venv.bin / command, "--version"], cwd=work, venv=venv))
        assert proc.stdout == f"{command} {dist.version}\n"
    metadata = "import importlib.metadata as m; print(m.version('auto-toolkit'))"
    assert check(run([venv.python, "-c", metadata], cwd=work, venv=venv)).stdout.strip() == dist.version


SERVICE = """\
name: orders
version: v1
title: Orders
docs: docs
spec: openapi.yaml
pipeline:
  version: "1"
  components: [build, test, deploy-staging, deploy-production, switch, pages]
  inputs:
    deploy-staging: {url: "https://orders.staging.example.com"}
    deploy-production: {url: "https://orders.example.com"}
"""


def test_pipelines_render_and_lint_read_the_installed_components(venv: Venv, work: Path) -> None:
    (work / "auto-service.yml").write_text(SERVICE)
    proc = check(run([venv.bin / "auto-pipelines", "render", "auto-service.yml"], cwd=work, venv=venv))
    assert ".gitlab-ci.yml: written (build, test, deploy-staging, deploy-production, switch, pages" in proc.stdout
    rendered = (work / ".gitlab-ci.yml").read_text()
    assert "component: $CI_SERVER_FQDN/auto/toolkit/deploy-production@1" in rendered
    # Linted with the components it includes, read from the installed templates: the needs: on a job that only
    # the build component defines is clean; the toolkit's own CI file, a real one, too.
    (work / "after-build.yml").write_text(
        "include:\n  - component: $CI_SERVER_FQDN/auto/toolkit/build@1\nstages: [build, test]\n"
        "after-build:\n  stage: test\n  needs: [build]\n  script: [echo built]\n"
    )
    (work / "toolkit-ci.yml").write_text((ROOT / ".gitlab-ci.yml").read_text())
    files = [".gitlab-ci.yml", "after-build.yml", "toolkit-ci.yml"]
    proc = check(run([venv.bin / "auto-pipelines", "lint", *files], cwd=work, venv=venv))
    assert "3 file(s) checked: 3 clean, 0 with errors; 0 error(s), 0 warning(s)" in proc.stdout
    (work / "nope.yml").write_text("include:\n  - component: $CI_SERVER_FQDN/auto/toolkit/nope@1\n")
    proc = run([venv.bin / "auto-pipelines", "lint", "nope.yml"], cwd=work, venv=venv)
    assert proc.returncode == 3, proc.stderr
    assert f"no component 'nope' in {venv.site / TEMPLATES_PACKAGE}" in proc.stdout


SPEC = """\
openapi: 3.1.0
info: {title: Tiny, version: 1.0.0}
paths:
  /items:
    get:
      operationId: listItems
      responses:
        "200": {description: the items}
"""


def test_docs_validate_and_build(venv: Venv, work: Path) -> None:
    (work / "openapi.yaml").write_text(SPEC)
    (work / "docs").mkdir()
    (work / "docs" / "index.md").write_text("# Tiny\n\nA tiny service.\n")
    (work / "services.yml").write_text(
        "title: Tiny portal\nservices:\n"
        "  - {name: tiny, version: v1, title: Tiny service, docs: docs, spec: openapi.yaml}\n"
    )
    proc = check(run([venv.bin / "auto-docs", "validate", "openapi.yaml"], cwd=work, venv=venv))
    assert "1 spec(s) checked: 1 valid" in proc.stdout
    argv = [venv.bin / "auto-docs", "build", "--manifest", "services.yml", "--out", "public", "--json-report", "r.json"]
    check(run(argv, cwd=work, venv=venv))
    assert (work / "public" / "index.html").is_file()
    assert json.loads((work / "public" / "openapi.json").read_text())["paths"]
    assert json.loads((work / "r.json").read_text())["summary"]["published"] == 1


def test_haproxy_configuration_and_demo_stack(venv: Venv, work: Path) -> None:
    code = textwrap.dedent("""\
        import sys
        from importlib.resources import as_file
        from pathlib import Path
        from deployer.haproxy import render_config
        from deployer.lab import demo, front
        context = front.config_context(front.FrontPaths(Path(sys.argv[1])), {"blue": "10.0.0.2", "green": "10.0.0.3"},
                                       "green", 18000)
        print(render_config(context))
        with as_file(demo.STACK_FILE) as stack:
            print("demo stack:", stack, "auto-lab/web:1" in stack.read_text())
    """)
    proc = check(run([venv.python, "-c", code, work], cwd=work, venv=venv))
    lines = [line.strip() for line in proc.stdout.splitlines()]
    assert "backend app" in lines
    assert "server green 10.0.0.3:18080 check inter 500ms fall 2 rise 2" in lines
    assert "server blue 10.0.0.2:18080 check inter 500ms fall 2 rise 2 disabled" in lines
    assert f"demo stack: {venv.site / 'deployer' / 'lab' / 'demo-stack.yml'} True" in lines


# --- the version from a git tag ------------------------------------------------------------------------


def test_a_tagged_commit_builds_that_version(venv: Venv, tmp_path: Path, work: Path) -> None:
    """Tag v9.8.7: the sdist and the wheel are 9.8.7, and so says every command of the installed wheel. (Its
    virtualenv borrows the module's installed dependencies through a .pth file: only the toolkit is new.)"""
    tagged = build(snapshot(tmp_path / "tagged", tag="v9.8.7"), tmp_path / "dist")
    assert tagged.version == "9.8.7"
    assert tagged.wheel.name == "auto_toolkit-9.8.7-py3-none-any.whl"
    assert tagged.sdist.name == "auto_toolkit-9.8.7.tar.gz"
    release = make_venv(tmp_path / "venv", with_pip=False)  # installed into by the module virtualenv's pip
    argv = [venv.python, "-m", "pip", "--python", release.python, "install", "--quiet", "--no-deps", tagged.wheel]
    check(run(argv, cwd=tmp_path, timeout=INSTALL_TIMEOUT))
    (release.site / "zz-dependencies.pth").write_text(f"{venv.site}\n")  # after its own site-packages
    for command in COMMANDS:
        assert check(run([release.bin / command, "--version"], cwd=work, venv=release)).stdout == f"{command} 9.8.7\n"
