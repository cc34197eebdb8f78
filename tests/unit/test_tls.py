"""Docker TLS material: every source, clear errors, a private directory that always goes away."""

import base64
import datetime as dt
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from deployer import tls
from deployer.errors import ConfigError, TLSError
from deployer.lab import certs
from tests.pipelines.test_secrets_hostile import assert_no_secret


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    ca = certs.make_ca("test CA")
    directory = tmp_path_factory.mktemp("bundle")
    certs.write_bundle(directory, ca, certs.issue(ca, "client", client=True))
    return directory


def test_from_cert_dir_flag(bundle) -> None:
    material = tls.load_material(str(bundle), {})
    assert material.ca.origin == str(bundle / "ca.pem")
    assert material.key.pem == (bundle / "key.pem").read_bytes()


def test_from_file_variables(bundle) -> None:
    env = {name: str(bundle / tls.FILE_NAMES[part]) for part, name in tls.ENV_NAMES.items()}
    material = tls.load_material(None, env)
    assert material.cert.origin == f"AUTO_DOCKER_CERT ({bundle / 'cert.pem'})"


def test_from_pem_text_variables(bundle) -> None:
    env = {name: (bundle / tls.FILE_NAMES[part]).read_text() for part, name in tls.ENV_NAMES.items()}
    material = tls.load_material(None, env)
    assert material.key.origin == "AUTO_DOCKER_KEY"
    assert "BEGIN" not in material.describe()


def test_from_cert_path_variable(bundle) -> None:
    assert tls.load_material(None, {"AUTO_DOCKER_CERT_PATH": str(bundle)}).ca.pem.startswith(b"-----BEGIN")


def test_nothing_configured() -> None:
    with pytest.raises(ConfigError, match="no Docker TLS material: pass --cert-dir DIR"):
        tls.load_material(None, {})


def test_partial_variables(bundle) -> None:
    with pytest.raises(
        ConfigError, match="AUTO_DOCKER_CA set but AUTO_DOCKER_CERT, AUTO_DOCKER_KEY not: set all three"
    ):
        tls.load_material(None, {"AUTO_DOCKER_CA": str(bundle / "ca.pem")})


def test_missing_file_names_the_variable(tmp_path, bundle) -> None:
    env = {name: str(bundle / tls.FILE_NAMES[part]) for part, name in tls.ENV_NAMES.items()}
    env["AUTO_DOCKER_KEY"] = str(tmp_path / "gone.pem")
    with pytest.raises(ConfigError, match=r"^AUTO_DOCKER_KEY: .*gone.pem does not exist$"):
        tls.load_material(None, env)


def test_garbage_key_is_named_but_not_echoed(bundle) -> None:
    env = {name: (bundle / tls.FILE_NAMES[part]).read_text() for part, name in tls.ENV_NAMES.items()}
    env["AUTO_DOCKER_KEY"] = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LXNlY3JldA==\n-----END PRIVATE KEY-----\n"
    with pytest.raises(ConfigError) as err:
        tls.load_material(None, env)
    assert str(err.value) == "AUTO_DOCKER_KEY is not an unencrypted PEM private key"


def test_key_of_another_certificate(bundle, tmp_path) -> None:
    ca = certs.make_ca("other")
    other = certs.issue(ca, "other", client=True)
    (tmp_path / "key.pem").write_bytes(other.key_pem())
    env = {name: str(bundle / tls.FILE_NAMES[part]) for part, name in tls.ENV_NAMES.items()}
    env["AUTO_DOCKER_KEY"] = str(tmp_path / "key.pem")
    with pytest.raises(ConfigError, match="is not the key of AUTO_DOCKER_CERT"):
        tls.load_material(None, env)


@pytest.mark.parametrize(
    ("days_from_now", "says"),
    [
        (-31, "expired on {end} UTC: renew it, then deploy again"),
        (2, "is not valid before {start} UTC: check this machine's clock"),
    ],
)
def test_a_client_certificate_outside_its_validity_is_named_before_any_connection(
    tmp_path, days_from_now: int, says: str
) -> None:
    """The Engine would refuse it with the very alert a wrong CA gets; said here, the message can say which."""
    ca = certs.make_ca("test CA")
    starts = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=days_from_now)
    issued = certs.issue(ca, "client", client=True, starts=starts, days=30)
    certs.write_bundle(tmp_path, ca, issued)
    env = {"AUTO_DOCKER_CERT": base64.b64encode((tmp_path / "cert.pem").read_bytes()).decode()}
    env |= {"AUTO_DOCKER_CA": str(tmp_path / "ca.pem"), "AUTO_DOCKER_KEY": str(tmp_path / "key.pem")}
    with pytest.raises(TLSError) as err:
        tls.load_material(None, env)
    end = starts + dt.timedelta(days=30)
    assert str(err.value) == "the client certificate from AUTO_DOCKER_CERT (base64 of PEM) " + says.format(
        start=f"{starts:%Y-%m-%d %H:%M}", end=f"{end:%Y-%m-%d %H:%M}"
    )
    assert err.value.exit_code == 4
    assert_no_secret(env["AUTO_DOCKER_CERT"], str(err.value))


