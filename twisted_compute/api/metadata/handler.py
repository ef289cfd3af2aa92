"""The metadata API's resource: who is asking, then what they asked for.

A guest is identified by the address it calls from (its fixed IP), or,
when ``[neutron] metadata_proxy_shared_secret`` is set, by the headers a
metadata proxy adds: ``X-Instance-ID``, ``X-Tenant-ID`` and
``X-Instance-ID-Signature`` (hex HMAC-SHA256 of the instance id with the
shared secret).  What is found is cached for ``[api]
metadata_cache_expiration`` seconds, by address or instance id.

This is not the compute API: there is no authentication and no
microversion, and errors are short plain-text bodies, as Nova's metadata
service gives them.
"""

from __future__ import annotations

import hashlib
import hmac
import http
from typing import Any

from twisted.internet.defer import ensureDeferred
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from twisted_compute import exception
from twisted_compute.log import Logger
from twisted_compute.metadata import base
from twisted_compute.metadata.base import (
    Content, InstanceMetadata, MetadataNotFound)

#: Largest password a guest may post, in bytes (Nova's limit).
MAX_PASSWORD_SIZE = 256


class MetadataError(Exception):
    """An answer other than 200: status and explanation."""

    def __init__(self, code: int, explanation: str | None = None):
        super().__init__(code, explanation)
        self.code = code
        self.explanation = explanation


_EXPLANATIONS = {
    400: "The server could not comply with the request since it is either "
         "malformed or otherwise incorrect.",
    403: "Access was denied to this resource.",
    404: "The resource could not be found.",
    405: "The method is not allowed for this resource.",
    409: "There was a conflict when trying to complete your request.",
    500: "An unknown error has occurred. Please try your request again.",
}


def error_body(code: int, explanation: str | None = None) -> bytes:
    phrase = http.HTTPStatus(code).phrase
    text = explanation or _EXPLANATIONS.get(code, phrase)
    return f"{code} {phrase}\n\n{text}\n".encode()


def sign_instance_id(secret: str, instance_id: str) -> str:
    """The ``X-Instance-ID-Signature`` a proxy sends for ``instance_id``."""
    return hmac.new(secret.encode(), instance_id.encode(),
                    hashlib.sha256).hexdigest()


def _plain_address(host: str) -> str:
    """``10.0.0.5`` for an IPv4-mapped IPv6 peer (``::ffff:10.0.0.5``)."""
    if host.lower().startswith("::ffff:") and "." in host:
        return host[len("::ffff:"):]
    return host


