"""The template as service teams use it: from the toolkit's git repository at a release tag, upgraded by cruft.

One bare repository per module holds the toolkit: ``1.0.0`` is this working tree (its tracked files and the
untracked ones git does not ignore, i.e. what the next commit would ship); ``1.1.0`` changes the template (a
line appended to the service's README, a new CHANGELOG.md). Teams run exactly these commands:

    cookiecutter <toolkit URL> --directory cookiecutter-auto-service --checkout 1.0.0
    cruft create <toolkit URL> --directory cookiecutter-auto-service --checkout 1.0.0
    cruft update --checkout 1.1.0 --skip-apply-ask        (in the service's own git repository)
    cruft check --checkout 1.1.0

Needs git, cookiecutter and cruft (and PyPI for the service virtualenv); without them the tests skip, or fail
when CI=true.
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cookiecutter.helpers import ROOT, TEMPLATE, bake, cruft, git, run, run_tox_env
from tests.support import unavailable

SERVICE = Path(TEMPLATE.name, "{{cookiecutter.service_slug}}")
# 1.1.0's change to the template, and what it makes of the default answers.
README_LINE = "Upgraded to template 1.1.0 for {{ cookiecutter.service_name | md_text }}."
README_LINE_BAKED = "Upgraded to template 1.1.0 for Orders."
CHANGELOG = "# Changelog\n\n- {{ cookiecutter.service_slug }}: template 1.1.0\n"
CHANGELOG_BAKED = "# Changelog\n\n- orders: template 1.1.0\n"
TEAM_NOTE = "Our team's own note: keep it across template updates.\n"
MISSING_TAG = "9.9.9"
CACHES = {"__pycache__", ".ruff_cache", ".pytest_cache"}  # what running a service's checks leaves in it


@dataclass(frozen=True)
class Toolkit:
    """The bare repository, its file:// URL and the commit of each release tag."""

    bare: Path
    url: str
    commits: dict[str, str]


def shipped_files() -> list[str]:
    """What a commit of this working tree would hold: tracked files, and untracked ones git does not ignore."""
    if shutil.which("git") is None:
        unavailable("git is not installed")
    listed = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT)
    if listed.returncode != 0:
        unavailable(f"{ROOT} is not a git checkout: {listed.stderr.strip()}")
    return [name for name in listed.stdout.split("\0") if name]


@pytest.fixture(scope="module")
def toolkit(tmp_path_factory: pytest.TempPathFactory) -> Toolkit:
    """The toolkit in a bare repository: 1.0.0 (this working tree), then 1.1.0 (a template change)."""
    base = tmp_path_factory.mktemp("toolkit")
    work, bare = base / "work", base / "toolkit.git"
    for name in shipped_files():
        source = ROOT / name
        if source.is_file() or source.is_symlink():  # a tracked file deleted in the working tree is not shipped
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, work / name, follow_symlinks=False)
    git(work, "init", "-q")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "AUTO toolkit 1.0.0")
    git(work, "tag", "-a", "1.0.0", "-m", "1.0.0")
    readme = work / SERVICE / "README.md"
    readme.write_text(f"{readme.read_text()}\n{README_LINE}\n")
    (work / SERVICE / "CHANGELOG.md").write_text(CHANGELOG)
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "AUTO toolkit 1.1.0: the service template gets a changelog")
    git(work, "tag", "-a", "1.1.0", "-m", "1.1.0")
    git(base, "init", "-q", "--bare", str(bare))
    git(work, "push", "-q", bare.as_uri(), "main", "--tags")
    commits = {tag: git(bare, "rev-parse", f"{tag}^{{commit}}").strip() for tag in ("1.0.0", "1.1.0")}
    return Toolkit(bare=bare, url=bare.as_uri(), commits=commits)


def cookiecutter_command(*args: str) -> list[str]:
    """The cookiecutter command of this suite's environment, with ``args``."""
    executable = Path(sys.executable).parent / "cookiecutter"
    if not executable.exists():
        unavailable("the cookiecutter command is not installed next to this Python")
    return [str(executable), *args]


def from_tag(url: str, tag: str) -> list[str]:
    """The arguments that name the template: the toolkit's URL, the template's directory in it, the release tag."""
    return [url, "--directory", TEMPLATE.name, "--checkout", tag]


