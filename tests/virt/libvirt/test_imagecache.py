"""The image cache: downloads from the image API (a twisted.web resource
through StubTreq), checksum verification, shared concurrent downloads,
ageing; qcow2 overlays made by the real qemu-img."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import uuid as uuidlib

from treq.testing import StubTreq
from twisted.internet import defer
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web import resource, server
from twisted.web.client import ResponseDone

from tests.base import SyncReactor, SyncThreadPool
from tests.virt.libvirt.base import require_qemu_img
from twisted_compute import exception
from twisted_compute.virt.libvirt import imagecache

API = "http://image.test"


def image_record(data: bytes, **kw) -> dict:
    record = {"id": str(uuidlib.uuid4()), "size": len(data),
              "disk_format": "raw",
              "checksum": hashlib.md5(data).hexdigest(),
              "os_hash_algo": "sha512",
              "os_hash_value": hashlib.sha512(data).hexdigest()}
    record.update(kw)
    return record


class ImageAPI(resource.Resource):
    """``/v2/images/<id>`` and ``/v2/images/<id>/file``; with ``hold``
    set, file downloads wait until :meth:`release`."""

    isLeaf = True

    def __init__(self):
        super().__init__()
        self.images: dict[str, tuple[dict, bytes]] = {}
        self.file_requests = 0
        self.tokens: list[bytes | None] = []
        self.hold = False
        self.held: list = []
        #: When set, file downloads send this much and then nothing more.
        self.trickle: bytes | None = None

    def add(self, data: bytes, served: bytes | None = None, **kw) -> dict:
        record = image_record(data, **kw)
        self.images[record["id"]] = (record, data if served is None
                                     else served)
        return record

    def render_GET(self, request):
        parts = [p.decode() for p in request.postpath if p]
        self.tokens.append(request.getHeader(b"x-auth-token"))
        if len(parts) < 3 or parts[:2] != ["v2", "images"] or \
                parts[2] not in self.images:
            request.setResponseCode(404)
            return b"not found"
        record, data = self.images[parts[2]]
        if len(parts) == 3:
            request.setHeader(b"content-type", b"application/json")
            return json.dumps(record).encode()
        self.file_requests += 1
        if self.trickle is not None:
            request.write(self.trickle)
            return server.NOT_DONE_YET
        if self.hold:
            self.held.append((request, data))
            return server.NOT_DONE_YET
        return data

    def release(self):
        for request, data in self.held:
            request.write(data)
            request.finish()
        self.held = []


class ImageCacheTests(SynchronousTestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tc-imagecache-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.api = ImageAPI()
        self.http = StubTreq(self.api)
        self.now = 1_000_000.0
        self.cache = imagecache.ImageCache(
            self.dir, API, "admin:admin", SyncReactor(), SyncThreadPool(),
            http=self.http, clock=lambda: self.now)

    def fetch(self, record):
        d = self.cache.fetch(record)
        self.http.flush()
        return d

    def test_download_with_good_checksums(self):
        data = os.urandom(200_000)
        record = self.api.add(data)
        path = self.successResultOf(self.fetch(record))
        self.assertEqual(path, os.path.join(self.dir, record["id"]))
        with open(path, "rb") as handle:
            self.assertEqual(handle.read(), data)
        self.assertEqual(self.api.tokens, [b"admin:admin"])
        # Cached: no second download.
        self.successResultOf(self.fetch(record))
        self.assertEqual(self.api.file_requests, 1)
        self.assertEqual(os.listdir(self.dir), [record["id"]])

    def test_corrupt_download_is_refused(self):
        data = b"the real image" * 100
        corrupt = bytearray(data)
        corrupt[10] ^= 0xFF
        record = self.api.add(data, served=bytes(corrupt))
        failure = self.failureResultOf(self.fetch(record),
                                       exception.ImageChecksumMismatch)
        self.assertIn(record["id"], failure.getErrorMessage())
        self.assertIsInstance(failure.value, exception.ImageDownloadFailed)
        # Nothing left behind, not even the partial file.
        self.assertEqual(os.listdir(self.dir), [])

    def test_sha512_alone_is_checked(self):
        data = b"x" * 1000
        record = self.api.add(data, served=b"y" * 1000, checksum=None)
        failure = self.failureResultOf(self.fetch(record),
                                       exception.ImageChecksumMismatch)
        self.assertIn("sha512", failure.getErrorMessage())

    def test_truncated_download_is_refused(self):
        data = b"z" * 5000
        record = self.api.add(data, served=data[:4000], checksum=None,
                              os_hash_value=None)
        failure = self.failureResultOf(self.fetch(record),
                                       exception.ImageChecksumMismatch)
        self.assertIn("size", failure.getErrorMessage())
        self.assertEqual(os.listdir(self.dir), [])

    def test_missing_image(self):
        record = image_record(b"never uploaded")
        self.failureResultOf(self.fetch(record), exception.ImageNotFound)

    def test_concurrent_downloads_share_one(self):
        data = os.urandom(50_000)
        record = self.api.add(data)
        self.api.hold = True
        first = self.fetch(record)
        second = self.fetch(record)
        self.assertNoResult(first)
        self.assertNoResult(second)
        self.assertEqual(self.api.file_requests, 1)
        self.api.release()
        self.http.flush()
        self.assertEqual(self.successResultOf(first),
                         self.successResultOf(second))
        self.assertEqual(self.api.file_requests, 1)
        self.assertEqual(self.cache.downloads_started, 1)

    def test_concurrent_waiters_all_see_a_failure(self):
        record = self.api.add(b"good", served=b"bad!")
        self.api.hold = True
        first, second = self.fetch(record), self.fetch(record)
        self.api.release()
        self.http.flush()
        self.failureResultOf(first, exception.ImageChecksumMismatch)
        self.failureResultOf(second, exception.ImageChecksumMismatch)
        # The next attempt downloads again.
        self.api.hold = False
        self.failureResultOf(self.fetch(record),
                             exception.ImageChecksumMismatch)
        self.assertEqual(self.api.file_requests, 2)

    def test_cancelled_waiter_does_not_stop_the_download(self):
        record = self.api.add(b"shared data")
        self.api.hold = True
        first, second = self.fetch(record), self.fetch(record)
        first.cancel()
        self.failureResultOf(first, defer.CancelledError)
        self.api.release()
        self.http.flush()
        self.assertTrue(os.path.exists(self.successResultOf(second)))

    def test_image_record_from_the_api(self):
        record = self.api.add(b"kernel")
        d = self.cache.get_image(record["id"])
        self.http.flush()
        self.assertEqual(self.successResultOf(d)["checksum"],
                         record["checksum"])

    def test_age_removes_only_old_unused_images(self):
        used = self.api.add(b"in use")
        old = self.api.add(b"old and unused")
        young = self.api.add(b"recently unused")
        for record in (used, old, young):
            self.successResultOf(self.fetch(record))
        os.utime(os.path.join(self.dir, used["id"]), (0, 0))
        os.utime(os.path.join(self.dir, old["id"]),
                 (self.now - 7200, self.now - 7200))
        os.utime(os.path.join(self.dir, young["id"]),
                 (self.now - 60, self.now - 60))
        removed = self.successResultOf(self.cache.age([used["id"]], 3600))
        self.assertEqual(removed, [old["id"]])
        self.assertEqual(sorted(os.listdir(self.dir)),
                         sorted([used["id"], young["id"]]))
        # Seen in use: its age starts again.
        self.assertGreater(os.stat(os.path.join(self.dir, used["id"]))
                           .st_mtime, 0)


class QemuImgTests(TestCase):
    """The real qemu-img, through spawnProcess."""

    def setUp(self):
        require_qemu_img()
        from twisted.internet import reactor
        self.reactor = reactor
        self.dir = tempfile.mkdtemp(prefix="tc-qemu-img-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.base = os.path.join(self.dir, "base")
        with open(self.base, "wb") as handle:
            handle.truncate(64 * 1024 * 1024)

    async def test_overlay_of_the_flavor_size(self):
        disk = os.path.join(self.dir, "disk")
        await imagecache.create_overlay(self.reactor, self.base, "raw",
                                        disk, 1)
        info = await imagecache.image_info(self.reactor, disk, "qcow2")
        self.assertEqual(info["format"], "qcow2")
        self.assertEqual(info["virtual-size"], 1024 ** 3)
        self.assertEqual(info["backing-filename"], self.base)
        self.assertEqual(info.get("backing-filename-format"), "raw")

    async def test_overlay_of_the_image_size_without_flavor_disk(self):
        disk = os.path.join(self.dir, "disk")
        await imagecache.create_overlay(self.reactor, self.base, "raw",
                                        disk, None)
        info = await imagecache.image_info(self.reactor, disk)
        self.assertEqual(info["virtual-size"], 64 * 1024 * 1024)

    async def test_flavor_disk_smaller_than_image_is_refused(self):
        big = os.path.join(self.dir, "big")
        await imagecache.run_qemu_img(self.reactor, "create", "-f", "qcow2",
                                      big, "3G")
        with self.assertRaises(exception.FlavorDiskSmallerThanImage):
            await imagecache.create_overlay(
                self.reactor, big, "qcow2", os.path.join(self.dir, "d"), 1)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "d")))

    async def test_qemu_img_errors_carry_its_message(self):
        with self.assertRaises(RuntimeError) as caught:
            await imagecache.image_info(self.reactor,
                                        os.path.join(self.dir, "missing"))
        self.assertIn("missing", str(caught.exception))


class ManualThreadPool:
    """A thread pool whose work runs only when the test says so."""

    max = 1

    def __init__(self):
        self.jobs = []

    def callInThreadWithCallback(self, on_result, func, *args, **kwargs):
        self.jobs.append((on_result, func, args, kwargs))

    def run_all(self):
        while self.jobs:
            on_result, func, args, kwargs = self.jobs.pop(0)
            try:
                result = func(*args, **kwargs)
            except BaseException:
                from twisted.python.failure import Failure
                on_result(False, Failure())
            else:
                on_result(True, result)


class FakeProducer:
    def __init__(self):
        self.calls = []

    def pauseProducing(self):
        self.calls.append("pause")

    def resumeProducing(self):
        self.calls.append("resume")

    def stopProducing(self):
        self.calls.append("stop")


class BodyWriterTests(SynchronousTestCase):
    """The bounded hand-off between the body delivery (reactor thread) and
    the writer (thread pool)."""

    def setUp(self):
        self.pool = ManualThreadPool()
        self.path = tempfile.mktemp(prefix="tc-body-")
        self.handle = open(self.path, "wb")
        self.addCleanup(lambda: os.path.exists(self.path)
                        and os.remove(self.path))
        self.addCleanup(self.handle.close)
        self.data = os.urandom(100_000)
        self.verifier = imagecache._Verifier(image_record(self.data))
        self.producer = FakeProducer()
        self.writer = imagecache._BodyWriter(
            SyncReactor(), self.pool, self.handle, self.verifier,
            high_water=10_000)
        self.writer.makeConnection(self.producer)

    def deliver(self, chunk=4_000):
        for start in range(0, len(self.data), chunk):
            self.writer.dataReceived(self.data[start:start + chunk])

    def test_nothing_is_written_or_hashed_on_the_reactor_thread(self):
        self.deliver()
        self.writer.connectionLost(Failure(ResponseDone()))
        # Everything received, nothing written or hashed yet: that is the
        # pool's work.
        self.assertEqual(self.verifier.size, 0)
        self.handle.flush()
        self.assertEqual(os.path.getsize(self.path), 0)
        self.assertNoResult(self.writer.done)
        self.pool.run_all()
        self.successResultOf(self.writer.done)
        self.handle.close()
        with open(self.path, "rb") as handle:
            self.assertEqual(handle.read(), self.data)
        self.verifier.check()

    def test_the_transfer_pauses_while_the_writer_is_behind(self):
        self.writer.dataReceived(self.data[:4_000])  # handed to the pool
        self.assertEqual(len(self.pool.jobs), 1)
        self.writer.dataReceived(self.data[4_000:8_000])
        self.assertEqual(self.producer.calls, [])
        self.writer.dataReceived(self.data[8_000:12_000])
        self.writer.dataReceived(self.data[12_000:16_000])  # 12 000 waiting
        self.assertEqual(self.producer.calls, ["pause"])
        self.assertEqual(len(self.pool.jobs), 1)  # one batch at a time
        job = self.pool.jobs.pop(0)
        job[0](True, job[1](*job[2]))  # the first batch written
        self.assertEqual(self.producer.calls, ["pause", "resume"])
        self.assertEqual(len(self.pool.jobs), 1)  # the waiting ones, next
        self.assertLessEqual(self.writer.most_pending, 10_000 + 4_000)
        self.writer.dataReceived(self.data[16_000:])
        self.writer.connectionLost(Failure(ResponseDone()))
        self.pool.run_all()
        self.successResultOf(self.writer.done)
        self.handle.close()
        with open(self.path, "rb") as handle:
            self.assertEqual(handle.read(), self.data)

    def test_a_failed_transfer_fails_after_the_writes(self):
        self.deliver()
        self.writer.connectionLost(Failure(ValueError("connection lost")))
        self.assertNoResult(self.writer.done)
        self.pool.run_all()
        self.failureResultOf(self.writer.done, ValueError)

    def test_abort_stops_the_transfer(self):
        self.writer.dataReceived(self.data[:4_000])
        self.writer.abort(Failure(exception.ImageDownloadFailed(
            image_id="x", reason="deadline")))
        self.assertEqual(self.producer.calls, ["stop"])
        self.assertNoResult(self.writer.done)  # a write is under way
        self.pool.run_all()
        self.failureResultOf(self.writer.done, exception.ImageDownloadFailed)


class DownloadTimeoutTests(SynchronousTestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tc-imagecache-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.api = ImageAPI()
        self.http = StubTreq(self.api)
        self.reactor = SyncReactor()
        self.cache = imagecache.ImageCache(
            self.dir, API, "admin:admin", self.reactor, SyncThreadPool(),
            http=self.http, response_timeout=30, deadline=600)

    def test_an_image_api_that_does_not_answer_times_out(self):
        record = self.api.add(b"data")
        self.api.hold = True
        d = self.cache.fetch(record)
        self.http.flush()
        self.reactor.advance(29)
        self.assertNoResult(d)
        self.reactor.advance(1)
        failure = self.failureResultOf(d, exception.ImageDownloadFailed)
        self.assertIn("timed out", failure.getErrorMessage())
        self.assertEqual(os.listdir(self.dir), [])

    def test_a_download_past_its_deadline_is_abandoned(self):
        data = b"x" * 10_000
        record = self.api.add(data)
        self.api.trickle = data[:1_000]  # headers and a little, then silence
        d = self.cache.fetch(record)
        self.http.flush()
        self.reactor.advance(599)
        self.assertNoResult(d)
        self.reactor.advance(1)
        self.http.flush()
        failure = self.failureResultOf(d, exception.ImageDownloadFailed)
        self.assertIn("not complete after 600", failure.getErrorMessage())
        self.assertEqual(os.listdir(self.dir), [])
        # The next attempt downloads again.
        self.api.trickle = None
        self.http.flush()
        self.assertTrue(os.path.exists(self.successResultOf(self.fetch(
            record))))

    def fetch(self, record):
        d = self.cache.fetch(record)
        self.http.flush()
        return d
