"""Authentication of EC2 Query requests: Signature Version 4 (header or
presigned query) and Version 2, checked against EC2 credentials.

* ``noauth``: the access keys ``compute-manage ec2-credentials`` keeps
  (``db.ec2_credentials``); the signature is recomputed here.
* ``keystone``: Keystone checks the signature (``POST /v3/ec2tokens``
  with what was signed) and answers with a token naming user, project and
  roles.

Either way the timestamp must be within ``[DEFAULT] ec2_timestamp_expiry``
seconds (15 minutes) of the server's clock (``RequestExpired``), and a bad
key or signature is ``AuthFailure`` with the same words, whatever was
wrong: nothing about the expected signature leaves the server.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import time
from typing import Any
from urllib.parse import parse_qsl

import attrs
from twisted.internet.defer import ensureDeferred

from twisted_compute.api.ec2 import faults
from twisted_compute.api.ec2 import signature as sig
from twisted_compute.api.ec2.faults import Ec2Error, auth_failure
from twisted_compute.api.middleware import Middleware
from twisted_compute.api.middleware.auth import _context_for
from twisted_compute.log import Logger

log = Logger()

FORM = b"application/x-www-form-urlencoded"


@attrs.frozen
class Ec2Request:
    """What a signature covers, decoded once at the edge."""

    method: str
    raw_path: str
    #: (name, value) of the URL's query string, decoded.
    query: tuple[tuple[str, str], ...]
    #: (name, value) of every header as received.
    headers: tuple[tuple[str, str], ...]
    body: bytes
    #: The query's and the form body's parameters (first value wins).
    params: dict[str, str]

    def header(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None


def read_request(request, max_body: int | None = None) -> Ec2Request:
    """The request's parts; a body over ``max_body`` bytes is refused
    (413, in EC2's form: the JSON size limiter is not in this pipeline)."""
    uri = request.uri.decode("latin-1")
    raw_path, _, raw_query = uri.partition("?")
    query = tuple(parse_qsl(raw_query, keep_blank_values=True))
    body = b""
    if request.content is not None:
        request.content.seek(0)
        body = request.content.read()
        request.content.seek(0)
    if max_body is not None and len(body) > max_body:
        raise Ec2Error("InvalidRequest", "Request is too large.", 413)
    headers = tuple(
        (name.decode("latin-1"), value.decode("latin-1"))
        for name, values in request.requestHeaders.getAllRawHeaders()
        for value in values)
    params: dict[str, str] = {}
    for key, value in query:
        params.setdefault(key, value)
    content_type = (request.getHeader(b"content-type") or b"").split(
        b";")[0].strip().lower()
    if request.method == b"POST" and content_type == FORM and body:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise Ec2Error("InvalidParameterValue",
                           "The request body is not UTF-8") from None
        for key, value in parse_qsl(text, keep_blank_values=True):
            params.setdefault(key, value)
    return Ec2Request(method=request.method.decode("ascii"),
                      raw_path=raw_path or "/", query=query, headers=headers,
                      body=body, params=params)


def _parse_amz_date(text: str) -> float:
    try:
        return calendar.timegm(time.strptime(text, "%Y%m%dT%H%M%SZ"))
    except ValueError:
        raise Ec2Error("AuthFailure", "X-Amz-Date must be in the ISO8601 "
                       "basic format (yyyyMMdd'T'HHmmss'Z')", 401) from None


def _parse_iso(text: str) -> float:
    for form in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%fZ",
                 "%Y-%m-%dT%H:%M:%S"):
        try:
            return calendar.timegm(time.strptime(text, form))
        except ValueError:
            continue
    raise Ec2Error("InvalidParameterValue",
                   f"Invalid timestamp {text!r}")


@attrs.frozen
class Claim:
    """A request's signature claim, ready to be checked."""

    version: int
    access: str
    signature: str
    #: V4: the scope; V2: None.
    scope: sig.Scope | None = None
    #: What the secret signs (V4 string to sign; V2 string to sign).
    to_sign: str = ""
    v2_method: str | None = None


