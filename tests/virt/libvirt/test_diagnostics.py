"""The libvirt driver's diagnostics, read from libvirt's test:///default
hypervisor (its domains have real counters there)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from twisted.trial.unittest import SynchronousTestCase

from tests.virt.libvirt.base import LibvirtFixture, make_instance
from twisted_compute import exception


class LibvirtDiagnosticsTests(LibvirtFixture, SynchronousTestCase):
    def setUp(self):
        self.setUpDriver()
        self.successResultOf(self.driver.init_host(self.host_name))

    def test_counters_of_a_running_guest(self):
        instance, d = self.spawn(make_instance(vcpus=2, memory_mb=256))
        self.successResultOf(d)
        result = self.successResultOf(
            self.driver.get_instance_diagnostics(instance))
        domain = self.conn.lookupByUUIDString(instance.uuid)
        tree = ET.fromstring(domain.XMLDesc(0))
        self.assertEqual((result.state, result.driver, result.hypervisor),
                         ("running", "libvirt", "test"))
        self.assertEqual([c.id for c in result.cpu_details], [0, 1])
        self.assertTrue(all(c.time is not None and c.time >= 0
                            for c in result.cpu_details))
        disks = [t.get("dev") for t in tree.findall("devices/disk/target")]
        self.assertEqual([k.name for k in result.disk_details], disks)
        self.assertTrue(all(k.read_bytes is not None
                            for k in result.disk_details))
        macs = [m.get("address") for m in
                tree.findall("devices/interface/mac")]
        self.assertEqual([n.mac_address for n in result.nic_details], macs)
        self.assertEqual(result.memory_maximum, 256)
        self.assertEqual(result.memory_stats["maximum"], 256 * 1024)

    def test_unknown_guest(self):
        self.failureResultOf(self.driver.get_instance_diagnostics(
            make_instance()), exception.InstanceNotFound)
