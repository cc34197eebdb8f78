"""The lab's commands as data: pure functions that build the argv of every command the lab runs.

Network namespaces, veths and the colours' bridges, the namespaced ``dockerd`` (with the cgroup remount it
needs inside ``ip netns exec`` and its own hostname), the state service and the registry. Nothing here runs
anything; unit tests compare exact argv.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Iterable
from pathlib import Path

from deployer.lab.layout import DOCKER_PORT, STATE_HOST, Cluster, ColourPaths, LabPaths, Node, as_node

# Where dockerd's "Devices cgroup isn't mounted" comes from: `ip netns exec` remounts /sys, so the
# cgroup hierarchies must be mounted again inside. Used when /proc/mounts shows none on the host.
FALLBACK_CGROUP_MOUNTS: tuple[tuple[str, str, str], ...] = (
    *(("cgroup", f"/sys/fs/cgroup/{c}", c) for c in ("cpu", "cpuacct", "cpuset", "memory")),
    *(("cgroup", f"/sys/fs/cgroup/{c}", c) for c in ("devices", "freezer", "blkio", "pids")),
    ("cgroup", "/sys/fs/cgroup/systemd", "none,name=systemd"),
    ("cgroup2", "/sys/fs/cgroup/unified", ""),
)
_GENERIC_MOUNT_OPTIONS = frozenset(
    {"rw", "ro", "relatime", "noatime", "nodiratime", "strictatime", "nosuid", "nodev", "noexec"}
)


def netns_add_argv(node: Cluster | Node) -> list[str]:
    """Create the node's network namespace (a cluster stands for its manager)."""
    return ["ip", "netns", "add", as_node(node).netns]


def netns_delete_argv(node: Cluster | Node) -> list[str]:
    """Delete the node's network namespace."""
    return ["ip", "netns", "delete", as_node(node).netns]


def netns_list_argv() -> list[str]:
    """List the network namespaces."""
    return ["ip", "netns", "list"]


def veth_add_argv(node: Cluster | Node) -> list[str]:
    """Create the node's veth pair with one end already inside its namespace."""
    node = as_node(node)
    return [
        "ip", "link", "add", node.host_if, "type", "veth",
        "peer", "name", node.ns_if, "netns", node.netns,
    ]  # fmt: skip


def veth_delete_argv(node: Cluster | Node) -> list[str]:
    """Delete the node's veth pair (by its host end; the peer goes with it)."""
    return ["ip", "link", "delete", as_node(node).host_if]


def bridge_add_argv(cluster: Cluster) -> list[str]:
    """Create the colour's bridge on the host."""
    return ["ip", "link", "add", cluster.bridge, "type", "bridge"]


def bridge_delete_argv(cluster: Cluster) -> list[str]:
    """Delete the colour's bridge."""
    return ["ip", "link", "delete", cluster.bridge]


def bridge_config_argvs(cluster: Cluster) -> list[list[str]]:
    """The bridge's address (the nodes' gateway, the host as they see it) and link; idempotent."""
    return [
        ["ip", "addr", "replace", f"{cluster.host_address}/{cluster.prefix}", "dev", cluster.bridge],
        ["ip", "link", "set", cluster.bridge, "up"],
    ]


def network_config_argvs(node: Cluster | Node, bridge: str) -> list[list[str]]:
    """The node's veth as a port of ``bridge``, its address and default route; every command is idempotent.

    The host end carries no address (the bridge has it): ``flush`` takes away the one a lab made before
    bridges gave it, so a running lab changes over in place.
    """
    node = as_node(node)
    ns = ["ip", "-n", node.netns]
    return [
        ["ip", "addr", "flush", "dev", node.host_if],
        ["ip", "link", "set", node.host_if, "master", bridge],
        ["ip", "link", "set", node.host_if, "up"],
        [*ns, "link", "set", "lo", "up"],
        [*ns, "addr", "replace", f"{node.address}/{node.prefix}", "dev", node.ns_if],
        [*ns, "link", "set", node.ns_if, "up"],
        [*ns, "route", "replace", "default", "via", node.host_address],
    ]


def umount_argv(mountpoint: str, *, lazy: bool = False) -> list[str]:
    """Unmount one mount point (``-l``: detach it now, clean up when no longer busy)."""
    return ["umount", "-l", mountpoint] if lazy else ["umount", mountpoint]


def unescape_mount(field: str) -> str:
    """Undo the octal escapes of /proc/mounts (``\\040`` for a space …)."""
    return field.encode().decode("unicode_escape") if "\\" in field else field


