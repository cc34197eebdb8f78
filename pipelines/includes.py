"""``include:`` followed as GitLab follows it, as far as can be done offline: local files (relative to the
repository root, wildcards allowed) and the toolkit's own CI/CD components are read, their ``spec: inputs``
filled in, nested includes followed, and everything deep-merged in GitLab's order (the included files in the
order listed, then the including file over them). Project includes are read too when a ``fetch`` is given
(``lint --remote``: GitLab's repository files API).

A component gets GitLab's component context (``$[[ component.x ]]``, as its ``spec: component`` declares): its
name, and from the reference after ``@`` its version, SHA and reference (``interpolation.component_context``).
The files it includes in turn inherit that context, as GitLab passes it on; any other file has none, so a
component's template included with ``local:`` fails as it fails in GitLab. A version GitLab leaves null (a
component included by a branch or a commit SHA) is a warning where the component uses it.

Remote and template includes, other projects' components, and paths that hold CI variables cannot be read
here: they are listed in :attr:`Assembled.unread`, and lint lowers every check that depends on them to a
warning. GitLab's limit of 150 includes per pipeline is kept; a local path may not leave the repository.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from autocore.issues import SEVERITY_ERROR, SEVERITY_WARNING, Issue, issue_message
from autocore.loading import DEFAULT_BUDGET
from autocore.text import json_path
from pipelines.errors import PipelinesConfigError
from pipelines.extends import deep_merge
from pipelines.gitlab_yaml import DuplicateKey, Loaded, load_document, parse_document
from pipelines.interpolation import (
    InterpolationError,
    component_context,
    component_values,
    input_values,
    interpolate,
    interpolation_uses,
    standalone_component,
)
from pipelines.locations import DEFAULT_COMPONENT_PATH, TEMPLATES_DIR

MAX_INCLUDES = 150  # GitLab's default limit on the files one pipeline includes
MAX_INCLUDE_DEPTH = 100  # GitLab's limit on nested includes
# Bytes all included files may hold together: what one loaded file may hold. Each file has the loader's own
# budgets; without this one, 150 of them could hold 150 times as much.
MAX_INCLUDED_BYTES = DEFAULT_BUDGET.max_bytes
_YAML_SUFFIXES = (".yml", ".yaml")
_SAME_PROJECT = ("$CI_SERVER_FQDN/$CI_PROJECT_PATH/", "${CI_SERVER_FQDN}/${CI_PROJECT_PATH}/")

# (project, file, ref or None) -> the file's text; raises IncludeNotFound when GitLab answers 404.
ProjectReader = Callable[[str, str, str | None], str]


class IncludeNotFound(Exception):
    """A project include's project or file does not exist (or the token may not read it)."""


@dataclass(frozen=True)
class IncludeSettings:
    """Where includes are read from. ``root`` None: local includes cannot be read (they count as unread)."""

    root: Path | None = None
    component_path: str = DEFAULT_COMPONENT_PATH
    templates_dir: Path = TEMPLATES_DIR
    read_project: ProjectReader | None = None
    max_includes: int = MAX_INCLUDES


@dataclass
class Assembled:
    """A file with its includes merged in (``include:`` removed), and what following them found."""

    body: dict[str, Any]
    issues: list[Issue] = field(default_factory=list)
    unread: list[str] = field(default_factory=list)  # "remote https://...", "template Jobs/SAST.gitlab-ci.yml", ...
    duplicates: list[tuple[str, DuplicateKey]] = field(default_factory=list)
    read: list[str] = field(default_factory=list)  # the files read, in order


@dataclass(frozen=True)
class _Origin:
    """Where a file came from, which decides what its own local includes mean."""

    kind: str  # "local" (the repository under lint), "project" (another project, read through GitLab)
    project: str = ""
    ref: str | None = None
    component: Mapping[str, Any] | None = None  # the component context it inherits (a component's own includes)


