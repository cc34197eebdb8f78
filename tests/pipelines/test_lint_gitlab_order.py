"""Lint processes a file in GitLab's order (includes, then extends, then !reference) and checks the merged jobs;
each case is one of the ways the old lint failed real pipelines, or a mistake it missed, in a few lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from autocore.issues import SEVERITY_ERROR, SEVERITY_WARNING, Issue
from pipelines.extends import deep_merge, resolve_extends
from pipelines.gitlab_yaml import parse_document
from pipelines.includes import IncludeSettings
from pipelines.lint import LintOptions, lint_loaded
from pipelines.references import flatten
from pipelines.schema import RELAXATIONS, relaxed_schema, schema_path


def lint(text: str, root: Path | None = None, **settings: object) -> list[Issue]:
    options = LintOptions(includes=IncludeSettings(root=root, **settings))  # type: ignore[arg-type]
    return lint_loaded(".gitlab-ci.yml", parse_document(text, ".gitlab-ci.yml"), options)


def errors(issues: list[Issue]) -> list[tuple[str, str, str]]:
    return [(i.path, i.rule, i.message) for i in issues if i.severity == SEVERITY_ERROR]


def found(issues: list[Issue]) -> list[tuple[str, str, str]]:
    return [(i.path, i.rule, i.severity) for i in issues]


# --------------------------------------------------------------------------- what real pipelines do


def test_a_reference_that_brings_a_list_into_rules_is_flattened() -> None:
    text = """
.rules: {rules: [{if: '$A', when: manual}, {if: '$B'}]}
job:
  rules: [{if: '$C', when: never}, !reference [.rules, rules]]
  script: [make]
"""
    assert lint(text) == []


def test_a_stage_that_comes_through_extends_is_the_jobs_stage() -> None:
    text = """
stages: [build, test]
.flatpak: {stage: build, script: [flatpak]}
flatpak: {extends: .flatpak}
nightly:
  needs: [flatpak]
  dependencies: [flatpak]
  script: [upload]
"""
    assert lint(text) == []


def test_references_resolve_after_extends_against_the_merged_job() -> None:
    text = """
.base: {script: [one, two]}
.mid: {extends: .base}
job: {script: [!reference [.mid, script], three]}
"""
    assert lint(text) == []


def test_needs_may_name_a_matrix_job_by_its_generated_name() -> None:
    text = """
build:
  stage: build
  parallel: {matrix: [{TARGET: [x86_64-w64-mingw32, i686-w64-mingw32], MODE: release}]}
  script: [make]
shards: {stage: build, parallel: 3, script: [make]}
test:
  needs: ["build: [x86_64-w64-mingw32, release]", "shards 2/3", build]
  script: [test]
"""
    assert lint(text) == []
    broken = lint(text.replace("x86_64-w64-mingw32, release]", "aarch64, release]"))
    assert errors(broken) == [
        ("$.test.needs[0]", "unknown-needs", "needs 'build: [aarch64, release]', which is not a job of this pipeline")
    ]


def test_hidden_jobs_are_templates_not_jobs() -> None:
    text = """
stages: [build]
.template: {stage: nowhere, needs: [nothing], when: sometimes}
job: {stage: build, script: [make]}
"""
    assert lint(text) == []


def test_a_reference_to_a_job_from_an_unread_include_is_a_warning() -> None:
    text = """
include: [{template: Jobs/SAST.gitlab-ci.yml}]
.release:
  before_script: [!reference [.google-oidc:auth, before_script]]
release: {extends: .release, script: [publish]}
"""
    assert found(lint(text)) == [
        ("$['.release'].before_script[0]", "unknown-reference", SEVERITY_WARNING),  # once, where it is written
        ("$.include", "include-not-read", SEVERITY_WARNING),
    ]


def test_an_unused_input_is_a_warning() -> None:
    text = (
        "spec:\n  inputs:\n    stage: {default: test}\n    unused: {default: x}\n"
        "---\njob:\n  stage: $[[ inputs.stage ]]\n  script: [a]\n"
    )
    assert found(lint(text)) == [("$.spec.inputs.unused", "unused-input", SEVERITY_WARNING)]


def test_an_array_input_as_an_item_of_rules_is_flattened() -> None:
    text = """spec:
  inputs:
    rules: {type: array, default: [{if: '$CI_COMMIT_TAG'}]}
---
job:
  rules:
    - {if: '$X', when: never}
    - $[[ inputs.rules ]]
  script: [a]
