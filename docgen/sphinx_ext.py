"""The docs portal's Sphinx extension: untrusted Markdown never runs, and the portal's own pages come from data.

Listed in the ``conf.py`` that :func:`docgen.site.render_sources` writes. Three jobs:

* **Lock-down.** Every team's Markdown is untrusted. docutils' ``raw`` and file insertion (``include``,
  ``literalinclude``, ``csv-table :file:/:url:``, ``raw :file:``) are switched off and docutils config files
  ignored; MyST front matter may not change MyST's configuration (``myst: enable_extensions: [substitution]``
  would hand the page an unsandboxed Jinja2 with the Sphinx environment in scope); and :func:`sanitise`, run
  when a page is read and again after references are resolved, turns raw HTML into visible text, drops
  ``meta`` tags, neutralises links whose scheme is not http/https/mailto (or relative), replaces remote images
  by plain links (a page makes no request outside the site), accepts local images and downloads only when they
  are raster images inside the source tree, and shows math as text (MathJax would come from a CDN).
* **Directives** that render the portal's generated pages from the JSON files under ``_docgen/``, building
  docutils nodes so that no untrusted string is ever parsed as Markdown or HTML: ``docgen-api``,
  ``docgen-quarantine``, ``docgen-service``, ``docgen-portal`` and ``docgen-toctree``. Each one notes the JSON
  file as a dependency, so Sphinx re-reads exactly the pages whose data changed.
* **Navigation.** The sidebar's tree is rendered by :class:`Navigation` (cheaper than Sphinx's ``toctree()``),
  and every page is rewritten when a title or a toctree changed (Sphinx would leave stale sidebars).
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import yaml
from docutils import nodes
from docutils.parsers.rst import directives
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.directives.other import TocTree
from sphinx.environment import BuildEnvironment
from sphinx.transforms import SphinxTransform
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util import logging, url_re
from sphinx.util.docutils import SphinxDirective

__all__ = ["Navigation", "quarantine_notice", "sanitise", "service_header", "setup", "strip_myst_front_matter"]

logger = logging.getLogger(__name__)

DATA_DIR = "_docgen"
SERVICE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
LINK_SCHEMES = frozenset({"http", "https", "mailto"})
RASTER_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".webp"})
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
QUARANTINE_TITLE = "API reference not published"
# Front matter keys through which a page could change MyST's configuration (see myst_parser merge_file_level).
_MYST_CONFIG_KEYS = frozenset({"myst", "mystnb", "substitutions", "html_meta"})
# Browsers drop ASCII whitespace and control characters inside a URL scheme ("java\tscript:").
_URL_NOISE = re.compile(r"[\x00-\x20\x7f]")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
_SERVICE_INDEX = re.compile(r"^services/([a-z0-9][a-z0-9-]*)/index$")
_MAX_LIST = 12  # enum values / union members shown before "…"


# --------------------------------------------------------------------------------------------------------------
# small helpers


def _text(value: Any) -> str:
    """An untrusted value as display text (control characters removed)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        value = json.dumps(value, ensure_ascii=False, default=str)
    return _CONTROL.sub("", value)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _paragraphs(value: Any, classes: Iterable[str] = ()) -> list[nodes.paragraph]:
    """Plain-text paragraphs: descriptions are never parsed as Markdown or HTML."""
    text = _text(value).strip()
    if not text:
        return []
    return [
        nodes.paragraph(part.strip(), part.strip(), classes=list(classes))
        for part in _PARAGRAPH_BREAK.split(text)
        if part.strip()
    ]


def _url_scheme(url: str) -> str | None:
    match = _SCHEME.match(_URL_NOISE.sub("", url))
    return match.group(1).lower() if match else None


def _link_allowed(url: str) -> bool:
    """http, https, mailto or a relative URL (no scheme)."""
    scheme = _url_scheme(url)
    return scheme is None or scheme in LINK_SCHEMES


def _short(value: str, limit: int = 80) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _doc_link(target: str, text: str, refdoc: str) -> addnodes.pending_xref:
    """A link to another document (``target`` absolute, like ``/api/orders``), resolved by Sphinx."""
    xref = addnodes.pending_xref(
        "", refdomain="std", reftype="doc", reftarget=target, refexplicit=True, refwarn=True, refdoc=refdoc
    )
    xref += nodes.inline(text, text)
    return xref


def _relative_root(docname: str) -> str:
    """From the HTML page of ``docname`` back to the site root (html builder: one file per document)."""
    return "../" * docname.count("/")


def quarantine_notice(reasons: list[str], subject: list[nodes.Node] | None = None) -> nodes.admonition:
    """The visible notice that a service's API reference is not published, with the reasons as a list."""
    notice = nodes.admonition(classes=["warning", "docgen-quarantine"])
    notice += nodes.title(QUARANTINE_TITLE, QUARANTINE_TITLE)
    if subject:
        notice += nodes.paragraph("", "", *subject)
    items = nodes.bullet_list(classes=["docgen-quarantine-reasons"])
    for reason in reasons:
        items += nodes.list_item("", nodes.paragraph(reason, reason))
    notice += items
    return notice


