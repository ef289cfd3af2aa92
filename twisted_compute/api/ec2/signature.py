"""AWS request signatures: Signature Version 4 (``AWS4-HMAC-SHA256``) and
Version 2 (``HmacSHA256`` / ``HmacSHA1``), as the EC2 Query API checks
them.

Pure functions of the request's parts; no I/O.  :func:`canonical_request`,
:func:`string_to_sign` and :func:`signature_v4` follow AWS's "Signature
Version 4 signing process" and are tested against AWS's published test
suite (``tests/api/ec2/test_signature.py``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import Iterable, Sequence
from urllib.parse import quote

import attrs

ALGORITHM_V4 = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

_SPACES = re.compile(r"\s+")
_AUTH_FIELD = re.compile(r"(\w+)=([^,\s]*)")


def uri_encode(text: str, safe: str = "") -> str:
    """RFC 3986 percent-encoding of everything but the unreserved
    characters (``A-Za-z0-9-_.~``) and ``safe``, upper-case hex, as AWS
    signs it."""
    return quote(text, safe="-_.~" + safe)


def canonical_uri(raw_path: str) -> str:
    """The path as sent (still percent-encoded) encoded once more, as
    every service but S3 signs it; empty is ``/``."""
    return uri_encode(raw_path or "/", safe="/")


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    """Decoded ``(name, value)`` pairs encoded and sorted by name, then
    value."""
    encoded = sorted((uri_encode(k), uri_encode(v)) for k, v in pairs)
    return "&".join(f"{k}={v}" for k, v in encoded)


def canonical_headers(headers: Iterable[tuple[str, str]],
                      signed: Sequence[str]) -> str:
    """``name:value\\n`` for each signed header: lower-case names, values
    trimmed with inner runs of spaces made one, repeated headers joined
    by commas in the order received."""
    values: dict[str, list[str]] = {}
    for name, value in headers:
        values.setdefault(name.lower(), []).append(
            _SPACES.sub(" ", value.strip()))
    return "".join(f"{name}:{','.join(values.get(name, []))}\n"
                   for name in signed)


def canonical_request(method: str, raw_path: str,
                      query: Iterable[tuple[str, str]],
                      headers: Iterable[tuple[str, str]],
                      signed_headers: Sequence[str],
                      payload_hash: str) -> str:
    return "\n".join([
        method.upper(), canonical_uri(raw_path), canonical_query(query),
        canonical_headers(headers, signed_headers),
        ";".join(signed_headers), payload_hash])


def string_to_sign(amz_date: str, scope: str, canonical: str) -> str:
    return "\n".join([
        ALGORITHM_V4, amz_date, scope,
        hashlib.sha256(canonical.encode("utf-8")).hexdigest()])


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def signing_key(secret: str, date: str, region: str, service: str
                ) -> bytes:
    key = _hmac(("AWS4" + secret).encode("utf-8"), date)
    key = _hmac(key, region)
    key = _hmac(key, service)
    return _hmac(key, "aws4_request")


def signature_v4(secret: str, scope: "Scope", to_sign: str) -> str:
    key = signing_key(secret, scope.date, scope.region, scope.service)
    return hmac.new(key, to_sign.encode("utf-8"),
                    hashlib.sha256).hexdigest()


@attrs.frozen
class Scope:
    """``AKID/20150830/us-east-1/service/aws4_request`` taken apart."""

    access: str
    date: str
    region: str
    service: str

    @property
    def text(self) -> str:
        """The credential scope (without the access key)."""
        return f"{self.date}/{self.region}/{self.service}/aws4_request"


@attrs.frozen
class SignedRequestV4:
    """What a V4 signature claims, from the Authorization header or the
    ``X-Amz-*`` query parameters (a presigned request)."""

    scope: Scope
    signed_headers: tuple[str, ...]
    signature: str
    amz_date: str
    presigned: bool = False


class MalformedSignature(ValueError):
    """The request carries a signature whose form is wrong."""


def _scope(credential: str) -> Scope:
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request" or not parts[0]:
        raise MalformedSignature(
            "Credential should be scoped to a valid region, service and "
            "date, as AKID/yyyymmdd/region/service/aws4_request")
    return Scope(*parts[:4])


def parse_authorization(header: str, amz_date: str | None
                        ) -> SignedRequestV4:
    """The ``Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders
    =..., Signature=...`` header."""
    algorithm, _, rest = header.strip().partition(" ")
    if algorithm != ALGORITHM_V4:
        raise MalformedSignature(f"Unsupported algorithm {algorithm!r}")
    fields = dict(_AUTH_FIELD.findall(rest))
    missing = [k for k in ("Credential", "SignedHeaders", "Signature")
               if not fields.get(k)]
    if missing:
        raise MalformedSignature(
            f"Authorization header requires {', '.join(missing)}")
    if not amz_date:
        raise MalformedSignature("X-Amz-Date (or Date) is required")
    return SignedRequestV4(
        scope=_scope(fields["Credential"]),
        signed_headers=tuple(fields["SignedHeaders"].lower().split(";")),
        signature=fields["Signature"], amz_date=amz_date)


def parse_presigned(params: dict[str, str]) -> SignedRequestV4:
    """``X-Amz-Algorithm``, ``X-Amz-Credential``, ... query parameters."""
    if params.get("X-Amz-Algorithm") != ALGORITHM_V4:
        raise MalformedSignature("Unsupported X-Amz-Algorithm")
    for key in ("X-Amz-Credential", "X-Amz-SignedHeaders",
                "X-Amz-Signature", "X-Amz-Date"):
        if not params.get(key):
            raise MalformedSignature(f"{key} is required")
    return SignedRequestV4(
        scope=_scope(params["X-Amz-Credential"]),
        signed_headers=tuple(
            params["X-Amz-SignedHeaders"].lower().split(";")),
        signature=params["X-Amz-Signature"],
        amz_date=params["X-Amz-Date"], presigned=True)


# --- Version 2 ---------------------------------------------------------------

V2_METHODS = {"HmacSHA256": hashlib.sha256, "HmacSHA1": hashlib.sha1}


def string_to_sign_v2(method: str, host: str, path: str,
                      params: Iterable[tuple[str, str]]) -> str:
    """Version 2: verb, host (lower case), path and the sorted, encoded
    parameters but ``Signature``."""
    query = canonical_query((k, v) for k, v in params if k != "Signature")
    return "\n".join([method.upper(), host.lower(), path or "/", query])


def signature_v2(secret: str, method_name: str, to_sign: str) -> str:
    digest = hmac.new(secret.encode("utf-8"), to_sign.encode("utf-8"),
                      V2_METHODS[method_name]).digest()
    return base64.b64encode(digest).decode("ascii")


def same(expected: str, given: str) -> bool:
    """Constant-time comparison (no timing tells how much matched)."""
    return hmac.compare_digest(expected.encode("utf-8"),
                               given.encode("utf-8"))
