"""A release's notes from the changelog (Keep a Changelog 1.1.0): what the release job's description says.

``CHANGELOG.md`` holds one level-2 section per release, newest first, under an ``## [Unreleased]`` one::

    ## [Unreleased]

    ## [1.2.0] - 2026-12-01
    ### Added
    - ...

A release's notes are its section's text, from below its heading to the next level-1 or level-2 heading (headings
inside fenced code blocks do not count), without the link reference definitions Keep a Changelog puts at the end of
the file; the definitions the notes themselves use are appended, so their links still resolve once the notes stand
alone. A release without a section, with two, without a valid date or with nothing under its heading is refused
with one line saying what to write: the release pipeline must not publish a version whose notes are missing.

Standard library only: the toolkit's release pipeline runs ``python -m pipelines release-notes`` from the tagged
sources, before anything is installed.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from pathlib import Path

from autocore.errors import BudgetExceededError
from pipelines.errors import PipelinesConfigError

CHANGELOG = "CHANGELOG.md"
UNRELEASED = "Unreleased"
MAX_BYTES = 4 * 1024 * 1024  # a changelog is text someone writes; this is far past any real one
# A release as its tag names it: a semantic version (semver.org 2.0.0), no "v" (GitLab's CI/CD catalog takes no other).
_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$",
    re.ASCII,
)
# "## [1.2.0] - 2026-12-01", "## 1.2.0 - 2026-12-01", "## [Unreleased]", "## [0.0.5] - 2014-08-09 [YANKED]".
_SECTION = re.compile(r"^(?P<level>#{1,2})(?:[ \t]+(?P<title>.*?))?[ \t#]*$")
# The version, bracketed (and maybe linked inline) or plain, then " - DATE" (a hyphen; en and em dashes too).
_TITLE = re.compile(
    r"^(?:\[(?P<bracketed>[^\]]*)\](?:\([^)\s]*\))?|(?P<plain>[^\s\[\]]+))"
    r"(?:[ \t]+[-\u2013\u2014][ \t]+(?P<date>\S+))?(?P<rest>.*)$"
)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_LINK_DEFINITION = re.compile(r"^ {0,3}\[(?P<label>[^\]]+)\]:[ \t]*\S")
_LINK_USE = re.compile(r"\[(?P<label>[^\]\n]+)\]")
_FENCE = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})")


class ChangelogError(PipelinesConfigError):
    """The changelog cannot give a release's notes: missing, unreadable, or no usable section for the version."""


@dataclass(frozen=True)
class Section:
    """One level-2 section: a release (``version`` and ``date``) or ``Unreleased``; ``line`` is its heading's."""

    version: str
    date: str | None
    line: int
    body: str


@dataclass(frozen=True)
class Changelog:
    source: str
    sections: tuple[Section, ...]
    links: dict[str, str] = field(default_factory=dict)  # a link definition's label, lower case -> its line

    def versions(self) -> list[str]:
        return [s.version for s in self.sections]


def is_release_version(text: str) -> bool:
    """Whether ``text`` is a release's version as its tag spells it: ``1.2.0``, ``2.0.0-rc.1`` (no ``v``)."""
    return bool(_SEMVER.match(text))


def parse_changelog(text: str, source: str = CHANGELOG) -> Changelog:
    """The sections and link definitions of a Keep a Changelog file. Lenient: only what a release needs is
    checked, by :func:`release_notes`."""
    sections: list[Section] = []
    links: dict[str, str] = {}
    current: tuple[str, str | None, int] | None = None
    body: list[str] = []
    fence: str | None = None

    def close() -> None:
        if current is not None:
            sections.append(Section(current[0], current[1], current[2], "\n".join(body).strip("\n")))

    for number, line in enumerate(text.removeprefix("\ufeff").splitlines(), start=1):
        opened = _FENCE.match(line)
        if fence is not None:
            if opened and opened["fence"][0] == fence[0] and len(opened["fence"]) >= len(fence):
                fence = None
            body.append(line)
            continue
        if opened:
            fence = opened["fence"]
            body.append(line)
            continue
        heading = _SECTION.match(line)
        if heading:
            close()
            current, body = None, []
            if heading["level"] == "##":
                title = _TITLE.match((heading["title"] or "").strip())
                if title:
                    version = (title["bracketed"] if title["bracketed"] is not None else title["plain"]).strip()
                    current = (version, title["date"], number)
            continue
        definition = _LINK_DEFINITION.match(line)
        if definition:
            links.setdefault(definition["label"].strip().lower(), line.strip())
            continue
        if current is not None:
            body.append(line)
    close()
    return Changelog(source, tuple(sections), links)


def read_changelog(path: str | Path = CHANGELOG) -> Changelog:
    """Read and parse the changelog at ``path``; ChangelogError when it is missing, too large or not UTF-8."""
    source = str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ChangelogError(f"{source}: no such file: the release's notes come from its section there") from None
    except OSError as exc:
        raise ChangelogError(f"{source}: cannot read it: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise BudgetExceededError(source, "size", MAX_BYTES, f"{len(data)} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ChangelogError(f"{source}: not UTF-8 text (at byte offset {exc.start}): save it as UTF-8") from None
    return parse_changelog(text, source)


def release_notes(changelog: Changelog, version: str) -> str:
    """The notes of release ``version``: its section's text, then the link definitions that text uses; ends with
    one newline. ChangelogError when the version is no release version, or its section is missing, repeated,
    undated or empty."""
    source = changelog.source
    if not is_release_version(version):
        unprefixed = version[1:] if version[:1] in ("v", "V") else ""
        hint = f" (the tag {unprefixed}, without the v?)" if is_release_version(unprefixed) else ""
        raise ChangelogError(
            f"{version!r} is not a release version: a release is a semantic version such as 1.2.0{hint}"
        )
    found = [s for s in changelog.sections if s.version == version]
    if not found:
        known = [v for v in changelog.versions() if v != UNRELEASED]
        listed = ", ".join(known[:5]) + (", ..." if len(known) > 5 else "") if known else "none"
        raise ChangelogError(
            f"{source} has no section for {version} (releases there: {listed}): "
            f'add "## [{version}] - YYYY-MM-DD" with the release\'s changes (move them from [Unreleased])'
        )
    if len(found) > 1:
        lines = ", ".join(str(s.line) for s in found)
        raise ChangelogError(f"{source} has {len(found)} sections for {version} (lines {lines}): keep one")
    section = found[0]
    where = f"{source} line {section.line}"
    if section.date is None:
        raise ChangelogError(f'{where}: the section for {version} has no date: write "## [{version}] - YYYY-MM-DD"')
    if not _valid_date(section.date):
        raise ChangelogError(f"{where}: the date of {version}, {section.date!r}, is not a date written YYYY-MM-DD")
    if not section.body.strip():
        raise ChangelogError(f"{where}: the section for {version} is empty: list the release's changes under it")
    notes = section.body.strip("\n")
    used = []
    for match in _LINK_USE.finditer(notes):
        label = match["label"].strip().lower()
        if label in changelog.links and changelog.links[label] not in used:
            used.append(changelog.links[label])
    if used:
        notes += "\n\n" + "\n".join(used)
    return notes + "\n"


def _valid_date(text: str) -> bool:
    """``YYYY-MM-DD`` naming a real day (Python also reads ``YYYYMMDD``; Keep a Changelog writes the former)."""
    if not _DATE.fullmatch(text):
        return False
    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        return False
    return True
