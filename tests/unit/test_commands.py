"""The docker argv and environment, asserted as exact strings."""

import pytest

from deployer import commands


def test_stack_deploy_minimal_argv_and_env() -> None:
    env = commands.docker_tls_env("10.213.1.2", 2376, "/tmp/certs")
    cmd = commands.stack_deploy("auto", ["svc.yml"], env=env)
    assert cmd.argv == (
        "docker", "stack", "deploy", "--compose-file", "svc.yml", "--resolve-image", "always", "--detach=true", "auto",
    )  # fmt: skip
    assert dict(cmd.env) == {
        "DOCKER_HOST": "tcp://10.213.1.2:2376",
        "DOCKER_TLS_VERIFY": "1",
        "DOCKER_CERT_PATH": "/tmp/certs",
    }


def test_stack_deploy_every_flag_in_order() -> None:
    env = commands.docker_tls_env("10.0.0.5", 2376, "/c")
    cmd = commands.stack_deploy(
        "auto",
        ["base.yml", "over ride.yml"],
        env=env,
        prune=True,
        with_registry_auth=True,
        resolve_image="never",
        docker="/usr/local/bin/docker",
    )
    assert cmd.display() == (
        "DOCKER_HOST=tcp://10.0.0.5:2376 DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=/c "
        "/usr/local/bin/docker stack deploy --compose-file base.yml --compose-file 'over ride.yml' "
        "--resolve-image never --prune --with-registry-auth --detach=true auto"
    )


def test_prune_is_never_implied() -> None:
    cmd = commands.stack_deploy("s", ["a.yml"], env={})
    assert "--prune" not in cmd.argv


def test_bad_resolve_image_is_rejected() -> None:
    with pytest.raises(ValueError):
        commands.stack_deploy("s", ["a.yml"], env={}, resolve_image="sometimes")


def test_ipv6_manager_is_bracketed() -> None:
    assert commands.docker_host("fd00::2", 2376) == "tcp://[fd00::2]:2376"


def test_full_env_drops_inherited_docker_connection_vars() -> None:
    cmd = commands.Command(("docker", "info"), commands.docker_tls_env("10.0.0.5", 2376, "/c"))
    base = {"PATH": "/bin", "DOCKER_CONTEXT": "prod", "DOCKER_TLS": "0", "DOCKER_HOST": "unix:///x"}
    assert cmd.full_env(base) == {
        "PATH": "/bin",
        "DOCKER_HOST": "tcp://10.0.0.5:2376",
        "DOCKER_TLS_VERIFY": "1",
        "DOCKER_CERT_PATH": "/c",
    }


def test_display_redacts_secrets() -> None:
    cmd = commands.Command(("docker", "login"), {"REGISTRY_PASSWORD": "hunter2", "X": "-----BEGIN KEY-----"})
    assert cmd.display() == "REGISTRY_PASSWORD='[redacted]' X='[redacted]' docker login"


def test_service_rollback_and_remove() -> None:
    env = {"DOCKER_HOST": "tcp://10.0.0.5:2376"}
    assert commands.service_rollback("auto_web", env=env).display() == (
        "DOCKER_HOST=tcp://10.0.0.5:2376 docker service rollback --detach auto_web"
    )
    assert commands.service_remove(["auto_a", "auto_b"], env=env).argv == (
        "docker",
        "service",
        "rm",
        "auto_a",
        "auto_b",
    )


def test_old_clients_get_no_detach_flag() -> None:
    cmd = commands.stack_deploy("s", ["a.yml"], env={}, detach_flag=False)
    assert cmd.argv == ("docker", "stack", "deploy", "--compose-file", "a.yml", "--resolve-image", "always", "s")


def test_docker_cli_is_read_in_one_place_and_empty_means_the_default() -> None:
    assert commands.docker_cli({}) == "docker"
    assert commands.docker_cli({"AUTO_DOCKER_CLI": ""}) == "docker"  # an empty CI variable is no client at all
    assert commands.docker_cli({"AUTO_DOCKER_CLI": "/usr/local/bin/docker"}) == "/usr/local/bin/docker"
