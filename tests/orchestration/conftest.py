"""Fixtures of the orchestration tests: the rig (see harness.py) and throwaway TLS material."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from deployer.lab import certs
from deployer.tls import TLSMaterial, load_material
from tests.orchestration.engine_api import ScriptedEngine
from tests.orchestration.haproxy_socket import HAProxySocket, Server
from tests.orchestration.harness import CLUSTERS, ENV, Rig, StateServer, UnixConnector
from tests.orchestration.recording import RecordingRunner


@pytest.fixture(scope="session")
def ca() -> certs.CertAuthority:
    """A throwaway CA for the session."""
    return certs.make_ca("orchestration test CA")


@pytest.fixture(scope="session")
def client_bundle(tmp_path_factory: pytest.TempPathFactory, ca: certs.CertAuthority) -> Path:
    """ca.pem, cert.pem and key.pem of a client certificate signed by ``ca``."""
    return certs.write_bundle(tmp_path_factory.mktemp("client"), ca, certs.issue(ca, "deployer", client=True, days=1))


@pytest.fixture(scope="session")
def material(client_bundle: Path) -> TLSMaterial:
    """The deployer's Docker TLS material, loaded by the production loader."""
    return load_material(str(client_bundle), {})


@pytest.fixture
def sockets() -> Iterator[Path]:
    """A short directory for unix sockets (their paths are limited to 107 bytes)."""
    directory = Path(tempfile.mkdtemp(prefix="orch-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def rig(tmp_path: Path, sockets: Path, material: TLSMaterial) -> Iterator[Rig]:
    """The state service with environment ``lab`` (blue live), both engines, HAProxy (blue ready,
    green in maint), a recording runner with no rules yet, and the connector."""
    state_server = StateServer.start(str(tmp_path / "state.db"))
    engines = {colour: ScriptedEngine(colour) for colour in CLUSTERS}
    for colour, scripted in engines.items():
        scripted.serve_unix(str(sockets / f"{colour}.sock"))
    haproxy = HAProxySocket(
        str(sockets / "admin.sock"),
        {
            "blue": Server("blue", CLUSTERS["blue"][0], admin="ready"),
            "green": Server("green", CLUSTERS["green"][0], admin="maint"),
        },
    ).start()
    connector = UnixConnector({CLUSTERS[colour]: scripted for colour, scripted in engines.items()})
    state = state_server.client()
    state.put_environment(ENV, "blue", CLUSTERS, actor="setup")
    compose_dir = tmp_path / "compose"
    compose_dir.mkdir()
    rig = Rig(
        directory=compose_dir,
        state_server=state_server,
        state=state,
        rival=state_server.client(),
        engines=engines,
        haproxy=haproxy,
        runner=RecordingRunner(),
        connector=connector,
        material=material,
    )
    try:
        yield rig
    finally:
        connector.close()
        for scripted in engines.values():
            scripted.stop()
        haproxy.stop()
        state_server.stop()
