"""The component context (GitLab 18.6+), as GitLab has it: ``spec: component`` declares which of name, sha, version
and reference a component may use, ``$[[ component.x ]]`` is filled in from the include's ``@`` reference, and
what names nothing is GitLab's error in GitLab's words; a file linted on its own gets placeholders, not errors.
And the toolkit's own components: each runs the toolkit of its own release, nothing in ``templates/`` is
``:latest``, and they lint clean, on their own and included."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from autocore.issues import SEVERITY_ERROR, SEVERITY_WARNING
from pipelines import cli
from pipelines.gitlab_yaml import parse_document
from pipelines.includes import IncludeSettings, assemble
from pipelines.interpolation import (
    COMPONENT_FIELDS,
    COMPONENT_PLACEHOLDERS,
    InterpolationError,
    component_context,
    component_values,
    interpolate,
)
from pipelines.lint import LintOptions, lint_document, lint_file
from pipelines.locations import TEMPLATES_DIR
from pipelines.schema import schema_path

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = sorted(TEMPLATES_DIR.glob("*.yml"))
# The components whose job runs the toolkit: the image of auto-deploy, or auto-docs installed with pip.
TOOLKIT_IMAGE_COMPONENTS = ("deploy-staging", "deploy-production", "switch")
SHA = "0123456789abcdef0123456789abcdef01234567"
EVERY_FIELD = """spec:
  component: [name, sha, version, reference]
---
show:
  script:
    - echo "$[[ component.name ]] $[[ component.sha ]] $[[ component.version ]] $[[ component.reference ]]"
