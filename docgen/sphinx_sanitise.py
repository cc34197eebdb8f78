"""The lock-down of untrusted Markdown: nothing a team writes runs, loads from elsewhere or reconfigures the build.

docutils' ``raw`` and file insertion (``include``, ``literalinclude``, ``csv-table :file:/:url:``,
``raw :file:``) are switched off and docutils config files ignored (:func:`lock_down`); MyST front matter may
not change MyST's configuration (:func:`strip_myst_front_matter`: ``myst: enable_extensions: [substitution]``
would hand the page an unsandboxed Jinja2 with the Sphinx environment in scope); and :func:`sanitise`, run when
a page is read and again after references are resolved, turns raw HTML into visible text, drops ``meta`` tags,
neutralises links whose scheme is not http/https/mailto (or relative), replaces remote images by plain links (a
page makes no request outside the site), accepts local images and downloads only when they are raster images
inside the source tree, and shows math as text (MathJax would come from a CDN).

One page can never fail the portal either. docutils and Sphinx walk a doctree recursively (transforms, pickling
the environment, the HTML writer), so a page nested a few hundred levels deep, which ten kilobytes of
``{eval-rst}`` lists or of nested MyST directives make, would raise ``RecursionError`` somewhere in the build.
:class:`BoundedMystParser` parses each page as MyST does, then measures the doctree without recursion; a page
deeper than :data:`MAX_PAGE_DEPTH` (or whose parsing itself ran out of stack) keeps only its title and a
visible notice, and a one-line warning names it. Everything after the parser sees shallow doctrees only.
"""

from __future__ import annotations

import os
import re
from typing import Any

import yaml
from docutils import nodes
from myst_parser.parsers.sphinx_ import MystParser
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.transforms import SphinxTransform
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util import logging, url_re

from autocore.errors import ToolkitError
from autocore.loading import load_yaml
from docgen.sphinx_blocks import display_text, shorten

__all__ = [
    "MAX_PAGE_DEPTH",
    "BoundedMystParser",
    "Sanitise",
    "SanitiseResolved",
    "doctree_depth",
    "lock_down",
    "on_source_read",
    "sanitise",
    "strip_myst_front_matter",
    "too_deep_message",
]

logger = logging.getLogger(__name__)

LINK_SCHEMES = frozenset({"http", "https", "mailto"})
RASTER_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".webp"})
# Front matter keys through which a page could change MyST's configuration (see myst_parser merge_file_level).
_MYST_CONFIG_KEYS = frozenset({"myst", "mystnb", "substitutions", "html_meta"})
# Browsers drop ASCII whitespace and control characters inside a URL scheme ("java\tscript:").
_URL_NOISE = re.compile(r"[\x00-\x20\x7f]")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")


def _url_scheme(url: str) -> str | None:
    """The URL's scheme, lower case, as a browser reads it (whitespace and controls dropped); None if relative."""
    match = _SCHEME.match(_URL_NOISE.sub("", url))
    return match.group(1).lower() if match else None


def _link_allowed(url: str) -> bool:
    """http, https, mailto or a relative URL (no scheme)."""
    scheme = _url_scheme(url)
    return scheme is None or scheme in LINK_SCHEMES


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
    alt = display_text(image.get("alt", "")).strip()
    if _url_scheme(uri) in {"http", "https"}:
        # A remote image would make the page fetch from outside the site: link to it instead.
        label = alt or f"image: {shorten(uri)}"
        replacement: nodes.Node = nodes.reference(label, label, refuri=uri, classes=["docgen-remote-image"])
        if isinstance(image.parent, nodes.reference):
            replacement = nodes.Text(label)
    else:
        label = f"[image not shown: {shorten(alt or uri, 60)}]"
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
# the build's settings and the pages' front matter


def lock_down(app: Sphinx) -> None:
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
        data = load_yaml("".join(line.rstrip() + "\n" for line in lines[1:end]), "front matter", loader=yaml.SafeLoader)
    except ToolkitError:
        # Past a budget (an alias bomb, deep nesting): MyST would parse it again, unbounded. Blank it out.
        return "\n" * min(end + 1, len(lines)) + "".join(lines[end + 1 :])
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


