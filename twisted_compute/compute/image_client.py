"""The agent's client of the image API for snapshots: set a queued
image's formats, stream its data in, check what the image API stored,
list and delete images.

Uploads are streamed: a file is read in chunks in a thread pool
(:class:`_FileProducer`, never the whole file in memory), hashed as it
goes (MD5 for Glance's ``checksum``, SHA-512 for ``os_hash_value``), and
after the upload the image's checksum and hash as the image API computed
them must equal ours (:class:`~twisted_compute.exception.
ImageUploadFailed` otherwise).
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any
from urllib.parse import urlencode

from twisted.internet import defer
from twisted.internet.threads import deferToThreadPool
from twisted.web.iweb import IBodyProducer
from zope.interface import implementer

from twisted_compute import exception
from twisted_compute.log import Logger

log = Logger()

CHUNK = 1 << 20


def image_api_url(conf) -> str:
    """The image API the agents use: ``[glance] api_servers``' first, or
    this deployment's own image listener."""
    servers = [s.strip() for s in conf.glance.api_servers.split(",")
               if s.strip()]
    if servers:
        return servers[0].rstrip("/")
    listen = conf.image_listen
    if listen in ("0.0.0.0", "::", ""):
        listen = "127.0.0.1"
    if ":" in listen:
        listen = f"[{listen}]"
    return f"http://{listen}:{conf.image_listen_port}"


class _Hashes:
    def __init__(self):
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.sha512 = hashlib.sha512()
        self.size = 0

    def update(self, chunk: bytes) -> None:
        self.md5.update(chunk)
        self.sha512.update(chunk)
        self.size += len(chunk)


@implementer(IBodyProducer)
class _FileProducer:
    """A request body read from a file in ``pool``, one chunk in flight
    at a time (so at most one chunk is in memory), hashed in the same
    thread as it is read."""

    def __init__(self, reactor, pool, path: str, hashes: _Hashes,
                 chunk: int | None = None):
        self.reactor = reactor
        self.pool = pool
        self.path = path
        self.hashes = hashes
        self.chunk = chunk or CHUNK
        self.length = os.path.getsize(path)
        self._paused: defer.Deferred | None = None
        self._stopped = False

    def _read(self, handle) -> bytes:
        data = handle.read(self.chunk)
        if data:
            self.hashes.update(data)
        return data

    def _thread(self, func, *args):
        if self.pool is None:
            return defer.maybeDeferred(func, *args)
        return deferToThreadPool(self.reactor, self.pool, func, *args)

    async def _produce(self, consumer) -> None:
        handle = await self._thread(open, self.path, "rb")
        try:
            while not self._stopped:
                if self._paused is not None:
                    await self._paused
                    continue
                data = await self._thread(self._read, handle)
                if not data:
                    return
                consumer.write(data)
        finally:
            await self._thread(handle.close)
        if self._stopped:
            raise exception.ImageUploadFailed(
                image_id=os.path.basename(self.path),
                reason="the upload was stopped")

    def startProducing(self, consumer):
        return defer.ensureDeferred(self._produce(consumer))

    def pauseProducing(self):
        if self._paused is None:
            self._paused = defer.Deferred()

    def resumeProducing(self):
        paused, self._paused = self._paused, None
        if paused is not None:
            paused.callback(None)

    def stopProducing(self):
        self._stopped = True
        self.resumeProducing()


@implementer(IBodyProducer)
class _BytesProducer:
    def __init__(self, data: bytes, hashes: _Hashes):
        self.data = data
        self.length = len(data)
        hashes.update(data)

    def startProducing(self, consumer):
        consumer.write(self.data)
        return defer.succeed(None)

    def pauseProducing(self):
        pass

    def resumeProducing(self):
        pass

    def stopProducing(self):
        pass


