"""The agent's image cache: images downloaded once per host from the image
API, and root disks made from them as qcow2 overlays.

* ``<images_path>/_base/<image id>`` holds an image's data, exactly as
  the image API stores it.  It appears there only once its checksum
  (md5 ``checksum`` and/or ``os_hash_value`` with ``os_hash_algo``) and
  size match what the image API says: the data streams into a temporary
  file beside it, which is renamed when it is verified and removed when
  it is not (:class:`~twisted_compute.exception.ImageChecksumMismatch`).
  The body is written and hashed in the thread pool, never on the
  reactor thread, and the HTTP transfer pauses while the writer is
  behind (:class:`_BodyWriter`), so a multi-GB image neither blocks the
  reactor nor piles up in memory.  A GET has a response timeout, and a
  download a total deadline.
* Concurrent requests for the same image share one download.
* :func:`create_overlay` runs ``qemu-img create -f qcow2 -F <fmt> -b
  <base> <disk> <size>`` as a child process (never on the reactor),
  killed when it runs past its timeout.
* :meth:`ImageCache.age` removes base files no instance uses and that
  have not been used for ``remove_unused_original_minimum_age_seconds``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid as uuidlib
from typing import Any, Callable, Iterable

from twisted.internet import defer, protocol
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from twisted.web.client import ResponseDone

from twisted_compute import exception
from twisted_compute.log import Logger
from twisted_compute.virt import process

log = Logger()

GiB = 1024 ** 3

#: disk_format of an image -> the qemu-img format of its data.
QEMU_FORMATS = {"qcow2": "qcow2", "raw": "raw", "ami": "raw", "aki": "raw",
                "ari": "raw", "iso": "raw", "vmdk": "vmdk", "vdi": "vdi",
                "vhd": "vpc", "vhdx": "vhdx"}

HASH_ALGORITHMS = ("md5", "sha1", "sha224", "sha256", "sha384", "sha512")


def qemu_format(disk_format: str | None) -> str:
    return QEMU_FORMATS.get((disk_format or "raw").lower(), "raw")


class _Verifier:
    """Hashes and counts a stream of bytes against an image's record."""

    def __init__(self, image: dict[str, Any]):
        self.image_id = image.get("id")
        self.expected_size = image.get("size")
        self.expected: list[tuple[str, str, Any]] = []
        if image.get("checksum"):
            self.expected.append(("md5", image["checksum"].lower(),
                                  hashlib.md5(usedforsecurity=False)))
        algorithm = (image.get("os_hash_algo") or "sha512").lower()
        if image.get("os_hash_value") and algorithm in HASH_ALGORITHMS:
            self.expected.append((algorithm, image["os_hash_value"].lower(),
                                  hashlib.new(algorithm)))
        self.size = 0

    def update(self, data: bytes) -> None:
        self.size += len(data)
        for _name, _expected, hasher in self.expected:
            hasher.update(data)

    def check(self) -> None:
        if self.expected_size is not None and \
                self.size != int(self.expected_size):
            raise exception.ImageChecksumMismatch(
                image_id=self.image_id, algorithm="size",
                actual=self.size, expected=self.expected_size)
        for name, expected, hasher in self.expected:
            actual = hasher.hexdigest()
            if actual != expected:
                raise exception.ImageChecksumMismatch(
                    image_id=self.image_id, algorithm=name, actual=actual,
                    expected=expected)