def on_source_read(app: Sphinx, docname: str, source: list[str]) -> None:
    """``source-read``: the page's front matter loses the keys that would reconfigure MyST."""
    source[0] = strip_myst_front_matter(source[0])


# --------------------------------------------------------------------------------------------------------------
# nesting: a page too deep for docutils and Sphinx becomes a notice

# Element levels under the document (a list level is two: the list and its item). The portal's own pages, API
# references included, stay near 12; Markdown alone near 22 (markdown-it stops nesting lists and quotes at 20);
# thirty admonitions one in another make 33. Pickling the doctree fails at about 190 levels (Python's default
# recursion limit of 1000, a few frames per level): 100 leaves room for a deeper stack underneath.
MAX_PAGE_DEPTH = 100
NOTICE_TITLE = "Page not published"
_MAX_TITLE = 200
# What a fresh document holds apart from these is what parsing filled in (ids, names, footnotes, messages).
_KEPT_ATTRIBUTES = frozenset(
    {"settings", "reporter", "transformer", "current_source", "current_line", "attributes", "_document"}
)


def too_deep_message(limit: int = MAX_PAGE_DEPTH) -> str:
    """The notice's text and the warning's: the same words on the page and in the build log."""
    return f"page not published: nested deeper than {limit} levels"


def doctree_depth(node: nodes.Node, limit: int) -> int:
    """How deep ``node``'s elements are nested, counted without recursion; stops at ``limit`` + 1."""
    deepest = 0
    stack: list[tuple[nodes.Node, int]] = [(node, 0)]
    while stack:
        current, depth = stack.pop()
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                return deepest
        if isinstance(current, nodes.Element):
            stack.extend((child, depth + 1) for child in current.children)
    return deepest


def _shallow_title(document: nodes.document) -> str:
    """The page's first heading when it sits at the top (the notice keeps the page's place in the navigation)."""
    for child in document.children[:5]:
        if isinstance(child, nodes.section) and child.children and isinstance(child[0], nodes.title):
            title = child[0]
            if doctree_depth(title, 8) <= 8:  # a title is inline text; anything deeper is not worth keeping
                text = " ".join(title.astext().split())
                return text[:_MAX_TITLE] or NOTICE_TITLE
    return NOTICE_TITLE


def reset_document(document: nodes.document) -> None:
    """Empty ``document``: its nodes and everything parsing recorded about them (ids, names, footnotes...)."""
    fresh = nodes.document(document.settings, document.reporter)
    for key, value in vars(fresh).items():
        if key not in _KEPT_ATTRIBUTES:
            setattr(document, key, value)
    document.children = []
    env: Any = getattr(document.settings, "env", None)
    if env is not None:  # MyST's heading anchors of the page that is gone
        env.metadata.get(env.docname, {}).pop("myst_slugs", None)


def add_notice(document: nodes.document, title: str, message: str) -> None:
    """The page as published: its title and a visible notice saying why its content is not."""
    section = nodes.section(ids=["page-not-published"], names=["page not published"])
    section += nodes.title(title, title)
    notice = nodes.admonition(classes=["warning", "docgen-page-not-published"])
    notice += nodes.title(NOTICE_TITLE, NOTICE_TITLE)
    notice += nodes.paragraph(message, message)
    section += notice
    document += section
    document.ids["page-not-published"] = section
    document.nameids["page not published"] = "page-not-published"
    document.nametypes["page not published"] = False


class BoundedMystParser(MystParser):
    """MyST's parser, but a page nested deeper than :data:`MAX_PAGE_DEPTH` becomes a notice and a warning."""

    def parse(self, inputstring: str, document: nodes.document) -> None:
        try:
            super().parse(inputstring, document)
        except RecursionError:
            too_deep = True  # the parser itself ran out of stack: deeper than any budget
        else:
            too_deep = doctree_depth(document, MAX_PAGE_DEPTH) > MAX_PAGE_DEPTH
        if too_deep:
            message = too_deep_message()
            title = _shallow_title(document)
            reset_document(document)
            # MyST sets, when a page's parsing ends, the settings its own transforms read: parsing ended early
            # (or the page is thrown away), so let it finish on an empty page.
            super().parse("", document)
            add_notice(document, title, message)
            env: Any = getattr(document.settings, "env", None)
            location = env.docname if env is not None else None
            logger.warning("%s", message, location=location, type="docgen", subtype="depth")