class docgen_title(nodes.Invisible, nodes.Element):  # noqa: N801 - docutils node classes are lower case
    """Marker: the enclosing section's title becomes ``self['title']``; removed before the doctree is stored."""


# --------------------------------------------------------------------------------------------------------------
# data files


def _load_data(env: BuildEnvironment, relpath: str, location: Any) -> Any:
    """Read ``_docgen/...json`` and note it as a dependency of the current document."""
    env.note_dependency(relpath)
    try:
        return json.loads(Path(env.srcdir, relpath).read_bytes())
    except FileNotFoundError:
        logger.warning("docgen: data file %s is missing", relpath, location=location, type="docgen", subtype="data")
    except (OSError, ValueError, RecursionError) as exc:
        logger.warning("docgen: cannot read %s: %s", relpath, exc, location=location, type="docgen", subtype="data")
    return None


class _DataDirective(SphinxDirective):
    """A directive whose first argument is a service name (validated: it becomes part of a file name)."""

    has_content = False
    required_arguments = 1
    optional_arguments = 0
    final_argument_whitespace = False

    def _service(self) -> str | None:
        name = self.arguments[0]
        if not SERVICE_NAME.match(name):
            logger.warning(
                "docgen: %s: bad service name %r", self.name, name, location=self.get_location(), type="docgen"
            )
            return None
        return name

    def _data(self, relpath: str) -> Any:
        return _load_data(self.env, relpath, self.get_location())


# --------------------------------------------------------------------------------------------------------------
# docgen-quarantine / docgen-service / docgen-portal / docgen-toctree


class QuarantineDirective(_DataDirective):
    """``docgen-quarantine NAME``: why the service's API reference is missing (nothing when it is not)."""

    def run(self) -> list[nodes.Node]:
        name = self._service()
        if name is None:
            return []
        data = _dict(self._data(f"{DATA_DIR}/quarantine/{name}.json"))
        reasons = [_text(r) for r in _list(data.get("reasons"))]
        return [quarantine_notice(reasons)] if reasons else []


def service_header(data: dict[str, Any], refdoc: str, *, api_page: bool) -> nodes.container:
    """Version, source and the link between a service's docs and its API reference."""
    header = nodes.container(classes=["docgen-service-header"])
    para = nodes.paragraph(classes=["docgen-service-meta"])
    name = _text(data.get("name"))
    para += nodes.Text("Version ")
    para += nodes.literal(_text(data.get("version")), _text(data.get("version")))
    source = _text(data.get("source"))
    if source:
        para += nodes.Text(" · source: ")
        para += nodes.inline(source, source, classes=["docgen-source"])
    if not SERVICE_NAME.match(name):
        pass  # no link from a name that is not one
    elif api_page:
        para += nodes.Text(" · ")
        para += _doc_link(f"/services/{name}/index", "service documentation", refdoc)
    elif data.get("has_api"):
        para += nodes.Text(" · ")
        para += _doc_link(f"/api/{name}", "API reference", refdoc)
    header += para
    return header


class ServiceDirective(_DataDirective):
    """``docgen-service NAME [:api:]``: the page title becomes the service's title, followed by its header."""

    option_spec: ClassVar[dict[str, Any]] = {"api": directives.flag}

    def run(self) -> list[nodes.Node]:
        name = self._service()
        if name is None:
            return []
        data = _dict(self._data(f"{DATA_DIR}/services/{name}.json"))
        if not data:
            return []
        title = _text(data.get("title")).strip() or name
        api_page = "api" in self.options
        marker = docgen_title(title=f"{title} API" if api_page else title)
        return [marker, service_header(data, self.env.docname, api_page=api_page)]


