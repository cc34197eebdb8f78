"""The lab's network: one namespace per colour, a veth pair to the host, and the namespace's resolver.

:func:`ensure_network` creates what is missing and re-applies the addresses (idempotently);
:func:`remove_network` deletes it all again. The commands come from :mod:`deployer.lab.argv`.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

from deployer.lab.argv import (
    netns_add_argv,
    netns_delete_argv,
    netns_list_argv,
    network_config_argvs,
    veth_add_argv,
    veth_delete_argv,
)
from deployer.lab.layout import Cluster
from deployer.lab.runner import run

NETNS_ETC = Path("/etc/netns")
# Nothing listens on the namespace's 127.0.0.1:53: Swarm's pull attempt fails at once instead of
# after a 30 s DNS timeout.
RESOLV_CONF = "nameserver 127.0.0.1\n"


def netns_list() -> set[str]:
    """The names of the network namespaces on this machine."""
    out = run(netns_list_argv(), check=False).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def _host_link_exists(cluster: Cluster) -> bool:
    return Path("/sys/class/net", cluster.host_if).exists()


def ensure_network(cluster: Cluster) -> None:
    """Create the colour's namespace and veth pair when missing; (re)apply addresses and routes."""
    if cluster.netns not in netns_list():
        run(netns_add_argv(cluster))
    if not _host_link_exists(cluster):
        run(veth_add_argv(cluster))
    for argv in network_config_argvs(cluster):
        run(argv)
    # `ip netns exec` bind-mounts this over /etc/resolv.conf.
    etc = NETNS_ETC / cluster.netns
    etc.mkdir(parents=True, exist_ok=True)
    resolv = etc / "resolv.conf"
    if not resolv.exists() or resolv.read_text() != RESOLV_CONF:
        resolv.write_text(RESOLV_CONF)


def remove_network(cluster: Cluster) -> None:
    """Delete the colour's namespace, veth pair and resolver file; never fails when already gone."""
    if shutil.which("ip"):
        if cluster.netns in netns_list():
            run(netns_delete_argv(cluster), check=False)
        if _host_link_exists(cluster):
            run(veth_delete_argv(cluster), check=False)
    shutil.rmtree(NETNS_ETC / cluster.netns, ignore_errors=True)
    with contextlib.suppress(OSError):
        NETNS_ETC.rmdir()  # only if empty: other namespaces may use it
