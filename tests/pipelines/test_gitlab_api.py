"""auto-pipelines and GitLab's API: remote lint, secrets push, deployment record, and every error path.

Real HTTP through python-gitlab and requests, answered by ``responses`` with the payloads of GitLab's
API documentation (tests/pipelines/gitlab_responses/). Every CLI run also checks that no secret (the
token, a PEM or a line of one) reaches stdout or stderr.
"""

from __future__ import annotations

import json
import os
import socket
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from responses import matchers

from deployer.lab import certs
from pipelines import cli, gitlab_api
from pipelines.deployments import deployment_request
from pipelines.errors import (
    GitLabAuthError,
    GitLabPartialError,
    GitLabPermissionError,
    PipelinesConfigError,
    PipelinesGitLabError,
)
from pipelines.gitlab_api import GitLabSettings, connect, load_settings, scrub
from pipelines.secrets import load_tls, mask_verdict, push_secrets

RESPONSES = Path(__file__).parent / "gitlab_responses"
CORPUS = Path(__file__).parent / "corpus"
URL = "https://gitlab.example.com"
API = f"{URL}/api/v4"
TOKEN = "glpat-Qm9vU2VjcmV0VG9rZW4x-7f3a"
SHA = "a91957a858320c0e17f3a0eca7cfacbff50ea29a"
KEYS = ("AUTO_DOCKER_CA", "AUTO_DOCKER_CERT", "AUTO_DOCKER_KEY")
GOOD_PIPELINE = "stages: [build]\nbuild:\n  stage: build\n  script: [make]\n"


def payload(name: str) -> Any:
    return json.loads((RESPONSES / f"{name}.json").read_text(encoding="utf-8"))


ERRORS = payload("errors")


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def gitlab_env(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """A clean environment with GITLAB_URL and GITLAB_TOKEN; python-gitlab's retries do not wait."""
    for name in list(os.environ):
        if name.startswith(("CI_", "GITLAB_", "AUTO_DOCKER_")) or name in ("CI", "REQUESTS_CA_BUNDLE"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("GITLAB_URL", URL)
    monkeypatch.setenv("GITLAB_TOKEN", TOKEN)
    waits: list[float] = []
    fake_time = types.SimpleNamespace(sleep=waits.append, time=time.time)
    monkeypatch.setattr("gitlab.utils.time", fake_time)
    return waits


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    # Unregistered requests raise ConnectionError: nothing reaches the network by accident.
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ca = certs.make_ca("test CA")
    directory = tmp_path_factory.mktemp("bundle")
    certs.write_bundle(directory, ca, certs.issue(ca, "client", client=True))
    return directory


@pytest.fixture(scope="module")
def pems(bundle: Path) -> dict[str, str]:
    return {key: (bundle / name).read_text() for key, name in zip(KEYS, ("ca.pem", "cert.pem", "key.pem"), strict=True)}


def assert_no_secret(text: str, pems: dict[str, str]) -> None:
    assert TOKEN not in text
    for pem in pems.values():
        assert pem.strip() not in text
        for line in pem.splitlines()[1:-1]:  # the base64 body, line by line
            assert line not in text


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], pems: dict[str, str]) -> Callable[..., tuple[int, str, str]]:
    """``cli.main(argv)`` -> (exit code, stdout, stderr), after checking no secret was printed."""

    def call(*argv: str) -> tuple[int, str, str]:
        code = cli.main(list(argv))
        out, err = capsys.readouterr()
        assert_no_secret(out + err, pems)
        return code, out, err

    return call


def one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    return lines[0]


def body(call: Any) -> Any:
    return json.loads(call.request.body)


# --------------------------------------------------------------------------- settings


def test_settings_from_the_environment() -> None:
    settings = load_settings({"CI_SERVER_URL": f"{URL}/", "GITLAB_TOKEN": TOKEN, "CI_PROJECT_ID": "42"})
    assert (settings.url, settings.project, settings.ssl_verify) == (URL, "42", True)
    assert TOKEN not in repr(settings)


def test_settings_flags_win_and_ca_file_is_verify(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    env = {"GITLAB_URL": f"{API}", "GITLAB_TOKEN": TOKEN, "CI_PROJECT_ID": "1", "GITLAB_CA_FILE": "/nope"}
    settings = load_settings(env, project="group/app", ca_file=str(ca))
    assert (settings.url, settings.project, settings.ssl_verify) == (URL, "group/app", str(ca))


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GITLAB_TOKEN": TOKEN, "CI_PROJECT_ID": "1"}, "GITLAB_URL is not set"),
        ({"GITLAB_URL": URL, "CI_PROJECT_ID": "1"}, "GITLAB_TOKEN is not set"),
        (
            {"GITLAB_URL": URL, "GITLAB_TOKEN": TOKEN},
            "no GitLab project: pass --project ID_OR_PATH or set CI_PROJECT_ID",
        ),
        ({"GITLAB_URL": "http://gitlab.example.com", "GITLAB_TOKEN": TOKEN}, "GITLAB_URL must be an https:// URL"),
        ({"GITLAB_URL": URL, "GITLAB_TOKEN": TOKEN, "CI_PROJECT_ID": "1", "GITLAB_CA_FILE": "/no/ca.pem"}, "CA file"),
    ],
)
def test_settings_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(PipelinesConfigError, match=message) as info:
        load_settings(env)
    assert TOKEN not in str(info.value)


