"""The production connector, ``deployer.engine.connect``: mutual TLS to a scripted engine on 127.0.0.1.

Here the Context keeps its default ``connect``; the scripted engine speaks HTTPS with a server certificate
for 127.0.0.1 and requires a client certificate signed by the same throwaway CA. The green cluster's port is
bound but not listening, so connecting to it is refused at once.
"""

from __future__ import annotations

import io
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from deployer import deploy, engine, switch
from deployer.deploy import DeployOptions
from deployer.errors import EXIT_REFUSED, DockerUnavailableError, RefusedError, TLSError
from deployer.haproxy import Runtime
from deployer.lab import certs
from deployer.state.client import StateClient
from deployer.tls import TLSMaterial, load_material, private_cert_dir
from tests.orchestration.engine_api import ScriptedEngine, service, task
from tests.orchestration.haproxy_socket import HAProxySocket, Server
from tests.orchestration.harness import ENVIRON, StateServer
from tests.orchestration.recording import RecordingRunner

ENV = "tls"
IMAGE = "auto-lab/web:1"


@dataclass
class TLSRig:
    state: StateClient
    engine: ScriptedEngine
    port: int
    refused_port: int
    runner: RecordingRunner
    out: io.StringIO
    directory: Path

    def context(self) -> deploy.Context:
        """A Context with the production connector (engine.connect)."""
        return deploy.Context(state=self.state, runner=self.runner, out=self.out, environ=dict(ENVIRON), lock_wait=0)


@pytest.fixture
def tls_rig(tmp_path: Path, ca: certs.CertAuthority) -> Iterator[TLSRig]:
    manager = certs.issue(ca, "blue-manager", ips=["127.0.0.1"], server=True, days=1)
    (tmp_path / "server.pem").write_bytes(manager.cert_pem())
    (tmp_path / "server-key.pem").write_bytes(manager.key_pem())
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem())
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "server.pem", tmp_path / "server-key.pem")
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(tmp_path / "ca.pem")
    scripted = ScriptedEngine("blue")
    port = scripted.serve_tls(context)
    refused = socket.socket()
    refused.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    state_server = StateServer.start(str(tmp_path / "state.db"))
    state = state_server.client()
    state.put_environment(ENV, "blue", {"blue": ("127.0.0.1", port), "green": ("127.0.0.1", refused.getsockname()[1])})
    try:
        yield TLSRig(state, scripted, port, refused.getsockname()[1], RecordingRunner(), io.StringIO(), tmp_path)
    finally:
        scripted.stop()
        refused.close()
        state_server.stop()


def web_running(rig: TLSRig) -> None:
    svc = service("auto_web", IMAGE, sid="s1", version=3)
    rig.engine.script("auto_web", (svc, [task("s1-t1", svc)]))


def test_status_over_mutual_tls_with_the_production_connector(tls_rig: TLSRig, material: TLSMaterial) -> None:
    web_running(tls_rig)

    report = deploy.status(ENV, "auto", material, tls_rig.context())

    assert (report.result, report.manager) == ("healthy", f"tcp://127.0.0.1:{tls_rig.port}")
    assert {r.peer_cn for r in tls_rig.engine.requests} == {"deployer"}  # every request carried our certificate
    assert [r.path for r in tls_rig.engine.requests][:2] == ["/version", "/info"]


def test_deploy_over_mutual_tls_points_the_cli_at_the_same_engine(tls_rig: TLSRig, material: TLSMaterial) -> None:
    path = tls_rig.directory / "web.yml"
    path.write_text(f"services:\n  web:\n    image: {IMAGE}\n")
    tls_rig.runner.on("stack", "deploy", then=lambda _c: web_running(tls_rig))

    report = deploy.deploy(ENV, DeployOptions(stack="auto", compose_files=[str(path)]), material, tls_rig.context())

    assert report.result == "converged"
    (call,) = tls_rig.runner.calls
    assert (call.env["DOCKER_HOST"], call.env["DOCKER_TLS_VERIFY"]) == (f"tcp://127.0.0.1:{tls_rig.port}", "1")
    assert call.cert_files == {"ca.pem": 0o600, "cert.pem": 0o600, "key.pem": 0o600}


