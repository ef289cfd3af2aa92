"""Many agents in one process: their heartbeats and resource reports go
as one RPC per interval (:mod:`twisted_compute.compute.fleet`), and a
conductor older than 1.4 gets one call per agent."""

from __future__ import annotations

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from tests.base import make_conf
from tests.compute.test_manager import FakeConductor, make_instance
from twisted_compute.compute.fleet import FleetReporter
from twisted_compute.compute.manager import ComputeManager
from twisted_compute.compute.tap import agent_hosts, agent_services
from twisted_compute.objects import vm_states
from twisted_compute.objects.instance import Instance
from twisted_compute.rpc import errors
from twisted_compute.rpc.local import LocalTransport
from twisted_compute.virt import power_state
from twisted_compute.virt.fake import FakeDriver

HOSTS = ["fleet-fake-1", "fleet-fake-2", "fleet-fake-3"]


class BatchingConductor(FakeConductor):
    """A 1.4 conductor: the batched reports as well."""

    def service_heartbeat(self, context, host, binary, topic):
        return self._record("service_heartbeat", host=host)

    def service_heartbeats(self, context, hosts, binary, topic):
        return self._record("service_heartbeats", hosts=list(hosts),
                            binary=binary, topic=topic)

    def instances_on_hosts(self, context, hosts):
        self.calls.append(("instances_on_hosts", dict(hosts=list(hosts))))
        return defer.succeed({
            host: [Instance.from_dict(v) for v in self.instances.values()
                   if v.get("host") == host and not v.get("deleted")]
            for host in hosts})

    def compute_nodes_update(self, context, nodes):
        self.calls.append(("compute_nodes_update", dict(nodes=nodes)))
        self.nodes.extend(nodes)
        return defer.succeed(len(nodes))


class OldConductor(BatchingConductor):
    """A 1.3 conductor: the batched methods are unknown to it."""

    def service_heartbeats(self, context, hosts, binary, topic):
        self.calls.append(("service_heartbeats", {}))
        return defer.fail(errors.NoSuchMethod(method="service_heartbeats"))

    def instances_on_hosts(self, context, hosts):
        self.calls.append(("instances_on_hosts", {}))
        return defer.fail(errors.NoSuchMethod(method="instances_on_hosts"))


