"""The lab's TLS material: which certificate bundles it needs, and (re)issuing the missing or stale ones.

One CA under ``certs/``; a client bundle for the deployer, a server bundle for the state service, one per
colour's manager ``dockerd`` (its address in subjectAltName; workers listen on no TCP port) and one for the
registry (the blue bridge's address). The certificate mechanics are
in :mod:`deployer.lab.certs`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deployer.lab import certs
from deployer.lab.layout import CLUSTERS, STATE_HOST, LabPaths


def wanted_bundles(paths: LabPaths) -> dict[str, tuple[Path, dict[str, Any]]]:
    """Every bundle of the lab: name to (directory, options of :func:`deployer.lab.certs.issue`)."""
    wanted: dict[str, tuple[Path, dict[str, Any]]] = {
        "client": (paths.client, {"client": True}),
        "state": (paths.state_tls, {"server": True, "ips": [STATE_HOST], "dns": ["localhost"]}),
    }
    for cluster in CLUSTERS.values():
        wanted[cluster.colour] = (
            paths.colour(cluster.colour).tls,
            {"server": True, "ips": [cluster.address], "dns": [f"{cluster.colour}.auto-lab"]},
        )
    registry_host = CLUSTERS["blue"].host_address  # deployer.lab.registry listens there
    wanted["registry"] = (paths.registry / "tls", {"server": True, "ips": [registry_host]})
    return wanted


def ensure_certs(paths: LabPaths) -> set[str]:
    """Create the CA and every bundle that is missing or not signed by it; return what was (re)issued."""
    paths.certs.mkdir(parents=True, exist_ok=True)
    paths.certs.chmod(0o700)
    try:
        ca = certs.load_ca(paths.certs)
    except (OSError, ValueError):
        ca = certs.make_ca("AUTO lab CA")
        certs.write_ca(paths.certs, ca)
    issued: set[str] = set()
    for name, (directory, options) in wanted_bundles(paths).items():
        same_ca = (directory / "ca.pem").exists() and (directory / "ca.pem").read_bytes() == ca.cert_pem()
        if same_ca and certs.bundle_is_valid(directory, ca):
            continue
        certs.write_bundle(directory, ca, certs.issue(ca, f"auto-lab {name}", **options))
        issued.add(name)
    return issued
