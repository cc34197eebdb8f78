"""``--from-env ENV``: the services running in an environment, as the environment-state service records them.

The deployer records, for every service whose compose file carries ``auto.docs.*`` labels, where the
service publishes its spec and docs. The live colour's services are the ones documented, alone or added to
a manifest's (:func:`resolve_manifest`).

A service whose name or docs version is not a whole, clean URL segment (``"web\\n"``) costs that service its
page, never the portal: the state client is asked to skip services that break the contract (it refuses the
whole environment otherwise, rightly for ``auto-deploy``), and each is reported in one warning line.

The landing page's catalogue shows the environment too: :func:`resolve_manifest` keeps an
:class:`~docgen.catalogue.EnvironmentStatus` (the live colour, when each service running in it was last deployed:
its stack's ``deployed_at``) in the manifest's ``extra``, where :func:`live_status` finds it. A field the state
answer lacks is shown as "unknown", never a failure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from autocore.errors import EXIT_BAD_INPUT, ToolkitError
from autocore.names import has_control
from docgen.catalogue import UNKNOWN, EnvironmentStatus, colour_of, utc_timestamp
from docgen.errors import ConfigError, UnavailableError
from docgen.manifest import Manifest, ServiceEntry, check_unique, load_manifest
from docgen.names import RESERVED_NAMES, valid_name, valid_version

ENVIRONMENT_EXTRA = "docgen.environment"  # the key of Manifest.extra that holds the EnvironmentStatus


def _where(stack: Any, service: Any) -> str:
    # Quoted: a newline in a name must not look like an ordinary name once the warning is put on one line.
    name = service.get("name") if isinstance(service, dict) else service
    return f"{stack if isinstance(stack, str) and not has_control(stack) else repr(stack)}/{name!r}"


def _unusable(stack: Any, service: Any) -> str | None:
    """Why docgen cannot document this service of an answer (a one-line warning), or None."""
    if not isinstance(service, dict):
        return None  # not a service at all: the client's own check says so
    name, docs = service.get("name"), service.get("docs")
    where = _where(stack, service)
    if not valid_name(name) or name in RESERVED_NAMES:
        if not isinstance(docs, dict):
            return f"{where}: no auto.docs.* labels, not documented"
        return f"{where}: not usable as a URL segment, skipped"
    version = docs.get("version") if isinstance(docs, dict) else None
    if isinstance(docs, dict) and not valid_version(version):
        return f"{where}: version {version!r} not usable as a URL segment, skipped"
    return None


def _live_environment(environment: str, client: Any) -> tuple[Any, list[str]]:
    """The environment as the client checks it, with the live colour's services that break the contract left
    out (a warning each) rather than the whole environment refused."""
    if not valid_name(environment):
        raise ConfigError(f"invalid environment name {environment!r}: use lowercase letters, digits and '-'")
    skipped: list[Any] = []
    env = client.get_environment(environment, skipped=skipped)
    warnings = []
    for left_out in skipped:
        if left_out.colour == env.live_colour:  # the other colour is never documented
            why = _unusable(left_out.stack, left_out.raw)
            warnings.append(why or f"{_where(left_out.stack, left_out.raw)}: {left_out.reason}, skipped")
    return env, warnings


def environment_status(environment: str, env: Any) -> EnvironmentStatus:
    """The live colour and, for every service running in it, when its stack was last deployed (ISO 8601 UTC, or
    "unknown"), from the client's answer; a missing or odd field is "unknown", never an error."""
    live_colour = getattr(env, "live_colour", None)
    clusters = getattr(env, "clusters", None)
    live = clusters.get(live_colour) if isinstance(clusters, Mapping) and isinstance(live_colour, str) else None
    deployed: dict[str, str] = {}
    for stack in getattr(live, "stacks", None) or ():
        at = utc_timestamp(getattr(stack, "deployed_at", None))
        for service in getattr(stack, "services", None) or ():
            name = getattr(service, "name", None)
            if valid_name(name) and name not in deployed:  # the first stack's, as entries_from_environment
                deployed[name] = at
    return EnvironmentStatus(environment, colour_of(live_colour) if live is not None else UNKNOWN, deployed)


