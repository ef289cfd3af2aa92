"""The libvirt driver on libvirt's own test:///default hypervisor: the
fake driver's lifecycle, with the domains checked through libvirt."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET

from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from tests.virt.libvirt.base import LibvirtFixture, make_instance
from twisted_compute import exception
from twisted_compute.virt import power_state
from twisted_compute.virt.driver import HARD, SOFT, IComputeDriver, \
    InstanceInfo, load_driver
from twisted_compute.virt.libvirt import config as vconfig


class LibvirtDriverTests(LibvirtFixture, SynchronousTestCase):

    def setUp(self):
        self.setUpDriver()
        self.successResultOf(self.driver.init_host(self.host_name))

    def state(self, instance) -> int:
        return self.successResultOf(self.driver.get_info(instance)).state

    def test_provides_the_interface(self):
        self.assertTrue(verifyObject(IComputeDriver, self.driver))

    def test_load_driver_by_name(self):
        from twisted_compute.virt.libvirt.driver import LibvirtDriver
        driver = load_driver(self.conf.with_overrides(
            DEFAULT={"compute_driver": "libvirt"}), self.reactor,
            host="h9")
        self.addCleanup(driver.cleanup)
        self.assertIsInstance(driver, LibvirtDriver)
        self.assertEqual(driver.uri, "test:///default")
        self.assertEqual(driver.images_path,
                         os.path.join(self.state_path, "instances"))

    def test_spawn_defines_and_starts_a_domain(self):
        instance, d = self.spawn(make_instance(vcpus=2, memory_mb=256))
        self.successResultOf(d)
        domain = self.domain(instance)
        self.assertIsNotNone(domain)
        self.assertTrue(domain.isActive())
        self.assertEqual(domain.name(),
                         "instance-%08x-%s" % (instance.id, instance.uuid))
        root = ET.fromstring(domain.XMLDesc(0))
        self.assertEqual(root.findtext("vcpu"), "2")
        self.assertEqual(int(root.findtext("memory")), 256 * 1024)
        entries = {e.get("name"): e.text
                   for e in root.findall("sysinfo/system/entry")}
        self.assertEqual(entries["product"], "OpenStack Nova")
        self.assertEqual(entries["serial"], instance.uuid)
        nic = root.find("devices/interface")
        self.assertEqual(nic.find("source").get("network"), "default")
        self.assertEqual(root.find("devices/serial/source").get("path"),
                         self.driver.console_path(instance.uuid))
        info = self.successResultOf(self.driver.get_info(instance))
        self.assertIsInstance(info, InstanceInfo)
        self.assertEqual(info.state, power_state.RUNNING)
        self.assertTrue(info.internal_id)
        self.assertEqual(
            self.successResultOf(self.driver.list_instance_uuids()),
            [instance.uuid])

    def test_fixed_ip_is_reserved_in_the_network(self):
        one, d1 = self.spawn()
        two, d2 = self.spawn()
        self.successResultOf(d1)
        self.successResultOf(d2)
        addresses = [self.successResultOf(
            self.driver.get_instance_addresses(i))["default"][0]
            for i in (one, two)]
        self.assertNotEqual(addresses[0]["addr"], addresses[1]["addr"])
        network = ET.fromstring(
            self.conn.networkLookupByName("default").XMLDesc(0))
        hosts = {h.get("mac"): h.get("ip")
                 for h in network.findall("ip/dhcp/host")}
        for instance, address in zip((one, two), addresses):
            self.assertEqual(address["version"], 4)
            self.assertEqual(address["OS-EXT-IPS:type"], "fixed")
            mac = address["OS-EXT-IPS-MAC:mac_addr"]
            self.assertEqual(hosts[mac], address["addr"])
            nic_mac = ET.fromstring(self.domain(instance).XMLDesc(0)).find(
                "devices/interface/mac").get("address")
            self.assertEqual(nic_mac, mac)
        self.successResultOf(self.driver.destroy(None, one, []))
        network = ET.fromstring(
            self.conn.networkLookupByName("default").XMLDesc(0))
        left = {h.get("mac") for h in network.findall("ip/dhcp/host")}
        self.assertNotIn(addresses[0]["OS-EXT-IPS-MAC:mac_addr"], left)
        self.assertIn(addresses[1]["OS-EXT-IPS-MAC:mac_addr"], left)
        self.assertEqual(
            self.successResultOf(self.driver.get_instance_addresses(one)),
            {})

    def test_spawn_twice_is_refused(self):
        instance, d = self.spawn()
        self.successResultOf(d)
        self.spawned.pop()  # the cleanup destroys it once
        _, again = self.spawn(instance)
        self.failureResultOf(again, exception.InstanceExists)

    def test_power_states_follow_actions(self):
        instance, d = self.spawn()
        self.successResultOf(d)
        driver = self.driver
        steps = [
            (lambda: driver.pause(instance), power_state.PAUSED, 3),
            (lambda: driver.unpause(instance), power_state.RUNNING, 1),
            (lambda: driver.suspend(None, instance),
             power_state.SUSPENDED, 5),
            (lambda: driver.resume(None, instance, []),
             power_state.RUNNING, 1),
            (lambda: driver.power_off(instance), power_state.SHUTDOWN, 5),
            (lambda: driver.power_on(None, instance, []),
             power_state.RUNNING, 1),
            (lambda: driver.reboot(None, instance, [], SOFT),
             power_state.RUNNING, 1),
            (lambda: driver.power_off(instance), power_state.SHUTDOWN, 5),
            (lambda: driver.reboot(None, instance, [], HARD),
             power_state.RUNNING, 1),
        ]
        for action, expected, libvirt_state in steps:
            self.successResultOf(action())
            self.assertEqual(self.state(instance), expected)
            # What libvirt itself says.
            self.assertEqual(self.domain(instance).state()[0],
                             libvirt_state)
        suspended = self.domain(instance)
        self.assertFalse(suspended.hasManagedSaveImage(0))

    def test_suspend_is_a_managed_save(self):
        instance, d = self.spawn()
        self.successResultOf(d)
        self.successResultOf(self.driver.suspend(None, instance))
        self.assertTrue(self.domain(instance).hasManagedSaveImage(0))
        self.assertFalse(self.domain(instance).isActive())

    def test_wrong_transitions_fail_like_the_fake(self):
        instance, d = self.spawn()
        self.successResultOf(d)
        for action in (lambda: self.driver.unpause(instance),
                       lambda: self.driver.resume(None, instance, []),
                       lambda: self.driver.power_on(None, instance, [])):
            failure = self.failureResultOf(
                action(), exception.InstancePowerStateTransitionError)
            self.assertIn("running", failure.getErrorMessage())
            self.assertEqual(self.state(instance), power_state.RUNNING)
        self.successResultOf(self.driver.power_off(instance))
        self.failureResultOf(self.driver.pause(instance),
                             exception.InstancePowerStateTransitionError)
        self.failureResultOf(
            self.driver.reboot(None, instance, [], SOFT),
            exception.InstancePowerStateTransitionError)
        self.assertEqual(self.state(instance), power_state.SHUTDOWN)
        self.successResultOf(self.driver.power_off(instance))

    def test_power_off_of_a_suspended_guest_drops_its_memory(self):
        instance, d = self.spawn()
        self.successResultOf(d)
        self.successResultOf(self.driver.suspend(None, instance))
        self.successResultOf(self.driver.power_off(instance))
        self.assertEqual(self.state(instance), power_state.SHUTDOWN)
        self.assertFalse(self.domain(instance).hasManagedSaveImage(0))

    def test_destroy_removes_domain_disks_and_console_log(self):
        instance, d = self.spawn()
        self.successResultOf(d)
        directory = self.driver.instance_dir(instance.uuid)
        self.assertTrue(os.path.exists(
            self.driver.console_path(instance.uuid)))
        with open(os.path.join(directory, "disk"), "wb") as handle:
            handle.write(b"qcow2 stand-in")
        self.successResultOf(self.driver.suspend(None, instance))
        self.successResultOf(self.driver.destroy(None, instance, []))
        self.assertIsNone(self.domain(instance))
        self.assertFalse(os.path.exists(directory))
        self.assertEqual(
            self.successResultOf(self.driver.list_instance_uuids()), [])
        self.failureResultOf(self.driver.get_info(instance),
                             exception.InstanceNotFound)
        # Again: a guest that is not there is not an error.
        self.successResultOf(self.driver.destroy(None, instance, []))

    def test_unknown_instance(self):
        instance = make_instance()
        self.failureResultOf(self.driver.get_info(instance),
                             exception.InstanceNotFound)
        self.failureResultOf(self.driver.pause(instance),
                             exception.InstanceNotFound)
        self.failureResultOf(
            self.driver.get_console_output(None, instance),
            exception.InstanceNotFound)

    def test_bad_reboot_type(self):
        instance, d = self.spawn()
        self.successResultOf(d)
        self.failureResultOf(
            self.driver.reboot(None, instance, [], "GENTLE"),
            exception.InvalidInput)

    def test_console_output_is_the_tail_of_the_log(self):
        from twisted_compute.virt.libvirt.driver import MAX_CONSOLE_BYTES
        instance, d = self.spawn()
        self.successResultOf(d)
        self.assertEqual(self.successResultOf(
            self.driver.get_console_output(None, instance)), b"")
        lines = [f"line {n} of {instance.uuid}\n".encode()
                 for n in range(5000)]
        with open(self.driver.console_path(instance.uuid), "wb") as handle:
            handle.writelines(lines)
        output = self.successResultOf(
            self.driver.get_console_output(None, instance))
        self.assertEqual(len(output), MAX_CONSOLE_BYTES)
        self.assertTrue(output.endswith(lines[-1]))

    def test_only_its_own_guests(self):
        """Other domains of the hypervisor (test:///default's own 'test'
        domain, another host's guests) are not this driver's: init_host
        reconciliation must never destroy them."""
        from twisted_compute.virt.libvirt.driver import LibvirtDriver
        from tests.base import SyncThreadPool
        other = LibvirtDriver(self.conf, self.reactor, host="otherhost",
                              pool=SyncThreadPool())
        self.addCleanup(other.cleanup)
        mine, d1 = self.spawn()
        theirs, d2 = self.spawn(driver=other)
        self.successResultOf(d1)
        self.successResultOf(d2)
        self.assertEqual(
            self.successResultOf(self.driver.list_instance_uuids()),
            [mine.uuid])
        self.assertEqual(
            self.successResultOf(other.list_instance_uuids()),
            [theirs.uuid])
        self.assertIsNotNone(self.conn.lookupByName("test"))

    def test_available_resource_from_libvirt(self):
        instance, d = self.spawn(make_instance(vcpus=3))
        self.successResultOf(d)
        res = self.successResultOf(
            self.driver.get_available_resource(self.host_name))
        info = self.conn.getInfo()
        self.assertEqual((res["vcpus"], res["memory_mb"]),
                         (info[2], info[1]))
        stat = os.statvfs(self.driver.images_path)
        self.assertEqual(res["local_gb"],
                         stat.f_frsize * stat.f_blocks // 1024 ** 3)
        self.assertGreaterEqual(res["vcpus_used"], 3)
        self.assertEqual(res["running_vms"], 1)
        self.assertEqual(res["hypervisor_hostname"], self.host_name)
        self.assertEqual(res["hypervisor_type"], self.conn.getType())
        self.assertIsInstance(res["hypervisor_version"], int)
        self.assertEqual(json.loads(res["cpu_info"])["topology"]["cores"],
                         info[6])
        # A local libvirtd: the host's own uptime line.
        self.assertRegex(res["uptime"], r"^ \d\d:\d\d:\d\d up .*load average")
        self.failureResultOf(self.driver.get_available_resource("other"),
                             exception.HypervisorNotFound)

    def test_spawn_failure_leaves_a_defined_guest_to_destroy(self):
        """A domain libvirt refuses to start (here: its network does not
        exist) fails the spawn; destroy cleans up."""
        driver = self.driver
        driver.network = "no-such-network"
        instance, d = self.spawn()
        self.failureResultOf(d, exception.ComputeException)
        self.successResultOf(driver.destroy(None, instance, []))
        self.assertIsNone(self.domain(instance))

    def test_snapshot_of_an_unknown_guest(self):
        self.failureResultOf(
            self.driver.snapshot(None, make_instance(), "img", None, None),
            exception.InstanceNotFound)

    def test_domain_metadata_names_the_host(self):
        instance, d = self.spawn()
        self.successResultOf(d)
        text = self.domain(instance).metadata(
            self.libvirt.VIR_DOMAIN_METADATA_ELEMENT, vconfig.NAMESPACE, 0)
        # libvirt hands the element back without its namespace prefix.
        self.assertEqual(ET.fromstring(text).findtext("host"),
                         self.host_name)


class ConnectionTests(LibvirtFixture, SynchronousTestCase):

    def setUp(self):
        self.setUpDriver()

    def test_libvirt_calls_run_in_the_pool_with_one_connection(self):
        host = self.driver._host
        self.successResultOf(self.driver.init_host(self.host_name))
        self.successResultOf(self.driver.list_instance_uuids())
        self.assertEqual(host.connections_opened, 1)

    def test_reconnects_when_the_connection_died(self):
        """As after a libvirtd restart: the dead connection is replaced
        by a new one on the next call."""
        host = self.driver._host
        self.successResultOf(self.driver.list_instance_uuids())
        host._conn.close()
        instance, d = self.spawn()
        self.successResultOf(d)
        self.assertEqual(host.connections_opened, 2)
        self.assertIsNotNone(self.domain(instance))

    def test_a_failing_call_on_a_lost_connection_is_retried(self):
        from twisted_compute.virt.libvirt import host as host_mod
        host = self.driver._host
        calls = []

        def flaky(conn):
            calls.append(conn)
            if len(calls) == 1:
                error = self.libvirt.libvirtError("connection lost")
                error.err = (self.libvirt.VIR_ERR_SYSTEM_ERROR,
                             self.libvirt.VIR_FROM_RPC, "lost", 2, None,
                             None, None, -1, -1)
                self.assertTrue(host_mod.is_connection_error(error))
                raise error
            return "ok"

        self.assertEqual(self.successResultOf(host.run(flaky)), "ok")
        self.assertEqual(len(calls), 2)
        self.assertIsNot(calls[0], calls[1])

    def test_other_errors_are_not_retried(self):
        host = self.driver._host
        calls = []

        def refused(conn):
            calls.append(conn)
            return conn.lookupByName("no-such-domain")

        self.failureResultOf(host.run(refused), self.libvirt.libvirtError)
        self.assertEqual(len(calls), 1)

    def test_unreachable_hypervisor(self):
        from twisted_compute.virt.libvirt.driver import LibvirtDriver
        from tests.base import SyncThreadPool
        conf = self.conf.with_overrides(libvirt={
            "virt_type": "qemu",
            "connection_uri": "qemu+unix:///system?socket=/nonexistent"})
        driver = LibvirtDriver(conf, self.reactor, host="x",
                               pool=SyncThreadPool())
        self.addCleanup(driver.cleanup)
        self.failureResultOf(driver.init_host("x"),
                             exception.HypervisorUnavailable)


class LibvirtConsoleTests(LibvirtFixture, SynchronousTestCase):
    """TCP serial consoles (with the log kept) on test:///default."""

    def setUp(self):
        self.setUpDriver()
        self.driver.conf = self.conf.with_overrides(serial_console={
            "enabled": True, "port_range": "10700:10702",
            "proxyclient_address": "127.0.0.1"})
        self.successResultOf(self.driver.init_host(self.host_name))

    def test_serial_ports_do_not_clash_and_keep_the_log(self):
        import socket
        busy = socket.socket()
        self.addCleanup(busy.close)
        busy.bind(("127.0.0.1", 10700))  # held by something else
        one, d1 = self.spawn()
        self.successResultOf(d1)
        two, d2 = self.spawn()
        self.successResultOf(d2)
        ports = []
        for instance in (one, two):
            info = self.successResultOf(self.driver.get_console(
                None, instance, "serial"))
            self.assertEqual(info.host, "127.0.0.1")
            ports.append(info.port)
            serial = ET.fromstring(self.domain(instance).XMLDesc(0)).find(
                "devices/serial")
            self.assertEqual(serial.get("type"), "tcp")
            self.assertEqual(serial.find("log").get("file"),
                             self.driver.console_path(instance.uuid))
        self.assertEqual(ports, [10701, 10702])
        three, d3 = self.spawn()
        self.failureResultOf(d3, exception.ConsolePortRangeExhausted)
        # no VNC device on the test hypervisor
        self.failureResultOf(self.driver.get_console(None, one, "novnc"),
                             exception.ConsoleTypeUnavailable)
        self.failureResultOf(self.driver.get_console(None, one, "webmks"),
                             exception.ConsoleNotSupported)
