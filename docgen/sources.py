"""Read each service's docs and spec: from local paths or over verified HTTPS, never anything else.

What can go wrong with one service (a missing file, a refused connection, an oversized answer, a
hostile archive) is returned as a problem of that service, so that the portal is still built for the
others. A URL is shown without its query string or user info (they may carry tokens).
"""

from __future__ import annotations

import io
import os
import posixpath
import tarfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from docgen.manifest import ServiceEntry

if TYPE_CHECKING:
    import requests

MAX_SPEC_BYTES = 32 * 1024 * 1024
MAX_DOCS_BYTES = 64 * 1024 * 1024
MAX_DOC_FILES = 2000
TIMEOUT = (5.0, 30.0)
DOC_SUFFIXES = frozenset({".md", ".png", ".jpg", ".jpeg", ".gif", ".webp"})


@dataclass
class ServiceSource:
    """What was read for one service."""

    entry: ServiceEntry
    spec: bytes | None = None
    spec_name: str = ""  # a file name whose suffix says JSON or YAML
    docs: dict[str, bytes] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # one line each: why something is missing


class SourceError(Exception):
    """One service's docs or spec could not be read (internal: becomes a problem of the service)."""


def shown_url(url: str) -> str:
    """The URL without user info, query or fragment: what may appear in logs and reports."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


class Fetcher:
    """GET over HTTPS with the certificate always verified; bounded size, time and redirects."""

    def __init__(self, session: requests.Session | None = None, ca_file: str | None = None) -> None:
        self._session = session
        if session is not None:
            session.trust_env = False
        self.verify: str | bool = ca_file or os.environ.get("AUTO_DOCS_CA_FILE") or True

    @property
    def session(self) -> requests.Session:
        """The HTTP session, made on first use: a portal of local files never loads ``requests``."""
        if self._session is None:
            import requests

            self._session = requests.Session()
            self._session.trust_env = False  # no proxies or netrc from the environment; the CA is explicit
        return self._session

    def get(self, url: str, limit: int) -> bytes:
        """The body of ``url``; raises SourceError with a one-line reason."""
        if not url.startswith("https://"):
            raise SourceError(f"{shown_url(url)}: only https:// URLs are fetched")
        import requests

        try:
            with self.session.get(url, stream=True, timeout=TIMEOUT, verify=self.verify, allow_redirects=False) as r:
                if r.is_redirect:
                    raise SourceError(f"{shown_url(url)}: redirected (HTTP {r.status_code}); list the final URL")
                if r.status_code != 200:
                    raise SourceError(f"{shown_url(url)}: HTTP {r.status_code}")
                declared = r.headers.get("Content-Length")
                if declared and declared.isdigit() and int(declared) > limit:
                    raise SourceError(f"{shown_url(url)}: {declared} bytes is more than the {limit} allowed")
                body = bytearray()
                for chunk in r.iter_content(65536):
                    body += chunk
                    if len(body) > limit:
                        raise SourceError(f"{shown_url(url)}: more than the {limit} bytes allowed")
                return bytes(body)
        except requests.exceptions.SSLError:
            raise SourceError(f"{shown_url(url)}: TLS certificate not trusted (pass --ca-file)") from None
        except requests.exceptions.Timeout:
            raise SourceError(f"{shown_url(url)}: timed out") from None
        except requests.exceptions.ConnectionError:
            raise SourceError(f"{shown_url(url)}: cannot connect") from None
        except requests.exceptions.RequestException as exc:
            raise SourceError(f"{shown_url(url)}: {type(exc).__name__}") from None


def _clean_member(name: str) -> str | None:
    """A safe relative POSIX path for an archive member or file, or None to skip it."""
    name = name.replace("\\", "/")
    if name.startswith("/"):
        return None  # an absolute member is a hostile archive, not a docs page
    normal = posixpath.normpath(name)
    if normal in ("", ".") or normal.startswith("..") or any(part.startswith(".") for part in normal.split("/")):
        return None
    if posixpath.splitext(normal)[1].lower() not in DOC_SUFFIXES:
        return None
    return normal


def docs_from_archive(data: bytes, origin: str) -> dict[str, bytes]:
    """Markdown and images of a ``.tar.gz`` docs archive; links, devices and escaping paths are skipped."""
    docs: dict[str, bytes] = {}
    total = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
            for member in archive:
                if not member.isreg():
                    continue
                name = _clean_member(member.name)
                if name is None:
                    continue
                total += member.size
                if total > MAX_DOCS_BYTES or len(docs) >= MAX_DOC_FILES:
                    raise SourceError(f"{origin}: the docs archive is larger than allowed")
                extracted = archive.extractfile(member)
                if extracted is not None:
                    docs[name] = extracted.read()
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise SourceError(f"{origin}: not a readable .tar.gz docs archive ({type(exc).__name__})") from None
    return _strip_common_folder(docs)


def _strip_common_folder(docs: dict[str, bytes]) -> dict[str, bytes]:
    """``docs/index.md`` and ``docs/a.md`` become ``index.md`` and ``a.md`` (archives often have one top folder)."""
    tops = {name.split("/", 1)[0] for name in docs}
    if len(tops) == 1 and all("/" in name for name in docs):
        return {name.split("/", 1)[1]: data for name, data in docs.items()}
    return docs


def docs_from_folder(folder: Path) -> dict[str, bytes]:
    """Markdown and images under ``folder``; hidden files and symlinks are skipped (never followed out)."""
    if not folder.is_dir():
        if folder.is_file() and folder.suffix.lower() == ".md":
            return {"index.md": folder.read_bytes()}
        raise SourceError(f"docs folder {folder} does not exist")
    docs: dict[str, bytes] = {}
    total = 0
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for filename in sorted(files):
            path = Path(root) / filename
            if path.is_symlink():
                continue
            name = _clean_member(path.relative_to(folder).as_posix())
            if name is None:
                continue
            data = path.read_bytes()
            total += len(data)
            if total > MAX_DOCS_BYTES or len(docs) >= MAX_DOC_FILES:
                raise SourceError(f"docs folder {folder} is larger than allowed")
            docs[name] = data
    return docs


def _read_spec(entry: ServiceEntry, fetcher: Fetcher) -> tuple[bytes, str]:
    assert entry.spec is not None
    if entry.spec.startswith("https://"):
        path = urlsplit(entry.spec).path
        return fetcher.get(entry.spec, MAX_SPEC_BYTES), posixpath.basename(path) or "openapi.json"
    path = Path(entry.spec)
    try:
        if path.stat().st_size > MAX_SPEC_BYTES:
            raise SourceError(f"{path}: larger than the {MAX_SPEC_BYTES} bytes allowed")
        return path.read_bytes(), path.name
    except FileNotFoundError:
        raise SourceError(f"spec {path} does not exist") from None
    except OSError as exc:
        raise SourceError(f"cannot read spec {path}: {exc.strerror or exc}") from None


def _read_docs(entry: ServiceEntry, fetcher: Fetcher) -> dict[str, bytes]:
    assert entry.docs is not None
    if entry.docs.startswith("https://"):
        data = fetcher.get(entry.docs, MAX_DOCS_BYTES)
        if urlsplit(entry.docs).path.lower().endswith(".md"):
            return {"index.md": data}
        return docs_from_archive(data, shown_url(entry.docs))
    try:
        return docs_from_folder(Path(entry.docs))
    except OSError as exc:
        raise SourceError(f"cannot read docs {entry.docs}: {exc.strerror or exc}") from None


def read_service(entry: ServiceEntry, fetcher: Fetcher) -> ServiceSource:
    """Read one service's spec and docs; failures become ``problems``, never exceptions."""
    source = ServiceSource(entry)
    if entry.spec is not None:
        try:
            source.spec, source.spec_name = _read_spec(entry, fetcher)
        except SourceError as exc:
            source.problems.append(f"spec not read: {exc}")
    if entry.docs is not None:
        try:
            source.docs = _read_docs(entry, fetcher)
        except SourceError as exc:
            source.problems.append(f"docs not read: {exc}")
    return source


def read_all(entries: Iterable[ServiceEntry], fetcher: Fetcher, *, threads: int = 8) -> list[ServiceSource]:
    """Read every service, fetching concurrently; the result keeps the manifest's order."""
    entries = list(entries)
    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(entries)))) as pool:
        return list(pool.map(lambda e: read_service(e, fetcher), entries))
