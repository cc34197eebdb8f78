"""What the environment-state service knows, as the client hands it out: frozen, validated dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from deployer.state.contract import other_colour


@dataclass(frozen=True)
class ServiceDocs:
    """Where a service publishes its documentation: its API version, spec URL and docs URL (HTTPS)."""

    version: str
    spec_url: str
    docs_url: str | None = None


@dataclass(frozen=True)
class Service:
    """One Swarm service of a stack as last deployed."""

    name: str
    image: str
    replicas: int
    docs: ServiceDocs | None = None


@dataclass(frozen=True)
class Stack:
    """One stack deployed into a cluster."""

    name: str
    deployed_at: str
    deployed_by: str
    services: tuple[Service, ...]


@dataclass(frozen=True)
class Cluster:
    """One colour of an environment: a Swarm cluster and its manager's Docker endpoint.

    ``other_managers`` are the cluster's other Swarm managers, tried in order when ``manager_address`` does
    not answer (same port, same CA).
    """

    colour: str
    manager_address: str
    docker_port: int
    live: bool
    stacks: tuple[Stack, ...] = ()
    other_managers: tuple[str, ...] = ()

    @property
    def manager_addresses(self) -> tuple[str, ...]:
        """Every manager's address, in the order the deployer tries them."""
        return (self.manager_address, *self.other_managers)

    @property
    def docker_host(self) -> str:
        """The Docker endpoint as ``tcp://ADDRESS:PORT`` (IPv6 in brackets)."""
        host = f"[{self.manager_address}]" if ":" in self.manager_address else self.manager_address
        return f"tcp://{host}:{self.docker_port}"


@dataclass(frozen=True)
class SkippedService:
    """A service of an answer that breaks the contract, left out when the caller asked to skip such services
    rather than refuse the whole environment (``auto-docs --from-env``: one bad name costs one page)."""

    colour: str
    stack: Any  # the stack's name as answered (not validated)
    raw: Any  # the service as answered (not validated)
    reason: str  # the one-line InvalidStateError message


@dataclass(frozen=True)
class Environment:
    """A blue/green environment; exactly one of its two clusters is live."""

    name: str
    live_colour: str
    revision: int
    clusters: dict[str, Cluster] = field(hash=False)
    updated_at: str = ""

    @property
    def live_cluster(self) -> Cluster:
        """The cluster that serves traffic now."""
        return self.clusters[self.live_colour]

    @property
    def idle_colour(self) -> str:
        """The colour that is not live (where the next release goes)."""
        return other_colour(self.live_colour)

    @property
    def idle_cluster(self) -> Cluster:
        """The cluster that is not live."""
        return self.clusters[self.idle_colour]


@dataclass(frozen=True)
class Lock:
    """The lock of an environment, as the service saw it when it answered.

    ``expires_in`` is seconds by the service's clock at that moment (the service's clock decides).
    """

    owner: str
    purpose: str
    actor: str | None
    job_url: str | None
    acquired_at: str
    expires_at: str
    expires_in: float
