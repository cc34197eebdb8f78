"""The multi-node lab as data: each colour's nodes, their commands, HAProxy's servers, the registry's files, and
the swarm bookkeeping (joining, pruning, readiness) against recorded Engine answers. Nothing here starts anything."""

from __future__ import annotations

import json
from base64 import b64decode
from pathlib import Path

import pytest

from deployer.cli import build_parser
from deployer.errors import ConfigError
from deployer.haproxy import HAProxyError, colour_servers
from deployer.lab import daemons, front, lab, registry
from deployer.lab.argv import bridge_config_argvs, dockerd_argv, netns_dockerd_argv, network_config_argvs
from deployer.lab.layout import CLUSTERS, DEFAULT_WORKERS, MAX_WORKERS, LabPaths, check_workers
from tests.unit.test_haproxy_config import FakeRuntime

BLUE, GREEN = CLUSTERS["blue"], CLUSTERS["green"]
PATHS = LabPaths(Path("/l"))


def test_each_colour_is_a_manager_and_workers_on_one_bridge() -> None:
    nodes = BLUE.nodes(2)
    assert [(n.hostname, n.role, n.address, n.netns, n.host_if, n.ns_if) for n in nodes] == [
        ("blue-manager", "manager", "10.213.1.2", "auto-lab-blue", "alab-blue", "alab-blue-ns"),
        ("blue-worker-1", "worker", "10.213.1.3", "auto-lab-blue-worker-1", "alab-blue-w1", "alab-blue-w1ns"),
        ("blue-worker-2", "worker", "10.213.1.4", "auto-lab-blue-worker-2", "alab-blue-w2", "alab-blue-w2ns"),
    ]
    assert {n.host_address for n in nodes} == {"10.213.1.1"} and BLUE.bridge == "alab-blue-br"
    assert BLUE.manager.address == BLUE.address and BLUE.manager.netns == BLUE.netns  # the single-node lab's
    assert [n.key for n in nodes] == ["blue", "blue-worker-1", "blue-worker-2"]
    assert PATHS.node(nodes[1]).socket == Path("/l/blue-worker-1/docker.sock")
    assert PATHS.node(nodes[0]) == PATHS.colour("blue")
    every = [n for c in CLUSTERS.values() for n in c.all_nodes()]
    assert len(every) == 2 * (1 + MAX_WORKERS)
    # Interface names are at most 15 characters; addresses, hostnames and namespaces all distinct.
    assert max(len(name) for n in every for name in (n.host_if, n.ns_if)) <= 15
    assert max(len(c.bridge) for c in CLUSTERS.values()) <= 15
    for attribute in ("address", "hostname", "netns", "host_if"):
        assert len({getattr(n, attribute) for n in every}) == len(every)
    with pytest.raises(ValueError):
        BLUE.worker(MAX_WORKERS + 1)
    assert check_workers(0) == 0
    with pytest.raises(ConfigError, match=r"^--workers must be 0 to 9, not 10$"):
        check_workers(10)


def test_a_worker_listens_only_on_its_unix_socket_under_its_own_hostname() -> None:
    worker = GREEN.worker(1)
    paths = PATHS.node(worker)
    assert " ".join(dockerd_argv(worker, paths)) == (
        "dockerd --data-root /l/green-worker-1/data --exec-root /l/green-worker-1/exec "
        "--pidfile /l/green-worker-1/dockerd.pid -H unix:///l/green-worker-1/docker.sock "
        "--cgroup-parent /auto-lab-green-worker-1 --containerd-namespace auto-lab-green-worker-1 "
        "--containerd-plugins-namespace auto-lab-green-worker-1-plugins --shutdown-timeout 5"
    )
    argv = netns_dockerd_argv(worker, paths, [("cgroup", "/sys/fs/cgroup/cpu", "cpu")], dockerd="/usr/sbin/dockerd")
    assert argv[:8] == ["ip", "netns", "exec", "auto-lab-green-worker-1", "unshare", "--uts", "sh", "-c"]
    assert argv[8].splitlines()[1] == "echo green-worker-1 > /proc/sys/kernel/hostname"
    assert argv[9:11] == ["auto-lab-dockerd", "/usr/sbin/dockerd"]
    # The manager keeps its TLS listener, and the names the single-node lab had.
    manager = netns_dockerd_argv(BLUE, PATHS.colour("blue"), [], dockerd="dockerd")
    assert "echo blue-manager > /proc/sys/kernel/hostname" in manager[8]
    assert "tcp://10.213.1.2:2376" in manager and "--tlsverify" in manager


