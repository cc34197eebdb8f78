"""The lab's commands as data: network, daemon and state-service argv, asserted exactly."""

from pathlib import Path

import pytest

from deployer.errors import ConfigError
from deployer.lab import front, lab
from deployer.lab.argv import (
    cgroup_remount_script,
    dockerd_argv,
    netns_add_argv,
    network_config_argvs,
    parse_cgroup_mounts,
    state_server_argv,
    veth_add_argv,
)
from deployer.lab.image import IMAGE_REVISION, IMAGE_REVISION_LABEL, image_changes
from deployer.lab.layout import ACTOR, CLUSTERS, LabPaths

BLUE = CLUSTERS["blue"]
PATHS = LabPaths(Path("/l"))


def test_network_commands() -> None:
    assert netns_add_argv(BLUE) == ["ip", "netns", "add", "auto-lab-blue"]
    assert " ".join(veth_add_argv(BLUE)) == "ip link add alab-blue type veth peer name alab-blue-ns netns auto-lab-blue"
    assert [" ".join(argv) for argv in network_config_argvs(BLUE, "alab-blue-br")] == [
        "ip addr flush dev alab-blue",  # a lab made before bridges had the address here
        "ip link set alab-blue master alab-blue-br",
        "ip link set alab-blue up",
        "ip -n auto-lab-blue link set lo up",
        "ip -n auto-lab-blue addr replace 10.213.1.2/24 dev alab-blue-ns",
        "ip -n auto-lab-blue link set alab-blue-ns up",
        "ip -n auto-lab-blue route replace default via 10.213.1.1",
    ]


def test_dockerd_listens_only_with_tlsverify() -> None:
    assert " ".join(dockerd_argv(BLUE, PATHS.colour("blue"))) == (
        "dockerd --data-root /l/blue/data --exec-root /l/blue/exec --pidfile /l/blue/dockerd.pid "
        "-H unix:///l/blue/docker.sock -H tcp://10.213.1.2:2376 --tlsverify --tlscacert /l/blue/tls/ca.pem "
        "--tlscert /l/blue/tls/cert.pem --tlskey /l/blue/tls/key.pem --cgroup-parent /auto-lab-blue "
        "--containerd-namespace auto-lab-blue --containerd-plugins-namespace auto-lab-blue-plugins --shutdown-timeout 5"
    )


def test_state_service_argv() -> None:
    assert " ".join(state_server_argv(PATHS, 8787, python="py")) == (
        "py -m deployer state serve --db /l/state/state.db --listen 127.0.0.1:8787 "
        "--tls-cert /l/certs/state/cert.pem --tls-key /l/certs/state/key.pem --token-file /l/state/token"
    )


def test_cgroup_remount_replays_the_hosts_hierarchies() -> None:
    mounts = parse_cgroup_mounts(
        "cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0\n"
        "cgroup /sys/fs/cgroup/systemd cgroup rw,relatime,name=systemd 0 0\n"
        "cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n"
        "proc /proc proc rw 0 0\n"
    )
    assert mounts == [
        ("cgroup", "/sys/fs/cgroup/cpu", "cpu"),
        ("cgroup", "/sys/fs/cgroup/systemd", "none,name=systemd"),
        ("cgroup2", "/sys/fs/cgroup/unified", ""),
    ]
    script = cgroup_remount_script(mounts).splitlines()
    assert cgroup_remount_script(mounts, hostname="blue-worker-1").splitlines() == [
        "set -e", "echo blue-worker-1 > /proc/sys/kernel/hostname", *script[1:],
    ]  # fmt: skip
    assert script[:5] == [
        "set -e",
        "mount -t tmpfs -o mode=755 cgroup_root /sys/fs/cgroup",
        "mkdir -p /sys/fs/cgroup/cpu && mount -t cgroup -o cpu cgroup /sys/fs/cgroup/cpu",
        "mkdir -p /sys/fs/cgroup/systemd && mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd",
        "mkdir -p /sys/fs/cgroup/unified && mount -t cgroup2 cgroup2 /sys/fs/cgroup/unified",
    ]
    assert script[-1] == 'exec "$@"'


