"""A real guest, end to end: ``twistd -n compute-all`` with
``compute_driver = libvirt`` on ``qemu:///system`` (``virt_type = qemu``),
driven by the unchanged ``openstack`` CLI.

The tiny guest of :mod:`tests.virt.libvirt.guest` (Debian's cloud kernel
and a busybox initramfs) is registered through the image API as a kernel
(``aki``), a ramdisk (``ari``) and an empty qcow2 disk whose
``kernel_id`` / ``ramdisk_id`` properties ask for direct kernel boot, as
Nova's libvirt driver does.  ``server create --wait`` must reach ACTIVE,
``console log show`` must show the uuid the guest read from its own
SMBIOS (and, with ``--config-drive True``, the ``meta_data.json`` of its
config drive), ``addresses`` must show the fixed IP the driver reserved,
and ``server delete --wait`` must remove the domain, the instance
directory (disks, console log) and the DHCP reservation.

Skip rule: skips unless libvirtd answers on ``qemu:///system`` with qemu
behind it (and the guest can be built); fails instead when
``TWISTED_COMPUTE_DEMAND`` names ``libvirtd`` (or ``all``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
import uuid

from twisted.trial.unittest import SkipTest

from tests.base import demanded, require_service
from tests.integration.harness import (
    TwistdTestCase, run_command)
from tests.integration.test_openstack_cli import (
    OpenStackCLIMixin, clouds_yaml)
from tests.virt.libvirt import guest
from tests.virt.libvirt.base import require_libvirt, require_qemu_img
from tests.virt.libvirt.test_real_guest import URI, libvirtd_with_qemu

#: seconds one CLI call may take (``--wait`` calls included)
CLI_TIMEOUT = 90.0
#: seconds the guest gets to print its uuid on the serial console
CONSOLE_TIMEOUT = 60.0


def libvirt_domain(uuid_: str):
    """``(name, state)`` of the domain with this uuid on ``URI``, or None
    when libvirt has no such domain."""
    import libvirt
    libvirt.registerErrorHandler(lambda *args: None, None)
    conn = libvirt.open(URI)
    try:
        try:
            dom = conn.lookupByUUIDString(uuid_)
        except libvirt.libvirtError:
            return None
        return dom.name(), dom.state()[0]
    finally:
        conn.close()


def dhcp_hosts(network: str = "default") -> str:
    """The DHCP section of a libvirt network's XML (its reservations)."""
    import libvirt
    conn = libvirt.open(URI)
    try:
        return conn.networkLookupByName(network).XMLDesc(0)
    finally:
        conn.close()


