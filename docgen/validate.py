"""Offline validation of a service's Swagger 2.0 / OpenAPI 3.0 / 3.1 spec.

``validate`` returns every problem it finds as an :class:`Issue`, never stopping at the first one:
the document against openapi-spec-validator's JSON Schema of its version, each error said in a spec author's
words at the node it is about (:mod:`docgen.spec_messages`); then a walk of the document that checks what the
JSON Schema cannot (defaults, the 3.x schema dialect, discriminators, oauth2 scopes, duplicates), with the
verdict each version's specification gives: MUST is an error, SHOULD a warning (:mod:`docgen.spec_verdicts`,
``docgen/SPEC-DIFFERENCES.md``); then docgen's own checks (more than one body parameter, body together with
formData, path template parameters, duplicated operationIds, ``$ref``s that do not resolve). Nothing is ever
fetched: an external ``$ref`` is reported, not followed.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml

from autocore.errors import ToolkitError
from autocore.issues import SEVERITY_ERROR, Issue, issue_message
from autocore.loading import StrictYAMLLoader, load_json, load_yaml, yaml_problem
from autocore.text import json_path
from docgen.errors import ConfigError, InvalidSpecError
from docgen.spec_messages import Finding, MetaSchema, explain
from docgen.spec_schemas import spec_version, version_schema
from docgen.spec_verdicts import Verdict, spec_family, walk

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# Keys whose values are data (examples, defaults, enums), where a "$ref" key is just data.
_DATA_KEYS = frozenset({"example", "examples", "default", "enum", "const", "x-examples"})
_TEMPLATE_PARAM = re.compile(r"\{([^{}]+)\}")


@dataclass
class Result:
    """The validation of one spec file."""

    service: str
    source: str
    version: str | None
    issues: list[Issue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No errors (warnings do not make a spec invalid: the portal publishes it)."""
        return not any(issue.severity == SEVERITY_ERROR for issue in self.issues)

    def as_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "source": self.source,
            "version": self.version,
            "ok": self.ok,
            "issues": [issue.as_dict() for issue in self.issues],
        }

    def raise_for_issues(self) -> None:
        """Raise :class:`InvalidSpecError` (one line) when the spec has issues."""
        errors = [issue for issue in self.issues if issue.severity == SEVERITY_ERROR]
        if errors:
            first = errors[0]
            raise InvalidSpecError(
                f"{self.source}: {len(errors)} issue(s), first: {first.path}: {first.message} [{first.rule}]"
            )


# --------------------------------------------------------------------------- loading


class _Loader(StrictYAMLLoader):
    """The strict loader that also makes integer keys strings (``200:`` responses are written unquoted)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        mapping = super().construct_mapping(node, deep=deep)
        return {
            (str(key) if isinstance(key, int) and not isinstance(key, bool) else key): value
            for key, value in mapping.items()
        }


def load_spec(path: str | Path) -> tuple[dict[str, Any], str]:
    """Read a JSON or YAML spec; returns ``(document, source)``. Raises ``ConfigError`` (one line)."""
    source = str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{source}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {source}: {exc.strerror or exc}") from None
    return parse_spec(data, source), source


def parse_spec(data: bytes, source: str) -> dict[str, Any]:
    """Parse a spec's bytes: JSON when ``source`` ends in .json or the text starts with ``{``, else YAML."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not UTF-8 text (byte {exc.start})") from None
    text = text.removeprefix("\ufeff")
    if source.lower().endswith(".json") or text.lstrip().startswith("{"):
        try:
            document = load_json(text, source)
        except ToolkitError as exc:  # past a budget, or a number JSON cannot carry
            raise ConfigError(str(exc)) from None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{source}:{exc.lineno}: not valid JSON: {exc.msg} (column {exc.colno})") from None
        except ValueError as exc:
            raise ConfigError(f"{source}: not valid JSON: {exc}") from None
    else:
        try:
            document = load_yaml(text, source, loader=_Loader)
        except ToolkitError as exc:
            raise ConfigError(str(exc)) from None
        except yaml.YAMLError as exc:
            raise ConfigError(yaml_problem(exc, source)) from None
    if not isinstance(document, dict):
        kind = "empty" if document is None else f"a {type(document).__name__}"
        raise ConfigError(f"{source}: not a Swagger/OpenAPI document (the top level is {kind}, not a mapping)")
    return document


# --------------------------------------------------------------------------- helpers


_MISSING = object()


def _resolve_pointer(document: Any, fragment: str) -> Any:
    """Resolve the fragment of a local ``$ref`` (``/a/b`` pointer or a 3.1 ``$anchor``); ``_MISSING`` if none."""
    fragment = unquote(fragment)
    if fragment == "":
        return document
    if not fragment.startswith("/"):
        return _find_anchor(document, fragment)
    node = document
    for token in fragment[1:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict):
            if token not in node:
                return _MISSING
            node = node[token]
        elif isinstance(node, list):
            if not token.isdigit() or int(token) >= len(node):
                return _MISSING
            node = node[int(token)]
        else:
            return _MISSING
    return node