class PortalDirective(SphinxDirective):
    """``docgen-portal title|services|api``: the portal's generated overview pages, from ``_docgen/portal.json``."""

    has_content = False
    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        kind = self.arguments[0]
        data = _dict(_load_data(self.env, f"{DATA_DIR}/portal.json", self.get_location()))
        services = [_dict(s) for s in _list(data.get("services")) if SERVICE_NAME.match(str(_dict(s).get("name")))]
        if kind == "title":
            return [docgen_title(title=_text(data.get("title")).strip() or "Documentation")]
        if kind == "services":
            return self._services(services)
        if kind == "api":
            return self._api(services)
        logger.warning("docgen-portal: unknown kind %r", kind, location=self.get_location(), type="docgen")
        return []

    def _services(self, services: list[dict[str, Any]]) -> list[nodes.Node]:
        rows = []
        for service in services:
            name = service["name"]
            title = _text(service.get("title")).strip() or name
            if service.get("has_api"):
                api: list[nodes.Node] = [_doc_link(f"/api/{name}", "API reference", self.env.docname)]
            elif service.get("quarantine"):
                api = [nodes.inline("not published", "not published", classes=["docgen-unpublished"])]
            else:
                api = [nodes.Text("none")]
            version = _text(service.get("version"))
            rows.append(
                [
                    [_doc_link(f"/services/{name}/index", title, self.env.docname)],
                    [nodes.literal(name, name)],
                    [nodes.literal(version, version)],
                    api,
                ]
            )
        if not rows:
            return [nodes.paragraph("No services yet.", "No services yet.")]
        return [_table(["Service", "Name", "Version", "API"], rows, "docgen-services")]

    def _api(self, services: list[dict[str, Any]]) -> list[nodes.Node]:
        docname = self.env.docname
        ids = _Ids(self.state.document)
        root = _relative_root(docname)
        downloads = nodes.section(ids=[ids.new("downloads")])
        downloads += nodes.title("Downloads", "Downloads")
        para = nodes.paragraph()
        para += nodes.Text("The whole platform's API as one OpenAPI 3.1 document: ")
        for i, fmt in enumerate(("openapi.json", "openapi.yaml")):
            if i:
                para += nodes.Text(" · ")
            para += nodes.reference(fmt, fmt, refuri=root + fmt, classes=["docgen-download"])
        downloads += para

        published = nodes.section(ids=[ids.new("services")])
        published += nodes.title("Services", "Services")
        items = nodes.bullet_list(classes=["docgen-api-list"])
        for service in services:
            if not service.get("has_api"):
                continue
            name = service["name"]
            title = _text(service.get("title")).strip() or name
            version = _text(service.get("version"))
            item = nodes.paragraph()
            item += _doc_link(f"/api/{name}", title, docname)
            item += nodes.Text(" — ")
            item += nodes.literal(name, name)
            item += nodes.Text(" ")
            item += nodes.literal(version, version)
            items += nodes.list_item("", item)
        if len(items):
            published += items
        else:
            published += nodes.paragraph("No API reference is published.", "No API reference is published.")
        result: list[nodes.Node] = [downloads, published]

        quarantined = [s for s in services if _list(s.get("quarantine"))]
        if quarantined:
            missing = nodes.section(ids=[ids.new("not-published")])
            missing += nodes.title("Not published", "Not published")
            for service in quarantined:
                name = service["name"]
                title = _text(service.get("title")).strip() or name
                subject: list[nodes.Node] = [
                    _doc_link(f"/services/{name}/index", title, docname),
                    nodes.Text(" "),
                    nodes.literal(name, name),
                    nodes.Text(" "),
                    nodes.literal(_text(service.get("version")), _text(service.get("version"))),
                ]
                reasons = [_text(r) for r in _list(service.get("quarantine"))]
                missing += quarantine_notice(reasons, subject)
            result.append(missing)
        return result


class ToctreeDirective(TocTree):
    """``docgen-toctree services|api|guide`` or ``docgen-toctree service NAME``: a toctree whose entries come
    from the data files, so no page path is ever written into generated Markdown."""

    has_content = False
    required_arguments = 1
    optional_arguments = 1

    def parse_content(self, toctree: addnodes.toctree) -> None:
        """Fill the toctree from ``_docgen`` (only documents that exist, never the current one)."""
        kind = self.arguments[0]
        location = self.get_location()
        if kind in {"services", "api"}:
            data = _dict(_load_data(self.env, f"{DATA_DIR}/portal.json", location))
            services = [_dict(s) for s in _list(data.get("services"))]
            names = [str(s.get("name")) for s in services if kind == "services" or s.get("has_api")]
            template = "services/{}/index" if kind == "services" else "api/{}"
            docnames = [template.format(name) for name in names if SERVICE_NAME.match(name)]
        elif kind == "guide":
            data = _dict(_load_data(self.env, f"{DATA_DIR}/guide.json", location))
            docnames = [str(d) for d in _list(data.get("pages"))]
        elif kind == "service" and len(self.arguments) == 2 and SERVICE_NAME.match(self.arguments[1]):
            data = _dict(_load_data(self.env, f"{DATA_DIR}/services/{self.arguments[1]}.json", location))
            docnames = [str(d) for d in _list(data.get("pages"))]
        else:
            logger.warning("docgen-toctree: bad arguments %r", self.arguments, location=self.get_location())
            return
        current = self.env.docname
        for docname in docnames:
            if docname in self.env.found_docs and docname != current:
                toctree["entries"].append((None, docname))
                toctree["includefiles"].append(docname)


# --------------------------------------------------------------------------------------------------------------
# docgen-api


class _Ids:
    """Unique, deterministic HTML ids for one document."""

    def __init__(self, document: nodes.document) -> None:
        self.document = document
        self.used: set[str] = set()

    def new(self, base: str) -> str:
        stem = nodes.make_id(base) or "id"
        candidate, n = stem, 1
        while candidate in self.used or candidate in self.document.ids:
            n += 1
            candidate = f"{stem}-{n}"
        self.used.add(candidate)
        return candidate