def test_image_answers_with_its_version_and_stops_on_sigterm() -> None:
    changes = image_changes("2")
    assert changes[0] == "ENV APP_VERSION=2"
    assert f"LABEL {IMAGE_REVISION_LABEL}={IMAGE_REVISION}" in changes
    cmd = next(c for c in changes if c.startswith("CMD "))
    assert "trap 'kill $pid; exit 0' TERM INT" in cmd and "httpd -f -p 8080 -h /www" in cmd


def test_env_lines_are_quoted_exports(tmp_path) -> None:
    text = lab.env_lines({"AUTO_LAB_DIR": str(tmp_path / "a b"), "AUTO_LAB_STATE_PORT": "8799"})
    assert text.splitlines() == [
        "export AUTO_STATE_URL=https://127.0.0.1:8799",
        f"export AUTO_STATE_CA='{tmp_path}/a b/certs/ca.pem'",
        f"export AUTO_STATE_TOKEN_FILE='{tmp_path}/a b/state/token'",
        f"export AUTO_DOCKER_CERT_PATH='{tmp_path}/a b/certs/client'",
        "export AUTO_LAB_FRONT_URL=http://127.0.0.1:18000",
        f"export AUTO_HAPROXY_SOCKET='{tmp_path}/a b/haproxy/admin.sock'",
        f"export AUTO_HAPROXY_STATE_FILE='{tmp_path}/a b/haproxy/server-state'",
        "export AUTO_HAPROXY_BACKEND=app",
    ]


def test_haproxy_argv_and_config_check() -> None:
    paths = front.FrontPaths(Path("/l"))
    assert " ".join(front.haproxy_argv(paths, "/usr/sbin/haproxy")) == (
        "/usr/sbin/haproxy -W -D -p /l/haproxy/haproxy.pid -f /l/haproxy/haproxy.cfg"
    )
    assert front.check_argv(Path("/l/haproxy/haproxy.cfg.new"), "/usr/sbin/haproxy") == [
        "/usr/sbin/haproxy", "-c", "-q", "-f", "/l/haproxy/haproxy.cfg.new",
    ]  # fmt: skip


def test_haproxy_files_and_servers_follow_the_live_colour() -> None:
    paths = front.FrontPaths(Path("/l"))
    assert (paths.config, paths.socket, paths.state) == (
        Path("/l/haproxy/haproxy.cfg"), Path("/l/haproxy/admin.sock"), Path("/l/haproxy/server-state"),
    )  # fmt: skip
    addresses = {c.colour: c.address for c in CLUSTERS.values()}
    context = front.config_context(paths, addresses, "green", 18000)
    assert context["frontend_bind"] == "127.0.0.1:18000" and context["backend"] == "app"
    assert context["servers"] == [
        {"name": "blue", "address": "10.213.1.2", "port": 18080, "enabled": False},
        {"name": "green", "address": "10.213.2.2", "port": 18080, "enabled": True},
    ]
    assert front.front_port({"AUTO_LAB_FRONT_PORT": "18123"}) == 18123


def test_missing_haproxy_is_named_before_anything_starts(monkeypatch) -> None:
    monkeypatch.setattr(lab.shutil, "which", lambda tool: None if tool == "haproxy" else f"/usr/bin/{tool}")
    monkeypatch.setattr(front, "HAPROXY_BINARY", "/nonexistent/haproxy")
    with pytest.raises(ConfigError, match=r"^haproxy not found: apt-get install haproxy$"):
        lab._require_tools()


def test_teardown_commands() -> None:
    from deployer.lab import argv

    assert argv.netns_delete_argv(BLUE) == ["ip", "netns", "delete", "auto-lab-blue"]
    assert argv.veth_delete_argv(BLUE) == ["ip", "link", "delete", "alab-blue"]
    assert argv.umount_argv("/l/blue/exec/netns/x") == ["umount", "/l/blue/exec/netns/x"]
    assert argv.umount_argv("/l/x", lazy=True) == ["umount", "-l", "/l/x"]


