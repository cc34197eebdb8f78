"""``auto-deploy`` fed every shape a value of AUTO_DOCKER_CA/CERT/KEY can take, good or hostile.

The real CLI (``deployer.cli.main``) with ``status`` and ``deploy --dry-run``: both load the TLS material
before anything else needs a server, so a shape the loader accepts ends on the next thing missing
(``AUTO_STATE_URL``, unset here), and one it refuses ends on its own one-line message. Each run asserts the
exact exit code and message, and that no run of 8 characters of any value appears in stdout, stderr, or
any file written. The shapes and the leak check are those of tests/pipelines/test_secrets_hostile.py.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from deployer import cli, tls
from tests.pipelines.test_secrets_hostile import (
    PARTS,
    SHAPE_IDS,
    SHAPES,
    Material,
    Sandbox,
    Shape,
    assert_nothing_leaked,
    make_material,
    make_sandbox,
    secrets_of,
)

# The material was accepted: the next thing, the environment-state service, is not configured.
ACCEPTED = (
    "Error: AUTO_STATE_URL is not set: point it at the environment-state service "
    '(or run: eval "$(auto-deploy lab env)")'
)
STATUS = ["status", "--env", "lab", "--stack", "web"]
DEPLOY_DRY_RUN = ["deploy", "--env", "lab", "--stack", "web", "-c", "compose.yml", "--dry-run"]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("AUTO_", "CI_", "GITLAB_")) or name == "CI":
            monkeypatch.delenv(name)
    # A docker client that does not exist: `deploy` asks the client for its flags first, and must not run one.
    monkeypatch.setenv("AUTO_DOCKER_CLI", "/nonexistent/docker")


@pytest.fixture(scope="module")
def material() -> Material:
    return make_material()


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    return make_sandbox(tmp_path, monkeypatch)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), f"{len(lines)} lines on stderr"  # not the text: a leak
    return lines[0]


def check_shape(
    argv: list[str],
    part: str,
    shape: Shape,
    material: Material,
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    variable = tls.ENV_NAMES[part]
    value = shape.build(material.pem(part), sandbox.inputs)
    environ = dict(material.pems) | {variable: value}
    for name, text in environ.items():
        monkeypatch.setenv(name, text)

    code, out, err = run(argv, capsys)

    expected = ACCEPTED if shape.error is None else f"Error: {shape.error(variable, part, value)}"
    assert (code, out) == (2, "")
    assert one_line(err) == expected
    assert sandbox.written() == []  # no TLS directory was left behind (none was even made)
    assert_nothing_leaked(secrets_of(material, environ, value if shape.names_the_value else None), sandbox, out, err)


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize("part", PARTS)
def test_status_with_each_shape(
    part: str,
    shape: Shape,
    material: Material,
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    check_shape(STATUS, part, shape, material, sandbox, monkeypatch, capsys)


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_deploy_dry_run_with_each_shape_of_the_key(
    shape: Shape,
    material: Material,
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    check_shape(DEPLOY_DRY_RUN, "key", shape, material, sandbox, monkeypatch, capsys)


def test_the_reported_case_base64_key_in_a_ci_variable(
    material: Material, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The tester's report: AUTO_DOCKER_KEY holding base64 of the PEM was taken for a path and echoed."""
    environ = dict(material.pems)
    environ["AUTO_DOCKER_KEY"] = base64.b64encode(material.pem("key").encode()).decode()
    for name, text in environ.items():
        monkeypatch.setenv(name, text)
    code, out, err = run(STATUS, capsys)
    assert (code, one_line(err)) == (2, ACCEPTED)
    assert "cannot read" not in err and "LS0tLS1CRUdJTi" not in err
    assert_nothing_leaked(secrets_of(material, environ), sandbox, out, err)


def test_cert_dir_with_base64_files_and_one_broken(
    material: Material, sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = sandbox.inputs / "certs"
    directory.mkdir()
    for part, name in tls.FILE_NAMES.items():
        (directory / name).write_bytes(base64.b64encode(material.pem(part).encode()))
    code, out, err = run([*STATUS, "--cert-dir", str(directory)], capsys)
    assert (code, one_line(err)) == (2, ACCEPTED)
    (directory / "key.pem").write_bytes(base64.b64encode(b"not a key at all, but long enough to be base64"))
    code, out, err = run([*STATUS, "--cert-dir", str(directory)], capsys)
    assert (code, one_line(err)) == (2, f"Error: {directory / 'key.pem'} is not an unencrypted PEM private key")
    assert_nothing_leaked(secrets_of(material, {}), sandbox, out, err)


@pytest.mark.parametrize("encode", [False, True], ids=["pem", "base64"])
def test_cert_path_variable_holding_a_key_is_not_echoed(
    encode: bool,
    material: Material,
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    value = material.pem("key")
    value = base64.b64encode(value.encode()).decode() if encode else value
    monkeypatch.setenv("AUTO_DOCKER_CERT_PATH", value)
    code, out, err = run(STATUS, capsys)
    assert (code, out) == (2, "")
    assert one_line(err) == (
        "Error: AUTO_DOCKER_CERT_PATH: not the path of a directory holding ca.pem, cert.pem and key.pem"
    )
    assert_nothing_leaked(secrets_of(material, {"AUTO_DOCKER_CERT_PATH": value}), sandbox, out, err)


def test_cert_dir_flag_holding_a_key_is_not_echoed(
    material: Material, sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run([*STATUS, "--cert-dir", material.pem("key")], capsys)
    assert (code, out) == (2, "")
    assert one_line(err) == "Error: --cert-dir: not the path of a directory holding ca.pem, cert.pem and key.pem"
    assert_nothing_leaked(secrets_of(material, {}), sandbox, out, err)
