"""The compose loader over real Docker Compose / Swarm stack files written by other people.

The files under ``compose_corpus/`` are kept byte for byte as published; ``INDEX.tsv`` pins each one
to its repository, commit and path. Nothing here touches the network or Docker.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from deployer import compose
from deployer.errors import ConfigError

CORPUS = Path(__file__).parent / "compose_corpus"
INDEX = CORPUS / "INDEX.tsv"
INDEX_HEADER = ["file", "repository", "commit", "path", "note"]
COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
REPOSITORY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
FILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*--[A-Za-z0-9][A-Za-z0-9_.-]*\.yml$")

CORPUS_FILES = sorted(CORPUS.glob("*.yml"))


def index_rows() -> list[list[str]]:
    lines = INDEX.read_text().splitlines()
    assert lines, "INDEX.tsv is empty"
    assert lines[0].split("\t") == INDEX_HEADER
    return [line.split("\t") for line in lines[1:]]


def services_by_yaml(path: Path) -> list[str]:
    """The service names under the top-level ``services:``, read by PyYAML alone (anchors resolved by YAML)."""
    document = yaml.safe_load(path.read_text())
    assert isinstance(document, dict)
    services = document["services"]
    assert isinstance(services, dict)
    return list(services)


def test_corpus_is_not_trivial() -> None:
    assert 15 <= len(CORPUS_FILES) <= 20
    repositories = {row[1] for row in index_rows()}
    assert len(repositories) >= 10


def test_index_lists_exactly_the_corpus_files() -> None:
    rows = index_rows()
    for row in rows:
        assert len(row) == len(INDEX_HEADER), row
        name, repository, commit, path, note = row
        assert FILE_RE.fullmatch(name), name
        assert REPOSITORY_RE.fullmatch(repository), row
        assert COMMIT_RE.fullmatch(commit), row
        assert path and not path.startswith("/"), row
        assert note.strip(), row
    names = [row[0] for row in rows]
    assert len(names) == len(set(names)), "a file is listed twice"
    assert sorted(names) == [path.name for path in CORPUS_FILES]


@pytest.mark.parametrize("path", CORPUS_FILES, ids=[path.stem for path in CORPUS_FILES])
def test_loader_reads_real_compose_file(path: Path) -> None:
    loaded = compose.load([str(path)])
    assert list(loaded.services) == services_by_yaml(path)
    assert loaded.files == (compose.ComposeFile(str(path), path.read_text()),)
    assert loaded.docs == {}  # none of these files carries auto.docs.* labels


def test_several_real_files_give_the_union_in_first_seen_order() -> None:
    paths = [CORPUS / "dogvscat--stack-swarmprom.yml", CORPUS / "swarmprom--docker-compose.yml"]
    expected: dict[str, None] = {}
    for path in paths:
        expected.update(dict.fromkeys(services_by_yaml(path)))
    loaded = compose.load([str(path) for path in paths])
    assert list(loaded.services) == list(expected)
    assert [item.path for item in loaded.files] == [str(path) for path in paths]


def cut_inside_quoted_value(text: str) -> str:
    """Stop in the middle of a single-quoted command argument of node-exporter (line 185)."""
    return text[: text.index("($$|/)'") + len("($$")]


def cut_inside_flow_sequence(text: str) -> str:
    """Stop inside the ``command: [...]`` flow sequence of memcached (line 139)."""
    return text[: text.index('command: ["-I", ') + len('command: ["-I", ')]


def services_as_list(text: str) -> str:
    """Turn each service of the ``services:`` block into a list item (``  - redis:``)."""
    head, separator, tail = text.partition("\nnetworks:\n")
    assert separator
    return re.sub(r"(?m)^  (\w+):$", r"  - \1:", head) + separator + tail


def rename_vote_service(text: str) -> str:
    assert "\n  vote:\n" in text
    return text.replace("\n  vote:\n", "\n  vote app:\n", 1)


def misspell_services_key(text: str) -> str:
    assert text.startswith("services:\n")
    return text.replace("services:\n", "service:\n", 1)


BROKEN: list[tuple[str, str, Callable[[str], str], str]] = [
    (
        "yaml-cut-in-quoted-value",
        "swarmprom--docker-compose.traefik.yml",
        cut_inside_quoted_value,
        "compose file {path} is not valid YAML at line 185: fix the file",
    ),
    (
        "yaml-cut-in-flow-sequence",
        "sentry-self-hosted--docker-compose.yml",
        cut_inside_flow_sequence,
        "compose file {path} is not valid YAML at line 139: fix the file",
    ),
    (
        "services-as-list",
        "example-voting-app--docker-stack.yml",
        services_as_list,
        "compose file {path}: 'services' must be a mapping of service names",
    ),
    (
        "service-name-with-space",
        "example-voting-app--docker-stack.yml",
        rename_vote_service,
        "compose file {path}: invalid service name 'vote app'",
    ),
    (
        "services-key-misspelt",
        "docker-elk--docker-compose.yml",
        misspell_services_key,
        "compose files {path} define no service: nothing to deploy",
    ),
]


@pytest.mark.parametrize(("source", "breaker", "message"), [row[1:] for row in BROKEN], ids=[row[0] for row in BROKEN])
def test_broken_variant_of_real_file_gives_one_config_error(
    tmp_path: Path, source: str, breaker: Callable[[str], str], message: str
) -> None:
    original = (CORPUS / source).read_text()
    broken = breaker(original)
    assert broken != original
    path = tmp_path / f"broken-{source}"
    path.write_text(broken)
    with pytest.raises(ConfigError) as caught:
        compose.load([str(path)])
    error = caught.value
    assert type(error) is ConfigError
    assert str(error) == message.format(path=path)
    # One error on its own: no chained YAML or OS exception shown under it.
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__