class _Assembler:
    def __init__(self, settings: IncludeSettings, result: Assembled) -> None:
        self.settings = settings
        self.result = result
        self.count = 0
        self.bytes = 0
        self.seen: set[tuple[Any, ...]] = set()

    def issue(self, source: str, where: tuple[Any, ...], message: str, rule: str, severity: str) -> None:
        self.result.issues.append(Issue(source, json_path(where), issue_message(message), rule, severity))

    def assemble(self, body: dict[str, Any], source: str, origin: _Origin, depth: int) -> dict[str, Any]:
        include = body.get("include")
        own = {k: v for k, v in body.items() if k != "include"}
        if include is None:
            return own
        items = include if isinstance(include, list) else [include]
        merged: dict[str, Any] = {}
        for index, item in enumerate(items):
            where = ("include", index) if isinstance(include, list) else ("include",)
            for included in self.follow(item, source, where, origin, depth):
                merged = deep_merge(merged, included)
        return deep_merge(merged, own)

    def follow(
        self, item: Any, source: str, where: tuple[Any, ...], origin: _Origin, depth: int
    ) -> list[dict[str, Any]]:
        if isinstance(item, str):
            item = {"remote": item} if item.startswith(("http://", "https://")) else {"local": item}
        if not isinstance(item, dict):
            return []  # the schema says what is wrong with it
        if depth >= MAX_INCLUDE_DEPTH:
            self.issue(
                source,
                where,
                f"includes nest deeper than GitLab's limit of {MAX_INCLUDE_DEPTH}",
                "include-depth",
                SEVERITY_ERROR,
            )
            return []
        conditional = "rules" in item
        inputs = item.get("inputs")
        if "local" in item and isinstance(item["local"], str):
            if origin.kind == "project":
                found = self.project_file(
                    origin.project, item["local"], origin.ref, inputs, source, where, depth, origin.component
                )
                return [found]
            return self.local(item["local"], inputs, source, where, depth, conditional, origin.component)
        if "component" in item and isinstance(item["component"], str):
            return self.component(item["component"], inputs, source, where, depth, conditional)
        if "project" in item and isinstance(item["project"], str):
            files = item.get("file")
            names = files if isinstance(files, list) else [files]
            ref = item.get("ref") if isinstance(item.get("ref"), str) else None
            found = []
            for name in names:
                if not isinstance(name, str):
                    continue
                if self.settings.read_project is None or "$" in item["project"] or "$" in name:
                    self.result.unread.append(f"project {item['project']} file {name}")
                    continue
                found.append(
                    self.project_file(item["project"], name, ref, inputs, source, where, depth, origin.component)
                )
            return [f for f in found if f]
        for kind in ("remote", "template"):
            if kind in item:
                self.result.unread.append(f"{kind} {item[kind]}")
                return []
        return []

    def budget(self, source: str, where: tuple[Any, ...], key: tuple[Any, ...]) -> bool:
        """Counts one include; False (with the error) past GitLab's limit, or when it was already included."""
        if key in self.seen:
            return False
        self.seen.add(key)
        self.count += 1
        if self.count > self.settings.max_includes:
            if self.count == self.settings.max_includes + 1:
                message = f"more than {self.settings.max_includes} includes, GitLab's limit for one pipeline"
                self.issue(source, where, message, "include-limit", SEVERITY_ERROR)
            return False
        return True

    def local(
        self,
        path: str,
        inputs: Any,
        source: str,
        where: tuple[Any, ...],
        depth: int,
        conditional: bool,
        component: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        root = self.settings.root
        if "$" in path:
            self.result.unread.append(f"local {path} (a CI variable in the path)")
            return []
        if root is None:
            self.result.unread.append(f"local {path} (no repository root: pass --root)")
            return []
        relative = path.lstrip("/")
        if not relative.endswith(_YAML_SUFFIXES):
            return []  # GitLab's schema says so (a local include is a .yml or .yaml file)
        if any(part == ".." for part in PurePosixPath(relative).parts):
            self.issue(source, where, f"local include {path!r} leaves the repository", "include-path", SEVERITY_ERROR)
            return []
        base = root.resolve()
        if "*" in relative:
            matches = sorted(p for p in base.glob(relative) if p.is_file())
        else:
            matches = [base / relative] if (base / relative).is_file() else []
        if not matches:
            severity = SEVERITY_WARNING if conditional else SEVERITY_ERROR
            what = "matches no file" if "*" in relative else "does not exist"
            self.issue(
                source,
                where,
                f"local include {path!r} {what} in the repository ({base})",
                "include-not-found",
                severity,
            )
            return []
        found = []
        for match in matches:
            if not match.resolve().is_relative_to(base):  # a symbolic link out of the repository
                self.issue(
                    source, where, f"local include {path!r} leaves the repository", "include-path", SEVERITY_ERROR
                )
                continue
            if not self.budget(source, where, ("local", str(match), repr(inputs))):
                continue
            self.spend(match.stat().st_size, source)
            included = self.read(lambda m=match: load_document(m), str(match), inputs, source, where, component)
            if included is not None:
                found.append(self.assemble(included, str(match), _Origin("local", component=component), depth + 1))
        return found

    def component(
        self, address: str, inputs: Any, source: str, where: tuple[Any, ...], depth: int, conditional: bool
    ) -> list[dict[str, Any]]:
        location, at, version = address.rpartition("@")
        location = location or address
        version = version if at else ""
        prefix, _, name = location.rpartition("/")
        candidates: list[Path] = []
        if prefix == self.settings.component_path:
            candidates = [
                self.settings.templates_dir / f"{name}.yml",
                self.settings.templates_dir / name / "template.yml",
            ]
        elif location.startswith(_SAME_PROJECT) and self.settings.root is not None and "/" not in name:
            templates = self.settings.root.resolve() / "templates"
            candidates = [templates / f"{name}.yml", templates / name / "template.yml"]
        else:
            self.result.unread.append(f"component {address}")
            return []
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            severity = SEVERITY_WARNING if conditional else SEVERITY_ERROR
            self.issue(
                source,
                where,
                f"component {address!r}: no component {name!r} in {candidates[0].parent}",
                "include-not-found",
                severity,
            )
            return []
        if not self.budget(source, where, ("component", str(path), repr(inputs))):
            return []
        context = component_context(name, version)
        self.spend(path.stat().st_size, source)
        included = self.read(lambda: load_document(path), str(path), inputs, source, where, context)
        origin = _Origin("local", component=context)  # what it includes in turn knows the component too
        return [] if included is None else [self.assemble(included, str(path), origin, depth + 1)]

    def project_file(
        self,
        project: str,
        name: str,
        ref: str | None,
        inputs: Any,
        source: str,
        where: tuple[Any, ...],
        depth: int,
        component: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        reader = self.settings.read_project
        label = f"{project}:{name.lstrip('/')}" + (f"@{ref}" if ref else "")
        if reader is None:
            self.result.unread.append(f"project {label}")
            return {}
        if not self.budget(source, where, ("project", project, name, ref, repr(inputs))):
            return {}
        try:
            text = reader(project, name.lstrip("/"), ref)
        except IncludeNotFound as exc:
            self.issue(source, where, f"project include {label}: {exc}", "include-not-found", SEVERITY_ERROR)
            return {}
        self.spend(len(text.encode("utf-8", "surrogatepass")), source)
        included = self.read(lambda: parse_document(text, label), label, inputs, source, where, component)
        origin = _Origin("project", project, ref, component)
        return {} if included is None else self.assemble(included, label, origin, depth + 1)

    def spend(self, size: int, source: str) -> None:
        """Counts an included file's bytes; past the budget, the file under lint is refused in one line."""
        self.bytes += size
        if self.bytes > MAX_INCLUDED_BYTES:
            raise PipelinesConfigError(
                f"{source}: its includes hold more than {MAX_INCLUDED_BYTES} bytes together, over the include size "
                f"budget of {MAX_INCLUDED_BYTES}: refused unlinted"
            )

    def read(
        self,
        load: Callable[[], Loaded],
        label: str,
        inputs: Any,
        source: str,
        where: tuple[Any, ...],
        component: Mapping[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """The file ``load`` reads, interpolated with ``inputs`` and the ``component`` context it is included
        with (None: not as a component); None, with the error, where GitLab would refuse it."""
        try:
            loaded = load()
        except PipelinesConfigError as exc:
            self.issue(source, where, f"included file: {exc}", "include-invalid", SEVERITY_ERROR)
            return None
        self.result.read.append(label)
        self.result.duplicates += [(label, d) for d in loaded.duplicates]
        try:
            available = component_values(loaded.spec, component) if loaded.spec is not None else {}
            values = input_values(loaded.spec, inputs)
            body = interpolate(loaded.body, values, available) if loaded.spec is not None else loaded.body
        except InterpolationError as exc:
            self.issue(source, where, f"{label}: {exc}", "include-inputs", SEVERITY_ERROR)
            return None
        null_version = "version" in available and available["version"] is None and component is not None
        if null_version and any(c == "component" and n == "version" for c, n, _ in interpolation_uses(loaded.body)):
            message = (
                f"{label}: $[[ component.version ]] is null, and GitLab fills in nothing: it resolves a version only "
                f"for a release of a CI/CD Catalog resource (@1, @1.2.3, @~latest), not for "
                f"@{(component or {}).get('reference', '')}"
            )
            self.issue(source, where, message, "component-version-null", SEVERITY_WARNING)
        return body if isinstance(body, dict) else {}


def assemble(loaded: Loaded, source: str, settings: IncludeSettings) -> Assembled:
    """``loaded`` (the file under lint) with its includes followed and merged in."""
    result = Assembled({})
    assembler = _Assembler(settings, result)
    # A file with a spec: header on its own is a component: what it includes knows its (placeholder) context.
    component = standalone_component(source) if loaded.spec is not None else None
    result.body = assembler.assemble(loaded.body, source, _Origin("local", component=component), 0)
    return result