"""


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def assembled(text: str, **settings: Any):  # type: ignore[no-untyped-def]
    return assemble(parse_document(text, ".gitlab-ci.yml"), ".gitlab-ci.yml", IncludeSettings(**settings))


def included(address: str, inputs: str = "", **settings: Any):  # type: ignore[no-untyped-def]
    text = f"include:\n  - component: {address}\n" + (f"    inputs: {inputs}\n" if inputs else "")
    return assembled(text, **settings)


def lint_text(text: str, file: str = "component.yml") -> list[tuple[str, str, str, str]]:
    document = parse_document(text, file)
    return [(i.path, i.rule, i.severity, i.message) for i in lint_document(file, document.spec, document.body)]


# --------------------------------------------------------------------------- GitLab's facts about an include


@pytest.mark.parametrize(
    ("reference", "version", "sha"),
    [
        ("1.2.3", "1.2.3", COMPONENT_PLACEHOLDERS["sha"]),
        ("1.0.0-rc.1", "1.0.0-rc.1", COMPONENT_PLACEHOLDERS["sha"]),
        ("1", COMPONENT_PLACEHOLDERS["version"], COMPONENT_PLACEHOLDERS["sha"]),  # GitLab: its newest 1.x.y
        ("1.2", COMPONENT_PLACEHOLDERS["version"], COMPONENT_PLACEHOLDERS["sha"]),
        ("~latest", COMPONENT_PLACEHOLDERS["version"], COMPONENT_PLACEHOLDERS["sha"]),
        (SHA, None, SHA),  # a commit: GitLab's null version
        ("$CI_COMMIT_SHA", None, "$CI_COMMIT_SHA"),
        ("main", None, COMPONENT_PLACEHOLDERS["sha"]),  # a branch
        ("v1.2.3", None, COMPONENT_PLACEHOLDERS["sha"]),  # a tag, but no catalog version: those have no v
    ],
)
def test_what_an_include_tells_of_its_component(reference: str, version: str | None, sha: str) -> None:
    assert component_context("deploy", reference) == {
        "name": "deploy",
        "sha": sha,
        "version": version,
        "reference": reference,
    }


def test_only_the_declared_fields_are_there_to_interpolate() -> None:
    known = component_context("deploy", "1.2.3")
    assert component_values({"component": ["version", "name", "version"]}, known) == {
        "version": "1.2.3",
        "name": "deploy",
    }
    assert component_values({"inputs": {}}, known) == {}
    assert component_values({"component": ["version"]}, None) == {}  # not included as a component
    assert component_values({"component": None}, known) == {}  # left empty: GitLab's default, []


@pytest.mark.parametrize(
    ("declared", "message"),
    [
        (["version", "path", "ref"], "header:spec:component config contains unknown values: path, ref"),
        ("version", "header:spec:component config should be an array of strings"),
        ([["version"]], "header:spec:component config should be an array of strings"),
    ],
)
def test_a_wrong_spec_component_is_gitlabs_header_error(declared: Any, message: str) -> None:
    with pytest.raises(InterpolationError) as raised:
        component_values({"component": declared}, component_context("deploy", "1.2.3"))
    assert str(raised.value).startswith(message)


def test_interpolation_fills_in_each_field_and_null_as_gitlab_does() -> None:
    values = {"name": "deploy", "sha": SHA, "version": None, "reference": "main"}
    body = {
        "job": {
            "image": "registry.example.com/$[[ component.name ]]:$[[ component.version ]]",
            "variables": {"SHA": "$[[ component.sha | truncate(0, 8) ]]", "V": "$[[ component.version ]]"},
            "script": ["echo $[[ component.reference ]] $[[ matrix.OS ]]"],
        }
    }
    assert interpolate(body, {}, values) == {
        "job": {
            "image": "registry.example.com/deploy:",  # nil.to_s inside text
            "variables": {"SHA": "01234567", "V": None},  # a whole value keeps its null
            "script": ["echo main $[[ matrix.OS ]]"],  # matrix expressions are parallel:matrix's, later
        }
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("$[[ component.sha ]]", "unknown interpolation provided: `sha` in `component.sha`"),
        ("x $[[ component.path ]]", "unknown interpolation provided: `path` in `component.path`"),
        ("$[[ component.version.major ]]", "unknown interpolation provided: `major` in `component.version.major`"),
        ("$[[ foo.bar ]]", "unknown interpolation provided: `foo` in `foo.bar`"),
        ("$[[ inputs.nope ]]", "unknown interpolation provided: `nope` in `inputs.nope`"),
    ],
)
def test_what_names_nothing_is_gitlabs_error_in_gitlabs_words(text: str, message: str) -> None:
    with pytest.raises(InterpolationError) as raised:
        interpolate({"job": {"script": [text]}}, {}, {"version": "1.2.3"})
    assert str(raised.value) == message


# --------------------------------------------------------------------------- includes


def test_an_include_at_a_release_fills_in_every_declared_field(tmp_path: Path) -> None:
    write(tmp_path, {"show.yml": EVERY_FIELD})
    result = included("$CI_SERVER_FQDN/auto/toolkit/show@1.2.3", templates_dir=tmp_path)
    assert result.issues == []
    placeholder = COMPONENT_PLACEHOLDERS["sha"]
    assert result.body["show"]["script"] == [f'echo "show {placeholder} 1.2.3 1.2.3"']


def test_an_include_at_a_commit_has_its_sha_and_no_version(tmp_path: Path) -> None:
    write(tmp_path, {"show/template.yml": EVERY_FIELD})
    result = included(f"$CI_SERVER_FQDN/auto/toolkit/show@{SHA}", templates_dir=tmp_path)
    assert result.body["show"]["script"] == [f'echo "show {SHA}  {SHA}"']
    (warning,) = result.issues
    assert (warning.path, warning.rule, warning.severity) == (
        "$.include[0]",
        "component-version-null",
        SEVERITY_WARNING,
    )
    assert warning.message == (
        f"{tmp_path / 'show' / 'template.yml'}: $[[ component.version ]] is null, and GitLab fills in nothing: it "
        f"resolves a version only for a release of a CI/CD Catalog resource (@1, @1.2.3, @~latest), not for @{SHA}"
    )


def test_the_component_path_decides_where_the_toolkits_components_come_from(tmp_path: Path) -> None:
    write(tmp_path, {"show.yml": EVERY_FIELD})
    settings = {"templates_dir": tmp_path, "component_path": "gitlab.example.com/platform/toolkit"}
    result = included("gitlab.example.com/platform/toolkit/show@2.0.0", **settings)
    assert result.issues == [] and result.unread == []
    assert result.body["show"]["script"][0].endswith(' 2.0.0 2.0.0"')


def test_a_field_used_but_not_declared_refuses_the_include(tmp_path: Path) -> None:
    write(
        tmp_path,
        {"pin.yml": "spec:\n  component: [version]\n---\npin:\n  script: ['echo $[[ component.sha ]]']\n"},
    )
    (issue,) = included("$CI_SERVER_FQDN/auto/toolkit/pin@1.2.3", templates_dir=tmp_path).issues
    assert (issue.path, issue.rule, issue.severity) == ("$.include[0]", "include-inputs", SEVERITY_ERROR)
    assert issue.message == f"{tmp_path / 'pin.yml'}: unknown interpolation provided: `sha` in `component.sha`"


def test_a_wrong_spec_component_refuses_the_include(tmp_path: Path) -> None:
    write(tmp_path, {"pin.yml": "spec:\n  component: [version, path]\n---\npin:\n  script: [x]\n"})
    (issue,) = included("$CI_SERVER_FQDN/auto/toolkit/pin@1.2.3", templates_dir=tmp_path).issues
    assert issue.message == f"{tmp_path / 'pin.yml'}: header:spec:component config contains unknown values: path"


def test_a_component_template_included_with_local_has_no_component_context(tmp_path: Path) -> None:
    # GitLab gives component context only to a component include (and what it includes in turn).
    write(tmp_path, {"templates/switch.yml": (TEMPLATES_DIR / "switch.yml").read_text()})
    (issue,) = assembled("include:\n  - local: templates/switch.yml\n", root=tmp_path).issues
    assert (issue.rule, issue.severity) == ("include-inputs", SEVERITY_ERROR)
    assert issue.message.endswith("switch.yml: unknown interpolation provided: `version` in `component.version`")


def test_what_a_component_includes_inherits_its_context(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "outer.yml": "spec:\n  component: [name]\n---\ninclude:\n  - local: ci/inner.yml\n"
            "outer:\n  script: ['echo $[[ component.name ]]']\n",
            "repo/ci/inner.yml": "spec:\n  component: [name, version]\n---\n"
            "inner:\n  script: ['echo $[[ component.name ]]@$[[ component.version ]]']\n",
        },
    )
    result = included("$CI_SERVER_FQDN/auto/toolkit/outer@3.1.4", templates_dir=tmp_path, root=tmp_path / "repo")
    assert result.issues == []
    assert (result.body["outer"]["script"], result.body["inner"]["script"]) == (["echo outer"], ["echo outer@3.1.4"])


def test_a_projects_own_component_at_a_commit_sha(tmp_path: Path) -> None:
    write(tmp_path, {"templates/show.yml": EVERY_FIELD})
    result = assembled("include:\n  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/show@$CI_COMMIT_SHA\n", root=tmp_path)
    assert result.body["show"]["script"] == ['echo "show $CI_COMMIT_SHA  $CI_COMMIT_SHA"']
    assert [i.rule for i in result.issues] == ["component-version-null"]


# --------------------------------------------------------------------------- a component linted on its own


def test_on_its_own_a_component_gets_placeholders_not_errors() -> None:
    text = (
        "spec:\n  component: [name, sha, version, reference]\n  inputs:\n    repository: {default: registry/x}\n---\n"
        "job:\n  image: $[[ inputs.repository ]]:$[[ component.version ]]\n"
        "  variables:\n    V: $[[ component.version ]]\n    N: $[[ component.name ]]\n"
        "  script: ['echo $[[ component.sha | truncate(0, 8) ]] $[[ component.reference ]]']\n"
    )
    assert lint_text(text) == []
    assert lint_text(text, "templates/deploy.yml") == []
    assert lint_text(text, "templates/deploy/template.yml") == []


def test_on_its_own_the_name_comes_from_where_the_file_is(tmp_path: Path) -> None:
    # GitLab names a component after templates/NAME.yml or templates/NAME/template.yml; here the name is a job's
    # (one with no script: a warning in a component, which says where the job is).
    text = "spec:\n  component: [name]\n---\n$[[ component.name ]]-job:\n  stage: test\n"
    write(tmp_path, {"templates/upload/template.yml": text, "templates/sync.yml": text, "elsewhere.yml": text})
    for file, name in [
        ("templates/upload/template.yml", "upload"),
        ("templates/sync.yml", "sync"),
        ("elsewhere.yml", COMPONENT_PLACEHOLDERS["name"]),
    ]:
        (issue,) = lint_file(tmp_path / file, LintOptions())
        assert (issue.path, issue.rule) == (f"$['{name}-job']", "job-without-script")


@pytest.mark.parametrize(
    ("header", "use", "expected"),
    [
        (
            "component: [version]",
            "$[[ component.sha ]]",
            [
                (
                    "$.job.script[0]",
                    "undeclared-component",
                    "unknown interpolation provided: `sha` in `component.sha`: add sha to spec: component",
                )
            ],
        ),
        (
            "inputs: {}",
            "$[[ component.version ]]",
            [
                (
                    "$.job.script[0]",
                    "undeclared-component",
                    "unknown interpolation provided: `version` in `component.version`: add version to spec: component",
                )
            ],
        ),
        (
            "component: [version, path]",
            "$[[ component.path ]]",
            [
                (
                    "$.spec.component[1]",
                    "spec-component",
                    "header:spec:component config contains unknown values: path",
                ),
                (
                    "$.job.script[0]",
                    "undeclared-component",
                    "unknown interpolation provided: `path` in `component.path`: spec: component offers name, sha, "
                    "version, reference",
                ),
            ],
        ),
        (
            "component: version",
            "x",
            [("$.spec.component", "spec-component", "header:spec:component config should be an array of strings")],
        ),
        (
            "component: [version]",
            "$[[ component.version.major ]]",
            [
                (
                    "$.job.script[0]",
                    "unknown-interpolation",
                    "unknown interpolation provided: `major` in `component.version.major`",
                )
            ],
        ),
        (
            "inputs: {}",
            "$[[ project.path ]]",
            [
                (
                    "$.job.script[0]",
                    "unknown-interpolation",
                    "unknown interpolation provided: `project` in `project.path`: GitLab interpolates only inputs and "
                    "component when it includes a file",
                )
            ],
        ),
    ],
    ids=["undeclared", "no-spec-component", "not-gitlabs-field", "not-a-list", "into-a-value", "unknown-context"],
)
def test_on_its_own_what_gitlab_would_refuse_is_an_error_in_gitlabs_words(
    header: str, use: str, expected: list[tuple[str, str, str]]
) -> None:
    text = f"spec:\n  {header}\n---\njob:\n  script: ['echo {use}']\n"
    assert [(path, rule, message) for path, rule, _, message in lint_text(text)] == expected
    assert all(severity == SEVERITY_ERROR for _, _, severity, _ in lint_text(text))


def test_without_a_spec_header_component_is_not_declared() -> None:
    text = "job:\n  script: ['echo $[[ component.version ]] $[[ foo.bar ]]']\n"  # foo.bar: GitLab leaves text alone
    assert lint_text(text) == [
        (
            "$.job.script[0]",
            "undeclared-component",
            SEVERITY_ERROR,
            "$[[ component.version ]] is used but the file has no spec: header declaring component",
        )
    ]


@pytest.mark.parametrize(
    "header",
    ["component: [version, version]", "component:", "component: []"],
    ids=["duplicates", "left-empty", "empty-list"],
)
def test_what_gitlab_accepts_in_spec_component_the_schema_accepts_too(header: str) -> None:
    text = f"spec:\n  {header}\n---\njob:\n  script: [x]\n"
    assert lint_text(text) == []


def test_the_vendored_schema_knows_gitlabs_fields() -> None:
    schema = json.loads(schema_path().read_text(encoding="utf-8"))
    assert tuple(schema["properties"]["spec"]["properties"]["component"]["items"]["enum"]) == COMPONENT_FIELDS


def test_matrix_expressions_are_left_for_parallel_matrix() -> None:
    text = (
        "spec:\n  inputs: {}\n---\nbuild:\n  script: [x]\n  parallel:\n    matrix:\n      - OS: [linux]\n"
        "test:\n  script: [x]\n  parallel:\n    matrix:\n      - OS: [linux]\n"
        "  needs:\n    - job: build\n      parallel:\n        matrix:\n          - OS: ['$[[ matrix.OS ]]']\n"
    )
    assert [rule for _, rule, _, _ in lint_text(text)] == []


# --------------------------------------------------------------------------- the toolkit's own components


@pytest.mark.parametrize("template", TEMPLATES, ids=[t.name for t in TEMPLATES])
def test_the_toolkits_templates_lint_clean_on_their_own(template: Path) -> None:
    assert [str(i) for i in lint_file(template)] == []


def test_nothing_in_templates_is_latest() -> None:
    found = [
        f"{path.name}:{number}: {line.strip()}"
        for path in sorted(TEMPLATES_DIR.iterdir())
        if path.is_file()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r":latest\b", line)
    ]
    assert found == []


@pytest.mark.parametrize("name", TOOLKIT_IMAGE_COMPONENTS)
def test_each_toolkit_job_runs_the_toolkit_of_its_own_release(name: str) -> None:
    document = parse_document((TEMPLATES_DIR / f"{name}.yml").read_text(), name)
    assert "version" in (document.spec or {}).get("component", [])
    assert document.body[name]["image"] == "$[[ inputs.toolkit-image-repository ]]:$[[ component.version ]]"
    inputs = {"service": "orders", "url": "https://orders.example.com"} if name.startswith("deploy") else {}
    result = included(f"$CI_SERVER_FQDN/auto/toolkit/{name}@1.2.3", json.dumps(inputs))
    assert result.issues == []
    assert result.body[name]["image"] == "$CI_REGISTRY/auto/toolkit:1.2.3"
    mirror = {**inputs, "toolkit-image-repository": "mirror.example.com:5050/platform/toolkit"}
    result = included(f"$CI_SERVER_FQDN/auto/toolkit/{name}@2.0.0", json.dumps(mirror))
    assert result.body[name]["image"] == "mirror.example.com:5050/platform/toolkit:2.0.0"


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (
            "{toolkit-image-repository: 'registry.example.com/auto/toolkit:latest'}",
            "input 'toolkit-image-repository': provided value does not match required RegEx pattern",
        ),
        ("{toolkit-image: 'registry.example.com/auto/toolkit:1.0.0'}", "unknown input arguments: toolkit-image"),
    ],
    ids=["a-tag-in-the-repository", "the-old-whole-image-input"],
)
def test_the_toolkit_image_is_a_repository_the_release_tags(inputs: str, message: str) -> None:
    (issue,) = included("$CI_SERVER_FQDN/auto/toolkit/switch@1.2.3", inputs).issues
    assert issue.message.endswith(f"switch.yml: {message}")


def test_another_toolkit_image_is_the_includers_image_keyword(tmp_path: Path) -> None:
    text = (
        "include:\n  - component: $CI_SERVER_FQDN/auto/toolkit/switch@1.2.3\n"
        "switch:\n  image: registry.example.com/me/toolkit:dev\n"
    )
    assert assembled(text).body["switch"]["image"] == "registry.example.com/me/toolkit:dev"
    document = parse_document(text, ".gitlab-ci.yml")
    assert lint_document(".gitlab-ci.yml", document.spec, document.body) == []


@pytest.mark.parametrize(
    ("reference", "installed"),
    [("1.2.3", '"${package:-auto-toolkit${version:+==$version}}"'), (SHA, None)],
    ids=["release", "commit"],
)
def test_pages_installs_the_toolkit_of_its_own_release(reference: str, installed: str | None) -> None:
    result = included(f"$CI_SERVER_FQDN/auto/toolkit/pages@{reference}")
    script = result.body["pages"]["script"][2]
    version = reference if installed else ""
    lines = script.splitlines()
    assert lines[:2] == [
        "package=''",  # posix_escape of the empty default: auto-toolkit of the release
        f"version='{version}'",
    ]
    # From which index: tests/pipelines/test_pages_install.py runs the step.
    assert lines[-1] == 'pip install "${package:-auto-toolkit${version:+==$version}}"'
    given = included(f"$CI_SERVER_FQDN/auto/toolkit/pages@{reference}", "{toolkit-package: /src/my toolkit}")
    assert given.body["pages"]["script"][2].splitlines()[0] == "package=/src/my\\ toolkit"


def test_the_services_pipeline_with_every_component_lints_clean(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    write(
        tmp_path,
        {
            ".gitlab-ci.yml": "stages: [build, test, deploy, pages]\ninclude:\n"
            "  - component: $CI_SERVER_FQDN/auto/toolkit/build@1.2.3\n"
            "  - component: $CI_SERVER_FQDN/auto/toolkit/test@1.2.3\n"
            "  - component: $CI_SERVER_FQDN/auto/toolkit/deploy-staging@1.2.3\n"
            "    inputs: {service: orders, url: 'https://staging.example.com'}\n"
            "  - component: $CI_SERVER_FQDN/auto/toolkit/deploy-production@1.2.3\n"
            "    inputs: {service: orders, url: 'https://orders.example.com'}\n"
            "  - component: $CI_SERVER_FQDN/auto/toolkit/switch@1.2.3\n"
            "  - component: $CI_SERVER_FQDN/auto/toolkit/pages@1.2.3\n"
        },
    )
    assert cli.main(["lint", "--root", str(tmp_path), str(tmp_path / ".gitlab-ci.yml")]) == 0
    assert capsys.readouterr().out.strip() == "1 file(s) checked: 1 clean, 0 with errors; 0 error(s), 0 warning(s)"