class RealGuestCLITests(OpenStackCLIMixin, TwistdTestCase):
    """``openstack server create`` boots a real qemu guest."""

    cli_timeout = CLI_TIMEOUT

    def setUp(self):
        super().setUp()
        require_libvirt()
        require_qemu_img()
        require_service("libvirtd", host=URI, check=libvirtd_with_qemu)
        try:
            self.kernel_file, self.initrd_file = guest.build()
        except guest.GuestUnavailable as exc:
            if demanded("libvirtd"):
                raise
            raise SkipTest(f"cannot build the test guest: {exc}")
        # qemu runs as its own user: every directory on the way to the
        # instance files must be searchable (mkdtemp makes 0700).
        self.images_path = tempfile.mkdtemp(prefix="tc-it-guests-")
        os.chmod(self.images_path, 0o755)
        self.addCleanup(shutil.rmtree, self.images_path, True)
        self.host = "realguest-" + uuid.uuid4().hex[:6]
        self.proc = self.start_twistd(
            role="compute-all", apis=("osapi_compute", "image", "metadata"),
            options={
                "DEFAULT": {"host": self.host,
                            "compute_driver": "libvirt",
                            "report_interval": 1,
                            "periodic_fuzzy_delay": 0,
                            "update_resources_interval": 1},
                "libvirt": {"virt_type": "qemu", "connection_uri": URI,
                            "images_path": self.images_path}})
        self.clouds = os.path.join(self.proc.directory, "clouds.yaml")
        with open(self.clouds, "w", encoding="utf-8") as handle:
            handle.write(clouds_yaml(self.proc))

    def register_guest(self) -> dict:
        """Kernel, ramdisk and disk images of the tiny guest; returns the
        disk image (the one to boot)."""
        tag = uuid.uuid4().hex[:6]
        kernel = self.openstack(
            "image", "create", "--file", self.kernel_file,
            "--disk-format", "aki", "--container-format", "aki",
            "--public", f"guest-kernel-{tag}")
        ramdisk = self.openstack(
            "image", "create", "--file", self.initrd_file,
            "--disk-format", "ari", "--container-format", "ari",
            "--public", f"guest-ramdisk-{tag}")
        disk = os.path.join(self.proc.directory, "empty.qcow2")
        done = run_command(["qemu-img", "create", "-f", "qcow2", disk,
                            "64M"], timeout=30)
        self.assertEqual(done.returncode, 0, done.stderr)
        image = self.openstack(
            "image", "create", "--file", disk, "--disk-format", "qcow2",
            "--container-format", "bare", "--public",
            "--property", f"kernel_id={kernel['id']}",
            "--property", f"ramdisk_id={ramdisk['id']}",
            "--property", "os_command_line=console=ttyS0 panic=-1 quiet",
            f"guest-disk-{tag}")
        self.assertEqual(image["status"], "active")
        return image

    def console_until(self, server_id: str, text: str,
                      timeout: float = CONSOLE_TIMEOUT) -> str:
        """``console log show`` until it contains ``text`` (or the time is
        up); returns the last output."""
        deadline = time.monotonic() + timeout
        while True:
            output = self.openstack("console", "log", "show", server_id,
                                    parse=False).stdout
            if text in output or time.monotonic() > deadline:
                return output
            time.sleep(1.0)

    def boot(self, *extra: str) -> dict:
        flavor = self.openstack("flavor", "create", "--ram", "256",
                                "--disk", "1", "--vcpus", "1",
                                "guest-" + uuid.uuid4().hex[:6])
        image = self.register_guest()
        server = self.openstack(
            "server", "create", "--flavor", flavor["id"], "--image",
            image["id"], "--auto-network", "--wait", *extra,
            "guest-" + uuid.uuid4().hex[:6])
        self.addCleanup(self._delete_quietly, server["id"])
        return server

    def _delete_quietly(self, server_id: str) -> None:
        """Cleanup after a failure: delete the server, and the domain if
        the process could not."""
        if self.proc.running():
            self.openstack("server", "delete", "--wait", server_id,
                           parse=False, check=False)
        if libvirt_domain(server_id) is not None:
            import libvirt
            conn = libvirt.open(URI)
            try:
                dom = conn.lookupByUUIDString(server_id)
                if dom.isActive():
                    dom.destroy()
                dom.undefine()
            except libvirt.libvirtError:
                pass
            finally:
                conn.close()

    def check_running_guest(self, server: dict) -> str:
        """ACTIVE, a running domain, the uuid on the console, the fixed
        IP in ``addresses``; returns the console output."""
        server_id = server["id"]
        self.assertEqual(server["status"], "ACTIVE", server)
        domain = libvirt_domain(server_id)
        self.assertIsNotNone(domain, "no libvirt domain for the server")
        import libvirt
        self.assertEqual(domain[1], libvirt.VIR_DOMAIN_RUNNING)
        output = self.console_until(server_id, guest.DONE)
        self.assertIn(f"guest-uuid: {server_id}", output, output[-3000:])
        self.assertIn("guest-product: OpenStack Nova", output)
        shown = self.openstack("server", "show", server_id)
        addresses = shown["addresses"]
        # -f json prints addresses as {"net": ["ip", ...]} (newer CLIs)
        # or "net=ip" (older ones).
        if isinstance(addresses, dict):
            ips = [ip for values in addresses.values() for ip in values]
        else:
            ips = re.findall(r"\d+\.\d+\.\d+\.\d+", str(addresses))
        self.assertEqual(len(ips), 1, addresses)
        # The reservation the driver made on the libvirt network is the
        # address the API shows.
        self.assertIn(f"ip='{ips[0]}'", dhcp_hosts().replace('"', "'"))
        self.fixed_ip = ips[0]
        return output

    def check_deleted(self, server_id: str) -> None:
        instance_dir = os.path.join(self.images_path, server_id)
        self.assertTrue(os.path.exists(
            os.path.join(instance_dir, "console.log")))
        self.openstack("server", "delete", "--wait", server_id,
                       parse=False)
        self.assertIsNone(libvirt_domain(server_id))
        self.assertFalse(os.path.exists(instance_dir),
                         os.listdir(self.images_path))
        self.assertNotIn(f"ip='{self.fixed_ip}'",
                         dhcp_hosts().replace('"', "'"))

    def test_boot_console_delete(self):
        server = self.boot()
        output = self.check_running_guest(server)
        # No config drive was asked for: the guest found none.
        self.assertNotIn("config-drive-meta-data:", output)
        self.check_deleted(server["id"])

    def test_config_drive(self):
        server = self.boot("--config-drive", "True")
        output = self.check_running_guest(server)
        self.assertIn("config-drive-meta-data:", output, output[-3000:])
        text = output.split("config-drive-meta-data:", 1)[1]
        meta = json.JSONDecoder().raw_decode(text.lstrip())[0]
        self.assertEqual(meta["uuid"], server["id"])
        self.assertEqual(meta["name"], server["name"])
        self.assertTrue(os.path.exists(os.path.join(
            self.images_path, server["id"], "disk.config")))
        self.check_deleted(server["id"])
