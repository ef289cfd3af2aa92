"""The libvirt agent's start checks: against stand-ins (an old libvirt,
a missing or stopped network, a directory the qemu user cannot search)
and against libvirt's own test:///default hypervisor; a failed check
stops the agent's role with the one line."""

from __future__ import annotations

import os
import shutil
import tempfile
import types
import uuid

from twisted.trial.unittest import SynchronousTestCase

from tests.base import SyncReactor
from tests.virt.libvirt.base import libvirt_conf, require_libvirt
from twisted_compute.virt.libvirt import checks


class FakeLibvirtError(Exception):
    pass


FAKE_LIBVIRT = types.SimpleNamespace(libvirtError=FakeLibvirtError)


class FakeNetwork:
    def __init__(self, active):
        self.active = active

    def isActive(self):
        return self.active


class FakeConn:
    """A stand-in libvirt connection: a version and some networks."""

    def __init__(self, version=9000000, networks=None):
        self.version = version
        self.networks = {"default": True} if networks is None else networks

    def getLibVersion(self):
        return self.version

    def networkLookupByName(self, name):
        if name not in self.networks:
            raise FakeLibvirtError(f"Network not found: {name}")
        return FakeNetwork(self.networks[name])


def run(conn, **kw):
    options = dict(uri="qemu:///system", network="default",
                   images_path="/", virt_type="qemu",
                   libvirt_module=FAKE_LIBVIRT, user_of_qemu=lambda: None)
    options.update(kw)
    checks.run_checks(conn, **options)


class StandInTests(SynchronousTestCase):
    def test_all_well(self):
        run(FakeConn())

    def test_old_libvirt(self):
        error = self.assertRaises(checks.StartCheckFailed, run,
                                  FakeConn(version=6010000))
        self.assertIn("libvirt 6.10.0 is older than 7.0.0", str(error))
        self.assertIn("[libvirt] connection_uri", str(error))

    def test_stopped_network_names_net_start(self):
        error = self.assertRaises(checks.StartCheckFailed, run,
                                  FakeConn(networks={"default": False}))
        self.assertIn("virsh -c qemu:///system net-start default",
                      str(error))
        self.assertIn("[libvirt] network", str(error))
        self.assertNotIn("\n", str(error))

    def test_missing_network(self):
        error = self.assertRaises(checks.StartCheckFailed, run, FakeConn(),
                                  network="guests")
        self.assertIn("'guests' is not defined", str(error))

    def test_version_tuple(self):
        self.assertEqual(checks.version_tuple(9000000), (9, 0, 0))
        self.assertEqual(checks.version_tuple(7010002), (7, 10, 2))


class ImagesPathTests(SynchronousTestCase):
    """A real directory tree; ``nobody`` stands for the qemu user."""

    def setUp(self):
        self.top = tempfile.mkdtemp(prefix="tc-checks-")
        os.chmod(self.top, 0o755)
        self.addCleanup(shutil.rmtree, self.top, True)
        self.images = os.path.join(self.top, "home", "state", "instances")
        os.makedirs(self.images)

    def test_blocked_directory_is_named(self):
        if os.getuid() != 0:
            self.skipTest("needs root to own the directories")
        home = os.path.join(self.top, "home")
        os.chmod(home, 0o700)
        error = self.assertRaises(checks.StartCheckFailed,
                                  checks.check_images_path, self.images,
                                  "nobody")
        self.assertIn(f"{home} has mode 0700", str(error))
        self.assertIn(f"chmod o+x {home}", str(error))
        self.assertIn("[libvirt] images_path", str(error))
        os.chmod(home, 0o711)
        checks.check_images_path(self.images, "nobody")

    def test_owner_and_group_bits(self):
        def stat_of(owner_uid, gid, mode):
            return lambda path: types.SimpleNamespace(
                st_uid=owner_uid, st_gid=gid, st_mode=0o040000 | mode)
        self.assertIsNone(checks.blocking_directory(
            "/a/b", 5, {7}, stat_of(5, 0, 0o700)))
        self.assertIsNone(checks.blocking_directory(
            "/a/b", 5, {7}, stat_of(0, 7, 0o710)))
        self.assertEqual(checks.blocking_directory(
            "/a/b", 5, {8}, stat_of(0, 7, 0o710)), ("/", 0o710))
        self.assertIsNone(checks.blocking_directory(
            "/a/b", 0, set(), stat_of(1, 1, 0)))

    def test_unknown_user_is_not_checked(self):
        checks.check_images_path("/nonexistent", None)
        checks.check_images_path("/nonexistent", "no-such-user-" + "x" * 8)

    def test_qemu_user_from_qemu_conf(self):
        conf = os.path.join(self.top, "qemu.conf")
        with open(conf, "w") as handle:
            handle.write('#user = "root"\nuser = "+64055"\n')
        self.assertEqual(checks.qemu_user(conf), "64055")


