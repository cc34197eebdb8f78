"""switch(): replay onto the idle colour, wait for it, move traffic in HAProxy, flip the live colour."""

from __future__ import annotations

import os
import re
import tempfile

from deployer.state.client import Lock
from tests.orchestration.engine_api import service, task
from tests.orchestration.harness import ACTOR, ENV, HOSTS, JOB_URL, Rig
from tests.orchestration.switching import IMAGE_1, IMAGE_2, release, replays_on_green, run_switch

TRAFFIC = [
    "set server app/green state drain",  # health checks run, no traffic yet
    "set server app/green state ready",
    "set server app/blue state drain",
    "set server app/blue state maint",
]


def test_switch_replays_the_live_release_moves_traffic_and_flips_the_live_colour(rig: Rig) -> None:
    deployment = release(rig)
    original = rig.state.deployments(ENV)[0]["compose"][0]["content"]
    replays_on_green(rig)
    rig.haproxy.servers["blue"].sessions = [2, 1, 0]  # blue drains over a few looks
    seen: list[Lock | None] = []
    rig.haproxy.hooks["set server app/green state drain"] = lambda: seen.append(rig.rival.lock_status(ENV))

    report = run_switch(rig)

    (replay,) = rig.runner.calls
    directory = os.path.dirname(replay.argv[4])
    assert os.path.basename(directory).startswith("auto-deploy-replay-")
    assert os.path.dirname(directory) == tempfile.gettempdir()
    assert replay.argv == (
        "docker", "stack", "deploy",
        "--compose-file", f"{directory}/00-web-blue.yml",
        "--compose-file", f"{directory}/zz-recorded-images.yml",
        "--resolve-image", "always", "--detach=true", "auto",
    )  # fmt: skip
    assert replay.env["DOCKER_HOST"] == HOSTS["green"]
    assert replay.compose == {
        f"{directory}/00-web-blue.yml": original,
        f"{directory}/zz-recorded-images.yml": "services:\n  web:\n    image: auto-lab/web:1\n",
    }
    assert not os.path.exists(directory) and not os.path.exists(replay.env["DOCKER_CERT_PATH"])
    assert [(c.address, c.port) for c in rig.connector.calls] == [
        ("10.213.1.2", 2376),  # what runs on the live colour
        ("10.213.2.2", 2376),  # what runs on the idle colour
        ("10.213.2.2", 2376),  # the replay
        ("10.213.2.2", 2376),  # waiting for the idle colour
    ]
    assert rig.blue.writes == [] and rig.green.writes == []

    assert rig.haproxy.set_commands == TRAFFIC
    assert rig.haproxy.admin_states() == {"blue": "maint", "green": "ready"}
    (held,) = seen
    assert held is not None and (held.purpose, held.actor) == ("switch to green", ACTOR)

    assert (report.result, report.colour) == ("switched", "green")
    assert re.fullmatch(
        r"green is live \(replayed 1 deploy\(s\)\); blue drained in [0-9]+\.[0-9]{2} s, "
        r"traffic moved in [0-9]+\.[0-9]{2} s",
        report.message,
    ), report.message
    assert [s["service"] for s in report.services] == [
        "health_seconds", "idle_ready_seconds", "drain_seconds", "traffic_seconds", "detail",
    ]  # fmt: skip
    assert report.services[-1] == {"service": "detail", "from": "blue", "to": "green", "replayed": [deployment]}
    said = rig.said()
    assert f"replaying deploy #{deployment} (auto: web)" in said
    assert "HAProxy: green ready, blue draining" in said
    assert any(re.fullmatch(r"HAProxy: blue in maintenance after [0-9.]+ s of draining", line) for line in said)

    env = rig.state.get_environment(ENV)
    assert env.live_colour == "green"
    assert [(s.name, [(v.name, v.image) for v in s.services]) for s in env.clusters["green"].stacks] == [
        ("auto", [("web", IMAGE_1)])
    ]
    assert rig.kinds()[4:] == ["locked", "deployed", "switched", "switch", "unlocked"]
    switched, audit = [e for e in rig.state.history(ENV) if e["kind"] in ("switched", "switch")][::-1]
    assert (switched["actor"], switched["detail"]["from"], switched["detail"]["to"]) == (ACTOR, "blue", "green")
    assert (switched["detail"]["reason"], switched["detail"]["job_url"]) == ("auto-deploy switch", JOB_URL)
    assert {k: audit["detail"][k] for k in ("result", "colour", "stack", "message", "job_url")} == {
        "result": "switched",
        "colour": "green",
        "stack": "-",
        "message": report.message,
        "job_url": JOB_URL,
    }
    assert rig.state.lock_status(ENV) is None


