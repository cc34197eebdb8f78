"""The lab's network: a bridge per colour on the host, and per node a namespace, a veth pair and a resolver.

Every node of a colour (its manager and workers) has its own network namespace whose veth is a port of the
colour's bridge: the nodes reach one another on that segment (Swarm's 2377/tcp, 7946/tcp+udp, VXLAN on
4789/udp), and the host, at the bridge's address, reaches them all. :func:`ensure_network` creates what is
missing and re-applies the addresses (idempotently); :func:`remove_node_network` and :func:`remove_network`
delete it again. The commands come from :mod:`deployer.lab.argv`.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

from deployer.lab.argv import (
    bridge_add_argv,
    bridge_config_argvs,
    bridge_delete_argv,
    netns_add_argv,
    netns_delete_argv,
    netns_list_argv,
    network_config_argvs,
    veth_add_argv,
    veth_delete_argv,
)
from deployer.lab.layout import Cluster, Node
from deployer.lab.runner import run

NETNS_ETC = Path("/etc/netns")
# Nothing listens on the namespace's 127.0.0.1:53: Swarm's pull attempt fails at once instead of
# after a 30 s DNS timeout.
RESOLV_CONF = "nameserver 127.0.0.1\n"


def netns_list() -> set[str]:
    """The names of the network namespaces on this machine."""
    out = run(netns_list_argv(), check=False).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def _link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def ensure_network(cluster: Cluster, nodes: list[Node], namespaces: set[str] | None = None) -> None:
    """Create the colour's bridge and each node's namespace and veth pair when missing; (re)apply
    addresses and routes. ``namespaces``: what :func:`netns_list` said, when the caller asked already."""
    namespaces = netns_list() if namespaces is None else namespaces
    if not _link_exists(cluster.bridge):
        run(bridge_add_argv(cluster))
    for node in nodes:
        if node.netns not in namespaces:
            run(netns_add_argv(node))
        if not _link_exists(node.host_if):
            run(veth_add_argv(node))
        for argv in network_config_argvs(node, cluster.bridge):
            run(argv)
        # `ip netns exec` bind-mounts this over /etc/resolv.conf.
        etc = NETNS_ETC / node.netns
        etc.mkdir(parents=True, exist_ok=True)
        resolv = etc / "resolv.conf"
        if not resolv.exists() or resolv.read_text() != RESOLV_CONF:
            resolv.write_text(RESOLV_CONF)
    for argv in bridge_config_argvs(cluster):  # after the ports: a lab made before bridges gives its address up first
        run(argv)


def remove_node_network(node: Node, namespaces: set[str] | None = None) -> None:
    """Delete the node's namespace, veth pair and resolver file; never fails when already gone."""
    if shutil.which("ip"):
        if node.netns in (netns_list() if namespaces is None else namespaces):
            run(netns_delete_argv(node), check=False)
        if _link_exists(node.host_if):
            run(veth_delete_argv(node), check=False)
    shutil.rmtree(NETNS_ETC / node.netns, ignore_errors=True)


def remove_network(cluster: Cluster) -> None:
    """Delete every node's network and the colour's bridge; never fails when already gone."""
    namespaces = netns_list() if shutil.which("ip") else set()
    for node in cluster.all_nodes():
        remove_node_network(node, namespaces)
    if shutil.which("ip") and _link_exists(cluster.bridge):
        run(bridge_delete_argv(cluster), check=False)
    with contextlib.suppress(OSError):
        NETNS_ETC.rmdir()  # only if empty: other namespaces may use it
