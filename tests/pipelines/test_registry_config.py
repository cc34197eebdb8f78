"""The pipeline tests' private registry as data: its command line, configuration and htpasswd entry."""

from __future__ import annotations

from pathlib import Path

import bcrypt
import yaml

from tests.pipelines import registry


def test_serve_argv_and_address() -> None:
    assert registry.serve_argv("/usr/bin/docker-registry", Path("/r/config.yml")) == [
        "/usr/bin/docker-registry", "serve", "/r/config.yml",
    ]  # fmt: skip
    assert registry.address() == "10.213.1.1:5443"  # the host end of the blue colour's veth pair
    assert registry.address("green", 6000) == "10.213.2.1:6000"


def test_config_is_tls_with_basic_auth_and_local_storage() -> None:
    config = yaml.safe_load(registry.config_text(Path("/r"), "10.213.1.1:5443", "s3"))
    assert config["http"] == {
        "addr": "10.213.1.1:5443",
        "secret": "s3",
        "tls": {"certificate": "/r/tls/cert.pem", "key": "/r/tls/key.pem"},
    }
    assert config["auth"] == {"htpasswd": {"realm": "auto-lab-registry", "path": "/r/htpasswd"}}
    assert config["storage"] == {"filesystem": {"rootdirectory": "/r/data"}}


def test_htpasswd_line_is_a_bcrypt_entry_for_that_password() -> None:
    user, _, digest = registry.htpasswd_line("gitlab-ci-token", "pa55").rstrip("\n").partition(":")
    assert user == "gitlab-ci-token" and digest.startswith("$2b$")
    assert bcrypt.checkpw(b"pa55", digest.encode()) and not bcrypt.checkpw(b"other", digest.encode())
