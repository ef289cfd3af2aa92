"""A real guest on qemu:///system with virt_type = qemu: kernel, ramdisk
and disk images served by an image API on loopback, direct kernel boot,
SMBIOS, serial console log.  The guest prints its SMBIOS product and
serial (its instance uuid) on the console, which the driver returns.

Needs libvirtd (with qemu) running; skips otherwise unless
``TWISTED_COMPUTE_DEMAND`` names ``libvirtd`` (or ``all``).
"""

from __future__ import annotations

import os
import shutil
import tempfile

from twisted.internet import defer, reactor, task
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.trial.unittest import SkipTest, TestCase
from twisted.web.server import Site

from tests.base import demanded, require_service
from tests.virt.libvirt import guest
from tests.virt.libvirt.base import have_libvirt, libvirt_conf, \
    make_instance, require_libvirt, require_qemu_img
from tests.virt.libvirt.test_imagecache import ImageAPI
from twisted_compute.virt import power_state
from twisted_compute.virt.libvirt import imagecache

URI = "qemu:///system"


def libvirtd_with_qemu() -> bool:
    if not have_libvirt() or shutil.which("qemu-system-x86_64") is None:
        return False
    import libvirt
    libvirt.registerErrorHandler(lambda *args: None, None)
    try:
        conn = libvirt.open(URI)
    except libvirt.libvirtError:
        return False
    try:
        return conn.getType() == "QEMU"
    finally:
        conn.close()


class RealGuestTests(TestCase):

    timeout = 180

    async def setUp(self):
        require_libvirt()
        require_qemu_img()
        require_service("libvirtd", host=URI, check=libvirtd_with_qemu)
        try:
            kernel, initrd = guest.build()
        except guest.GuestUnavailable as exc:
            if demanded("libvirtd"):
                raise
            raise SkipTest(f"cannot build the test guest: {exc}")
        from twisted_compute.virt.libvirt.driver import LibvirtDriver
        self.api = ImageAPI()
        port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1") \
            .listen(Site(self.api))
        self.addCleanup(port.stopListening)
        self.state_path = tempfile.mkdtemp(prefix="tc-real-guest-")
        # qemu runs as its own user: it must reach the instance files.
        os.chmod(self.state_path, 0o755)
        self.addCleanup(shutil.rmtree, self.state_path, True)
        conf = libvirt_conf(self.state_path, virt_type="qemu",
                            connection_uri=URI).with_overrides(
            glance={"api_servers":
                    f"http://127.0.0.1:{port.getHost().port}"})
        self.driver = LibvirtDriver(
            conf, reactor, host="realguest",
            http=imagecache.make_http_client(reactor, persistent=False))
        self.addCleanup(self.driver.cleanup)
        with open(kernel, "rb") as handle:
            self.kernel = self.api.add(handle.read(), disk_format="aki")
        with open(initrd, "rb") as handle:
            self.ramdisk = self.api.add(handle.read(), disk_format="ari")
        disk = os.path.join(self.state_path, "empty.qcow2")
        await imagecache.run_qemu_img(reactor, "create", "-f", "qcow2",
                                      disk, "64M")
        with open(disk, "rb") as handle:
            self.image = self.api.add(
                handle.read(), disk_format="qcow2", properties={
                    "kernel_id": self.kernel["id"],
                    "ramdisk_id": self.ramdisk["id"],
                    "os_command_line": "console=ttyS0 panic=-1 quiet"})

    async def console_until(self, instance, text: str,
                            timeout: float = 90) -> str:
        deadline = reactor.seconds() + timeout
        while True:
            output = (await self.driver.get_console_output(
                None, instance)).decode("utf-8", "replace")
            if text in output or reactor.seconds() > deadline:
                return output
            await task.deferLater(reactor, 0.5, lambda: None)

    async def test_guest_boots_and_prints_its_uuid(self):
        instance = make_instance(root_gb=1, memory_mb=256)
        await self.driver.spawn(None, instance, self.image, [], None, [],
                                None)
        self.addCleanup(lambda: defer.ensureDeferred(
            self._destroy(instance)))
        info = await self.driver.get_info(instance)
        self.assertEqual(info.state, power_state.RUNNING)
        output = await self.console_until(instance, guest.DONE)
        self.assertIn(guest.DONE, output, output[-3000:])
        self.assertIn(f"guest-uuid: {instance.uuid}", output)
        self.assertIn("guest-product: OpenStack Nova", output)
        addresses = await self.driver.get_instance_addresses(instance)
        self.assertEqual(list(addresses), ["default"])

    async def _destroy(self, instance):
        await self.driver.destroy(None, instance, [])