def _table(headers: list[str], rows: list[list[list[nodes.Node]]], *classes: str) -> nodes.table:
    table = nodes.table(classes=["docgen-table", *classes])
    group = nodes.tgroup(cols=len(headers))
    table += group
    for _ in headers:
        group += nodes.colspec(colwidth=1)
    head_row = nodes.row()
    for header in headers:
        head_row += nodes.entry("", nodes.paragraph(header, header))
    group += nodes.thead("", head_row)
    body = nodes.tbody()
    for cells in rows:
        row = nodes.row()
        for cell in cells:
            entry = nodes.entry()
            if cell and all(isinstance(n, nodes.paragraph) for n in cell):
                entry.extend(cell)
            elif cell:
                entry += nodes.paragraph("", "", *cell)
            row += entry
        body += row
    group += body
    return table


class _ApiRenderer:
    """docutils nodes for one service's OpenAPI 3.x document (untrusted: every field is type-checked)."""

    def __init__(self, spec: dict[str, Any], service: str, document: nodes.document) -> None:
        self.spec = spec
        self.service = service
        self.ids = _Ids(document)
        self.components = _dict(spec.get("components"))
        self.schemas = _dict(self.components.get("schemas"))
        # schema anchors first: operations link to them
        self.schema_ids = {name: self.ids.new(f"schema-{name}") for name in self.schemas}

    # -- schemas -----------------------------------------------------------------------------------------------

    def _ref(self, ref: str) -> nodes.Node:
        prefix = "#/components/schemas/"
        if ref.startswith(prefix):
            name = ref[len(prefix) :].replace("~1", "/").replace("~0", "~")
            if name in self.schema_ids:
                return nodes.reference(
                    name, name, refid=self.schema_ids[name], internal=True, classes=["docgen-schema-ref"]
                )
            return nodes.literal(name, name)
        return nodes.literal(_text(ref), _text(ref))

    def summary(self, schema: Any, depth: int = 0) -> list[nodes.Node]:
        """A one-line description of a schema: type, format, items, unions, enum; ``$ref`` as a link."""
        if depth > 3:
            return [nodes.Text("…")]
        if schema is False:
            return [nodes.Text("never")]
        if not isinstance(schema, dict) or not schema:
            return [nodes.Text("any")]
        ref = schema.get("$ref")
        if isinstance(ref, str):
            return [self._ref(ref)]
        out: list[nodes.Node] = []
        for key, sep in (("oneOf", " | "), ("anyOf", " | "), ("allOf", " & ")):
            parts = _list(schema.get(key))
            if parts:
                out.append(nodes.Text(f"{key}("))
                for i, part in enumerate(parts[:_MAX_LIST]):
                    if i:
                        out.append(nodes.Text(sep))
                    out.extend(self.summary(part, depth + 1))
                if len(parts) > _MAX_LIST:
                    out.append(nodes.Text(sep + "…"))
                out.append(nodes.Text(")"))
                return out
        raw_types = schema.get("type")
        types = [raw_types] if isinstance(raw_types, str) else [t for t in _list(raw_types) if isinstance(t, str)]
        if not types:
            if "properties" in schema or "additionalProperties" in schema:
                types = ["object"]
            elif "items" in schema:
                types = ["array"]
        if schema.get("nullable") is True and "null" not in types:
            types.append("null")
        for i, kind in enumerate(types or ["any"]):
            if i:
                out.append(nodes.Text(" | "))
            if kind == "array":
                out.append(nodes.Text("array of "))
                out.extend(self.summary(schema.get("items"), depth + 1))
            elif (
                kind == "object"
                and isinstance(schema.get("additionalProperties"), dict)
                and not schema.get("properties")
            ):
                out.append(nodes.Text("map of "))
                out.extend(self.summary(schema.get("additionalProperties"), depth + 1))
            else:
                out.append(nodes.Text(_text(kind)))
                if isinstance(schema.get("format"), str):
                    out.append(nodes.Text(f" ({_text(schema['format'])})"))
        enum = _list(schema.get("enum"))
        if enum:
            values = ", ".join(_text(v) for v in enum[:_MAX_LIST]) + (", …" if len(enum) > _MAX_LIST else "")
            out.append(nodes.Text(", one of "))
            out.append(nodes.literal(values, values))
        elif "const" in schema:
            out.append(nodes.Text(" = "))
            out.append(nodes.literal(_text(schema["const"]), _text(schema["const"])))
        return out

    def _flags(self, schema: Any) -> str:
        schema = _dict(schema)
        flags = [f for f in ("readOnly", "writeOnly", "deprecated") if schema.get(f) is True]
        return f" ({', '.join(flags)})" if flags else ""

    def _schema_block(self, name: str, schema: Any) -> nodes.container:
        block = nodes.container(ids=[self.schema_ids[name]], classes=["docgen-schema"])
        block += nodes.rubric(name, name, classes=["docgen-schema-name"])
        schema = _dict(schema)
        block += _paragraphs(schema.get("description"))
        properties = _dict(schema.get("properties"))
        if not properties or any(k in schema for k in ("oneOf", "anyOf", "allOf", "$ref")):
            para = nodes.paragraph("", "Type: ", classes=["docgen-schema-type"])
            para.extend(self.summary(schema))
            block += para
        if properties:
            required = {r for r in _list(schema.get("required")) if isinstance(r, str)}
            rows = []
            for prop, prop_schema in properties.items():
                type_cell = self.summary(prop_schema)
                flags = self._flags(prop_schema)
                if flags:
                    type_cell.append(nodes.Text(flags))
                rows.append(
                    [
                        [nodes.literal(_text(prop), _text(prop))],
                        type_cell,
                        [nodes.Text("yes" if prop in required else "no")],
                        _paragraphs(_dict(prop_schema).get("description")),
                    ]
                )
            block += _table(["Property", "Type", "Required", "Description"], rows, "docgen-properties")
        return block

    # -- operations --------------------------------------------------------------------------------------------

    def _resolve(self, value: Any, kind: str) -> dict[str, Any]:
        """Follow local ``#/components/{kind}/X`` references (a few levels; cycles stop)."""
        for _ in range(5):
            value = _dict(value)
            ref = value.get("$ref")
            if not isinstance(ref, str) or not ref.startswith(f"#/components/{kind}/"):
                return value
            value = _dict(self.components.get(kind)).get(ref.rsplit("/", 1)[-1].replace("~1", "/").replace("~0", "~"))
        return _dict(value)

    def _content(self, content: Any) -> list[nodes.paragraph]:
        """One ``media/type: schema`` paragraph per media type of a request or response body."""
        out: list[nodes.paragraph] = []
        for media, media_obj in _dict(content).items():
            line = nodes.paragraph(classes=["docgen-media"])
            line += nodes.literal(_text(media), _text(media))
            line += nodes.Text(": ")
            line.extend(self.summary(_dict(media_obj).get("schema")))
            out.append(line)
        return out

    def _parameters(self, path_item: dict[str, Any], operation: dict[str, Any]) -> list[nodes.Node]:
        merged: dict[tuple[str, str], dict[str, Any]] = {}
        for raw in _list(path_item.get("parameters")) + _list(operation.get("parameters")):
            param = self._resolve(raw, "parameters")
            if param:
                merged[(_text(param.get("name")), _text(param.get("in")))] = param
        if not merged:
            return []
        rows = []
        for (name, where), param in merged.items():
            schema = param.get("schema")
            if schema is None and isinstance(param.get("content"), dict):
                schema = _dict(next(iter(param["content"].values()), {})).get("schema")
            type_cell = self.summary(schema)
            if param.get("deprecated") is True:
                type_cell.append(nodes.Text(" (deprecated)"))
            rows.append(
                [
                    [nodes.literal(name, name)],
                    [nodes.Text(where)],
                    [nodes.Text("yes" if param.get("required") is True else "no")],
                    type_cell,
                    _paragraphs(param.get("description")),
                ]
            )
        return [
            nodes.rubric("Parameters", "Parameters"),
            _table(["Name", "In", "Required", "Type", "Description"], rows, "docgen-parameters"),
        ]

    def _request_body(self, operation: dict[str, Any]) -> list[nodes.Node]:
        body = self._resolve(operation.get("requestBody"), "requestBodies")
        if not body:
            return []
        label = "Request body (required)" if body.get("required") is True else "Request body"
        out: list[nodes.Node] = [nodes.rubric(label, label)]
        out += _paragraphs(body.get("description"))
        out += self._content(body.get("content"))
        return out

    def _responses(self, operation: dict[str, Any]) -> list[nodes.Node]:
        rows = []
        for status, raw in _dict(operation.get("responses")).items():
            response = self._resolve(raw, "responses")
            rows.append(
                [
                    [nodes.literal(_text(status), _text(status))],
                    _paragraphs(response.get("description")),
                    self._content(response.get("content")),
                ]
            )
        if not rows:
            return []
        return [
            nodes.rubric("Responses", "Responses"),
            _table(["Status", "Description", "Content"], rows, "docgen-responses"),
        ]

    def _operation(self, path: str, method: str, path_item: dict[str, Any], op: dict[str, Any]) -> nodes.section:
        op_id = op.get("operationId")
        anchor = self.ids.new(f"op-{op_id}" if isinstance(op_id, str) and op_id else f"op-{method}-{path}")
        deprecated = op.get("deprecated") is True
        section = nodes.section(
            ids=[anchor], classes=["docgen-operation"] + (["docgen-deprecated"] if deprecated else [])
        )
        title = nodes.title()
        title += nodes.inline(method.upper(), method.upper(), classes=["docgen-method", f"docgen-method-{method}"])
        title += nodes.Text(" ")
        title += nodes.inline(path, path, classes=["docgen-path"])
        section += title
        lead = nodes.paragraph(classes=["docgen-summary"])
        if deprecated:
            lead += nodes.inline("Deprecated", "Deprecated", classes=["docgen-deprecated-marker"])
            lead += nodes.Text(" ")
        summary = _text(op.get("summary")).strip()
        if summary:
            lead += nodes.strong(summary, summary)
        if isinstance(op_id, str) and op_id:
            lead += nodes.Text(" · operation ")
            lead += nodes.literal(_text(op_id), _text(op_id))
        if len(lead):
            section += lead
        section += _paragraphs(op.get("description"))
        section += self._parameters(path_item, op)
        section += self._request_body(op)
        section += self._responses(op)
        return section

    # -- the page ----------------------------------------------------------------------------------------------

    def render(self) -> list[nodes.Node]:
        """Sections per tag with their operations, then the schemas."""
        spec = self.spec
        out: list[nodes.Node] = []
        info = _dict(spec.get("info"))
        out += _paragraphs(info.get("description"), classes=["docgen-api-description"])

        tag_docs: dict[str, Any] = {}
        for tag in _list(spec.get("tags")):
            tag = _dict(tag)
            if isinstance(tag.get("name"), str):
                tag_docs.setdefault(tag["name"], tag.get("description"))
        groups: dict[str, list[tuple[str, str, dict[str, Any], dict[str, Any]]]] = {t: [] for t in tag_docs}
        untagged: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = []
        for path, path_item in _dict(spec.get("paths")).items():
            path_item = _dict(path_item)
            for method in HTTP_METHODS:
                op = path_item.get(method)
                if not isinstance(op, dict):
                    continue
                tags = [t for t in _list(op.get("tags")) if isinstance(t, str)]
                entry = (_text(path), method, path_item, op)
                if tags:
                    groups.setdefault(tags[0], []).append(entry)
                else:
                    untagged.append(entry)
        prefix = f"{self.service}: "
        for tag, ops in groups.items():
            if not ops:
                continue
            label = _text(tag[len(prefix) :] if tag.startswith(prefix) and len(tag) > len(prefix) else tag)
            section = nodes.section(ids=[self.ids.new(f"tag-{label}")], classes=["docgen-tag"])
            section += nodes.title(label, label)
            section += _paragraphs(tag_docs.get(tag))
            section.extend(self._operation(*entry) for entry in ops)
            out.append(section)
        if untagged:
            section = nodes.section(ids=[self.ids.new("tag-other")], classes=["docgen-tag"])
            section += nodes.title("Operations", "Operations")
            section.extend(self._operation(*entry) for entry in untagged)
            out.append(section)
        if not groups and not untagged:
            out.append(nodes.paragraph("This API has no operations.", "This API has no operations."))

        if self.schemas:
            section = nodes.section(ids=[self.ids.new("schemas")], classes=["docgen-schemas"])
            section += nodes.title("Schemas", "Schemas")
            section.extend(self._schema_block(name, schema) for name, schema in self.schemas.items())
            out.append(section)
        return out