@pytest.mark.parametrize(("unset", "variable"), [("GITLAB_TOKEN", "GITLAB_TOKEN"), ("GITLAB_URL", "GITLAB_URL")])
def test_cli_missing_setting_exits_2_naming_it(
    unset: str, variable: str, monkeypatch: pytest.MonkeyPatch, run: Callable[..., tuple[int, str, str]], bundle: Path
) -> None:
    monkeypatch.delenv(unset)
    for argv in (
        ["lint", "--remote", str(CORPUS / "good-component.yml")],
        ["secrets", "push", "--environment", "production", "--project", "42", "--cert-dir", str(bundle)],
        ["deployment", "record", "--environment", "production", "--project", "42", "--ref", "main", "--sha", SHA,
         "--status", "running"],
    ):  # fmt: skip
        code, out, err = run(*argv)
        assert code == 2 and out == ""
        assert one_error_line(err).startswith(f"Error: {variable} is not set")


def test_scrub_removes_secrets_pem_blocks_and_tokens(pems: dict[str, str]) -> None:
    line = pems["AUTO_DOCKER_KEY"].splitlines()[1]
    text = f"bad {pems['AUTO_DOCKER_CERT']} and {line} and glpat-abcdefghij0123456789 and {TOKEN}"
    cleaned = scrub(text, [TOKEN, pems["AUTO_DOCKER_KEY"]])
    assert_no_secret(cleaned, pems)
    assert "glpat-" not in cleaned and "\n" not in cleaned and "[redacted]" in cleaned


# --------------------------------------------------------------------------- lint --remote


def write(tmp_path: Path, text: str = GOOD_PIPELINE, name: str = ".gitlab-ci.yml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_remote_lint_valid(
    tmp_path: Path, rsps: responses.RequestsMock, run: Callable[..., tuple[int, str, str]]
) -> None:
    file = write(tmp_path)
    rsps.post(f"{API}/projects/42/ci/lint", json=payload("ci_lint_valid"))
    code, out, err = run("lint", "--remote", "--project", "42", file)
    assert (code, err) == (0, "")
    assert out == "1 file(s) checked: 1 clean, 0 with errors; 0 error(s), 0 warning(s)\n"
    (call,) = rsps.calls
    assert body(call) == {"content": GOOD_PIPELINE, "dry_run": True}
    assert call.request.headers["PRIVATE-TOKEN"] == TOKEN


def test_remote_lint_project_path_ref_and_ci_project_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rsps: responses.RequestsMock, run: Callable[..., tuple]
) -> None:
    file = write(tmp_path)
    monkeypatch.setenv("CI_PROJECT_ID", "group/app")
    rsps.post(f"{API}/projects/group%2Fapp/ci/lint", json=payload("ci_lint_valid"))
    assert run("lint", "--remote", "--ref", "release/1.2", file)[0] == 0
    assert body(rsps.calls[0]) == {"content": GOOD_PIPELINE, "dry_run": True, "ref": "release/1.2"}


INCLUDING = (
    "include:\n  - project: group/templates\n    ref: v1.2\n    file: /ci/build.yml\n"
    "stages: [build, test]\ntest:\n  stage: test\n  needs: [compile]\n  script: [make test]\n"
)
# GET /projects/:id/repository/files/:file_path/raw answers the file's bytes (GitLab's repository files API).
RAW = f"{API}/projects/group%2Ftemplates/repository/files/ci%2Fbuild.yml/raw"


def test_remote_reads_project_includes_and_checks_them_for_real(
    tmp_path: Path, rsps: responses.RequestsMock, run: Callable[..., tuple[int, str, str]]
) -> None:
    file = write(tmp_path, INCLUDING)
    rsps.get(RAW, body=".compile:\n  script: [make]\ncompile:\n  extends: .compile\n  stage: build\n")
    rsps.post(f"{API}/projects/42/ci/lint", json=payload("ci_lint_valid"))
    code, out, err = run("lint", "--remote", "--project", "42", file)
    assert (code, err) == (0, "")
    assert out == "1 file(s) checked: 1 clean, 0 with errors; 0 error(s), 0 warning(s)\n"  # no include unread
    assert rsps.calls[0].request.url == f"{RAW}?ref=v1.2"
    # Offline, the same file has the include unread: its needs: target is only a warning.
    code, out, _ = run("lint", file)
    assert code == 0 and "warning: needs 'compile'" in out and "[include-not-read]" in out