def test_the_replay_keeps_the_recorded_options_but_never_prunes(rig: Rig) -> None:
    release(rig, resolve_image="never", with_registry_auth=True, prune=True)
    replays_on_green(rig)

    run_switch(rig)

    (replay,) = rig.runner.calls
    assert replay.argv[-5:] == ("--resolve-image", "never", "--with-registry-auth", "--detach=true", "auto")
    assert "--prune" not in replay.argv


def test_a_release_deployed_to_the_idle_colour_is_promoted_not_replayed_over(rig: Rig) -> None:
    release(rig, "blue", IMAGE_1, sid="b1")
    promoted = release(rig, "green", IMAGE_2, sid="g2")

    report = run_switch(rig)

    assert rig.runner.calls == []  # nothing replayed: green keeps IMAGE_2
    said = rig.said()
    assert f"auto/web: the idle colour has a newer deploy (#{promoted}), kept" in said
    assert "nothing deployed on the live colour to replay: clone skipped, green is used as it is" in said
    assert "auto_web: 1/1 running, unchanged, running" in said  # the idle colour was still waited for
    assert rig.haproxy.set_commands == TRAFFIC
    assert report.message.startswith("green is live (replayed 0 deploy(s)); ")
    assert report.services[-1] == {"service": "detail", "from": "blue", "to": "green", "replayed": []}
    assert rig.state.get_environment(ENV).live_colour == "green"


def test_a_stack_removed_from_the_live_colour_is_not_brought_back(rig: Rig) -> None:
    release(rig)
    rig.blue.script("auto_web", (None, []))  # `docker stack rm auto` since it was deployed

    report = run_switch(rig)

    assert rig.runner.calls == []
    assert report.services[-1]["replayed"] == []
    assert "nothing deployed on the live colour to replay: clone skipped, green is used as it is" in rig.said()
    # Nothing deployed, so no health check of green before it takes the traffic.
    assert rig.haproxy.set_commands == TRAFFIC[1:]
    assert rig.state.get_environment(ENV).live_colour == "green"


def test_a_stack_removed_from_the_live_colour_but_still_up_on_the_idle_one_is_named(rig: Rig) -> None:
    """Removed from blue since it was deployed, ``auto`` still runs on green from an earlier release: the switch
    does not remove it (the idle colour may run it on purpose) but says it goes live, before traffic moves."""
    release(rig, "green", sid="g0")
    release(rig)
    rig.blue.script("auto_web", (None, []))
    rig.green.script("infra_agent", (service("infra_agent", "agent:1", sid="i1", version=3, stack="infra"), []))

    report = run_switch(rig)

    assert rig.runner.calls == []
    warning = (
        "warning: green still runs auto_web, which blue no longer runs: it goes live with the switch "
        "(`docker stack rm` it on green first if it was removed on purpose)"
    )
    said = rig.said()
    assert warning in said  # infra_agent, which no deploy recorded, is not named
    assert said.index(warning) < said.index("== moving traffic blue -> green")
    assert report.services[-1]["left_running"] == ["auto_web"]
    assert rig.state.get_environment(ENV).live_colour == "green"


def test_the_idle_colour_may_fail_a_few_checks_before_it_is_healthy(rig: Rig) -> None:
    release(rig)
    replays_on_green(rig)
    rig.haproxy.servers["green"].checks = ["INI", "L4CON", "L7STS", "L7OK"]

    report = run_switch(rig)

    assert report.result == "switched"
    stat_reads = [c for c in rig.haproxy.commands if c == "show stat"]
    assert len(stat_reads) >= 4
    assert rig.haproxy.set_commands == TRAFFIC


def test_switching_to_the_colour_that_is_live_only_checks_haproxy(rig: Rig) -> None:
    rig.haproxy.servers["blue"].admin = "drain"  # an earlier run was interrupted half-way
    rig.haproxy.servers["green"].admin = "ready"
    revision = rig.state.get_environment(ENV).revision

    report = run_switch(rig, to="blue")

    assert (report.result, report.message) == ("unchanged", "blue is already live; HAProxy sends it the traffic")
    assert rig.haproxy.set_commands == [
        "set server app/blue state ready",
        "set server app/green state drain",
        "set server app/green state maint",
    ]
    assert rig.haproxy.admin_states() == {"blue": "ready", "green": "maint"}
    assert rig.connector.calls == [] and rig.runner.calls == []
    assert rig.state.get_environment(ENV).revision == revision
    assert rig.kinds() == ["created", "locked", "switch", "unlocked"]
    (audit,) = [e for e in rig.state.history(ENV) if e["kind"] == "switch"]
    assert audit["detail"]["result"] == "unchanged"


