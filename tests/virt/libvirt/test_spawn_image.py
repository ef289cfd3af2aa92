"""Spawn with real images, on the real reactor: the image API is a
twisted.web server on loopback, libvirt calls run in the driver's own
thread pool, qemu-img makes the overlay, the domain is defined on
test:///default."""

from __future__ import annotations

import os
import shutil
import tempfile
import xml.etree.ElementTree as ET

from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.trial.unittest import TestCase
from twisted.web.server import Site

from tests.virt.libvirt.base import libvirt_conf, make_instance, \
    require_libvirt, require_qemu_img
from tests.virt.libvirt.test_imagecache import ImageAPI
from twisted_compute import exception
from twisted_compute.virt.libvirt import imagecache


class SpawnWithImageTests(TestCase):

    async def setUp(self):
        require_libvirt()
        require_qemu_img()
        import libvirt
        from twisted_compute.virt.libvirt.driver import LibvirtDriver
        self.api = ImageAPI()
        port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1") \
            .listen(Site(self.api))
        self.addCleanup(port.stopListening)
        self.state_path = tempfile.mkdtemp(prefix="tc-spawn-")
        self.addCleanup(shutil.rmtree, self.state_path, True)
        conf = libvirt_conf(self.state_path).with_overrides(
            glance={"api_servers":
                    f"http://127.0.0.1:{port.getHost().port}"},
            DEFAULT={"remove_unused_original_minimum_age_seconds": 0})
        self.driver = LibvirtDriver(
            conf, reactor, host="imghost",
            http=imagecache.make_http_client(reactor, persistent=False))
        self.addCleanup(self.driver.cleanup)
        self.conn = libvirt.open("test:///default")
        self.addCleanup(self.conn.close)
        # A real qcow2 image (qemu-img reads the base's virtual size).
        source = os.path.join(self.state_path, "source.qcow2")
        await imagecache.run_qemu_img(reactor, "create", "-f", "qcow2",
                                      source, "256M")
        with open(source, "rb") as handle:
            self.qcow2 = handle.read()

    async def test_spawn_with_kernel_and_ramdisk(self):
        kernel = self.api.add(b"\x7fELF kernel" * 100, disk_format="aki")
        ramdisk = self.api.add(b"initramfs" * 100, disk_format="ari")
        image = self.api.add(self.qcow2, disk_format="qcow2",
                             properties={"kernel_id": kernel["id"],
                                         "ramdisk_id": ramdisk["id"],
                                         "os_command_line": "console=ttyS0"})
        instance = make_instance(root_gb=1)
        await self.driver.spawn(None, instance, image, [], None, [], None)
        self.addCleanup(self.driver.destroy, None, instance, [])
        directory = self.driver.instance_dir(instance.uuid)
        root = ET.fromstring(
            self.conn.lookupByUUIDString(instance.uuid).XMLDesc(0))
        self.assertEqual(root.findtext("os/kernel"),
                         os.path.join(directory, "kernel"))
        self.assertEqual(root.findtext("os/initrd"),
                         os.path.join(directory, "ramdisk"))
        self.assertEqual(root.findtext("os/cmdline"), "console=ttyS0")
        disk = root.find("devices/disk")
        self.assertEqual(disk.find("source").get("file"),
                         os.path.join(directory, "disk"))
        info = await imagecache.image_info(
            reactor, os.path.join(directory, "disk"), "qcow2")
        self.assertEqual(info["virtual-size"], 1024 ** 3)
        self.assertEqual(info["backing-filename"],
                         self.driver.image_cache.path(image["id"]))
        with open(os.path.join(directory, "kernel"), "rb") as handle:
            self.assertTrue(handle.read().startswith(b"\x7fELF"))
        # In use: ageing keeps all three cached images.
        self.assertEqual(await self.driver.age_images(), [])
        await self.driver.destroy(None, instance, [])
        self.assertFalse(os.path.exists(directory))
        removed = await self.driver.age_images()
        self.assertEqual(sorted(removed),
                         sorted([image["id"], kernel["id"], ramdisk["id"]]))

    async def test_corrupt_image_never_boots(self):
        image = self.api.add(self.qcow2, served=self.qcow2[:-1] + b"!",
                             disk_format="qcow2")
        instance = make_instance()
        with self.assertRaises(exception.ImageChecksumMismatch):
            await self.driver.spawn(None, instance, image, [], None, [],
                                    None)
        await self.driver.destroy(None, instance, [])
        self.assertEqual(
            [d.UUIDString() for d in self.conn.listAllDomains()
             if d.UUIDString() == instance.uuid], [])
        self.assertFalse(os.path.exists(
            self.driver.image_cache.path(image["id"])))

    async def test_ten_guests_share_one_download(self):
        image = self.api.add(self.qcow2, disk_format="qcow2")
        instances = [make_instance() for _ in range(10)]
        from twisted.internet import defer
        await defer.gatherResults([
            defer.ensureDeferred(self._spawn(i, image)) for i in instances])
        self.assertEqual(self.api.file_requests, 1)
        uuids = await self.driver.list_instance_uuids()
        self.assertEqual(sorted(uuids), sorted(i.uuid for i in instances))
        for instance in instances:
            await self.driver.destroy(None, instance, [])

    async def _spawn(self, instance, image):
        await self.driver.spawn(None, instance, image, [], None, [], None)