class FleetReporterTests(SynchronousTestCase):

    def setUp(self):
        self.clock = Clock()
        self.conf = make_conf(self.mktemp(), DEFAULT={
            "report_interval": 10, "update_resources_interval": 60})

    def fleet(self, conductor) -> FleetReporter:
        self.conductor = conductor
        self.managers = [
            ComputeManager(self.conf, host,
                           FakeDriver(self.conf, self.clock, host=host),
                           conductor, self.clock)
            for host in HOSTS]
        reporter = FleetReporter(self.conf, self.clock, conductor,
                                 self.managers)
        reporter.startService()
        self.addCleanup(reporter.stopService)
        return reporter

    def test_one_heartbeat_call_per_interval_for_all_agents(self):
        conductor = BatchingConductor()
        self.fleet(conductor)
        self.assertEqual(conductor.named("service_heartbeats"),
                         [{"hosts": HOSTS, "binary": "nova-compute",
                           "topic": "compute"}])
        self.clock.advance(10)
        self.clock.advance(10)
        self.assertEqual(len(conductor.named("service_heartbeats")), 3)
        self.assertEqual(conductor.named("service_heartbeat"), [])

    def test_one_resource_report_per_interval_for_all_agents(self):
        conductor = BatchingConductor()
        conductor.add(make_instance(host=HOSTS[1], vm_state=vm_states.ACTIVE,
                                    task_state=None, vcpus=2,
                                    memory_mb=1024))
        self.fleet(conductor)
        self.assertEqual(conductor.named("compute_nodes_update"), [])
        self.clock.advance(60)
        self.assertEqual(conductor.named("instances_on_hosts"),
                         [{"hosts": HOSTS}])
        [report] = conductor.named("compute_nodes_update")
        nodes = {node["host"]: node for node in report["nodes"]}
        self.assertEqual(sorted(nodes), HOSTS)
        self.assertEqual(nodes[HOSTS[1]]["vcpus_used"], 2)
        self.assertEqual(nodes[HOSTS[1]]["memory_mb_used"], 1024)
        self.assertEqual(nodes[HOSTS[0]]["vcpus_used"], 0)
        self.assertEqual(conductor.named("instances_on_host"), [])
        self.assertEqual(conductor.named("compute_node_update"), [])

    def test_an_old_conductor_gets_one_call_per_agent(self):
        conductor = OldConductor()
        reporter = self.fleet(conductor)
        self.assertFalse(reporter.batched)
        self.assertEqual([c["host"] for c in
                          conductor.named("service_heartbeat")], HOSTS)
        for _ in range(6):
            self.clock.advance(10)
        self.assertEqual(len(conductor.named("service_heartbeats")), 1)
        self.assertEqual(len(conductor.named("instances_on_hosts")), 0)
        self.assertEqual(sorted(c["values"]["host"] for c in
                                conductor.named("compute_node_update")),
                         HOSTS)
        self.assertEqual(len(conductor.named("service_heartbeat")),
                         len(HOSTS) * 7)

    def test_a_failed_report_is_retried_next_interval(self):
        conductor = BatchingConductor()
        failing = [True]
        real = conductor.compute_nodes_update

        def flaky(context, nodes):
            if failing[0]:
                return defer.fail(errors.RemoteError("db down"))
            return real(context, nodes)
        conductor.compute_nodes_update = flaky
        reporter = self.fleet(conductor)
        self.clock.advance(60)
        self.assertEqual(conductor.nodes, [])
        failing[0] = False
        self.clock.advance(60)
        self.assertEqual(len(conductor.nodes), len(HOSTS))
        self.assertTrue(reporter.batched)
        self.flushLoggedErrors(errors.RemoteError)


    def power_sync_only(self):
        # Resource reports (which list instances too) out of the way.
        self.conf = make_conf(self.mktemp(), DEFAULT={
            "report_interval": 10, "update_resources_interval": 3600,
            "sync_power_state_interval": 600})

    def test_one_power_sync_call_per_interval_for_all_agents(self):
        self.power_sync_only()
        conductor = BatchingConductor()
        # In the database running on HOSTS[2]; its driver has no guest.
        gone = conductor.add(make_instance(
            host=HOSTS[2], vm_state=vm_states.ACTIVE, task_state=None,
            power_state=power_state.RUNNING))
        self.fleet(conductor)
        self.clock.advance(599)
        self.assertEqual(conductor.named("instances_on_hosts"), [])
        self.clock.advance(1)
        self.assertEqual(conductor.named("instances_on_hosts"),
                         [{"hosts": HOSTS}])
        self.assertEqual(conductor.named("instances_on_host"), [])
        [update] = conductor.named("instance_update")
        self.assertEqual(update["instance_uuid"], gone["uuid"])
        self.assertEqual(update["updates"],
                         {"power_state": power_state.NOSTATE})

    def test_an_old_conductor_gets_one_power_sync_per_agent(self):
        self.power_sync_only()
        conductor = OldConductor()
        self.fleet(conductor)
        self.clock.advance(600)
        self.assertEqual(sorted(c["host"] for c in
                                conductor.named("instances_on_host")
                                if "host" in c), HOSTS)


class AgentServicesTests(SynchronousTestCase):

    def services(self, **default):
        conf = make_conf(self.mktemp(), DEFAULT=dict(
            host="fleet", compute_driver="fake", **default))
        return conf, agent_services(conf, Clock(), LocalTransport(Clock()))

    def test_one_agent_reports_by_itself(self):
        conf, services = self.services(fake_agents=1)
        self.assertEqual(agent_hosts(conf), ["fleet"])
        [agent] = services
        self.assertIn("heartbeat", [t.name for t in agent.tasks])

    def test_several_agents_report_through_one_reporter(self):
        conf, services = self.services(fake_agents=3)
        *agents, reporter = services
        self.assertIsInstance(reporter, FleetReporter)
        self.assertEqual([a.host for a in agents], HOSTS)
        self.assertEqual(reporter.hosts, HOSTS)
        for agent in agents:
            names = [t.name for t in agent.tasks]
            self.assertNotIn("heartbeat", names)
            self.assertNotIn("update_available_resource", names)
            self.assertNotIn("sync_power_states", names)
        self.assertIn("fleet sync_power_states",
                      [t.name for t in reporter.tasks])