def test_remote_project_include_that_is_wrong_is_an_error(
    tmp_path: Path, rsps: responses.RequestsMock, run: Callable[..., tuple[int, str, str]]
) -> None:
    file = write(tmp_path, INCLUDING)
    rsps.get(RAW, body="compile:\n  stage: deploy\n  script: [make]\n")  # a later stage than its needer's
    rsps.post(f"{API}/projects/42/ci/lint", json=payload("ci_lint_valid"))
    code, out, _ = run("lint", "--remote", "--project", "42", file)
    assert code == 3
    assert "stage 'deploy' is not in stages (build, test) [undeclared-stage]" in out


def test_remote_project_include_missing_is_an_error_on_that_include(
    tmp_path: Path, rsps: responses.RequestsMock, run: Callable[..., tuple[int, str, str]]
) -> None:
    file = write(tmp_path, INCLUDING)
    rsps.get(RAW, status=404, json={"message": "404 File Not Found"})
    rsps.post(f"{API}/projects/42/ci/lint", json=payload("ci_lint_valid"))
    code, out, _ = run("lint", "--remote", "--project", "42", file)
    assert code == 3
    assert (
        "$.include[0]: project include group/templates:ci/build.yml@v1.2: GitLab has no file 'ci/build.yml' at v1.2 "
        "in project 'group/templates' (or the token may not read it) [include-not-found]"
    ) in out


def test_remote_project_include_gitlab_failure_exits_4(
    tmp_path: Path, rsps: responses.RequestsMock, run: Callable[..., tuple[int, str, str]]
) -> None:
    file = write(tmp_path, INCLUDING)
    rsps.get(RAW, status=401, json={"message": "401 Unauthorized"})
    code, out, err = run("lint", "--remote", "--project", "42", file)
    assert code == 4 and out == ""
    assert one_error_line(err).startswith("Error: GitLab at https://gitlab.example.com refused the token (401)")


def test_remote_lint_invalid_shows_gitlab_errors_like_offline_ones(
    tmp_path: Path, rsps: responses.RequestsMock, run: Callable[..., tuple[int, str, str]]
) -> None:
    file = write(tmp_path)
    rsps.post(f"{API}/projects/42/ci/lint", json=payload("ci_lint_invalid"))
    code, out, err = run("lint", "--remote", "--project", "42", file)
    assert (code, err) == (3, "")
    lines = out.splitlines()
    assert lines[:2] == [
        f"{file}: $.build: GitLab: jobs:build config contains unknown keys: scrpt [gitlab-lint]",
        f"{file}: $.build: GitLab: jobs:build config should implement the script:, run:, or trigger: keyword "
        "[gitlab-lint]",
    ]
    assert lines[2].startswith(f"{file}: $.deploy: warning: GitLab: jobs:deploy may allow multiple pipelines")
    assert lines[3] == "1 file(s) checked: 0 clean, 1 with errors; 2 error(s), 1 warning(s)"

    code, out, _ = run("lint", "--remote", "--project", "42", "--json", file)
    report = json.loads(out)
    assert code == 3 and report[0]["ok"] is False
    assert report[0]["issues"][0] == {
        "file": file,
        "path": "$.build",
        "message": "GitLab: jobs:build config contains unknown keys: scrpt",
        "rule": "gitlab-lint",
        "severity": "error",
    }


def test_offline_issues_come_first_and_remote_adds_to_them(
    rsps: responses.RequestsMock, run: Callable[..., tuple[int, str, str]]
) -> None:
    file = str(CORPUS / "undeclared-stage.yml")
    rsps.post(f"{API}/projects/42/ci/lint", json=payload("ci_lint_invalid"))
    code, out, _ = run("lint", "--remote", "--project", "42", file)
    lines = out.splitlines()
    assert code == 3 and lines[0].endswith("[undeclared-stage]") and lines[1].endswith("[gitlab-lint]")
    assert body(rsps.calls[0])["content"] == Path(file).read_text()


def test_component_file_is_not_sent(rsps: responses.RequestsMock, run: Callable[..., tuple[int, str, str]]) -> None:
    file = str(CORPUS / "good-component.yml")
    code, out, _ = run("lint", "--remote", "--project", "42", file)
    assert code == 0 and len(rsps.calls) == 0
    assert f"{file}: $: warning: not linted remotely: a CI/CD component (spec: header)" in out
    assert "[gitlab-lint-skipped]" in out


def test_global_lint_without_a_project(
    tmp_path: Path, rsps: responses.RequestsMock, run: Callable[..., tuple[int, str, str]]
) -> None:
    file = write(tmp_path)
    rsps.post(f"{API}/ci/lint", json=payload("global_lint_valid"))
    assert run("lint", "--remote", file)[0] == 0
    assert body(rsps.calls[0]) == {"content": GOOD_PIPELINE}


def test_global_lint_410_says_to_pass_a_project(
    tmp_path: Path, rsps: responses.RequestsMock, run: Callable[..., tuple[int, str, str]]
) -> None:
    file = write(tmp_path)
    rsps.post(f"{API}/ci/lint", status=410, json=ERRORS["410"])
    code, out, err = run("lint", "--remote", file)
    assert (code, out) == (4, "")
    assert one_error_line(err) == (
        "Error: this GitLab removed the global CI lint endpoint (410): pass --project or set CI_PROJECT_ID"
    )


