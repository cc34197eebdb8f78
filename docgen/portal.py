"""Build the portal in stages: read → validate (quarantine the broken) → merge → render → publish.

Each service's spec work (parse, validate, scrub, convert and route into its fragment of the merged
reference) is keyed by a content hash and cached, and runs in parallel worker processes on a miss,
so a rebuild after one service changed validates only that service. Nothing is written to the output
until everything before it succeeded; the site itself is published by a directory swap.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from autocore.files import write_atomic
from autocore.issues import SEVERITY_ERROR, Issue
from docgen import yamlout
from docgen.errors import ConfigError
from docgen.manifest import Manifest, ScrubRule, ServiceEntry
from docgen.scrub import Removal, scrub_markdown, scrub_spec
from docgen.sources import Fetcher, ServiceSource, docs_from_folder, read_all

# Bump when what a cached entry holds changes meaning (validation rules, merge output).
CACHE_FORMAT = "docgen-cache-4"
MAX_REASONS = 5


def _digest(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()


@dataclass
class ServiceResult:
    """Everything the build learned about one service."""

    entry: ServiceEntry
    status: str = "published"  # published | quarantined | docs-only
    spec_version: str | None = None
    issues: list[Issue] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    removals: list[Removal] = field(default_factory=list)
    _fragment: dict[str, Any] | None = None
    # A cached fragment is read only when it is needed (a merge that missed its cache, the site's API page).
    fragment_source: Callable[[], dict[str, Any] | None] | None = field(default=None, repr=False)
    docs: dict[str, bytes] = field(default_factory=dict)
    cached: bool = False
    key: str = ""

    @property
    def fragment(self) -> dict[str, Any] | None:
        """This service's routed, namespaced part of the merged reference (None unless published)."""
        if self._fragment is None and self.fragment_source is not None:
            self._fragment, self.fragment_source = self.fragment_source(), None
        return self._fragment

    @property
    def reasons(self) -> list[str]:
        """Why the API reference is missing, one line each (shown on the site)."""
        lines = list(self.problems)
        errors = [i for i in self.issues if i.severity == SEVERITY_ERROR]
        if errors:
            lines.append(f"the spec has {len(errors)} validation error(s):")
            lines += [f"{i.path}: {i.message} [{i.rule}]" for i in errors[:MAX_REASONS]]
            if len(errors) > MAX_REASONS:
                lines.append(f"... and {len(errors) - MAX_REASONS} more (see the JSON report)")
        return lines

    def as_dict(self) -> dict[str, Any]:
        e = self.entry
        return {
            "name": e.name,
            "version": e.version,
            "title": e.title,
            "origin": e.origin,
            "status": self.status,
            "spec_version": self.spec_version,
            "cached": self.cached,
            "problems": self.problems,
            "issues": [i.as_dict() for i in self.issues],
            "warnings": self.warnings,
            "scrubbed": [r.as_dict() for r in self.removals],
        }


# --------------------------------------------------------------------------- per-service spec work


def spec_key(entry: ServiceEntry, spec: bytes, rules: Sequence[ScrubRule]) -> str:
    """The cache key of one service's spec work: everything its result depends on."""
    rules_id = json.dumps([(r.name, r.pattern.pattern, r.replace) for r in rules])
    return _digest(CACHE_FORMAT, entry.name, entry.version, str(entry.deprecated_aliases), rules_id, spec)


def process_spec(
    name: str, version: str, aliases: bool, spec: bytes, spec_name: str, rules: Sequence[ScrubRule]
) -> dict[str, Any]:
    """Parse, validate, scrub and route one spec; a JSON-ready dict (cached: the fragment apart from the rest)."""
    from docgen.merge import ServiceSpec, fragment  # in the worker: keep the parent's start-up light
    from docgen.merge_refs import DanglingRefError
    from docgen.validate import _validate, parse_spec

    try:
        document = parse_spec(spec, spec_name or "openapi.json")
    except ConfigError as exc:
        return {"version": None, "issues": [], "problems": [f"spec not readable: {exc}"], "fragment": None}
    spec_version, issues = _validate(document, name, spec_name)
    result: dict[str, Any] = {
        "version": spec_version,
        "issues": [i.as_dict() for i in issues],
        "problems": [],
        "fragment": None,
        "removals": [],
    }
    if not any(i.severity == SEVERITY_ERROR for i in issues):
        scrubbed, removals = scrub_spec(name, document, rules)
        result["removals"] = [r.as_dict() for r in removals]
        try:
            result["fragment"] = fragment(ServiceSpec(name, version, scrubbed, aliases))
        except DanglingRefError as exc:  # a $ref the validator cannot see (in an x- field, a mapping) names nothing
            result["problems"].append(f"spec has dangling $ref(s): {exc}")
        except Exception as exc:  # noqa: BLE001 - one spec the converter cannot handle is quarantined, not fatal
            result["problems"].append(f"spec could not be converted: {type(exc).__name__}: {exc}")
    return result


