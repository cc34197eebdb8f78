"""Black-box checks every service has: health, the OpenAPI document, problem responses, the health check."""

from __future__ import annotations

import os
import subprocess
import sys
from urllib.parse import urlsplit

import httpx


def test_health(http: httpx.Client) -> None:
    """/health answers 200 ok."""
    response = http.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_openapi_is_served(http: httpx.Client) -> None:
    """The running service serves the same OpenAPI document the repository commits."""
    spec = http.get("/openapi.json").json()
    assert spec["info"]["title"] == {{ cookiecutter.service_name | py_str(4) }}
    assert spec["info"]["version"] == {{ cookiecutter.api_version | py_str(4) }}
    assert "/health" in spec["paths"]


def test_unknown_route_is_404(http: httpx.Client) -> None:
    """Routes the service does not have are 404."""
    assert http.get("/no-such-route").status_code == 404


def test_docker_healthcheck_command(base_url: str) -> None:
    """The Dockerfile's HEALTHCHECK command passes against the running service, and fails on a dead port."""
    port = str(urlsplit(base_url).port)
    command = [sys.executable, "-m", {{ (cookiecutter.__package_name ~ ".healthcheck") | py_str(4) }}]
    assert subprocess.run(command, env={**os.environ, "PORT": port}, check=False).returncode == 0
    assert subprocess.run(command, env={**os.environ, "PORT": "1"}, check=False).returncode == 1
