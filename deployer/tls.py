"""Docker client TLS material: find it, check it, and lay it out in a private directory.

Sources, first match wins:
1. ``--cert-dir DIR`` (``ca.pem``, ``cert.pem``, ``key.pem``);
2. ``AUTO_DOCKER_CA`` / ``AUTO_DOCKER_CERT`` / ``AUTO_DOCKER_KEY``: each either the path of a
   file (GitLab file-type CI variables) or the PEM text itself (variable-type);
3. ``AUTO_DOCKER_CERT_PATH`` (a directory like 1.).

The material is always copied into a fresh 0700 directory with 0600 files, which is removed on
exit, on failure and on Ctrl-C. Verification cannot be turned off: there is no switch for it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from deployer.errors import ConfigError

FILE_NAMES = {"ca": "ca.pem", "cert": "cert.pem", "key": "key.pem"}
ENV_NAMES = {"ca": "AUTO_DOCKER_CA", "cert": "AUTO_DOCKER_CERT", "key": "AUTO_DOCKER_KEY"}
CERT_DIR_ENV = "AUTO_DOCKER_CERT_PATH"
_PEM_MARK = "-----BEGIN"


@dataclass(frozen=True)
class PemSource:
    """One piece of TLS material: where it came from (for messages) and its PEM bytes."""

    origin: str  # a path or a variable name; never the content
    pem: bytes


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
    """Find and validate the TLS material; raise ConfigError with what to set when it is missing."""
    if cert_dir:
        return _check(_from_dir(cert_dir, "--cert-dir"))
    present = [name for name in ENV_NAMES.values() if environ.get(name)]
    if present:
        missing = [name for name in ENV_NAMES.values() if not environ.get(name)]
        if missing:
            raise ConfigError(f"{', '.join(present)} set but {', '.join(missing)} not: set all three")
        return _check(TLSMaterial(**{part: _from_variable(var, environ[var]) for part, var in ENV_NAMES.items()}))
    if environ.get(CERT_DIR_ENV):
        return _check(_from_dir(environ[CERT_DIR_ENV], CERT_DIR_ENV))
    raise ConfigError(
        "no Docker TLS material: pass --cert-dir DIR, or set AUTO_DOCKER_CA, AUTO_DOCKER_CERT and "
        f"AUTO_DOCKER_KEY, or {CERT_DIR_ENV}"
    )


def _read(path: Path, origin: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{origin}: {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"{origin}: cannot read {path} ({exc.strerror})") from None


def _from_dir(directory: str, origin: str) -> TLSMaterial:
    base = Path(directory)
    if not base.is_dir():
        raise ConfigError(f"{origin}: {directory} is not a directory holding ca.pem, cert.pem and key.pem")
    parts = {part: PemSource(str(base / name), _read(base / name, origin)) for part, name in FILE_NAMES.items()}
    return TLSMaterial(**parts)


def _from_variable(variable: str, value: str) -> PemSource:
    if value.lstrip().startswith(_PEM_MARK):
        return PemSource(variable, value.encode())
    return PemSource(f"{variable} ({value})", _read(Path(value), variable))


def _check(material: TLSMaterial) -> TLSMaterial:
    """Parse every piece, and check the key belongs to the certificate, so errors name the culprit."""
    try:
        x509.load_pem_x509_certificates(material.ca.pem)
    except ValueError:
        raise ConfigError(f"{material.ca.origin} is not a PEM CA certificate bundle") from None
    try:
        cert = x509.load_pem_x509_certificate(material.cert.pem)
    except ValueError:
        raise ConfigError(f"{material.cert.origin} is not a PEM certificate") from None
    try:
        key = serialization.load_pem_private_key(material.key.pem, password=None)
    except (ValueError, TypeError):
        raise ConfigError(f"{material.key.origin} is not an unencrypted PEM private key") from None
    if cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo):
        raise ConfigError(f"{material.key.origin} is not the key of {material.cert.origin}")
    return material


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