def entries_from_environment(environment: str, client: object) -> tuple[list[ServiceEntry], list[str]]:
    """The live colour's documented services, and a warning for each running service that has no docs or
    cannot be documented."""
    entries, warnings, _ = read_environment(environment, client)
    return entries, warnings


def read_environment(environment: str, client: object) -> tuple[list[ServiceEntry], list[str], EnvironmentStatus]:
    """:func:`entries_from_environment`, and the environment's :func:`environment_status` from the same answer."""
    try:
        env, warnings = _live_environment(environment, client)
    except ToolkitError as exc:
        if exc.exit_code == EXIT_BAD_INPUT:  # an unknown environment, a bad setting
            raise ConfigError(str(exc)) from None
        raise UnavailableError(str(exc)) from None  # unavailable, refused, an answer that breaks the contract
    live = env.clusters[env.live_colour]
    entries: list[ServiceEntry] = []
    seen: dict[str, str] = {}
    for stack in live.stacks:
        for service in stack.services:
            where = f"environment {environment} ({env.live_colour}), stack {stack.name}"
            if service.docs is None:
                warnings.append(f"{stack.name}/{service.name}: no auto.docs.* labels, not documented")
                continue
            # Names the contract allows but a URL segment does not ("Web", "index").
            if not valid_name(service.name) or service.name in RESERVED_NAMES:
                warnings.append(f"{stack.name}/{service.name!r}: not usable as a URL segment, skipped")
                continue
            if not valid_version(service.docs.version):
                warnings.append(
                    f"{stack.name}/{service.name}: version {service.docs.version!r} not usable as a URL segment, "
                    "skipped"
                )
                continue
            if service.name in seen:
                warnings.append(f"{stack.name}/{service.name}: also in stack {seen[service.name]}, skipped")
                continue
            seen[service.name] = stack.name
            entries.append(
                ServiceEntry(
                    name=service.name,
                    version=service.docs.version,
                    title=service.name,
                    docs=service.docs.docs_url,
                    spec=service.docs.spec_url,
                    origin=where,
                )
            )
    return entries, warnings, environment_status(environment, env)


def state_client_from(environ: Mapping[str, str]) -> object:
    """A state client from AUTO_STATE_URL and friends (the same variables ``auto-deploy`` reads)."""
    from deployer.state.client import StateClient

    try:
        return StateClient.from_env(environ)
    except ToolkitError as exc:
        raise ConfigError(str(exc)) from None


def resolve_manifest(
    manifest_path: str | None, environment: str | None, environ: Mapping[str, str]
) -> tuple[Manifest, list[str]]:
    """What to build: the manifest, an environment's live services, or both (the manifest's services first).

    Returns the manifest and the warnings about the environment's services that are not documented.
    """
    if not manifest_path and not environment:
        raise ConfigError("nothing to build: pass --manifest services.yml or --from-env ENV")
    manifest = load_manifest(manifest_path) if manifest_path else None
    if not environment:
        assert manifest is not None
        return manifest, []
    client = state_client_from(environ)
    entries, notes, status = read_environment(environment, client)
    if not entries:
        raise ConfigError(f"environment {environment}: no live service has auto.docs.* labels; nothing to document")
    services = [*(manifest.services if manifest else ()), *entries]
    check_unique(services, manifest_path or f"environment {environment}")
    base = manifest or Manifest(f"{environment} services", "", None, "/", (), (), f"environment {environment}")
    extra = {**base.extra, ENVIRONMENT_EXTRA: status}
    return replace(base, services=tuple(services), extra=extra), notes


def live_status(manifest: Manifest) -> EnvironmentStatus | None:
    """The environment :func:`resolve_manifest` read for ``--from-env``, or None (a manifest alone)."""
    status = manifest.extra.get(ENVIRONMENT_EXTRA) if isinstance(manifest.extra, Mapping) else None
    return status if isinstance(status, EnvironmentStatus) else None