def _find_anchor(node: Any, name: str) -> Any:
    if isinstance(node, dict):
        if node.get("$anchor") == name:
            return node
        children: Any = node.values()
    elif isinstance(node, list):
        children = node
    else:
        return _MISSING
    for child in children:
        found = _find_anchor(child, name)
        if found is not _MISSING:
            return found
    return _MISSING


def _iter_refs(node: Any, parts: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], str]]:
    """Every ``$ref`` of the document as ``(parts of the object holding it, ref)``, skipping example data."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            yield parts, ref
        for key, value in node.items():
            if key == "$ref" or key in _DATA_KEYS or (isinstance(key, str) and key.startswith("x-")):
                continue
            yield from _iter_refs(value, (*parts, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _iter_refs(value, (*parts, index))


def _local(document: Any, value: Any) -> Any:
    """``value`` with a local ``$ref`` followed (one level); ``_MISSING`` when it does not resolve."""
    if isinstance(value, dict) and isinstance(value.get("$ref"), str):
        ref = value["$ref"]
        if not ref.startswith("#"):
            return _MISSING
        return _resolve_pointer(document, ref[1:])
    return value


def _operations(document: dict[str, Any]) -> Iterator[tuple[tuple[Any, ...], str, str, dict[str, Any]]]:
    """``(parts, METHOD, url, operation)`` for every operation under ``paths`` (and 3.1 ``webhooks``)."""
    for section in ("paths", "webhooks"):
        items = document.get(section)
        if not isinstance(items, dict):
            continue
        for url, item in items.items():
            item = _local(document, item)
            if not isinstance(item, dict):
                continue
            for method in METHODS:
                operation = item.get(method)
                if isinstance(operation, dict):
                    yield (section, url, method), method.upper(), str(url), operation


# --------------------------------------------------------------------------- checks


def _ref_issues(document: dict[str, Any], service: str, source: str) -> tuple[list[Issue], set[tuple[Any, ...]]]:
    """Local refs that do not resolve and external refs (never fetched); also returns where they are."""
    issues: list[Issue] = []
    bad: set[tuple[Any, ...]] = set()
    base = Path(source).parent
    for parts, ref in _iter_refs(document):
        message = None
        if ref.startswith("#"):
            if _resolve_pointer(document, ref[1:]) is _MISSING:
                message = f"$ref {ref!r} does not resolve: no such location in this spec"
        else:
            split = urlsplit(ref)
            if split.scheme or split.netloc:
                message = f"external $ref {ref!r} was not fetched: validation is offline, bundle it into the spec"
            else:
                target = base / unquote(split.path)
                if split.path and not target.is_file():
                    message = f"$ref {ref!r} refers to a file that does not exist next to the spec"
            bad.add(parts)  # never given to openapi-spec-validator, which would try to open it
        if message:
            bad.add(parts)
            issues.append(Issue(source, json_path((*parts, "$ref")), message, "unresolved-ref", service=service))
    return issues, bad


def _effective_parameters(
    document: dict[str, Any], path_item: dict[str, Any], operation: dict[str, Any], item_parts: tuple[Any, ...]
) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    """Path-level parameters merged with the operation's, which override them by (name, in)."""

    def collect(container: dict[str, Any], parts: tuple[Any, ...]) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
        found = []
        params = container.get("parameters")
        if isinstance(params, list):
            for index, raw in enumerate(params):
                param = _local(document, raw)
                if isinstance(param, dict) and isinstance(param.get("name"), str) and isinstance(param.get("in"), str):
                    found.append(((*parts, "parameters", index), param))
        return found

    operation_level = collect(operation, (*item_parts,))
    overridden = {(p["name"], p["in"]) for _, p in operation_level}
    path_level = [
        (parts, p) for parts, p in collect(path_item, item_parts[:-1]) if (p["name"], p["in"]) not in overridden
    ]
    return path_level + operation_level


