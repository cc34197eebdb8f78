"""What the portal is built from: a ``services.yml`` manifest, a service's own descriptor, or an environment.

A manifest::

    title: AUTO platform            # optional
    description: ...                # optional, shown on the home page
    guide: guide/                   # optional: a folder of Markdown, the platform guide
    gateway: https://api.example    # optional: the merged spec's server URL (default "/")
    scrub:                          # optional: removed or replaced in published Markdown and specs
      - {name: internal-hosts, pattern: '[a-z0-9.-]+\\.corp\\.example', replace: internal-host}
    allow_paths: [../billing]       # optional: folders (or files) outside this one that may be read
    services:
      - {name: orders, version: v1, docs: orders/docs, spec: orders/openapi.yaml, deprecated_aliases: true}
      - {descriptor: ../billing/auto-service.yml}

A service descriptor (``auto-service.yml`` at the root of a service project, written by the service
template) holds one service entry: ``name``, ``version``, ``title``, ``docs``, ``spec``,
``deprecated_aliases``. Relative paths are relative to the file that names them; ``docs`` and ``spec``
may also be ``https://`` URLs. Everything is checked before anything is read or fetched.

Local paths stay inside the tree of the file that names them (symlinks resolved, so ``..`` or a link cannot
lead out): a manifest's ``docs``, ``spec``, ``descriptor`` and ``guide`` inside the manifest's folder or one of
its ``allow_paths``, a descriptor's ``docs`` and ``spec`` inside the descriptor's folder. Otherwise a manifest
(or descriptor) would publish any file of the build machine: ``spec: /etc/passwd``. A service's ``docs`` or
``spec`` outside is refused for that service only (its reference is quarantined, the others are published);
the reason never says whether the file outside exists.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from autocore.errors import ToolkitError
from autocore.loading import load_yaml, yaml_problem
from docgen.errors import ConfigError
from docgen.names import RESERVED_NAMES, valid_name, valid_version

DESCRIPTOR_NAME = "auto-service.yml"
_SERVICE_KEYS = {"name", "version", "title", "docs", "spec", "deprecated_aliases"}
_MANIFEST_KEYS = {"title", "description", "guide", "gateway", "scrub", "services", "allow_paths"}
# Keys a service's own descriptor may carry for other tools: ``pipeline`` is read by ``auto-pipelines render``.
_DESCRIPTOR_ONLY_KEYS = {"pipeline"}


def _without_descriptor_only_keys(raw: Any) -> Any:
    return {k: v for k, v in raw.items() if k not in _DESCRIPTOR_ONLY_KEYS} if isinstance(raw, dict) else raw


@dataclass(frozen=True)
class ScrubRule:
    """A pattern removed (or replaced) wherever it appears in published text."""

    name: str
    pattern: re.Pattern[str]
    replace: str = ""


@dataclass(frozen=True)
class ServiceEntry:
    """One service of the portal: where its docs and spec are (a local path or an https URL)."""

    name: str
    version: str
    title: str
    docs: str | None
    spec: str | None
    deprecated_aliases: bool = False
    origin: str = ""  # the manifest, descriptor or environment that named it
    # ("docs" or "spec", why): a local path outside the tree its file may read; it is never read, and ``docs`` or
    # ``spec`` then holds the value as written (it is shown in the reason, never resolved on the page).
    refused: tuple[tuple[str, str], ...] = ()

    def refusal(self, kind: str) -> str | None:
        """Why ``docs`` or ``spec`` must not be read, or None."""
        return next((why for what, why in self.refused if what == kind), None)


@dataclass(frozen=True)
class Manifest:
    """The whole portal's input."""

    title: str
    description: str
    guide: Path | None
    gateway: str
    scrub: tuple[ScrubRule, ...]
    services: tuple[ServiceEntry, ...]
    source: str
    extra: Mapping[str, Any] = field(default_factory=dict)


def _read_yaml(path: Path, what: str, shown: str | None = None) -> Any:
    """The YAML at ``path``; messages name it ``shown`` (as the manifest wrote it), else ``path``."""
    name = shown or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{what} {name} does not exist: check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {what} {name}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        return load_yaml(text, name, loader=yaml.SafeLoader)
    except ToolkitError as exc:  # past a budget
        raise ConfigError(str(exc)) from None
    except yaml.YAMLError as exc:
        raise ConfigError(yaml_problem(exc, name)) from None


