"""Merge many services' OpenAPI specs into one OpenAPI 3.1.0 document for the portal.

Two pure steps (nothing is read or written, inputs are never mutated and results share nothing with them):

* :func:`fragment` makes one service's part of the portal: its spec converted to OpenAPI 3.1.0 (see
  :mod:`docgen.convert`), its paths routed under ``/api/{name}/{version}``, its components, security schemes,
  webhooks and tags namespaced with the service name, every ``$ref`` rewritten. A fragment is a valid
  OpenAPI 3.1.0 document on its own (the service's API page);
* :func:`combine` joins fragments into the platform's document, renaming operationIds used twice.

References stay whole: every reference of the document (``$ref`` wherever it sits, ``x-`` extensions included,
links' ``operationRef``, discriminator mappings; see :mod:`docgen.merge_refs`) follows what it points to.
Extension sections of ``components`` (``components/x-...``) are namespaced like the other kinds; a root
``x-`` section, an ``x-`` entry of the Paths Object or any other root section that a reference points into
is kept as ``x-{service}.{name}`` (at the root, or under ``paths``). Both steps end with a check that every
local reference resolves (:class:`docgen.merge_refs.DanglingRefError` otherwise).

Specs are expected to be valid (see :mod:`docgen.validate`): malformed parts are carried over, not repaired.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from docgen.convert import OPENAPI_VERSION, to_openapi31
from docgen.merge_refs import RefSite, check_refs, ref_sites, rewrite_sites
from docgen.names import SERVICE_NAME, SERVICE_VERSION, valid_name, valid_version
from docgen.validate import METHODS
from docgen.walk import Walker, is_ref, plain_copy, pointer_tokens, to_pointer, unique_name

_ROUTED_ROOT = frozenset({"paths", "webhooks", "components"})  # root sections whose refs are renamed entry by entry

__all__ = ["COMPONENT_KINDS", "MergeResult", "ServiceSpec", "combine", "fragment", "merge", "to_openapi31"]

COMPONENT_KINDS = (
    "schemas",
    "responses",
    "parameters",
    "examples",
    "requestBodies",
    "headers",
    "securitySchemes",
    "links",
    "callbacks",
    "pathItems",
)

_NOT_COMPONENT_CHAR = re.compile(r"[^A-Za-z0-9.\-_]")  # component names must match ^[a-zA-Z0-9.\-_]+$
_NOT_IDENTIFIER_CHAR = re.compile(r"[^A-Za-z0-9_]")


@dataclass(frozen=True)
class ServiceSpec:
    """One service's validated spec and where the portal routes it."""

    name: str  # matches docgen.names.SERVICE_NAME
    version: str  # e.g. "v1", matches docgen.names.SERVICE_VERSION
    document: Mapping[str, Any]  # a valid Swagger 2.0, OpenAPI 3.0.x or 3.1.x document
    deprecated_aliases: bool = False

    def __post_init__(self) -> None:
        # Both end up in URLs, component names and operationIds: refuse anything else early.
        if not valid_name(self.name):
            raise ValueError(f"service name {self.name!r} does not match {SERVICE_NAME.pattern}")
        if not valid_version(self.version):
            raise ValueError(
                f"version {self.version!r} of service {self.name!r} does not match {SERVICE_VERSION.pattern}"
            )


@dataclass
class MergeResult:
    """The platform's document and the operationIds that :func:`combine` had to rename."""

    document: dict[str, Any]
    renamed_operation_ids: list[tuple[str, str, str]] = field(default_factory=list)  # (service, old, new)


# --------------------------------------------------------------------------- public: fragment


def _namespaced(service: str, names: Any) -> dict[str, str]:
    """``{original: "service.original"}`` with characters a component name cannot hold replaced by ``_``."""
    renames: dict[str, str] = {}
    if not isinstance(names, dict):
        return renames
    taken: set[str] = set()
    for name in names:
        new = unique_name(_NOT_COMPONENT_CHAR.sub("_", f"{service}.{name}"), taken)  # "a b" and "a_b" stay apart
        renames[name] = new
        taken.add(new)
    return renames


