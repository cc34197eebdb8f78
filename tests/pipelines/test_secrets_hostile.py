"""``secrets push`` fed every shape a value of AUTO_DOCKER_CA/CERT/KEY can take, good or hostile.

Each shape goes through the real ``auto-pipelines`` CLI (``pipelines.cli.main``), GitLab answered by
``responses`` on its documented payloads (as in test_gitlab_api.py: no request leaves the process). Each run
asserts the exact exit code and message, and that no run of 8 characters of any value (nor of the PEM it
decodes to, nor of the token) appears in stdout, stderr, the logs, or any file written.

``SHAPES``, ``assert_no_secret`` and the sandbox are shared with tests/unit/test_secret_shapes.py, which
feeds the same shapes to ``auto-deploy``.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import random
import string
import tempfile
import time
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import responses
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, Encoding, PrivateFormat
from responses import matchers

from deployer import tls
from deployer.lab import certs
from pipelines import cli
from pipelines.secrets import redact_fragments
from tests.pipelines.test_gitlab_api import (
    API,
    TOKEN,
    URL,
    body,
    mock_reads,
    one_error_line,
    payload,
    scoped,
    variable,
    writes,
)

WINDOW = 8  # the shortest run of a secret's characters that counts as a leak
PARTS = tuple(tls.ENV_NAMES)  # ca, cert, key
WHAT = {"ca": "CA certificate", "cert": "certificate", "key": "key"}
NOT_PEM = {
    "ca": "is not a PEM CA certificate bundle",
    "cert": "is not a PEM certificate",
    "key": "is not an unencrypted PEM private key",
}


# --------------------------------------------------------------------------- the leak check


def _text(data: str | bytes) -> str:
    return data.decode("utf-8", "surrogateescape") if isinstance(data, bytes) else data


def assert_no_secret(secret: str | bytes, *texts: str | bytes) -> None:
    """Fail when any run of 8 characters of ``secret`` appears in one of ``texts``.

    The secret is searched as it is and with its whitespace collapsed, as a one-line message would show it.
    The failure says where, never what: a test log is output too.
    """
    value = _text(secret)
    if len(value) < WINDOW:
        return
    haystacks = (value, " ".join(value.split()))
    for number, text in enumerate(map(_text, texts)):
        seen: set[str] = set()
        for start in range(len(text) - WINDOW + 1):
            window = text[start : start + WINDOW]
            if window in seen:
                continue
            seen.add(window)
            assert not any(window in haystack for haystack in haystacks), (
                f"{WINDOW} characters of a secret at offset {start} of output #{number}"
            )


def test_assert_no_secret_catches_any_window() -> None:
    secret = "-----BEGIN KEY-----\nQm9vU2VjcmV0VG9rZW4x\nZm9vYmFyYmF6cXV4\n-----END KEY-----\n"
    assert_no_secret(secret, "nothing here", b"nor here", "Qm9vU2V")  # 7 characters are not a leak
    for leak in ("...Qm9vU2Vj...", "VG9rZW4x Zm9v", b"xx cmV0VG9r"):
        with pytest.raises(AssertionError, match="8 characters of a secret at offset"):
            assert_no_secret(secret, "clean", leak)


# --------------------------------------------------------------------------- the shapes


@dataclass(frozen=True)
class Shape:
    """One shape of a value. ``error`` is None when the shape is accepted."""

    name: str
    build: Callable[[str, Path], str]  # (the part's good PEM, a directory for input files) -> the value
    error: Callable[[str, str, str], str] | None = None  # (variable, part, value) -> the one-line message
    origin: Callable[[str, str], str] = lambda variable, value: variable  # accepted: how the report names it
    names_the_value: bool = False  # a plain path: messages may quote the value itself


def _rng(name: str) -> random.Random:
    return random.Random(name)  # the same data on every run: a failure can be replayed


def _generic(variable: str, part: str, value: str) -> str:
    return (
        f"{variable}: neither PEM text, base64 of PEM, nor a readable file: store the {WHAT[part]}'s PEM "
        "(or its base64) in it, or make it a file-type variable"
    )


def _file(directory: Path, name: str, data: str | bytes) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return str(path)


def _garbage_pem(pem: str) -> str:
    """The part's own armour around base64 that decodes to nothing valid."""
    lines = pem.strip().splitlines()
    junk = base64.b64encode(_rng("junk").randbytes(96)).decode()
    return f"{lines[0]}\n{junk}\n{lines[-1]}\n"


def _encrypted_key(pem: str) -> str:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(b"passphrase")).decode()


