"""Which of a cluster's Swarm managers the deployer talks to: the first that answers.

The environment-state service lists a colour's manager (``manager_address``) and, for a cluster with several,
its ``other_managers``. A manager that is down, off the network, demoted or untrusted is passed over for the
next one, and the deployer says so: the operator learns that one manager needs care while the deploy goes on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from deployer.commands import docker_host
from deployer.engine import Connector
from deployer.errors import RefusedError
from deployer.state.model import Cluster


def connect(connector: Connector, cluster: Cluster, cert_dir: str, say: Callable[[str], None]) -> tuple[Any, Cluster]:
    """The API client of the first of ``cluster``'s managers that answers, and the cluster with that manager
    as its ``manager_address`` (the ``docker`` CLI's commands go to the same one).

    A single manager's failure is raised as it is. When every one of several fails, one RefusedError (exit 4)
    names each manager and why, of the class they all share (DockerUnavailableError, TLSError…) if they do.
    """
    failures: list[RefusedError] = []
    for address in cluster.manager_addresses:
        try:
            api = connector(address, cluster.docker_port, cert_dir)
        except RefusedError as exc:  # unreachable, untrusted, or not a manager: every reason to try the next
            failures.append(exc)
            continue
        if failures:
            skipped = "; ".join(str(exc) for exc in failures)
            say(f"{cluster.colour}: using manager {docker_host(address, cluster.docker_port)}, passed over: {skipped}")
            others = tuple(a for a in cluster.manager_addresses if a != address)
            cluster = dataclasses.replace(cluster, manager_address=address, other_managers=others)
        return api, cluster
    if len(failures) == 1:
        raise failures[0]
    kinds = {type(exc) for exc in failures}
    kind = kinds.pop() if len(kinds) == 1 else RefusedError
    raise kind(f"none of the {len(failures)} managers of {cluster.colour} answered: " + "; ".join(map(str, failures)))
