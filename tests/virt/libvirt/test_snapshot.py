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


class _StandInDomain:
    """What a live snapshot asks of a domain, recorded; ``fail`` names
    the calls that raise libvirtError."""

    def __init__(self, libvirt, fail=()):
        self.libvirt = libvirt
        self.fail = set(fail)
        self.calls = []

    def _call(self, name):
        self.calls.append(name)
        if name in self.fail:
            raise self.libvirt.libvirtError(f"{name} refused")

    def XMLDesc(self, flags=0):
        return ("<domain><devices><disk><target dev='vda'/></disk>"
                "</devices></domain>")

    def fsFreeze(self, mountpoints=None, flags=0):
        self._call("fsFreeze")
        return 1

    def fsThaw(self, mountpoints=None, flags=0):
        self._call("fsThaw")
        return 1

    def snapshotCreateXML(self, xml, flags=0):
        self._call("snapshotCreateXML")


class _StandInDriver:
    qemu_img_timeout = 60.0

    def __init__(self, domain, virt_type="qemu"):
        self.domain = domain
        self.virt_type = virt_type

    def _run(self, func, *args):
        return defer.maybeDeferred(func, None, *args)

    def _lookup(self, conn, uuid):
        return self.domain


class QuiesceTests(TestCase):
    """Quiesce around the live snapshot, on a stand-in domain: the copy
    and the commit stubbed, the order of the domain's calls checked."""

    def setUp(self):
        require_libvirt()
        import libvirt
        self.libvirt = libvirt

    def live(self, fail=(), virt_type="qemu", **properties):
        from twisted_compute.virt.libvirt.snapshot import Snapshotter
        domain = _StandInDomain(self.libvirt, fail)
        snapshotter = Snapshotter(_StandInDriver(domain, virt_type), reactor)
        copied = []
        snapshotter._convert = lambda disk, target: defer.succeed(
            copied.append("convert"))
        snapshotter._commit = lambda uuid: defer.succeed(
            copied.append("commit"))
        instance = make_instance(system_metadata={
            f"image_{key}": value for key, value in properties.items()})
        d = defer.ensureDeferred(snapshotter._live(
            instance.uuid, "/i/disk", "/w/img", "/w/img/snapshot.qcow2",
            instance))
        return d, domain, snapshotter, copied

    async def test_agent_freezes_around_the_snapshot_then_thaws(self):
        d, domain, snapshotter, copied = self.live(hw_qemu_guest_agent="yes")
        self.assertTrue(await d)
        self.assertEqual(domain.calls,
                         ["fsFreeze", "snapshotCreateXML", "fsThaw"])
        self.assertEqual(copied, ["convert", "commit"])
        self.assertTrue(snapshotter.last_quiesced)

    async def test_no_agent_no_requirement_goes_on_without(self):
        d, domain, snapshotter, _ = self.live()
        self.assertTrue(await d)
        self.assertEqual(domain.calls, ["snapshotCreateXML"])
        self.assertFalse(snapshotter.last_quiesced)

    async def test_required_without_agent_fails_with_nova_s_error(self):
        from twisted_compute import exception
        d, domain, _, copied = self.live(os_require_quiesce="yes")
        with self.assertRaises(exception.QemuGuestAgentNotEnabled):
            await d
        self.assertEqual((domain.calls, copied), ([], []))

    async def test_required_on_a_driver_that_cannot_quiesce(self):
        from twisted_compute import exception
        d, domain, _, _ = self.live(virt_type="lxc", hw_qemu_guest_agent="yes",
                                    os_require_quiesce="yes")
        with self.assertRaises(exception.InstanceQuiesceNotSupported):
            await d
        self.assertEqual(domain.calls, [])

    async def test_failed_freeze_required_fails_and_still_thaws(self):
        from twisted_compute import exception
        d, domain, _, copied = self.live(
            fail={"fsFreeze"}, hw_qemu_guest_agent="yes",
            os_require_quiesce="yes")
        with self.assertRaises(exception.InstanceQuiesceFailed) as caught:
            await d
        self.assertIn("Failed to quiesce instance", str(caught.exception))
        self.assertEqual(domain.calls, ["fsFreeze", "fsThaw"])
        self.assertEqual(copied, [])

    async def test_failed_freeze_not_required_goes_on_and_thaws(self):
        d, domain, snapshotter, _ = self.live(fail={"fsFreeze"},
                                              hw_qemu_guest_agent="yes")
        self.assertTrue(await d)
        self.assertEqual(domain.calls,
                         ["fsFreeze", "snapshotCreateXML", "fsThaw"])
        self.assertFalse(snapshotter.last_quiesced)

    async def test_failed_snapshot_thaws_before_falling_back(self):
        d, domain, _, copied = self.live(
            fail={"snapshotCreateXML"}, hw_qemu_guest_agent="yes",
            os_require_quiesce="yes")
        self.assertFalse(await d)  # the caller then takes a cold one
        self.assertEqual(domain.calls,
                         ["fsFreeze", "snapshotCreateXML", "fsThaw"])
        self.assertEqual(copied, [])

    async def test_a_failed_thaw_is_logged_not_raised(self):
        d, domain, _, copied = self.live(fail={"fsThaw"},
                                         hw_qemu_guest_agent="yes")
        self.assertTrue(await d)
        self.assertEqual(domain.calls,
                         ["fsFreeze", "snapshotCreateXML", "fsThaw"])
        self.assertEqual(copied, ["convert", "commit"])