def test_a_ca_bundle_whose_certificates_have_all_expired_is_named(tmp_path) -> None:
    """An expired trust anchor fails the chain: the Engine would look "not trusted"; said here, it is named."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    old = [certs.make_ca(f"old CA {i}", starts=now - dt.timedelta(days=400 + i), days=365) for i in range(2)]
    current = certs.make_ca("current CA")
    certs.write_bundle(tmp_path, current, certs.issue(current, "client", client=True))
    env = {"AUTO_DOCKER_CERT": str(tmp_path / "cert.pem"), "AUTO_DOCKER_KEY": str(tmp_path / "key.pem")}
    pem = [ca.cert.public_bytes(serialization.Encoding.PEM) for ca in old]
    expired = [now - dt.timedelta(days=35), now - dt.timedelta(days=36)]  # 400 + i days ago, plus 365
    (tmp_path / "one.pem").write_bytes(pem[0])
    with pytest.raises(TLSError) as err:
        tls.load_material(None, {**env, "AUTO_DOCKER_CA": str(tmp_path / "one.pem")})
    assert str(err.value) == (
        f"the CA certificate from AUTO_DOCKER_CA ({tmp_path / 'one.pem'}) expired on {expired[0]:%Y-%m-%d %H:%M} "
        "UTC: renew it, then deploy again"
    )
    (tmp_path / "two.pem").write_bytes(pem[0] + pem[1])
    with pytest.raises(TLSError) as err:
        tls.load_material(None, {**env, "AUTO_DOCKER_CA": str(tmp_path / "two.pem")})
    assert str(err.value) == (
        f"all 2 CA certificates from AUTO_DOCKER_CA ({tmp_path / 'two.pem'}) have expired (the last on "
        f"{expired[0]:%Y-%m-%d %H:%M} UTC): renew the bundle, then deploy again"
    )
    # One current certificate in the bundle is enough: a rotation keeps the old CA beside the new one.
    (tmp_path / "mixed.pem").write_bytes(pem[1] + (tmp_path / "ca.pem").read_bytes())
    assert tls.load_material(None, {**env, "AUTO_DOCKER_CA": str(tmp_path / "mixed.pem")}).ca.pem


def test_private_dir_permissions_and_cleanup(bundle) -> None:
    material = tls.load_material(str(bundle), {})
    with tls.private_cert_dir(material) as directory:
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
        for name in tls.FILE_NAMES.values():
            assert stat.S_IMODE(os.stat(os.path.join(directory, name)).st_mode) == 0o600
    assert not os.path.exists(directory)


def test_private_dir_removed_on_failure_and_interrupt(bundle) -> None:
    material = tls.load_material(str(bundle), {})
    for exc in (RuntimeError("boom"), KeyboardInterrupt()):
        with pytest.raises(type(exc)), tls.private_cert_dir(material) as directory:
            raise exc
        assert not os.path.exists(directory)


# --------------------------------------------------------------------------- shapes of a value, and what is said


def pem_env(bundle) -> dict[str, str]:
    return {name: (bundle / tls.FILE_NAMES[part]).read_text() for part, name in tls.ENV_NAMES.items()}


def test_base64_of_pem_is_accepted_and_written_out_as_pem(bundle) -> None:
    env = pem_env(bundle)
    key = env["AUTO_DOCKER_KEY"]
    env["AUTO_DOCKER_KEY"] = base64.b64encode(key.encode()).decode()
    material = tls.load_material(None, env)
    assert material.key.origin == "AUTO_DOCKER_KEY (base64 of PEM)"
    with tls.private_cert_dir(material) as directory:
        assert Path(directory, "key.pem").read_text() == key  # the docker CLI reads PEM only


def test_a_file_holding_base64_of_pem(bundle, tmp_path) -> None:
    env = pem_env(bundle)
    (tmp_path / "cert").write_bytes(base64.encodebytes((bundle / "cert.pem").read_bytes()))
    env["AUTO_DOCKER_CERT"] = str(tmp_path / "cert")
    assert tls.load_material(None, env).cert.origin == f"AUTO_DOCKER_CERT ({tmp_path / 'cert'}, base64 of PEM)"


def test_the_key_is_in_no_repr(bundle) -> None:
    material = tls.load_material(str(bundle), {})
    body = (bundle / "key.pem").read_text().splitlines()[1]
    assert body not in repr(material) and body not in repr(material.key)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("/builds/group/app.tmp/AUTO_DOCKER_KEY", True),  # where GitLab puts a file-type variable
        ("./certs/key.pem", True),
        ("../key.pem", True),
        ("key.pem", False),  # not plainly a path: it could be anything
        ("/tmp/key.pem\nMIIEvQIBADANBg", False),
        ("/" + "a" * 300, False),
        ("/Zm9vYmFyYmF6cXV4cXV1eA3x/k", False),  # a run of base64
        ("/a/b/c/d/e/f/g/h", False),  # decodes as base64
        ("/-----BEGIN PRIVATE KEY-----", False),
        ("/tmp/\x1b[2Jkey", False),
        ("/tmp/k\udcffey", False),  # an undecodable byte
    ],
)
def test_shown_path(value: str, shown: bool) -> None:
    assert (tls.shown_path(value) == value) is shown


def test_errors_about_a_value_chain_nothing(tmp_path, bundle) -> None:
    for value in (str(tmp_path / "gone"), str(tmp_path), "LS0tLS1CRUdJTiBnYXJiYWdl", "/dev/zero"):
        env = pem_env(bundle) | {"AUTO_DOCKER_KEY": value}
        with pytest.raises(ConfigError) as err:
            tls.load_material(None, env)
        assert err.value.__cause__ is None and err.value.__suppress_context__, value


def test_devices_and_big_files_are_not_read(bundle, tmp_path) -> None:
    env = pem_env(bundle) | {"AUTO_DOCKER_CA": "/dev/zero"}
    with pytest.raises(ConfigError, match=r"^AUTO_DOCKER_CA: /dev/zero is not a regular file: point it at the CA"):
        tls.load_material(None, env)
    big = tmp_path / "big.pem"
    big.write_bytes(b"-----BEGIN CERTIFICATE-----\n" + b"A" * tls.MAX_BYTES)
    env["AUTO_DOCKER_CA"] = str(big)
    with pytest.raises(ConfigError, match=r"^AUTO_DOCKER_CA: .*big.pem is larger than 1 MiB: not TLS material"):
        tls.load_material(None, env)


def test_empty_variables(bundle) -> None:
    with pytest.raises(ConfigError) as err:
        tls.load_material(None, {"AUTO_DOCKER_CA": "x", "AUTO_DOCKER_CERT": " ", "AUTO_DOCKER_KEY": ""})
    assert str(err.value) == "AUTO_DOCKER_CA set but AUTO_DOCKER_CERT, AUTO_DOCKER_KEY empty: set all three"
    with pytest.raises(ConfigError) as err:
        tls.load_material(None, {"AUTO_DOCKER_CA": "x", "AUTO_DOCKER_KEY": ""})
    assert str(err.value) == "AUTO_DOCKER_CA set but AUTO_DOCKER_CERT not and AUTO_DOCKER_KEY empty: set all three"
    with pytest.raises(ConfigError) as err:
        tls.load_material(None, {"AUTO_DOCKER_KEY": "", "AUTO_DOCKER_CERT_PATH": " "})
    assert str(err.value).endswith("or AUTO_DOCKER_CERT_PATH (AUTO_DOCKER_KEY set but empty)")
    # Empty ones are as good as unset: AUTO_DOCKER_CERT_PATH is used.
    material = tls.load_material(None, {"AUTO_DOCKER_KEY": "", "AUTO_DOCKER_CERT_PATH": str(bundle)})
    assert material.key.origin == str(bundle / "key.pem")


def test_cert_dir_names_a_relative_directory_that_exists(bundle, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(bundle.parent)
    material = tls.load_material(bundle.name, {})
    assert material.key.origin == os.path.join(bundle.name, "key.pem")
    with pytest.raises(ConfigError) as err:
        tls.load_material("no-such-certs", {})
    assert str(err.value) == "--cert-dir: not the path of a directory holding ca.pem, cert.pem and key.pem"
    with pytest.raises(ConfigError) as err:
        tls.load_material(str(tmp_path / "nope"), {})
    assert str(err.value) == f"--cert-dir: {tmp_path / 'nope'} is not a directory holding ca.pem, cert.pem and key.pem"


def test_any_string_gives_a_config_error_that_quotes_none_of_it(bundle) -> None:
    for value in ("\ud800lone surrogate", "nul\x00inside", "/tmp/nul\x00inside", "\udcff" * 5000, "=" * 64):
        env = pem_env(bundle) | {"AUTO_DOCKER_CERT": value}
        with pytest.raises(ConfigError) as err:
            tls.load_material(None, env)
        assert str(err.value).startswith("AUTO_DOCKER_CERT: neither PEM text, base64 of PEM, nor a readable file")
