"""The docs portal's Sphinx extension: untrusted Markdown never runs, and the portal's own pages come from data.

Listed as ``docgen.sphinx_ext`` in the ``conf.py`` that :func:`docgen.site.render_sources` writes; :func:`setup`
registers the pieces, each in its own module:

* :mod:`~docgen.sphinx_sanitise`: the lock-down of every team's untrusted Markdown (and of how deep it nests);
* :mod:`~docgen.sphinx_directives`: the directives and transforms that render the portal's generated pages
  from the JSON files under ``_docgen/``;
* :mod:`~docgen.sphinx_api`: a service's API reference as docutils nodes (used by ``docgen-api``);
* :mod:`~docgen.sphinx_navigation`: the sidebar's tree, rewritten on every page when it changed;
* :mod:`~docgen.sphinx_blocks`: untrusted values as plain-text docutils nodes (shared by the others).
"""

from __future__ import annotations

from typing import Any

from sphinx.application import Sphinx

from docgen.sphinx_directives import (
    ApiDirective,
    ApplyTitles,
    PortalDirective,
    QuarantineDirective,
    ServiceDirective,
    ServiceIndexHeader,
    ToctreeDirective,
    quarantine_notice,
    service_header,
)
from docgen.sphinx_navigation import Navigation, navigation_changed, page_context
from docgen.sphinx_sanitise import (
    BoundedMystParser,
    Sanitise,
    SanitiseResolved,
    lock_down,
    on_source_read,
    sanitise,
    strip_myst_front_matter,
)

__all__ = ["Navigation", "quarantine_notice", "sanitise", "service_header", "setup", "strip_myst_front_matter"]


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the portal's directives, transforms and event handlers."""
    # After myst_parser's own setup (conf.py lists it first): every Markdown page goes through the bounded parser.
    app.add_source_parser(BoundedMystParser, override=True)
    app.add_directive("docgen-api", ApiDirective)
    app.add_directive("docgen-quarantine", QuarantineDirective)
    app.add_directive("docgen-service", ServiceDirective)
    app.add_directive("docgen-portal", PortalDirective)
    app.add_directive("docgen-toctree", ToctreeDirective)
    app.setup_extension("docgen.catalogue_sphinx")  # the landing page's service catalogue (docgen-catalogue)
    app.add_transform(ServiceIndexHeader)
    app.add_transform(ApplyTitles)
    app.add_transform(Sanitise)
    app.add_post_transform(SanitiseResolved)
    app.connect("builder-inited", lock_down)
    app.connect("source-read", on_source_read)
    app.connect("env-get-updated", navigation_changed)
    app.connect("html-page-context", page_context)
    return {"version": "1", "env_version": 1, "parallel_read_safe": True, "parallel_write_safe": True}
