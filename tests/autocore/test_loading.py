"""The budgets of the shared loaders: each hostile input is refused in one line naming its budget, fast and
small; real files (ours and the real-world corpus) stay within the defaults."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from autocore.errors import EXIT_BAD_INPUT, BudgetExceededError, NotFiniteError
from autocore.loading import Budget, StrictYAMLLoader, load_json, load_yaml

ROOT = Path(__file__).resolve().parents[2]
LOLS = ",".join(["lol"] * 9)
ALIAS_BOMB = f"a: &a [{LOLS}]\n" + "".join(
    f"{b}: &{b} [{','.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi", strict=True)
)


def cost(load: Callable[[], Any]) -> tuple[BaseException, float, int]:
    tracemalloc.start()
    started = time.perf_counter()
    try:
        load()
    except Exception as exc:  # what the test expects is asserted by the caller
        error: BaseException = exc
    else:
        raise AssertionError("no error")
    finally:
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return error, seconds, peak


@pytest.mark.parametrize(
    ("name", "load", "message"),
    [
        (
            "yaml-500-deep",
            lambda: load_yaml("[" * 500 + "]" * 500, "deep.yaml"),
            "deep.yaml: nested deeper than 128 levels, over the nesting depth budget of 128: refused unread",
        ),
        (
            "yaml-block-500-deep",
            lambda: load_yaml("".join("  " * i + "a:\n" for i in range(500)) + "  " * 500 + "b: 1\n", "d.yaml"),
            "d.yaml: nested deeper than 128 levels, over the nesting depth budget of 128: refused unread",
        ),
        (
            "json-100000-deep",
            lambda: load_json("[" * 100_000 + "]" * 100_000, "deep.json"),
            "deep.json: nested deeper than 128 levels, over the nesting depth budget of 128: refused unread",
        ),
        (
            "json-200-deep",
            lambda: load_json('{"a":' * 200 + "1" + "}" * 200, "d.json"),
            "d.json: nested deeper than 128 levels, over the nesting depth budget of 128: refused unread",
        ),
        (
            "alias-bomb",
            lambda: load_yaml(ALIAS_BOMB, "bomb.yaml"),
            "bomb.yaml: more than 500000 nodes (YAML aliases expanded), over the node count budget of 500000:"
            " refused unread",
        ),
        (
            "yaml-5000-digits",
            lambda: load_yaml("maximum: " + "9" * 5000, "int.yaml"),
            "int.yaml: an integer of 5000 digits, over the integer size budget of 100: refused unread",
        ),
        (
            "json-5000-digits",
            lambda: load_json('{"maximum": -' + "9" * 5000 + "}", "int.json"),
            "int.json: an integer of 5001 digits, over the integer size budget of 100: refused unread",
        ),
        (
            "size",
            lambda: load_json(b"[" + b"1," * 600 + b"1]", "big.json", budget=Budget(max_bytes=1000)),
            "big.json: 1203 bytes, over the size budget of 1000: refused unread",
        ),
    ],
)
def test_each_budget_is_one_line_naming_it(name: str, load: Callable[[], Any], message: str) -> None:
    error, seconds, peak = cost(load)
    assert isinstance(error, BudgetExceededError), repr(error)
    assert str(error) == message
    assert error.exit_code == EXIT_BAD_INPUT
    assert seconds < 5 and peak < 50 * 2**20, (seconds, peak)  # linear in the input, never the expansion


def test_the_alias_bomb_is_small() -> None:
    assert len(ALIAS_BOMB) < 400
    # What is counted is the expansion (9**9 nodes), not the 9 anchors written.
    assert Budget().max_nodes < 9**9


@pytest.mark.parametrize(
    ("load", "message"),
    [
        (lambda: load_yaml("maximum: 1e999", "s.yaml"), "s.yaml: the number 1e999 is not finite"),
        (lambda: load_yaml("maximum: -.inf", "s.yaml"), "s.yaml: the number -.inf is not finite"),
        (lambda: load_yaml("maximum: .NaN", "s.yaml"), "s.yaml: the number .NaN is not finite"),
        (lambda: load_json('{"maximum": NaN}', "s.json"), "s.json: the number NaN is not finite"),
        (lambda: load_json('{"maximum": -Infinity}', "s.json"), "s.json: the number -Infinity is not finite"),
        (lambda: load_json('{"maximum": 1e999}', "s.json"), "s.json: the number 1e999 is not finite"),
    ],
)
def test_numbers_json_cannot_carry_are_refused(load: Callable[[], Any], message: str) -> None:
    with pytest.raises(NotFiniteError) as err:
        load()
    assert str(err.value) == f"{message}, and JSON has no such number: write a finite one"


def test_what_is_allowed_still_loads() -> None:
    text = "a: [1, 2.5, 1.0e+300, 'x', 2024-01-01, '" + "9" * 500 + "']\nb: &x {c: 1}\nd: *x\n"
    assert load_yaml(text, "ok.yaml") == {
        "a": [1, 2.5, 1e300, "x", "2024-01-01", "9" * 500],
        "b": {"c": 1},
        "d": {"c": 1},
    }
    assert load_json('{"a": [1, 2.5, -0.0, "NaN"], "b": {"c": null}}', "ok.json") == {
        "a": [1, 2.5, -0.0, "NaN"],
        "b": {"c": None},
    }
    assert load_yaml("[" * 128 + "]" * 128, "edge.yaml") is not None
    assert load_json("[" * 128 + "]" * 128, "edge.json") is not None


def test_strictness_is_kept() -> None:
    with pytest.raises(yaml.YAMLError, match="duplicate key 'a'"):
        load_yaml("a: 1\na: 2\n", "dup.yaml")
    with pytest.raises(ValueError, match="duplicate key 'a'"):
        load_json('{"a": 1, "a": 2}', "dup.json")
    with pytest.raises(yaml.YAMLError):
        load_yaml("a: [", "broken.yaml", loader=StrictYAMLLoader)


def _repository_files() -> list[Path]:
    patterns = ("templates/*.yml", "docgen/toolkit-docs/**/*.y*ml", "docgen/toolkit-docs/**/*.json")
    patterns += ("tests/docgen/corpus/**/*.y*ml", "tests/docgen/corpus/**/*.json", "deployer/**/*.y*ml")
    patterns += ("tests/pipelines/corpus/*.yml", ".gitlab-ci.yml")
    return sorted({p for pattern in patterns for p in ROOT.glob(pattern)})


def test_every_yaml_and_json_file_of_the_repository_is_within_the_defaults() -> None:
    files = _repository_files()
    assert len(files) > 30
    for path in files:
        text = path.read_text()
        try:
            (load_json if path.suffix == ".json" else load_yaml)(text, str(path))
        except BudgetExceededError as exc:
            raise AssertionError(f"a file of ours is over a default budget: {exc}") from exc
        except (yaml.YAMLError, ValueError):
            pass  # the broken samples are broken on purpose; only budgets are under test here


@pytest.mark.system
def test_the_real_world_specs_are_within_the_defaults() -> None:
    from tests.docgen.realworld import spec_paths
    from tests.support import unavailable

    try:
        paths = spec_paths()
    except RuntimeError as exc:
        unavailable(f"the real-world corpus: {exc}")
    assert len(paths) > 50
    for path in paths:
        text = path.read_text()
        (load_json if path.suffix == ".json" else load_yaml)(text, str(path))


def test_a_redefined_anchor_means_the_most_recent_node() -> None:
    """YAML 1.1/1.2: anchors need not be unique; go-swagger's composed-auth example redefines one (Psych, yaml.v3
    and Redocly read it; PyYAML alone refused it)."""
    text = "a: &x 1\nb: *x\nc: &x 2\nd: *x\n"
    assert load_yaml(text, "s.yaml") == {"a": 1, "b": 1, "c": 2, "d": 2}
    assert load_yaml("a: &x {k: 1}\nb: &x {k: 2}\nc: {<<: *x}\n", "s.yaml")["c"] == {"k": 2}