class ApiDirective(_DataDirective):
    """``docgen-api NAME``: the API reference of one service, from ``_docgen/api/NAME.json``."""

    def run(self) -> list[nodes.Node]:
        name = self._service()
        if name is None:
            return []
        spec = self._data(f"{DATA_DIR}/api/{name}.json")
        if not isinstance(spec, dict):
            return []
        return _ApiRenderer(spec, name, self.state.document).render()


# --------------------------------------------------------------------------------------------------------------
# transforms


class ServiceIndexHeader(SphinxTransform):
    """A service's own ``index.md`` still gets the portal's header and the quarantine notice, after its title."""

    default_priority = 850

    def apply(self, **kwargs: Any) -> None:
        match = _SERVICE_INDEX.match(self.env.docname)
        if not match or any("docgen-service-header" in n["classes"] for n in self.document.findall(nodes.container)):
            return
        name = match.group(1)
        data = _dict(_load_data(self.env, f"{DATA_DIR}/services/{name}.json", (self.env.docname, 1)))
        if not data:
            return
        quarantine = _dict(_load_data(self.env, f"{DATA_DIR}/quarantine/{name}.json", (self.env.docname, 1)))
        inserted: list[nodes.Node] = [service_header(data, self.env.docname, api_page=False)]
        reasons = [_text(r) for r in _list(quarantine.get("reasons"))]
        if reasons:
            inserted.append(quarantine_notice(reasons))
        section = next(iter(self.document.findall(nodes.section)), None)
        if section is not None and len(section) and isinstance(section[0], nodes.title):
            for offset, node in enumerate(inserted, start=1):
                section.insert(offset, node)
        else:
            for offset, node in enumerate(inserted):
                self.document.insert(offset, node)