def test_gitlab_flags_need_remote(tmp_path: Path, run: Callable[..., tuple[int, str, str]]) -> None:
    code, _, err = run("lint", "--project", "42", write(tmp_path))
    assert code == 2 and one_error_line(err) == "Error: --project, --ref and --ca-file are for --remote"
    code, _, err = run("lint", "--remote", "--ref", "main", write(tmp_path))
    assert code == 2 and "--ref needs a project" in one_error_line(err)


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        (401, ERRORS["401"], "refused the token (401) while linting"),
        (403, ERRORS["403"], "lacks permission (403) while linting"),
        (403, ERRORS["403_scope"], "scopes are too narrow (403)"),
        (404, ERRORS["404_project"], "project or resource not found (404: 404 Project Not Found)"),
        (500, ERRORS["500"], "GitLab answered 500 (after retries) while linting"),
    ],
)
def test_remote_lint_api_errors_exit_4(
    status: int,
    error: dict[str, Any],
    expected: str,
    tmp_path: Path,
    rsps: responses.RequestsMock,
    run: Callable[..., tuple[int, str, str]],
) -> None:
    file = write(tmp_path)
    rsps.post(f"{API}/projects/42/ci/lint", status=status, json=error)
    code, out, err = run("lint", "--remote", "--project", "42", file)
    assert (code, out) == (4, "")
    assert expected in one_error_line(err)
    if status == 404:
        assert "check --project / CI_PROJECT_ID ('42'" in err


def test_a_500_is_retried_then_succeeds(
    tmp_path: Path, rsps: responses.RequestsMock, run: Callable[..., tuple[int, str, str]], gitlab_env: list[float]
) -> None:
    url = f"{API}/projects/42/ci/lint"
    rsps.post(url, status=500, json=ERRORS["500"])
    rsps.post(url, json=payload("ci_lint_valid"))
    assert run("lint", "--remote", "--project", "42", write(tmp_path))[0] == 0
    assert len(rsps.calls) == 2 and gitlab_env == [0.1]


def test_a_persistent_500_gives_up_after_the_retries(
    tmp_path: Path, rsps: responses.RequestsMock, run: Callable[..., tuple[int, str, str]], gitlab_env: list[float]
) -> None:
    rsps.post(f"{API}/projects/42/ci/lint", status=500, json=ERRORS["500"])
    assert run("lint", "--remote", "--project", "42", write(tmp_path))[0] == 4
    assert len(rsps.calls) == 1 + gitlab_api.MAX_RETRIES
    assert gitlab_env == [0.1, 0.2, 0.4]


def test_connection_refused_is_unreachable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: Callable[..., tuple[int, str, str]]
) -> None:
    with socket.socket() as probe:  # a port nobody listens on: a real connection refused, no mock
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("GITLAB_URL", f"https://127.0.0.1:{port}")
    code, out, err = run("lint", "--remote", "--project", "42", write(tmp_path))
    assert (code, out) == (4, "")
    assert one_error_line(err).startswith(f"Error: GitLab unreachable at https://127.0.0.1:{port} while linting")


@pytest.mark.parametrize(
    ("exception", "expected"),
    [
        (requests.exceptions.SSLError("certificate verify failed"), "TLS verification of GitLab at"),
        (requests.exceptions.ConnectTimeout("timed out"), "no answer within 30s"),
    ],
)
def test_tls_failure_and_timeout(
    exception: Exception,
    expected: str,
    tmp_path: Path,
    rsps: responses.RequestsMock,
    run: Callable[..., tuple[int, str, str]],
) -> None:
    rsps.post(f"{API}/projects/42/ci/lint", body=exception)
    code, _, err = run("lint", "--remote", "--project", "42", write(tmp_path))
    assert code == 4 and expected in one_error_line(err)
    if isinstance(exception, requests.exceptions.SSLError):
        assert "--ca-file or set GITLAB_CA_FILE" in err


# --------------------------------------------------------------------------- secrets push


def variable(key: str, value: str, **changes: Any) -> dict[str, Any]:
    """A variable as GitLab's API shows it."""
    shown = {
        "variable_type": "file",
        "key": key,
        "value": value,
        "protected": True,
        "masked": False,
        "hidden": False,
        "raw": True,
        "environment_scope": "production",
        "description": None,
    }
    return shown | changes


def expected_body(key: str, pems: dict[str, str], scope: str = "production") -> dict[str, Any]:
    return {
        "key": key,
        "value": pems[key],
        "variable_type": "file",
        "protected": True,
        "masked": False,
        "raw": True,
        "environment_scope": scope,
    }


def scoped(scope: str = "production") -> list[Any]:
    return [matchers.query_param_matcher({"filter[environment_scope]": scope})]


def mock_reads(rsps: responses.RequestsMock, existing: dict[str, dict[str, Any] | None]) -> None:
    rsps.get(f"{API}/projects/42", json=payload("project"))
    for key in KEYS:
        found = existing.get(key)
        if found is None:
            rsps.get(f"{API}/projects/42/variables/{key}", status=404, json=ERRORS["404_variable"], match=scoped())
        else:
            rsps.get(f"{API}/projects/42/variables/{key}", json=found, match=scoped())