def _parameter_issues(document: dict[str, Any], service: str, source: str, swagger2: bool) -> list[Issue]:
    issues: list[Issue] = []
    paths = document.get("paths")
    if not isinstance(paths, dict):
        return issues
    for url, raw_item in paths.items():
        path_item = _local(document, raw_item)
        if not isinstance(path_item, dict):
            continue
        template = list(dict.fromkeys(_TEMPLATE_PARAM.findall(str(url))))
        for method in METHODS:
            operation = path_item.get(method)
            if not isinstance(operation, dict):
                continue
            op_parts = ("paths", url, method)
            where = f"{method.upper()} {url}"
            params = _effective_parameters(document, path_item, operation, op_parts)
            if swagger2:
                bodies = [(parts, p) for parts, p in params if p["in"] == "body"]
                forms = [(parts, p) for parts, p in params if p["in"] == "formData"]
                if len(bodies) > 1:
                    names = ", ".join(repr(p["name"]) for _, p in bodies)
                    message = f"{where} has {len(bodies)} body parameters ({names}); Swagger 2.0 allows at most one"
                    issues.append(Issue(source, json_path(bodies[1][0]), message, "multiple-body", service=service))
                if bodies and forms:
                    names = ", ".join(repr(p["name"]) for _, p in forms)
                    message = (
                        f"{where} has a body parameter ({bodies[0][1]['name']!r}) and formData parameters ({names});"
                        " Swagger 2.0 allows one or the other"
                    )
                    issues.append(Issue(source, json_path(op_parts), message, "body-and-formdata", service=service))
            in_path = [(parts, p) for parts, p in params if p["in"] == "path"]
            declared = {p["name"] for _, p in in_path}
            for name in template:
                if name not in declared:
                    message = f"path template parameter {{{name}}} of {where} has no 'in: path' parameter"
                    issues.append(Issue(source, json_path(op_parts), message, "path-params", service=service))
            for parts, param in in_path:
                if param["name"] not in template:
                    message = f"'in: path' parameter {param['name']!r} does not appear in the path template {url!r}"
                    issues.append(Issue(source, json_path(parts), message, "path-params", service=service))
    return issues


def duplicate_operation_ids(
    specs: Mapping[str, Mapping[str, Any]], sources: Mapping[str, str] | None = None
) -> list[Issue]:
    """operationIds used more than once, within one service's spec or across services (in ``specs`` order).

    Each repeat is an issue at its ``operationId``; the first use is not. ``sources`` names each service's file.
    """
    issues: list[Issue] = []
    first: dict[str, tuple[str, str, str]] = {}
    for service, document in specs.items():
        source = (sources or {}).get(service, service)
        for parts, method, url, operation in _operations(dict(document)):
            operation_id = operation.get("operationId")
            if not isinstance(operation_id, str):
                continue
            if operation_id not in first:
                first[operation_id] = (service, method, url)
                continue
            other_service, other_method, other_url = first[operation_id]
            if other_service == service:
                message = f"operationId {operation_id!r} is already used by {other_method} {other_url}"
            else:
                used = f"{other_method} {other_url}"
                message = f"operationId {operation_id!r} is also used by service {other_service!r} ({used})"
            issues.append(
                Issue(source, json_path((*parts, "operationId")), message, "duplicate-operation-id", service=service)
            )
    return issues


# --------------------------------------------------------------------------- openapi-spec-validator


def _drop_bad_refs(document: dict[str, Any], bad: set[tuple[Any, ...]]) -> dict[str, Any]:
    """A copy without the ``$ref``s that would make the library open a file or URL or fail to resolve."""
    if not bad:
        return document
    clean = copy.deepcopy(document)
    drop = object()
    for parts in bad:
        if not parts:
            return {key: value for key, value in clean.items() if key != "$ref"}
        parent = clean
        for part in parts[:-1]:
            parent = parent[part]
        parent[parts[-1]] = drop

    def sweep(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: ({} if value is drop else sweep(value)) for key, value in node.items()}
        if isinstance(node, list):
            return [sweep(value) for value in node if value is not drop]
        return node

    return sweep(clean)


# Maps of independent entries: an entry's validity against the schema depends on nothing outside it.
_ENTRY_MAPS = {
    "paths": 1,
    "webhooks": 1,
    "components": 2,  # OpenAPI 3: /paths/{p}, /webhooks/{w}, /components/{kind}/{name}
    "definitions": 1,
    "parameters": 1,
    "responses": 1,
    "securityDefinitions": 1,  # Swagger 2.0
}


def _flagged_only(document: dict[str, Any], fast: Any) -> dict[str, Any]:
    """``document`` with only the entries of its big maps (paths, components, definitions...) that jsonschema-rs
    (``fast``) finds invalid; every entry is validated on its own by the schema, so the others cannot add or
    hide an error. The whole document when jsonschema-rs cannot say where (an error outside those maps);
    ``_VALID`` when it finds nothing wrong (then nothing is explained)."""
    flagged: dict[str, set[tuple[Any, ...]]] = {}
    found = False
    for error in fast.iter_errors(document):
        found = True
        where = tuple(getattr(error, "instance_path", ()) or ())
        depth = _ENTRY_MAPS.get(where[0]) if where and isinstance(where[0], str) else None
        if depth is None or len(where) <= depth:
            return document  # a problem of the document itself: explain it whole
        flagged.setdefault(where[0], set()).add(where[1 : depth + 1])
    if not found:
        return _VALID
    pruned = dict(document)
    for top, depth in _ENTRY_MAPS.items():
        section = document.get(top)
        if not isinstance(section, dict):
            continue
        keep = flagged.get(top, set())
        if depth == 1:
            pruned[top] = {k: v for k, v in section.items() if (k,) in keep}
        else:
            pruned[top] = {
                kind: (
                    {n: e for n, e in entries.items() if (kind, n) in keep} if isinstance(entries, dict) else entries
                )
                for kind, entries in section.items()
            }
    return pruned


