"""Read each service's docs and spec: from local paths or over verified HTTPS, never anything else.

What can go wrong with one service (a missing file, a refused connection, an oversized or endless answer,
a hostile archive, a path its manifest may not read) is returned as a problem of that service, so that the
portal is still built for the others. Every read has budgets, named in the problem when exceeded: a spec's
bytes, the docs' bytes and files, an archive's expanded bytes and members, and a fetch's wall time (a server
that answers one byte at a time cannot hold the build). A URL is shown without its query string or user info
(they may carry tokens).
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import posixpath
import stat
import tarfile
import threading
import time
import zlib
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from docgen.manifest import ServiceEntry

if TYPE_CHECKING:
    import requests

MAX_SPEC_BYTES = 32 * 1024 * 1024
MAX_DOCS_BYTES = 64 * 1024 * 1024
MAX_DOC_FILES = 2000
# An archive is read as a stream: everything in it counts, the members skipped too (a gzip of zeros expands a
# thousandfold, and tarfile would hold a giant header in memory), and so does each member, however small.
MAX_ARCHIVE_BYTES = 2 * MAX_DOCS_BYTES
MAX_ARCHIVE_MEMBERS = 10 * MAX_DOC_FILES
TIMEOUT = (5.0, 30.0)  # connect, and each read: a silent server is given up on
FETCH_SECONDS = 120.0  # the whole of one fetch: a server that trickles its answer is given up on too
_CHUNK = 65536
# Comma-separated host names: when set, no other host is contacted (its service is quarantined, one warning). The lab's
# demo sets 127.0.0.1: a lab's environment may record services whose docs live on hosts it must never reach.
FETCH_HOSTS_ENV = "AUTO_DOCS_FETCH_HOSTS"
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
        """The body of ``url``, within ``limit`` bytes and :data:`FETCH_SECONDS`; raises SourceError (one line).

        The request runs in a daemon thread that is waited for at most :data:`FETCH_SECONDS`: the read timeout
        bounds each silence, not the whole (headers or a body sent a byte at a time would never end), and a
        thread left behind must not keep the command from exiting. It stops reading at the deadline itself.
        """
        if not url.startswith("https://"):
            raise SourceError(f"{shown_url(url)}: only https:// URLs are fetched")
        hosts = {host.strip() for host in os.environ.get(FETCH_HOSTS_ENV, "").split(",") if host.strip()}
        if hosts and urlsplit(url).hostname not in hosts:
            raise SourceError(f"{shown_url(url)}: not fetched, its host is not in {FETCH_HOSTS_ENV}")
        budget = FETCH_SECONDS
        deadline = time.monotonic() + budget
        outcome: list[bytes | Exception] = []

        def fetch() -> None:
            try:
                outcome.append(self._get(url, limit, deadline, budget))
            except Exception as exc:  # noqa: BLE001 - handed to the waiting thread, which raises it
                outcome.append(exc)

        worker = threading.Thread(target=fetch, name=f"auto-docs fetch {shown_url(url)}", daemon=True)
        worker.start()
        worker.join(budget)
        if not outcome:
            raise SourceError(_too_slow(url, budget))
        result = outcome[0]
        if isinstance(result, SourceError):
            raise result
        if isinstance(result, Exception):  # whatever else the HTTP stack raises costs this service only
            raise SourceError(f"{shown_url(url)}: {type(result).__name__}") from result
        return result

    def _get(self, url: str, limit: int, deadline: float, budget: float) -> bytes:
        import requests
        import urllib3

        try:
            # identity: the body is counted as it arrives; a compressed answer could expand past the budget.
            with self.session.get(
                url,
                stream=True,
                timeout=TIMEOUT,
                verify=self.verify,
                allow_redirects=False,
                headers={"Accept-Encoding": "identity"},
            ) as r:
                if r.is_redirect:
                    raise SourceError(f"{shown_url(url)}: redirected (HTTP {r.status_code}); list the final URL")
                if r.status_code != 200:
                    raise SourceError(f"{shown_url(url)}: HTTP {r.status_code}")
                declared = r.headers.get("Content-Length")
                if declared and declared.isdigit() and int(declared) > limit:
                    raise SourceError(f"{shown_url(url)}: {declared} bytes is more than the {limit} allowed")
                body = bytearray()
                while True:
                    if time.monotonic() > deadline:
                        raise SourceError(_too_slow(url, budget))
                    # read1: whatever one read brings, so the deadline is looked at between the server's writes
                    chunk = r.raw.read1(_CHUNK, decode_content=True)
                    if not chunk:
                        return bytes(body)
                    body += chunk
                    if len(body) > limit:
                        raise SourceError(f"{shown_url(url)}: more than the {limit} bytes allowed")
        except (requests.exceptions.SSLError, urllib3.exceptions.SSLError):
            raise SourceError(f"{shown_url(url)}: TLS certificate not trusted (pass --ca-file)") from None
        except (requests.exceptions.Timeout, urllib3.exceptions.TimeoutError):
            raise SourceError(f"{shown_url(url)}: timed out") from None
        except requests.exceptions.ConnectionError:
            raise SourceError(f"{shown_url(url)}: cannot connect") from None
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError) as exc:
            raise SourceError(f"{shown_url(url)}: {type(exc).__name__}") from None


def _too_slow(url: str, budget: float) -> str:
    return f"{shown_url(url)}: took longer than the {budget:g} s allowed for a fetch"


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


class _Expanded(io.RawIOBase):
    """An archive's decompressed bytes, read as a stream, at most :data:`MAX_ARCHIVE_BYTES` of them."""

    def __init__(self, stream: IO[bytes], origin: str) -> None:
        self._stream = stream
        self._origin = origin
        self._read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._stream.read(len(buffer))
        self._read += len(data)
        if self._read > MAX_ARCHIVE_BYTES:
            raise SourceError(
                f"{self._origin}: the docs archive expands to more than the {MAX_ARCHIVE_BYTES} bytes allowed"
            )
        buffer[: len(data)] = data
        return len(data)


