"""The portal's directives and transforms: its generated pages rendered from the JSON files under ``_docgen/``.

``docgen-api``, ``docgen-quarantine``, ``docgen-service``, ``docgen-portal`` and ``docgen-toctree`` build
docutils nodes, so no untrusted string is ever parsed as Markdown or HTML. Each one notes its JSON file as a
dependency, so Sphinx re-reads exactly the pages whose data changed. Two transforms finish the pages: a
service's own ``index.md`` gets the portal's header, and ``docgen_title`` markers set their section's title.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx import addnodes
from sphinx.directives.other import TocTree
from sphinx.environment import BuildEnvironment
from sphinx.transforms import SphinxTransform
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

from docgen.names import SERVICE_NAME, SERVICE_NAME_PATTERN
from docgen.sphinx_api import ApiRenderer
from docgen.sphinx_blocks import Ids, as_dict, as_list, display_text, doc_link, make_table, relative_root

__all__ = [
    "ApiDirective",
    "ApplyTitles",
    "PortalDirective",
    "QuarantineDirective",
    "ServiceDirective",
    "ServiceIndexHeader",
    "ToctreeDirective",
    "docgen_title",
    "quarantine_notice",
    "service_header",
]

logger = logging.getLogger(__name__)

DATA_DIR = "_docgen"
QUARANTINE_TITLE = "API reference not published"
_SERVICE_INDEX = re.compile(rf"services/({SERVICE_NAME_PATTERN})/index")  # fullmatch


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
        if not SERVICE_NAME.fullmatch(name):
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
        data = as_dict(self._data(f"{DATA_DIR}/quarantine/{name}.json"))
        reasons = [display_text(r) for r in as_list(data.get("reasons"))]
        return [quarantine_notice(reasons)] if reasons else []


def service_header(data: dict[str, Any], refdoc: str, *, api_page: bool) -> nodes.container:
    """Version, source and the link between a service's docs and its API reference."""
    header = nodes.container(classes=["docgen-service-header"])
    para = nodes.paragraph(classes=["docgen-service-meta"])
    name = display_text(data.get("name"))
    para += nodes.Text("Version ")
    para += nodes.literal(display_text(data.get("version")), display_text(data.get("version")))
    source = display_text(data.get("source"))
    if source:
        para += nodes.Text(" · source: ")
        para += nodes.inline(source, source, classes=["docgen-source"])
    if not SERVICE_NAME.fullmatch(name):
        pass  # no link from a name that is not one
    elif api_page:
        para += nodes.Text(" · ")
        para += doc_link(f"/services/{name}/index", "service documentation", refdoc)
    elif data.get("has_api"):
        para += nodes.Text(" · ")
        para += doc_link(f"/api/{name}", "API reference", refdoc)
    header += para
    return header


class ServiceDirective(_DataDirective):
    """``docgen-service NAME [:api:]``: the page title becomes the service's title, followed by its header."""

    option_spec: ClassVar[dict[str, Any]] = {"api": directives.flag}

    def run(self) -> list[nodes.Node]:
        name = self._service()
        if name is None:
            return []
        data = as_dict(self._data(f"{DATA_DIR}/services/{name}.json"))
        if not data:
            return []
        title = display_text(data.get("title")).strip() or name
        api_page = "api" in self.options
        marker = docgen_title(title=f"{title} API" if api_page else title)
        return [marker, service_header(data, self.env.docname, api_page=api_page)]


