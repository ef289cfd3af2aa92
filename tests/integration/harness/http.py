"""HTTP for the integration tests: plain :mod:`http.client` with timeouts
(the tests are synchronous, bounded and need no reactor), and a
self-signed certificate for the TLS listeners."""

from __future__ import annotations

import datetime
import http.client
import ipaddress
import json
import os
import ssl
from typing import Any

from tests.integration.harness.processes import LOOPBACK


# --- HTTP -----------------------------------------------------------------

class Response:
    """An HTTP response: ``code``, ``headers`` (lower-case names),
    ``body`` (bytes), ``json``."""

    def __init__(self, code: int, headers: dict[str, str], body: bytes):
        self.code = code
        self.headers = headers
        self.body = body

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def __repr__(self):
        return f"<Response {self.code} {self.body[:300]!r}>"


def http_request(host: str, port: int, method: str, path: str,
                 body: Any = None, token: str | None = "admin:admin",
                 version: str | None = None,
                 headers: dict[str, str] | None = None,
                 raw: bytes | None = None, timeout: float = 10.0,
                 tls: ssl.SSLContext | None = None) -> Response:
    """One request on a new connection; ``token`` goes in X-Auth-Token,
    ``version`` in ``OpenStack-API-Version: compute <version>``."""
    all_headers = {"Accept": "application/json"}
    if token is not None:
        all_headers["X-Auth-Token"] = token
    if version is not None:
        all_headers["OpenStack-API-Version"] = f"compute {version}"
    data = raw
    if body is not None:
        data = json.dumps(body).encode()
        all_headers["Content-Type"] = "application/json"
    all_headers.update(headers or {})
    if tls is not None:
        conn = http.client.HTTPSConnection(host, port, timeout=timeout,
                                           context=tls)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=data, headers=all_headers)
        response = conn.getresponse()
        content = response.read()
        return Response(response.status,
                        {k.lower(): v for k, v in response.getheaders()},
                        content)
    finally:
        conn.close()


# --- TLS ------------------------------------------------------------------

def make_self_signed(directory: str, host: str = LOOPBACK
                     ) -> tuple[str, str]:
    """A self-signed certificate for ``host`` (as IP SAN and CN) and its
    key, written as PEM files in ``directory``; returns their paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address(host))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None),
                       critical=True)
        .sign(key, hashes.SHA256()))
    cert_path = os.path.join(directory, "cert.pem")
    key_path = os.path.join(directory, "key.pem")
    with open(cert_path, "wb") as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as handle:
        handle.write(key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption()))
    return cert_path, key_path