def _process_args(source: ServiceSource, rules: Sequence[ScrubRule]) -> tuple[Any, ...]:
    e = source.entry
    return (e.name, e.version, e.deprecated_aliases, source.spec, source.spec_name, tuple(rules))


def _process_star(args: tuple[Any, ...]) -> dict[str, Any]:
    return process_spec(*args)


def _warm_up() -> None:
    """Import the validator and converter and compile the OpenAPI JSON Schemas once, in the parent
    (by validating a tiny spec of each version), so that forked workers inherit them."""
    import docgen.merge  # noqa: F401
    from docgen.validate import _validate

    schema = {"type": "object", "properties": {"a": {"type": "string", "default": "x"}}}
    response = {"200": {"description": "ok"}}
    tiny = [
        {"swagger": "2.0", "info": {"title": "t", "version": "1"}, "paths": {}, "definitions": {"A": schema}},
        {"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": {"/": {"get": {"responses": response}}}},
        {"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "components": {"schemas": {"A": schema}}},
    ]
    for document in tiny:
        _validate(document, "warm-up", "warm-up")


class Cache:
    """Content-addressed JSON files under one folder; a corrupt or unreadable entry is a miss."""

    def __init__(self, root: Path | None) -> None:
        self.root = root

    def get(self, kind: str, key: str) -> Any:
        if self.root is None:
            return None
        try:
            return json.loads((self.root / kind / f"{key}.json").read_bytes())
        except (OSError, ValueError):
            return None

    def has(self, kind: str, key: str) -> bool:
        return self.root is not None and (self.root / kind / f"{key}.json").is_file()

    def put(self, kind: str, key: str, value: Any) -> None:
        self.put_bytes(kind, f"{key}.json", json.dumps(value, separators=(",", ":")).encode())

    def get_bytes(self, kind: str, name: str) -> bytes | None:
        if self.root is None:
            return None
        try:
            return (self.root / kind / name).read_bytes()
        except OSError:
            return None

    def put_bytes(self, kind: str, name: str, data: bytes) -> None:
        if self.root is None:
            return
        write_atomic(self.root / kind / name, data)


def process_specs(
    sources: Sequence[ServiceSource], rules: Sequence[ScrubRule], cache: Cache, jobs: int
) -> list[ServiceResult]:
    """Validate and route every service's spec, from the cache where the content is unchanged."""
    results = [ServiceResult(s.entry, problems=list(s.problems)) for s in sources]
    todo: list[int] = []
    for index, source in enumerate(sources):
        result = results[index]
        if source.spec is None:
            result.status = "docs-only" if source.entry.spec is None else "quarantined"
            continue
        result.key = spec_key(source.entry, source.spec, rules)
        cached = cache.get("specs", result.key)
        if cached is not None and (not cached.get("published") or cache.has("fragments", result.key)):
            _apply(result, cached)
            result.fragment_source = partial(cache.get, "fragments", result.key)
            result.cached = True
        else:
            todo.append(index)
    # Largest first: the long ones start early and the small ones fill the gaps (the cold run's wall time).
    todo.sort(key=lambda i: -len(sources[i].spec or b""))
    args = [_process_args(sources[i], rules) for i in todo]
    if len(todo) > 1 and jobs > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        _warm_up()  # forked workers inherit the imports and compiled schemas instead of each paying for them
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=context) as pool:
            outputs = list(pool.map(_process_star, args, chunksize=1))
    else:
        outputs = [_process_star(a) for a in args]
    for index, output in zip(todo, outputs, strict=True):
        fragment = output.pop("fragment")
        output["published"] = fragment is not None
        if fragment is not None:
            cache.put("fragments", results[index].key, fragment)
        cache.put("specs", results[index].key, output)  # after the fragment: a meta entry implies its fragment
        _apply(results[index], output)
        results[index]._fragment = fragment
    return results


