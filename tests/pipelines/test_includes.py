"""include: followed as GitLab follows it, offline: local files from the repository root, the toolkit's own
components and a project's own components, with their inputs; nested includes; GitLab's merge order; the
limits; and what cannot be read is said once and lowers what depends on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from autocore.issues import SEVERITY_ERROR, SEVERITY_WARNING
from pipelines import cli
from pipelines.gitlab_yaml import parse_document
from pipelines.includes import IncludeSettings, assemble
from pipelines.lint import LintOptions, lint_file
from pipelines.locations import TEMPLATES_DIR


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def assembled(root: Path, text: str, **settings: object):  # type: ignore[no-untyped-def]
    return assemble(parse_document(text, ".gitlab-ci.yml"), ".gitlab-ci.yml", IncludeSettings(root=root, **settings))


def lint(root: Path, name: str = ".gitlab-ci.yml") -> list[tuple[str, str, str]]:
    issues = lint_file(root / name, LintOptions(includes=IncludeSettings(root=root)))
    return [(i.path, i.rule, i.severity) for i in issues]


def test_local_includes_merge_in_gitlabs_order_the_including_file_last(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "ci/a.yml": "variables: {A: a, B: a}\nbuild: {stage: build, script: [a], tags: [x]}\n",
            "ci/b.yml": "variables: {B: b}\nbuild: {script: [b]}\n",
        },
    )
    result = assembled(tmp_path, "include: [ci/a.yml, {local: /ci/b.yml}]\nvariables: {C: c}\nbuild: {tags: [y]}\n")
    assert result.issues == [] and result.unread == []
    assert result.body == {
        "variables": {"A": "a", "B": "b", "C": "c"},
        "build": {"stage": "build", "script": ["b"], "tags": ["y"]},
    }


def test_wildcards_nested_includes_and_a_file_included_twice(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "ci/jobs/one.yml": "include: [{local: ci/common.yml}]\none: {extends: .common}\n",
            "ci/jobs/two.yml": "include: [{local: ci/common.yml}]\ntwo: {extends: .common}\n",
            "ci/common.yml": ".common: {script: [make]}\n",
        },
    )
    result = assembled(tmp_path, "include: [{local: 'ci/jobs/*.yml'}]\n")
    assert sorted(result.body) == [".common", "one", "two"]
    assert [Path(r).name for r in result.read] == ["one.yml", "common.yml", "two.yml"]  # common.yml read once


def test_a_missing_local_include_is_an_error_with_gitlabs_reason(tmp_path: Path) -> None:
    write(tmp_path, {".gitlab-ci.yml": "include: [{local: ci/nope.yml}]\njob: {script: [a]}\n"})
    assert lint(tmp_path) == [("$.include[0]", "include-not-found", SEVERITY_ERROR)]


@pytest.mark.parametrize(
    ("include", "rule"),
    [("../outside.yml", "include-path"), ("ci/notes.txt", "schema"), ("ci/link.yml", "include-path")],
)
def test_a_local_include_never_leaves_the_repository(tmp_path: Path, include: str, rule: str) -> None:
    root = tmp_path / "repo"
    write(tmp_path, {"outside.yml": "secret: {script: [a]}\n", "repo/ci/notes.txt": "x"})
    (root / "ci" / "link.yml").symlink_to(tmp_path / "outside.yml")
    write(root, {".gitlab-ci.yml": f"include: [{{local: '{include}'}}]\njob: {{script: [a]}}\n"})
    assert lint(root) == [("$.include" if rule == "schema" else "$.include[0]", rule, SEVERITY_ERROR)]


def test_includes_past_gitlabs_limit(tmp_path: Path) -> None:
    write(tmp_path, {f"ci/{n:03}.yml": f"job{n}: {{script: [a]}}\n" for n in range(151)})
    result = assembled(tmp_path, "include: [{local: 'ci/*.yml'}]\n")
    assert [(i.path, i.rule) for i in result.issues] == [("$.include[0]", "include-limit")]
    assert len(result.read) == 150


def test_a_file_that_includes_itself_is_read_once(tmp_path: Path) -> None:
    write(tmp_path, {".gitlab-ci.yml": "include: [{local: .gitlab-ci.yml}]\njob: {script: [a]}\n"})
    assert lint(tmp_path) == []


def test_the_toolkits_own_components_are_read_with_their_inputs(tmp_path: Path) -> None:
    text = (
        "include:\n  - component: $CI_SERVER_FQDN/auto/toolkit/build@1.2.0\n"
        "    inputs: {docker-daemon: runner, stage: package}\nstages: [package]\n"
    )
    result = assembled(tmp_path, text)
    assert result.issues == [] and result.unread == []
    assert result.read == [str(TEMPLATES_DIR / "build.yml")]
    build = result.body["build"]
    assert (build["stage"], build["extends"]) == ("package", ".auto-build-runner")


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ("{bogus: 1}", "unknown input arguments: bogus"),
        ("{docker-daemon: podman}", "input 'docker-daemon': 'podman' is not one of its options"),
        ("{docker-version: 'x'}", "input 'docker-version': provided value does not match required RegEx pattern"),
        ("{stage: 3}", "input 'stage': provided value is not a string"),
    ],
)
def test_inputs_a_component_refuses(tmp_path: Path, inputs: str, message: str) -> None:
    text = f"include:\n  - component: $CI_SERVER_FQDN/auto/toolkit/build@1\n    inputs: {inputs}\n"
    (issue,) = assembled(tmp_path, text).issues
    assert (issue.path, issue.rule) == ("$.include[0]", "include-inputs")
    assert issue.message.endswith(f"build.yml: {message}")


def test_a_projects_own_component_is_read_from_its_templates(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "templates/upload/template.yml": "spec:\n  inputs:\n    stage: {default: test}\n---\n"
            "upload:\n  stage: $[[ inputs.stage ]]\n  script: [up]\n"
        },
    )
    result = assembled(tmp_path, "include:\n  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/upload@$CI_COMMIT_SHA\n")
    assert result.body == {"upload": {"stage": "test", "script": ["up"]}}


def test_what_cannot_be_read_offline_is_said_once_and_lowers_what_depends_on_it(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            ".gitlab-ci.yml": "include:\n  - remote: https://example.com/ci.yml\n"
            "  - template: Jobs/SAST.gitlab-ci.yml\n"
            "  - project: group/ci\n    file: base.yml\n"
            "  - component: gitlab.com/other/catalog/lint@1\n"
            "  - local: $CI_DIR/x.yml\n"
            "test:\n  extends: .from-remote\n  needs: [remote-job]\n",
        },
    )
    issues = lint_file(tmp_path / ".gitlab-ci.yml", LintOptions(includes=IncludeSettings(root=tmp_path)))
    assert all(i.severity == SEVERITY_WARNING for i in issues)
    (summary,) = [i for i in issues if i.rule == "include-not-read"]
    assert summary.message.startswith("5 include(s) not read offline (remote https://example.com/ci.yml, template")


def test_the_cli_finds_the_repository_root_and_takes_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "repo"
    write(
        repo,
        {
            ".git/HEAD": "ref: refs/heads/main\n",
            "ci/jobs.yml": "job: {script: [a]}\n",
            "sub/.gitlab-ci.yml": "include: [{local: ci/jobs.yml}]\n",
        },
    )
    assert cli.main(["lint", str(repo / "sub" / ".gitlab-ci.yml")]) == 0
    assert cli.main(["lint", "--root", str(repo / "sub"), str(repo / "sub" / ".gitlab-ci.yml")]) == 3
    out = capsys.readouterr().out
    assert "local include 'ci/jobs.yml' does not exist in the repository" in out
