"""Certificate generation of the lab: EKUs, SANs, chains, file permissions, a real TLS handshake."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID

from deployer.lab import certs


@pytest.fixture(scope="module")
def ca() -> certs.CertAuthority:
    return certs.make_ca("test CA")


def _eku(cert: x509.Certificate) -> set:
    return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def test_ca_is_a_ca(ca: certs.CertAuthority) -> None:
    constraints = ca.cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca
    assert ca.cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    ca.cert.verify_directly_issued_by(ca.cert)  # self-signed


def test_server_cert_has_ip_sans_and_server_auth(ca: certs.CertAuthority) -> None:
    leaf = certs.issue(ca, "blue", ips=["10.213.1.2"], dns=["blue.auto-lab"], server=True)
    san = leaf.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.213.1.2")]
    assert san.get_values_for_type(x509.DNSName) == ["blue.auto-lab"]
    assert _eku(leaf.cert) == {ExtendedKeyUsageOID.SERVER_AUTH}
    assert not leaf.cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    leaf.cert.verify_directly_issued_by(ca.cert)


def test_client_cert_has_client_auth_only(ca: certs.CertAuthority) -> None:
    key, cert = certs.issue(ca, "client", client=True)  # unpacks as key, cert
    assert _eku(cert) == {ExtendedKeyUsageOID.CLIENT_AUTH}
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()
    cert.verify_directly_issued_by(ca.cert)


def test_a_different_ca_does_not_verify(ca: certs.CertAuthority) -> None:
    wrong = certs.make_ca("wrong CA")
    leaf = certs.issue(wrong, "client", client=True)
    with pytest.raises((InvalidSignature, ValueError)):
        leaf.cert.verify_directly_issued_by(ca.cert)


def test_bad_requests_are_refused(ca: certs.CertAuthority) -> None:
    with pytest.raises(ValueError):
        certs.issue(ca, "nothing")
    with pytest.raises(ValueError):
        certs.issue(ca, "server without names", server=True)


def test_write_bundle_permissions_and_content(tmp_path: Path, ca: certs.CertAuthority) -> None:
    leaf = certs.issue(ca, "client", client=True)
    directory = certs.write_bundle(tmp_path / "client", ca, leaf.cert, leaf.key)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE((directory / "key.pem").stat().st_mode) == 0o600
    assert sorted(p.name for p in directory.iterdir()) == ["ca.pem", "cert.pem", "key.pem"]
    assert (directory / "ca.pem").read_bytes() == ca.cert_pem()
    assert certs.bundle_is_valid(directory, ca)
    assert not certs.bundle_is_valid(directory, certs.make_ca("other"))
    # Rewriting over a too-open key file tightens it.
    (directory / "key.pem").chmod(0o644)
    certs.write_bundle(directory, ca, leaf)
    assert stat.S_IMODE((directory / "key.pem").stat().st_mode) == 0o600


def test_ca_round_trip(tmp_path: Path, ca: certs.CertAuthority) -> None:
    certs.write_ca(tmp_path, ca)
    assert stat.S_IMODE((tmp_path / "ca-key.pem").stat().st_mode) == 0o600
    loaded = certs.load_ca(tmp_path)
    assert loaded.cert == ca.cert
    (tmp_path / "ca-key.pem").write_bytes(certs.make_ca("other").key_pem())
    with pytest.raises(ValueError):
        certs.load_ca(tmp_path)


def _handshake(tmp_path: Path, ca: certs.CertAuthority, client_ca: certs.CertAuthority) -> None:
    """Mutual TLS over loopback: a server cert for 127.0.0.1, a client cert from ``client_ca``."""
    server_dir = certs.write_bundle(tmp_path / "server", ca, certs.issue(ca, "srv", ips=["127.0.0.1"], server=True))
    client_dir = certs.write_bundle(tmp_path / "client", client_ca, certs.issue(client_ca, "cli", client=True))
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(server_dir / "cert.pem", server_dir / "key.pem")
    server_ctx.load_verify_locations(server_dir / "ca.pem")
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    client_ctx = ssl.create_default_context(cafile=str(server_dir / "ca.pem"))
    client_ctx.load_cert_chain(client_dir / "cert.pem", client_dir / "key.pem")

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    errors: list[BaseException] = []

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(tls.recv(5))
        except (ssl.SSLError, OSError) as exc:
            errors.append(exc)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            client_ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            tls.sendall(b"hello")
            assert tls.recv(5) == b"hello"
    finally:
        thread.join(5)
        listener.close()
    if errors:
        raise errors[0]


def test_mutual_tls_handshake_works(tmp_path: Path, ca: certs.CertAuthority) -> None:
    _handshake(tmp_path, ca, ca)


def test_client_from_another_ca_is_rejected(tmp_path: Path, ca: certs.CertAuthority) -> None:
    with pytest.raises((ssl.SSLError, OSError)):
        _handshake(tmp_path, ca, certs.make_ca("wrong CA"))
