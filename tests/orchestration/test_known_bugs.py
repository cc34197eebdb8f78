"""Production bugs these tests found, each reproduced with the contract's behaviour as the expectation.

They are strict xfails: they fail today, and the day the bug is fixed they pass, which fails the run until
the marker is removed.

deploy._record() sends ``services: [...]`` listing only the services that converged. When none did (a
``--no-wait`` deploy, or a deploy whose every service failed) that list is empty, and the contract
(``DeploymentRequest.services``, minItems 1) makes the state service answer 400; _record() only warns.
So those deploys are never recorded, although the contract says a deployment "is always recorded", and
a later switch, which replays recorded deploys only, leaves a ``--no-wait`` deploy off the new live colour.
"""

from __future__ import annotations

import pytest

from deployer import deploy
from deployer.deploy import DeployOptions, OperationFailed
from tests.orchestration.engine_api import service, task
from tests.orchestration.harness import ENV, HOSTS, Rig, appears
from tests.orchestration.switching import IMAGE_1, release, replays_on_green, run_switch

BUG = "deploy._record sends services: [] when no service converged; the state service refuses it (400)"


@pytest.mark.xfail(strict=True, reason=BUG)
def test_a_no_wait_deploy_is_recorded(rig: Rig) -> None:
    rig.runner.on("stack", "deploy", then=appears(rig.blue, "auto_web", IMAGE_1, "starting", sid="s1"))
    path = rig.compose("web.yml", {"web": IMAGE_1})

    report = deploy.deploy(
        ENV, DeployOptions(stack="auto", compose_files=[path], wait=False), rig.material, rig.context()
    )

    assert report.result == "submitted"
    assert [d["result"] for d in rig.state.deployments(ENV)] == ["submitted"]
    assert report.recorded is True


@pytest.mark.xfail(strict=True, reason=BUG)
def test_a_deploy_whose_only_service_failed_is_recorded(rig: Rig) -> None:
    svc = service("auto_web", IMAGE_1, sid="s1", version=1)
    failed = [task(f"s1-t{i}", svc, "failed", desired="shutdown", err="task: non-zero exit (3)") for i in (1, 2, 3)]
    rig.runner.on("stack", "deploy", then=lambda _c: rig.blue.script("auto_web", (svc, failed)))
    path = rig.compose("web.yml", {"web": IMAGE_1})

    with pytest.raises(OperationFailed) as err:
        deploy.deploy(ENV, DeployOptions(stack="auto", compose_files=[path]), rig.material, rig.context())

    assert [d["result"] for d in rig.state.deployments(ENV)] == ["failed"]
    assert err.value.report.recorded is True


@pytest.mark.xfail(strict=True, reason=BUG)
def test_a_switch_keeps_a_service_deployed_with_no_wait(rig: Rig) -> None:
    release(rig)  # auto_web, recorded
    rig.runner.on(
        "stack", "deploy", host=HOSTS["blue"], then=appears(rig.blue, "auto_api", IMAGE_1, "running", sid="b2")
    )
    api = rig.compose("api.yml", {"api": IMAGE_1})
    deploy.deploy(ENV, DeployOptions(stack="auto", compose_files=[api], wait=False), rig.material, rig.context())
    replays_on_green(rig)

    run_switch(rig)

    replayed = [c.argv for c in rig.runner.calls if c.env["DOCKER_HOST"] == HOSTS["green"]]
    assert any(any(arg.endswith("api.yml") for arg in argv) for argv in replayed), replayed