def writes(rsps: responses.RequestsMock) -> list[Any]:
    return [c for c in rsps.calls if c.request.method in ("POST", "PUT", "DELETE")]


PUSH = ("secrets", "push", "--environment", "production", "--project", "42")


def test_push_creates_all_three(
    bundle: Path, pems: dict[str, str], rsps: responses.RequestsMock, run: Callable[..., tuple[int, str, str]]
) -> None:
    mock_reads(rsps, {})
    for key in KEYS:
        rsps.post(
            f"{API}/projects/42/variables",
            status=201,
            json=variable(key, pems[key]),
            match=[matchers.json_params_matcher(expected_body(key, pems))],
        )
    code, out, err = run(*PUSH, "--cert-dir", str(bundle))
    assert (code, err) == (0, "")
    assert [body(c) for c in writes(rsps)] == [expected_body(key, pems) for key in KEYS]
    lines = out.splitlines()
    assert lines[0].startswith("project group/app (id 42), environment production: CA ")
    note = "file; protected; raw; scope production; not masked: GitLab cannot mask multi-line values"
    assert lines[1].startswith(f"AUTO_DOCKER_CA: created ({note}; sha256:")
    assert lines[2].startswith(f"AUTO_DOCKER_CERT: created ({note}; sha256:")
    assert lines[3] == f"AUTO_DOCKER_KEY: created ({note})"  # no fingerprint for a key
    assert lines[4] == "3 variable(s): 3 created, 0 updated, 0 unchanged"


def test_push_reports_unchanged_updated_created(
    bundle: Path, pems: dict[str, str], rsps: responses.RequestsMock, run: Callable[..., tuple[int, str, str]]
) -> None:
    old_cert = variable("AUTO_DOCKER_CERT", "-----BEGIN CERTIFICATE-----\nold\n", protected=False, raw=False)
    mock_reads(
        rsps, {"AUTO_DOCKER_CA": variable("AUTO_DOCKER_CA", pems["AUTO_DOCKER_CA"]), "AUTO_DOCKER_CERT": old_cert}
    )
    rsps.put(
        f"{API}/projects/42/variables/AUTO_DOCKER_CERT",
        json=variable("AUTO_DOCKER_CERT", pems["AUTO_DOCKER_CERT"]),
        match=scoped(),
    )
    rsps.post(f"{API}/projects/42/variables", status=201, json=variable("AUTO_DOCKER_KEY", pems["AUTO_DOCKER_KEY"]))
    code, out, _ = run(*PUSH, "--cert-dir", str(bundle), "--json")
    assert code == 0
    put, post = writes(rsps)
    assert (put.request.method, body(put)) == ("PUT", expected_body("AUTO_DOCKER_CERT", pems))
    assert (post.request.method, body(post)) == ("POST", expected_body("AUTO_DOCKER_KEY", pems))
    report = json.loads(out)
    assert [(v["key"], v["action"], v["changed"]) for v in report["variables"]] == [
        ("AUTO_DOCKER_CA", "unchanged", []),
        ("AUTO_DOCKER_CERT", "updated", ["value", "protected", "raw"]),
        ("AUTO_DOCKER_KEY", "created", []),
    ]
    assert report["variables"][2]["not_masked_because"] == "GitLab cannot mask multi-line values"
    assert "sha256_fingerprint" not in report["variables"][2] and "value" not in report["variables"][0]


def test_push_unchanged_sends_nothing(
    bundle: Path, pems: dict[str, str], rsps: responses.RequestsMock, run: Callable[..., tuple[int, str, str]]
) -> None:
    mock_reads(rsps, {key: variable(key, pems[key]) for key in KEYS})
    code, out, _ = run(*PUSH, "--cert-dir", str(bundle))
    assert code == 0 and writes(rsps) == []
    assert out.splitlines()[-1] == "3 variable(s): 0 created, 0 updated, 3 unchanged"


def test_push_dry_run_changes_nothing(
    bundle: Path, pems: dict[str, str], rsps: responses.RequestsMock, run: Callable[..., tuple[int, str, str]]
) -> None:
    mock_reads(rsps, {"AUTO_DOCKER_CA": variable("AUTO_DOCKER_CA", pems["AUTO_DOCKER_CA"], masked=True)})
    code, out, _ = run(*PUSH, "--cert-dir", str(bundle), "--dry-run")
    assert code == 0
    assert writes(rsps) == [] and all(c.request.method == "GET" for c in rsps.calls)
    lines = out.splitlines()
    assert lines[1].startswith("AUTO_DOCKER_CA: would be updated: masked (")
    assert lines[2].startswith("AUTO_DOCKER_CERT: would be created (")
    assert lines[-1] == "dry run, nothing changed: 3 variable(s): 2 would be created, 1 would be updated, 0 unchanged"