def test_the_runner_names_what_to_install_and_how_long_it_waited(tmp_path) -> None:
    from deployer.errors import DeployerError
    from deployer.lab import runner

    with pytest.raises(ConfigError, match=r"^/nonexistent/haproxy not found: apt-get install haproxy$"):
        runner.run(["/nonexistent/haproxy", "-v"])
    with pytest.raises(ConfigError, match=r"^/nonexistent/dockerd not found: apt-get install docker.io$"):
        runner.spawn(["/nonexistent/dockerd"], log=tmp_path / "d.log")
    with pytest.raises(DeployerError, match=r"^sleep 5 did not finish within 0 s$"):
        runner.run(["sleep", "5"], timeout=0.2)
    assert runner.run(["sh", "-c", "read x; echo got $x"], input=b"it\n").stdout == "got it\n"
    log = tmp_path / "h.log"
    with pytest.raises(DeployerError, match=r" failed: no config \(log: .*h\.log\)$"):
        runner.run(["sh", "-c", "echo no config >&2; exit 1"], log=log)
    assert log.read_text() == "no config\n"


class _FakeStateClient:
    """What the lab's seeding asks of a StateClient, recorded."""

    def __init__(self, existing) -> None:
        self.existing = existing
        self.puts: list[tuple] = []

    def get_environment(self, name: str):
        from deployer.errors import UnknownEnvironmentError

        if self.existing is None:
            raise UnknownEnvironmentError(f"unknown environment '{name}'")
        return self.existing

    def put_environment(self, name, live_colour, clusters, actor=None):
        self.puts.append((name, live_colour, dict(clusters), actor))


def _environment(live: str, green_address: str = "10.213.2.2"):
    from deployer.state.client import Cluster, Environment

    addresses = {"blue": "10.213.1.2", "green": green_address}
    clusters = {c: Cluster(c, a, 2376, c == live) for c, a in addresses.items()}
    return Environment("lab", live, 3, clusters)


@pytest.mark.parametrize(
    ("existing", "seeded", "puts"),
    [
        (None, "created", [("lab", "blue", {"blue": ("10.213.1.2", 2376), "green": ("10.213.2.2", 2376)})]),
        (_environment("green"), "existed", []),
        (_environment("green", "10.9.9.9"), "existed",
         [("lab", "green", {"blue": ("10.213.1.2", 2376), "green": ("10.213.2.2", 2376)})]),
    ],
)  # fmt: skip
def test_seeding_is_idempotent_and_keeps_the_live_colour(monkeypatch, existing, seeded, puts) -> None:
    from deployer.lab import state_service

    fake = _FakeStateClient(existing)
    monkeypatch.setattr(state_service, "state_client", lambda *a, **k: fake)
    assert state_service.seed(PATHS, 8787) == seeded
    assert [(n, live, c) for n, live, c, _ in fake.puts] == puts
    assert all(actor == ACTOR for *_, actor in fake.puts)


def test_wait_ready_names_the_program_and_its_last_log_line(tmp_path) -> None:
    import subprocess
    import sys

    from deployer.errors import DeployerError
    from deployer.lab.runner import wait_ready

    log = tmp_path / "d.log"
    log.write_text("starting\nlisten tcp: address already in use\n")
    answers = iter([False, False, True])
    wait_ready(lambda: next(answers), None, what="the blue dockerd", log=log, timeout=5)  # the third poll answers
    dead = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    dead.wait()
    with pytest.raises(DeployerError) as exited:
        wait_ready(lambda: False, dead, what="the blue dockerd", log=log, timeout=5)
    assert str(exited.value) == f"the blue dockerd exited (3): listen tcp: address already in use (log: {log})"
    with pytest.raises(DeployerError) as slow:
        wait_ready(lambda: False, None, what="the state service", log=log, timeout=0.3, where=" on https://127.0.0.1:1")
    assert str(slow.value) == (
        f"the state service did not answer on https://127.0.0.1:1 within 0 s: listen tcp: address already in use"
        f" (log: {log})"
    )
