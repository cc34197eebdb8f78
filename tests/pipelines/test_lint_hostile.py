"""auto-pipelines lint against hostile files: each is refused in one line naming its budget, or linted, in
bounded time; never a hang. The inputs are the ones the testers fed (written out here, byte for byte)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pipelines import cli
from pipelines.errors import PipelinesConfigError
from pipelines.gitlab_yaml import parse_pipeline
from pipelines.lint import lint_document
from pipelines.references import MAX_REFERENCE_NODES, resolve_references

# Generous: each case takes well under a second here; the bound only tells a hang from an answer.
BOUND = 20.0


def _fan_out(fan: int, levels: int) -> str:
    """Lists of references to lists of references: ``fan ** levels`` nodes once expanded, in a few hundred bytes."""
    lines = [f".l0: [{', '.join(['x'] * fan)}]"]
    for level in range(1, levels):
        lines.append(f".l{level}: [{', '.join([f'!reference [.l{level - 1}]'] * fan)}]")
    lines.append(f"job:\n  script: !reference [.l{levels - 1}]")
    return "\n".join(lines) + "\n"


def _lint_cli(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str], list[str]]:
    path = tmp_path / ".gitlab-ci.yml"
    path.write_text(text, encoding="utf-8")
    started = time.monotonic()
    code = cli.main(["lint", str(path)])
    assert time.monotonic() - started < BOUND
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err.splitlines()


# --------------------------------------------------------------------------- !reference expansion


def test_reference_fan_out_is_refused_in_one_line_naming_the_budget(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _fan_out(10, 10)  # the tester's file: 1,742 bytes, 10**10 nodes once expanded (minutes before)
    assert len(text.encode()) == 1742
    code, out, err = _lint_cli(tmp_path, text, capsys)
    assert code == 2
    assert err == [
        f"Error: {tmp_path / '.gitlab-ci.yml'}: its !reference tags expand to more than 200000 nodes, "
        "over the reference expansion budget of 200000: refused unlinted"
    ]
    assert out[-1].endswith("1 refused (unreadable or not valid YAML)")


@pytest.mark.parametrize(("fan", "levels"), [(1000, 10), (440, 2), (20, 4)])
def test_wider_fan_outs_are_refused_as_fast(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fan: int, levels: int
) -> None:
    code, _, err = _lint_cli(tmp_path, _fan_out(fan, levels), capsys)
    assert code == 2
    assert err[0].endswith("over the reference expansion budget of 200000: refused unlinted")


def test_a_fan_out_under_the_budget_is_linted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _lint_cli(tmp_path, _fan_out(9, 5), capsys)  # adds 141,148 nodes
    # Linted: the script's lists nest 5 deep, which GitLab flattens (up to 10 levels).
    assert code == 0 and err == []
    assert out[-1] == "1 file(s) checked: 1 clean, 0 with errors; 0 error(s), 0 warning(s)"


def test_many_jobs_referencing_one_long_script_just_fit() -> None:
    # The budget's worst honest case: 199 jobs that each reference a 1,000-line script (199,000 nodes added).
    text = ".big:\n  script: [" + ", ".join(["echo x"] * 1000) + "]\n"
    text += "".join(f"j{i}: {{script: !reference [.big, script]}}\n" for i in range(199))
    started = time.monotonic()
    assert lint_document("big.yml", *parse_pipeline(text, "big.yml")) == []
    assert time.monotonic() - started < BOUND


def test_the_budget_counts_the_nodes_references_add() -> None:
    _, body = parse_pipeline(".a: [x, y]\nj: {script: !reference [.a]}\n", "r.yml")
    resolved, unresolved = resolve_references(body, "r.yml", max_nodes=3)  # the list and its two items
    assert resolved["j"]["script"] == ["x", "y"] and unresolved == []
    with pytest.raises(PipelinesConfigError) as info:
        resolve_references(body, "r.yml", max_nodes=2)
    assert str(info.value) == (
        "r.yml: its !reference tags expand to more than 2 nodes, over the reference expansion budget of 2: "
        "refused unlinted"
    )
    assert MAX_REFERENCE_NODES == 200_000


def test_references_that_nest_past_the_depth_budget_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Each level is 20 lists deep and references the one below: 180+ levels once expanded, in 597 bytes. Unbounded,
    # lint's recursive walks would run out of stack.
    lines = [".d0: [x]"] + [f".d{i}: " + "[" * 20 + f"!reference [.d{i - 1}]" + "]" * 20 for i in range(1, 10)]
    text = "\n".join([*lines, "j: {script: !reference [.d9]}"]) + "\n"
    code, _, err = _lint_cli(tmp_path, text, capsys)
    assert code == 2
    assert err == [
        f"Error: {tmp_path / '.gitlab-ci.yml'}: nested deeper than 128 levels once its !reference tags are "
        "expanded, over the nesting depth budget of 128: refused unlinted"
    ]


def test_a_reference_cycle_stops_at_gitlabs_nesting_limit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _lint_cli(tmp_path, ".a: {script: [!reference [.a, script]]}\nj: {script: [x]}\n", capsys)
    assert code == 3
    assert out[0].endswith("!reference [.a, script] names nothing: nested deeper than 10 levels [unknown-reference]")


# --------------------------------------------------------------------------- GitLab regexes: RE2


def _component(regex: str, default: str) -> str:
    return (
        f"spec:\n  inputs:\n    v:\n      default: {default}\n      regex: {regex}\n---\n"
        'j:\n  script: ["echo $[[ inputs.v ]]"]\n'
    )


def test_catastrophic_regex_is_matched_in_linear_time(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The tester's input: 59 s with Python's backtracking re; RE2, as GitLab runs it, answers at once.
    code, out, err = _lint_cli(tmp_path, _component("^(a+)+$", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!"), capsys)
    assert code == 3 and err == []
    assert out[0] == (
        f"{tmp_path / '.gitlab-ci.yml'}: $.spec.inputs.v.default: input 'v': default "
        "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!' does not match its regex '^(a+)+$' [input-default-regex]"
    )


@pytest.mark.parametrize(
    ("regex", "reason"),
    [
        (r"^(a)\1$", r"invalid escape sequence: \1"),
        ("^(?=a)a$", "invalid perl operator: (?="),
        ("^(?<=a)a$", "invalid perl operator: (?<="),
        ("^(?!b)a$", "invalid perl operator: (?!"),
        ("^(?>a+)$", "invalid perl operator: (?>"),
    ],
)
def test_patterns_re2_refuses_are_errors_saying_gitlab_would_refuse_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], regex: str, reason: str
) -> None:
    code, out, err = _lint_cli(tmp_path, _component(f"'{regex}'", "a"), capsys)
    assert code == 3 and err == []  # nothing of RE2's own logging reaches stderr
    assert out[0] == (
        f"{tmp_path / '.gitlab-ci.yml'}: $.spec.inputs.v.regex: input 'v': regex {regex!r} is refused by RE2, "
        f"GitLab's regex engine ({reason}): GitLab would refuse it [input-regex]"
    )


def test_re2_syntax_python_lacks_is_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # \z and \pL are RE2 (Python 3.11's re refuses both): GitLab takes this regex, so lint does.
    code, out, _ = _lint_cli(tmp_path, _component(r"'^\pL+\z'", "abc"), capsys)
    assert (code, out) == (0, ["1 file(s) checked: 1 clean, 0 with errors; 0 error(s), 0 warning(s)"])


def test_dollar_is_the_end_of_the_text_as_in_re2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Python's $ also matches before a final newline; RE2's (GitLab's) does not: "abc\n" is not ^[a-z]+$.
    code, out, _ = _lint_cli(tmp_path, _component("'^[a-z]+$'", '"abc\\n"'), capsys)
    assert code == 3
    assert out[0].endswith("input 'v': default 'abc\\n' does not match its regex '^[a-z]+$' [input-default-regex]")


def test_schema_pattern_on_a_long_cache_key_is_linear(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # GitLab's schema checks cache:key against ^[^/]*[^./][^/]*$: n**2 steps on Python's re (minutes for this key).
    code, out, _ = _lint_cli(tmp_path, 'j:\n  script: [x]\n  cache:\n    key: "' + "a" * 200_000 + '/"\n', capsys)
    assert code == 3
    assert out[0].startswith(f"{tmp_path / '.gitlab-ci.yml'}: $.j.cache.key: 'aaaa") and out[0].endswith("[schema]")


def test_interpolations_that_never_close_are_scanned_in_linear_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _lint_cli(tmp_path, 'j:\n  script:\n    - "' + "$[[ inputs.a |" * 100_000 + '"\n', capsys)
    assert (code, out) == (0, ["1 file(s) checked: 1 clean, 0 with errors; 0 error(s), 0 warning(s)"])


# --------------------------------------------------------------------------- size and repetition


def test_stage_list_in_an_issue_is_capped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stages = [f"s{i}" for i in range(30)]
    code, out, _ = _lint_cli(tmp_path, f"stages: [{', '.join(stages)}]\nj: {{stage: nope, script: [x]}}\n", capsys)
    assert code == 3
    listed = ", ".join(stages[:20])
    assert out[0].endswith(f"stage 'nope' is not in stages ({listed}, ... (30 in all)) [undeclared-stage]")


def test_thousands_of_stages_jobs_and_needs_lint_in_linear_time() -> None:
    # Each issue listed every stage, and each needs: rebuilt the stage order: n**2 (gigabytes of messages).
    n = 2000
    text = "stages: [" + ", ".join(f"s{i}" for i in range(n)) + "]\nj0: {stage: s0, script: [x]}\n"
    text += "".join(f"j{i}: {{stage: s{i}, script: [x], needs: [j{i - 1}]}}\n" for i in range(1, n))
    text += "".join(
        f"k{i}: {{stage: nope, script: [x], when: sometimes, after_script: !reference [.no]}}\n" for i in range(n)
    )
    started = time.monotonic()
    issues = lint_document("big.yml", *parse_pipeline(text, "big.yml"))
    assert time.monotonic() - started < BOUND
    assert len(issues) == 3 * n
    assert max(len(i.message) for i in issues) < 300


def test_a_500_deep_component_body_is_one_line_naming_the_depth_budget(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deep = "".join("  " * i + f"k{i}:\n" for i in range(500)) + "  " * 500 + "script: [x]\n"
    code, _, err = _lint_cli(tmp_path, "spec:\n  inputs:\n    a:\n---\n" + deep, capsys)
    assert code == 2
    assert err == [
        f"Error: {tmp_path / '.gitlab-ci.yml'}: nested deeper than 128 levels, over the nesting depth budget of "
        "128: refused unread"
    ]


# --------------------------------------------------------------------------- extends and include: expansion


def test_extends_that_would_copy_millions_of_keys_are_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    template = "\n".join(f"    k{i}: v" for i in range(3000))
    jobs = "\n".join(f"j{i}: {{extends: .t, script: [a]}}" for i in range(3000))
    code, out, err = _lint_cli(tmp_path, f".t:\n  variables:\n{template}\n{jobs}\n", capsys)  # 140 KB, 9e6 copies
    assert code == 2
    assert err == [
        f"Error: {tmp_path / '.gitlab-ci.yml'}: its extends: copy more than 200000 keys, over the extends "
        "expansion budget of 200000: refused unlinted"
    ]


def test_includes_that_hold_too_much_together_are_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pipelines.includes.MAX_INCLUDED_BYTES", 1000)
    (tmp_path / ".git").mkdir()
    for n in range(3):
        (tmp_path / f"part{n}.yml").write_text(f"job{n}:\n  script: ['{'x' * 400}']\n")
    code, _, err = _lint_cli(tmp_path, "include: [{local: 'part*.yml'}]\n", capsys)
    assert code == 2
    assert err == [
        f"Error: {tmp_path / '.gitlab-ci.yml'}: its includes hold more than 1000 bytes together, over the include "
        "size budget of 1000: refused unlinted"
    ]
