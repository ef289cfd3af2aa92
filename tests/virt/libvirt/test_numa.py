"""A guest's NUMA topology from its domain XML: the parser, the libvirt
driver on test:///default, the agent recording it after spawn, and
``GET /servers/{id}/topology`` showing it."""

from __future__ import annotations

import uuid

from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase

from tests.api.test_servers_base import ServersTestCase
from tests.compute.test_manager import ManagerTestCase, make_instance
from tests.virt.libvirt.base import LibvirtFixture
from twisted_compute.virt.libvirt.numa import (
    numa_topology_from_xml, parse_cpuset)

NUMA_XML = """<domain type='test'><name>{name}</name><uuid>{uuid}</uuid>
<memory unit='KiB'>3145728</memory><vcpu>4</vcpu>
<memoryBacking><hugepages><page size='2' unit='MiB'/></hugepages>
</memoryBacking>
<cputune><vcpupin vcpu='0' cpuset='4'/><vcpupin vcpu='1' cpuset='5'/>
<vcpupin vcpu='2' cpuset='0-7'/></cputune>
<numatune><memnode cellid='0' mode='strict' nodeset='1'/></numatune>
<os><type>hvm</type></os>
<cpu><topology sockets='1' cores='2' threads='2'/><numa>
<cell id='0' cpus='0-1' memory='1048576' unit='KiB'/>
<cell id='1' cpus='2-3' memory='2' unit='GiB'/></numa></cpu></domain>"""

EXPECTED = {"nodes": [
    {"vcpu_set": [0, 1], "memory_mb": 1024, "siblings": [[0, 1]],
     "host_node": 1, "cpu_pinning": {"0": 4, "1": 5}},
    {"vcpu_set": [2, 3], "memory_mb": 2048, "siblings": [[2, 3]],
     "host_node": None, "cpu_pinning": {}}],
    "pagesize_kb": 2048}


class ParserTests(SynchronousTestCase):
    def test_cpuset(self):
        self.assertEqual(parse_cpuset("0-3,^2,6"), [0, 1, 3, 6])
        self.assertEqual(parse_cpuset(""), [])

    def test_numa_guest(self):
        self.assertEqual(numa_topology_from_xml(
            NUMA_XML.format(name="n", uuid=uuid.uuid4())), EXPECTED)

    def test_guest_without_numa(self):
        self.assertIsNone(numa_topology_from_xml(
            "<domain><vcpu>2</vcpu><cpu mode='host-model'/></domain>"))


class LibvirtTopologyTests(LibvirtFixture, SynchronousTestCase):
    def setUp(self):
        self.setUpDriver()

    def test_from_the_domain(self):
        domain_uuid = str(uuid.uuid4())
        domain = self.conn.defineXML(NUMA_XML.format(
            name="numa-" + domain_uuid[:8], uuid=domain_uuid))
        self.addCleanup(domain.undefine)
        self.assertEqual(self.successResultOf(
            self.driver.get_instance_numa_topology(
                make_instance(uuid=domain_uuid))), EXPECTED)

    def test_spawned_guest_has_none(self):
        instance, d = self.spawn()
        self.successResultOf(d)
        self.assertIsNone(self.successResultOf(
            self.driver.get_instance_numa_topology(instance)))


class AgentRecordsTopologyTests(ManagerTestCase):
    def test_recorded_after_spawn(self):
        self.driver.get_instance_numa_topology = \
            lambda instance: defer.succeed(EXPECTED)
        instance = self.active(system_metadata={"kept": "1"})
        self.assertEqual(self.db(instance)["system_metadata"], {
            "kept": "1", "numa_topology": EXPECTED})


class TopologyAPITests(ServersTestCase):
    def test_shown_and_host_fields_for_admins(self):
        server_id = self.create_server()
        self.set_state(server_id, system_metadata={
            "numa_topology": EXPECTED})
        path = f"/v2.1/servers/{server_id}/topology"
        self.assertEqual(self.get(path, version="2.78").json, EXPECTED)
        mine = self.get(path, token="user:project", version="2.78").json
        self.assertEqual(mine["pagesize_kb"], 2048)
        self.assertEqual(mine["nodes"][0], {
            "vcpu_set": [0, 1], "memory_mb": 1024, "siblings": [[0, 1]]})
