"""The lab's processes: pidfiles, liveness, stopping by pid, and finding what a colour left behind.

Everything is read from ``/proc`` and the cgroup hierarchies; processes are only ever signalled by
pid, and only when they belong to the lab (its pidfiles, its cgroup parents, its network namespaces,
or a containerd/dockerd whose command line names the lab directory).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path

from deployer.lab.layout import CLUSTERS, Cluster, LabPaths, Node, as_node

LAB_DAEMONS = ("dockerd", "containerd", "containerd-shim", "containerd-shim-runc-v2", "docker-proxy", "runc")


def read_pid(pidfile: Path) -> int | None:
    """The pid written in ``pidfile``, or None."""
    try:
        return int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None


def cmdline(pid: int) -> list[str]:
    """The command line of ``pid`` (empty when it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie has exited: only its parent has not reaped it yet)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def our_pid(pidfile: Path, needle: str) -> int | None:
    """The pid in ``pidfile`` if that process is alive and its command line mentions ``needle``."""
    pid = read_pid(pidfile)
    if pid and alive(pid) and any(needle in arg for arg in cmdline(pid)):
        return pid
    return None


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def stop_pids(pids: Iterable[int], timeout: float) -> None:
    """SIGTERM, wait up to ``timeout``, then SIGKILL whatever is left."""
    pending = [pid for pid in set(pids) if pid != os.getpid() and alive(pid)]
    for pid in pending:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        _reap()
        pending = [pid for pid in pending if alive(pid)]
        if pending:
            time.sleep(0.1)
    for pid in pending:
        _signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while pending and time.monotonic() < deadline:
        _reap()
        pending = [pid for pid in pending if alive(pid)]
        if pending:
            time.sleep(0.05)


def _reap() -> None:
    """Reap children we spawned in this process (e.g. `up` then `down` in one test run)."""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


def _netns_inode(name: str) -> int | None:
    try:
        return os.stat(Path("/run/netns", name)).st_ino
    except OSError:
        return None


def cgroup_dirs(parent: str) -> list[Path]:
    """Every cgroup directory named ``parent`` under the host's hierarchies, deepest first."""
    dirs: list[Path] = []
    root = Path("/sys/fs/cgroup")
    candidates = [root / parent.lstrip("/")]
    with contextlib.suppress(OSError):
        candidates += [h / parent.lstrip("/") for h in root.iterdir() if h.is_dir()]
    for top in candidates:
        if top.is_dir():
            for dirpath, _dirnames, _files in os.walk(top):
                dirs.append(Path(dirpath))
    return sorted(set(dirs), key=lambda p: len(p.parts), reverse=True)


def cgroup_pids(parent: str) -> set[int]:
    """The pids in every cgroup named ``parent`` (a colour's containers)."""
    pids: set[int] = set()
    for directory in cgroup_dirs(parent):
        with contextlib.suppress(OSError, ValueError):
            pids |= {int(x) for x in (directory / "cgroup.procs").read_text().split()}
    return pids


def containers_of(node: Cluster | Node) -> set[int]:
    """The processes of a node's containers (its cgroup parent; a cluster stands for its manager)."""
    return cgroup_pids(f"/{as_node(node).netns}")


def _all_nodes() -> list[Node]:
    return [node for cluster in CLUSTERS.values() for node in cluster.all_nodes()]


def leftover_pids(paths: LabPaths) -> set[int]:
    """Processes of the lab: in a lab netns, in a lab cgroup, or a containerd/shim of the lab."""
    ns_inodes = {ino for n in _all_nodes() if (ino := _netns_inode(n.netns)) is not None}
    needle = str(paths.root) + "/"
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        pid = int(entry.name)
        with contextlib.suppress(OSError):
            if ns_inodes and os.stat(entry / "ns" / "net").st_ino in ns_inodes:
                found.add(pid)
                continue
        args = cmdline(pid)
        if args and Path(args[0]).name in LAB_DAEMONS and any(needle in a for a in args):
            found.add(pid)
    for node in _all_nodes():
        found |= containers_of(node)
    return {pid for pid in found if alive(pid)}


def leftover_pids_of(node: Cluster | Node, paths: LabPaths) -> set[int]:
    """Processes a dead node's daemon left behind (its containerd, shims, containers)."""
    node = as_node(node)
    needle = str(paths.node(node).root) + "/"
    pids = containers_of(node)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            args = cmdline(int(entry.name))
            if args and Path(args[0]).name.startswith("containerd") and any(needle in a for a in args):
                pids.add(int(entry.name))
    return pids
