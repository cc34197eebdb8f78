"""auto-pipelines lint: a corpus of broken files (one expected issue each), good files, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import jinja2
import pytest

from autocore.issues import SEVERITY_WARNING
from pipelines import cli
from pipelines.errors import PipelinesConfigError
from pipelines.gitlab_yaml import Reference, parse_pipeline
from pipelines.lint import lint_document, lint_file
from pipelines.references import resolve_references
from pipelines.schema import schema_path

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).parent / "corpus"
TEMPLATES = sorted((ROOT / "templates").glob("*.yml"))
SERVICE_PIPELINE = ROOT / "cookiecutter-auto-service" / "{{cookiecutter.service_slug}}" / ".gitlab-ci.yml"


def lint_text(text: str) -> list:
    return lint_document("x.yml", *parse_pipeline(text, "x.yml"))


@pytest.mark.parametrize(
    ("name", "path", "rule", "message"),
    [
        ("undeclared-stage", "$.ship.stage", "undeclared-stage", "stage 'deploy' is not in stages (build, test)"),
        (
            "needs-unknown-job",
            "$.test.needs[1]",
            "unknown-needs",
            "needs 'compile', which is not a job of this pipeline",
        ),
        (
            "extends-unknown-job",
            "$.test.extends[1]",
            "unknown-extends",
            "extends '.python-base', which is not a job",
        ),
        (
            "undeclared-input",
            "$.test.script[0]",
            "undeclared-input",
            "$[[ inputs.tox-env ]] is not declared in spec: inputs",
        ),
        ("unused-input", "$.spec.inputs.python", "unused-input", "input 'python' is declared but never used"),
        (
            "default-not-in-options",
            "$.spec.inputs.environment.default",
            "input-default-not-in-options",
            "input 'environment': default 'prod' is not one of its options ('staging', 'production')",
        ),
        (
            "bad-regex",
            "$.spec.inputs.version.regex",
            "input-regex",
            "input 'version': regex '^v(\\\\d+$' does not compile: missing ), unterminated subpattern at position 2",
        ),
        (
            "reference-missing-job",
            "$.test.script[1]",
            "unknown-reference",
            "!reference [.teardown, script] names nothing: no job '.teardown'",
        ),
        (
            "needs-later-stage",
            "$.test.needs[0]",
            "needs-later-stage",
            "needs 'ship', a job of the later stage 'deploy' (this job is in 'test')",
        ),
        (
            "dependencies-unknown-job",
            "$.test.dependencies[1]",
            "unknown-dependencies",
            "dependencies 'package', which is not a job of this pipeline",
        ),
        (
            "default-wrong-type",
            "$.spec.inputs.timeout.default",
            "input-default-type",
            "input 'timeout': default 'soon' is not a number",
        ),
        (
            "schema-when",
            "$.test.when",
            "schema",
            "'sometimes' is not one of ['on_success', 'on_failure', 'always', 'never', 'manual', 'delayed']",
        ),
    ],
)
def test_broken_file_has_exactly_its_issue(name: str, path: str, rule: str, message: str) -> None:
    issues = lint_file(CORPUS / f"{name}.yml")
    severity = "warning" if rule == "unused-input" else "error"  # GitLab has no such rule: a hint, not a failure
    assert [(i.path, i.rule, i.message, i.severity) for i in issues] == [(path, rule, message, severity)]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("invalid-yaml", "invalid-yaml.yml:3: not valid YAML: mapping values are not allowed here"),
    ],
)
def test_unparsable_files_raise_one_line_with_the_line(name: str, expected: str) -> None:
    with pytest.raises(PipelinesConfigError) as info:
        lint_file(CORPUS / f"{name}.yml")
    assert str(info.value).endswith(expected)
    assert "\n" not in str(info.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(PipelinesConfigError, match="no such file"):
        lint_file(tmp_path / "nope.yml")
    with pytest.raises(PipelinesConfigError, match="is a directory"):
        lint_file(tmp_path)
    (tmp_path / "empty.yml").write_text("")
    with pytest.raises(PipelinesConfigError, match="empty"):
        lint_file(tmp_path / "empty.yml")
    (tmp_path / "list.yml").write_text("- a\n")
    with pytest.raises(PipelinesConfigError, match="not a mapping"):
        lint_file(tmp_path / "list.yml")


def test_schema_is_the_one_check_jsonschema_vendors() -> None:
    assert schema_path().name == "gitlab-ci.json"
    assert json.loads(schema_path().read_text())["$schema"].startswith("http://json-schema.org/draft-07/")


def test_toolkit_pipeline_lints_clean() -> None:
    assert lint_file(ROOT / ".gitlab-ci.yml") == []


def test_service_pipeline_from_the_cookiecutter_lints_clean() -> None:
    text = SERVICE_PIPELINE.read_text(encoding="utf-8")
    rendered = jinja2.Template(text, keep_trailing_newline=True).render(cookiecutter={"service_slug": "orders"})
    assert "{{" not in rendered
    assert lint_document("service .gitlab-ci.yml", *parse_pipeline(rendered, "service")) == []


def test_component_with_spec_header_and_references_lints_clean() -> None:
    assert lint_file(CORPUS / "good-component.yml") == []


@pytest.mark.parametrize("template", TEMPLATES, ids=[t.name for t in TEMPLATES])
def test_toolkit_templates_lint_clean(template: Path) -> None:
    issues = lint_file(template)
    assert [str(i) for i in issues] == []


def test_spec_header_and_body_are_both_loaded() -> None:
    spec, body = parse_pipeline('spec:\n  inputs:\n    a:\n---\njob:\n  script: ["echo $[[ inputs.a ]]"]\n', "c.yml")
    assert spec == {"inputs": {"a": None}}
    assert body == {"job": {"script": ["echo $[[ inputs.a ]]"]}}


def test_references_resolve_nested_and_report_missing_keys() -> None:
    _, body = parse_pipeline(
        ".a: {script: [one]}\n.b: {script: [!reference [.a, script], two]}\n"
        "j: {script: [!reference [.b, script]], after_script: !reference [.a, nope]}\n",
        "r.yml",
    )
    assert isinstance(body["j"]["script"][0], Reference)
    resolved, unresolved = resolve_references(body)
    assert resolved["j"]["script"] == [[["one"], "two"]]
    assert [(u.where, u.reason) for u in unresolved] == [(("j", "after_script"), "no key '.a.nope'")]


def test_reference_must_be_a_list() -> None:
    with pytest.raises(PipelinesConfigError, match=r"r.yml:1: not valid YAML: !reference needs a non-empty list"):
        parse_pipeline("j: {script: !reference .a}\n", "r.yml")


def test_include_turns_unknown_needs_extends_and_stage_into_warnings() -> None:
    issues = lint_text(
        "include: [{local: a.yml}]\nj:\n  stage: lint\n  extends: .x\n"
        "  needs: [{job: b}, {project: p, job: c, ref: main}]\n"
        "  script: [a]\n"
    )
    assert [(i.path, i.rule, i.severity) for i in issues] == [
        ("$.j.extends", "unknown-extends", SEVERITY_WARNING),
        ("$.j.stage", "undeclared-stage", SEVERITY_WARNING),
        ("$.j.needs[0].job", "unknown-needs", SEVERITY_WARNING),
        ("$.include", "include-not-read", SEVERITY_WARNING),  # no repository root to read a.yml from
    ]


def test_default_stages_apply_without_stages_and_test_is_the_default_stage() -> None:
    assert lint_text("a: {stage: build, script: [x]}\nb: {stage: .post, script: [x]}\nc: {script: [x]}\n") == []
    issues = lint_text("stages: [build]\nc: {script: [x]}\n")
    assert [(i.path, i.rule) for i in issues] == [("$.c", "undeclared-stage")]


def test_needs_a_hidden_job_is_an_error() -> None:
    issues = lint_text(".h: {script: [x]}\nj: {script: [x], needs: [.h]}\n")
    assert [(i.path, i.rule, i.message) for i in issues] == [
        ("$.j.needs[0]", "unknown-needs", "needs '.h', a hidden job: hidden jobs never run")
    ]


def test_input_declarations_are_checked_once_each() -> None:
    issues = lint_text(
        "spec:\n  inputs:\n    n: {type: integer}\n    m: {type: number, default: x}\n"
        "    v: {default: v1, regex: '^w'}\n---\nj:\n"
        "  script: ['echo $[[ inputs.n ]] $[[ inputs.m ]] $[[ inputs.v ]]']\n"
    )
    assert [(i.path, i.rule) for i in issues] == [
        ("$.spec.inputs.n.type", "input-type"),
        ("$.spec.inputs.m.default", "input-default-type"),
        ("$.spec.inputs.v.default", "input-default-regex"),
    ]


def test_whole_value_inputs_keep_their_type_for_the_schema() -> None:
    text = "spec:\n  inputs:\n    n: {type: number, default: 3}\n---\nj:\n  parallel: $[[ inputs.n ]]\n  script: [x]\n"
    assert lint_text(text) == []


def test_inputs_without_a_spec_header() -> None:
    issues = lint_text('j:\n  script: ["echo $[[ inputs.a | expand_vars ]]"]\n')
    assert [(i.path, i.rule) for i in issues] == [("$.j.script[0]", "undeclared-input")]


# --------------------------------------------------------------------------- CLI


def test_cli_clean_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["lint", str(ROOT / ".gitlab-ci.yml"), str(CORPUS / "good-component.yml")]) == 0
    out = capsys.readouterr().out
    assert out.strip() == "2 file(s) checked: 2 clean, 0 with errors; 0 error(s), 0 warning(s)"


def test_cli_issues_exit_3(capsys: pytest.CaptureFixture[str]) -> None:
    path = CORPUS / "undeclared-stage.yml"
    assert cli.main(["lint", str(path)]) == 3
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        f"{path}: $.ship.stage: stage 'deploy' is not in stages (build, test) [undeclared-stage]",
        "1 file(s) checked: 0 clean, 1 with errors; 1 error(s), 0 warning(s)",
    ]
    assert captured.err == ""


def test_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(CORPUS / "needs-unknown-job.yml")
    assert cli.main(["lint", "--json", path]) == 3
    report = json.loads(capsys.readouterr().out)
    assert report[0]["file"] == path and report[0]["ok"] is False
    assert report[0]["issues"][0]["rule"] == "unknown-needs"


def test_cli_bad_file_exits_2_with_one_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["lint", str(CORPUS / "invalid-yaml.yml"), str(CORPUS / "undeclared-stage.yml")]) == 3
    captured = capsys.readouterr()
    # The refused file is one line; the other file's lint errors still decide the exit code (3 outranks 2).
    assert captured.err.splitlines() == [
        f"Error: {CORPUS / 'invalid-yaml.yml'}:3: not valid YAML: mapping values are not allowed here"
    ]
    assert "[undeclared-stage]" in captured.out and "1 refused (unreadable or not valid YAML)" in captured.out
    assert cli.main(["lint", str(CORPUS / "invalid-yaml.yml")]) == 2


def test_cli_json_has_an_entry_for_every_file_refused_ones_too(capsys: pytest.CaptureFixture[str]) -> None:
    files = [str(CORPUS / "invalid-yaml.yml"), str(ROOT / ".gitlab-ci.yml"), str(CORPUS / "missing.yml")]
    assert cli.main(["lint", "--json", *files]) == 2
    report = json.loads(capsys.readouterr().out)
    assert [entry["file"] for entry in report] == files
    assert [entry["ok"] for entry in report] == [False, True, False]
    assert report[0]["refused"].endswith("invalid-yaml.yml:3: not valid YAML: mapping values are not allowed here")
    assert report[0]["issues"][0]["rule"] == "refused" and report[2]["refused"].endswith("missing.yml: no such file")


def test_duplicate_keys_are_warnings_with_both_lines_and_errors_with_strict(
    capsys: pytest.CaptureFixture[str],
) -> None:
    issues = lint_file(CORPUS / "duplicate-key.yml")
    assert [(i.path, i.rule, i.severity) for i in issues] == [("$.test", "duplicate-key", "warning")]
    assert issues[0].message == (
        "key 'test' is written twice in one mapping (lines 1 and 3): GitLab keeps the last and ignores the first"
    )
    assert cli.main(["lint", str(CORPUS / "duplicate-key.yml")]) == 0
    assert cli.main(["lint", "--strict", str(CORPUS / "duplicate-key.yml")]) == 3


@pytest.mark.parametrize("argv", [[], ["lint"], ["build", "x.yml"], ["lint", "--bogus", "x.yml"]])
def test_cli_bad_command_line_exits_2_with_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("Error: ")


def test_cli_help_documents_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["lint", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert (
        "exit codes (lint: the worst outcome across its files, in the order 4, 3, 2, 0):" in out
        and "  3  at least one file has lint errors" in out
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (  # a 355-byte alias bomb: 9**9 nodes once expanded
            "a: &a [x,x,x,x,x,x,x,x,x]\n"
            + "".join(f"{b}: &{b} [{','.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi", strict=True)),
            "more than 500000 nodes (YAML aliases expanded), over the node count budget of 500000",
        ),
        (
            "".join("  " * i + f"k{i}:\n" for i in range(500)) + "  " * 500 + "script: [x]\n",
            "nested deeper than 128 levels, over the nesting depth budget of 128",
        ),
        ("job:\n  timeout: " + "9" * 5000 + "\n", "an integer of 5000 digits, over the integer size budget of 100"),
    ],
)
def test_hostile_files_are_refused_in_one_line_naming_the_budget(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    path = tmp_path / ".gitlab-ci.yml"
    path.write_text(text)
    assert cli.main(["lint", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"Error: {path}: {expected}" + ("" if expected.endswith("unread") else ": refused unread")
    ]


@pytest.mark.parametrize(
    ("text", "where", "key"),
    [
        ("?", "$", "None"),
        ("job:\n  script: [x]\n  variables:\n    1: a\n", "$.job.variables", "1"),
        ("true: 1\n", "$", "True"),
    ],
)
def test_a_key_that_is_not_a_name_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, where: str, key: str
) -> None:
    # Found by tests/fuzz: "?" alone is a YAML mapping with a null key, which crashed the schema check.
    path = tmp_path / ".gitlab-ci.yml"
    path.write_text(text)
    assert cli.main(["lint", str(path)]) == 2
    assert capsys.readouterr().err == f"Error: {path}: {where}: the key {key} is not a name: write it in quotes\n"