def claim_of(req: Ec2Request, now: float, expiry: int) -> Claim:
    """The signature claim of ``req``; MissingAuthenticationToken,
    AuthFailure (malformed) or RequestExpired."""
    params = req.params
    authorization = req.header("authorization")
    try:
        if authorization and authorization.startswith(sig.ALGORITHM_V4):
            parsed = sig.parse_authorization(
                authorization, req.header("x-amz-date") or
                params.get("X-Amz-Date"))
        elif "X-Amz-Algorithm" in params:
            parsed = sig.parse_presigned(params)
        elif params.get("SignatureVersion") == "2":
            return _claim_v2(req, now, expiry)
        else:
            raise Ec2Error("MissingAuthenticationToken",
                           "Request is missing Authentication Token", 401)
    except sig.MalformedSignature as exc:
        raise Ec2Error("AuthFailure", str(exc), 401) from None
    signed_at = _parse_amz_date(parsed.amz_date)
    if abs(now - signed_at) > expiry:
        raise Ec2Error("RequestExpired", "Request has expired", 400)
    if parsed.scope.date != parsed.amz_date[:8] or \
            parsed.scope.service != "ec2":
        raise auth_failure()
    if "host" not in parsed.signed_headers:
        raise Ec2Error("AuthFailure", "The host header must be signed",
                       401)
    query = req.query
    if parsed.presigned:
        query = tuple((k, v) for k, v in query if k != "X-Amz-Signature")
    canonical = sig.canonical_request(
        req.method, req.raw_path, query, req.headers,
        parsed.signed_headers, hashlib.sha256(req.body).hexdigest())
    return Claim(version=4, access=parsed.scope.access,
                 signature=parsed.signature, scope=parsed.scope,
                 to_sign=sig.string_to_sign(parsed.amz_date,
                                            parsed.scope.text, canonical))


def _claim_v2(req: Ec2Request, now: float, expiry: int) -> Claim:
    params = req.params
    method = params.get("SignatureMethod")
    if method not in sig.V2_METHODS:
        raise Ec2Error("AuthFailure", "Unsupported SignatureMethod", 401)
    access = params.get("AWSAccessKeyId")
    signature = params.get("Signature")
    if not access or not signature:
        raise Ec2Error("MissingAuthenticationToken",
                       "Request is missing Authentication Token", 401)
    if params.get("Expires"):
        if now > _parse_iso(params["Expires"]):
            raise Ec2Error("RequestExpired", "Request has expired", 400)
    elif params.get("Timestamp"):
        if abs(now - _parse_iso(params["Timestamp"])) > expiry:
            raise Ec2Error("RequestExpired", "Request has expired", 400)
    else:
        raise Ec2Error("MissingParameter",
                       "The request must contain the parameter Timestamp")
    pairs = list(req.query) if req.method == "GET" else list(
        req.params.items())
    to_sign = sig.string_to_sign_v2(req.method, req.header("host") or "",
                                    req.raw_path, pairs)
    return Claim(version=2, access=access, signature=signature,
                 to_sign=to_sign, v2_method=method)


def expected_signature(claim: Claim, secret: str) -> str:
    if claim.version == 4:
        return sig.signature_v4(secret, claim.scope, claim.to_sign)
    return sig.signature_v2(secret, claim.v2_method, claim.to_sign)