"""
    assert lint(text) == []


@pytest.mark.parametrize(
    ("job", "why"),
    [
        ("job: {cache: {key: k, paths: }, script: [a]}", "cache: paths: left empty"),
        ("job: {artifacts: {paths: []}, script: [a]}", "artifacts: paths: []"),
        ("job: {tags: [''], script: [a]}", "an empty tag"),
    ],
)
def test_where_the_schema_is_stricter_than_gitlab_gitlab_wins(job: str, why: str) -> None:
    assert lint(job) == [], why


def test_every_relaxation_still_has_its_place_in_the_vendored_schema() -> None:
    import json

    schema = json.loads(schema_path().read_text(encoding="utf-8"))
    relaxed = relaxed_schema(schema)  # raises when a relaxation's place is gone
    assert relaxed != schema and len(RELAXATIONS) == 5
    assert all(r.gitlab for r in RELAXATIONS)


# --------------------------------------------------------------------------- mistakes GitLab refuses


def test_an_extends_cycle_is_reported_once() -> None:
    text = ".a: {extends: .b}\n.b: {extends: .a}\njob: {extends: .a, script: [x]}\n"
    assert errors(lint(text)) == [
        ("$['.a']", "extends-cycle", "circular dependency detected in extends (.a -> .b -> .a)")
    ]


def test_extends_deeper_than_gitlab_follows() -> None:
    chain = "".join(f".t{i}: {{extends: .t{i + 1}}}\n" for i in range(10)) + ".t10: {script: [a]}\n"
    assert lint(chain + "job: {extends: .t0}\n") == []  # 11 extends from the job: as many as GitLab follows
    deep = chain.replace(".t10: {script: [a]}", ".t10: {extends: .t11}\n.t11: {script: [a]}")
    assert [(p, r) for p, r, _ in errors(lint(deep + "job: {extends: .t0}\n"))] == [("$.job", "extends-depth")]


def test_a_base_that_is_not_a_mapping() -> None:
    assert [r for _, r, _ in errors(lint(".base: [a]\njob: {extends: .base, script: [x]}\n"))] == [
        "extends-invalid-base"
    ]


def test_a_job_needs_a_script_a_trigger_or_run() -> None:
    text = "build: {stage: build, image: alpine}\nchild: {trigger: {include: child.yml}}\n"
    assert errors(lint(text)) == [
        ("$.build", "job-without-script", "job 'build' has no script:, run: or trigger:, so GitLab cannot run it")
    ]


def test_a_job_without_script_that_may_get_it_from_an_unread_include_is_a_warning() -> None:
    text = "include: [{remote: 'https://example.com/ci.yml'}]\nflatpak: {variables: {A: b}}\n"
    assert found(lint(text)) == [
        ("$.flatpak", "job-without-script", SEVERITY_WARNING),
        ("$.include", "include-not-read", SEVERITY_WARNING),
    ]


def test_only_or_except_with_rules() -> None:
    text = "job: {script: [a], rules: [{if: '$A'}], only: [main]}\n"
    assert errors(lint(text)) == [
        ("$.job", "only-with-rules", "only: or except: may not be used with rules: (this job has rules: and only:)")
    ]


@pytest.mark.parametrize(
    ("keyword", "value", "path"),
    [
        ("artifacts", "{expire_in: banana, paths: [a]}", "$.job.artifacts.expire_in"),
        ("timeout", "forever", "$.job.timeout"),
    ],
)
def test_durations_gitlab_cannot_parse(keyword: str, value: str, path: str) -> None:
    issues = errors(lint(f"job: {{script: [a], {keyword}: {value}}}\n"))
    assert [(p, r) for p, r, _ in issues] == [(path, "duration")]
    assert "is not a duration GitLab understands" in issues[0][2]


def test_lists_nested_deeper_than_gitlab_flattens() -> None:
    nested = "a"
    for _ in range(12):
        nested = f"[{nested}]"
    assert [(p, r) for p, r, _ in errors(lint(f"job: {{script: {nested}}}\n"))][:1] == [
        ("$.job.script", "nesting-depth")
    ]


# --------------------------------------------------------------------------- the pieces


def test_deep_merge_merges_mappings_and_replaces_everything_else() -> None:
    base = {"variables": {"A": "1", "B": "2"}, "script": ["a"], "cache": {"paths": ["x"]}}
    override = {"variables": {"B": "3"}, "script": ["b"], "cache": None}
    assert deep_merge(base, override) == {"variables": {"A": "1", "B": "3"}, "script": ["b"], "cache": None}


def test_extends_merges_bases_in_order_then_the_job() -> None:
    body = {
        ".a": {"variables": {"X": "a", "Y": "a"}, "script": ["a"]},
        ".b": {"variables": {"Y": "b"}, "stage": "build"},
        "job": {"extends": [".a", ".b"], "variables": {"Z": "job"}},
    }
    job = resolve_extends(body).body["job"]
    assert job == {
        "variables": {"X": "a", "Y": "b", "Z": "job"},
        "script": ["a"],
        "stage": "build",
        "extends": [".a", ".b"],
    }


def test_flatten_is_rubys_with_a_level_limit() -> None:
    assert flatten(["a", ["b", ["c"]], "d"]) == (["a", "b", "c", "d"], False)
    assert flatten([[["a"]]], levels=1) == (["a"], True) or flatten([[["a"]]], levels=1)[1] is True