def _text(value: Any, where: str, key: str, *, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: '{key}' must be a non-empty string")
    return value.strip()


@dataclass(frozen=True)
class Roots:
    """Where a manifest's or descriptor's local paths may lead: its own folder and what its owner allows."""

    base: Path  # the folder of the file: relative paths start here
    allowed: tuple[Path, ...]  # resolved: the folder itself, then allow_paths
    owner: str  # the file, as the messages name it

    def contain(self, value: str) -> Path | None:
        """``value`` resolved (symlinks followed), or None when it leads outside every allowed root."""
        try:
            resolved = (self.base / value).resolve()
        except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL: no path that can be read
            return None
        if any(resolved == root or root in resolved.parents for root in self.allowed):
            return resolved
        return None

    def outside(self, value: str) -> str:
        """The one-line reason: the same whether or not something exists there (it is never looked at)."""
        allowance = " or its allow_paths" if len(self.allowed) > 1 else ""
        return f"{value!r} is outside the folder of {self.owner}{allowance}; local paths must stay inside it"


def roots_of(path: Path, owner: str, allow: Any = None) -> Roots:
    """The roots of the file at ``path``: its folder, plus ``allow`` (a manifest's ``allow_paths``) relative to it."""
    base = path.resolve().parent
    if allow is None:
        allow = []
    if not isinstance(allow, list) or not all(isinstance(a, str) and a.strip() for a in allow):
        raise ConfigError(f"{owner}: 'allow_paths' must be a list of paths (folders or files) relative to it")
    extra = []
    for value in allow:
        if "://" in value:
            raise ConfigError(f"{owner}: allow_paths lists local paths, not URLs: {value!r}")
        try:
            extra.append((base / value.strip()).resolve())
        except (OSError, RuntimeError, ValueError):
            raise ConfigError(f"{owner}: allow_paths entry {value!r} cannot be resolved") from None
    # An allowed root that does not exist allows nothing that exists: it is not an error (a copied manifest).
    return Roots(base, (base, *extra), owner)


def _location(value: str | None, roots: Roots) -> tuple[str | None, str | None]:
    """(location, refusal): a URL stays a URL (https only); a path is resolved against the file's folder and
    must stay inside its roots, else it is kept as written with the reason it is refused."""
    if value is None:
        return None, None
    if "://" in value:
        if not value.startswith("https://"):
            raise ConfigError(f"{value!r}: only https:// URLs are fetched; use https or a local path")
        return value, None
    resolved = roots.contain(value)
    if resolved is None:
        return value, roots.outside(value)
    return str(resolved), None


def service_entry(raw: Any, where: str, roots: Roots, origin: str) -> ServiceEntry:
    """Check one service entry (from a manifest or a descriptor) and resolve its paths inside ``roots``."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: a service must be a mapping with name, version, docs and spec")
    unknown = sorted(set(raw) - _SERVICE_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(_SERVICE_KEYS))})")
    name = _text(raw.get("name"), where, "name")
    assert name is not None
    if not valid_name(name):
        raise ConfigError(f"{where}: name {name!r} must be lower-case letters, digits and '-' (it is a URL segment)")
    if name in RESERVED_NAMES:
        raise ConfigError(f"{where}: name {name!r} is reserved by the portal (its API landing page); rename it")
    version = str(raw.get("version")) if isinstance(raw.get("version"), int | float) else raw.get("version")
    version = _text(version, where, "version")
    assert version is not None
    if not valid_version(version):
        raise ConfigError(f"{where}: version {version!r} must look like v1 or 2.0 (it is a URL segment)")
    docs, docs_refused = _location(_text(raw.get("docs"), where, "docs", required=False), roots)
    spec, spec_refused = _location(_text(raw.get("spec"), where, "spec", required=False), roots)
    refused = tuple((kind, why) for kind, why in (("docs", docs_refused), ("spec", spec_refused)) if why)
    if docs is None and spec is None:
        raise ConfigError(f"{where}: service {name} has neither docs nor spec: give at least one")
    aliases = raw.get("deprecated_aliases", False)
    if not isinstance(aliases, bool):
        raise ConfigError(f"{where}: deprecated_aliases must be true or false")
    title = _text(raw.get("title", name), where, "title")
    assert title is not None
    return ServiceEntry(name, version, title, docs, spec, aliases, origin, refused)


def load_descriptor(path: str | Path, *, shown: str | Path | None = None) -> ServiceEntry:
    """A service project's own ``auto-service.yml``: its docs and spec stay inside its own folder.

    ``shown``: how messages and the portal name it (a manifest reads it by its resolved path).
    """
    path = Path(path)
    where = str(shown if shown is not None else path)
    raw = _without_descriptor_only_keys(_read_yaml(path, "service descriptor", where))
    origin = os.path.normpath(where)
    return service_entry(raw, where, roots_of(path, origin), origin)


def _scrub_rules(raw: Any, where: str) -> tuple[ScrubRule, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: 'scrub' must be a list of {{name, pattern, replace}}")
    rules = []
    for index, item in enumerate(raw):
        at = f"{where}: scrub[{index}]"
        if not isinstance(item, dict) or set(item) - {"name", "pattern", "replace"}:
            raise ConfigError(f"{at} must be a mapping with name, pattern and optional replace")
        name = _text(item.get("name"), at, "name")
        pattern = _text(item.get("pattern"), at, "pattern")
        replace = item.get("replace", "")
        if not isinstance(replace, str):
            raise ConfigError(f"{at}: 'replace' must be a string")
        try:
            compiled = re.compile(pattern)  # type: ignore[arg-type]
        except re.error as exc:
            raise ConfigError(f"{at}: pattern is not a valid regular expression: {exc}") from None
        if compiled.search(""):
            raise ConfigError(f"{at}: pattern matches the empty string; make it match something")
        rules.append(ScrubRule(name, compiled, replace))  # type: ignore[arg-type]
    return tuple(rules)


def load_manifest(path: str | Path) -> Manifest:
    """Read and check ``services.yml`` (or a single service's ``auto-service.yml``)."""
    path = Path(path)
    raw = _read_yaml(path, "manifest")
    where = str(path)
    if isinstance(raw, dict) and "services" not in raw and "name" in raw:
        # a service descriptor: a portal of one service
        entry = service_entry(_without_descriptor_only_keys(raw), where, roots_of(path, where), where)
        return Manifest(entry.title, "", None, "/", (), (entry,), where)
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: a manifest is a mapping with a 'services' list")
    unknown = sorted(set(raw) - _MANIFEST_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(_MANIFEST_KEYS))})")
    roots = roots_of(path, where, raw.get("allow_paths"))
    services_raw = raw.get("services")
    if not isinstance(services_raw, list) or not services_raw:
        raise ConfigError(f"{where}: 'services' must be a non-empty list")
    services: list[ServiceEntry] = []
    for index, item in enumerate(services_raw):
        at = f"{where}: services[{index}]"
        if isinstance(item, dict) and "descriptor" in item:
            if set(item) != {"descriptor"}:
                raise ConfigError(f"{at}: an entry with 'descriptor' takes no other key")
            descriptor = _text(item["descriptor"], at, "descriptor")
            assert descriptor is not None
            # Checked before it is read: whether a file outside exists, or what it holds, is never told.
            resolved = roots.contain(descriptor)
            if resolved is None:
                raise ConfigError(f"{at}: descriptor {roots.outside(descriptor)}")
            services.append(load_descriptor(resolved, shown=path.parent / descriptor))
        else:
            services.append(service_entry(item, at, roots, where))
    check_unique(services, where)
    guide = _text(raw.get("guide"), where, "guide", required=False)
    guide_path = roots.contain(guide) if guide else None
    if guide and guide_path is None:
        raise ConfigError(f"{where}: guide {roots.outside(guide)}")
    if guide_path is not None and not guide_path.is_dir():
        raise ConfigError(f"{where}: guide folder {guide_path} does not exist")
    gateway = _text(raw.get("gateway", "/"), where, "gateway") or "/"
    if gateway != "/" and not re.fullmatch(r"(https://[^\s]+|/[^\s]*)", gateway):
        raise ConfigError(f"{where}: gateway must be an https:// URL or a path starting with '/'")
    return Manifest(
        title=_text(raw.get("title", "AUTO platform"), where, "title") or "",
        description=_text(raw.get("description"), where, "description", required=False) or "",
        guide=guide_path,
        gateway=gateway,
        scrub=_scrub_rules(raw.get("scrub"), where),
        services=tuple(services),
        source=where,
    )


def check_unique(services: list[ServiceEntry], where: str) -> None:
    """Two services with one name would publish over each other's route and pages."""
    seen: dict[str, str] = {}
    for entry in services:
        if entry.name in seen:
            raise ConfigError(
                f"{where}: service {entry.name!r} is listed twice ({seen[entry.name]} and {entry.origin}); keep one"
            )
        seen[entry.name] = entry.origin