class RealLibvirtTests(SynchronousTestCase):
    """libvirt's test:///default: its ``default`` network is active; one
    defined here and not started is refused with ``net-start``."""

    def setUp(self):
        require_libvirt()
        import libvirt
        self.libvirt = libvirt
        self.conn = libvirt.open("test:///default")
        self.addCleanup(self.conn.close)

    def test_active_network_passes(self):
        checks.run_checks(self.conn, uri="test:///default",
                          network="default", images_path="/",
                          virt_type="test", libvirt_module=self.libvirt)

    def test_inactive_network(self):
        name = "tc-" + uuid.uuid4().hex[:8]
        net = self.conn.networkDefineXML(
            f"<network><name>{name}</name><bridge name='virbr-{name[3:9]}'/>"
            f"</network>")
        self.addCleanup(net.undefine)
        self.assertFalse(net.isActive())
        error = self.assertRaises(
            checks.StartCheckFailed, checks.run_checks, self.conn,
            uri="test:///default", network=name, images_path="/",
            virt_type="test", libvirt_module=self.libvirt)
        self.assertIn(f"virsh -c test:///default net-start {name}",
                      str(error))
        net.create()
        self.addCleanup(net.destroy)
        checks.run_checks(self.conn, uri="test:///default", network=name,
                          images_path="/", virt_type="test",
                          libvirt_module=self.libvirt)

    def test_agent_role_exits_naming_the_option(self):
        from twisted_compute.compute.tap import agent_role
        state = tempfile.mkdtemp(prefix="tc-checks-")
        self.addCleanup(shutil.rmtree, state, True)
        conf = libvirt_conf(state, network="no-such-network").with_overrides(
            DEFAULT={"compute_driver": "libvirt"})
        error = self.assertRaises(SystemExit, agent_role, conf,
                                  SyncReactor(), transport=None)
        self.assertIn("[libvirt] network 'no-such-network' is not defined",
                      str(error))
        self.assertTrue(str(error).startswith("twisted-compute: "))


class SystemLibvirtTests(SynchronousTestCase):
    """qemu:///system, where libvirtd runs: a network it does not have."""

    def setUp(self):
        require_libvirt()
        import libvirt

        from tests.base import require_service
        from twisted_compute.virt.libvirt.host import _quiet_error_handler
        libvirt.registerErrorHandler(_quiet_error_handler, None)

        def reachable():
            try:
                libvirt.open("qemu:///system").close()
                return True
            except libvirt.libvirtError:
                return False
        require_service("libvirtd", host="qemu:///system", check=reachable)
        self.libvirt = libvirt

    def test_unknown_network_on_the_system_libvirtd(self):
        from twisted_compute.virt.libvirt.driver import LibvirtDriver
        state = tempfile.mkdtemp(prefix="tc-checks-")
        os.chmod(state, 0o755)
        self.addCleanup(shutil.rmtree, state, True)
        conf = libvirt_conf(state, virt_type="qemu",
                            connection_uri="qemu:///system",
                            network="tc-no-such-" + uuid.uuid4().hex[:6])
        driver = LibvirtDriver(conf, SyncReactor(), host="chk")
        error = self.assertRaises(checks.StartCheckFailed, driver.check_host)
        self.assertIn("is not defined on qemu:///system", str(error))
