"""What the switch tests share: a release deployed on the live colour through the real deploy(), and the
switch itself against the rig's HAProxy socket."""

from __future__ import annotations

import io

from deployer import deploy, switch
from deployer.deploy import DeployOptions
from deployer.haproxy import Runtime
from tests.orchestration.harness import ENV, HOSTS, Rig, appears

IMAGE_1 = "auto-lab/web:1"
IMAGE_2 = "auto-lab/web:2"


def release(
    rig: Rig,
    colour: str = "blue",
    image: str = IMAGE_1,
    *,
    sid: str = "b1",
    resolve_image: str = "always",
    with_registry_auth: bool = False,
    prune: bool = False,
) -> int:
    """Deploy stack auto (service web, ``image``) to ``colour`` with the real deploy(); returns the
    deployment id. Afterwards the rig's recordings start afresh."""
    path = rig.compose(f"web-{colour}.yml", {"web": image})
    rig.runner.on(
        "stack", "deploy", host=HOSTS[colour], then=appears(rig.engines[colour], "auto_web", image, "running", sid=sid)
    )
    options = DeployOptions(
        stack="auto",
        compose_files=[path],
        timeout=10,
        resolve_image=resolve_image,
        with_registry_auth=with_registry_auth,
        prune=prune,
        colour=colour,
    )
    deploy.deploy(ENV, options, rig.material, rig.context())
    rig.runner.rules.clear()
    rig.runner.calls.clear()
    rig.connector.calls.clear()
    for scripted in rig.engines.values():
        scripted.requests.clear()
    rig.out = io.StringIO()
    return int(rig.state.deployments(ENV, colour=colour, limit=1)[0]["id"])


def replays_on_green(rig: Rig, image: str = IMAGE_1, *steps: str) -> None:
    """The replay's ``stack deploy`` on green creates auto_web, running at once unless ``steps`` say otherwise."""
    rig.runner.on(
        "stack",
        "deploy",
        host=HOSTS["green"],
        then=appears(rig.green, "auto_web", image, *(steps or ("running",)), sid="g1"),
    )


def run_switch(rig: Rig, *, lock_wait: float = 0.0, **options: object) -> deploy.Report:
    """switch.switch() on environment lab with short timeouts (overridable)."""
    settings: dict[str, object] = {"timeout": 5.0, "drain_timeout": 5.0, **options}
    return switch.switch(
        ENV,
        switch.SwitchOptions(**settings),  # type: ignore[arg-type]
        rig.material,
        rig.context(lock_wait=lock_wait),
        Runtime(rig.haproxy.path, timeout=2),
    )