def test_push_from_pem_text_variables(
    monkeypatch: pytest.MonkeyPatch,
    pems: dict[str, str],
    rsps: responses.RequestsMock,
    run: Callable[..., tuple[int, str, str]],
) -> None:
    for key in KEYS:
        monkeypatch.setenv(key, pems[key])
    monkeypatch.setenv("CI_PROJECT_ID", "42")
    mock_reads(rsps, {key: variable(key, pems[key]) for key in KEYS})
    code, out, _ = run("secrets", "push", "--environment", "production", "--dry-run")
    assert code == 0 and "CA AUTO_DOCKER_CA, certificate AUTO_DOCKER_CERT, key AUTO_DOCKER_KEY" in out


def test_push_refuses_a_key_that_is_not_the_certificates_before_any_request(
    tmp_path: Path, bundle: Path, rsps: responses.RequestsMock, run: Callable[..., tuple[int, str, str]]
) -> None:
    ca = certs.make_ca("other CA")
    mixed = tmp_path / "mixed"
    certs.write_bundle(mixed, ca, certs.issue(ca, "client", client=True))
    (mixed / "cert.pem").write_bytes((bundle / "cert.pem").read_bytes())  # another pair's certificate
    code, out, err = run(*PUSH, "--cert-dir", str(mixed))
    assert (code, out, len(rsps.calls)) == (2, "", 0)
    assert one_error_line(err) == f"Error: {mixed / 'key.pem'} is not the key of {mixed / 'cert.pem'}"


