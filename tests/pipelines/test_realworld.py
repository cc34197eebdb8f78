"""The suite's rule for ``auto-pipelines lint``, on real GitLab CI files (``realworld/``, see its README.md).

* A file GitLab runs in production (``realworld/ci``, ``realworld/components``, each pinned in ``INDEX.tsv``)
  produces no error; warnings are allowed. A real file GitLab refuses (``realworld/refused``) produces one.
* Each broken variant of a real file (``realworld/broken/VARIANTS.yaml``) produces exactly one error, the one that
  says why GitLab refuses it: its rule, its JSON path, a part of its message.

Offline and fast: every file is linted in-process, with no include read from anywhere.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from autocore.issues import SEVERITY_ERROR, Issue
from pipelines import cli
from pipelines.includes import IncludeSettings
from pipelines.lint import LintOptions, lint_file

REALWORLD = Path(__file__).parent / "realworld"
INDEX = REALWORLD / "INDEX.tsv"
VARIANTS = REALWORLD / "broken" / "VARIANTS.yaml"
CORPUS_DIRS = {"ci": "pipeline", "components": "component"}  # folder -> the kind INDEX.tsv gives its files
REFUSED_DIR = "refused"  # real files GitLab itself refuses, kept to show that lint says so too
INDEX_COLUMNS = ["file", "repository", "commit", "path", "licence", "kind"]
VARIANT_KEYS = {"name", "base", "replace", "rule", "path", "message", "why"}
COMMIT = re.compile(r"[0-9a-f]{40}")
REPOSITORY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*")
KEBAB = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
MIN_VARIANTS = 30
MIN_BASES = 15


def index_rows() -> list[dict[str, str]]:
    with INDEX.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))


def real_files() -> list[str]:
    """The files GitLab runs, as INDEX.tsv lists them: paths relative to ``realworld/``."""
    return [row["file"] for row in index_rows() if row["file"].split("/", 1)[0] in CORPUS_DIRS]


def refused_files() -> list[str]:
    return [row["file"] for row in index_rows() if row["file"].split("/", 1)[0] == REFUSED_DIR]


def load_variants() -> list[dict[str, Any]]:
    variants = yaml.safe_load(VARIANTS.read_text(encoding="utf-8"))
    assert isinstance(variants, list), f"{VARIANTS} is a list of variants"
    return variants


def errors_of(issues: list[Issue]) -> list[Issue]:
    return [i for i in issues if i.severity == SEVERITY_ERROR]


def shown(issues: list[Issue]) -> str:
    return "\n".join(f"  {i.rule} {i.path}: {i.message}" for i in issues) or "  (none)"


def broken_text(variant: dict[str, Any]) -> str:
    """The base file's text with the variant's edits applied in order; each ``old`` must occur exactly once."""
    text = (REALWORLD / variant["base"]).read_text(encoding="utf-8")
    for number, edit in enumerate(variant["replace"], 1):
        count = text.count(edit["old"])
        assert count == 1, f"{variant['name']}: edit {number}'s old text occurs {count} times in {variant['base']}"
        text = text.replace(edit["old"], edit["new"])
    return text


# --------------------------------------------------------------------------- the corpus and its index


def test_index_pins_every_corpus_file_and_lists_only_files_that_exist() -> None:
    rows = index_rows()
    with INDEX.open(encoding="utf-8") as handle:
        assert handle.readline().rstrip("\n").split("\t") == INDEX_COLUMNS
    listed = [row["file"] for row in rows]
    assert len(listed) == len(set(listed)), "a file is listed twice in INDEX.tsv"
    kinds = {**CORPUS_DIRS, REFUSED_DIR: REFUSED_DIR}
    for row in rows:
        folder = row["file"].split("/", 1)[0]
        assert folder in kinds, f"{row['file']}: not under {', '.join(kinds)}"
        assert (REALWORLD / row["file"]).is_file(), f"{row['file']} is listed in INDEX.tsv but does not exist"
        assert COMMIT.fullmatch(row["commit"]), f"{row['file']}: commit {row['commit']!r} is not 40 hex digits"
        assert REPOSITORY.fullmatch(row["repository"]), f"{row['file']}: repository {row['repository']!r}"
        assert row["path"], f"{row['file']}: no path in its repository"
        assert row["kind"] == kinds[folder], f"{row['file']}: kind {row['kind']!r}"
    folders = [d for d in kinds if (REALWORLD / d).is_dir()]
    on_disk = sorted(f"{d}/{p.name}" for d in folders for p in (REALWORLD / d).iterdir() if p.is_file())
    unlisted = sorted(set(on_disk) - set(listed))
    assert not unlisted, f"in the corpus but not in INDEX.tsv: {unlisted}"


@pytest.mark.parametrize("file", real_files())
def test_real_file_has_no_error(file: str) -> None:
    errors = errors_of(lint_file(REALWORLD / file))
    assert not errors, f"{file} runs on GitLab, yet lint reports {len(errors)} error(s):\n{shown(errors)}"


@pytest.mark.parametrize("file", refused_files())
def test_file_gitlab_refuses_has_an_error(file: str) -> None:
    assert errors_of(lint_file(REALWORLD / file)), f"GitLab refuses {file}, yet lint reports no error"


def test_cli_lints_every_real_file_as_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Copies outside any git repository: in place, the CLI would take this repository for theirs and look for
    # their include: local: files here. Without a repository root those are unread, as in lint_file().
    files = []
    for name in real_files():
        copy = tmp_path / name
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes((REALWORLD / name).read_bytes())
        files.append(str(copy))
    code = cli.main(["lint", "--json", *files])
    out = capsys.readouterr().out
    report = json.loads(out)
    assert [entry["file"] for entry in report] == files
    failing = {e["file"]: [i for i in e["issues"] if i["severity"] == SEVERITY_ERROR] for e in report if not e["ok"]}
    assert code == 0, f"exit {code}; files with errors: {json.dumps(failing, indent=1)}"


# --------------------------------------------------------------------------- broken variants


def test_variants_are_well_formed_and_spread_over_the_corpus() -> None:
    variants = load_variants()
    indexed = set(real_files())
    names = [v.get("name") for v in variants]
    assert len(names) == len(set(names)), "two variants share a name"
    for variant in variants:
        assert set(variant) == VARIANT_KEYS, f"{variant.get('name')}: keys {sorted(variant)}"
        assert KEBAB.fullmatch(variant["name"]), f"{variant['name']!r} is not kebab-case"
        assert variant["base"] in indexed, f"{variant['name']}: base {variant['base']} is not in INDEX.tsv"
        assert variant["replace"] and all(set(e) == {"old", "new"} for e in variant["replace"]), variant["name"]
        assert all(e["old"] != e["new"] for e in variant["replace"]), f"{variant['name']}: an edit changes nothing"
        for key in ("rule", "path", "message", "why"):
            assert isinstance(variant[key], str) and variant[key], f"{variant['name']}: no {key}"
        assert variant["path"].startswith("$"), f"{variant['name']}: {variant['path']!r} is not a JSON path"
    bases = {v["base"] for v in variants}
    assert len(variants) >= MIN_VARIANTS
    assert len(bases) >= MIN_BASES
    assert {b.split("/", 1)[0] for b in bases} == set(CORPUS_DIRS), "variants of pipelines and of components"


@pytest.mark.parametrize("variant", load_variants(), ids=lambda v: v["name"])
def test_variant_has_exactly_its_error(variant: dict[str, Any], tmp_path: Path) -> None:
    broken = tmp_path / Path(variant["base"]).name
    broken.write_text(broken_text(variant), encoding="utf-8")
    errors = errors_of(lint_file(broken))
    expected = f"  {variant['rule']} {variant['path']}: ...{variant['message']}..."
    assert len(errors) == 1, f"{variant['name']}: wanted exactly one error\n{expected}\ngot:\n{shown(errors)}"
    (error,) = errors
    assert (error.rule, error.path) == (variant["rule"], variant["path"]), f"wanted\n{expected}\ngot:\n{shown(errors)}"
    assert variant["message"] in error.message, f"wanted\n{expected}\ngot:\n{shown(errors)}"


# --------------------------------------------------------------------------- with their local includes


def tree_roots() -> list[tuple[str, str]]:
    """``(tree, the corpus file's path in it)`` for each partial checkout in ``realworld/trees`` (``TREES.tsv``)."""
    with (REALWORLD / "TREES.tsv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return sorted({(row["tree"], row["path"]) for row in rows if row["note"].startswith("the corpus file itself")})


@pytest.mark.parametrize(("tree", "path"), tree_roots())
def test_real_file_with_its_local_includes_read_has_no_error(tree: str, path: str) -> None:
    """The files GitLab reads with it (``include: local:``, the project's own components) were vendored from the
    same repository; linted from that root, what it includes is read and merged, and still no error."""
    root = REALWORLD / "trees" / tree
    issues = lint_file(root / path, LintOptions(includes=IncludeSettings(root=root)))
    errors = [i for i in issues if i.severity == SEVERITY_ERROR]
    assert not errors, "\n".join(f"{i.rule} {i.path}: {i.message}" for i in errors)
    assert not any(i.rule == "include-not-found" or "no repository root" in i.message for i in issues)


def test_every_tree_is_pinned_and_complete() -> None:
    with (REALWORLD / "TREES.tsv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    listed = {f"{row['tree']}/{row['path']}" for row in rows}
    stored = {p.relative_to(REALWORLD / "trees").as_posix() for p in (REALWORLD / "trees").rglob("*") if p.is_file()}
    assert listed == stored
    assert all(COMMIT.fullmatch(row["commit"]) and REPOSITORY.fullmatch(row["repository"]) for row in rows)
    assert len(tree_roots()) == len({row["tree"] for row in rows})  # each tree has its corpus file