def _apply(result: ServiceResult, output: dict[str, Any]) -> None:
    result.spec_version = output["version"]
    result.issues = [Issue(**i) for i in output["issues"]]
    result.problems += output["problems"]
    result.removals = [Removal(**r) for r in output.get("removals", [])]
    result.warnings += [str(i) for i in result.issues if i.severity != SEVERITY_ERROR]
    if not output["published"]:
        result.status = "quarantined"


# --------------------------------------------------------------------------- the whole portal


class MergedDocument:
    """The merged reference, held by its cache key: on a warm run nothing reads (or re-serialises) the document
    unless something needs the document itself; ``merge`` writes the serialised bytes kept from the last run."""

    def __init__(
        self,
        key: str,
        cache: Cache,
        operations: int,
        document: dict[str, Any] | None,
        rebuild: Callable[[], dict[str, Any]],
    ) -> None:
        self.key = key
        self.operations = operations
        self._cache = cache
        self._document = document
        self._rebuild = rebuild

    def document(self) -> dict[str, Any]:
        if self._document is None:
            cached = self._cache.get("merged", self.key)
            self._document = cached["document"] if isinstance(cached, dict) else self._rebuild()
        return self._document

    def serialised(self, suffix: str) -> bytes:
        """The document as ``dump_spec`` writes it for a file ending in ``suffix`` (cached by key and suffix)."""
        name = f"{self.key}{suffix}"
        data = self._cache.get_bytes("rendered", name)
        if data is None:
            data = dump_spec(self.document(), suffix)
            self._cache.put_bytes("rendered", name, data)
        return data


@dataclass
class PortalBuild:
    """The outcome of a build (or of a merge only)."""

    manifest: Manifest
    services: list[ServiceResult]
    merged_document: MergedDocument
    warnings: list[str] = field(default_factory=list)
    site: Any = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def merged(self) -> dict[str, Any]:
        """The platform's one OpenAPI 3.1 document."""
        return self.merged_document.document()

    @property
    def quarantined(self) -> list[ServiceResult]:
        return [s for s in self.services if s.status == "quarantined"]

    @property
    def removals(self) -> list[Removal]:
        return [r for s in self.services for r in s.removals]

    def strict_failures(self) -> list[str]:
        """What ``--strict`` fails on, one line each: quarantined services, scrubbed text, service warnings."""
        lines = [f"{s.entry.name}: quarantined: {' '.join(s.reasons[:2]) or 'no reason'}" for s in self.quarantined]
        lines += [str(r) for r in self.removals]
        lines += [w for s in self.services for w in s.warnings]
        return lines

    def report(self) -> dict[str, Any]:
        """The ``--json-report``: every service's result."""
        operations = self.merged_document.operations
        return {
            "title": self.manifest.title,
            "source": self.manifest.source,
            "services": [s.as_dict() for s in self.services],
            "summary": {
                "services": len(self.services),
                "published": sum(s.status == "published" for s in self.services),
                "quarantined": len(self.quarantined),
                "docs_only": sum(s.status == "docs-only" for s in self.services),
                "scrubbed": sum(r.count for r in self.removals),
                "operations": operations,
            },
            "warnings": self.warnings,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }


