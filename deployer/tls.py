"""Docker client TLS material: find it, check it, and lay it out in a private directory.

Sources, first match wins:
1. ``--cert-dir DIR`` (``ca.pem``, ``cert.pem``, ``key.pem``);
2. ``AUTO_DOCKER_CA`` / ``AUTO_DOCKER_CERT`` / ``AUTO_DOCKER_KEY``, each holding one of:
   - the PEM text itself (a GitLab variable-type CI variable);
   - the base64 of that PEM text, on one line or wrapped (``base64 -w0 key.pem``: a form many store in
     CI variables, as it survives copy and paste and can be masked); both base64 alphabets are accepted;
   - the path of a file holding the PEM or its base64 (GitLab passes file-type CI variables as paths);
3. ``AUTO_DOCKER_CERT_PATH`` (a directory like 1.; its files may also hold base64 of PEM).

These values are secrets, so no message ever quotes one, nor any part of one: errors name the variable,
the problem and what to do. A path is named only when the value plainly is one (it starts with ``/``,
``./`` or ``../``, is one short printable line, and looks like neither PEM nor base64).

The material is always copied into a fresh 0700 directory with 0600 files, which is removed on
exit, on failure and on Ctrl-C. Verification cannot be turned off: there is no switch for it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from deployer.errors import ConfigError, TLSError

FILE_NAMES = {"ca": "ca.pem", "cert": "cert.pem", "key": "key.pem"}
ENV_NAMES = {"ca": "AUTO_DOCKER_CA", "cert": "AUTO_DOCKER_CERT", "key": "AUTO_DOCKER_KEY"}
CERT_DIR_ENV = "AUTO_DOCKER_CERT_PATH"
# What each part is, for the "what to do" of a message.
_WHAT = {"ca": "CA certificate", "cert": "certificate", "key": "key"}
_PEM_MARK = "-----BEGIN"
# A full CA bundle (Mozilla's) is about 220 kB; anything much bigger is not TLS material, and a cap keeps
# a mistaken path (/dev/zero, a log file) from being read into memory whole.
MAX_BYTES = 1024 * 1024
_MAX_SHOWN_SIZE = "1 MiB"
# Longest value tried as a path (Linux PATH_MAX); longer values cannot be one, and stat() would only fail.
_MAX_PATH = 4096
# Longest path quoted in a message: GitLab's file variables live at /builds/<group>/<project>.tmp/<NAME>.
_MAX_SHOWN_PATH = 256
_PATH_PREFIXES = ("/", "./", "../")
# One alphabet or the other, never both mixed: no encoder mixes them, and paths often do (/tmp/my-dir).
_BASE64 = re.compile(r"\A[A-Za-z0-9+/]+={0,2}\Z")
_BASE64_URL = re.compile(r"\A[A-Za-z0-9_-]+={0,2}\Z")
_BASE64_RUN = re.compile(r"[A-Za-z0-9+_=-]{16,}")
_BASE64_LOOK_MIN = 16  # shorter strings decode as base64 too often by chance ("/tmp/key")
_NOTE_BASE64 = "base64 of PEM"


@dataclass(frozen=True)
class PemSource:
    """One piece of TLS material: where it came from (for messages) and its PEM bytes."""

    origin: str  # a path or a variable name; never the content
    pem: bytes = field(repr=False)  # a private key, in the case of ``key``: never in a repr, a log or a traceback


@dataclass(frozen=True)
class TLSMaterial:
    """The CA bundle, client certificate and client key for mutual TLS with a Docker Engine."""

    ca: PemSource
    cert: PemSource
    key: PemSource

    def describe(self) -> str:
        """Where the material came from, safe to print."""
        return f"CA {self.ca.origin}, certificate {self.cert.origin}, key {self.key.origin}"


def load_material(cert_dir: str | None, environ: Mapping[str, str]) -> TLSMaterial:
    """Find and validate the TLS material; raise ConfigError with what to set when it is missing.

    No message holds any part of a value of ``AUTO_DOCKER_CA/CERT/KEY``: see the module's docstring.
    """
    if cert_dir:
        return _check(_from_dir(cert_dir, "--cert-dir"))
    # A value of only whitespace is as good as none, and is reported as "empty" rather than tried as a path.
    present = [name for name in ENV_NAMES.values() if environ.get(name, "").strip()]
    empty = [name for name in ENV_NAMES.values() if name in environ and not environ[name].strip()]
    if present:
        absent = [name for name in ENV_NAMES.values() if name not in environ]
        if absent or empty:
            lacking = [f"{', '.join(absent)} not"] if absent else []
            lacking += [f"{', '.join(empty)} empty"] if empty else []
            raise ConfigError(f"{', '.join(present)} set but {' and '.join(lacking)}: set all three")
        return _check(TLSMaterial(**{part: _from_variable(part, var, environ[var]) for part, var in ENV_NAMES.items()}))
    if environ.get(CERT_DIR_ENV, "").strip():
        return _check(_from_dir(environ[CERT_DIR_ENV], CERT_DIR_ENV))
    note = f" ({', '.join(empty)} set but empty)" if empty else ""
    raise ConfigError(
        "no Docker TLS material: pass --cert-dir DIR, or set AUTO_DOCKER_CA, AUTO_DOCKER_CERT and "
        f"AUTO_DOCKER_KEY, or {CERT_DIR_ENV}{note}"
    )


# --------------------------------------------------------------------------- shapes of a value


def _decode_base64(text: str) -> bytes | None:
    """The bytes ``text`` is the base64 of (either alphabet, wrapped or not, padding optional), else None."""
    compact = "".join(text.split())
    if _BASE64_URL.match(compact):
        compact = compact.translate(str.maketrans("-_", "+/"))
    elif not _BASE64.match(compact):
        return None
    compact += "=" * (-len(compact) % 4)
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        return None  # its own message quotes no input, but it is dropped all the same


def _looks_base64(text: str) -> bool:
    """Whether ``text`` is, or holds, something like base64: it decodes as such, or has a long run of base64
    characters mixing upper case, lower case and digits (``/`` splits runs: it is a path's separator too).
    Path components seldom look like that (``AUTO_DOCKER_KEY``, ``project.tmp``, ``test_x0``); random data does."""
    if len("".join(text.split())) >= _BASE64_LOOK_MIN and _decode_base64(text) is not None:
        return True
    return any(
        any(c.isupper() for c in run) and any(c.islower() for c in run) and any(c.isdigit() for c in run)
        for run in _BASE64_RUN.findall(text)
    )


def _pem_of(data: bytes) -> tuple[bytes, str] | None:
    """``data`` as PEM and how it was stored ("" or "base64 of PEM"), or None when it is neither."""
    if _PEM_MARK.encode() in data:
        return data, ""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return None
    decoded = _decode_base64(text)
    if decoded is not None and _PEM_MARK.encode() in decoded:
        return decoded, _NOTE_BASE64
    return None


def shown_path(value: str) -> str | None:
    """``value`` when it may be quoted in a message as a path, else None.

    Only a value that plainly is a path: it starts with / ./ or ../, is one short line of printable
    characters, and looks like neither PEM nor base64. Anything else may be a secret put in the wrong place.
    """
    if (
        value.startswith(_PATH_PREFIXES)
        and len(value) <= _MAX_SHOWN_PATH
        and value.isprintable()  # no newline, control character, or undecodable byte (a lone surrogate)
        and _PEM_MARK not in value
        and not _looks_base64(value)
    ):
        return value
    return None


class _Unreadable(Exception):
    """Why a path could not be read: ``reason`` follows the path in a message (never the content)."""

    def __init__(self, reason: str, *, missing: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.missing = missing


def _read_file(path: str) -> bytes:
    """The content of the regular file at ``path``, at most MAX_BYTES; ``_Unreadable`` otherwise."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise _Unreadable("does not exist", missing=True) from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL character; the OSError's str() would quote the path
        raise _Unreadable(f"cannot be read ({getattr(exc, 'strerror', None) or 'not a valid path'})") from None
    if stat.S_ISDIR(info.st_mode):
        raise _Unreadable("is a directory, not a file")
    if not stat.S_ISREG(info.st_mode):
        # A FIFO or a device would block or never end (/dev/zero): only regular files hold PEM.
        raise _Unreadable("is not a regular file")
    if info.st_size > MAX_BYTES:
        raise _Unreadable(f"is larger than {_MAX_SHOWN_SIZE}: not TLS material")
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise _Unreadable(f"cannot be read ({exc.strerror or type(exc).__name__})") from None
    if len(data) > MAX_BYTES:  # it grew after the stat
        raise _Unreadable(f"is larger than {_MAX_SHOWN_SIZE}: not TLS material")
    return data


def _with_note(origin: str, note: str) -> str:
    return f"{origin}, {note}" if note else origin


def _from_variable(part: str, variable: str, value: str) -> PemSource:
    """``value`` of ``variable`` as PEM: the PEM itself, its base64, or the path of a file holding either."""
    what = _WHAT[part]
    unusable = (
        f"{variable}: neither PEM text, base64 of PEM, nor a readable file: store the {what}'s PEM (or its base64) "
        "in it, or make it a file-type variable"
    )
    # The environment comes as str; undecodable bytes are lone surrogates, which surrogateescape turns back.
    # Other lone surrogates (only a caller's own mapping can hold them) must not raise: the error would
    # quote the character.
    try:
        raw = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raw = value.encode("utf-8", "replace")
    if len(raw) > MAX_BYTES:
        raise ConfigError(
            f"{variable}: longer than {_MAX_SHOWN_SIZE}: not TLS material: store the {what}'s PEM "
            "(or its base64) in it, or make it a file-type variable"
        )
    if _PEM_MARK.encode() in raw:
        return PemSource(variable, raw)  # checked by _check, whose messages name only the variable
    decoded = _decode_base64(value)
    if decoded is not None and _PEM_MARK.encode() in decoded:
        return PemSource(f"{variable} ({_NOTE_BASE64})", decoded)
    path = value.strip()
    shown = shown_path(path)
    if len(path) <= _MAX_PATH and "\n" not in path and "\r" not in path:
        try:
            data = _read_file(path)
        except _Unreadable as why:
            if shown is None:
                raise ConfigError(_not_pem_hint(decoded, variable, what) or unusable) from None
            if why.missing:
                raise ConfigError(f"{variable}: {shown} does not exist") from None
            raise ConfigError(
                f"{variable}: {shown} {why.reason}: point it at the {what}'s PEM file, or store the PEM in it"
            ) from None
        found = _pem_of(data)
        where = shown or "a file"
        if found is None:
            return PemSource(f"{variable} ({where})", data)  # _check names what it is not
        return PemSource(f"{variable} ({_with_note(where, found[1])})", found[0])
    raise ConfigError(_not_pem_hint(decoded, variable, what) or unusable)


def _not_pem_hint(decoded: bytes | None, variable: str, what: str) -> str | None:
    """A more precise message when ``decoded`` is base64 of DER: the PEM's body without its armour lines."""
    if decoded is not None and _is_der(decoded):
        return (
            f"{variable}: base64 of DER, not of PEM (were the BEGIN and END lines left out?): store the "
            f"{what}'s whole PEM (or its base64) in it, or make it a file-type variable"
        )
    return None


def _is_der(data: bytes) -> bool:
    """Whether ``data`` is one DER ASN.1 SEQUENCE, as a key or a certificate is, whose length is the whole of it."""
    if len(data) < 2 or data[0] != 0x30:
        return False
    if data[1] < 0x80:  # short form: the length itself
        return data[1] + 2 == len(data)
    size = data[1] - 0x80  # long form: that many length bytes follow
    if not 1 <= size <= 3 or len(data) < 2 + size:
        return False
    return int.from_bytes(data[2 : 2 + size], "big") + 2 + size == len(data)


def _from_dir(directory: str, origin: str) -> TLSMaterial:
    shown = shown_path(directory)
    try:
        is_dir = stat.S_ISDIR(os.stat(directory).st_mode)
    except (OSError, ValueError):  # ValueError: a NUL character
        is_dir = False
    if not is_dir:
        where = f"{shown} is not a directory" if shown else "not the path of a directory"
        raise ConfigError(f"{origin}: {where} holding ca.pem, cert.pem and key.pem")
    if shown is None and _plain_relative(directory):
        shown = directory  # a directory that exists, named like one (certs, ci/tls): a path, not a pasted secret
    parts = {}
    for part, name in FILE_NAMES.items():
        label = os.path.join(shown, name) if shown else f"{name} in {origin}"
        try:
            data = _read_file(os.path.join(directory, name))
        except _Unreadable as why:
            if why.missing:
                raise ConfigError(f"{origin}: {label} does not exist") from None
            raise ConfigError(f"{origin}: {label} {why.reason}") from None
        found = _pem_of(data)
        parts[part] = PemSource(label, data) if found is None else PemSource(_with_note(label, found[1]), found[0])
    return TLSMaterial(**parts)


def _plain_relative(directory: str) -> bool:
    """Whether ``directory`` reads like a relative directory name (``certs``, ``ci/tls``): one short printable
    line that looks like neither PEM nor base64."""
    return (
        len(directory) <= _MAX_SHOWN_PATH
        and directory.isprintable()
        and _PEM_MARK not in directory
        and not _looks_base64(directory)
    )


# --------------------------------------------------------------------------- checks


def _check(material: TLSMaterial) -> TLSMaterial:
    """Parse every piece, and check the key belongs to the certificate, so errors name the culprit.

    ``from None`` everywhere: cryptography's own messages are not meant to quote input, but a chained
    exception is printed with a traceback if anything goes wrong later, and this is key material.
    """
    try:
        cas = x509.load_pem_x509_certificates(material.ca.pem)
    except ValueError:
        raise ConfigError(f"{material.ca.origin} is not a PEM CA certificate bundle") from None
    try:
        cert = x509.load_pem_x509_certificate(material.cert.pem)
    except ValueError:
        raise ConfigError(f"{material.cert.origin} is not a PEM certificate") from None
    try:
        key = serialization.load_pem_private_key(material.key.pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ConfigError(f"{material.key.origin} is not an unencrypted PEM private key") from None
    if cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo):
        raise ConfigError(f"{material.key.origin} is not the key of {material.cert.origin}")
    _check_validity(cert, material.cert.origin)
    _check_ca_validity(cas, material.ca.origin)
    return material


def _check_validity(cert: x509.Certificate, origin: str) -> None:
    """An Engine refuses a client certificate outside its validity period with the same TLS alert as one from
    the wrong CA; said here, before any connection, the message can say which it is."""
    now = dt.datetime.now(dt.UTC)
    if cert.not_valid_after_utc <= now:
        raise TLSError(
            f"the client certificate from {origin} expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC: "
            "renew it, then deploy again"
        )
    if cert.not_valid_before_utc > now:
        raise TLSError(
            f"the client certificate from {origin} is not valid before "
            f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC: check this machine's clock"
        )


def _check_ca_validity(cas: list[x509.Certificate], origin: str) -> None:
    """A bundle whose certificates have all expired verifies no Engine (an expired trust anchor fails the chain),
    and the failure would again read as "certificate not trusted"."""
    now = dt.datetime.now(dt.UTC)
    if any(ca.not_valid_after_utc > now for ca in cas):
        return
    last = max(ca.not_valid_after_utc for ca in cas)
    if len(cas) == 1:
        raise TLSError(
            f"the CA certificate from {origin} expired on {last:%Y-%m-%d %H:%M} UTC: renew it, then deploy again"
        )
    raise TLSError(
        f"all {len(cas)} CA certificates from {origin} have expired (the last on {last:%Y-%m-%d %H:%M} UTC): "
        "renew the bundle, then deploy again"
    )


@contextmanager
def private_cert_dir(material: TLSMaterial) -> Iterator[str]:
    """Write the material to a 0700 temporary directory (files 0600); always remove it afterwards."""
    directory = tempfile.mkdtemp(prefix="auto-deploy-tls-")
    try:
        os.chmod(directory, 0o700)
        for part, name in FILE_NAMES.items():
            path = os.path.join(directory, name)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(getattr(material, part).pem)
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)
