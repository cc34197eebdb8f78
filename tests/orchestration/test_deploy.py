"""deploy(): what it runs, what it waits for, what it records, and its dry run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from deployer import deploy
from deployer.deploy import DeployOptions
from deployer.errors import ConfigError, UnknownEnvironmentError
from tests.orchestration.engine_api import service, task, update_status
from tests.orchestration.harness import ACTOR, ENV, HOSTS, JOB_URL, Rig, appears, running

IMAGE_1 = "auto-lab/web:1"
IMAGE_2 = "auto-lab/web:2"


def test_a_new_service_is_deployed_waited_for_and_recorded(rig: Rig) -> None:
    path = rig.compose("web.yml", {"web": IMAGE_1})
    rig.runner.on(
        "stack",
        "deploy",
        host=HOSTS["blue"],
        then=appears(rig.blue, "auto_web", IMAGE_1, "starting", "running", sid="s1"),
    )

    report = deploy.deploy(
        ENV, DeployOptions(stack="auto", compose_files=[path], timeout=10), rig.material, rig.context()
    )

    (connection,) = rig.connector.calls
    assert (connection.address, connection.port) == ("10.213.1.2", 2376)
    assert (connection.dir_mode, connection.files) == (0o700, {"ca.pem": 0o600, "cert.pem": 0o600, "key.pem": 0o600})
    assert not os.path.exists(connection.cert_dir)  # the private TLS directory is gone afterwards
    (call,) = rig.runner.calls
    assert call.argv == (
        "docker", "stack", "deploy", "--compose-file", path, "--resolve-image", "always", "--detach=true", "auto",
    )  # fmt: skip
    assert call.env == {
        "DOCKER_HOST": "tcp://10.213.1.2:2376",
        "DOCKER_TLS_VERIFY": "1",
        "DOCKER_CERT_PATH": connection.cert_dir,
    }
    assert call.cert_files == {"ca.pem": 0o600, "cert.pem": 0o600, "key.pem": 0o600}
    assert report.command == (
        f"DOCKER_HOST=tcp://10.213.1.2:2376 DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH={connection.cert_dir} "
        f"docker stack deploy --compose-file {path} --resolve-image always --detach=true auto"
    )
    assert (report.result, report.colour, report.manager) == ("converged", "blue", "tcp://10.213.1.2:2376")
    assert report.message == "1 service(s) converged on blue"
    assert [(s["service"], s["phase"], s["running"], s["desired"], s["image"]) for s in report.services] == [
        ("auto_web", "converged", 1, 1, IMAGE_1)
    ]
    assert report.recorded is True
    assert rig.said() == [
        "environment lab: deploying to blue (live), manager tcp://10.213.1.2:2376",
        "== docker stack deploy auto",
        "== waiting for 1 service(s)",
        "auto_web: 0/1 running, starting; task starting",
        "auto_web: 1/1 running, converged",
    ]
    assert rig.blue.writes == [] and rig.green.requests == []  # changes go through the CLI only

    (record,) = rig.state.deployments(ENV)
    assert {k: record[k] for k in ("colour", "stack", "result", "actor", "job_url", "options")} == {
        "colour": "blue",
        "stack": "auto",
        "result": "succeeded",
        "actor": ACTOR,
        "job_url": JOB_URL,
        "options": {"resolve_image": "always", "with_registry_auth": False, "prune": False},
    }
    assert record["services"] == [{"name": "web", "image": IMAGE_1, "replicas": 1}]  # the digest is not kept
    assert record["compose"] == [{"file": "web.yml", "content": Path(path).read_text()}]
    (stack,) = rig.state.get_environment(ENV).clusters["blue"].stacks
    assert (stack.name, stack.deployed_by, [(s.name, s.image, s.replicas) for s in stack.services]) == (
        "auto",
        ACTOR,
        [("web", IMAGE_1, 1)],
    )
    assert rig.kinds() == ["created", "locked", "deployed", "unlocked"]
    assert rig.state.lock_status(ENV) is None


def test_an_update_waits_for_swarm_to_complete_it(rig: Rig) -> None:
    old = running(rig.blue, "auto_web", IMAGE_1, sid="s1", version=10)
    old["UpdateStatus"] = update_status("completed", "update completed", started="2026-11-24T10:00:00.000000000Z")
    rig.blue.script("auto_web", (old, [task("s1-old", old)]))
    new_updating = service(
        "auto_web", IMAGE_2, sid="s1", version=11, update=update_status("updating", "update in progress")
    )
    new_done = service("auto_web", IMAGE_2, sid="s1", version=11, update=update_status("completed", "update completed"))
    frames = [
        (new_updating, [task("s1-old", old, desired="shutdown"), task("s1-new", new_updating, "starting", age=0)]),
        (new_updating, [task("s1-old", old, "shutdown", desired="shutdown"), task("s1-new", new_updating)]),
        (new_done, [task("s1-old", old, "shutdown", desired="shutdown"), task("s1-new", new_done)]),
    ]
    rig.runner.on("stack", "deploy", then=lambda _c: rig.blue.script("auto_web", *frames))
    path = rig.compose("web.yml", {"web": IMAGE_2})

    report = deploy.deploy(
        ENV, DeployOptions(stack="auto", compose_files=[path], timeout=10), rig.material, rig.context()
    )

    assert report.result == "converged"
    assert [(s["service"], s["update_state"], s["image"], s["changed"]) for s in report.services] == [
        ("auto_web", "completed", IMAGE_2, True)
    ]
    assert [line for line in rig.said() if line.startswith("auto_web:")] == [
        "auto_web: 0/1 running, update updating; task starting",
        "auto_web: 1/1 running, update updating, Swarm is monitoring the new tasks",
        "auto_web: 1/1 running, converged",
    ]
    assert [s["image"] for s in rig.state.deployments(ENV)[0]["services"]] == [IMAGE_2]


def test_options_reach_the_command_and_the_record(rig: Rig) -> None:
    path = rig.compose("web.yml", {"web": IMAGE_1})
    extra = rig.compose("override.yml", {"web": IMAGE_1})
    rig.runner.on(
        "stack", "deploy", host=HOSTS["green"], then=appears(rig.green, "auto_web", IMAGE_1, "running", sid="g1")
    )
    options = DeployOptions(
        stack="auto",
        compose_files=[path, extra],
        prune=True,
        with_registry_auth=True,
        resolve_image="never",
        docker_cli="/opt/docker/bin/docker",
        detach_flag=False,  # a docker CLI older than 26
        colour="idle",
    )

    report = deploy.deploy(ENV, options, rig.material, rig.context())

    assert rig.runner.argvs == [
        (
            "/opt/docker/bin/docker", "stack", "deploy", "--compose-file", path, "--compose-file", extra,
            "--resolve-image", "never", "--prune", "--with-registry-auth", "auto",
        )
    ]  # fmt: skip
    assert rig.runner.calls[0].env["DOCKER_HOST"] == "tcp://10.213.2.2:2376"
    assert (report.result, report.colour) == ("converged", "green")
    assert rig.said()[0] == "environment lab: deploying to green (idle), manager tcp://10.213.2.2:2376"
    assert rig.blue.requests == []
    (record,) = rig.state.deployments(ENV)
    assert (record["colour"], record["options"]) == (
        "green",
        {"resolve_image": "never", "with_registry_auth": True, "prune": True},
    )
    assert [c["file"] for c in record["compose"]] == ["web.yml", "override.yml"]
    env = rig.state.get_environment(ENV)
    assert [s.name for s in env.clusters["green"].stacks] == ["auto"] and env.clusters["blue"].stacks == ()
    assert env.live_colour == "blue"  # deploying to the idle colour switches nothing


def test_the_lock_is_held_while_the_cli_runs(rig: Rig) -> None:
    seen = []

    def look(_command: object) -> None:
        seen.append(rig.rival.lock_status(ENV))
        appears(rig.blue, "auto_web", IMAGE_1, "running", sid="s1")(_command)

    rig.runner.on("stack", "deploy", then=look)
    path = rig.compose("web.yml", {"web": IMAGE_1})

    deploy.deploy(ENV, DeployOptions(stack="auto", compose_files=[path]), rig.material, rig.context())

    (held,) = seen
    assert held is not None
    assert (held.purpose, held.actor, held.job_url) == ("deploy auto to live", ACTOR, JOB_URL)
    assert held.owner.startswith(f"{ACTOR}@")
    assert rig.state.lock_status(ENV) is None


def test_take_lock_false_takes_no_lock(rig: Rig) -> None:
    rig.runner.on("stack", "deploy", then=appears(rig.blue, "auto_web", IMAGE_1, "running", sid="s1"))
    path = rig.compose("web.yml", {"web": IMAGE_1})

    deploy.deploy(ENV, DeployOptions(stack="auto", compose_files=[path], take_lock=False), rig.material, rig.context())

    assert rig.kinds() == ["created", "deployed"]


def test_no_wait_submits_without_waiting(rig: Rig) -> None:
    rig.runner.on("stack", "deploy", then=appears(rig.blue, "auto_web", IMAGE_1, "starting", sid="s1"))
    path = rig.compose("web.yml", {"web": IMAGE_1})

    report = deploy.deploy(
        ENV, DeployOptions(stack="auto", compose_files=[path], wait=False), rig.material, rig.context()
    )

    assert (report.result, report.message) == ("submitted", "submitted without waiting (--no-wait)")
    assert report.services == [{"service": "auto_web"}]
    # The snapshot before the deploy and one look after it (what the record names): nothing waited for it.
    assert [(r.method, r.path) for r in rig.blue.requests if r.path.startswith("/services")] == [
        ("GET", "/services/auto_web"),
        ("GET", "/services/auto_web"),
    ]
    (record,) = rig.state.deployments(ENV)
    assert (record["result"], record["services"]) == ("submitted", [{"name": "web", "image": IMAGE_1, "replicas": 1}])
    assert rig.state.lock_status(ENV) is None


def test_dry_run_builds_the_command_and_touches_nothing(rig: Rig) -> None:
    path = rig.compose("web.yml", {"web": IMAGE_1, "worker": IMAGE_1})
    options = DeployOptions(stack="auto", compose_files=[path], dry_run=True, resolve_image="never")

    report = deploy.deploy(ENV, options, rig.material, rig.context())

    assert report.command == (
        "DOCKER_HOST=tcp://10.213.1.2:2376 DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH='<private temporary directory>' "
        f"docker stack deploy --compose-file {path} --resolve-image never --detach=true auto"
    )
    assert (report.result, report.message) == ("dry-run", "dry run: nothing was touched")
    assert report.services == [{"service": "auto_web"}, {"service": "auto_worker"}]
    assert rig.runner.calls == [] and rig.connector.calls == []
    assert rig.blue.requests == [] and rig.green.requests == []
    assert rig.kinds() == ["created"]  # no lock taken, nothing recorded
    assert rig.state.deployments(ENV) == []


def test_dry_run_of_an_unknown_environment_fails_the_same(rig: Rig) -> None:
    path = rig.compose("web.yml", {"web": IMAGE_1})
    with pytest.raises(UnknownEnvironmentError) as err:
        deploy.deploy(
            "nowhere", DeployOptions(stack="auto", compose_files=[path], dry_run=True), rig.material, rig.context()
        )
    assert str(err.value) == "unknown environment 'nowhere': known environments are lab"
    assert err.value.exit_code == 2


def test_unknown_environment_fails_before_the_lock(rig: Rig) -> None:
    path = rig.compose("web.yml", {"web": IMAGE_1})
    with pytest.raises(UnknownEnvironmentError) as err:
        deploy.deploy("nowhere", DeployOptions(stack="auto", compose_files=[path]), rig.material, rig.context())
    assert str(err.value) == "unknown environment 'nowhere': known environments are lab"
    assert rig.kinds() == ["created"]
    assert rig.runner.calls == [] and rig.connector.calls == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"stack": "bad stack"}, "invalid stack name 'bad stack': use letters, digits, '_', '.' or '-'"),
        ({"colour": "purple"}, "invalid colour 'purple': use one of live, idle, blue, green"),
        ({"compose_files": []}, "no compose file: pass -c FILE at least once"),
    ],
)
def test_bad_input_is_refused_before_anything_happens(rig: Rig, options: dict[str, object], message: str) -> None:
    path = rig.compose("web.yml", {"web": IMAGE_1})
    fields: dict[str, object] = {"stack": "auto", "compose_files": [path], **options}
    with pytest.raises(ConfigError) as err:
        deploy.deploy(ENV, DeployOptions(**fields), rig.material, rig.context())  # type: ignore[arg-type]
    assert str(err.value) == message
    assert err.value.exit_code == 2
    assert rig.kinds() == ["created"]
    assert rig.runner.calls == [] and rig.connector.calls == []
