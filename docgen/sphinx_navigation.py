"""Navigation: the sidebar's tree, and every page rewritten when a title or a toctree changed.

The tree is rendered by :class:`Navigation` (cheaper than Sphinx's ``toctree()``); :func:`navigation_changed`
makes Sphinx rewrite every page when the tree changed (Sphinx itself would leave stale sidebars).
"""

from __future__ import annotations

import hashlib
import html
import json
from typing import Any

from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment

__all__ = ["Navigation", "navigation_changed", "page_context"]


def navigation_changed(app: Sphinx, env: BuildEnvironment) -> list[str]:
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
        return self.as_list(self.root, pagename, chain, builder, 1)

    def as_list(self, doc: str, page: str, chain: set[str], builder: Any, level: int) -> str:
        items = []
        for child in self.children.get(doc, []):
            current = child in chain
            sub = ""
            if current and self.parent.get(child) == doc and level < 6:
                sub = self.as_list(child, page, chain, builder, level + 1)
            href = html.escape(builder.get_relative_uri(page, child))
            title = html.escape(self.titles.get(child, child))
            li_class = f"toctree-l{level} current" if current else f"toctree-l{level}"
            a_class = "reference internal current" if child == page else "reference internal"
            items.append(f'<li class="{li_class}"><a class="{a_class}" href="{href}">{title}</a>{sub}</li>')
        if not items:
            return ""
        return ('<ul class="current">' if doc in chain else "<ul>") + "".join(items) + "</ul>"


def page_context(app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any) -> None:
    """``html-page-context``: the page's sidebar tree, for the ``navigation.html`` template."""
    navigation = getattr(app, "_docgen_navigation", None)
    if navigation is None:
        navigation = Navigation(app.env)
        app._docgen_navigation = navigation  # type: ignore[attr-defined]  # one per build (and per worker)
    context["docgen_navigation"] = navigation.render(pagename, app.builder)
