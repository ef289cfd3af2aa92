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
config drive), ``addresses`` must show the fixed IP the driver reserved
(and the guest must get that address from DHCP), and ``server delete
--wait`` must remove the domain, the instance directory (disks, console
log) and the DHCP reservation.

The metadata API is tested as a guest uses it: ``compute-manage network
metadata-redirect`` adds the NAT rule that sends ``169.254.169.254:80``
from the libvirt bridge to the process's metadata listener (on 0.0.0.0),
the guest (no config drive) GETs ``meta_data.json`` and the EC2
``instance-id`` there and prints them, and the API knows it by its
source address, the fixed IP.  The rule is removed at cleanup, always.

Skip rule: skips unless libvirtd answers on ``qemu:///system`` with qemu
behind it (and the guest can be built; and, for the metadata test, no
other 169.254.169.254 redirect is on the bridge); fails instead when
``TWISTED_COMPUTE_DEMAND`` names ``libvirtd`` (or ``all``).  The libvirt
network ``default`` is started when it is not active.
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
    COMPUTE_MANAGE, DeploymentTestCase, TwistdTestCase, api_hypervisors,
    run_command, wait_until)
from tests.integration.test_openstack_cli import (
    OpenStackCLIMixin, clouds_yaml)
from tests.virt.libvirt import guest
from tests.virt.libvirt.base import require_libvirt, require_qemu_img
from tests.virt.libvirt.test_real_guest import URI, libvirtd_with_qemu

#: seconds one CLI call may take (``--wait`` calls included)
CLI_TIMEOUT = 90.0
#: seconds the guest gets to print its uuid on the serial console
CONSOLE_TIMEOUT = 60.0
#: the libvirt network the guests are on
NETWORK = "default"
#: the kernel command line of the guest (``tc_metadata=`` is added for
#: the metadata test)
GUEST_CMDLINE = "console=ttyS0 panic=-1 quiet"


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


def dhcp_hosts(network: str = NETWORK) -> str:
    """The DHCP section of a libvirt network's XML (its reservations)."""
    import libvirt
    conn = libvirt.open(URI)
    try:
        return conn.networkLookupByName(network).XMLDesc(0)
    finally:
        conn.close()


def active_network(network: str = NETWORK) -> tuple[str, str]:
    """Start the libvirt network if it is not active (a freshly started
    libvirtd leaves a network without autostart down); its bridge and
    the host's IPv4 address on it."""
    import libvirt
    import xml.etree.ElementTree as ET
    conn = libvirt.open(URI)
    try:
        net = conn.networkLookupByName(network)
        if not net.isActive():
            net.create()
        addresses = [ip.get("address") for ip in
                     ET.fromstring(net.XMLDesc(0)).findall("ip")
                     if ip.get("family", "ipv4") == "ipv4"]
        return net.bridgeName(), addresses[0]
    finally:
        conn.close()


def metadata_redirects(bridge: str) -> list[str]:
    """The ``iptables -t nat`` PREROUTING rules that redirect
    169.254.169.254 arriving on ``bridge`` (``-S`` lines)."""
    done = run_command(["iptables", "-t", "nat", "-S", "PREROUTING"],
                       timeout=30)
    if done.returncode != 0:
        raise AssertionError(f"iptables -t nat -S: {done.stderr}")
    return [line for line in done.stdout.splitlines()
            if "169.254.169.254" in line and f"-i {bridge} " in line]


def console_section(output: str, marker: str) -> tuple[str, str]:
    """``(status line, body)`` the guest printed for ``marker`` (see
    :data:`guest.METADATA_FETCHES`); AssertionError when it is not
    there."""
    text = output.replace("\r\n", "\n")
    status = re.search(rf"^{re.escape(marker)}-status: (.*)$", text,
                       re.MULTILINE)
    body = re.search(rf"^{re.escape(marker)}-begin\n(.*?)\n"
                     rf"{re.escape(marker)}-end$", text,
                     re.MULTILINE | re.DOTALL)
    if status is None or body is None:
        raise AssertionError(f"no {marker} section on the console:\n"
                             f"{output[-3000:]}")
    return status.group(1).strip(), body.group(1).strip()


#: The second guest image: the same kernel and initramfs, a command line
#: without ``quiet`` that names it, so that its boot shows on the console
#: (the kernel's ``Command line:`` and its disks' ``[vdX]`` lines).
SECOND_IMAGE_MARKER = "tc_image=second"
SECOND_CMDLINE = f"console=ttyS0 panic=-1 {SECOND_IMAGE_MARKER}"