class _BodyWriter(protocol.Protocol):
    """Receives an image body from treq on the reactor thread and hands it
    to the thread pool, which writes it to ``handle`` and hashes it with
    ``verifier``, one batch at a time and in order.

    The hand-off is bounded: while more than ``high_water`` bytes wait
    for the writer, the HTTP transport is paused (so the socket is not
    read and TCP pushes back on the image API); it resumes once the
    writer caught up.  :attr:`done` fires once the body ended and every
    byte was written, or fails (``ResponseDone`` is success; anything
    else is the failure of the transfer or of a write)."""

    def __init__(self, reactor, pool, handle, verifier: "_Verifier",
                 high_water: int):
        self.reactor = reactor
        self.pool = pool
        self.handle = handle
        self.verifier = verifier
        self.high_water = high_water
        self.pending: list[bytes] = []
        self.pending_bytes = 0
        #: Most bytes that ever waited for the writer (tests).
        self.most_pending = 0
        self.writing = False
        self.paused = False
        self.ended: Failure | None = None
        self.error: Failure | None = None
        self.done: defer.Deferred = defer.Deferred()

    def dataReceived(self, data: bytes) -> None:
        if self.error is not None:
            return
        self.pending.append(data)
        self.pending_bytes += len(data)
        self.most_pending = max(self.most_pending, self.pending_bytes)
        if self.pending_bytes > self.high_water and not self.paused:
            self.paused = True
            self.transport.pauseProducing()
        self._next()

    def connectionLost(self, reason=protocol.connectionDone) -> None:
        self.ended = reason
        self._next()

    def abort(self, failure: Failure) -> None:
        """Stop the transfer (a deadline passed): :attr:`done` fails with
        ``failure`` once a write under way finished."""
        if self.error is None:
            self.error = failure
        self.pending, self.pending_bytes = [], 0
        if self.ended is None and self.transport is not None:
            self.transport.stopProducing()
        self._next()

    def _next(self) -> None:
        if self.writing or self.done.called:
            return
        if self.error is not None:
            self.done.errback(self.error)
            return
        if self.pending:
            batch, self.pending = self.pending, []
            size, self.pending_bytes = self.pending_bytes, 0
            self.writing = True
            d = deferToThreadPool(self.reactor, self.pool, self._write,
                                  batch)
            d.addCallbacks(self._written, self._write_failed,
                           callbackArgs=(size,))
            return
        if self.ended is not None:
            if self.ended.check(ResponseDone):
                self.done.callback(None)
            else:
                self.done.errback(self.ended)

    def _write(self, batch: list[bytes]) -> None:
        # In the thread pool: nothing of the data touches the reactor
        # thread but the hand-off itself.
        for data in batch:
            self.verifier.update(data)
            self.handle.write(data)

    def _written(self, _, size: int) -> None:
        self.writing = False
        if self.paused and self.ended is None and self.error is None:
            self.paused = False
            self.transport.resumeProducing()
        self._next()

    def _write_failed(self, failure: Failure) -> None:
        self.writing = False
        self.abort(failure)


def make_http_client(reactor, persistent: bool = True):
    """A treq client on ``reactor`` with its own connection pool."""
    from treq.client import HTTPClient
    from twisted.web.client import Agent, HTTPConnectionPool
    pool = HTTPConnectionPool(reactor, persistent=persistent)
    return HTTPClient(Agent(reactor, pool=pool))