class MetadataResource(Resource):
    """Serves every metadata path below the root of its listener."""

    isLeaf = True
    log = Logger()

    def __init__(self, services, *, clock=None,
                 vendor_data: dict[str, Any] | None = None):
        super().__init__()
        self.services = services
        self.conf = services.conf
        self.db = services.db
        self.clock = clock if clock is not None else services.reactor
        if vendor_data is None:
            vendor_data = base.load_vendor_data(
                self.conf.api.vendordata_jsonfile_path)
        self.vendor_data = vendor_data
        #: (kind, key) -> (expires at, InstanceMetadata)
        self._cache: dict[tuple[str, str], tuple[float, InstanceMetadata]] \
            = {}

    # --- twisted.web ---------------------------------------------------

    def render(self, request):
        d = ensureDeferred(self._respond(request))
        d.addErrback(self._failed, request)
        return NOT_DONE_YET

    def _write(self, request, code: int, body: bytes,
               content_type: str = base.TEXT_PLAIN) -> None:
        if request.finished or request._disconnected:
            return
        request.setResponseCode(code)
        request.setHeader(b"content-type", content_type.encode())
        request.setHeader(b"content-length", str(len(body)).encode())
        request.write(body)
        request.finish()

    def _failed(self, failure: Failure, request) -> None:
        if failure.check(MetadataError):
            error = failure.value
            self._write(request, error.code,
                        error_body(error.code, error.explanation))
            return
        self.log.failure("metadata request {method} {path} failed",
                         failure, method=request.method,
                         path=request.path)
        self._write(request, 500, error_body(500))

    # --- dispatch --------------------------------------------------------

    async def _respond(self, request) -> None:
        segments = [s.decode("utf-8", "replace") for s in request.postpath]
        path = "/" + "/".join(segments)
        tokens = [t for t in path.split("/") if t]
        method = request.method.decode("ascii", "replace")
        is_password = (len(tokens) == 3 and tokens[0] == "openstack"
                       and tokens[2] == base.PASSWORD)
        if is_password:
            if method not in ("GET", "HEAD", "POST"):
                raise MetadataError(400)
        elif method not in ("GET", "HEAD"):
            request.setHeader(b"allow", b"GET, HEAD")
            raise MetadataError(405)
        if not tokens:
            # The EC2 versions, like Nova, without asking who calls.
            self._write(request, 200, base.ec2_format(
                list(base.EC2_VERSIONS) + [base.LATEST]))
            return
        metadata = await self._instance_metadata(request)
        if is_password and method == "POST":
            await self._set_password(request, metadata, tokens[1])
            self._write(request, 200, b"")
            return
        try:
            content: Content = metadata.lookup(path)
        except MetadataNotFound:
            raise MetadataError(404) from None
        self._write(request, 200, content.body, content.content_type)

    # --- who is asking -----------------------------------------------------

    def _remote_address(self, request) -> str:
        address = _plain_address(request.getClientAddress().host or "")
        if self.conf.api.use_forwarded_for:
            forwarded = request.getHeader(b"x-forwarded-for")
            if forwarded:
                address = forwarded.decode("latin-1").split(",")[0].strip()
        return address

    async def _instance_metadata(self, request) -> InstanceMetadata:
        secret = self.conf.neutron.metadata_proxy_shared_secret
        if secret:
            return await self._by_signed_headers(request, secret)
        return await self._by_address(request)

    async def _by_address(self, request) -> InstanceMetadata:
        address = self._remote_address(request)
        metadata = self._cached("address", address)
        if metadata is not None:
            return metadata
        uuid = await self.db.instances.uuid_by_fixed_ip(address)
        if uuid is None:
            self.log.info("no instance has the fixed IP {address}",
                          address=address)
            raise MetadataError(404)
        metadata = await self._load(uuid, address)
        self._store("address", address, metadata)
        return metadata

    async def _by_signed_headers(self, request, secret: str
                                 ) -> InstanceMetadata:
        headers = request.requestHeaders

        def one(name: str) -> list[str] | None:
            values = headers.getRawHeaders(name)
            return [v.decode("latin-1") if isinstance(v, bytes) else v
                    for v in values] if values else None

        instance_ids = one("X-Instance-ID")
        signatures = one("X-Instance-ID-Signature")
        tenant_ids = one("X-Tenant-ID")
        if instance_ids is None:
            raise MetadataError(
                400, "X-Instance-ID header is missing from request.")
        if signatures is None:
            raise MetadataError(
                400, "X-Instance-ID-Signature header is missing from "
                     "request.")
        if tenant_ids is None:
            raise MetadataError(
                400, "X-Tenant-ID header is missing from request.")
        if len(instance_ids) > 1:
            raise MetadataError(
                400, "Multiple X-Instance-ID headers found within request.")
        if len(tenant_ids) > 1:
            raise MetadataError(
                400, "Multiple X-Tenant-ID headers found within request.")
        instance_id, tenant_id = instance_ids[0], tenant_ids[0]
        forwarded = one("X-Forwarded-For")
        remote = (forwarded[0].split(",")[0].strip() if forwarded
                  else _plain_address(request.getClientAddress().host or ""))
        expected = sign_instance_id(secret, instance_id)
        if not hmac.compare_digest(expected.encode(),
                                   signatures[0].encode("latin-1")):
            self.log.warn("X-Instance-ID-Signature does not match the "
                          "expected value for instance {instance_id}; "
                          "request from {remote}",
                          instance_id=instance_id, remote=remote)
            raise MetadataError(403)
        metadata = self._cached("uuid", instance_id)
        if metadata is None:
            metadata = await self._load(instance_id, remote or None)
            self._store("uuid", instance_id, metadata)
        if metadata.project_id != tenant_id:
            self.log.warn("X-Tenant-ID {tenant_id} does not match the "
                          "project of instance {instance_id}",
                          tenant_id=tenant_id, instance_id=instance_id)
            raise MetadataError(404)
        return metadata

    async def _load(self, uuid: str, address: str | None
                    ) -> InstanceMetadata:
        found = await self.db.instances.get_with_key_type(uuid)
        if found is None:
            raise MetadataError(404)
        return InstanceMetadata(
            found["instance"], address=address, key_type=found["key_type"],
            vendor_data=self.vendor_data,
            dhcp_domain=self.conf.api.dhcp_domain,
            default_availability_zone=self.conf.default_availability_zone)

    # --- the cache -----------------------------------------------------

    def _cached(self, kind: str, key: str) -> InstanceMetadata | None:
        entry = self._cache.get((kind, key))
        if entry is None:
            return None
        expires, metadata = entry
        if self.clock.seconds() >= expires:
            del self._cache[(kind, key)]
            return None
        return metadata

    def _store(self, kind: str, key: str, metadata: InstanceMetadata
               ) -> None:
        lifetime = self.conf.api.metadata_cache_expiration
        if lifetime <= 0:
            return
        now = self.clock.seconds()
        for stale in [k for k, (expires, _) in self._cache.items()
                      if expires <= now]:
            del self._cache[stale]
        self._cache[(kind, key)] = (now + lifetime, metadata)

    def _forget(self, uuid: str) -> None:
        for key in [k for k, (_, md) in self._cache.items()
                    if md.uuid == uuid]:
            del self._cache[key]

    # --- password ------------------------------------------------------

    async def _set_password(self, request, metadata: InstanceMetadata,
                            version: str) -> None:
        if version != base.LATEST and version not in \
                base.OPENSTACK_VERSIONS or base.PASSWORD not in \
                metadata.openstack_listing(version):
            raise MetadataError(404)
        length = request.getHeader(b"content-length")
        try:
            too_long = length is not None and \
                int(length) > MAX_PASSWORD_SIZE
        except ValueError:
            raise MetadataError(400) from None
        body = request.content.read(MAX_PASSWORD_SIZE + 1) \
            if request.content is not None else b""
        if too_long or len(body) > MAX_PASSWORD_SIZE:
            raise MetadataError(400, "Request is too large.")
        try:
            password = body.decode("utf-8")
        except UnicodeDecodeError:
            raise MetadataError(400, "The password is not UTF-8.") \
                from None
        try:
            stored = await self.db.instances.set_password(metadata.uuid,
                                                          password)
        except exception.InstanceNotFound:
            raise MetadataError(404) from None
        if not stored:
            raise MetadataError(409)
        self._forget(metadata.uuid)
