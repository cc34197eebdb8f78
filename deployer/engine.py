"""Connecting to a cluster's Docker Engine with the SDK, over the same mutual TLS as the CLI."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import docker
import docker.errors
import docker.tls
import requests.exceptions

from deployer.commands import docker_host
from deployer.errors import DeployerError, DockerUnavailableError, RefusedError, TLSError

Connector = Callable[[str, int, str], Any]


def _root_cause(exc: BaseException) -> BaseException:
    seen = exc
    while seen.__cause__ is not None or seen.__context__ is not None:
        seen = seen.__cause__ or seen.__context__  # type: ignore[assignment]
        if isinstance(seen, requests.exceptions.SSLError | requests.exceptions.ConnectionError):
            return seen
    return exc


def translate(exc: BaseException, address: str, port: int) -> DeployerError:
    """Turn an SDK/requests failure into one line that says what to check; never echoes key material."""
    where = docker_host(address, port)
    cause = exc if isinstance(exc, requests.exceptions.RequestException) else _root_cause(exc)
    if isinstance(cause, requests.exceptions.SSLError):
        return TLSError(
            f"TLS with the Docker Engine at {where} failed (certificate not trusted or client certificate "
            "refused): check the CA and client certificate for this cluster"
        )
    if isinstance(cause, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
        return DockerUnavailableError(f"the Docker Engine at {where} is unreachable: check the cluster is up")
    if isinstance(exc, docker.errors.APIError):
        return RefusedError(f"the Docker Engine at {where} answered {exc.status_code}: {exc.explanation}")
    return DockerUnavailableError(f"the Docker Engine at {where} could not be used: {type(exc).__name__}")


class _APIClient(docker.APIClient):
    """An APIClient that ignores REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE and proxy variables.

    requests lets those variables override the session's ``verify`` (psf/requests#3829), which
    would verify the engine against some other CA bundle than the cluster's own.
    """

    @property  # type: ignore[override]
    def trust_env(self) -> bool:
        return False

    @trust_env.setter
    def trust_env(self, value: bool) -> None:
        pass


def connect(address: str, port: int, cert_dir: str, *, timeout: int = 30, first_answer: int = 10) -> Any:
    """A ``docker.APIClient`` for a swarm manager, TLS verified against ``cert_dir/ca.pem``.

    The first answer (the API version, then ``/info``) must come within ``first_answer`` seconds, later calls
    within ``timeout``: a manager that is off the network is given up on quickly, so that the next of a
    cluster's managers is tried (deployer.managers), while a busy one still has time for its answers.
    Raises TLSError / DockerUnavailableError (exit 4) before anything is changed, and RefusedError
    when the engine is not a swarm manager.
    """
    tls = docker.tls.TLSConfig(
        client_cert=(os.path.join(cert_dir, "cert.pem"), os.path.join(cert_dir, "key.pem")),
        ca_cert=os.path.join(cert_dir, "ca.pem"),
        verify=True,
    )
    base_url = docker_host(address, port).replace("tcp://", "https://", 1)
    try:
        api = _APIClient(base_url=base_url, tls=tls, version="auto", timeout=first_answer)
        info = api.info()
        api.timeout = timeout  # read by every later request (APIClient._set_request_timeout)
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise translate(exc, address, port) from None
    swarm = info.get("Swarm") or {}
    if not swarm.get("ControlAvailable"):
        raise RefusedError(
            f"the engine at {docker_host(address, port)} is not a swarm manager "
            f"(swarm state {swarm.get('LocalNodeState', 'unknown')}): the environment-state service is out of date"
        )
    return api