class ImageClient:
    """``http``: a treq-compatible client (``treq``, ``StubTreq`` in
    tests); ``pool``: where files are read (None: on the caller's
    thread, for tests)."""

    def __init__(self, base_url: str, token: str | None, reactor, pool=None,
                 http=None, timeout: float = 60.0):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.reactor = reactor
        self.pool = pool
        if http is None:
            from treq.client import HTTPClient
            from twisted.web.client import Agent, HTTPConnectionPool
            http = HTTPClient(Agent(reactor, pool=HTTPConnectionPool(
                reactor, persistent=True)))
        self.http = http
        self.timeout = timeout

    @classmethod
    def from_conf(cls, conf, reactor, pool=None, http=None
                  ) -> "ImageClient":
        return cls(image_api_url(conf), conf.glance.auth_token or None,
                   reactor, pool=pool, http=http,
                   timeout=conf.glance.image_response_timeout)

    def _headers(self, content_type: str | None = None
                 ) -> dict[str, list[str]]:
        headers = {"Accept": ["application/json"]}
        if self.token:
            headers["X-Auth-Token"] = [self.token]
        if content_type:
            headers["Content-Type"] = [content_type]
        return headers

    def _url(self, path: str) -> str:
        return f"{self.base_url}/v2/{path}"

    async def _json(self, response, what: str, image_id: str):
        body = await response.content()
        if response.code == 404:
            raise exception.ImageNotFound(image_id=image_id)
        if response.code >= 300:
            raise exception.ImageUploadFailed(
                image_id=image_id, reason=f"{what} answered "
                f"{response.code}: {body[:200].decode('utf-8', 'replace')}")
        return json.loads(body) if body else None

    async def get(self, image_id: str) -> dict[str, Any]:
        response = await self.http.get(
            self._url(f"images/{image_id}"), headers=self._headers(),
            timeout=self.timeout, reactor=self.reactor)
        return await self._json(response, "GET", image_id)

    async def list(self, **filters: str) -> list[dict[str, Any]]:
        query = urlencode(sorted(filters.items()))
        response = await self.http.get(
            self._url(f"images?{query}"), headers=self._headers(),
            timeout=self.timeout, reactor=self.reactor)
        body = await self._json(response, "GET images", "")
        return list(body.get("images", []))

    async def set_formats(self, image_id: str, disk_format: str,
                          container_format: str = "bare") -> None:
        patch = [{"op": "add", "path": "/disk_format",
                  "value": disk_format},
                 {"op": "add", "path": "/container_format",
                  "value": container_format}]
        response = await self.http.patch(
            self._url(f"images/{image_id}"),
            data=json.dumps(patch).encode(),
            headers=self._headers(
                "application/openstack-images-v2.1-json-patch"),
            timeout=self.timeout, reactor=self.reactor)
        await self._json(response, "PATCH", image_id)

    async def upload(self, image_id: str, source: bytes | str,
                     disk_format: str, container_format: str = "bare"
                     ) -> dict[str, Any]:
        """Stream ``source`` (bytes, or the path of a file) into the
        queued image ``image_id`` and check the image API stored what we
        sent; fires with the image as the image API shows it."""
        await self.set_formats(image_id, disk_format, container_format)
        hashes = _Hashes()
        if isinstance(source, (bytes, bytearray)):
            producer: Any = _BytesProducer(bytes(source), hashes)
        else:
            producer = _FileProducer(self.reactor, self.pool, source, hashes)
        response = await self.http.put(
            self._url(f"images/{image_id}/file"), data=producer,
            headers=self._headers("application/octet-stream"),
            reactor=self.reactor)
        await self._json(response, "PUT file", image_id)
        image = await self.get(image_id)
        ours = (hashes.md5.hexdigest(), hashes.sha512.hexdigest(),
                hashes.size)
        theirs = (image.get("checksum"), image.get("os_hash_value"),
                  image.get("size"))
        if image.get("status") != "active" or ours != theirs:
            raise exception.ImageUploadFailed(
                image_id=image_id, reason=(
                    f"the image API stored {theirs[2]} bytes, checksum "
                    f"{theirs[0]}, status {image.get('status')}; we sent "
                    f"{ours[2]} bytes, checksum {ours[0]}"))
        log.info("image {image_id}: {size} bytes uploaded, checksum "
                 "{checksum} verified", image_id=image_id, size=ours[2],
                 checksum=ours[0])
        return image

    async def delete(self, image_id: str) -> bool:
        """Delete an image; False when it was gone already."""
        response = await self.http.delete(
            self._url(f"images/{image_id}"), headers=self._headers(),
            timeout=self.timeout, reactor=self.reactor)
        await response.content()
        if response.code == 404:
            return False
        if response.code >= 300:
            raise exception.ImageUploadFailed(
                image_id=image_id,
                reason=f"DELETE answered {response.code}")
        return True