class ApplyTitles(SphinxTransform):
    """Replace the title of the section around each ``docgen_title`` marker (before Sphinx records titles)."""

    default_priority = 855

    def apply(self, **kwargs: Any) -> None:
        for marker in list(self.document.findall(docgen_title)):
            title_text = marker["title"]
            parent = marker.parent
            section = parent if isinstance(parent, nodes.section) else None
            if section is not None and len(section) and isinstance(section[0], nodes.title):
                section[0].children = []
                section[0] += nodes.Text(title_text)
            marker.parent.remove(marker)


def _inline_context(node: nodes.Node) -> bool:
    return isinstance(node.parent, nodes.TextElement | nodes.Inline)


def _inside_srcdir(env: BuildEnvironment, target: str, docname: str) -> bool:
    _rel, abs_path = env.relfn2path(target, docname)
    root = os.path.realpath(env.srcdir)
    return os.path.realpath(abs_path).startswith(root + os.sep)


def _local_raster(env: BuildEnvironment, uri: str, docname: str | None) -> bool:
    """A relative path to a raster image inside the source tree (no scheme, no ``//host``, no globbing)."""
    cleaned = _URL_NOISE.sub("", uri)
    if not cleaned or _url_scheme(uri) is not None or cleaned.startswith("//") or "\\" in cleaned or "*" in cleaned:
        return False
    if os.path.splitext(cleaned)[1].lower() not in RASTER_SUFFIXES:
        return False
    return docname is None or _inside_srcdir(env, uri, docname)