def _printable_megabyte() -> str:
    alphabet = string.ascii_letters + string.digits + " .,;:!?-\n"
    return "".join(_rng("megabyte").choices(alphabet, k=1_000_000))


def _binary() -> str:
    # What os.environ holds for bytes that are not UTF-8: lone surrogates (surrogateescape). No NUL: an
    # environment cannot carry one.
    return _rng("binary").randbytes(4096).replace(b"\0", b"\1").decode("utf-8", "surrogateescape")


SHAPES = [
    Shape("pem", lambda pem, d: pem),
    Shape("pem_crlf", lambda pem, d: pem.replace("\n", "\r\n")),
    Shape(
        "base64",
        lambda pem, d: base64.b64encode(pem.encode()).decode(),
        origin=lambda var, value: f"{var} (base64 of PEM)",
    ),
    Shape(
        "base64_wrapped",  # what `base64 key.pem` prints: 76 columns
        lambda pem, d: base64.encodebytes(pem.encode()).decode(),
        origin=lambda var, value: f"{var} (base64 of PEM)",
    ),
    Shape(
        "base64_urlsafe_unpadded",
        lambda pem, d: base64.urlsafe_b64encode(pem.encode()).decode().rstrip("="),
        origin=lambda var, value: f"{var} (base64 of PEM)",
    ),
    Shape(
        "file_pem",  # a GitLab file-type variable
        lambda pem, d: _file(d, "pem-file", pem),
        origin=lambda var, value: f"{var} ({value})",
        names_the_value=True,
    ),
    Shape(
        "file_base64",
        lambda pem, d: _file(d, "base64-file", base64.b64encode(pem.encode())),
        origin=lambda var, value: f"{var} ({value}, base64 of PEM)",
        names_the_value=True,
    ),
    Shape("base64_garbage", lambda pem, d: base64.b64encode(_rng("garbage").randbytes(600)).decode(), _generic),
    Shape(
        "base64_of_der",  # the PEM's body without its -----BEGIN/-----END lines
        lambda pem, d: "".join(pem.strip().splitlines()[1:-1]),
        lambda var, part, value: (
            f"{var}: base64 of DER, not of PEM (were the BEGIN and END lines left out?): store the "
            f"{WHAT[part]}'s whole PEM (or its base64) in it, or make it a file-type variable"
        ),
    ),
    Shape(
        "missing_path",
        lambda pem, d: str(d / "gone.pem"),
        lambda var, part, value: f"{var}: {value} does not exist",
        names_the_value=True,
    ),
    Shape("missing_relative_path", lambda pem, d: "ci-secrets/no-such-key.pem", _generic),
    Shape("slash_then_base64", lambda pem, d: "/" + base64.b64encode(_rng("slash").randbytes(48)).decode(), _generic),
    Shape(
        "directory",
        lambda pem, d: str(d),
        lambda var, part, value: (
            f"{var}: {value} is a directory, not a file: point it at the {WHAT[part]}'s PEM file, or store the PEM "
            "in it"
        ),
        names_the_value=True,
    ),
    Shape("binary", lambda pem, d: _binary(), _generic),
    Shape("path_with_newline", lambda pem, d: "/builds/group/app.tmp/KEY\nsecond-line-Zx81qPw7", _generic),
    Shape("one_megabyte_of_text", lambda pem, d: _printable_megabyte(), _generic),
    Shape(
        "over_one_mebibyte",
        lambda pem, d: base64.b64encode(_rng("big").randbytes(800_000)).decode(),
        lambda var, part, value: (
            f"{var}: longer than 1 MiB: not TLS material: store the {WHAT[part]}'s PEM (or its base64) in it, "
            "or make it a file-type variable"
        ),
    ),
    Shape(
        "empty",
        lambda pem, d: "",
        lambda var, part, value: (
            f"{', '.join(v for v in tls.ENV_NAMES.values() if v != var)} set but {var} empty: set all three"
        ),
    ),
    Shape(
        "blank",
        lambda pem, d: " \n\t",
        lambda var, part, value: (
            f"{', '.join(v for v in tls.ENV_NAMES.values() if v != var)} set but {var} empty: set all three"
        ),
    ),
    Shape("pem_garbage", lambda pem, d: _garbage_pem(pem), lambda var, part, value: f"{var} {NOT_PEM[part]}"),
    Shape(
        "base64_of_pem_garbage",
        lambda pem, d: base64.b64encode(_garbage_pem(pem).encode()).decode(),
        lambda var, part, value: f"{var} (base64 of PEM) {NOT_PEM[part]}",
    ),
]
SHAPE_IDS = [s.name for s in SHAPES]


