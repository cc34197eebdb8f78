"""``--from-env ENV``: the services running in an environment, as the environment-state service records them.

The deployer records, for every service whose compose file carries ``auto.docs.*`` labels, where the
service publishes its spec and docs. The live colour's services are the ones documented, alone or added to
a manifest's (:func:`resolve_manifest`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from autocore.errors import EXIT_BAD_INPUT, ToolkitError
from docgen.errors import ConfigError, UnavailableError
from docgen.manifest import Manifest, ServiceEntry, check_unique, load_manifest
from docgen.names import SERVICE_NAME


def entries_from_environment(environment: str, client: object) -> tuple[list[ServiceEntry], list[str]]:
    """The live colour's documented services, and a warning for each running service that has no docs."""
    try:
        env = client.get_environment(environment)  # type: ignore[attr-defined]
    except ToolkitError as exc:
        if exc.exit_code == EXIT_BAD_INPUT:  # an unknown environment, a bad setting
            raise ConfigError(str(exc)) from None
        raise UnavailableError(str(exc)) from None  # unavailable, refused, an answer that breaks the contract
    live = env.clusters[env.live_colour]
    entries: list[ServiceEntry] = []
    warnings: list[str] = []
    seen: dict[str, str] = {}
    for stack in live.stacks:
        for service in stack.services:
            where = f"environment {environment} ({env.live_colour}), stack {stack.name}"
            if service.docs is None:
                warnings.append(f"{stack.name}/{service.name}: no auto.docs.* labels, not documented")
                continue
            if not SERVICE_NAME.fullmatch(service.name):
                warnings.append(f"{stack.name}/{service.name}: not usable as a URL segment, skipped")
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
    return entries, warnings


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
    entries, notes = entries_from_environment(environment, client)
    if not entries:
        raise ConfigError(f"environment {environment}: no live service has auto.docs.* labels; nothing to document")
    services = [*(manifest.services if manifest else ()), *entries]
    check_unique(services, manifest_path or f"environment {environment}")
    base = manifest or Manifest(f"{environment} services", "", None, "/", (), (), f"environment {environment}")
    return replace(base, services=tuple(services)), notes
