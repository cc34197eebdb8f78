"""Building and publishing the portal's site: sources written incrementally, Sphinx run, the HTML swapped in.

:func:`build_site` writes the files of a source tree (see :func:`docgen.site.render_sources`) that changed into a
work directory kept between runs, lets Sphinx rebuild what depends on them, and publishes the HTML by a
directory swap. When nothing changed since the last successful build, Sphinx is not even started: the site it
would leave is the one already built.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import io
import json
import os
import re
import shutil
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from autocore.files import write_atomic
from docgen.errors import SiteBuildError
from docgen.site import check_path

__all__ = ["SiteResult", "build_site", "write_sources"]

_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # Sphinx colours its warnings when the terminal does
# Bump when the extension renders unchanged sources differently: the next build then runs Sphinx again.
_STAMP_FORMAT = "docgen-site-2"
_STAMP = "built.json"  # in the work directory: what the last successful Sphinx build was made from
_PUBLISH_RECORD = "published.json"  # in the work directory: html/'s files as they were last published
_TOOLS = ("sphinx", "docutils", "myst_parser", "alabaster")  # what turns the sources into HTML


@dataclass
class SiteResult:
    """What one :func:`build_site` did."""

    out_dir: Path
    changed_sources: list[str] = field(default_factory=list)  # written or deleted under src/
    warnings: list[str] = field(default_factory=list)  # Sphinx's warnings, one entry per warning
    docs_read: int = 0  # documents Sphinx (re-)read this time


# --------------------------------------------------------------------------------------------------------------
# write_sources


def write_sources(sources: dict[str, bytes], src_dir: Path) -> list[str]:
    """Make ``src_dir`` hold exactly ``sources``; returns the paths written or deleted, sorted.

    Files whose bytes did not change are not touched, so their mtimes stay and Sphinx does not re-read them.
    Each write goes to a temporary file renamed into place (a crash never leaves a half-written source).
    """
    src_dir = Path(src_dir)
    wanted = {str(check_path(path, "sources")): content for path, content in sources.items()}
    changed: list[str] = []
    try:
        src_dir.mkdir(parents=True, exist_ok=True)
        for rel, content in sorted(wanted.items()):
            target = src_dir / rel
            if target.is_file() and not target.is_symlink() and target.read_bytes() == content:
                continue
            changed += _make_parents(src_dir, PurePosixPath(rel))
            if target.is_dir() and not target.is_symlink():
                changed += [p.relative_to(src_dir).as_posix() for p in target.rglob("*") if not p.is_dir()]
                shutil.rmtree(target)
            write_atomic(target, content)
            changed.append(rel)
        for dirpath, dirnames, filenames in os.walk(src_dir, topdown=False):
            base = Path(dirpath)
            for filename in filenames:
                rel = (base / filename).relative_to(src_dir).as_posix()
                if rel not in wanted:
                    (base / filename).unlink()
                    changed.append(rel)
            for dirname in dirnames:
                sub = base / dirname
                if sub.is_symlink():
                    sub.unlink()
                elif not any(sub.iterdir()):
                    sub.rmdir()
    except OSError as exc:
        raise SiteBuildError(f"cannot write the portal's sources in {src_dir}: {exc}") from exc
    return sorted(changed)


def _make_parents(root: Path, rel: PurePosixPath) -> list[str]:
    """Create the parent directories of ``rel`` under ``root``; a file or symlink in the way is removed (and
    returned)."""
    removed = []
    current = root
    for part in rel.parts[:-1]:
        current = current / part
        if current.is_symlink() or (current.exists() and not current.is_dir()):
            current.unlink()
            removed.append(current.relative_to(root).as_posix())
        current.mkdir(exist_ok=True)
    return removed


# --------------------------------------------------------------------------------------------------------------
# build_site


@contextlib.contextmanager
def _locked(work_dir: Path) -> Iterator[None]:
    """One build at a time per work directory."""
    with open(work_dir / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise SiteBuildError(f"another build is using {work_dir}") from exc
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _split_warnings(text: str) -> list[str]:
    """Sphinx's warning stream as one entry per warning (continuation lines joined to their warning)."""
    entries: list[str] = []
    for line in _ANSI.sub("", text).splitlines():
        if not line.strip():
            continue
        if entries and not re.search(r"\b(WARNING|ERROR|CRITICAL|SEVERE):", line):
            entries[-1] += "\n" + line
        else:
            entries.append(line)
    return entries