@dataclass(frozen=True)
class Material:
    """A good CA, client certificate and key, as PEM text per variable, and an unrelated key."""

    pems: dict[str, str]  # variable -> PEM
    other_key: str

    def pem(self, part: str) -> str:
        return self.pems[tls.ENV_NAMES[part]]


def make_material() -> Material:
    ca = certs.make_ca("hostile test CA")
    client = certs.issue(ca, "client", client=True)
    other = certs.issue(certs.make_ca("other CA"), "other", client=True)
    pems = {
        "AUTO_DOCKER_CA": ca.cert_pem().decode(),
        "AUTO_DOCKER_CERT": client.cert_pem().decode(),
        "AUTO_DOCKER_KEY": client.key_pem().decode(),
    }
    return Material(pems, other.key_pem().decode())


def secrets_of(material: Material, environ: dict[str, str], shown: str | None = None) -> list[str]:
    """Every value that must not leak: the good PEMs, each variable's value (but ``shown``, a plain path that
    messages may quote), and what a base64 value decodes to."""
    out = [*material.pems.values(), material.other_key, TOKEN]
    for value in environ.values():
        if value != shown:
            out.append(value)
        decoded = tls._decode_base64(value)  # the loader's own reading of base64
        if decoded is not None:
            out.append(decoded.decode("utf-8", "surrogateescape"))
    return out


# --------------------------------------------------------------------------- the sandbox


@dataclass
class Sandbox:
    """A working directory, a temporary directory and an input directory, all under tmp_path."""

    inputs: Path
    roots: tuple[Path, ...]

    def written(self) -> list[Path]:
        """Every file the command left in the working or temporary directory."""
        return sorted(p for root in self.roots for p in root.rglob("*") if p.is_file())


def make_sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """Run from an empty working directory, with an empty temporary directory: what is written shows."""
    work, temp, inputs = tmp_path / "work", tmp_path / "tmp", tmp_path / "inputs"
    for directory in (work, temp, inputs):
        directory.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setattr(tempfile, "tempdir", str(temp))  # where private_cert_dir and the like would write
    return Sandbox(inputs, (work, temp))


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    return make_sandbox(tmp_path, monkeypatch)