def test_push_refuses_a_ca_that_does_not_parse(
    tmp_path: Path, bundle: Path, rsps: responses.RequestsMock, run: Callable[..., tuple[int, str, str]]
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("cert.pem", "key.pem"):
        (broken / name).write_bytes((bundle / name).read_bytes())
    (broken / "ca.pem").write_text("not a certificate\n")
    code, _, err = run(*PUSH, "--cert-dir", str(broken))
    assert (code, len(rsps.calls)) == (2, 0)
    assert one_error_line(err) == f"Error: {broken / 'ca.pem'} is not a PEM CA certificate bundle"


def test_push_without_material_or_with_a_bad_environment(
    bundle: Path, rsps: responses.RequestsMock, run: Callable[..., tuple[int, str, str]]
) -> None:
    code, _, err = run(*PUSH)
    assert code == 2 and "no Docker TLS material: pass --cert-dir DIR" in one_error_line(err)
    code, _, err = run("secrets", "push", "--environment", "prod|uction", "--project", "42", "--cert-dir", str(bundle))
    assert code == 2 and "is not a GitLab environment name" in one_error_line(err)
    assert len(rsps.calls) == 0


def test_push_fails_half_way_and_says_what_changed(
    bundle: Path, pems: dict[str, str], rsps: responses.RequestsMock, run: Callable[..., tuple[int, str, str]]
) -> None:
    mock_reads(rsps, {})
    url = f"{API}/projects/42/variables"
    rsps.post(url, status=201, json=variable("AUTO_DOCKER_CA", pems["AUTO_DOCKER_CA"]))
    rsps.post(url, status=403, json=ERRORS["403"])
    code, out, err = run(*PUSH, "--cert-dir", str(bundle))
    assert (code, out) == (4, "")
    assert one_error_line(err) == (
        "Error: the token lacks permission (403) while creating variable AUTO_DOCKER_CERT: managing CI/CD "
        "variables needs the Maintainer role on the project; changed before the failure: AUTO_DOCKER_CA (created); "
        "not changed: AUTO_DOCKER_CERT, AUTO_DOCKER_KEY"
    )
    assert [body(c)["key"] for c in writes(rsps)] == ["AUTO_DOCKER_CA", "AUTO_DOCKER_CERT"]  # the key never sent


def test_push_400_echoing_a_secret_is_scrubbed(
    bundle: Path, pems: dict[str, str], rsps: responses.RequestsMock, run: Callable[..., tuple[int, str, str]]
) -> None:
    mock_reads(rsps, {})
    echo = {"message": {"value": [f"{pems['AUTO_DOCKER_KEY']} is invalid"], "key": [f"{TOKEN} is taken"]}}
    rsps.post(f"{API}/projects/42/variables", status=400, json=echo)
    code, _, err = run(*PUSH, "--cert-dir", str(bundle))
    line = one_error_line(err)
    assert code == 4 and line.startswith("Error: GitLab answered 400 while creating variable AUTO_DOCKER_CA: value ")
    assert line.endswith("; nothing was changed") and "[redacted]" in line


@pytest.mark.parametrize(
    ("mock", "expected"),
    [
        (
            lambda r: r.get(f"{API}/projects/42", status=404, json=ERRORS["404_project"]),
            "project or resource not found (404: 404 Project Not Found) while reading project 42",
        ),
        (
            lambda r: r.get(f"{API}/projects/42", status=401, json=ERRORS["401"]),
            "refused the token (401) while reading project 42",
        ),
        (
            lambda r: (
                r.get(f"{API}/projects/42", json=payload("project")),
                r.get(f"{API}/projects/42/variables/AUTO_DOCKER_CA", status=403, json=ERRORS["403"]),
            ),
            "lacks permission (403) while reading variable AUTO_DOCKER_CA (scope production): managing CI/CD "
            "variables needs the Maintainer role",
        ),
    ],
)
def test_push_read_errors_change_nothing(
    mock: Callable[[responses.RequestsMock], Any],
    expected: str,
    bundle: Path,
    rsps: responses.RequestsMock,
    run: Callable[..., tuple[int, str, str]],
) -> None:
    mock(rsps)
    code, _, err = run(*PUSH, "--cert-dir", str(bundle))
    line = one_error_line(err)
    assert code == 4 and expected in line and line.endswith("; nothing was changed")
    assert writes(rsps) == []


def settings() -> GitLabSettings:
    return load_settings(os.environ, project="42")


def test_library_errors_carry_no_secret(bundle: Path, pems: dict[str, str], rsps: responses.RequestsMock) -> None:
    material = load_tls(str(bundle), {})
    rsps.get(f"{API}/projects/42", status=401, json={"message": f"401 Unauthorized {TOKEN}"})
    with pytest.raises(GitLabAuthError) as info:
        push_secrets(connect(settings()), settings(), "production", material)
    assert_no_secret(str(info.value) + repr(info.value), pems)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_library_partial_error_lists_done_and_not_done(
    bundle: Path, pems: dict[str, str], rsps: responses.RequestsMock
) -> None:
    material = load_tls(str(bundle), {})
    mock_reads(rsps, {"AUTO_DOCKER_CA": variable("AUTO_DOCKER_CA", pems["AUTO_DOCKER_CA"])})
    rsps.post(f"{API}/projects/42/variables", status=201, json=variable("AUTO_DOCKER_CERT", pems["AUTO_DOCKER_CERT"]))
    rsps.post(f"{API}/projects/42/variables", body=requests.exceptions.ConnectionError("reset"))
    with pytest.raises(GitLabPartialError) as info:
        push_secrets(connect(settings()), settings(), "production", material)
    assert info.value.done == ["AUTO_DOCKER_CERT (created)"] and info.value.not_done == ["AUTO_DOCKER_KEY"]
    assert info.value.exit_code == 4 and "GitLab unreachable" in str(info.value)
    assert_no_secret(str(info.value), pems)


@pytest.mark.parametrize(
    ("value", "maskable", "reason"),
    [
        ("c2VjcmV0LXZhbHVlLTEyMw==", True, ""),
        ("user@host:path.v1~x_y-z", True, ""),
        ("short", False, "GitLab cannot mask values shorter than 8 characters"),
        ("has a space in it", False, "GitLab can mask only values made of Base64 characters and @ : . ~"),
        ("line-one\nline-two", False, "GitLab cannot mask multi-line values"),
        (
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
            False,
            "GitLab cannot mask multi-line values",
        ),
    ],
)
def test_mask_verdict_follows_gitlabs_rules(value: str, maskable: bool, reason: str) -> None:
    assert mask_verdict(value) == (maskable, reason)


# --------------------------------------------------------------------------- deployment record


def test_deployment_create_from_ci_variables(
    monkeypatch: pytest.MonkeyPatch, rsps: responses.RequestsMock, run: Callable[..., tuple[int, str, str]]
) -> None:
    monkeypatch.delenv("GITLAB_URL")
    ci = {"CI_SERVER_URL": URL, "CI_PROJECT_ID": "42", "CI_ENVIRONMENT_NAME": "production"}
    for name, value in (ci | {"CI_COMMIT_REF_NAME": "main", "CI_COMMIT_SHA": SHA}).items():
        monkeypatch.setenv(name, value)
    rsps.post(f"{API}/projects/42/deployments", status=201, json=payload("deployment"))
    code, out, err = run("deployment", "record", "--status", "running")
    assert (code, out) == (0, "117\n")
    assert err == f"deployment 117 (#3) created: environment production, status running, ref main, sha {SHA[:8]}\n"
    assert body(rsps.calls[0]) == {
        "environment": "production",
        "sha": SHA,
        "ref": "main",
        "tag": False,
        "status": "running",
    }


def test_deployment_in_a_tag_pipeline_is_a_tag(
    monkeypatch: pytest.MonkeyPatch, rsps: responses.RequestsMock, run: Callable[..., tuple[int, str, str]]
) -> None:
    for name, value in {"CI_COMMIT_REF_NAME": "v1.2.0", "CI_COMMIT_TAG": "v1.2.0", "CI_COMMIT_SHA": SHA}.items():
        monkeypatch.setenv(name, value)
    rsps.post(f"{API}/projects/42/deployments", status=201, json=payload("deployment") | {"ref": "v1.2.0"})
    assert run("deployment", "record", "--project", "42", "--environment", "production", "--status", "running")[0] == 0
    assert body(rsps.calls[0])["tag"] is True and body(rsps.calls[0])["ref"] == "v1.2.0"


def test_deployment_update_status(
    monkeypatch: pytest.MonkeyPatch, rsps: responses.RequestsMock, run: Callable[..., tuple[int, str, str]]
) -> None:
    monkeypatch.setenv("GITLAB_CI", "true")  # collapsible sections on stderr, stdout unchanged
    rsps.get(f"{API}/projects/42/deployments/117", json=payload("deployment"))
    rsps.put(f"{API}/projects/42/deployments/117", json=payload("deployment") | {"status": "success"})
    code, out, err = run(
        "deployment", "record", "--project", "42", "--environment", "production", "--id", "117", "--status", "success",
        "--json",
    )  # fmt: skip
    assert code == 0
    assert json.loads(out) == {
        "action": "updated",
        "id": 117,
        "iid": 3,
        "status": "success",
        "environment": "production",
        "ref": "main",
        "sha": SHA,
    }
    assert body(rsps.calls[1]) == {"status": "success"} and rsps.calls[1].request.method == "PUT"
    assert "section_start:" in err and "section_end:" in err and "Recording the deployment in GitLab" in err


def test_deployment_update_refuses_another_environment(
    rsps: responses.RequestsMock, run: Callable[..., tuple[int, str, str]]
) -> None:
    rsps.get(f"{API}/projects/42/deployments/117", json=payload("deployment"))
    code, _, err = run(
        "deployment", "record", "--project", "42", "--environment", "staging", "--id", "117", "--status", "failed"
    )
    assert code == 2 and one_error_line(err) == (
        "Error: deployment 117 is in environment 'production', not 'staging': nothing was changed"
    )
    assert writes(rsps) == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--sha", "a91957a"], "Error: --sha 'a91957a' is not a full commit SHA (40 hexadecimal characters)"),
        (["--sha", "z" * 40], "is not a full commit SHA"),
        (["--sha", SHA, "--status", "done"], "Error: argument --status: invalid choice: 'done'"),
        (["--sha", SHA, "--id", "0"], "Error: --id 0 is not a deployment id (a positive number)"),
        (["--id", "5"], "Error: --ref, --sha and --tag describe a new deployment: with --id only --status"),
        ([], "Error: no commit: pass --sha SHA or set CI_COMMIT_SHA"),
    ],
)
def test_deployment_bad_input_exits_2_before_any_request(
    argv: list[str], message: str, rsps: responses.RequestsMock, capsys: pytest.CaptureFixture[str]
) -> None:
    full = ["deployment", "record", "--project", "42", "--environment", "production", "--ref", "main"]
    full += argv if "--status" in argv else [*argv, "--status", "running"]
    try:
        code = cli.main(full)
    except SystemExit as exc:  # argparse's own one-line errors
        code = exc.code
    assert code == 2 and message in one_error_line(capsys.readouterr().err)
    assert len(rsps.calls) == 0


