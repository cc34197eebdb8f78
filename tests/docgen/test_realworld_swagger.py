"""docgen.validate on real specs from public projects (Swagger 2.0 most of them), each message word for word.

``corpus/realworld-github/INDEX.tsv`` pins every file to its repository, commit, path and licence; the expected
verdicts and messages are in ``realworld_swagger_expected.json``, with the git blob id of each file (the bytes are
the upstream file's: ``git ls-tree <commit> <path>`` in the repository gives the same id). Every message was
judged against the specification of its version (``docgen/SPEC-DIFFERENCES.md`` says where docgen differs from
openapi-spec-validator and from ``redocly lint``). The broken variants are the real specs with one thing changed,
written as a patch: each gives the message listed, and nothing else.

To change an expectation, change the message (``docgen/spec_messages.py``, ``docgen/spec_verdicts.py``) and the
JSON by hand: there is deliberately no regenerating script, so that every new text is read.
"""

from __future__ import annotations

import copy
import csv
import functools
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from docgen.errors import ConfigError
from docgen.validate import load_spec, validate
from tests.docgen.test_spec_corpus import resolves

REAL = Path(__file__).parent / "corpus" / "realworld-github"
EXPECTED = json.loads((Path(__file__).parent / "realworld_swagger_expected.json").read_text(encoding="utf-8"))
SPECS: dict[str, dict[str, Any]] = EXPECTED["specs"]
VARIANTS: list[dict[str, Any]] = EXPECTED["variants"]

pytestmark = pytest.mark.usefixtures("no_network")  # offline: any connection attempt fails


def _index() -> list[dict[str, str]]:
    with (REAL / "INDEX.tsv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


@functools.cache
def _loaded(name: str) -> tuple[dict[str, Any], str]:
    return load_spec(REAL / name)


def _issues(document: dict[str, Any], source: str) -> list[list[str]]:
    return sorted([i.severity, i.rule, i.path, i.message] for i in validate(document, service="svc", source=source))


# --------------------------------------------------------------------------- the corpus itself


def test_every_file_is_pinned_and_every_pinned_file_is_there() -> None:
    rows = _index()
    listed = [row["file"] for row in rows]
    assert len(listed) == len(set(listed))
    assert sorted(listed) == sorted(p.name for p in REAL.iterdir() if p.name != "INDEX.tsv")
    for row in rows:
        assert re.fullmatch(r"[0-9a-f]{40}", row["commit"]), row
        assert re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", row["repository"]), row
        assert row["path"] and row["licence"], row
    # At least 15 specs beyond the first four, at least 10 of them Swagger 2.0.
    assert set(SPECS) <= set(listed)
    assert len(SPECS) >= 15
    assert sum(entry["version"] == "2.0" for entry in SPECS.values()) >= 10


@pytest.mark.parametrize("name", sorted(SPECS))
def test_the_bytes_are_the_upstream_file(name: str) -> None:
    data = (REAL / name).read_bytes()
    assert hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest() == SPECS[name]["blob"]  # noqa: S324 - git's id


# --------------------------------------------------------------------------- the real specs as published


def _spec_cases() -> list[Any]:
    cases = []
    for name in sorted(SPECS):
        bug = SPECS[name].get("known_bug")
        marks = [pytest.mark.xfail(reason=bug, strict=True, raises=ConfigError)] if bug else []
        cases.append(pytest.param(name, marks=marks, id=name))
    return cases


@pytest.mark.parametrize("name", _spec_cases())
def test_a_real_spec_gets_its_verdict_and_every_message_word_for_word(name: str) -> None:
    expected = SPECS[name]
    document, source = _loaded(name)
    assert str(document.get("swagger") or document.get("openapi")) == expected["version"]
    found = _issues(document, source)
    assert found == expected["issues"]
    verdict = "invalid" if any(severity == "error" for severity, *_ in found) else "valid"
    assert verdict == expected["verdict"]
    unresolved = [path for _, _, path, _ in found if not resolves(document, path)]
    assert unresolved == []


# --------------------------------------------------------------------------- broken variants


def _tokens(pointer: str) -> list[str]:
    return [token.replace("~1", "/").replace("~0", "~") for token in pointer.split("/")[1:]]


def _node(document: Any, tokens: list[str]) -> Any:
    for token in tokens:
        document = document[int(token)] if isinstance(document, list) else document[token]
    return document


def patched(document: dict[str, Any], patch: list[list[Any]]) -> dict[str, Any]:
    """A copy of ``document`` with each ``[op, pointer, value]`` applied: ``remove``, ``set`` (add or replace),
    ``rename`` (the key at the pointer, keeping its place) and ``copy`` (from the JSON pointer given as value)."""
    document = copy.deepcopy(document)
    for op, pointer, *value in patch:
        *parent_tokens, last = _tokens(pointer)
        parent = _node(document, parent_tokens)
        key: Any = int(last) if isinstance(parent, list) else last
        if op == "remove":
            del parent[key]
        elif op == "set":
            parent[key] = copy.deepcopy(value[0])
        elif op == "copy":
            parent[key] = copy.deepcopy(_node(document, _tokens(value[0])))
        elif op == "rename":
            entries = list(parent.items())
            parent.clear()
            parent.update((value[0] if name == key else name, item) for name, item in entries)
        else:
            raise ValueError(f"unknown patch operation {op!r}")
    return document


def test_patched() -> None:
    document = {"a": {"b": 1, "c": [1, 2]}}
    assert patched(document, [["rename", "/a/b", "z"], ["set", "/a/c/0", 5], ["copy", "/d", "/a/c"]]) == {
        "a": {"z": 1, "c": [5, 2]},
        "d": [5, 2],
    }
    assert list(patched(document, [["rename", "/a/b", "z"]])["a"]) == ["z", "c"]
    assert document == {"a": {"b": 1, "c": [1, 2]}}


@pytest.mark.parametrize("variant", VARIANTS, ids=[v["name"] for v in VARIANTS])
def test_a_broken_variant_of_a_real_spec_gives_its_message(variant: dict[str, Any]) -> None:
    original, source = _loaded(variant["spec"])
    assert _issues(original, source) == SPECS[variant["spec"]]["issues"] == []  # the change is the only fault
    document = patched(original, variant["patch"])
    found = _issues(document, source)
    assert found == sorted(variant["issues"])
    assert [path for _, _, path, _ in found if not resolves(document, path)] == []