def assert_nothing_leaked(secrets: list[str], sandbox: Sandbox, *texts: str) -> None:
    files = [path.read_bytes() for path in sandbox.written()]
    for secret in secrets:
        assert_no_secret(secret, *texts, *files)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def gitlab_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """GitLab settings only; no TLS variable, no GITLAB_CI (its sections would be noise); retries do not wait."""
    for name in list(os.environ):
        if name.startswith(("CI_", "GITLAB_", "AUTO_")) or name in ("CI", "REQUESTS_CA_BUNDLE"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("GITLAB_URL", URL)
    monkeypatch.setenv("GITLAB_TOKEN", TOKEN)
    monkeypatch.setenv("CI_PROJECT_ID", "42")
    monkeypatch.setattr("gitlab.utils.time", types.SimpleNamespace(sleep=lambda _s: None, time=time.time))


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    # Unregistered requests raise ConnectionError: nothing reaches the network by accident.
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture(scope="module")
def material() -> Material:
    return make_material()


def run_push(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, *extra: str
) -> tuple[int, str, str, str]:
    caplog.set_level(logging.DEBUG)  # python-gitlab, requests and urllib3 log too: that is output as well
    code = cli.main(["secrets", "push", "--environment", "production", *extra])
    out, err = capsys.readouterr()
    return code, out, err, caplog.text


def fingerprint(pem: str) -> str:
    der = x509.load_pem_x509_certificates(pem.encode())[0].public_bytes(serialization.Encoding.DER)
    return "sha256:" + hashlib.sha256(der).hexdigest()


# --------------------------------------------------------------------------- secrets push --dry-run, every shape


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize("part", PARTS)
def test_push_dry_run_with_each_shape(
    part: str,
    shape: Shape,
    material: Material,
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    rsps: responses.RequestsMock,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    variable_name = tls.ENV_NAMES[part]
    value = shape.build(material.pem(part), sandbox.inputs)
    environ = dict(material.pems) | {variable_name: value}
    for name, text in environ.items():
        monkeypatch.setenv(name, text)
    mock_reads(rsps, {})

    code, out, err, logs = run_push(capsys, caplog, "--dry-run")

    if shape.error is None:
        assert (code, err) == (0, "")
        origins = {v: shape.origin(v, value) if v == variable_name else v for v in tls.ENV_NAMES.values()}
        note = "file; protected; raw; scope production; not masked: GitLab cannot mask multi-line values"
        assert out.splitlines() == [
            "project group/app (id 42), environment production: CA {AUTO_DOCKER_CA}, certificate "
            "{AUTO_DOCKER_CERT}, key {AUTO_DOCKER_KEY}".format(**origins),
            f"AUTO_DOCKER_CA: would be created ({note}; {fingerprint(material.pem('ca'))})",
            f"AUTO_DOCKER_CERT: would be created ({note}; {fingerprint(material.pem('cert'))})",
            f"AUTO_DOCKER_KEY: would be created ({note})",  # a key has no fingerprint
            "dry run, nothing changed: 3 variable(s): 3 would be created, 0 would be updated, 0 unchanged",
        ]
        assert all(call.request.method == "GET" for call in rsps.calls)
    else:
        assert (code, out) == (2, "")
        assert one_error_line(err) == f"Error: {shape.error(variable_name, part, value)}"
        assert len(rsps.calls) == 0  # invalid material stops everything before GitLab is asked
    assert sandbox.written() == []
    assert_nothing_leaked(
        secrets_of(material, environ, value if shape.names_the_value else None), sandbox, out, err, logs
    )


def test_push_uploads_the_pem_a_base64_value_decodes_to(
    material: Material,
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    rsps: responses.RequestsMock,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    environ = {name: base64.b64encode(pem.encode()).decode() for name, pem in material.pems.items()}
    for name, text in environ.items():
        monkeypatch.setenv(name, text)
    mock_reads(rsps, {})
    for name, pem in material.pems.items():
        expected = {
            "key": name,
            "value": pem,  # the PEM itself, as a file-type variable must hold it; never the base64
            "variable_type": "file",
            "protected": True,
            "masked": False,
            "raw": True,
            "environment_scope": "production",
        }
        rsps.post(
            f"{API}/projects/42/variables",
            status=201,
            json=variable(name, pem),
            match=[matchers.json_params_matcher(expected)],
        )
    code, out, err, logs = run_push(capsys, caplog)
    assert (code, err) == (0, "")
    assert [body(c)["key"] for c in writes(rsps)] == list(material.pems)
    assert out.splitlines()[0] == (
        "project group/app (id 42), environment production: CA AUTO_DOCKER_CA (base64 of PEM), certificate "
        "AUTO_DOCKER_CERT (base64 of PEM), key AUTO_DOCKER_KEY (base64 of PEM)"
    )
    assert out.splitlines()[-1] == "3 variable(s): 3 created, 0 updated, 0 unchanged"
    assert_nothing_leaked(secrets_of(material, environ), sandbox, out, err, logs)


def test_push_from_a_cert_dir_holding_base64(
    material: Material,
    sandbox: Sandbox,
    rsps: responses.RequestsMock,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    directory = sandbox.inputs / "certs"
    for part, name in tls.FILE_NAMES.items():
        _file(directory, name, base64.b64encode(material.pem(part).encode()))
    mock_reads(rsps, {})
    code, out, err, logs = run_push(capsys, caplog, "--dry-run", "--cert-dir", str(directory))
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == (
        f"project group/app (id 42), environment production: CA {directory / 'ca.pem'}, base64 of PEM, certificate "
        f"{directory / 'cert.pem'}, base64 of PEM, key {directory / 'key.pem'}, base64 of PEM"
    )
    assert_nothing_leaked(secrets_of(material, {}), sandbox, out, err, logs)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("KEY", "AUTO_DOCKER_CERT_PATH: not the path of a directory holding ca.pem, cert.pem and key.pem"),
        ("b64", "AUTO_DOCKER_CERT_PATH: not the path of a directory holding ca.pem, cert.pem and key.pem"),
        (
            "/nowhere/certs",
            "AUTO_DOCKER_CERT_PATH: /nowhere/certs is not a directory holding ca.pem, cert.pem and key.pem",
        ),
    ],
)
def test_cert_path_variable_holding_material_is_not_echoed(
    value: str,
    message: str,
    material: Material,
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    rsps: responses.RequestsMock,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    key = material.pem("key")
    actual = {"KEY": key, "b64": base64.b64encode(key.encode()).decode()}.get(value, value)
    monkeypatch.setenv("AUTO_DOCKER_CERT_PATH", actual)
    code, out, err, logs = run_push(capsys, caplog, "--dry-run")
    assert (code, out, len(rsps.calls)) == (2, "", 0)
    assert one_error_line(err) == f"Error: {message}"
    assert_nothing_leaked(secrets_of(material, {}), sandbox, out, err, logs)


def test_key_of_another_certificate_and_an_encrypted_key(
    material: Material,
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    rsps: responses.RequestsMock,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    for name, text in material.pems.items():
        monkeypatch.setenv(name, text)
    cases = [
        (material.other_key, "AUTO_DOCKER_KEY is not the key of AUTO_DOCKER_CERT"),
        (
            base64.b64encode(material.other_key.encode()).decode(),
            "AUTO_DOCKER_KEY (base64 of PEM) is not the key of AUTO_DOCKER_CERT",
        ),
        (_encrypted_key(material.pem("key")), "AUTO_DOCKER_KEY is not an unencrypted PEM private key"),
    ]
    for value, message in cases:
        monkeypatch.setenv("AUTO_DOCKER_KEY", value)
        code, out, err, logs = run_push(capsys, caplog, "--dry-run")
        assert (code, out, len(rsps.calls)) == (2, "", 0)
        assert one_error_line(err) == f"Error: {message}"
        assert_nothing_leaked(secrets_of(material, dict(material.pems) | {"AUTO_DOCKER_KEY": value}), sandbox, out, err)


# --------------------------------------------------------------------------- errors from GitLab


def _fragment(pem: str, line: int = 3) -> str:
    """20 characters from the middle of one line of ``pem``: not a whole value, not a whole line."""
    return pem.splitlines()[line][10:30]


def test_gitlab_echoing_part_of_a_key_line_is_redacted(
    material: Material,
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    rsps: responses.RequestsMock,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    for name, pem in material.pems.items():
        monkeypatch.setenv(name, base64.b64encode(pem.encode()).decode())
    mock_reads(rsps, {})
    url = f"{API}/projects/42/variables"
    rsps.post(url, status=201, json=variable("AUTO_DOCKER_CA", material.pem("ca")))
    rsps.post(url, status=201, json=variable("AUTO_DOCKER_CERT", material.pem("cert")))
    # Two lines' worth, cut at both ends, as a validation message that quotes the value in part would be.
    key_lines = material.pem("key").splitlines()
    echoed = f"{key_lines[1][20:]}\n{key_lines[2][:30]}"
    rsps.post(url, status=400, json={"message": {"value": [f"{echoed}... is invalid"]}})
    code, out, err, logs = run_push(capsys, caplog)
    assert (code, out) == (4, "")
    assert one_error_line(err) == (
        "Error: GitLab answered 400 while creating variable AUTO_DOCKER_KEY: value [redacted]... is invalid; "
        "changed before the failure: AUTO_DOCKER_CA (created), AUTO_DOCKER_CERT (created); not changed: "
        "AUTO_DOCKER_KEY"
    )
    assert_nothing_leaked(secrets_of(material, {}), sandbox, out, err, logs)


def test_gitlab_echoing_part_of_a_certificate_on_read_is_redacted(
    material: Material,
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    rsps: responses.RequestsMock,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    for name, pem in material.pems.items():
        monkeypatch.setenv(name, pem)
    rsps.get(f"{API}/projects/42", json=payload("project"))
    rsps.get(
        f"{API}/projects/42/variables/AUTO_DOCKER_CA",
        status=500,
        json={"message": f"cannot compare {_fragment(material.pem('ca'))}"},
        match=scoped(),
    )
    code, out, err, logs = run_push(capsys, caplog, "--dry-run")
    assert (code, out) == (4, "")
    assert one_error_line(err) == (
        "Error: GitLab answered 500 (after retries) while reading variable AUTO_DOCKER_CA (scope production): "
        "cannot compare [redacted]; nothing was changed"
    )
    assert_nothing_leaked(secrets_of(material, {}), sandbox, out, err, logs)


def test_redact_fragments_keeps_gitlabs_words_and_the_armour() -> None:
    secret = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ2Vy\ndGlmaWNhdGUtYm9keQ==\n-----END CERTIFICATE-----\n"
    assert redact_fragments("CERTIFICATE rejected: is invalid", [secret]) == "CERTIFICATE rejected: is invalid"
    assert redact_fragments("got AgIUQ2Vy dGlmaWNh!", [secret]) == "got [redacted]!"  # across the line break
    assert redact_fragments("seven: MIIBszC", [secret]) == "seven: MIIBszC"  # shorter than 8: not a leak
    assert redact_fragments("a MIIBszCC and VmgAwIBAgI b", [secret]) == "a [redacted] and [redacted] b"
