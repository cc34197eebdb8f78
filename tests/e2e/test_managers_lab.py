"""A colour listed with several managers, on the lab: the first does not answer, the deployer uses the next
and says so (issue 16). The first is an address on blue's bridge that no node holds, so the attempt fails
the way a manager that is off the network does (no ARP answer: "no route to host" after a few seconds)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from deployer.lab.layout import CLUSTERS, DOCKER_PORT
from deployer.state.client import StateClient
from tests.support import Lab

pytestmark = pytest.mark.lab

ABSENT = "10.213.1.250"  # on blue's bridge, held by no node


@pytest.fixture
def two_managers(lab: Lab) -> Iterator[StateClient]:
    """Environment ``lab`` with blue's manager listed second, after an address nobody answers on."""
    state = StateClient.from_env(lab.env)
    original = {c.colour: (c.address, DOCKER_PORT) for c in CLUSTERS.values()}
    state.put_environment("lab", "blue", {**original, "blue": (ABSENT, DOCKER_PORT, [CLUSTERS["blue"].address])})
    try:
        yield state
    finally:
        state.put_environment("lab", "blue", original)


def test_the_manager_that_answers_is_used_and_the_other_named(
    lab: Lab, stack: str, tmp_path: Path, two_managers: StateClient
) -> None:
    compose = tmp_path / "web.yml"
    compose.write_text("services:\n  web:\n    image: auto-lab/web:1\n    deploy: {replicas: 1}\n")
    started = time.monotonic()
    proc = lab.cli(
        "deploy", "--env", "lab", "--stack", stack, "-c", str(compose), "--resolve-image", "never", "--json",
        "--timeout", "60",
    )  # fmt: skip
    seconds = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    blue = f"tcp://{CLUSTERS['blue'].address}:{DOCKER_PORT}"
    assert (summary["result"], summary["manager"]) == ("converged", blue)
    assert (
        f"blue: using manager {blue}, passed over: the Docker Engine at tcp://{ABSENT}:{DOCKER_PORT} is "
        "unreachable: check the cluster is up"
    ) in proc.stderr
    assert seconds < 60, f"the absent manager held the deploy {seconds:.1f} s"
    recorded = two_managers.deployments("lab", limit=1)[0]
    assert (recorded["stack"], recorded["result"]) == (stack, "succeeded")
    print(f"deploy with the first manager absent: {seconds:.1f} s")
