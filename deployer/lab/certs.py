"""Certificates for the local lab: a private CA, server certificates with IP SANs, client certificates.

ECDSA P-256 keys throughout (small, fast, accepted by Go's and OpenSSL's TLS stacks). Nothing here
touches the network; tests use it to build a second, *wrong* CA and a bundle signed by it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_CA_DAYS = 3650
DEFAULT_DAYS = 825  # the longest leaf lifetime Apple and friends still accept
_BACKDATE = dt.timedelta(minutes=5)  # tolerate small clock skew between host and namespaces


@dataclass(frozen=True)
class CertAuthority:
    """A CA: its private key and self-signed certificate."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    def cert_pem(self) -> bytes:
        """The CA certificate in PEM."""
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        """The CA key in unencrypted PKCS#8 PEM."""
        return key_pem(self.key)


class IssuedCert(NamedTuple):
    """A leaf certificate and its private key; unpacks as ``key, cert = issue(...)``."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    def cert_pem(self) -> bytes:
        """The certificate in PEM."""
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        """The key in unencrypted PKCS#8 PEM."""
        return key_pem(self.key)


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """Serialise a private key as unencrypted PKCS#8 PEM."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "AUTO toolkit lab"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def make_ca(
    common_name: str = "AUTO lab CA", *, days: int = DEFAULT_CA_DAYS, starts: dt.datetime | None = None
) -> CertAuthority:
    """Create a new self-signed CA (path length 0: it signs leaves only), valid as :func:`issue` says."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(common_name)
    not_before, not_after = _validity(starts, days)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    return CertAuthority(key, cert)


def issue(
    ca: CertAuthority,
    common_name: str,
    *,
    ips: Iterable[str] = (),
    dns: Iterable[str] = (),
    server: bool = False,
    client: bool = False,
    days: int = DEFAULT_DAYS,
    starts: dt.datetime | None = None,
) -> IssuedCert:
    """Issue a leaf certificate signed by ``ca``, valid from ``starts`` (default: now, backdated a little) for
    ``days`` days: a past ``starts`` makes an expired certificate, a future one a not-yet-valid one (tests).

    ``server`` adds the serverAuth EKU, ``client`` the clientAuth EKU (both may be set). ``ips`` and
    ``dns`` become subjectAltName entries; a server certificate needs at least one of them because
    TLS clients match the host against the SAN only, never the CN.
    """
    if not (server or client):
        raise ValueError("issue(): ask for a server and/or a client certificate")
    sans: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    sans += [x509.DNSName(name) for name in dns]
    if server and not sans:
        raise ValueError("issue(): a server certificate needs at least one IP or DNS name")
    usages = []
    if server:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    if client:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    key = ec.generate_private_key(ec.SECP256R1())
    not_before, not_after = _validity(starts, days)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return IssuedCert(key, builder.sign(ca.key, hashes.SHA256()))


def _validity(starts: dt.datetime | None, days: int) -> tuple[dt.datetime, dt.datetime]:
    """From ``starts`` (default: now, backdated a little for clocks behind ours) to ``days`` days after it."""
    if starts is None:
        now = _now()
        return now - _BACKDATE, now + dt.timedelta(days=days)
    return starts, starts + dt.timedelta(days=days)


def _write_private(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` created with ``mode`` from the start (no world-readable window)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # the file may have existed with other permissions
        os.write(fd, data)
    finally:
        os.close(fd)


def write_bundle(
    directory: str | os.PathLike[str],
    ca: CertAuthority,
    cert: IssuedCert | x509.Certificate,
    key: ec.EllipticCurvePrivateKey | None = None,
) -> Path:
    """Write ``ca.pem``, ``cert.pem`` and ``key.pem`` into ``directory`` (0700; key 0600).

    ``cert`` is either what :func:`issue` returned (then ``key`` may be omitted) or a bare
    certificate with its ``key``. This is the layout of Docker's ``DOCKER_CERT_PATH``.
    """
    if isinstance(cert, IssuedCert):
        key = key or cert.key
        cert = cert.cert
    if key is None:
        raise ValueError("write_bundle(): the private key is missing")
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    _write_private(path / "ca.pem", ca.cert_pem(), 0o644)
    _write_private(path / "cert.pem", cert.public_bytes(serialization.Encoding.PEM), 0o644)
    _write_private(path / "key.pem", key_pem(key), 0o600)
    return path


def write_ca(directory: str | os.PathLike[str], ca: CertAuthority) -> Path:
    """Write ``ca.pem`` and ``ca-key.pem`` (0600) into ``directory`` (0700)."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    _write_private(path / "ca.pem", ca.cert_pem(), 0o644)
    _write_private(path / "ca-key.pem", ca.key_pem(), 0o600)
    return path


def load_ca(directory: str | os.PathLike[str]) -> CertAuthority:
    """Load a CA written by :func:`write_ca`; raise ``ValueError`` if it is unusable."""
    path = Path(directory)
    cert = x509.load_pem_x509_certificate((path / "ca.pem").read_bytes())
    key = serialization.load_pem_private_key((path / "ca-key.pem").read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("the lab CA key is not an ECDSA key")
    if key.public_key().public_numbers() != cert.public_key().public_numbers():  # type: ignore[union-attr]
        raise ValueError("the lab CA key does not match its certificate")
    return CertAuthority(key, cert)


def bundle_is_valid(directory: str | os.PathLike[str], ca: CertAuthority, *, min_days: int = 1) -> bool:
    """True when ``directory`` holds a cert/key pair signed by ``ca`` and valid ``min_days`` more."""
    path = Path(directory)
    try:
        cert = x509.load_pem_x509_certificate((path / "cert.pem").read_bytes())
        key = serialization.load_pem_private_key((path / "key.pem").read_bytes(), password=None)
        cert.verify_directly_issued_by(ca.cert)
    except (OSError, ValueError, TypeError, InvalidSignature):
        return False
    if key.public_key().public_numbers() != cert.public_key().public_numbers():  # type: ignore[union-attr]
        return False
    return cert.not_valid_after_utc - _now() > dt.timedelta(days=min_days)