class PortalDirective(SphinxDirective):
    """``docgen-portal title|services|api``: the portal's generated overview pages, from ``_docgen/portal.json``."""

    has_content = False
    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        kind = self.arguments[0]
        data = as_dict(_load_data(self.env, f"{DATA_DIR}/portal.json", self.get_location()))
        services = [
            as_dict(s) for s in as_list(data.get("services")) if SERVICE_NAME.fullmatch(str(as_dict(s).get("name")))
        ]
        if kind == "title":
            return [docgen_title(title=display_text(data.get("title")).strip() or "Documentation")]
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
            title = display_text(service.get("title")).strip() or name
            if service.get("has_api"):
                api: list[nodes.Node] = [doc_link(f"/api/{name}", "API reference", self.env.docname)]
            elif service.get("quarantine"):
                api = [nodes.inline("not published", "not published", classes=["docgen-unpublished"])]
            else:
                api = [nodes.Text("none")]
            version = display_text(service.get("version"))
            rows.append(
                [
                    [doc_link(f"/services/{name}/index", title, self.env.docname)],
                    [nodes.literal(name, name)],
                    [nodes.literal(version, version)],
                    api,
                ]
            )
        if not rows:
            return [nodes.paragraph("No services yet.", "No services yet.")]
        return [make_table(["Service", "Name", "Version", "API"], rows, "docgen-services")]

    def _api(self, services: list[dict[str, Any]]) -> list[nodes.Node]:
        docname = self.env.docname
        ids = Ids(self.state.document)
        root = relative_root(docname)
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
            title = display_text(service.get("title")).strip() or name
            version = display_text(service.get("version"))
            item = nodes.paragraph()
            item += doc_link(f"/api/{name}", title, docname)
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

        quarantined = [s for s in services if as_list(s.get("quarantine"))]
        if quarantined:
            missing = nodes.section(ids=[ids.new("not-published")])
            missing += nodes.title("Not published", "Not published")
            for service in quarantined:
                name = service["name"]
                title = display_text(service.get("title")).strip() or name
                subject: list[nodes.Node] = [
                    doc_link(f"/services/{name}/index", title, docname),
                    nodes.Text(" "),
                    nodes.literal(name, name),
                    nodes.Text(" "),
                    nodes.literal(display_text(service.get("version")), display_text(service.get("version"))),
                ]
                reasons = [display_text(r) for r in as_list(service.get("quarantine"))]
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
            data = as_dict(_load_data(self.env, f"{DATA_DIR}/portal.json", location))
            services = [as_dict(s) for s in as_list(data.get("services"))]
            names = [str(s.get("name")) for s in services if kind == "services" or s.get("has_api")]
            template = "services/{}/index" if kind == "services" else "api/{}"
            docnames = [template.format(name) for name in names if SERVICE_NAME.fullmatch(name)]
        elif kind == "guide":
            data = as_dict(_load_data(self.env, f"{DATA_DIR}/guide.json", location))
            docnames = [str(d) for d in as_list(data.get("pages"))]
        elif kind == "service" and len(self.arguments) == 2 and SERVICE_NAME.fullmatch(self.arguments[1]):
            data = as_dict(_load_data(self.env, f"{DATA_DIR}/services/{self.arguments[1]}.json", location))
            docnames = [str(d) for d in as_list(data.get("pages"))]
        else:
            logger.warning("docgen-toctree: bad arguments %r", self.arguments, location=self.get_location())
            return
        current = self.env.docname
        for docname in docnames:
            if docname in self.env.found_docs and docname != current:
                toctree["entries"].append((None, docname))
                toctree["includefiles"].append(docname)


class ApiDirective(_DataDirective):
    """``docgen-api NAME``: the API reference of one service, from ``_docgen/api/NAME.json``."""

    def run(self) -> list[nodes.Node]:
        name = self._service()
        if name is None:
            return []
        spec = self._data(f"{DATA_DIR}/api/{name}.json")
        if not isinstance(spec, dict):
            return []
        return ApiRenderer(spec, name, self.state.document).render()


# --------------------------------------------------------------------------------------------------------------
# transforms


class ServiceIndexHeader(SphinxTransform):
    """A service's own ``index.md`` still gets the portal's header and the quarantine notice, after its title."""

    default_priority = 850

    def apply(self, **kwargs: Any) -> None:
        match = _SERVICE_INDEX.fullmatch(self.env.docname)
        if not match or any("docgen-service-header" in n["classes"] for n in self.document.findall(nodes.container)):
            return
        name = match.group(1)
        data = as_dict(_load_data(self.env, f"{DATA_DIR}/services/{name}.json", (self.env.docname, 1)))
        if not data:
            return
        quarantine = as_dict(_load_data(self.env, f"{DATA_DIR}/quarantine/{name}.json", (self.env.docname, 1)))
        inserted: list[nodes.Node] = [service_header(data, self.env.docname, api_page=False)]
        reasons = [display_text(r) for r in as_list(quarantine.get("reasons"))]
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