_WATCHED = (nodes.raw, nodes.meta, nodes.math, nodes.math_block, nodes.image, nodes.reference, addnodes.toctree)


def _replace_image(image: nodes.image, env: BuildEnvironment, docname: str | None) -> None:
    uri = str(image.get("uri", ""))
    if _local_raster(env, uri, docname):
        return
    alt = _text(image.get("alt", "")).strip()
    if _url_scheme(uri) in {"http", "https"}:
        # A remote image would make the page fetch from outside the site: link to it instead.
        label = alt or f"image: {_short(uri)}"
        replacement: nodes.Node = nodes.reference(label, label, refuri=uri, classes=["docgen-remote-image"])
        if isinstance(image.parent, nodes.reference):
            replacement = nodes.Text(label)
    else:
        label = f"[image not shown: {_short(alt or uri, 60)}]"
        replacement = nodes.inline(label, label, classes=["docgen-blocked"])
    if not _inline_context(image) and not isinstance(replacement, nodes.Text):
        replacement = nodes.paragraph("", "", replacement)
    image.replace_self(replacement)


def sanitise(document: nodes.Node, env: BuildEnvironment, docname: str | None) -> None:
    """Make a doctree safe to publish (see the module docstring). ``docname`` None: already checked at read time
    (paths are then relative to the source tree and are not resolved again)."""
    # one walk over the tree (this runs twice for every page), then the changes
    found: dict[type, list[nodes.Element]] = {kind: [] for kind in _WATCHED}
    for node in document.findall(lambda n: isinstance(n, _WATCHED)):
        for kind in _WATCHED:
            if isinstance(node, kind):
                found[kind].append(node)  # type: ignore[arg-type]
                break
    for raw in found[nodes.raw]:
        text = raw.astext()
        if _inline_context(raw):
            raw.replace_self(nodes.literal(text, text, classes=["docgen-raw"]))
        else:
            raw.replace_self(nodes.literal_block(text, text, classes=["docgen-raw"], language="text"))
    for meta in found[nodes.meta]:
        meta.parent.remove(meta)
    # MathJax would be loaded from a CDN: show the TeX source instead.
    for math in found[nodes.math]:
        math.replace_self(nodes.literal(math.astext(), math.astext(), classes=["docgen-math"]))
    for math in found[nodes.math_block]:
        text = math.astext()
        math.replace_self(nodes.literal_block(text, text, classes=["docgen-math"], language="text"))
    for image in found[nodes.image]:
        _replace_image(image, env, docname)  # type: ignore[arg-type]
    for ref in found[nodes.reference]:
        if ref.parent is None:
            continue
        if isinstance(ref, addnodes.download_reference) and docname is not None:
            # read time, before Sphinx collects the file: only raster images inside the source tree
            target = str(ref.get("reftarget", ""))
            if _url_scheme(target) not in {"http", "https"} and not _local_raster(env, target, docname):
                ref.replace_self(nodes.inline("", "", *ref.children, classes=["docgen-blocked"]))
                continue
        uri = ref.get("refuri")
        if isinstance(uri, str) and not _link_allowed(uri):
            ref.replace_self(nodes.inline("", "", *ref.children, classes=["docgen-blocked"]))
    for toctree in found[addnodes.toctree]:
        toctree["entries"] = [
            (title, ref) for title, ref in toctree["entries"] if not (url_re.match(ref) and not _link_allowed(ref))
        ]


class Sanitise(SphinxTransform):
    """Read time: before ``doctree-read`` (880), so images and downloads are collected only once safe."""

    default_priority = 870

    def apply(self, **kwargs: Any) -> None:
        sanitise(self.document, self.env, self.env.docname)


class SanitiseResolved(SphinxPostTransform):
    """Write time, after references are resolved: catches whatever a later stage produced."""

    default_priority = 900

    def run(self, **kwargs: Any) -> None:
        sanitise(self.document, self.env, None)


# --------------------------------------------------------------------------------------------------------------
# events


def _lock_down(app: Sphinx) -> None:
    """No raw output, no file/URL insertion, no docutils.conf: the Markdown is untrusted."""
    settings = app.env.settings
    settings["raw_enabled"] = False
    settings["file_insertion_enabled"] = False
    settings["_disable_config"] = True


