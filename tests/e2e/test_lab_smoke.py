"""Smoke test of the lab itself: two TLS swarm managers, the image, the seeded state service.

Uses the session ``lab`` fixture (``tests/conftest.py``), which brings the lab up idempotently
and leaves it up for the other tests.
"""

from __future__ import annotations

import time
from pathlib import Path

import docker
import docker.tls
import pytest
import requests

from deployer.lab import certs
from deployer.lab import lab as lab_module
from deployer.lab.layout import BLUE_ADDRESS, DOCKER_PORT, GREEN_ADDRESS

pytestmark = pytest.mark.lab

ADDRESSES = {"blue": BLUE_ADDRESS, "green": GREEN_ADDRESS}


@pytest.fixture(autouse=True)
def _no_ca_bundle_override(monkeypatch: pytest.MonkeyPatch) -> None:
    """requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE replace the docker SDK's session ``verify``
    (psf/requests#3829): with them set, the lab CA would be ignored and every TLS check would fail
    for the wrong reason."""
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


def _client(address: str, cert_dir: Path) -> docker.DockerClient:
    tls = docker.tls.TLSConfig(
        client_cert=(str(cert_dir / "cert.pem"), str(cert_dir / "key.pem")),
        ca_cert=str(cert_dir / "ca.pem"),
        verify=True,
    )
    return docker.DockerClient(base_url=f"tcp://{address}:{DOCKER_PORT}", tls=tls, timeout=15)


@pytest.mark.parametrize("colour", ["blue", "green"])
def test_daemon_answers_over_tls_as_swarm_manager_with_images(lab, colour: str) -> None:
    client = _client(ADDRESSES[colour], Path(lab.env["AUTO_DOCKER_CERT_PATH"]))
    try:
        assert client.ping()
        swarm = client.info()["Swarm"]
        assert swarm["LocalNodeState"] == "active"
        assert swarm["ControlAvailable"] is True
        assert swarm["NodeAddr"] == ADDRESSES[colour]
        one = client.images.get("auto-lab/web:1")
        two = client.images.get("auto-lab/web:2")
        assert one.id != two.id  # two different images, not two tags of one
        assert "APP_VERSION=2" in two.attrs["Config"]["Env"]
    finally:
        client.close()


def test_state_service_answers_and_resolves_lab(lab) -> None:
    url, ca = lab.env["AUTO_STATE_URL"], lab.env["AUTO_STATE_CA"]
    token = Path(lab.env["AUTO_STATE_TOKEN_FILE"]).read_text().strip()
    assert requests.get(f"{url}/v1/health", verify=ca, timeout=5).json() == {"status": "ok"}
    resp = requests.get(
        f"{url}/v1/environments/lab", headers={"Authorization": f"Bearer {token}"}, verify=ca, timeout=5
    )
    assert resp.status_code == 200
    record = resp.json()
    for colour, address in ADDRESSES.items():
        assert record["clusters"][colour]["manager_address"] == address
        assert record["clusters"][colour]["docker_port"] == DOCKER_PORT
    # Seeded blue-live; other lab tests may since have switched it, never this one.
    expected = {"blue"} if lab.info.get("seeded") == "created" else {"blue", "green"}
    assert record["live_colour"] in expected
    assert record["clusters"][record["live_colour"]]["live"] is True


def test_client_bundle_from_another_ca_is_rejected(lab, tmp_path: Path) -> None:
    wrong_ca = certs.make_ca("not the lab CA")
    wrong_dir = certs.write_bundle(tmp_path / "wrong", wrong_ca, certs.issue(wrong_ca, "intruder", client=True))
    # Trust the lab's CA for the server, but present a client certificate the daemon cannot verify.
    (wrong_dir / "ca.pem").write_bytes(Path(lab.env["AUTO_STATE_CA"]).read_bytes())
    with pytest.raises((docker.errors.DockerException, requests.exceptions.RequestException)):
        client = _client(BLUE_ADDRESS, wrong_dir)
        try:
            client.ping()
        finally:
            client.close()


def test_up_again_is_fast_and_changes_nothing(lab) -> None:
    started = time.monotonic()
    info = lab_module.up()
    assert time.monotonic() - started < 3
    assert info["actions"] == []
    status = lab_module.status()
    assert status["up"] is True
    assert {status[c]["manager_address"] for c in ("blue", "green")} == set(ADDRESSES.values())