def _ref_rewriter(
    renames: Mapping[str, Mapping[str, str]],
    paths: Mapping[str, str],
    webhooks: Mapping[str, str],
    sections: Mapping[str, str] | None = None,
    roots: Mapping[str, str] | None = None,
) -> Callable[[str], str]:
    """Rewrites a local ref into renamed components, routed paths and renamed webhooks, renamed component
    sections (``sections``: a section kept whole under a new key) and moved root sections (``roots``);
    others are kept."""
    sections = sections or {}
    roots = roots or {}

    def rewrite(ref: str) -> str:
        tokens = pointer_tokens(ref)
        if tokens is None:
            return ref  # "#anchor", another document: nothing was renamed there
        if len(tokens) >= 2 and tokens[0] == "components" and tokens[1] in sections:
            tokens[1] = sections[tokens[1]]
        elif len(tokens) >= 3 and tokens[0] == "components" and tokens[2] in renames.get(tokens[1], {}):
            tokens[2] = renames[tokens[1]][tokens[2]]
        elif len(tokens) >= 2 and tokens[0] == "paths" and tokens[1] in paths:
            tokens[1] = paths[tokens[1]]
        elif len(tokens) >= 2 and tokens[0] == "webhooks" and tokens[1] in webhooks:
            tokens[1] = webhooks[tokens[1]]
        elif tokens[0] in roots:
            tokens[0] = roots[tokens[0]]
        else:
            return ref
        return to_pointer(tokens)

    return rewrite


def _extension_key(service: str, key: str, taken: set[str]) -> str:
    """``x-{service}.{name}`` for a section ``x-name`` (or ``name``) that moves into the shared document."""
    name = key[2:] if key.startswith("x-") else key
    new = unique_name(f"x-{service}.{name}", taken)
    taken.add(new)
    return new


def _referenced(sites: Iterable[RefSite]) -> tuple[set[str], set[str]]:
    """(root keys, keys of the Paths Object) that the local refs at ``sites`` point into."""
    roots: set[str] = set()
    path_keys: set[str] = set()
    for site in sites:
        tokens = pointer_tokens(site.holder[site.key])
        if not tokens:
            continue
        roots.add(tokens[0])
        if tokens[0] == "paths" and len(tokens) >= 2:
            path_keys.add(tokens[1])
    return roots, path_keys


def _schema_name(ref: Any) -> str | None:
    """``X`` for ``#/components/schemas/X``, else None."""
    tokens = pointer_tokens(ref) if isinstance(ref, str) else None
    if tokens and len(tokens) == 3 and tokens[:2] == ["components", "schemas"]:
        return tokens[2]
    return None


def _add_implicit_mapping(discriminator: dict[str, Any], names: list[str]) -> None:
    """Spell out that discriminator value ``X`` means schema ``X``: once renamed, the name no longer says so."""
    mapping = discriminator.get("mapping")
    mapping = dict(mapping) if isinstance(mapping, dict) else {}
    mapped = {_schema_name(value) or value for value in mapping.values() if isinstance(value, str)}
    for name in names:
        if name not in mapping and name not in mapped:
            mapping[name] = to_pointer(["components", "schemas", name])
            mapped.add(name)
    if mapping:
        discriminator["mapping"] = mapping


def _complete_discriminator_mappings(doc: dict[str, Any]) -> None:
    """Make every implicit discriminator mapping (value = schema name) explicit, before names change."""

    def from_choices(node: dict[str, Any]) -> dict[str, Any]:
        discriminator = node.get("discriminator")
        if isinstance(discriminator, dict):
            choices = [*(node.get("oneOf") or []), *(node.get("anyOf") or [])]
            names = [_schema_name(choice.get("$ref")) for choice in choices if is_ref(choice)]
            _add_implicit_mapping(discriminator, [name for name in names if name])
        return node

    Walker(schema=from_choices).document(doc)
    schemas = (doc.get("components") or {}).get("schemas")
    if not isinstance(schemas, dict):
        return
    for parent, schema in schemas.items():
        discriminator = schema.get("discriminator") if isinstance(schema, dict) else None
        if not isinstance(discriminator, dict) or schema.get("oneOf") or schema.get("anyOf"):
            continue
        # Inheritance: every schema whose allOf refers to this one is a possible value.
        children = [
            name
            for name, child in schemas.items()
            if isinstance(child, dict)
            and isinstance(child.get("allOf"), list)
            and any(is_ref(part) and _schema_name(part["$ref"]) == parent for part in child["allOf"])
        ]
        _add_implicit_mapping(discriminator, children)


def _resolve_local(doc: Any, ref: str) -> Any:
    node = doc
    for token in pointer_tokens(ref) or []:
        if not isinstance(node, dict) or token not in node:
            return None
        node = node[token]
    return node