class _Valid(dict):  # type: ignore[type-arg]
    """A marker: jsonschema-rs found nothing wrong; jsonschema is not asked."""


_VALID = _Valid()


def _library_issues(
    document: dict[str, Any], clean: dict[str, Any], service: str, source: str
) -> tuple[str | None, list[Issue]]:
    version = spec_version(document)
    if version is None:
        message = "not a Swagger 2.0 or OpenAPI 3.x document: no valid 'swagger: \"2.0\"' or 'openapi: 3.x.y' key"
        return None, [Issue(source, "$", message, "version", service=service)]
    findings: list[Finding] = []
    # 1. the document against the OpenAPI JSON Schema: "$ref"s are plain data here, nothing is resolved.
    schema = version_schema(version)
    # jsonschema-rs answers "valid?" ~80x faster and says where; jsonschema explains why, with the paths and
    # messages we report, on the entries jsonschema-rs named only (a 5 MB spec with one slip: 0.1 s, not 10).
    checked = _flagged_only(document, schema.fast) if schema.fast is not None else document
    errors = () if checked is _VALID else schema.precise.iter_errors(checked)
    meta = MetaSchema(schema.schema)
    for error in errors:
        findings += explain(error, meta)
    # 2. what the JSON Schema cannot check (defaults, the schema dialect, duplicates...), each node where it is.
    family = spec_family(document)
    verdicts: list[Verdict] = []
    if family is not None:
        try:
            verdicts = walk(clean, family)
        except Exception as exc:  # noqa: BLE001 - a crash of the walk is one more issue, not the end of validation
            verdicts = [Verdict((), f"the semantic checks stopped: {type(exc).__name__}: {exc}", "schema")]
    issues = [
        Issue(source, json_path(f.parts), issue_message(f.message), "schema", service=service)
        for f in _without_cascades(findings, [v.parts for v in verdicts])
    ]
    issues += [
        Issue(source, json_path(v.parts), issue_message(v.message), v.rule, v.severity, service) for v in verdicts
    ]
    version = document.get("swagger") if "swagger" in document else document.get("openapi")
    return str(version), issues


def _without_cascades(findings: list[Finding], precise: list[tuple[Any, ...]]) -> list[Finding]:
    """The findings without those that only echo another one inside the same node.

    A 3.1 object whose ``then`` branch failed leaves its properties unevaluated: "unexpected property 'flows'"
    of an oauth2 scheme missing ``scopes`` in a flow is dropped. A list's "items must be unique" is dropped
    when the walk names the repeated item itself (``precise``: the parts of the walk's findings).
    """

    def inside(parts: tuple[Any, ...], others: list[tuple[Any, ...]]) -> bool:
        return any(len(other) > len(parts) and other[: len(parts)] == parts for other in others)

    everything = [f.parts for f in findings]
    kept = []
    for finding in findings:
        if finding.keyword == "unevaluatedProperties" and inside(finding.parts, everything):
            continue
        if finding.keyword == "uniqueItems" and inside(finding.parts, precise):
            continue
        kept.append(finding)
    return list(dict.fromkeys(kept))


def validate(document: Mapping[str, Any], *, service: str, source: str) -> list[Issue]:
    """Every problem of one spec, offline; an empty list when it is valid."""
    return _validate(dict(document), service, source)[1]


def _validate(document: dict[str, Any], service: str, source: str) -> tuple[str | None, list[Issue]]:
    ref_issues, bad = _ref_issues(document, service, source)
    version, issues = _library_issues(document, _drop_bad_refs(document, bad), service, source)
    issues += ref_issues
    issues += _parameter_issues(document, service, source, swagger2=str(document.get("swagger")) == "2.0")
    issues += duplicate_operation_ids({service: document}, {service: source})
    return version, list(dict.fromkeys(issues))


def validate_file(path: str | Path, service: str | None = None) -> Result:
    """Load and validate one spec file; ``service`` defaults to the file's stem. Raises ``ConfigError``."""
    document, source = load_spec(path)
    service = service or Path(path).stem
    version, issues = _validate(document, service, source)
    return Result(service=service, source=source, version=version, issues=issues)
