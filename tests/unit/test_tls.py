"""Docker TLS material: every source, clear errors, a private directory that always goes away."""

import os
import stat

import pytest

from deployer import tls
from deployer.errors import ConfigError
from deployer.lab import certs


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
