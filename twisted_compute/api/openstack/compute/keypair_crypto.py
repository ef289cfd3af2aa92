"""Key material for ``os-keypairs``: fingerprints of imported keys and
generation of new pairs (CPU-bound: call the generators in a thread)."""

from __future__ import annotations

import base64
import datetime
import hashlib

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from twisted_compute import exception

#: The comment of generated public keys.
COMMENT = "Generated-by-twisted-compute"

_SSH_TYPES = ("ssh-rsa", "ssh-ed25519", "ecdsa-sha2-nistp256",
              "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521")


def _colon_hex(digest: bytes) -> str:
    return ":".join(f"{b:02x}" for b in digest)


def ssh_fingerprint(public_key: str) -> str:
    """The MD5 fingerprint (``aa:bb:...``) of an OpenSSH public key line;
    400 when it is not one of the key types we accept."""
    text = (public_key or "").strip()
    if text.split(" ", 1)[0] not in _SSH_TYPES:
        raise exception.InvalidKeypair(
            reason="failed to generate fingerprint")
    try:
        key = serialization.load_ssh_public_key(text.encode("utf-8"))
    except Exception:  # ValueError, UnsupportedAlgorithm, ...
        raise exception.InvalidKeypair(
            reason="failed to generate fingerprint") from None
    blob = key.public_bytes(serialization.Encoding.OpenSSH,
                            serialization.PublicFormat.OpenSSH).split()[1]
    return _colon_hex(hashlib.md5(base64.b64decode(blob)).digest())


def x509_fingerprint(certificate: str) -> str:
    """The SHA-1 fingerprint of a PEM certificate; 400 otherwise."""
    try:
        cert = x509.load_pem_x509_certificate(certificate.encode("utf-8"))
    except Exception:
        raise exception.InvalidKeypair(
            reason="failed to generate X509 fingerprint") from None
    return _colon_hex(cert.fingerprint(hashes.SHA1()))


def generate_ssh() -> tuple[str, str, str]:
    """A new RSA 2048 pair: (private key PEM, public key line,
    fingerprint)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.
        TraditionalOpenSSL, serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH,
        serialization.PublicFormat.OpenSSH).decode()
    public = f"{public} {COMMENT}\n"
    return private, public, ssh_fingerprint(public)


def generate_x509(user_id: str) -> tuple[str, str, str]:
    """A new client-auth certificate for ``user_id`` (as used for WinRM):
    (private key PEM, certificate PEM, fingerprint)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, user_id)])
    upn = f"{user_id}@localhost".encode()
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.OtherName(
                x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2.3"),
                b"\x0c" + bytes([len(upn)]) + upn)]), critical=False)
            .sign(key, hashes.SHA256()))
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.
        TraditionalOpenSSL, serialization.NoEncryption()).decode()
    public = cert.public_bytes(serialization.Encoding.PEM).decode()
    return private, public, x509_fingerprint(public)