def _decompressed(data: bytes) -> IO[bytes]:
    """``data`` decompressed as it is read (gzip, bzip2, xz or none: what ``tarfile``'s ``r:*`` accepted)."""
    raw = io.BytesIO(data)
    if data[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if data[:3] == b"BZh":
        return bz2.BZ2File(raw, mode="rb")
    if data[:6] == b"\xfd7zXZ\x00":
        return lzma.LZMAFile(raw, mode="rb")
    return raw


def docs_from_archive(data: bytes, origin: str) -> dict[str, bytes]:
    """Markdown and images of a ``.tar.gz`` docs archive; links, devices and escaping paths are skipped.

    Read as a stream (``r|``) through :class:`_Expanded`: nothing is decompressed past the budget, not even a
    member that would be skipped.
    """
    docs: dict[str, bytes] = {}
    total = 0
    members = 0
    try:
        with tarfile.open(fileobj=_Expanded(_decompressed(data), origin), mode="r|") as archive:
            for member in archive:
                members += 1
                if members > MAX_ARCHIVE_MEMBERS:
                    raise SourceError(
                        f"{origin}: the docs archive has more than the {MAX_ARCHIVE_MEMBERS} members allowed"
                    )
                if not member.isreg():
                    continue
                name = _clean_member(member.name)
                if name is None:
                    continue
                total += member.size
                if total > MAX_DOCS_BYTES:
                    raise SourceError(f"{origin}: the docs archive holds more than the {MAX_DOCS_BYTES} bytes allowed")
                if len(docs) >= MAX_DOC_FILES:
                    raise SourceError(f"{origin}: the docs archive holds more than the {MAX_DOC_FILES} files allowed")
                extracted = archive.extractfile(member)
                if extracted is not None:
                    docs[name] = extracted.read()
    except (tarfile.TarError, EOFError, OSError, lzma.LZMAError, zlib.error) as exc:
        raise SourceError(f"{origin}: not a readable .tar.gz docs archive ({type(exc).__name__})") from None
    return _strip_common_folder(docs)


def _strip_common_folder(docs: dict[str, bytes]) -> dict[str, bytes]:
    """``docs/index.md`` and ``docs/a.md`` become ``index.md`` and ``a.md`` (archives often have one top folder)."""
    tops = {name.split("/", 1)[0] for name in docs}
    if len(tops) == 1 and all("/" in name for name in docs):
        return {name.split("/", 1)[1]: data for name, data in docs.items()}
    return docs


def _read_regular(path: Path, limit: int, what: str) -> bytes:
    """A regular file's bytes, at most ``limit`` + 1 of them (the caller says what more than ``limit`` means).

    Opened without blocking and checked before anything is read: a FIFO would wait for a writer forever, a
    device such as /dev/zero would never end.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    with open(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SourceError(f"{what} {path} is not a regular file")
        return file.read(limit + 1)


def docs_from_folder(folder: Path) -> dict[str, bytes]:
    """Markdown and images under ``folder``; hidden files, symlinks and special files are skipped (never followed
    out, never blocked on)."""
    if not folder.is_dir():
        if folder.is_file() and folder.suffix.lower() == ".md":
            data = _read_regular(folder, MAX_DOCS_BYTES, "docs page")
            if len(data) > MAX_DOCS_BYTES:
                raise SourceError(f"docs page {folder}: larger than the {MAX_DOCS_BYTES} bytes allowed")
            return {"index.md": data}
        raise SourceError(f"docs folder {folder} does not exist")
    docs: dict[str, bytes] = {}
    total = 0
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for filename in sorted(files):
            path = Path(root) / filename
            if path.is_symlink() or not path.is_file():
                continue
            name = _clean_member(path.relative_to(folder).as_posix())
            if name is None:
                continue
            if len(docs) >= MAX_DOC_FILES:
                raise SourceError(f"docs folder {folder} holds more than the {MAX_DOC_FILES} files allowed")
            data = _read_regular(path, MAX_DOCS_BYTES - total, "docs file")
            total += len(data)
            if total > MAX_DOCS_BYTES:
                raise SourceError(f"docs folder {folder} holds more than the {MAX_DOCS_BYTES} bytes allowed")
            docs[name] = data
    return docs


def _read_spec(entry: ServiceEntry, fetcher: Fetcher) -> tuple[bytes, str]:
    assert entry.spec is not None
    if entry.spec.startswith("https://"):
        path = urlsplit(entry.spec).path
        return fetcher.get(entry.spec, MAX_SPEC_BYTES), posixpath.basename(path) or "openapi.json"
    path = Path(entry.spec)
    try:
        data = _read_regular(path, MAX_SPEC_BYTES, "spec")
    except FileNotFoundError:
        raise SourceError(f"spec {path} does not exist") from None
    except OSError as exc:
        raise SourceError(f"cannot read spec {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_SPEC_BYTES:
        raise SourceError(f"{path}: larger than the {MAX_SPEC_BYTES} bytes allowed")
    return data, path.name


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
    # A path its manifest may not read was refused when the manifest was loaded: it is never opened here.
    if entry.spec is not None and (refused := entry.refusal("spec")):
        source.problems.append(f"spec not read: {refused}")
    elif entry.spec is not None:
        try:
            source.spec, source.spec_name = _read_spec(entry, fetcher)
        except SourceError as exc:
            source.problems.append(f"spec not read: {exc}")
    if entry.docs is not None and (refused := entry.refusal("docs")):
        source.problems.append(f"docs not read: {refused}")
    elif entry.docs is not None:
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