def test_deployment_request_validates_status() -> None:
    with pytest.raises(PipelinesConfigError, match="--status 'done' is not one of running, success, failed, canceled"):
        deployment_request({}, status="done", environment="production", ref="main", sha=SHA)


@pytest.mark.parametrize(
    ("status", "error", "exception", "expected"),
    [
        (401, ERRORS["401"], GitLabAuthError, "refused the token (401) while creating a deployment in production"),
        (403, ERRORS["403"], GitLabPermissionError, "needs at least the Developer role"),
        (404, ERRORS["404_project"], PipelinesGitLabError, "check --project / CI_PROJECT_ID ('42'"),
    ],
)
def test_deployment_api_errors(
    status: int,
    error: dict[str, Any],
    exception: type[Exception],
    expected: str,
    rsps: responses.RequestsMock,
    run: Callable[..., tuple[int, str, str]],
) -> None:
    rsps.post(f"{API}/projects/42/deployments", status=status, json=error)
    code, out, err = run(
        "deployment", "record", "--project", "42", "--environment", "production", "--ref", "main", "--sha", SHA,
        "--status", "running",
    )  # fmt: skip
    assert (code, out) == (4, "") and expected in one_error_line(err)
    assert issubclass(exception, PipelinesGitLabError)


def test_help_documents_the_commands_and_exit_code_4(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--help"], ["secrets", "push", "--help"], ["deployment", "record", "--help"], ["lint", "--help"]):
        with pytest.raises(SystemExit) as info:
            cli.main(argv)
        assert info.value.code == 0
        out = capsys.readouterr().out
        assert "  4  the GitLab API refused or is unreachable" in out and "GITLAB_TOKEN" in out


def test_offline_lint_output_is_unchanged_under_gitlab_ci(
    monkeypatch: pytest.MonkeyPatch, rsps: responses.RequestsMock, run: Callable[..., tuple[int, str, str]]
) -> None:
    monkeypatch.setenv("GITLAB_CI", "true")
    code, out, err = run("lint", str(CORPUS / "good-component.yml"))
    assert (code, err, len(rsps.calls)) == (0, "", 0)
    assert out == "1 file(s) checked: 1 clean, 0 with errors; 0 error(s), 0 warning(s)\n"