def _run_sphinx(src: Path, doctrees: Path, html: Path, jobs: int) -> tuple[list[str], int]:
    """Build ``src`` into ``html`` in-process; returns (warnings, documents read)."""
    from sphinx.application import Sphinx
    from sphinx.util.docutils import docutils_namespace, patch_docutils

    warning_stream = io.StringIO()
    read_counts: list[int] = []

    def count_read(app: Any, env: Any, docnames: list[str]) -> None:
        read_counts.append(len(docnames))

    with warnings.catch_warnings(record=True) as python_warnings:
        warnings.simplefilter("default")
        # docutils_namespace: directives and roles registered by this build do not leak into the process.
        with patch_docutils(src), docutils_namespace():
            app = Sphinx(
                str(src),
                str(src),
                str(html),
                str(doctrees),
                "html",
                status=None,
                warning=warning_stream,
                freshenv=False,
                parallel=jobs,
            )
            # a late priority: count the final list, after any other handler changed it
            app.connect("env-before-read-docs", count_read, priority=900)
            app.build()
            if app.statuscode:
                raise SiteBuildError(f"Sphinx finished with status {app.statuscode}")
            _prune_outputs(app.env, html, src / "_extra")
    found = _split_warnings(warning_stream.getvalue())
    found += sorted({f"{w.category.__name__}: {w.message}" for w in python_warnings})
    return found, sum(read_counts)


def _prune_outputs(env: Any, html: Path, extra: Path) -> None:
    """Delete what Sphinx leaves behind in html/ for documents and images that are gone (it never deletes)."""
    keep_pages = {f"{docname}.html" for docname in env.found_docs} | {"search.html"}
    keep_assets = {f"_images/{name}" for _docnames, name in env.images.values()}
    keep_assets |= {f"_downloads/{dest}" for _docnames, dest in env.dlfiles.values()}
    for path in sorted(html.rglob("*"), reverse=True):
        rel = path.relative_to(html).as_posix()
        if path.is_dir():
            if rel.startswith(("_images", "_downloads")) or not rel.startswith("_"):
                with contextlib.suppress(OSError):
                    path.rmdir()  # only when empty
            continue
        if rel.startswith(("_images/", "_downloads/")):
            stale = rel not in keep_assets
        else:
            stale = rel.endswith(".html") and rel not in keep_pages and not (extra / rel).is_file()
        if stale:
            path.unlink()


def _forget_environment(doctrees: Path) -> None:
    """After a failed build, the next one starts from a fresh environment (never from a half-updated one)."""
    with contextlib.suppress(OSError):
        (doctrees / "environment.pickle").unlink()


def _not_published(html: Path) -> Any:
    """copytree's ignore: Sphinx's bookkeeping at the root of html/ (build info, the empty _sources)."""

    def ignore(directory: str, names: list[str]) -> set[str]:
        if Path(directory) != html:
            return set()
        return {n for n in names if n in {".buildinfo", ".buildinfo.bak", "_sources"}}

    return ignore


