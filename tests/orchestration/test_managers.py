"""A cluster with several Swarm managers: the deployer uses the first that answers, and says so.

The rig's blue cluster gets a second manager (another scripted engine). With the first one down, the deploy
goes to the second, its ``docker`` commands too, and the progress names both; with every one down, the error
is one line naming each.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from deployer import deploy
from deployer.deploy import DeployOptions
from deployer.errors import DockerUnavailableError, RefusedError, TLSError
from tests.orchestration.engine_api import ScriptedEngine
from tests.orchestration.harness import CLUSTERS, ENV, Rig, appears

SECOND = "10.213.1.3"  # data only: the connector maps it to a scripted engine on a unix socket
SECOND_HOST = f"tcp://{SECOND}:2376"
IMAGE = "auto-lab/web:1"


@pytest.fixture
def second(rig: Rig, sockets: Path) -> Iterator[ScriptedEngine]:
    """Blue's second manager, listed in the state service after the first."""
    engine = ScriptedEngine("blue")
    engine.serve_unix(str(sockets / "blue-2.sock"))
    rig.connector.engines = {**rig.connector.engines, (SECOND, 2376): engine}  # type: ignore[misc]
    rig.state.put_environment(ENV, "blue", {"blue": (*CLUSTERS["blue"], [SECOND]), "green": CLUSTERS["green"]})
    yield engine
    engine.stop()


def test_the_first_manager_down_the_second_takes_the_deploy_and_it_is_said(rig: Rig, second: ScriptedEngine) -> None:
    rig.blue.stop()
    path = rig.compose("web.yml", {"web": IMAGE})
    rig.runner.on("stack", "deploy", host=SECOND_HOST, then=appears(second, "auto_web", IMAGE, "running", sid="s1"))

    report = deploy.deploy(
        ENV, DeployOptions(stack="auto", compose_files=[path], timeout=10), rig.material, rig.context()
    )

    assert [(c.address, c.port) for c in rig.connector.calls] == [("10.213.1.2", 2376), (SECOND, 2376)]
    (call,) = rig.runner.calls
    assert call.env["DOCKER_HOST"] == SECOND_HOST  # the CLI goes to the manager that answered
    assert (report.result, report.manager) == ("converged", SECOND_HOST)
    said = rig.said()
    assert said[:2] == [
        "environment lab: deploying to blue (live), manager tcp://10.213.1.2:2376",
        f"blue: using manager {SECOND_HOST}, passed over: the Docker Engine at tcp://10.213.1.2:2376 is "
        "unreachable: check the cluster is up",
    ]
    assert rig.state.deployments(ENV)[0]["result"] == "succeeded"


def test_the_first_manager_answering_nothing_else_is_tried(rig: Rig, second: ScriptedEngine) -> None:
    path = rig.compose("web.yml", {"web": IMAGE})
    rig.runner.on("stack", "deploy", then=appears(rig.blue, "auto_web", IMAGE, "running", sid="s1"))

    report = deploy.deploy(
        ENV, DeployOptions(stack="auto", compose_files=[path], timeout=10), rig.material, rig.context()
    )

    assert [c.address for c in rig.connector.calls] == ["10.213.1.2"]
    assert report.manager == "tcp://10.213.1.2:2376"
    assert not any("passed over" in line for line in rig.said())
    assert second.requests == []


def test_an_untrusted_manager_is_passed_over_too(rig: Rig, second: ScriptedEngine) -> None:
    real = rig.connector

    def connector(address: str, port: int, cert_dir: str) -> object:
        if address == "10.213.1.2":
            raise TLSError("TLS with the Docker Engine at tcp://10.213.1.2:2376 failed: check the CA")
        return real(address, port, cert_dir)

    ctx = rig.context()
    ctx.connect = connector
    path = rig.compose("web.yml", {"web": IMAGE})
    rig.runner.on("stack", "deploy", host=SECOND_HOST, then=appears(second, "auto_web", IMAGE, "running", sid="s1"))
    report = deploy.deploy(ENV, DeployOptions(stack="auto", compose_files=[path], timeout=10), rig.material, ctx)
    assert report.manager == SECOND_HOST


def test_every_manager_down_is_one_line_naming_each_and_nothing_runs(rig: Rig, second: ScriptedEngine) -> None:
    rig.blue.stop()
    second.stop()
    path = rig.compose("web.yml", {"web": IMAGE})
    with pytest.raises(DockerUnavailableError) as caught:
        deploy.deploy(ENV, DeployOptions(stack="auto", compose_files=[path], timeout=10), rig.material, rig.context())
    assert str(caught.value) == (
        "none of the 2 managers of blue answered: "
        "the Docker Engine at tcp://10.213.1.2:2376 is unreachable: check the cluster is up; "
        f"the Docker Engine at {SECOND_HOST} is unreachable: check the cluster is up"
    )
    assert caught.value.exit_code == 4
    assert rig.runner.calls == []
    assert rig.state.deployments(ENV) == []
    assert rig.state.lock_status(ENV) is None  # released


def test_mixed_reasons_are_one_refusal(rig: Rig, second: ScriptedEngine) -> None:
    second.stop()

    def connector(address: str, port: int, cert_dir: str) -> object:
        if address == "10.213.1.2":
            raise TLSError("TLS with the Docker Engine at tcp://10.213.1.2:2376 failed: check the CA")
        return rig.connector(address, port, cert_dir)

    ctx = rig.context()
    ctx.connect = connector
    path = rig.compose("web.yml", {"web": IMAGE})
    with pytest.raises(RefusedError) as caught:
        deploy.deploy(ENV, DeployOptions(stack="auto", compose_files=[path], timeout=10), rig.material, ctx)
    assert type(caught.value) is RefusedError
    assert str(caught.value).startswith("none of the 2 managers of blue answered: TLS with")
