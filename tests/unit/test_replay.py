"""What a switch replays on the idle colour, and the files it writes for that."""

from pathlib import Path

import yaml

from deployer.switch import Replay, replay_files, replay_plan


def record(rid, stack, services, compose=None):
    return {
        "id": rid,
        "stack": stack,
        "services": [{"name": n, "image": f"img/{n}:{rid}", "replicas": 1} for n in services],
        "compose": compose or [{"file": "docker-compose.yml", "content": "services: {}\n"}],
    }


def test_nothing_deployed_means_nothing_to_replay() -> None:
    assert replay_plan([], []) == ([], [])


def test_newest_live_record_per_service_oldest_first() -> None:
    live = [record(5, "auto", ["api"]), record(2, "auto", ["api", "web"]), record(3, "ops", ["cron"])]
    plan, kept = replay_plan(live, [])
    assert [(r.deployment["id"], r.services) for r in plan] == [(2, ("web",)), (3, ("cron",)), (5, ("api",))]
    assert kept == []


def test_a_newer_idle_deploy_is_the_release_and_is_kept() -> None:
    live = [record(4, "auto", ["api", "web"])]
    idle = [record(7, "auto", ["api"]), record(1, "auto", ["web"])]
    plan, kept = replay_plan(live, idle)
    assert [(r.deployment["id"], r.services) for r in plan] == [(4, ("web",))]
    assert kept == ["auto/api: the idle colour has a newer deploy (#7), kept"]


def test_replay_files_pin_the_recorded_images(tmp_path: Path) -> None:
    rec = record(4, "auto", ["api", "web"], compose=[
        {"file": "base/docker-compose.yml", "content": "services:\n  api: {image: '${IMAGE}'}\n  web: {image: x}\n"},
        {"file": "prod/docker-compose.yml", "content": "services:\n  api: {environment: {A: '1'}}\n"},
    ])  # fmt: skip
    paths = replay_files(Replay(rec, ("api",)), tmp_path)
    assert [Path(p).name for p in paths] == ["00-docker-compose.yml", "01-docker-compose.yml", "zz-recorded-images.yml"]
    assert Path(paths[0]).read_text().startswith("services:\n  api: {image: '${IMAGE}'}")
    assert yaml.safe_load(Path(paths[2]).read_text()) == {"services": {"api": {"image": "img/api:4"}}}


def test_only_what_still_runs_on_the_live_colour_is_replayed() -> None:
    live = [record(1, "gone", ["web"]), record(2, "auto", ["api", "web"])]
    plan, kept = replay_plan(live, [], running={"auto_api"})
    assert [(r.deployment["id"], r.services) for r in plan] == [(2, ("api",))]


def test_a_newer_idle_deploy_whose_service_is_gone_is_replayed_from_live() -> None:
    live = [record(4, "auto", ["api"])]
    idle = [record(7, "auto", ["api"])]
    plan, kept = replay_plan(live, idle, running={"auto_api"}, idle_running=set())
    assert [(r.deployment["id"], r.services) for r in plan] == [(4, ("api",))] and kept == []


def test_the_image_override_has_the_recorded_files_compose_version(tmp_path: Path) -> None:
    """docker stack deploy refuses to merge files of different compose versions ("version mismatched between two
    composefiles : 3.8 and 3.13"): the override says the version the recorded files say."""
    rec = record(5, "orders", ["orders"], compose=[
        {"file": "docker-stack.yml", "content": 'version: "3.8"\nservices:\n  orders: {image: x}\n'},
    ])  # fmt: skip
    paths = replay_files(Replay(rec, ("orders",)), tmp_path)
    assert yaml.safe_load(Path(paths[-1]).read_text()) == {
        "services": {"orders": {"image": "img/orders:5"}},
        "version": "3.8",
    }
