"""The libvirt driver pre-caches images (``POST /os-aggregates/{id}/
images``) through its image cache, from a real image API on loopback."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid

from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.trial.unittest import TestCase
from twisted.web.server import Site

from tests.virt.libvirt.base import libvirt_conf, require_libvirt
from tests.virt.libvirt.test_imagecache import ImageAPI
from twisted_compute.virt.libvirt import imagecache


class CacheImageTests(TestCase):
    async def setUp(self):
        require_libvirt()
        from twisted_compute.virt.libvirt.driver import LibvirtDriver
        self.api = ImageAPI()
        port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1") \
            .listen(Site(self.api))
        self.addCleanup(port.stopListening)
        self.state_path = tempfile.mkdtemp(prefix="tc-precache-")
        self.addCleanup(shutil.rmtree, self.state_path, True)
        conf = libvirt_conf(self.state_path).with_overrides(
            glance={"api_servers":
                    f"http://127.0.0.1:{port.getHost().port}"})
        self.driver = LibvirtDriver(
            conf, reactor, host="cachehost",
            http=imagecache.make_http_client(reactor, persistent=False))
        self.addCleanup(self.driver.cleanup)

    async def test_cached_existing_error(self):
        image = self.api.add(b"image bits" * 1000, disk_format="raw")
        self.assertEqual(await self.driver.cache_image(None, image["id"]),
                         "cached")
        path = self.driver.image_cache.path(image["id"])
        with open(path, "rb") as handle:
            self.assertEqual(handle.read(), b"image bits" * 1000)
        self.assertEqual(await self.driver.cache_image(None, image["id"]),
                         "existing")
        self.assertEqual(await self.driver.cache_image(
            None, str(uuid.uuid4())), "error")
        self.assertFalse(os.path.exists(self.driver.image_cache.path(
            "nothing")))