def _publish(html: Path, out_dir: Path, record: Path) -> None:
    """Replace ``out_dir`` by a copy of ``html``: a complete copy is made beside it, then swapped in by renames.

    A file Sphinx did not rewrite since the last publish is hard-linked from the published tree instead of
    copied (``record`` remembers each file's size and mtime at that publish): a rebuild after one service
    changed copies only what changed. Published trees are never written in place, so sharing inodes is safe.
    """
    try:
        previous = json.loads(record.read_text())
        linkable = previous["files"] if previous.get("out_dir") == str(out_dir) and out_dir.is_dir() else {}
    except (OSError, ValueError, KeyError, TypeError):
        linkable = {}
    published: dict[str, list[int]] = {}

    def copy(src: str, dst: str) -> str:
        stat = os.stat(src)
        rel = os.path.relpath(src, html)
        published[rel] = [stat.st_size, stat.st_mtime_ns]
        if linkable.get(rel) == published[rel]:
            try:
                os.link(out_dir / rel, dst)
                return dst
            except OSError:
                pass  # gone or on another filesystem: copy it
        return shutil.copy2(src, dst)

    parent = out_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex[:12]
    staging = parent / f".{out_dir.name}.new-{token}"
    retired = parent / f".{out_dir.name}.old-{token}"
    try:
        shutil.copytree(html, staging, ignore=_not_published(html), copy_function=copy)
        if out_dir.exists() or out_dir.is_symlink():
            os.rename(out_dir, retired)
        try:
            os.rename(staging, out_dir)
        except OSError:
            if retired.exists():
                os.rename(retired, out_dir)
            raise
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise SiteBuildError(f"cannot publish the portal to {out_dir}: {exc}") from exc
    if retired.is_dir() and not retired.is_symlink():
        shutil.rmtree(retired, ignore_errors=True)
    elif retired.exists() or retired.is_symlink():
        retired.unlink()
    write_atomic(record, json.dumps({"out_dir": str(out_dir), "files": published}))


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def build_site(sources: dict[str, bytes], work_dir: Path, out_dir: Path, *, jobs: int = 1) -> SiteResult:
    """Build the portal from ``sources`` (see :func:`docgen.site.render_sources`) and publish it to ``out_dir``.

    ``work_dir`` keeps ``src/``, ``doctrees/`` and ``html/`` between runs, so a rebuild re-reads only the
    documents whose sources or data files changed, and a build where nothing changed does not start Sphinx.
    ``out_dir`` is replaced only after a successful build; a failure raises :class:`SiteBuildError` and leaves
    it as it was. ``jobs`` > 1 reads and writes in parallel worker processes.
    """
    if not isinstance(jobs, int) or jobs < 1:
        raise SiteBuildError(f"jobs must be a positive integer, not {jobs!r}")
    work_dir = Path(work_dir).resolve()
    out_dir = Path(out_dir).resolve()
    if _inside(out_dir, work_dir) or _inside(work_dir, out_dir):
        raise SiteBuildError(f"out_dir {out_dir} and work_dir {work_dir} must not contain each other")
    src, doctrees, html = work_dir / "src", work_dir / "doctrees", work_dir / "html"
    try:
        work_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SiteBuildError(f"cannot create {work_dir}: {exc}") from exc
    with _locked(work_dir):
        changed = write_sources(sources, src)
        stamp = _stamp(sources)
        if changed or not _up_to_date(work_dir, stamp):
            found, docs_read = _build_html(src, doctrees, html, jobs, work_dir / _STAMP)
        else:
            found, docs_read = [], 0  # what Sphinx reports when nothing changed, without starting it
        _publish(html, out_dir, work_dir / _PUBLISH_RECORD)
        write_atomic(work_dir / _STAMP, json.dumps(stamp))
    return SiteResult(out_dir=out_dir, changed_sources=changed, warnings=found, docs_read=docs_read)


def _build_html(src: Path, doctrees: Path, html: Path, jobs: int, stamp_file: Path) -> tuple[list[str], int]:
    """Run Sphinx over ``src``; any failure is a :class:`SiteBuildError` and forgets the environment."""
    with contextlib.suppress(FileNotFoundError):
        stamp_file.unlink()  # html/ is about to change: until published again, it is not the stamped build
    try:
        return _run_sphinx(src, doctrees, html, jobs)
    except Exception as exc:
        _forget_environment(doctrees)
        if isinstance(exc, SiteBuildError):
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        raise SiteBuildError(f"Sphinx could not build the portal: {message}") from exc


# --------------------------------------------------------------------------------------------------------------
# nothing changed: no Sphinx


def _stamp(sources: dict[str, bytes]) -> dict[str, Any]:
    """What a build's HTML depends on: the sources, and the installed tools that turn them into HTML."""
    digest = hashlib.sha256()
    for path, content in sorted(sources.items()):
        for part in (path.encode(), content):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
    return {"format": _STAMP_FORMAT, "sources": digest.hexdigest(), "tools": _tool_files()}


def _tool_files() -> dict[str, list[Any]]:
    """Each tool's package file with its size and mtime: an upgrade or reinstall changes them (nothing imported)."""
    found: dict[str, list[Any]] = {}
    for name in _TOOLS:
        try:
            spec = importlib.util.find_spec(name)
            origin = spec.origin if spec is not None else None
            stat = os.stat(origin) if origin else None
        except (ImportError, ValueError, OSError):
            stat, origin = None, None
        found[name] = [origin, stat.st_size, stat.st_mtime_ns] if stat is not None and origin else []
    return found


def _up_to_date(work_dir: Path, stamp: dict[str, Any]) -> bool:
    """The last successful build was made from these very sources and tools, and html/ is still what it left.

    Sphinx would then read nothing and write nothing new: the site it would publish is html/ as it is.
    """
    try:
        if json.loads((work_dir / _STAMP).read_text()) != stamp:
            return False
        published = json.loads((work_dir / _PUBLISH_RECORD).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    html = work_dir / "html"
    ignore = _not_published(html)
    current: dict[str, list[int]] = {}
    for dirpath, dirnames, filenames in os.walk(html):
        skipped = ignore(dirpath, [*dirnames, *filenames])
        dirnames[:] = [d for d in dirnames if d not in skipped]
        for filename in filenames:
            if filename in skipped:
                continue
            path = os.path.join(dirpath, filename)
            try:
                stat = os.stat(path)
            except OSError:
                return False
            current[os.path.relpath(path, html)] = [stat.st_size, stat.st_mtime_ns]
    return bool(current) and current == published
