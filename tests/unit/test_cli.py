"""The CLI's bad-input paths: exit code 2 and one ``Error:`` line saying what to do."""

from __future__ import annotations

import pytest

from deployer import cli
from deployer.lab import certs


@pytest.fixture
def bundle(tmp_path):
    ca = certs.make_ca("cli test CA")
    return certs.write_bundle(tmp_path / "client", ca, certs.issue(ca, "client", client=True))


@pytest.fixture
def clean_env(monkeypatch):
    import os

    for name in list(os.environ):
        if name.startswith(("AUTO_", "DOCKER_", "GITLAB_")):
            monkeypatch.delenv(name)
    return monkeypatch


def run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:  # argparse
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_missing_state_url(capsys, clean_env, bundle, tmp_path) -> None:
    f = tmp_path / "c.yml"
    f.write_text("services: {web: {image: x}}\n")
    code, _, err = run(capsys, "deploy", "--env", "lab", "--stack", "s", "-c", str(f), "--cert-dir", str(bundle))
    assert code == 2
    assert err == (
        "Error: AUTO_STATE_URL is not set: point it at the environment-state service "
        '(or run: eval "$(auto-deploy lab env)")\n'
    )


def test_missing_tls_material(capsys, clean_env, tmp_path) -> None:
    clean_env.setenv("AUTO_STATE_URL", "https://127.0.0.1:9")
    f = tmp_path / "c.yml"
    f.write_text("services: {web: {image: x}}\n")
    code, _, err = run(capsys, "deploy", "--env", "lab", "--stack", "s", "-c", str(f))
    assert code == 2
    assert err.startswith("Error: no Docker TLS material: pass --cert-dir DIR") and err.count("\n") == 1


def test_missing_compose_file(capsys, clean_env, bundle, tmp_path) -> None:
    clean_env.setenv("AUTO_STATE_URL", "https://127.0.0.1:9")
    code, _, err = run(
        capsys, "deploy", "--env", "lab", "--stack", "s", "-c", str(tmp_path / "no.yml"), "--cert-dir", str(bundle)
    )
    assert code == 2
    assert err == f"Error: compose file {tmp_path / 'no.yml'} does not exist\n"


DEPLOY = ["deploy", "--env", "lab", "--stack", "s", "-c", "x.yml"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["deploy", "--env", "lab", "--stack", "s", "-c", "x.yml", "--timeout", "soon"],
            "'soon' is not a number of seconds",
        ),
        (
            ["deploy", "--env", "lab", "--stack", "s", "-c", "x.yml", "--resolve-image", "maybe"],
            "invalid choice: 'maybe'",
        ),
        (["deploy", "--env", "lab", "--stack", "s"], "the following arguments are required: -c/--compose-file"),
        (["state", "serve"], "the following arguments are required: --db"),
    ],
)
def test_bad_flags(capsys, argv, message) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert err.startswith("Error: ") and message in err and err.count("\n") == 1


def test_state_serve_needs_a_token(capsys, clean_env, tmp_path) -> None:
    code, _, err = run(capsys, "state", "serve", "--db", str(tmp_path / "s.db"), "--listen", "127.0.0.1:0")
    assert code == 2
    assert err.startswith("Error: ") and "AUTO_STATE_TOKEN" in err


def test_tls_cert_without_key(capsys, clean_env, tmp_path) -> None:
    clean_env.setenv("AUTO_STATE_TOKEN", "x")
    code, _, err = run(capsys, "state", "serve", "--db", str(tmp_path / "s.db"), "--tls-cert", "c.pem")
    assert (code, err) == (2, "Error: --tls-cert and --tls-key go together: give both or neither\n")