def _target_path_item(doc: dict[str, Any], item: Any) -> Any:
    """The path item itself, or the one its local ``$ref`` points to (followed a few times at most)."""
    for _ in range(8):
        if not is_ref(item):
            break
        target = _resolve_local(doc, item["$ref"])
        if not isinstance(target, dict):
            break
        item = target
    return item


def _drop_servers(item: Any) -> None:
    if not isinstance(item, dict):
        return
    item.pop("servers", None)
    for method in METHODS:
        if isinstance(item.get(method), dict):
            item[method].pop("servers", None)


def _operation_ids(doc: dict[str, Any]) -> set[str]:
    found: set[str] = set()

    def collect(op: dict[str, Any], where: str) -> None:
        if isinstance(op.get("operationId"), str):
            found.add(op["operationId"])

    Walker(operation=collect).document(doc)
    return found


def fragment(spec: ServiceSpec) -> dict[str, Any]:
    """One service's part of the portal: a standalone, valid OpenAPI 3.1.0 document holding only this
    service's routed paths, namespaced components, tags, with every $ref rewritten. JSON-serialisable
    (it is cached as JSON and also rendered alone as the service's API page)."""
    doc = to_openapi31(spec.document)
    name, version = spec.name, spec.version
    route = f"/api/{name}/{version}"
    components = doc.get("components") if isinstance(doc.get("components"), dict) else {}
    paths = doc.get("paths") if isinstance(doc.get("paths"), dict) else {}
    webhooks = doc.get("webhooks") if isinstance(doc.get("webhooks"), dict) else {}
    # Extension sections of components: a map is namespaced entry by entry like the other kinds, anything
    # else (a list, a value) is kept whole under its own namespaced key.
    extensions = [kind for kind in components if isinstance(kind, str) and kind.startswith("x-")]
    taken_sections: set[str] = set(components)
    sections = {
        kind: _extension_key(name, kind, taken_sections)
        for kind in extensions
        if not isinstance(components[kind], dict)
    }
    renames = {
        kind: _namespaced(name, components.get(kind))
        for kind in (*COMPONENT_KINDS, *extensions)
        if kind not in sections
    }
    _complete_discriminator_mappings(doc)  # before names change; the mapping values it adds are refs too
    sites = list(ref_sites(doc))  # every reference, found once: read here, rewritten below
    referenced_roots, referenced_paths = _referenced(sites)
    routed = {url: route + url for url in paths if not str(url).startswith("x-")}
    # The Paths Object's own x- extensions are the service's own: dropped, unless a ref points into one.
    taken_paths: set[str] = set()
    path_extensions = {
        url: _extension_key(name, url, taken_paths) for url in paths if url in referenced_paths and url not in routed
    }
    hooks = {key: f"{name}.{key}" for key in webhooks}
    # Other root sections (x- extensions, info, tags...) are not carried over, unless a ref points into one:
    # then a copy is kept at the root as x-{service}.{name}.
    taken_roots: set[str] = {"x-tagGroups"}
    roots = {
        key: _extension_key(name, key, taken_roots)
        for key in doc
        if key in referenced_roots and key not in _ROUTED_ROOT
    }
    schema_names = renames["schemas"]
    scheme_names = renames["securitySchemes"]
    root_security = doc.get("security") if isinstance(doc.get("security"), list) else None
    used_tags: list[str] = []

    def operation(op: dict[str, Any], where: str) -> None:
        tags = op.get("tags")
        if isinstance(tags, list) and tags:
            op["tags"] = [f"{name}: {tag}" for tag in tags]
        elif where != "callbacks":  # a callback is shown inside its operation, not in the navigation
            op["tags"] = [name]
        used_tags.extend(tag for tag in op.get("tags", []) if tag not in used_tags)
        # The merged root has no security: the service's root requirement moves into its operations.
        if "security" not in op and root_security and where != "callbacks":
            op["security"] = copy.deepcopy(root_security)
        if isinstance(op.get("security"), list):
            op["security"] = [
                {scheme_names.get(key, key): scopes for key, scopes in requirement.items()}
                if isinstance(requirement, dict)
                else requirement
                for requirement in op["security"]
            ]

    rewrite = _ref_rewriter(renames, {**routed, **path_extensions}, hooks, sections, roots)

    Walker(operation=operation).document(doc)
    # Every reference, wherever it is (the same walk as the final check), each one rewritten once.
    rewrite_sites(sites, rewrite, lambda value: _mapping_target(value, schema_names, rewrite))
    moved_roots = {new: copy.deepcopy(doc[key]) for key, new in roots.items()}

    out_components: dict[str, Any] = {
        kind: {renames[kind][key]: value for key, value in components[kind].items()}
        for kind in (*COMPONENT_KINDS, *extensions)
        if kind in renames and isinstance(components.get(kind), dict) and components[kind]
    }
    out_components.update({sections[kind]: components[kind] for kind in extensions if kind in sections})
    out: dict[str, Any] = {"openapi": OPENAPI_VERSION, "info": _fragment_info(doc, spec)}
    if "externalDocs" in doc:
        out["externalDocs"] = doc["externalDocs"]
    out["tags"] = []  # filled below, once aliases exist
    out["paths"] = {}
    if webhooks:
        out["webhooks"] = {hooks[key]: item for key, item in webhooks.items()}
    if out_components:
        out["components"] = out_components

    for url, item in paths.items():
        if url in routed:
            out["paths"][routed[url]] = item
            _drop_servers(_target_path_item(out, item))  # the gateway route replaces every server
        elif url in path_extensions:
            out["paths"][path_extensions[url]] = item
    if spec.deprecated_aliases:
        _add_aliases(out, spec, routed)

    out["tags"] = _fragment_tags(doc.get("tags"), used_tags, name)
    out["x-tagGroups"] = [{"name": name, "tags": [tag["name"] for tag in out["tags"]]}]
    out.update(moved_roots)
    check_refs(out, f"service {name!r}")
    return out