@pytest.mark.parametrize("which", ["untrusted server", "refused client"])
def test_tls_failures_are_refused_before_anything_runs(
    tls_rig: TLSRig, ca: certs.CertAuthority, tmp_path: Path, which: str
) -> None:
    other = certs.make_ca("not the cluster's CA")
    bundle = certs.write_bundle(tmp_path / "intruder", other, certs.issue(other, "intruder", client=True, days=1))
    if which == "refused client":  # trusts the engine, but the engine does not trust our certificate
        (bundle / "ca.pem").write_bytes(ca.cert_pem())
    path = tls_rig.directory / "web.yml"
    path.write_text(f"services:\n  web:\n    image: {IMAGE}\n")

    with pytest.raises(TLSError) as err:
        deploy.deploy(
            ENV,
            DeployOptions(stack="auto", compose_files=[str(path)]),
            load_material(str(bundle), {}),
            tls_rig.context(),
        )

    assert str(err.value) == (
        f"TLS with the Docker Engine at tcp://127.0.0.1:{tls_rig.port} failed (certificate not trusted or client "
        "certificate refused): check the CA and client certificate for this cluster"
    )
    assert err.value.exit_code == EXIT_REFUSED
    assert tls_rig.runner.calls == [] and tls_rig.engine.requests == []
    assert tls_rig.state.lock_status(ENV) is None
    assert tls_rig.state.deployments(ENV) == []


def test_an_engine_that_is_not_a_swarm_manager_is_refused(tls_rig: TLSRig, material: TLSMaterial) -> None:
    tls_rig.engine.swarm_manager = False

    with pytest.raises(RefusedError) as err:
        deploy.status(ENV, "auto", material, tls_rig.context())

    assert str(err.value) == (
        f"the engine at tcp://127.0.0.1:{tls_rig.port} is not a swarm manager (swarm state inactive): "
        "the environment-state service is out of date"
    )
    assert err.value.exit_code == EXIT_REFUSED


def test_a_switch_to_an_idle_cluster_that_refuses_connections(
    tls_rig: TLSRig, material: TLSMaterial, tmp_path: Path
) -> None:
    web_running(tls_rig)
    # HAProxy answers (the switch reads its servers first) and is never told to move traffic.
    haproxy = HAProxySocket(
        str(tmp_path / "admin.sock"),
        {"blue": Server("blue", "127.0.0.1", admin="ready"), "green": Server("green", "127.0.0.1", admin="maint")},
    ).start()

    with pytest.raises(DockerUnavailableError) as err:
        switch.switch(ENV, switch.SwitchOptions(timeout=2), material, tls_rig.context(), Runtime(haproxy.path))

    assert str(err.value) == (
        f"the Docker Engine at tcp://127.0.0.1:{tls_rig.refused_port} is unreachable: check the cluster is up"
    )
    assert tls_rig.state.get_environment(ENV).live_colour == "blue"
    assert tls_rig.state.lock_status(ENV) is None
    (audit,) = [e for e in tls_rig.state.history(ENV) if e["kind"] == "switch"]
    assert audit["detail"]["result"] == "failed"
    assert haproxy.set_commands == []
    haproxy.stop()


def test_a_server_certificate_for_another_address_is_refused(
    ca: certs.CertAuthority, material: TLSMaterial, tmp_path: Path
) -> None:
    """Verification includes the address: the CA's certificate for 10.213.1.2, served on 127.0.0.1, is refused."""
    elsewhere = certs.issue(ca, "green-manager", ips=["10.213.1.2"], server=True, days=1)
    (tmp_path / "other.pem").write_bytes(elsewhere.cert_pem())
    (tmp_path / "other-key.pem").write_bytes(elsewhere.key_pem())
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "other.pem", tmp_path / "other-key.pem")
    scripted = ScriptedEngine("green")
    port = scripted.serve_tls(context)
    try:
        with pytest.raises(TLSError) as err, private_cert_dir(material) as cert_dir:
            engine.connect("127.0.0.1", port, cert_dir)
    finally:
        scripted.stop()
    assert str(err.value).startswith(f"TLS with the Docker Engine at tcp://127.0.0.1:{port} failed ")
    assert scripted.requests == []
