"""``pipelines.changelog`` and ``auto-pipelines release-notes``: a release's notes from CHANGELOG.md (Keep a Changelog),
what the release job's description says; every way a changelog cannot give them is one error line, exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pipelines import changelog
from pipelines.changelog import ChangelogError, parse_changelog, read_changelog, release_notes
from pipelines.cli import main

ROOT = Path(__file__).resolve().parents[2]

# keepachangelog.com's own example (1.1.0), shortened: link definitions at the end, a yanked release.
EXAMPLE = textwrap.dedent(
    """\
    # Changelog

    All notable changes to this project will be documented in this file.

    ## [Unreleased]

    ### Added

    - v1.1 Brazilian Portuguese translation.

    ## [1.1.1] - 2023-03-05

    ### Added

    - Arabic translation (#444).
    - See the [1.1.0] notes and [the site][site].

    ### Fixed

    - Improve French translation (#377).

    ## [1.1.0] - 2019-02-15

    ### Added

    - Danish translation (#297).

    ## [0.0.5] - 2014-08-09 [YANKED]

    ### Added

    - Markdown links to version tags on release headings.

    [unreleased]: https://github.com/olivierlacan/keep-a-changelog/compare/v1.1.1...HEAD
    [1.1.1]: https://github.com/olivierlacan/keep-a-changelog/compare/v1.1.0...v1.1.1
    [1.1.0]: https://github.com/olivierlacan/keep-a-changelog/compare/v1.0.0...v1.1.0
    [0.0.5]: https://github.com/olivierlacan/keep-a-changelog/compare/v0.0.4...v0.0.5
    [site]: https://keepachangelog.com/
    """
)


def notes(text: str, version: str) -> str:
    return release_notes(parse_changelog(text), version)


def refused(text: str, version: str) -> str:
    with pytest.raises(ChangelogError) as caught:
        notes(text, version)
    message = str(caught.value)
    assert "\n" not in message
    return message


# --- the toolkit's own changelog --------------------------------------------------------------------


def test_the_toolkits_changelog_has_notes_for_1_2_0() -> None:
    log = read_changelog(ROOT / "CHANGELOG.md")
    assert log.versions()[:2] == ["Unreleased", "1.2.0"]  # newest first, under [Unreleased]
    text = release_notes(log, "1.2.0")
    assert text.startswith("The first release") and text.endswith("\n") and not text.endswith("\n\n")
    assert {"### Added", "### Changed"} <= set(text.splitlines())
    assert not any(line.startswith("## ") for line in text.splitlines())
    # What changed for users: the breaking input rename, --version everywhere, the package and the image.
    assert "`toolkit-image-repository`" in text and "`toolkit-image`" in text and "**Breaking:**" in text
    assert "`--version`" in text and "`auto-toolkit`" in text and "$CI_REGISTRY/auto/toolkit:1.2.0" in text


def test_every_release_in_the_toolkits_changelog_gives_notes() -> None:
    log = read_changelog(ROOT / "CHANGELOG.md")
    for version in log.versions():
        if version != changelog.UNRELEASED:
            assert release_notes(log, version).strip()


# --- extraction ------------------------------------------------------------------------------------


def test_notes_are_the_sections_text_without_its_heading() -> None:
    text = notes(EXAMPLE, "1.1.0")
    assert text == "### Added\n\n- Danish translation (#297).\n"


def test_notes_bring_the_link_definitions_they_use_and_no_other() -> None:
    text = notes(EXAMPLE, "1.1.1")
    body, _, definitions = text.partition("\n\n[")
    assert body.startswith("### Added\n\n- Arabic translation (#444).")
    assert body.rstrip().endswith("- Improve French translation (#377).")
    assert ("[" + definitions).splitlines() == [
        "[1.1.0]: https://github.com/olivierlacan/keep-a-changelog/compare/v1.0.0...v1.1.0",
        "[site]: https://keepachangelog.com/",
    ]


def test_the_oldest_section_does_not_swallow_the_link_definitions() -> None:
    assert notes(EXAMPLE, "0.0.5") == "### Added\n\n- Markdown links to version tags on release headings.\n"


@pytest.mark.parametrize(
    "heading",
    [
        "## [2.0.0] - 2026-01-31",
        "## 2.0.0 - 2026-01-31",
        "## [2.0.0](https://example.com/tags/2.0.0) - 2026-01-31",
        "## [2.0.0] \u2013 2026-01-31",  # an en dash, as some editors write it
        "## [2.0.0] - 2026-01-31 [YANKED]",
        "##   [2.0.0] - 2026-01-31 ##",
    ],
)
def test_heading_spellings(heading: str) -> None:
    assert notes(f"# Changelog\n\n{heading}\n\n- Changed.\n", "2.0.0") == "- Changed.\n"


def test_headings_inside_code_blocks_do_not_end_a_section() -> None:
    text = "## [1.0.0] - 2026-01-01\n\n```md\n## [0.9.0] - 2025-01-01\n```\n\n~~~\n# not a title\n~~~\n- After.\n"
    assert notes(text, "1.0.0") == "```md\n## [0.9.0] - 2025-01-01\n```\n\n~~~\n# not a title\n~~~\n- After.\n"


def test_a_level_one_heading_ends_a_section_and_deeper_ones_do_not() -> None:
    text = "## [1.0.0] - 2026-01-01\n- One.\n### Fixed\n- Two.\n# Appendix\nNot notes.\n"
    assert notes(text, "1.0.0") == "- One.\n### Fixed\n- Two.\n"


def test_a_byte_order_mark_and_windows_line_ends_are_read() -> None:
    assert notes("\ufeff## [1.0.0] - 2026-01-01\r\n- One.\r\n", "1.0.0") == "- One.\n"


def test_pre_release_versions_are_releases_too() -> None:
    assert notes("## [2.0.0-rc.1] - 2026-01-01\n- Try it.\n", "2.0.0-rc.1") == "- Try it.\n"


# --- refusals --------------------------------------------------------------------------------------


def test_a_version_without_a_section_is_refused_naming_what_to_add() -> None:
    message = refused(EXAMPLE, "1.2.0")
    assert message == (
        "CHANGELOG.md has no section for 1.2.0 (releases there: 1.1.1, 1.1.0, 0.0.5): "
        'add "## [1.2.0] - YYYY-MM-DD" with the release\'s changes (move them from [Unreleased])'
    )


def test_a_changelog_with_no_release_says_so() -> None:
    assert "(releases there: none)" in refused("# Changelog\n\n## [Unreleased]\n- Soon.\n", "1.0.0")


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("v1.1.0", "'v1.1.0' is not a release version: a release is a semantic version such as 1.2.0 (the tag 1.1.0, "
         "without the v?)"),
        ("Unreleased", "'Unreleased' is not a release version: a release is a semantic version such as 1.2.0"),
        ("1.1", "'1.1' is not a release version: a release is a semantic version such as 1.2.0"),
        ("01.1.0", "'01.1.0' is not a release version: a release is a semantic version such as 1.2.0"),
        ("", "'' is not a release version: a release is a semantic version such as 1.2.0"),
    ],
)  # fmt: skip
def test_what_is_not_a_release_version_is_refused(version: str, expected: str) -> None:
    assert refused(EXAMPLE, version) == expected


def test_two_sections_for_one_version_are_refused() -> None:
    text = "## [1.0.0] - 2026-01-01\n- A.\n\n## [1.0.0] - 2026-01-02\n- B.\n"
    assert refused(text, "1.0.0") == "CHANGELOG.md has 2 sections for 1.0.0 (lines 1, 4): keep one"


@pytest.mark.parametrize(
    ("heading", "expected"),
    [
        ("## [1.0.0]", 'CHANGELOG.md line 3: the section for 1.0.0 has no date: write "## [1.0.0] - YYYY-MM-DD"'),
        ("## [1.0.0] - 2026-02-30", "CHANGELOG.md line 3: the date of 1.0.0, '2026-02-30', is not a date written "
         "YYYY-MM-DD"),
        ("## [1.0.0] - 20260201", "CHANGELOG.md line 3: the date of 1.0.0, '20260201', is not a date written "
         "YYYY-MM-DD"),
        ("## [1.0.0] - soon", "CHANGELOG.md line 3: the date of 1.0.0, 'soon', is not a date written YYYY-MM-DD"),
    ],
)  # fmt: skip
def test_a_release_needs_a_real_date(heading: str, expected: str) -> None:
    assert refused(f"# Changelog\n\n{heading}\n\n- Changed.\n", "1.0.0") == expected


def test_an_empty_section_is_refused() -> None:
    text = "## [Unreleased]\n\n## [1.0.0] - 2026-01-01\n\n\n## [0.9.0] - 2025-01-01\n- Old.\n"
    assert refused(text, "1.0.0") == (
        "CHANGELOG.md line 3: the section for 1.0.0 is empty: list the release's changes under it"
    )


def test_a_section_of_link_definitions_only_is_empty() -> None:
    assert "is empty" in refused("## [1.0.0] - 2026-01-01\n[1.0.0]: https://example.com/1.0.0\n", "1.0.0")


def test_reading_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ChangelogError, match=r"CHANGELOG.md: no such file: the release's notes come from its section"):
        read_changelog(tmp_path / "CHANGELOG.md")


def test_reading_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "CHANGELOG.md"
    path.write_bytes(b"## [1.0.0] - 2026-01-01\n- Caf\xe9.\n")
    with pytest.raises(ChangelogError, match=r"not UTF-8 text \(at byte offset 29\): save it as UTF-8"):
        read_changelog(path)


def test_reading_a_file_over_the_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(changelog, "MAX_BYTES", 100)
    path = tmp_path / "CHANGELOG.md"
    path.write_text("x" * 101)
    with pytest.raises(Exception, match=r"101 bytes, over the size budget of 100: refused unread"):
        read_changelog(path)


# --- the command -----------------------------------------------------------------------------------


@pytest.fixture
def example(tmp_path: Path) -> Path:
    path = tmp_path / "CHANGELOG.md"
    path.write_text(EXAMPLE)
    return path


def test_release_notes_prints_the_notes(example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["release-notes", "1.1.0", "--changelog", str(example)]) == 0
    out, err = capsys.readouterr()
    assert (out, err) == ("### Added\n\n- Danish translation (#297).\n", "")


def test_release_notes_writes_the_output_file(example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = example.parent / "release-notes.md"
    assert main(["release-notes", "1.1.0", "--changelog", str(example), "--output", str(output)]) == 0
    assert output.read_text() == "### Added\n\n- Danish translation (#297).\n"
    assert capsys.readouterr().out == f"{output}: the notes of 1.1.0 from {example}, 3 lines\n"


def test_release_notes_refuses_in_one_line_with_exit_2(example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = example.parent / "release-notes.md"
    assert main(["release-notes", "9.9.9", "--changelog", str(example), "--output", str(output)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and not output.exists()
    assert err.splitlines() == [f"Error: {example} has no section for 9.9.9 (releases there: 1.1.1, 1.1.0, 0.0.5): "
                                'add "## [9.9.9] - YYYY-MM-DD" with the release\'s changes (move them from '
                                "[Unreleased])"]  # fmt: skip


def test_release_notes_reads_changelog_md_of_the_current_directory(
    example: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(example.parent)
    assert main(["release-notes", "0.0.5"]) == 0
    assert capsys.readouterr().out == "### Added\n\n- Markdown links to version tags on release headings.\n"


# The release pipeline installs the wheel without its dependencies before it runs `auto-pipelines --version` and
# `release-notes` (.gitlab-ci.yml, dist): both must import nothing beyond the standard library and the toolkit.
IMPORTS_PROBE = """
import contextlib, io, json, sys
before = set(sys.modules)
from pipelines.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    codes = [main(["release-notes", "1.1.0", "--changelog", sys.argv[1]])]
    try:
        main(["--version"])
    except SystemExit as exc:
        codes.append(exc.code)
toolkit = {"autocore", "pipelines", "auto_toolkit_templates"}
loaded = {name.split(".")[0] for name in set(sys.modules) - before}
print(json.dumps({"codes": codes, "outside": sorted(loaded - set(sys.stdlib_module_names) - toolkit)}))
"""


def test_release_notes_and_version_need_no_dependency(example: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", IMPORTS_PROBE, str(example)], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"codes": [0, 0], "outside": []}