def strip_myst_front_matter(text: str) -> str:
    """Drop the front-matter keys through which a page could reconfigure MyST.

    The block is found exactly as ``myst_parser.config.main.read_topmatter`` finds it; the line count is kept
    so warnings still point at the right lines.
    """
    if not text.startswith("---"):
        return text
    lines = text.splitlines(keepends=True)
    end = next((i for i in range(1, len(lines)) if lines[i].startswith(("---", "..."))), len(lines))
    try:
        data = yaml.safe_load("".join(line.rstrip() + "\n" for line in lines[1:end]))
    except (yaml.YAMLError, ValueError, RecursionError):
        return text  # MyST ignores front matter it cannot read
    if not isinstance(data, dict) or not (set(data) & _MYST_CONFIG_KEYS):
        return text
    kept = {k: v for k, v in data.items() if k not in _MYST_CONFIG_KEYS}
    dumped = yaml.safe_dump(kept, sort_keys=False, allow_unicode=True) if kept else ""
    dumped_lines = dumped.splitlines(keepends=True)
    if any(line.startswith(("---", "...")) for line in dumped_lines) or len(dumped_lines) > end - 1:
        dumped_lines = []  # cannot keep the other keys safely in place: drop them all
    padding = ["\n"] * (end - 1 - len(dumped_lines))
    return "".join([lines[0], *dumped_lines, *padding, *lines[end:]])


def _on_source_read(app: Sphinx, docname: str, source: list[str]) -> None:
    source[0] = strip_myst_front_matter(source[0])


def _navigation_changed(app: Sphinx, env: BuildEnvironment) -> list[str]:
    """Every page shows the whole navigation: rewrite them all when a title or a toctree changed.

    Sphinx itself only rewrites the parents of a changed document, so other pages would keep a stale sidebar.
    """
    state = {
        doc: [env.titles[doc].astext() if doc in env.titles else "", list(env.toctree_includes.get(doc, []))]
        for doc in sorted(env.found_docs)
    }
    digest = hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()
    previous = getattr(env, "docgen_navigation", None)
    env.docgen_navigation = digest  # type: ignore[attr-defined]
    if previous is not None and previous != digest:
        return sorted(env.found_docs)
    return []


class Navigation:
    """The sidebar's navigation tree, built once per build from the documents' titles and toctrees.

    Rendered for each page as nested lists expanded along the page's branch (like Sphinx's collapsed global
    toctree, titles only). Sphinx's own ``toctree()`` copies every included document's table of contents for
    every page, which took half of a 100-service build.
    """

    def __init__(self, env: BuildEnvironment) -> None:
        self.root = env.config.root_doc
        self.titles = {doc: title.astext() for doc, title in env.titles.items()}
        self.children = {
            doc: [c for c in includes if c in env.found_docs] for doc, includes in env.toctree_includes.items()
        }
        # each document's place: the first toctree that reaches it, breadth first (the tree has no cycles)
        self.parent: dict[str, str] = {}
        queue, seen = [self.root], {self.root}
        while queue:
            doc = queue.pop(0)
            for child in self.children.get(doc, []):
                if child not in seen:
                    seen.add(child)
                    self.parent[child] = doc
                    queue.append(child)

    def render(self, pagename: str, builder: Any) -> str:
        """The HTML list for ``pagename`` (every title escaped)."""
        chain = {pagename}
        doc = pagename
        while doc in self.parent:
            doc = self.parent[doc]
            chain.add(doc)
        return self._list(self.root, pagename, chain, builder, 1)

    def _list(self, doc: str, page: str, chain: set[str], builder: Any, level: int) -> str:
        items = []
        for child in self.children.get(doc, []):
            current = child in chain
            sub = ""
            if current and self.parent.get(child) == doc and level < 6:
                sub = self._list(child, page, chain, builder, level + 1)
            href = html.escape(builder.get_relative_uri(page, child))
            title = html.escape(self.titles.get(child, child))
            li_class = f"toctree-l{level} current" if current else f"toctree-l{level}"
            a_class = "reference internal current" if child == page else "reference internal"
            items.append(f'<li class="{li_class}"><a class="{a_class}" href="{href}">{title}</a>{sub}</li>')
        if not items:
            return ""
        return ('<ul class="current">' if doc in chain else "<ul>") + "".join(items) + "</ul>"


def _page_context(app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any) -> None:
    navigation = getattr(app, "_docgen_navigation", None)
    if navigation is None:
        navigation = Navigation(app.env)
        app._docgen_navigation = navigation  # type: ignore[attr-defined]  # one per build (and per worker)
    context["docgen_navigation"] = navigation.render(pagename, app.builder)


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the portal's directives, transforms and event handlers."""
    app.add_directive("docgen-api", ApiDirective)
    app.add_directive("docgen-quarantine", QuarantineDirective)
    app.add_directive("docgen-service", ServiceDirective)
    app.add_directive("docgen-portal", PortalDirective)
    app.add_directive("docgen-toctree", ToctreeDirective)
    app.add_transform(ServiceIndexHeader)
    app.add_transform(ApplyTitles)
    app.add_transform(Sanitise)
    app.add_post_transform(SanitiseResolved)
    app.connect("builder-inited", _lock_down)
    app.connect("source-read", _on_source_read)
    app.connect("env-get-updated", _navigation_changed)
    app.connect("html-page-context", _page_context)
    return {"version": "1", "env_version": 1, "parallel_read_safe": True, "parallel_write_safe": True}
