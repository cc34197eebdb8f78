"""What ``lab down`` removes once every lab process is stopped: mounts, cgroup directories, the lab directory.

A killed namespaced daemon leaves ``nsfs`` mounts under its exec-root, which keep directories busy:
they are unmounted (lazily if need be) before anything is deleted. Only a directory holding the
lab's marker file is ever deleted.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

from deployer.errors import DeployerError
from deployer.lab.argv import umount_argv, unescape_mount
from deployer.lab.layout import MARKER, Cluster, LabPaths, Node, as_node
from deployer.lab.processes import cgroup_dirs
from deployer.lab.runner import run


def mounts_under(root: Path) -> list[str]:
    """Mount points at or below ``root``, deepest first."""
    prefix = str(root).rstrip("/") + "/"
    points = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) >= 2:
            mountpoint = unescape_mount(fields[1])
            if mountpoint == str(root) or mountpoint.startswith(prefix):
                points.append(mountpoint)
    return sorted(points, key=lambda p: p.count("/"), reverse=True)


def unmount_all(root: Path) -> None:
    """Unmount everything at or below ``root`` (leftover nsfs mounts under the exec-roots …)."""
    for _ in range(5):  # stacked mounts show up again after the top one goes
        points = mounts_under(root)
        if not points:
            return
        for point in points:
            if run(umount_argv(point), check=False).returncode != 0:
                run(umount_argv(point, lazy=True), check=False)


def remove_cgroups(node: Cluster | Node) -> None:
    """Remove the node's cgroup directories (deepest first; empty once its processes are gone)."""
    for directory in cgroup_dirs(f"/{as_node(node).netns}"):
        with contextlib.suppress(OSError):
            directory.rmdir()


def remove_lab_dir(paths: LabPaths) -> None:
    """Delete the lab directory if it holds the marker; DeployerError naming what is still mounted."""
    if not (paths.root / MARKER).exists():
        return
    shutil.rmtree(paths.root, ignore_errors=True)
    if paths.root.exists():  # something is still mounted or busy: say what is left
        left = mounts_under(paths.root)
        raise DeployerError(f"could not remove {paths.root}" + (f": still mounted: {left[0]}" if left else ""))