def test_worker_network_commands() -> None:
    assert [" ".join(a) for a in network_config_argvs(BLUE.worker(2), BLUE.bridge)] == [
        "ip addr flush dev alab-blue-w2",
        "ip link set alab-blue-w2 master alab-blue-br",
        "ip link set alab-blue-w2 up",
        "ip -n auto-lab-blue-worker-2 link set lo up",
        "ip -n auto-lab-blue-worker-2 addr replace 10.213.1.4/24 dev alab-blue-w2ns",
        "ip -n auto-lab-blue-worker-2 link set alab-blue-w2ns up",
        "ip -n auto-lab-blue-worker-2 route replace default via 10.213.1.1",
    ]
    assert [" ".join(a) for a in bridge_config_argvs(GREEN)] == [
        "ip addr replace 10.213.2.1/24 dev alab-green-br",
        "ip link set alab-green-br up",
    ]


def test_haproxy_servers_are_every_node_of_a_colour() -> None:
    assert lab.front_servers(0) == {"blue": [("blue", "10.213.1.2")], "green": [("green", "10.213.2.2")]}
    servers = lab.front_servers(2)
    assert servers["green"] == [
        ("green-manager", "10.213.2.2"), ("green-worker-1", "10.213.2.3"), ("green-worker-2", "10.213.2.4"),
    ]  # fmt: skip
    context = front.config_context(front.FrontPaths(Path("/l")), servers, "green", 18000)
    assert [(s["name"], s["address"], s["port"], s["enabled"]) for s in context["servers"]] == [
        ("blue-manager", "10.213.1.2", 18080, False),
        ("blue-worker-1", "10.213.1.3", 18080, False),
        ("blue-worker-2", "10.213.1.4", 18080, False),
        ("green-manager", "10.213.2.2", 18080, True),
        ("green-worker-1", "10.213.2.3", 18080, True),
        ("green-worker-2", "10.213.2.4", 18080, True),
    ]
    names = [s["name"] for s in context["servers"]]
    assert colour_servers(names, "blue") == ["blue-manager", "blue-worker-1", "blue-worker-2"]
    assert colour_servers(["blue", "green", "bluegreen"], "blue") == ["blue"]


def _stat(*rows: str) -> str:
    return "# pxname,svname,scur,stot,status,weight,check_status\n" + "".join(f"app,{row}\n" for row in rows)


def _state(**admin: int) -> str:
    rows = "".join(f"3 app {i} {name} {bits}\n" for i, (name, bits) in enumerate(admin.items(), 1))
    return "1\n# be_id be_name srv_id srv_name srv_admin_state\n" + rows


def test_a_colour_of_nodes_is_switched_waited_for_and_drained_as_one() -> None:
    blue_nodes = ["blue-manager", "blue-worker-1", "blue-worker-2"]
    state = _state(**{n.replace("-", "_"): 0 for n in blue_nodes}).replace("_", "-")
    # The manager runs no task (its check fails), the workers' pass: the colour is up.
    starting = _stat(
        "blue-manager,0,0,DOWN,1,L4CON", "blue-worker-1,0,0,DOWN,1,L4CON", "blue-worker-2,0,0,UP 1/2,1,L7OK"
    )
    up = _stat("blue-manager,0,0,DOWN,1,L4CON", "blue-worker-1,0,0,UP,1,L7OK", "blue-worker-2,0,0,UP,1,L7OK")
    # The first answer tells which servers are blue's; each poll reads the next.
    rt = FakeRuntime({"show stat": [starting, starting, up], "show servers": [state], "set server": [""]})
    assert rt.wait_colour_up("app", "blue", 5, interval=0.1) == pytest.approx(0.1)
    assert rt.set_colour_state("app", "blue", "drain") == blue_nodes
    assert [c for c in rt.sent if c.startswith("set ")] == [f"set server app/{n} state drain" for n in blue_nodes]
    busy = _stat("blue-manager,0,0,DRAIN,1,L4CON", "blue-worker-1,2,5,DRAIN,1,L7OK", "blue-worker-2,0,0,DRAIN,1,L7OK")
    idle = _stat("blue-manager,0,0,DRAIN,1,L4CON", "blue-worker-1,0,5,DRAIN,1,L7OK", "blue-worker-2,0,0,DRAIN,1,L7OK")
    rt = FakeRuntime({"show stat": [busy, busy, idle], "show servers": [state]})
    assert rt.wait_colour_drained("app", "blue", 5, interval=0.05) == pytest.approx(0.05)
    rt = FakeRuntime({"show stat": [busy], "show servers": [state]})
    with pytest.raises(HAProxyError, match=r"^app/blue still has session\(s\) after 0.5 s: blue-worker-1 2$"):
        rt.wait_colour_drained("app", "blue", 0.5)
    rt = FakeRuntime({"show stat": [_stat("blue-manager,0,0,DOWN,1,L4CON")], "show servers": [state]})
    with pytest.raises(HAProxyError, match=r"^app/blue: no server is healthy after 1 s \(blue-manager: status DOWN"):
        rt.wait_colour_up("app", "blue", 1)
    with pytest.raises(HAProxyError, match=r"^HAProxy backend app has no server for green \(has blue-manager\)$"):
        rt.colour_servers("app", "green")


