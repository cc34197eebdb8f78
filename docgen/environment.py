"""``--from-env ENV``: the services running in an environment, as the environment-state service records them.

The deployer records, for every service whose compose file carries ``auto.docs.*`` labels, where the
service publishes its spec and docs. The live colour's services are the ones documented, alone or added to
a manifest's (:func:`resolve_manifest`).

A service whose name or docs version is not a whole, clean URL segment (``"web\\n"``) costs that service its
page, never the portal: it is left out of the answer with a one-line warning before the state client checks
the rest (the client refuses a whole environment for one such name, rightly for ``auto-deploy``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from autocore.errors import EXIT_BAD_INPUT, ToolkitError
from autocore.names import has_control
from docgen.errors import ConfigError, UnavailableError
from docgen.manifest import Manifest, ServiceEntry, check_unique, load_manifest
from docgen.names import RESERVED_NAMES, valid_name, valid_version


def _unusable(stack: Any, service: Any) -> str | None:
    """Why docgen cannot document this service of an answer (a one-line warning), or None."""
    if not isinstance(service, dict):
        return None  # not a service at all: the client's own check says so
    name, docs = service.get("name"), service.get("docs")
    # Quoted: a newline in a name must not look like an ordinary name once the warning is put on one line.
    where = f"{stack if isinstance(stack, str) and not has_control(stack) else repr(stack)}/{name!r}"
    if not valid_name(name) or name in RESERVED_NAMES:
        if not isinstance(docs, dict):
            return f"{where}: no auto.docs.* labels, not documented"
        return f"{where}: not usable as a URL segment, skipped"
    version = docs.get("version") if isinstance(docs, dict) else None
    if isinstance(docs, dict) and not valid_version(version):
        return f"{where}: version {version!r} not usable as a URL segment, skipped"
    return None


def without_unusable_services(data: Any) -> tuple[Any, list[str]]:
    """The state service's Environment answer without the services docgen cannot document, and a warning for
    each of the live colour's (the other colour is never documented: its services are dropped without a word)."""
    if not isinstance(data, dict) or not isinstance(data.get("clusters"), dict):
        return data, []  # not an environment: the client's own check says what is wrong
    warnings: list[str] = []
    clusters = dict(data["clusters"])
    for colour, cluster in clusters.items():
        if not isinstance(cluster, dict) or not isinstance(cluster.get("stacks"), list):
            continue
        stacks = []
        for stack in cluster["stacks"]:
            if isinstance(stack, dict) and isinstance(stack.get("services"), list):
                kept = []
                for service in stack["services"]:
                    why = _unusable(stack.get("name"), service)
                    if why is None:
                        kept.append(service)
                    elif colour == data.get("live_colour"):
                        warnings.append(why)
                stack = {**stack, "services": kept}
            stacks.append(stack)
        clusters[colour] = {**cluster, "stacks": stacks}
    return {**data, "clusters": clusters}, warnings


def _live_environment(environment: str, client: Any) -> tuple[Any, list[str]]:
    """The environment as the client checks it, but with the services docgen cannot document left out first."""
    if not valid_name(environment):
        raise ConfigError(f"invalid environment name {environment!r}: use lowercase letters, digits and '-'")
    call = getattr(client, "_call", None)
    if call is None:  # a client without the state client's transport: only what its own check lets through
        return client.get_environment(environment), []
    from deployer.state.client import parse_environment

    # The same request and the same check as StateClient.get_environment, with the filter in between. The client
    # has no public call for the raw answer: ``_call`` is the request-and-decode get_environment itself uses.
    _, data = call("GET", f"/v1/environments/{environment}", (200,), environment=environment)
    data, warnings = without_unusable_services(data)
    return parse_environment(data, environment), warnings


def entries_from_environment(environment: str, client: object) -> tuple[list[ServiceEntry], list[str]]:
    """The live colour's documented services, and a warning for each running service that has no docs or
    cannot be documented."""
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
            # Checked again on what the client made of the answer (a client without the filter above).
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