class ImageCache:
    """Images of one host, in ``base_dir``.

    ``image_api`` is the image API's base URL (``.../v2`` is appended),
    ``token`` the ``X-Auth-Token`` sent with downloads, ``http`` a treq
    compatible client (``treq`` itself, or ``StubTreq`` in tests) and
    ``pool`` the thread pool for file system work (and for writing and
    hashing downloads).  A GET waits ``response_timeout`` seconds at most
    for the image API's answer; a whole download (answer and body) may
    take ``deadline`` seconds.
    """

    CHUNK = 1 << 16
    #: Bytes of a download that may wait for the writer thread before
    #: the HTTP transfer is paused.
    HIGH_WATER = 4 << 20

    def __init__(self, base_dir: str, image_api: str, token: str | None,
                 reactor, pool, http=None,
                 clock: Callable[[], float] = time.time,
                 response_timeout: float = 60.0, deadline: float = 3600.0):
        self.base_dir = base_dir
        self.response_timeout = response_timeout
        self.deadline = deadline
        self.image_api = image_api.rstrip("/")
        self.token = token
        self.reactor = reactor
        self.pool = pool
        self.http = http if http is not None else make_http_client(reactor)
        self.clock = clock
        self._downloads: dict[str, list[defer.Deferred]] = {}
        #: Number of downloads started (shared ones count once).
        self.downloads_started = 0

    def _thread(self, func, *args):
        return deferToThreadPool(self.reactor, self.pool, func, *args)

    def _headers(self) -> dict[str, list[str]]:
        headers = {"Accept": ["application/octet-stream"]}
        if self.token:
            headers["X-Auth-Token"] = [self.token]
        return headers

    def path(self, image_id: str) -> str:
        return os.path.join(self.base_dir, image_id)

    # --- metadata ------------------------------------------------------

    async def get_image(self, image_id: str) -> dict[str, Any]:
        """An image's record from the image API (for kernel and ramdisk
        images, of which the agent only knows the id)."""
        url = f"{self.image_api}/v2/images/{image_id}"
        try:
            response = await self.http.get(
                url, headers=self._headers(), timeout=self.response_timeout,
                reactor=self.reactor)
        except Exception as exc:
            raise exception.ImageDownloadFailed(
                image_id=image_id, reason=f"GET {url}: {_describe(exc, self.response_timeout)}"
            ) from None
        body = await response.content()
        if response.code == 404:
            raise exception.ImageNotFound(image_id=image_id)
        if response.code != 200:
            raise exception.ImageDownloadFailed(
                image_id=image_id,
                reason=f"GET {url} answered {response.code}")
        return json.loads(body)

    # --- fetch ---------------------------------------------------------

    def fetch(self, image: dict[str, Any]) -> defer.Deferred:
        """Fires with the cached file of ``image`` (a dict with at least
        ``id``; ``checksum``, ``os_hash_algo``, ``os_hash_value`` and
        ``size`` are verified when present), downloading it first if
        needed.  Requests for an image being downloaded wait for that
        download."""
        image_id = image["id"]
        # Each caller gets its own Deferred: a caller cancelling its build
        # does not cancel the download others wait for.
        mine: defer.Deferred = defer.Deferred()
        waiters = self._downloads.get(image_id)
        if waiters is not None:
            waiters.append(mine)
            return mine
        waiters = self._downloads[image_id] = [mine]

        def done(result):
            del self._downloads[image_id]
            for waiter in waiters:
                if waiter.called:  # its caller cancelled it
                    continue
                if isinstance(result, Failure):
                    waiter.errback(result)
                else:
                    waiter.callback(result)

        defer.ensureDeferred(self._fetch(image)).addBoth(done)
        return mine

    async def _fetch(self, image: dict[str, Any]) -> str:
        image_id = image["id"]
        final = self.path(image_id)
        exists = await self._thread(self._touch_if_exists, final)
        if exists:
            return final
        self.downloads_started += 1
        await self._thread(os.makedirs, self.base_dir, 0o755, True)
        temp = os.path.join(self.base_dir,
                            f".{image_id}.{uuidlib.uuid4().hex}.part")
        url = f"{self.image_api}/v2/images/{image_id}/file"
        log.info("downloading image {image_id} from {url}",
                 image_id=image_id, url=url)
        verifier = _Verifier(image)
        handle = await self._thread(open, temp, "wb")
        try:
            await self._download(image_id, url, handle, verifier)
            await self._thread(handle.close)
            verifier.check()
            await self._thread(os.replace, temp, final)
        except BaseException:
            await self._thread(_close_and_remove, handle, temp)
            raise
        log.info("image {image_id} cached ({size} bytes)",
                 image_id=image_id, size=verifier.size)
        return final

    async def _download(self, image_id: str, url: str, handle,
                        verifier: _Verifier) -> None:
        """GET ``url`` into ``handle`` through a :class:`_BodyWriter`,
        within ``self.deadline`` seconds."""
        writer: _BodyWriter | None = None
        expired = False

        def expire():
            nonlocal expired
            expired = True
            if writer is not None:
                writer.abort(Failure(exception.ImageDownloadFailed(
                    image_id=image_id, reason=(
                        f"not complete after {self.deadline} s "
                        f"({verifier.size} bytes written)"))))
            elif not getting.called:
                getting.cancel()

        getting = self.http.get(url, headers=self._headers(),
                                unbuffered=True,
                                timeout=self.response_timeout,
                                reactor=self.reactor)
        timer = self.reactor.callLater(self.deadline, expire)
        try:
            try:
                response = await getting
            except Exception as exc:
                reason = (f"no answer within {self.deadline} s" if expired
                          else _describe(exc, self.response_timeout))
                raise exception.ImageDownloadFailed(
                    image_id=image_id, reason=f"GET {url}: {reason}"
                ) from None
            if response.code != 200:
                await response.content()
                if response.code == 404:
                    raise exception.ImageNotFound(image_id=image_id)
                raise exception.ImageDownloadFailed(
                    image_id=image_id,
                    reason=f"GET {url} answered {response.code}")
            writer = _BodyWriter(self.reactor, self.pool, handle, verifier,
                                 self.HIGH_WATER)
            response.deliverBody(writer)
            try:
                await writer.done
            except exception.ComputeException:
                raise
            except Exception as exc:
                raise exception.ImageDownloadFailed(
                    image_id=image_id,
                    reason=f"download interrupted: {exc}") from None
        finally:
            if timer.active():
                timer.cancel()

    @staticmethod
    def _touch_if_exists(path: str) -> bool:
        try:
            os.utime(path)
        except FileNotFoundError:
            return False
        return True

    # --- ageing --------------------------------------------------------

    def age(self, in_use: Iterable[str], min_age: float) -> defer.Deferred:
        """Remove base files not in ``in_use`` (image ids) unused for
        ``min_age`` seconds; fires with the ids removed.  Files in use
        are touched, so their age counts from the last time they were
        seen in use."""
        return self._thread(self._age, set(in_use), min_age,
                            set(self._downloads))

    def _age(self, in_use: set[str], min_age: float,
             downloading: set[str]) -> list[str]:
        removed = []
        try:
            names = os.listdir(self.base_dir)
        except FileNotFoundError:
            return removed
        now = self.clock()
        for name in sorted(names):
            path = os.path.join(self.base_dir, name)
            if name.startswith("."):
                # A partial download left by a crash (not one under way).
                image_id = name[1:].split(".")[0]
                if image_id not in downloading and \
                        now - _mtime(path, now) > 3600:
                    _remove_quietly(path)
                continue
            if name in in_use:
                try:
                    os.utime(path)
                except OSError:
                    pass
                continue
            if now - _mtime(path, now) >= min_age:
                log.info("removing unused cached image {image_id}",
                         image_id=name)
                _remove_quietly(path)
                removed.append(name)
        return removed