def test_a_colour_of_one_server_is_waited_for_as_before() -> None:
    """The single-node lab (and any HAProxy with one server per colour): the same waits, the same messages."""
    rt = FakeRuntime({"show stat": [_stat("green,0,0,DOWN,1,L7STS")], "show servers": [_state(green=8)]})
    with pytest.raises(HAProxyError, match=r"^app/green is not healthy after 1 s \(status DOWN, check L7STS\)"):
        rt.wait_colour_up("app", "green", 1)
    rt = FakeRuntime({"show stat": [_stat("blue,3,9,DRAIN,1,L7OK")], "show servers": [_state(blue=8)]})
    with pytest.raises(HAProxyError, match=r"^app/blue still has 3 session\(s\) after 0.5 s$"):
        rt.wait_colour_drained("app", "blue", 0.5)


def test_the_worker_count_is_the_labs_own_unless_given(tmp_path) -> None:
    paths = LabPaths(tmp_path / "lab")
    assert paths.recorded_workers() is None and lab.workers_of(paths) == DEFAULT_WORKERS  # a new lab
    paths.colour("blue").data.mkdir(parents=True)
    assert lab.workers_of(paths) == 0  # a lab made before workers: single-node
    paths.workers_file.write_text("2\n")
    assert lab.workers_of(paths) == 2 and lab.workers_of(paths, 0) == 0
    with pytest.raises(ConfigError):
        lab.workers_of(paths, MAX_WORKERS + 1)


def test_lab_env_names_the_registry_when_there_are_workers(tmp_path) -> None:
    environ = {"AUTO_LAB_DIR": str(tmp_path)}
    assert "AUTO_LAB_REGISTRY" not in lab.env_values(environ)
    (tmp_path / "workers").write_text("2\n")
    values = lab.env_values(environ)
    assert values["AUTO_LAB_REGISTRY"] == "10.213.1.1:5000"
    assert values["AUTO_LAB_DOCKER_CONFIG"] == f"{tmp_path}/registry/docker-config"
    (tmp_path / "workers").write_text("0\n")
    assert "AUTO_LAB_REGISTRY" not in lab.env_values(environ)


def test_lab_up_workers_flag() -> None:
    parser = build_parser()
    assert parser.parse_args(["lab", "up"]).workers is None
    assert parser.parse_args(["lab", "up", "--workers", "0"]).workers == 0
    assert parser.parse_args(["lab", "up", "--workers", "2"]).workers == 2


@pytest.mark.parametrize("value", ["10", "-1", "two", "٣"])
def test_lab_up_refuses_a_bad_worker_count(capsys, value) -> None:
    from deployer.cli import main

    with pytest.raises(SystemExit) as exited:  # argparse
        main(["lab", "up", "--workers", value])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and "is not a number of workers from 0 to 9" in err and err.count("\n") == 1


def test_registry_files(tmp_path) -> None:
    pytest.importorskip("bcrypt")
    import bcrypt

    paths = LabPaths(tmp_path)
    registry.write_files(paths)
    rpaths = registry.RegistryPaths(paths)
    user, password = registry.credentials(paths)
    assert user == "auto-lab" and len(password) >= 32
    assert oct(rpaths.password.stat().st_mode & 0o777) == "0o600"
    name, hashed = rpaths.htpasswd.read_text().strip().split(":", 1)
    assert name == "auto-lab" and bcrypt.checkpw(password.encode(), hashed.encode())
    config = rpaths.config.read_text()
    assert "addr: 10.213.1.1:5000\n" in config and f"path: {rpaths.htpasswd}\n" in config
    assert f"certificate: {rpaths.tls / 'cert.pem'}\n" in config and f"rootdirectory: {rpaths.data}\n" in config
    login = json.loads((rpaths.docker_config / "config.json").read_text())["auths"]["10.213.1.1:5000"]["auth"]
    assert b64decode(login).decode() == f"auto-lab:{password}"
    before = {p: p.read_text() for p in (rpaths.htpasswd, rpaths.config)}
    registry.write_files(paths)  # a second time changes nothing (the registry keeps its secret and hash)
    assert {p: p.read_text() for p in before} == before
    assert registry.reference("auto-lab/web:1") == "10.213.1.1:5000/auto-lab/web:1"
    assert registry.RegistryPaths(paths).trust == Path("/etc/docker/certs.d/10.213.1.1:5000")