def _mapping_target(value: Any, schema_names: Mapping[str, str], rewrite: Callable[[str], str]) -> Any:
    """A discriminator mapping value after renaming; a bare schema name becomes an explicit ref."""
    if not isinstance(value, str):
        return value
    if value.startswith("#"):
        return rewrite(value)
    if value in schema_names:
        return to_pointer(["components", "schemas", schema_names[value]])
    return value


def _fragment_info(doc: dict[str, Any], spec: ServiceSpec) -> dict[str, Any]:
    info = doc.get("info") if isinstance(doc.get("info"), dict) else {}
    out: dict[str, Any] = {"title": info.get("title", spec.name), "version": str(info.get("version", spec.version))}
    if "description" in info:
        out["description"] = info["description"]
    out["x-service"] = {"name": spec.name, "version": spec.version, "route": f"/api/{spec.name}/{spec.version}"}
    return out


def _fragment_tags(declared: Any, used: list[str], service: str) -> list[dict[str, Any]]:
    """The service's root tags renamed (descriptions kept), then every tag an operation uses that is missing."""
    tags: list[dict[str, Any]] = []
    seen: set[str] = set()
    for tag in declared if isinstance(declared, list) else []:
        if isinstance(tag, dict) and isinstance(tag.get("name"), str):
            renamed = {**tag, "name": f"{service}: {tag['name']}"}
            if renamed["name"] not in seen:
                tags.append(renamed)
                seen.add(renamed["name"])
    tags.extend({"name": tag} for tag in used if tag not in seen)
    return tags


def _add_aliases(out: dict[str, Any], spec: ServiceSpec, routed: Mapping[str, str]) -> None:
    """The deprecated ``/api/{version}/{name}{P}`` copy of every routed path."""
    if spec.name == spec.version:
        raise ValueError(f"service {spec.name!r}: deprecated aliases need a version that differs from the name")
    taken = _operation_ids(out)

    def deprecate(op: dict[str, Any], where: str) -> None:
        if where == "paths":
            op["deprecated"] = True
        if isinstance(op.get("operationId"), str):
            op["operationId"] = unique_name(f"{op['operationId']}_deprecated", taken)
            taken.add(op["operationId"])

    aliases: dict[str, Any] = {}
    for url, primary in routed.items():
        alias = copy.deepcopy(_target_path_item(out, out["paths"][primary]))
        alias.pop("$ref", None)  # copied inline: the alias must not rename the shared component's operations
        Walker(operation=deprecate).path_item(alias, "paths")
        alias["x-alias-of"] = primary
        aliases[f"/api/{spec.version}/{spec.name}{url}"] = alias
    out["paths"].update(aliases)


# --------------------------------------------------------------------------- public: combine


def _fragment_service(part: Mapping[str, Any]) -> str:
    service = (part.get("info") or {}).get("x-service") or {}
    name = service.get("name") if isinstance(service, dict) else None
    if not isinstance(name, str) or not name:
        raise ValueError("not a fragment: no info.x-service.name (make fragments with docgen.merge.fragment)")
    return name