def parse_cgroup_mounts(proc_mounts: str) -> list[tuple[str, str, str]]:
    """The host's cgroup mounts under /sys/fs/cgroup as (fstype, mountpoint, options) to replay."""
    found: list[tuple[str, str, str]] = []
    for line in proc_mounts.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[2] not in ("cgroup", "cgroup2"):
            continue
        mountpoint = unescape_mount(fields[1])
        if not mountpoint.startswith("/sys/fs/cgroup"):
            continue
        opts = [o for o in fields[3].split(",") if o not in _GENERIC_MOUNT_OPTIONS]
        if fields[2] == "cgroup2":
            opts = []  # e.g. nsdelegate is only allowed in the initial namespace; defaults are fine
        elif any(o.startswith("name=") for o in opts) and not [
            o for o in opts if not o.startswith("name=") and o not in ("xattr", "clone_children")
        ]:
            opts.insert(0, "none")  # a named hierarchy without controllers
        found.append((fields[2], mountpoint, ",".join(opts)))
    return found


def cgroup_remount_script(mounts: Iterable[tuple[str, str, str]], hostname: str | None = None) -> str:
    """Shell script run inside ``ip netns exec``: remount the cgroup hierarchies, then exec "$@".

    With ``hostname`` (the script then runs in a UTS namespace of its own), set it first: Swarm names
    each node by its daemon's hostname.
    """
    mounts = list(mounts) or list(FALLBACK_CGROUP_MOUNTS)
    lines = ["set -e"]
    if hostname is not None:
        lines.append(f"echo {shlex.quote(hostname)} > /proc/sys/kernel/hostname")
    if any(mp == "/sys/fs/cgroup" for _, mp, _ in mounts):
        lines.append("mount -t cgroup2 cgroup2 /sys/fs/cgroup")  # pure cgroup v2 host
    else:
        lines.append("mount -t tmpfs -o mode=755 cgroup_root /sys/fs/cgroup")
        for fstype, mountpoint, opts in mounts:
            mp = shlex.quote(mountpoint)
            opt = f" -o {shlex.quote(opts)}" if opts else ""
            lines.append(f"mkdir -p {mp} && mount -t {fstype}{opt} {fstype} {mp}")
    # A system containerd would be picked up by dockerd 20.10 instead of its own one: hide its
    # socket in this (private) mount namespace so that each colour runs its own containerd.
    lines.append("if [ -S /run/containerd/containerd.sock ]; then mount -t tmpfs tmpfs /run/containerd; fi")
    lines.append('exec "$@"')
    return "\n".join(lines)


def dockerd_argv(node: Cluster | Node, paths: ColourPaths, *, dockerd: str = "dockerd") -> list[str]:
    """The ``dockerd`` command line of one node (to run inside its namespace).

    A manager also listens on TCP with ``--tlsverify`` (the deployer's way in); a worker only on its unix
    socket, which the lab uses to join it to the swarm.
    """
    node = as_node(node)
    tcp = [
        "-H", f"tcp://{node.address}:{DOCKER_PORT}",
        "--tlsverify",
        "--tlscacert", str(paths.tls / "ca.pem"),
        "--tlscert", str(paths.tls / "cert.pem"),
        "--tlskey", str(paths.tls / "key.pem"),
    ]  # fmt: skip
    return [
        dockerd,
        "--data-root", str(paths.data),
        "--exec-root", str(paths.exec_root),
        "--pidfile", str(paths.pidfile),
        "-H", f"unix://{paths.socket}",
        *(tcp if node.role == "manager" else []),
        # Own cgroup parent and containerd namespace: down() finds the containers by cgroup, and
        # the daemons never see each other's containers.
        "--cgroup-parent", f"/{node.netns}",
        "--containerd-namespace", node.netns,
        "--containerd-plugins-namespace", f"{node.netns}-plugins",
        "--shutdown-timeout", "5",
    ]  # fmt: skip


def netns_dockerd_argv(
    node: Cluster | Node, paths: ColourPaths, cgroup_mounts: Iterable[tuple[str, str, str]], *, dockerd: str
) -> list[str]:
    """``ip netns exec NS unshare --uts sh -c <hostname, remount cgroups> … dockerd …``: the full daemon command.

    Each node has its own UTS namespace, so Swarm sees distinct hostnames (``blue-manager``, ``blue-worker-1``…)
    instead of the machine's name on every node.
    """
    node = as_node(node)
    script = cgroup_remount_script(cgroup_mounts, hostname=node.hostname)
    return ["ip", "netns", "exec", node.netns, "unshare", "--uts", "sh", "-c", script, "auto-lab-dockerd",
            *dockerd_argv(node, paths, dockerd=dockerd)]  # fmt: skip


def state_server_argv(paths: LabPaths, port: int, *, python: str = sys.executable) -> list[str]:
    """The state service command (contract with ``deployer state serve``)."""
    return [
        python, "-m", "deployer", "state", "serve",
        "--db", str(paths.state_db),
        "--listen", f"{STATE_HOST}:{port}",
        "--tls-cert", str(paths.state_tls / "cert.pem"),
        "--tls-key", str(paths.state_tls / "key.pem"),
        "--token-file", str(paths.token),
    ]  # fmt: skip


def registry_argv(binary: str, config: Path) -> list[str]:
    """Debian's ``docker-registry`` (Distribution) serving with ``config``."""
    return [binary, "serve", str(config)]