def _describe(exc: BaseException, timeout: float) -> str:
    """What went wrong with a GET; treq's timeout cancels the request,
    which the agent reports as a cancelled (never received) response."""
    reasons = getattr(exc, "reasons", None) or ()
    if isinstance(exc, defer.CancelledError) or any(
            isinstance(r, Failure) and r.check(defer.CancelledError)
            for r in reasons):
        return f"timed out after {timeout} s without an answer"
    return str(exc)


def _close_and_remove(handle, path: str) -> None:
    handle.close()
    _remove_quietly(path)


def _mtime(path: str, default: float) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return default


def _remove_quietly(path: str) -> None:
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)
    except FileNotFoundError:
        pass


# --- qemu-img ----------------------------------------------------------------

def qemu_img_binary() -> str:
    path = shutil.which("qemu-img")
    if path is None:
        raise exception.VirtDriverNotAvailable(
            driver="libvirt", reason="qemu-img is not installed (Debian "
            "package qemu-utils)")
    return path


#: Seconds a ``qemu-img`` run may take before it is killed, unless the
#: caller says otherwise (``[libvirt] qemu_img_timeout`` in the driver).
QEMU_IMG_TIMEOUT = 600.0


async def run_qemu_img(reactor, *args: str,
                       timeout: float = QEMU_IMG_TIMEOUT) -> bytes:
    """Run ``qemu-img args`` as a child process; its stdout, or
    :class:`InstanceSpawnFailure`-worthy ``RuntimeError`` with stderr.
    A run longer than ``timeout`` seconds is killed and fails with
    :class:`~twisted_compute.exception.ProcessTimedOut`."""
    binary = qemu_img_binary()
    out, err, code = await process.run(
        reactor, binary, args, timeout=timeout,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"})
    if code != 0:
        raise RuntimeError(
            f"qemu-img {' '.join(args)} exited with {code}: "
            f"{err.decode('utf-8', 'replace').strip()}")
    return out


async def image_info(reactor, path: str, fmt: str | None = None, *,
                     timeout: float = QEMU_IMG_TIMEOUT) -> dict[str, Any]:
    """``qemu-img info --output=json`` of ``path``."""
    args = ["info", "--output=json"]
    if fmt:
        args += ["-f", fmt]
    return json.loads(await run_qemu_img(reactor, *args, path,
                                         timeout=timeout))


async def create_overlay(reactor, base: str, base_format: str, disk: str,
                         size_gb: int | None, *,
                         timeout: float = QEMU_IMG_TIMEOUT) -> None:
    """Make ``disk`` a qcow2 overlay of ``base`` (format ``base_format``)
    of ``size_gb`` GiB (the base's virtual size when None or 0).  A size
    smaller than the image is refused: the guest's file system would be
    cut."""
    info = await image_info(reactor, base, base_format, timeout=timeout)
    virtual_size = int(info.get("virtual-size", 0))
    args = ["create", "-f", "qcow2", "-F", base_format, "-b", base, disk]
    if size_gb:
        wanted = int(size_gb) * GiB
        if wanted < virtual_size:
            raise exception.FlavorDiskSmallerThanImage(
                flavor_size=wanted, image_size=virtual_size)
        args.append(str(wanted))
    await run_qemu_img(reactor, *args, timeout=timeout)


__all__ = ["ImageCache", "QEMU_FORMATS", "create_overlay", "image_info",
           "qemu_format", "run_qemu_img"]
