"""``docgen-catalogue``: the service catalogue of the landing page, from ``_docgen/catalogue.json``.

A Sphinx extension of its own (``conf.py`` lists it after :mod:`docgen.sphinx_ext`). The directive builds a
table of docutils nodes (a caption, a header row, one row per service sorted by name): every value from the data
file goes through :func:`~docgen.sphinx_blocks.display_text` into ``Text``/``literal``/``inline`` nodes, and the
only links are ``pending_xref`` nodes to the services' pages, so nothing untrusted is parsed as markup.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

from docgen.catalogue import (
    CATALOGUE_FILE,
    NOT_DEPLOYED,
    STATUS_DOCS_ONLY,
    STATUS_PUBLISHED,
    STATUS_QUARANTINED,
    UNKNOWN,
    status_text,
)
from docgen.names import SERVICE_NAME
from docgen.sphinx_blocks import Ids, as_dict, as_list, display_text, doc_link, make_table

__all__ = ["CatalogueDirective", "setup"]

logger = logging.getLogger(__name__)

CAPTION = "Service catalogue"


def _text(value: Any) -> str:
    return display_text(value).strip()


class CatalogueDirective(SphinxDirective):
    """``docgen-catalogue``: every service with its title, version, status and, from ``--from-env``, where and
    when it was last deployed."""

    has_content = False
    required_arguments = 0
    optional_arguments = 0

    def _data(self) -> dict[str, Any]:
        self.env.note_dependency(CATALOGUE_FILE)
        try:
            return as_dict(json.loads(Path(self.env.srcdir, CATALOGUE_FILE).read_bytes()))
        except FileNotFoundError:
            why = "is missing"
        except (OSError, ValueError, RecursionError) as exc:
            why = f"cannot be read: {exc}"
        logger.warning("docgen: data file %s %s", CATALOGUE_FILE, why, location=self.get_location(), type="docgen")
        return {}

    def run(self) -> list[nodes.Node]:
        data = self._data()
        environment = as_dict(data.get("environment")) if data.get("environment") is not None else None
        services = [as_dict(s) for s in as_list(data.get("services"))]
        services = sorted(
            (s for s in services if SERVICE_NAME.fullmatch(str(s.get("name")))), key=lambda s: str(s["name"])
        )
        if not services:
            return [nodes.paragraph("No services yet.", "No services yet.")]
        result: list[nodes.Node] = []
        headers = ["Service", "Version", "Status"]
        if environment is not None:
            env_name = _text(environment.get("name")) or UNKNOWN
            colour = _text(environment.get("live_colour")) or UNKNOWN
            intro = nodes.paragraph(classes=["docgen-catalogue-environment"])
            intro += nodes.Text("Deployments in environment ")
            intro += nodes.literal(env_name, env_name)
            intro += nodes.Text(", live colour: ")
            intro += nodes.literal(colour, colour)
            intro += nodes.Text(".")
            result.append(intro)
            headers += ["Live colour", "Last deployed (UTC)"]
        rows = [self._row(service, environment is not None) for service in services]
        table = make_table(headers, rows, "docgen-catalogue")
        table["ids"] = [Ids(self.state.document).new("service-catalogue")]
        table.insert(0, nodes.title(CAPTION, CAPTION))  # rendered as the table's <caption>
        next(iter(table.findall(nodes.colspec)))["stub"] = 1  # the service column: row headers (<th>)
        result.append(table)
        return result

    def _row(self, service: dict[str, Any], with_environment: bool) -> list[list[nodes.Node]]:
        name = service["name"]
        title = _text(service.get("title")) or name
        version = _text(service.get("version"))
        status = service.get("status")
        if status == STATUS_QUARANTINED:
            status_cell: list[nodes.Node] = [
                nodes.inline("quarantined", "quarantined", classes=["docgen-status-quarantined"])
            ]
            reason = _text(service.get("reason"))
            if reason:
                status_cell += [nodes.Text(": "), nodes.inline(reason, reason, classes=["docgen-reason"])]
        else:
            kind = STATUS_PUBLISHED if status == STATUS_PUBLISHED else STATUS_DOCS_ONLY
            text = status_text(kind)
            status_cell = [nodes.inline(text, text, classes=[f"docgen-status-{kind}"])]
        row: list[list[nodes.Node]] = [
            [doc_link(f"/services/{name}/index", title, self.env.docname)],
            [nodes.literal(version, version)] if version else [],
            status_cell,
        ]
        if with_environment:
            deployed = service.get("deployed")
            if isinstance(deployed, dict):
                colour = _text(deployed.get("colour")) or UNKNOWN
                at = _text(deployed.get("at")) or UNKNOWN
                row += [[nodes.Text(colour)], [nodes.literal(at, at) if at != UNKNOWN else nodes.Text(at)]]
            else:
                row += [[nodes.Text(NOT_DEPLOYED)], [nodes.Text(NOT_DEPLOYED)]]
        return row


def setup(app: Sphinx) -> dict[str, Any]:
    """Register ``docgen-catalogue``."""
    app.add_directive("docgen-catalogue", CatalogueDirective)
    return {"version": "1", "env_version": 1, "parallel_read_safe": True, "parallel_write_safe": True}