@pytest.fixture(scope="module")
def baked(toolkit: Toolkit, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The service made at 1.0.0 with the defaults, by ``cookiecutter`` and by ``cruft create``."""
    out = tmp_path_factory.mktemp("from-git")
    template = [*from_tag(toolkit.url, "1.0.0"), "--no-input"]
    made = run(cookiecutter_command(*template, "-o", str(out / "cc")), cwd=out)
    assert made.returncode == 0, made.stdout + made.stderr
    created = cruft("create", *template, "--output-dir", str(out / "cruft"), cwd=out)
    assert created.returncode == 0, created.stdout + created.stderr
    return {"cookiecutter": out / "cc" / "orders", "cruft": out / "cruft" / "orders"}


def tree(root: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and directory (None) under ``root`` by relative path; tools' caches left out."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes() if path.is_file() else None
        for path in sorted(root.rglob("*"))
        if CACHES.isdisjoint(path.parts)
    }


def team_repository(service: Path, where: Path) -> Path:
    """A copy of ``service`` committed to its own git repository, as the team keeps it, with one commit of theirs."""
    project = shutil.copytree(service, where / service.name)
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "Generated from the AUTO toolkit's template 1.0.0")
    guide = project / "docs" / "user-guide.md"
    guide.write_text(guide.read_text() + "\n" + TEAM_NOTE)
    git(project, "commit", "-q", "-am", "Our own words in the user guide")
    return project


def changed_paths(project: Path) -> set[str]:
    """Paths git sees as changed, added or untracked in ``project`` (staged or not)."""
    return {line[3:] for line in git(project, "status", "--porcelain", "--untracked-files=all").splitlines()}


def one_text(output: str) -> str:
    """``output`` as one line of words: cruft's (rich) output wraps at the terminal's width, inside boxes too."""
    return " ".join(output.replace("\u2502", " ").split())


def test_cookiecutter_from_a_release_tag(baked: dict[str, Path], tmp_path: Path) -> None:
    """The git bake at 1.0.0 has v1.0's content: exactly what the working tree's template bakes, nothing lost."""
    project = baked["cookiecutter"]
    assert "template 1.1.0" not in (project / "README.md").read_text()
    assert not (project / "CHANGELOG.md").exists()
    assert not (project / ".cruft.json").exists()
    assert tree(project) == tree(bake(tmp_path))


@pytest.mark.parametrize("env_name", ["lint", "spec"])
def test_git_bake_passes_its_quick_checks(baked: dict[str, Path], service_venv: Path, env_name: str) -> None:
    """The service made from the tag passes its own ruff and openapi.json checks (its tox.ini's commands)."""
    run_tox_env(baked["cookiecutter"], env_name, service_venv)


def test_cruft_create_records_url_directory_and_commit(toolkit: Toolkit, baked: dict[str, Path]) -> None:
    """`.cruft.json` names the repository, the template's directory, the tag and its commit; check agrees."""
    project = baked["cruft"]
    record = json.loads((project / ".cruft.json").read_text())
    assert Path(record["template"]) == toolkit.bare  # cruft stores a file:// URL as its path (an https URL as is)
    assert record["directory"] == TEMPLATE.name
    assert (record["checkout"], record["commit"]) == ("1.0.0", toolkit.commits["1.0.0"])
    assert record["context"]["cookiecutter"]["_commit"] == toolkit.commits["1.0.0"]
    assert record["context"]["cookiecutter"]["service_slug"] == "orders"
    files = tree(project)
    del files[".cruft.json"]
    assert files == tree(baked["cookiecutter"])

    current = cruft("check", "--checkout", "1.0.0", cwd=project)
    assert current.returncode == 0, current.stdout + current.stderr
    stale = cruft("check", "--checkout", "1.1.0", cwd=project)
    assert stale.returncode == 1 and "out of date" in stale.stdout, stale.stdout + stale.stderr


def test_cruft_update_to_the_next_tag(
    toolkit: Toolkit, baked: dict[str, Path], service_venv: Path, tmp_path: Path
) -> None:
    """`cruft update --checkout 1.1.0`: the template's change arrives, the team's own edit stays, check passes."""
    project = team_repository(baked["cruft"], tmp_path)
    updated = cruft("update", "--checkout", "1.1.0", "--skip-apply-ask", cwd=project)
    assert updated.returncode == 0, updated.stdout + updated.stderr

    readme = (project / "README.md").read_text()
    assert readme.endswith(f"\n{README_LINE_BAKED}\n"), readme[-300:]
    assert (project / "CHANGELOG.md").read_text() == CHANGELOG_BAKED
    record = json.loads((project / ".cruft.json").read_text())
    assert (record["checkout"], record["commit"]) == ("1.1.0", toolkit.commits["1.1.0"])
    assert record["context"]["cookiecutter"]["_commit"] == toolkit.commits["1.1.0"]
    assert (project / "docs" / "user-guide.md").read_text().endswith("\n" + TEAM_NOTE)
    # The update is left for the team to review and commit: exactly the template's change and the record.
    assert changed_paths(project) == {"README.md", "CHANGELOG.md", ".cruft.json"}

    checked = cruft("check", "--checkout", "1.1.0", cwd=project)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    for env_name in ("lint", "spec"):
        run_tox_env(project, env_name, service_venv)


def test_missing_tag_fails_cleanly(toolkit: Toolkit, tmp_path: Path) -> None:
    """A tag that does not exist: one clear line from cookiecutter, cruft names it too; nothing is written."""
    out = tmp_path / "cc"
    made = run(cookiecutter_command(*from_tag(toolkit.url, MISSING_TAG), "--no-input", "-o", str(out)), cwd=tmp_path)
    assert made.returncode == 1
    (line,) = (made.stdout + made.stderr).strip().splitlines()
    assert MISSING_TAG in line and toolkit.url in line, line
    assert not out.exists() or not any(out.iterdir())

    out = tmp_path / "cruft"
    created = cruft("create", *from_tag(toolkit.url, MISSING_TAG), "--no-input", "--output-dir", str(out), cwd=tmp_path)
    assert created.returncode == 1
    assert f"Failed to check out the reference {MISSING_TAG}" in one_text(created.stderr), created.stderr
    assert not out.exists() or not any(out.iterdir())


def test_update_to_a_missing_tag_changes_nothing(baked: dict[str, Path], tmp_path: Path) -> None:
    """`cruft update --checkout 9.9.9` in a service fails and leaves its repository exactly as it was."""
    project = team_repository(baked["cruft"], tmp_path)
    head = git(project, "rev-parse", "HEAD")
    updated = cruft("update", "--checkout", MISSING_TAG, "--skip-apply-ask", cwd=project)
    assert updated.returncode == 1
    assert f"Failed to check out the reference {MISSING_TAG}" in one_text(updated.stderr), updated.stderr
    assert changed_paths(project) == set()
    assert git(project, "rev-parse", "HEAD") == head


# --- a refused answer ends with one line: no traceback from cookiecutter or cruft ----------------------------------

REFUSED = [
    ("service_slug", "Orders", "service_slug 'Orders' is not valid: use 2-41 lower-case letters"),
    ("owner", "Team\x1b[31m", "owner 'Team\\x1b[31m' is not valid: it holds '\\x1b'"),
]


@pytest.mark.parametrize(("key", "answer", "words"), REFUSED, ids=["upper-case-slug", "control-character"])
def test_refused_answer_is_one_line(toolkit: Toolkit, tmp_path: Path, key: str, answer: str, words: str) -> None:
    """`cookiecutter <URL> ... key=value`: exit 1, all its output is our one line on stderr, nothing is written."""
    out = tmp_path / "out"
    command = cookiecutter_command(*from_tag(toolkit.url, "1.0.0"), "--no-input", "-o", str(out), f"{key}={answer}")
    made = run(command, cwd=tmp_path)
    assert made.returncode == 1
    assert made.stdout == "", made.stdout
    (line,) = made.stderr.strip().splitlines()
    assert line.startswith(f"Error: {words}") and line.endswith("; nothing was generated."), line
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize(("key", "answer", "words"), REFUSED, ids=["upper-case-slug", "control-character"])
def test_refused_answer_through_cruft(toolkit: Toolkit, tmp_path: Path, key: str, answer: str, words: str) -> None:
    """`cruft create ... --extra-context`: exit 1, the message and no traceback, nothing is written."""
    out = tmp_path / "out"
    where = [*from_tag(toolkit.url, "1.0.0"), "--no-input", "--output-dir", str(out)]
    created = cruft("create", *where, "--extra-context", json.dumps({key: answer}), cwd=tmp_path)
    assert created.returncode == 1
    output = created.stdout + created.stderr
    assert "Traceback" not in output and "Stopping generation" not in output, output
    assert words in one_text(output) and "; nothing was generated." in one_text(output), output
    assert not out.exists() or not any(out.iterdir())