def _merge_map(target: dict[str, Any], items: Any, what: str, service: str, owners: dict[tuple[str, str], str]) -> None:
    if not isinstance(items, dict):
        return
    for key, value in items.items():
        if key in target:
            other = owners[(what, key)]
            raise ValueError(f"{what} {key!r} of service {service!r} is already defined by service {other!r}")
        target[key] = value
        owners[(what, key)] = service


def combine(
    fragments: Sequence[dict[str, Any]],
    *,
    title: str,
    version: str,
    description: str = "",
    servers: Sequence[Mapping[str, Any]] | None = None,
) -> MergeResult:
    """Combine fragments (in the given order) into the platform's single OpenAPI 3.1.0 document.

    An operationId already used (by an earlier fragment, or earlier in the same one) is renamed
    ``{service}_{operationId}`` (characters other than letters, digits and ``_`` become ``_``; ``_2``... is
    appended while still taken) and the fragment's links to it follow. Two fragments defining the same
    path, webhook, component or tag raise ``ValueError``.
    """
    info: dict[str, Any] = {"title": title, "version": version}
    if description:
        info["description"] = description
    doc: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": info,
        "servers": plain_copy(list(servers)) if servers is not None else [{"url": "/"}],
        "tags": [],
        "paths": {},
    }
    webhooks: dict[str, Any] = {}
    components: dict[str, dict[str, Any]] = {}
    groups: list[Any] = []
    whole_sections: dict[str, Any] = {}
    root_extensions: dict[str, Any] = {}
    owners: dict[tuple[str, str], str] = {}
    tag_owners: dict[str, str] = {}
    taken: set[str] = set()
    renamed: list[tuple[str, str, str]] = []

    for original in fragments:
        part = plain_copy(original)
        service = _fragment_service(part)
        renames: dict[str, str] = {}

        def assign(op: dict[str, Any], where: str, service: str = service, renames: dict[str, str] = renames) -> None:
            old = op.get("operationId")
            if not isinstance(old, str):
                return
            if old in taken:
                new = unique_name(_NOT_IDENTIFIER_CHAR.sub("_", f"{service}_{old}"), taken)
                op["operationId"] = new
                renames.setdefault(old, new)
                renamed.append((service, old, new))
            taken.add(op["operationId"])

        Walker(operation=assign).document(part)
        if renames:

            def follow(link: dict[str, Any], renames: dict[str, str] = renames) -> None:
                if link.get("operationId") in renames:
                    link["operationId"] = renames[link["operationId"]]

            Walker(link=follow).document(part)

        _merge_map(doc["paths"], part.get("paths"), "path", service, owners)
        _merge_map(webhooks, part.get("webhooks"), "webhook", service, owners)
        for kind, items in (part.get("components") or {}).items():
            if isinstance(items, dict):
                _merge_map(components.setdefault(kind, {}), items, f"component {kind}", service, owners)
            else:  # an extension section kept whole (already namespaced by fragment)
                _merge_map(whole_sections, {kind: items}, "component section", service, owners)
        extensions = {key: value for key, value in part.items() if key.startswith("x-") and key != "x-tagGroups"}
        _merge_map(root_extensions, extensions, "root section", service, owners)
        for tag in part.get("tags") or []:
            tag_name = tag.get("name") if isinstance(tag, dict) else None
            if tag_name in tag_owners:
                raise ValueError(
                    f"tag {tag_name!r} of service {service!r} is already defined by service {tag_owners[tag_name]!r}"
                )
            tag_owners[str(tag_name)] = service
            doc["tags"].append(tag)
        groups.extend(part.get("x-tagGroups") or [])

    if webhooks:
        doc["webhooks"] = webhooks
    components = {kind: items for kind, items in components.items() if items}
    components.update(whole_sections)
    if components:
        doc["components"] = {kind: components[kind] for kind in sorted(components, key=_kind_order)}
    doc["x-tagGroups"] = groups
    doc.update(root_extensions)
    check_refs(doc, "merged document")
    return MergeResult(document=doc, renamed_operation_ids=renamed)


def _kind_order(kind: str) -> int:
    return COMPONENT_KINDS.index(kind) if kind in COMPONENT_KINDS else len(COMPONENT_KINDS)


def merge(
    specs: Sequence[ServiceSpec],
    *,
    title: str,
    version: str,
    description: str = "",
    servers: Sequence[Mapping[str, Any]] | None = None,
) -> MergeResult:
    """``combine([fragment(spec) for spec in specs], ...)``: the platform's document from the services' specs."""
    return combine(
        [fragment(spec) for spec in specs], title=title, version=version, description=description, servers=servers
    )