def test_dry_run_plans_and_touches_nothing(rig: Rig) -> None:
    deployment = release(rig)
    kinds = rig.kinds()

    report = run_switch(rig, dry_run=True)

    assert (report.result, report.colour) == ("dry-run", "green")
    assert report.message == "dry run: would switch lab from blue to green replaying 1 deploy(s); nothing touched"
    assert report.services == [{"service": f"replay #{deployment} (auto: web) on green"}]
    assert rig.haproxy.commands == []
    assert rig.runner.calls == []
    assert [(c.address, c.port) for c in rig.connector.calls] == [("10.213.1.2", 2376)]  # reads the live colour only
    assert rig.green.requests == [] and rig.blue.writes == []
    assert rig.kinds() == kinds  # no lock, no event
    assert rig.state.get_environment(ENV).live_colour == "blue"


def test_dry_run_to_the_live_colour(rig: Rig) -> None:
    report = run_switch(rig, dry_run=True, to="blue")
    assert report.message == "dry run: blue is already live; would only check HAProxy sends it the traffic"
    assert rig.haproxy.commands == [] and rig.kinds() == ["created"]


def test_the_idle_colour_kept_service_must_run_before_traffic_moves(rig: Rig) -> None:
    release(rig, "blue", IMAGE_1, sid="b1")
    release(rig, "green", IMAGE_2, sid="g2")
    svc = service("auto_web", IMAGE_2, sid="g2", version=1)
    # A task of the promoted release is restarting, then runs again.
    rig.green.script(
        "auto_web",
        (svc, [task("g2-t1", svc, "failed", desired="shutdown", err="task: non-zero exit (137)")]),
        (svc, [task("g2-t1", svc, "failed", desired="shutdown"), task("g2-t2", svc, "starting", age=0)]),
        (svc, [task("g2-t1", svc, "failed", desired="shutdown"), task("g2-t2", svc)]),
    )

    report = run_switch(rig)

    assert report.result == "switched"
    said = rig.said()
    assert "auto_web: 0/1 running, updating; task starting" in said
    assert "auto_web: 1/1 running, unchanged, running" in said
    assert said.index("auto_web: 1/1 running, unchanged, running") < said.index("HAProxy: green ready, blue draining")


def test_a_reload_right_after_traffic_moved_is_undone_and_the_state_file_holds_the_switch(rig: Rig, tmp_path) -> None:
    release(rig)
    replays_on_green(rig)
    state_file = tmp_path / "server-state"
    saves: list[str] = []

    def reload_with_an_old_file() -> None:
        # The first save after traffic moved: a reload that began before it now loads an older state file.
        saves.append("save")
        if len(saves) == 1:
            rig.haproxy.servers["blue"].admin, rig.haproxy.servers["green"].admin = "ready", "maint"

    rig.haproxy.hooks["show servers state"] = reload_with_an_old_file

    report = run_switch(rig, state_file=str(state_file))

    assert report.result == "switched"
    assert rig.haproxy.admin_states() == {"blue": "maint", "green": "ready"}
    assert len(saves) == 2  # once after traffic moved, once after the second look
    assert rig.haproxy.set_commands[-2:] == ["set server app/green state ready", "set server app/blue state maint"]
    assert any("HAProxy lost the admin state of" in line for line in rig.said())
    lines = state_file.read_text().splitlines()
    assert lines[0] == "1"  # HAProxy's server-state file format version
    columns = lines[1].lstrip("# ").split()
    rows = [dict(zip(columns, line.split(), strict=False)) for line in lines[2:] if line.strip()]
    assert {r["srv_name"]: r["srv_admin_state"] for r in rows} == {"blue": "1", "green": "0"}  # maint, ready


def test_a_state_file_that_cannot_be_written_only_warns(rig: Rig, tmp_path) -> None:
    release(rig)
    replays_on_green(rig)
    (tmp_path / "a-file").write_text("")
    report = run_switch(rig, state_file=str(tmp_path / "a-file" / "server-state"))  # its "directory" is a file
    assert report.result == "switched"
    assert any("warning: HAProxy's server-state file" in line for line in rig.said())
