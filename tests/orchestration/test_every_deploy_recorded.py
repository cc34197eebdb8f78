"""Every deploy that reached Swarm is recorded, whatever became of it, and a switch replays what it should.

The contract says a deployment "is always recorded" (``DeploymentRequest.services``, minItems 1): a ``--no-wait``
deploy is recorded as ``submitted`` with the services Swarm took, a deploy whose services all failed as
``failed`` with them; a switch replays the succeeded and the submitted deploys, so a ``--no-wait`` deploy is not
left off the new live colour. (These were strict xfails while ``_record`` sent ``services: []``.)
"""

from __future__ import annotations

import pytest

from deployer import deploy
from deployer.commands import Command
from deployer.deploy import DeployOptions, OperationFailed
from tests.orchestration.engine_api import service, task
from tests.orchestration.harness import ENV, HOSTS, Rig, appears
from tests.orchestration.switching import IMAGE_1, release, run_switch


def test_a_no_wait_deploy_is_recorded(rig: Rig) -> None:
    rig.runner.on("stack", "deploy", then=appears(rig.blue, "auto_web", IMAGE_1, "starting", sid="s1"))
    path = rig.compose("web.yml", {"web": IMAGE_1})

    report = deploy.deploy(
        ENV, DeployOptions(stack="auto", compose_files=[path], wait=False), rig.material, rig.context()
    )

    assert report.result == "submitted"
    assert [d["result"] for d in rig.state.deployments(ENV)] == ["submitted"]
    assert report.recorded is True


def test_a_deploy_whose_only_service_failed_is_recorded(rig: Rig) -> None:
    svc = service("auto_web", IMAGE_1, sid="s1", version=1)
    failed = [task(f"s1-t{i}", svc, "failed", desired="shutdown", err="task: non-zero exit (3)") for i in (1, 2, 3)]
    rig.runner.on("stack", "deploy", then=lambda _c: rig.blue.script("auto_web", (svc, failed)))
    path = rig.compose("web.yml", {"web": IMAGE_1})

    with pytest.raises(OperationFailed) as err:
        deploy.deploy(ENV, DeployOptions(stack="auto", compose_files=[path]), rig.material, rig.context())

    assert [d["result"] for d in rig.state.deployments(ENV)] == ["failed"]
    assert err.value.report.recorded is True


def test_a_switch_keeps_a_service_deployed_with_no_wait(rig: Rig) -> None:
    release(rig)  # auto_web, recorded
    rig.runner.on(
        "stack", "deploy", host=HOSTS["blue"], then=appears(rig.blue, "auto_api", IMAGE_1, "running", sid="b2")
    )
    api = rig.compose("api.yml", {"api": IMAGE_1})
    deploy.deploy(ENV, DeployOptions(stack="auto", compose_files=[api], wait=False), rig.material, rig.context())
    web_on_green = appears(rig.green, "auto_web", IMAGE_1, "running", sid="g1")
    api_on_green = appears(rig.green, "auto_api", IMAGE_1, "running", sid="g2")

    def replayed(command: Command) -> None:  # each replayed deploy creates the service its compose file defines
        (api_on_green if any(str(arg).endswith("api.yml") for arg in command.argv) else web_on_green)(command)

    rig.runner.on("stack", "deploy", host=HOSTS["green"], then=replayed)

    run_switch(rig)

    replayed = [c.argv for c in rig.runner.calls if c.env["DOCKER_HOST"] == HOSTS["green"]]
    assert any(any(arg.endswith("api.yml") for arg in argv) for argv in replayed), replayed