class Ec2Authenticate(Middleware):
    """Checks the signature and sets ``request.compute_context``."""

    def __init__(self, wrapped, conf=None, services=None, **options):
        super().__init__(wrapped, conf=conf, **options)
        self.services = services
        self.clock = getattr(services, "clock", None) or time.time
        self.keystone = None
        if conf.api.auth_strategy == "keystone":
            self.keystone = Ec2TokenClient(conf, services.keystone)

    def render(self, request):
        req = read_request(request, self.conf.max_request_body_size)
        claim = claim_of(req, self.clock(), self.conf.ec2_timestamp_expiry)
        request.ec2_params = req.params

        async def check():
            if self.keystone is not None:
                identity = await self.keystone.authenticate(req, claim)
            else:
                identity = await self._local(claim)
            request.compute_context = _context_for(request, **identity)

        return self._later(request, ensureDeferred(check()))

    def _later(self, request, deferred):
        from twisted.web.resource import getChildForRequest
        from twisted.web.server import NOT_DONE_YET

        def _go(_):
            if request._disconnected:
                return
            try:
                request.render(getChildForRequest(self.wrapped, request))
            except Exception as error:  # noqa: BLE001 - XML for the client
                faults.finish_with_error(request, error)

        def _fail(failure):
            faults.finish_with_error(request, failure.value)

        deferred.addCallbacks(_go, _fail)
        return NOT_DONE_YET

    async def _local(self, claim: Claim) -> dict[str, Any]:
        credential = await self.services.db.ec2_credentials.secret_for(
            claim.access)
        if credential is None:
            raise auth_failure()
        expected = expected_signature(claim, credential.secret)
        if not sig.same(expected, claim.signature):
            log.info("EC2 signature mismatch for access key {access}",
                     access=claim.access)
            raise auth_failure()
        user, project = credential.user_id, credential.project_id
        is_admin = user == "admin"
        return {"user_id": user, "project_id": project,
                "roles": ("admin", "member", "reader") if is_admin
                else ("member", "reader"),
                "is_admin": is_admin, "user_name": user,
                "project_name": project}


class Ec2TokenClient:
    """Keystone's ``POST /v3/ec2tokens``: Keystone holds the secret and
    checks the signature; a 2xx answer is a token for the user."""

    def __init__(self, conf, keystone):
        self.conf = conf
        self.keystone = keystone

    def body(self, req: Ec2Request, claim: Claim) -> dict[str, Any]:
        params = {k: v for k, v in req.params.items()
                  if k not in ("Signature", "X-Amz-Signature")}
        return {"credentials": {
            "access": claim.access, "signature": claim.signature,
            "host": req.header("host") or "", "verb": req.method,
            "path": req.raw_path, "params": params,
            "headers": dict(req.headers),
            "body_hash": hashlib.sha256(req.body).hexdigest()}}

    async def authenticate(self, req: Ec2Request, claim: Claim
                           ) -> dict[str, Any]:
        client = self.keystone
        url = client._base + "/ec2tokens"
        body = self.body(req, claim)
        for _attempt in (1, 2):
            # Keystone (since OSSA-2025-002) checks EC2 signatures only for
            # a service: our [keystone_authtoken] user's token goes along.
            was_cached = client._service_token is not None
            service_token = await client._get_service_token()
            response, content = await client._exchange(
                lambda: client._http.post(
                    url, json=body, headers={"X-Auth-Token": service_token},
                    timeout=client.conf.http_connect_timeout,
                    persistent=False))
            # A 401 does not say whose fault it is (Keystone words both
            # alike): with a cached service token, renew it and ask once
            # more; a fresh one was fine, so the signature is wrong.
            if response.code != 401 or not was_cached:
                break
            client._service_token = None
        if response.code >= 500:
            raise client._unavailable(
                "identity service error",
                "Keystone answered {code} checking an EC2 signature",
                code=response.code)
        if response.code not in (200, 201):
            try:
                reason = json.loads(content)["error"]["message"]
            except (ValueError, KeyError, TypeError):
                reason = ""
            log.info("Keystone refused EC2 access key {access}: {code} "
                     "{reason}", access=claim.access, code=response.code,
                     reason=reason)
            raise auth_failure()
        info = json.loads(content)["token"]
        roles = tuple(r["name"] for r in info.get("roles", ()))
        project = info.get("project") or {}
        user = info.get("user") or {}
        token = (response.headers.getRawHeaders(b"x-subject-token") or
                 [b""])[0].decode("latin-1")
        return {"user_id": user.get("id"), "project_id": project.get("id"),
                "roles": roles, "is_admin": "admin" in roles,
                "auth_token": token or None, "user_name": user.get("name"),
                "project_name": project.get("name")}
