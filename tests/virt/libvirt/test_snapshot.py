"""Snapshots on the libvirt driver, on the real reactor: a guest spawned on
test:///default from a real qcow2 image, its overlay written by
``qemu-io``, then snapshotted (cold: test:///default has no disk-only
snapshots): the upload gets one standalone qcow2 holding both the base
image's and the overlay's bytes, and the guest is running again."""

from __future__ import annotations

import os
import shutil
import tempfile

from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.trial.unittest import TestCase
from twisted.web.server import Site

from tests.virt.libvirt.base import libvirt_conf, make_instance, \
    require_libvirt, require_qemu_img
from tests.virt.libvirt.test_imagecache import ImageAPI
from twisted_compute.objects import vm_states
from twisted_compute.virt.libvirt import imagecache
from twisted_compute.virt.libvirt.snapshot import _other_disks, \
    snapshot_xml

MiB = 1 << 20


class SnapshotTests(TestCase):
    async def setUp(self):
        require_libvirt()
        require_qemu_img()
        import libvirt
        from twisted_compute.virt.libvirt.driver import LibvirtDriver
        self.libvirt = libvirt
        self.api = ImageAPI()
        port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1") \
            .listen(Site(self.api))
        self.addCleanup(port.stopListening)
        self.state_path = tempfile.mkdtemp(prefix="tc-snap-")
        self.addCleanup(shutil.rmtree, self.state_path, True)
        conf = libvirt_conf(self.state_path).with_overrides(
            glance={"api_servers":
                    f"http://127.0.0.1:{port.getHost().port}"})
        self.driver = LibvirtDriver(
            conf, reactor, host="snaphost",
            http=imagecache.make_http_client(reactor, persistent=False))
        self.addCleanup(self.driver.cleanup)
        self.conn = libvirt.open("test:///default")
        self.addCleanup(self.conn.close)
        # A base image with a marker at 0 (raw, made qcow2).
        raw = os.path.join(self.state_path, "base.raw")
        with open(raw, "wb") as handle:
            handle.write(b"BASE-MARKER")
            handle.truncate(8 * MiB)
        base = os.path.join(self.state_path, "base.qcow2")
        await imagecache.run_qemu_img(reactor, "convert", "-f", "raw",
                                      "-O", "qcow2", raw, base)
        with open(base, "rb") as handle:
            self.image = self.api.add(handle.read(), disk_format="qcow2")

    async def spawn(self):
        instance = make_instance(root_gb=0)
        await self.driver.spawn(None, instance, self.image, [], None, [],
                                None)
        self.addCleanup(lambda: self.driver.destroy(None, instance, []))
        disk = os.path.join(self.driver.instance_dir(instance.uuid), "disk")
        # The guest's own write, in the overlay only.
        await _run(reactor, "qemu-io", "-f", "qcow2", "-c",
                   "write -P 0x41 1M 64k", disk)
        return instance

    def state(self, instance):
        return self.conn.lookupByUUIDString(instance.uuid).state()[0]

    async def test_cold_snapshot_is_flat_and_the_guest_runs_again(self):
        instance = await self.spawn()
        states, uploaded = [], []
        work = os.path.join(self.driver.images_path, "snapshots", "img-1")

        def update(task_state, expected_state=None):
            states.append(task_state)
            return defer.succeed(None)

        async def upload(path, disk_format, container_format="bare"):
            # the guest is back before the upload
            uploaded.append((self.state(instance), disk_format,
                             container_format))
            copy = os.path.join(self.state_path, "uploaded.qcow2")
            shutil.copyfile(path, copy)
            uploaded.append(copy)

        await self.driver.snapshot(None, instance, "img-1", update,
                                   lambda *a: defer.ensureDeferred(
                                       upload(*a)))
        self.assertEqual(self.driver.snapshots.last_method, "cold")
        self.assertEqual(states, [vm_states.IMAGE_PENDING_UPLOAD,
                                  vm_states.IMAGE_UPLOADING])
        self.assertEqual(uploaded[0], (self.libvirt.VIR_DOMAIN_RUNNING,
                                       "qcow2", "bare"))
        info = await imagecache.image_info(reactor, uploaded[1], "qcow2")
        self.assertNotIn("backing-filename", info)
        flat = os.path.join(self.state_path, "flat.raw")
        await imagecache.run_qemu_img(reactor, "convert", "-f", "qcow2",
                                      "-O", "raw", uploaded[1], flat)
        with open(flat, "rb") as handle:
            data = handle.read()
        self.assertEqual(data[:11], b"BASE-MARKER")
        self.assertEqual(data[MiB:MiB + 65536], b"A" * 65536)
        self.assertEqual(self.state(instance),
                         self.libvirt.VIR_DOMAIN_RUNNING)
        self.assertFalse(os.path.exists(work))

    async def test_a_paused_guest_stays_paused(self):
        instance = await self.spawn()
        await self.driver.pause(instance)

        def upload(path, disk_format, container_format="bare"):
            return defer.succeed(None)
        await self.driver.snapshot(None, instance, "img-2",
                                   lambda *a: defer.succeed(None), upload)
        self.assertEqual(self.state(instance),
                         self.libvirt.VIR_DOMAIN_PAUSED)

    async def test_a_failed_upload_leaves_the_guest_running(self):
        instance = await self.spawn()

        def upload(path, disk_format, container_format="bare"):
            return defer.fail(RuntimeError("image API down"))
        with self.assertRaises(RuntimeError):
            await self.driver.snapshot(None, instance, "img-3",
                                       lambda *a: defer.succeed(None),
                                       upload)
        self.assertEqual(self.state(instance),
                         self.libvirt.VIR_DOMAIN_RUNNING)
        self.assertFalse(os.path.exists(os.path.join(
            self.driver.images_path, "snapshots", "img-3")))

    async def test_a_failed_copy_restores_the_guest(self):
        instance = await self.spawn()
        os.unlink(os.path.join(self.driver.instance_dir(instance.uuid),
                               "disk"))
        with self.assertRaises(RuntimeError):
            await self.driver.snapshot(
                None, instance, "img-4", lambda *a: defer.succeed(None),
                lambda *a: defer.succeed(None))
        self.assertEqual(self.state(instance),
                         self.libvirt.VIR_DOMAIN_RUNNING)

    def test_snapshot_xml_leaves_other_disks_out(self):
        xml = ("<domain><devices><disk><target dev='vda'/></disk>"
               "<disk><target dev='hdd'/></disk></devices></domain>")
        self.assertEqual(_other_disks(xml, "vda"), ["hdd"])
        text = snapshot_xml("s", "/x/overlay.qcow2", ["hdd"])
        self.assertIn("<disk name='vda' snapshot='external'>"
                      "<source file='/x/overlay.qcow2'/></disk>", text)
        self.assertIn("<disk name='hdd' snapshot='no'/>", text)


async def _run(reactor, binary, *args):
    from twisted_compute.virt import process
    out, err, code = await process.run(reactor, shutil.which(binary), args,
                                       timeout=60, env=dict(os.environ))
    if code != 0:
        raise RuntimeError(err.decode())
    return out