class RealGuestCLITests(OpenStackCLIMixin, TwistdTestCase):
    """``openstack server create`` boots a real qemu guest."""

    cli_timeout = CLI_TIMEOUT

    def require_guest(self):
        """libvirtd with qemu, qemu-img, and the test guest's kernel and
        initrd (``kernel_file``, ``initrd_file``); a skip when they are
        missing and not demanded."""
        require_libvirt()
        require_qemu_img()
        require_service("libvirtd", host=URI, check=libvirtd_with_qemu)
        try:
            self.kernel_file, self.initrd_file = guest.build()
        except guest.GuestUnavailable as exc:
            if demanded("libvirtd"):
                raise
            raise SkipTest(f"cannot build the test guest: {exc}")

    def setUp(self):
        super().setUp()
        self.require_guest()
        # qemu runs as its own user: every directory on the way to the
        # instance files must be searchable (mkdtemp makes 0700).
        self.images_path = tempfile.mkdtemp(prefix="tc-it-guests-")
        os.chmod(self.images_path, 0o755)
        self.addCleanup(shutil.rmtree, self.images_path, True)
        self.bridge, self.bridge_address = active_network()
        #: servers check_deleted saw go (the cleanup skips them)
        self.deleted: set[str] = set()
        #: whether the metadata redirect may be in place (for the cleanup)
        self.redirected = False
        self.host = "realguest-" + uuid.uuid4().hex[:6]
        self.proc = self.start_twistd(
            role="compute-all", apis=("osapi_compute", "image", "metadata"),
            options={
                "DEFAULT": {"host": self.host,
                            # Guests reach it (redirected) on the bridge.
                            "metadata_listen": "0.0.0.0",
                            "compute_driver": "libvirt",
                            "report_interval": 1,
                            "periodic_fuzzy_delay": 0,
                            "update_resources_interval": 1},
                "libvirt": {"virt_type": "qemu", "connection_uri": URI,
                            "images_path": self.images_path},
                # Consoles as Nova has them: a VNC device and a TCP serial
                # port (with console.log still written).
                "vnc": {"server_listen": "127.0.0.1",
                        "server_proxyclient_address": "127.0.0.1"},
                "serial_console": {"enabled": True,
                                   "proxyclient_address": "127.0.0.1"}})
        self.clouds = os.path.join(self.proc.directory, "clouds.yaml")
        with open(self.clouds, "w", encoding="utf-8") as handle:
            handle.write(clouds_yaml(self.proc))
        # The API listens before the agent has reported its node: a boot
        # then finds no host (it did under CI's load).
        wait_until(lambda: any(
            h["service"]["host"] == self.host and h["state"] == "up"
            for h in api_hypervisors(self.proc)), 60, interval=0.5,
            message=f"the agent of {self.host} to report its node")

    def register_guest(self, cmdline: str = GUEST_CMDLINE) -> dict:
        """Kernel, ramdisk and disk images of the tiny guest; returns the
        disk image (the one to boot), which boots with ``cmdline``."""
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
            "--property", f"os_command_line={cmdline}",
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

    def boot(self, *extra: str, cmdline: str = GUEST_CMDLINE) -> dict:
        flavor = self.openstack("flavor", "create", "--ram", "256",
                                "--disk", "1", "--vcpus", "1",
                                "guest-" + uuid.uuid4().hex[:6])
        image = self.register_guest(cmdline)
        server = self.openstack(
            "server", "create", "--flavor", flavor["id"], "--image",
            image["id"], "--auto-network", "--wait", *extra,
            "guest-" + uuid.uuid4().hex[:6])
        self.addCleanup(self._delete_quietly, server["id"])
        return server

    def _delete_quietly(self, server_id: str) -> None:
        """Cleanup after a failure: delete the server, and the domain if
        the process could not."""
        if server_id in self.deleted:
            return
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
        # ... and the address the guest got from DHCP.
        self.assertIn(f"guest-ip: {ips[0]}", output, output[-3000:])
        self.fixed_ip = ips[0]
        self.server_details = shown
        return output

    def check_deleted(self, server_id: str) -> None:
        instance_dir = os.path.join(self.images_path, server_id)
        self.assertTrue(os.path.exists(
            os.path.join(instance_dir, "console.log")))
        self.openstack("server", "delete", "--wait", server_id,
                       parse=False)
        self.assertIsNone(libvirt_domain(server_id))
        self.deleted.add(server_id)
        self.assertFalse(os.path.exists(instance_dir),
                         os.listdir(self.images_path))
        self.assertNotIn(f"ip='{self.fixed_ip}'",
                         dhcp_hosts().replace('"', "'"))

    def metadata_redirect(self, *extra: str) -> str:
        """``compute-manage network metadata-redirect`` with this
        process's config; returns its output."""
        done = run_command(
            [COMPUTE_MANAGE, "--config-file", self.proc.config_file,
             "network", "metadata-redirect", "--network", NETWORK, *extra],
            timeout=60)
        self.assertEqual(done.returncode, 0,
                         f"compute-manage exited {done.returncode}:\n"
                         f"{done.stdout}{done.stderr}")
        return done.stdout

    def _remove_redirect(self) -> None:
        """Cleanup: remove the rule unless the test did."""
        if self.redirected:
            self.metadata_redirect("--remove")

    def test_boot_console_delete(self):
        server = self.boot()
        output = self.check_running_guest(server)
        # No config drive was asked for: the guest found none.
        self.assertNotIn("config-drive-meta-data:", output)
        # No tc_metadata on the command line: the guest fetched nothing.
        self.assertNotIn("metadata-openstack-begin", output)
        self.check_deleted(server["id"])

    def test_metadata_api_over_the_network(self):
        """The guest (no config drive) GETs 169.254.169.254 through the
        redirect and is answered with its own metadata."""
        others = metadata_redirects(self.bridge)
        if others:
            message = (f"another 169.254.169.254 redirect is on "
                       f"{self.bridge} (a concurrent run, or a leftover: "
                       f"compute-manage network metadata-redirect "
                       f"--remove): {others}")
            if demanded("libvirtd"):
                raise AssertionError(message)
            raise SkipTest(message)
        port = self.proc.ports["metadata"]
        destination = f"{self.bridge_address}:{port}"
        self.addCleanup(self._remove_redirect)
        self.redirected = True
        printed = self.metadata_redirect()
        self.assertIn(f"--to-destination {destination}", printed)
        self.assertNotIn("already", printed)
        (rule,) = metadata_redirects(self.bridge)
        self.assertIn(f"--to-destination {destination}", rule)

        server = self.boot(cmdline=f"{GUEST_CMDLINE} "
                                   f"tc_metadata=169.254.169.254:80")
        output = self.check_running_guest(server)
        self.assertNotIn("config-drive-meta-data:", output)
        status, body = console_section(output, "metadata-openstack")
        self.assertIn(" 200 ", status, output[-3000:])
        meta = json.loads(body)
        self.assertEqual(meta["uuid"], server["id"])
        self.assertEqual(meta["name"], server["name"])
        status, body = console_section(output, "metadata-ec2-instance-id")
        self.assertIn(" 200 ", status, output[-3000:])
        self.assertRegex(body, r"^i-[0-9a-f]{8}$")
        # EC2 ids and instance names (instance-%08x) both number the
        # instance by its id.
        name = self.server_details["OS-EXT-SRV-ATTR:instance_name"]
        self.assertEqual(body, name.replace("instance-", "i-"))
        # The API knew the guest by its fixed IP, the source address the
        # DNAT rule keeps.
        self.assertRegex(
            self.proc.log_text(),
            rf"{re.escape(self.fixed_ip)}\b.*"
            rf"/openstack/latest/meta_data\.json")

        self.assertNotIn("already", self.metadata_redirect("--remove"))
        self.redirected = False
        self.assertEqual(metadata_redirects(self.bridge), [])
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

    def test_serial_and_novnc_consoles_through_the_proxy(self):
        """``console url show --serial``: a websocket client reads the
        guest's marker and gets its answer to a typed line; ``--novnc``:
        noVNC in headless Chromium shows the guest's screen."""
        server = self.boot()
        self.check_running_guest(server)
        server_id = server["id"]
        serial = self.openstack("console", "url", "show", "--serial",
                                server_id)
        self.assertEqual(serial["type"], "serial")
        url = serial["url"]
        self.assertTrue(url.startswith(
            f"ws://127.0.0.1:{self.proc.ports['serialproxy']}/?token="),
            url)
        self.check_serial(url)
        # a wrong Origin is refused
        import websocket
        with self.assertRaises(websocket.WebSocketBadStatusException):
            websocket.create_connection(url, timeout=10,
                                        origin="http://evil.example")

        from tests.console.browser import novnc_screenshot, require_browser
        require_browser()
        novnc = self.openstack("console", "url", "show", "--novnc",
                               server_id)
        self.assertEqual(novnc["type"], "novnc")
        self.assertIn("/vnc_auto.html?path=%3Ftoken%3D", novnc["url"])
        # in the test's own directory, kept after the run
        shot = os.path.abspath(os.path.join(self.mktemp(),
                                            "novnc-real-guest.png"))
        status, colours = novnc_screenshot(novnc["url"], shot)
        self.assertTrue(status.startswith("Connected"), status)
        self.assertGreater(colours, 1)
        self.check_deleted(server_id)

    def check_serial(self, url: str, timeout: float = 30) -> None:
        import websocket
        ws = websocket.create_connection(url, timeout=timeout,
                                         subprotocols=["binary"])
        try:
            received = self._ws_until(ws, guest.SERIAL_MARKER.encode(),
                                      timeout)
            self.assertIn(guest.SERIAL_MARKER.encode(), received)
            line = "typed-" + uuid.uuid4().hex[:8]
            ws.send_binary((line + "\r").encode())
            answer = (guest.SERIAL_ECHO + line).encode()
            received = self._ws_until(ws, answer, timeout)
            self.assertIn(answer, received)
        finally:
            ws.close()

    @staticmethod
    def _ws_until(ws, wanted: bytes, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        data = b""
        while wanted not in data:
            if time.monotonic() > deadline:
                raise AssertionError(f"{wanted!r} not seen on the serial "
                                     f"console: {data[-2000:]!r}")
            chunk = ws.recv()
            data += chunk if isinstance(chunk, bytes) else chunk.encode()
        return data

    # --- snapshots and shelving (issue 10) -------------------------------

    def snapshot_while_watching(self, server_id: str, name: str) -> tuple:
        """``server image create --wait`` while the domain's state is
        sampled; returns (image, the states seen)."""
        import subprocess
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("OS_")}
        env["OS_CLIENT_CONFIG_FILE"] = self.clouds
        env["HOME"] = self.proc.directory
        from tests.integration.harness.processes import OPENSTACK
        child = subprocess.Popen(
            [OPENSTACK, "--os-cloud", "twisted-compute", "server", "image",
             "create", "--wait", "--name", name, server_id, "-f", "json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=env, cwd=self.proc.directory)
        states = []
        deadline = time.monotonic() + CLI_TIMEOUT
        while child.poll() is None and time.monotonic() < deadline:
            domain = libvirt_domain(server_id)
            states.append(domain[1] if domain else None)
            time.sleep(0.1)
        out, err = child.communicate(timeout=CLI_TIMEOUT)
        self.assertEqual(child.returncode, 0, err)
        return json.loads(out), states

    def test_snapshot_boot_from_it_shelve_and_unshelve(self):
        import libvirt
        marker = "m" + uuid.uuid4().hex[:10]
        server = self.boot(cmdline=f"{GUEST_CMDLINE} "
                                   f"tc_disk_marker={marker}")
        server_id = server["id"]
        output = self.check_running_guest(server)
        self.assertIn(f"guest-disk-written: TCMARK:{marker}", output,
                      output[-3000:])
        # A snapshot of the running guest: it never stops, and its
        # console goes on (a marker every 2 s) across the snapshot.
        ticks_before = self.console_until(server_id, guest.SERIAL_MARKER) \
            .count(guest.SERIAL_MARKER)
        image, states = self.snapshot_while_watching(
            server_id, "snap-" + uuid.uuid4().hex[:6])
        self.addCleanup(self.openstack, "image", "delete", image["id"],
                        parse=False, check=False)
        self.assertEqual(image["status"], "active", image)
        self.assertTrue(states)
        self.assertEqual(set(states), {libvirt.VIR_DOMAIN_RUNNING}, states)
        time.sleep(4.5)
        ticks_after = self.openstack("console", "log", "show", server_id,
                                     parse=False).stdout.count(
            guest.SERIAL_MARKER)
        self.assertGreater(ticks_after, ticks_before)
        shown = self.openstack("image", "show", image["id"])
        self.assertEqual(shown["disk_format"], "qcow2")
        self.assertEqual(shown["properties"]["image_type"], "snapshot")
        self.assertEqual(shown["properties"]["instance_uuid"], server_id)
        # A second server from the snapshot finds the first's marker.
        flavor = self.openstack("flavor", "create", "--ram", "256",
                                "--disk", "1", "--vcpus", "1",
                                "guest-" + uuid.uuid4().hex[:6])
        second = self.openstack(
            "server", "create", "--flavor", flavor["id"], "--image",
            image["id"], "--auto-network", "--wait",
            "guest-" + uuid.uuid4().hex[:6])
        self.addCleanup(self._delete_quietly, second["id"])
        self.assertEqual(second["status"], "ACTIVE", second)
        output = self.console_until(second["id"], guest.DONE)
        self.assertIn(f"guest-disk: TCMARK:{marker}", output,
                      output[-3000:])
        self.assertNotIn("guest-disk-written", output)
        self.check_deleted_quietly(second["id"])
        # Shelve (offloaded at once), unshelve: same uuid, same marker.
        self.openstack("server", "shelve", "--wait", server_id,
                       parse=False)
        shown = wait_until(
            lambda: (lambda s: s if s["status"] == "SHELVED_OFFLOADED"
                     else None)(self.openstack("server", "show",
                                               server_id)),
            CLI_TIMEOUT, interval=1, message="the server to be offloaded")
        self.assertFalse(shown.get("OS-EXT-SRV-ATTR:host"))
        self.assertIsNone(libvirt_domain(server_id))
        self.openstack("server", "unshelve", "--wait", server_id,
                       parse=False)
        shown = self.openstack("server", "show", server_id)
        self.assertEqual(shown["status"], "ACTIVE", shown)
        self.assertEqual(shown["id"], server_id)
        domain = libvirt_domain(server_id)
        self.assertEqual(domain[1], libvirt.VIR_DOMAIN_RUNNING)
        output = self.console_until(server_id, f"guest-disk: TCMARK:{marker}")
        self.assertIn(f"guest-disk: TCMARK:{marker}", output,
                      output[-3000:])
        self.assertIn(f"guest-uuid: {server_id}", output)

    def check_deleted_quietly(self, server_id: str) -> None:
        self.openstack("server", "delete", "--wait", server_id,
                       parse=False)
        self.deleted.add(server_id)
        self.assertIsNone(libvirt_domain(server_id))

    # --- rebuild and rescue (issue 10) ---------------------------------

    def console(self, server_id: str) -> str:
        return self.openstack("console", "log", "show", server_id,
                              parse=False).stdout

    def wait_server(self, server_id: str, status: str) -> dict:
        deadline = time.monotonic() + CLI_TIMEOUT
        while True:
            shown = self.openstack("server", "show", server_id)
            if shown["status"] == status and \
                    not shown.get("OS-EXT-STS:task_state"):
                return shown
            if shown["status"] == "ERROR" or time.monotonic() > deadline:
                self.fail(f"{server_id} did not reach {status}: {shown}")
            time.sleep(1.0)

    def console_count(self, server_id: str, text: str, count: int) -> str:
        """The console once ``text`` appears ``count`` times on it."""
        deadline = time.monotonic() + CONSOLE_TIMEOUT
        while True:
            output = self.console(server_id)
            if output.count(text) >= count or time.monotonic() > deadline:
                return output
            time.sleep(1.0)

    def test_rebuild_then_rescue_and_unrescue(self):
        server = self.boot()
        server_id = server["id"]
        self.check_running_guest(server)
        fixed_ip = self.fixed_ip
        second = self.register_guest(SECOND_CMDLINE)

        # rebuild: the new image boots, same uuid and fixed IP
        self.openstack("server", "rebuild", "--image", second["id"],
                       "--wait", server_id, parse=False)
        shown = self.wait_server(server_id, "ACTIVE")
        self.assertEqual(shown["id"], server_id)
        self.assertIn(second["id"], str(shown["image"]))
        output = self.console_count(server_id, guest.DONE, 2)
        self.assertEqual(output.count(guest.DONE), 2, output[-3000:])
        rebuilt = output[output.index(guest.DONE) + len(guest.DONE):]
        self.assertIn(SECOND_IMAGE_MARKER, rebuilt, rebuilt[-3000:])
        self.assertIn(f"guest-uuid: {server_id}", rebuilt)
        self.assertIn(f"guest-ip: {fixed_ip}", rebuilt, rebuilt[-3000:])
        self.assertIn(fixed_ip, str(shown["addresses"]))

        # rebuild back to an image of its own (quiet), then rescue with
        # the second image: it boots, the server's disk is its vdb
        first = self.register_guest()
        self.openstack("server", "rebuild", "--image", first["id"],
                       "--wait", server_id, parse=False)
        self.wait_server(server_id, "ACTIVE")
        self.console_count(server_id, guest.DONE, 3)
        self.openstack("server", "rescue", "--image", second["id"],
                       server_id, parse=False)
        self.wait_server(server_id, "RESCUE")
        output = self.console_count(server_id, guest.DONE, 4)
        self.assertEqual(output.count(guest.DONE), 4, output[-3000:])
        rescued = output[output.rindex(guest.DONE, 0,
                                       output.rindex(guest.DONE)):]
        self.assertIn(SECOND_IMAGE_MARKER, rescued, rescued[-3000:])
        self.assertIn("[vdb]", rescued, rescued[-3000:])
        self.assertIn(f"guest-uuid: {server_id}", rescued)

        # unrescue: the server's own disk and image again, no vdb
        self.openstack("server", "unrescue", server_id, parse=False)
        self.wait_server(server_id, "ACTIVE")
        output = self.console_count(server_id, guest.DONE, 5)
        self.assertEqual(output.count(guest.DONE), 5, output[-3000:])
        again = output[output.rindex(guest.DONE, 0,
                                     output.rindex(guest.DONE)):]
        self.assertNotIn(SECOND_IMAGE_MARKER, again, again[-3000:])
        self.assertNotIn("[vdb]", again)
        self.check_deleted(server_id)


# --- moves (issue 9) ----------------------------------------------------------

#: The second libvirtd of ``tools/second-libvirtd`` (live migration).
SECOND_LIBVIRTD = os.path.join(os.path.dirname(__file__), os.pardir,
                               os.pardir, "tools", "second-libvirtd")


def guest_sections(output: str) -> list[dict[str, str]]:
    """What each boot of the guest printed (``guest-*: value`` lines), a
    dict per boot, oldest first."""
    sections = []
    for part in output.replace("\r\n", "\n").split("guest-product: ")[1:]:
        values = dict(re.findall(r"^(guest-[a-z-]+): (.*)$", part,
                                 re.MULTILINE))
        sections.append(values)
    return sections


class RealGuestMoveTests(DeploymentTestCase):
    """Resize (confirm and revert) and cold migration of a real guest
    between two agents that share the system libvirtd (each with its
    own ``images_path``), then a live migration to a third agent on a
    second libvirtd (``tools/second-libvirtd``): the guest shows the new
    flavor's memory and vCPUs, its uuid, its fixed IP and what it wrote
    to its disk, and still runs after the live migration.  One server,
    one test method: a TCG boot costs seconds."""

    cli_timeout = CLI_TIMEOUT
    openstack = OpenStackCLIMixin.openstack
    require_guest = RealGuestCLITests.require_guest
    register_guest = RealGuestCLITests.register_guest
    console_until = RealGuestCLITests.console_until
    console = RealGuestCLITests.console
    console_count = RealGuestCLITests.console_count
    wait_server = RealGuestCLITests.wait_server

    def setUp(self):
        super().setUp()
        self.require_guest()
        self.bridge, self.bridge_address = active_network()
        self.deleted: set[str] = set()
        self.paths = {}
        for name in ("lvA", "lvB", "lvC"):
            path = tempfile.mkdtemp(prefix=f"tc-it-{name}-")
            os.chmod(path, 0o755)
            self.addCleanup(shutil.rmtree, path, True)
            self.paths[name] = path

    def second_libvirtd(self) -> str:
        """Start the second libvirtd unless it runs; its URI."""
        status = run_command([SECOND_LIBVIRTD, "status"], timeout=30)
        if status.returncode != 0:
            done = run_command([SECOND_LIBVIRTD, "start"], timeout=120)
            if done.returncode != 0:
                message = (f"tools/second-libvirtd start failed:\n"
                           f"{done.stdout}{done.stderr}")
                if demanded("libvirtd"):
                    raise AssertionError(message)
                raise SkipTest(message)
            self.addCleanup(run_command, [SECOND_LIBVIRTD, "stop"],
                            timeout=60)
        return run_command([SECOND_LIBVIRTD, "uri"],
                           timeout=10).stdout.strip()

    def start_deployment(self):
        deployment = self.deployment(options={
            "DEFAULT": {"report_interval": 1, "periodic_fuzzy_delay": 0,
                        "update_resources_interval": 1,
                        "compute_driver": "libvirt"},
            "scheduler": {"host_state_refresh_interval": 0},
            "libvirt": {"virt_type": "qemu", "connection_uri": URI,
                        "remote_filesystem_transport": "local"}})
        self.deployment_ = deployment
        hosts = {name: deployment.host_name(name) for name in self.paths}
        self.hosts = hosts
        images = ",".join(f"{hosts[n]}={p}" for n, p in self.paths.items())
        self.second_uri = self.second_libvirtd()
        api = deployment.add("compute-api", "api")
        api.prepare()  # its ports, for the agents' [glance] api_servers
        self.proc = api
        started = [api,
                   deployment.add("compute-conductor", "cond1"),
                   deployment.add("compute-scheduler", "sched1")]
        self.agent_options = {}
        for name in self.paths:
            self.agent_options[name] = {
                "glance": {"api_servers": api.url("image")},
                "libvirt": {
                    "images_path": self.paths[name],
                    "host_images_paths": images,
                    "host_live_migration_uris":
                        f"{hosts['lvC']}={self.second_uri}",
                    "host_live_migration_addrs": f"{hosts['lvC']}=127.0.0.1",
                    **({"connection_uri": self.second_uri}
                       if name == "lvC" else {})}}
        for name in ("lvA", "lvB"):
            started.append(deployment.add("compute-agent", name,
                                          self.agent_options[name]))
        for proc in started:
            proc.start(wait=False)
        for proc in started:
            proc.wait_ready(60)
        self.clouds = os.path.join(api.directory, "clouds.yaml")
        with open(self.clouds, "w", encoding="utf-8") as handle:
            handle.write(clouds_yaml(api))
        deployment.wait_nodes(2)

    def flavor(self, ram: int, vcpus: int, disk: int) -> dict:
        return self.openstack("flavor", "create", "--ram", str(ram),
                              "--disk", str(disk), "--vcpus", str(vcpus),
                              "mv-" + uuid.uuid4().hex[:6])

    def last_boot(self, server_id: str, flavor: dict) -> dict[str, str]:
        """What the guest's latest boot printed, once it shows
        ``flavor``'s vCPUs and memory (the console log is the current
        guest's: each start of a guest with a file console truncates
        it)."""
        deadline = time.monotonic() + CONSOLE_TIMEOUT
        while True:
            output = self.console(server_id)
            sections = guest_sections(output)
            last = output.rsplit("guest-product: ", 1)[-1]
            if sections and guest.DONE in last and \
                    self._shows(sections[-1], flavor):
                return sections[-1]
            if time.monotonic() > deadline:
                self.fail(f"the guest never showed {flavor['vcpus']} vCPUs "
                          f"and {flavor['ram']} MB:\n{output[-3000:]}")
            time.sleep(1.0)

    @staticmethod
    def _shows(boot: dict[str, str], flavor: dict) -> bool:
        try:
            memtotal_mb = int(boot["guest-memtotal-kb"]) // 1024
        except (KeyError, ValueError):
            return False
        # the kernel keeps some memory for itself
        return boot.get("guest-vcpus") == str(flavor["vcpus"]) and \
            flavor["ram"] - 100 < memtotal_mb <= flavor["ram"]

    def host_of(self, server_id: str) -> str:
        return self.openstack("server", "show", server_id)[
            "OS-EXT-SRV-ATTR:host"]

    def check_boot(self, boot, server_id, flavor, marker, fixed_ip):
        self.assertEqual(boot.get("guest-uuid"), server_id, boot)
        self.assertTrue(self._shows(boot, flavor), (boot, flavor))
        self.assertEqual(boot.get("guest-disk"), f"TCMARK:{marker}", boot)
        self.assertEqual(boot.get("guest-ip"), fixed_ip, boot)

    def test_resize_confirm_revert_then_live_migration(self):
        import libvirt
        self.start_deployment()
        small = self.flavor(256, 1, 1)
        big = self.flavor(384, 2, 2)
        bigger = self.flavor(448, 1, 2)
        marker = "m" + uuid.uuid4().hex[:10]
        image = self.register_guest(f"{GUEST_CMDLINE} "
                                    f"tc_disk_marker={marker}")
        server = self.openstack(
            "server", "create", "--flavor", small["id"], "--image",
            image["id"], "--auto-network", "--wait",
            "mv-" + uuid.uuid4().hex[:6])
        server_id = server["id"]
        self.addCleanup(self._delete_quietly, server_id)
        self.assertEqual(server["status"], "ACTIVE", server)
        first = self.last_boot(server_id, small)
        self.assertEqual(first.get("guest-disk-written"), f"TCMARK:{marker}")
        fixed_ip = first["guest-ip"]
        self.check_boot(first, server_id, small, marker, fixed_ip)
        source = self.host_of(server_id)

        # resize (to the other agent: two agents, no resize to the same
        # host), confirm
        self.openstack("server", "resize", "--flavor", big["id"], "--wait",
                       server_id, parse=False)
        self.wait_server(server_id, "VERIFY_RESIZE")
        self.openstack("server", "resize", "confirm", server_id,
                       parse=False)
        shown = self.wait_server(server_id, "ACTIVE")
        moved_to = shown["OS-EXT-SRV-ATTR:host"]
        self.assertNotEqual(moved_to, source)
        second = self.last_boot(server_id, big)
        self.assertNotIn("guest-disk-written", second)
        self.check_boot(second, server_id, big, marker, fixed_ip)
        self.assertIn(fixed_ip, str(shown["addresses"]))
        name = {v: k for k, v in self.hosts.items()}
        self.assertFalse(os.path.exists(os.path.join(
            self.paths[name[source]], server_id)))
        self.assertFalse(os.path.exists(os.path.join(
            self.paths[name[source]], server_id + "_resize")))

        # resize again, revert: back with the big flavor
        self.openstack("server", "resize", "--flavor", bigger["id"],
                       "--wait", server_id, parse=False)
        self.wait_server(server_id, "VERIFY_RESIZE")
        self.check_boot(self.last_boot(server_id, bigger), server_id, bigger,
                        marker, fixed_ip)
        self.openstack("server", "resize", "revert", server_id,
                       parse=False)
        shown = self.wait_server(server_id, "ACTIVE")
        self.assertEqual(shown["OS-EXT-SRV-ATTR:host"], moved_to)
        self.assertIn(big["name"], str(shown["flavor"]))
        reverted = self.last_boot(server_id, big)
        self.check_boot(reverted, server_id, big, marker, fixed_ip)

        # live migration to an agent on the second libvirtd
        third = self.deployment_.start("compute-agent", "lvC",
                                       self.agent_options["lvC"])
        self.assertEqual(third.host, self.hosts["lvC"])
        self.deployment_.wait_nodes(3)
        ticks = self.console(server_id).count(guest.SERIAL_MARKER)
        self.openstack("--os-compute-api-version", "2.30", "server",
                       "migrate", "--live-migration", "--host",
                       self.hosts["lvC"], "--wait", server_id, parse=False)
        shown = self.wait_server(server_id, "ACTIVE")
        self.assertEqual(shown["OS-EXT-SRV-ATTR:host"], self.hosts["lvC"])
        self.assertIsNone(libvirt_domain(server_id))
        conn = libvirt.open(self.second_uri)
        try:
            domain = conn.lookupByUUIDString(server_id)
            self.assertEqual(domain.state()[0], libvirt.VIR_DOMAIN_RUNNING)
        finally:
            conn.close()
        # still running: its serial marker goes on on the destination
        time.sleep(4.5)
        self.assertGreater(self.console(server_id).count(
            guest.SERIAL_MARKER), ticks)
        self.assertIn(fixed_ip, str(shown["addresses"]))
        # the source's files are gone; the guest's backing image is in the
        # destination's own cache
        for leftover in (server_id, server_id + "_resize"):
            self.assertFalse(os.path.exists(os.path.join(
                self.paths[name[moved_to]], leftover)))
        self.assertTrue(os.listdir(os.path.join(self.paths["lvC"],
                                                "_base")))
        self.openstack("server", "delete", "--wait", server_id, parse=False)
        self.deleted.add(server_id)

    def _delete_quietly(self, server_id: str) -> None:
        """Cleanup after a failure: delete the server, and its domain on
        either libvirtd if the agents could not."""
        if server_id in self.deleted:
            return
        self.openstack("server", "delete", "--wait", server_id,
                       parse=False, check=False)
        import libvirt
        for uri in (URI, getattr(self, "second_uri", None)):
            if not uri:
                continue
            try:
                conn = libvirt.open(uri)
            except libvirt.libvirtError:
                continue
            try:
                dom = conn.lookupByUUIDString(server_id)
                if dom.isActive():
                    dom.destroy()
                dom.undefine()
            except libvirt.libvirtError:
                pass
            finally:
                conn.close()