_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def merge_services(manifest: Manifest, results: list[ServiceResult], cache: Cache) -> MergedDocument:
    """The platform's one OpenAPI 3.1 document from the published services' fragments (cached as a whole; a warm
    run reads only its small meta entry)."""
    published = [r for r in results if r.status == "published"]
    servers = [{"url": manifest.gateway}]
    key = _digest(
        CACHE_FORMAT,
        manifest.title,
        manifest.description,
        manifest.gateway,
        *[r.key or r.entry.name for r in published],
    )

    def combined() -> dict[str, Any]:
        from docgen.merge import combine  # only on a miss: a warm build needs no converter

        merged = combine(
            [r.fragment for r in published],  # type: ignore[misc]
            title=manifest.title,
            version="1.0.0",
            description=manifest.description,
            servers=servers,
        )
        operations = sum(1 for item in merged.document.get("paths", {}).values() for k in item if k in _METHODS)
        meta = {"renamed": [list(t) for t in merged.renamed_operation_ids], "operations": operations}
        cache.put("merged", key, {"document": merged.document})
        cache.put("merged-meta", key, meta)  # after the document: a meta entry implies its document
        state["meta"] = meta
        return merged.document

    state: dict[str, Any] = {"meta": cache.get("merged-meta", key)}
    document = None if state["meta"] is not None else combined()
    meta = state["meta"]
    by_name = {r.entry.name: r for r in published}
    for service, old, new in meta["renamed"]:
        note = f"{service}: operationId {old!r} is already used by another service; published as {new!r}"
        by_name[service].warnings.append(note)
    return MergedDocument(key, cache, meta["operations"], document, combined)


def gather(
    manifest: Manifest, *, fetcher: Fetcher | None = None, cache_dir: Path | None = None, jobs: int | None = None
) -> PortalBuild:
    """Read, validate, scrub and merge every service: everything but the site."""
    import time

    jobs = jobs or os.cpu_count() or 1
    cache = Cache(cache_dir)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    sources = read_all(manifest.services, fetcher or Fetcher())
    timings["read"] = time.perf_counter() - started
    started = time.perf_counter()
    results = process_specs(sources, manifest.scrub, cache, jobs)
    timings["validate"] = time.perf_counter() - started
    for source, result in zip(sources, results, strict=True):
        result.docs, removals = scrub_markdown(source.entry.name, source.docs, manifest.scrub)
        result.removals += removals
        if result.status != "quarantined":
            # A quarantined service's problems are its reasons (shown already); otherwise docs that could not be
            # read (refused, too large, too slow) would go unmentioned: the API is published, the pages are not.
            result.warnings += [f"{source.entry.name}: {p}" for p in source.problems if p.startswith("docs not read")]
        if source.entry.docs is not None and not source.docs and not source.problems:
            result.warnings.append(f"{source.entry.name}: the docs folder holds no Markdown page")
    started = time.perf_counter()
    merged = merge_services(manifest, results, cache)
    timings["merge"] = time.perf_counter() - started
    return PortalBuild(manifest, results, merged, timings=timings)


def publish_site(portal: PortalBuild, out_dir: Path, *, cache_dir: Path, jobs: int = 1) -> PortalBuild:
    """Render and build the Sphinx site into ``out_dir`` (replaced only when the build succeeded)."""
    import time

    from docgen.environment import live_status
    from docgen.site import Portal, ServicePage, render_sources
    from docgen.sitebuild import build_site

    manifest = portal.manifest
    guide = docs_from_folder(manifest.guide) if manifest.guide else {}
    pages = [
        ServicePage(
            name=r.entry.name,
            version=r.entry.version,
            title=r.entry.title,
            docs=r.docs,
            api=r.fragment if r.status == "published" else None,
            quarantine=r.reasons if r.status == "quarantined" else [],
            source=r.entry.origin,
            status=r.status,
        )
        for r in portal.services
    ]
    started = time.perf_counter()
    sources = render_sources(Portal(manifest.title, guide, pages, portal.merged, environment=live_status(manifest)))
    portal.timings["render"] = time.perf_counter() - started
    started = time.perf_counter()
    portal.site = build_site(sources, cache_dir / "site", out_dir, jobs=jobs)
    portal.timings["sphinx"] = time.perf_counter() - started
    return portal


def summary_line(portal: PortalBuild) -> str:
    """One line: how many services were published, quarantined, docs only."""
    counts = portal.report()["summary"]
    return (
        f"{counts['services']} service(s): {counts['published']} published, {counts['quarantined']} quarantined, "
        f"{counts['docs_only']} docs only; {counts['operations']} operation(s) in the merged reference"
    )


def dump_spec(document: dict[str, Any], suffix: str) -> bytes:
    """The merged spec as JSON (compact: for tools) or block YAML (for people) bytes, by the file's suffix."""
    if suffix == ".json":
        return (json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
    return yamlout.dump(document).encode()