def _node(node_id: str, hostname: str, role: str = "worker", state: str = "ready") -> dict:
    return {
        "ID": node_id,
        "Description": {"Hostname": hostname},
        "Spec": {"Role": role, "Availability": "active"},
        "Status": {"State": state, "Addr": "10.213.1.9"},
    }


class FakeAPI:
    """The manager's node list, and the removals asked of it."""

    def __init__(self, *answers: list[dict]) -> None:
        self.answers = list(answers)
        self.removed: list[str] = []

    def nodes(self) -> list[dict]:
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]

    def remove_node(self, node_id: str, force: bool = False) -> None:
        assert force
        self.removed.append(node_id)


def test_nodes_that_are_not_the_labs_are_removed_from_the_swarm() -> None:
    api = FakeAPI(
        [
            _node("m", "blue-manager", role="manager"),
            _node("w1", "blue-worker-1"),
            _node("old", "blue-worker-1", state="down"),  # its data was lost; it joined again as w1
            _node("w3", "blue-worker-3", state="down"),  # taken away by --workers 2
        ]
    )
    assert daemons.prune_nodes(api, BLUE, {"m", "w1"}) == [
        "removed node blue-worker-1 (down) from the blue swarm",
        "removed node blue-worker-3 (down) from the blue swarm",
    ]
    assert api.removed == ["old", "w3"]


def test_waiting_for_ready_nodes_names_the_late_ones(monkeypatch) -> None:
    ids = {"m": "blue-manager", "w1": "blue-worker-1", "w2": "blue-worker-2"}
    joining = [
        _node("m", "blue-manager", role="manager"),
        _node("w1", "blue-worker-1"),
        _node("w2", "x", state="unknown"),
    ]
    assert daemons.not_ready(joining, ids) == ["blue-worker-2"]
    api = FakeAPI(joining, [*joining[:2], _node("w2", "blue-worker-2")])
    daemons.wait_nodes_ready(api, BLUE, ids, timeout=5)
    clock = iter(range(100))
    monkeypatch.setattr(daemons.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(daemons.time, "sleep", lambda s: None)
    with pytest.raises(Exception, match=r"^the blue swarm's nodes blue-worker-2 are not Ready after 3 s$"):
        daemons.wait_nodes_ready(FakeAPI(joining), BLUE, ids, timeout=3)


class FakeWorker:
    """A worker daemon's swarm state, and what the lab asks of it."""

    def __init__(self, state: str, node_id: str = "") -> None:
        self.state, self.node_id = state, node_id
        self.calls: list[tuple] = []
        self.swarm = self

    def info(self) -> dict:
        return {"Swarm": {"LocalNodeState": self.state, "NodeID": self.node_id}}

    def leave(self, force: bool = False) -> None:
        self.calls.append(("leave", force))

    def join(self, **kwargs) -> None:
        self.calls.append(("join", kwargs))


def test_a_worker_joins_unless_its_manager_knows_it() -> None:
    worker = BLUE.worker(1)
    known = FakeWorker("active", "w1")
    assert daemons.ensure_joined(worker, known, BLUE, "TOKEN", {"m", "w1"}) is None and known.calls == []
    fresh = FakeWorker("inactive")
    assert daemons.ensure_joined(worker, fresh, BLUE, "TOKEN", {"m"}) == "joined blue-worker-1 to the blue swarm"
    join = {
        "remote_addrs": ["10.213.1.2:2377"],
        "join_token": "TOKEN",
        "listen_addr": "10.213.1.3:2377",
        "advertise_addr": "10.213.1.3",
    }
    assert fresh.calls == [("join", join)]
    stranger = FakeWorker("active", "elsewhere")  # in a swarm its manager does not know (a lab made again)
    daemons.ensure_joined(worker, stranger, BLUE, "TOKEN", {"m"})
    assert stranger.calls == [("leave", True), ("join", join)]
