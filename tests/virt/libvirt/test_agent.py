"""The compute agent on the libvirt driver (test:///default): a build
records the fixed IP, every action of the control plane, delete, restart
reconciliation, and lifecycle events from libvirt updating the power
state at once.  The agent's hooks are also checked with the fake driver,
so that they are tested where libvirt is missing."""

from __future__ import annotations

from twisted.internet import defer
from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase

from tests.compute.test_manager import (
    ACTION_STEPS, FakeConductor, make_instance)
from tests.virt.libvirt.base import LibvirtFixture
from twisted_compute.compute.manager import ComputeManager
from twisted_compute.context import RequestContext
from twisted_compute.objects import vm_states
from twisted_compute.objects.instance import Instance
from twisted_compute.virt import power_state
from twisted_compute.virt.fake import FakeDriver
from twisted.internet.task import Clock
from twisted_compute import config

HOST = "lvhost"


class AgentMixin:

    def make_manager(self):
        self.ctx = RequestContext(user_id="u", project_id="p")
        self.conductor = FakeConductor()
        self.manager = ComputeManager(self.conf, HOST, self.driver,
                                      self.conductor, self.reactor)
        self.manager.log = Logger(observer=lambda event: None)

    def db(self, instance: Instance) -> dict:
        return self.conductor.instances[instance.uuid]

    def build(self, instance: Instance) -> Instance:
        record = self.conductor.add(instance)
        record["host"] = HOST  # the conductor placed it here
        self.manager.build_and_run_instance(
            self.ctx, instance=dict(record), image={},
            requested_networks=None, alternates=[], attempt=1,
            admin_password=None, injected_files=[])
        return instance

    def act(self, method: str, instance: Instance, task_state: str, **kw):
        self.db(instance)["task_state"] = task_state
        return getattr(self.manager, method)(
            self.ctx, instance=dict(self.db(instance)), **kw)


class HookTests(AgentMixin, SynchronousTestCase):
    """The agent's optional-hook code with a fake driver that has them."""

    def setUp(self):
        self.reactor = Clock()
        self.conf = config.load()

        class HookedFake(FakeDriver):
            listeners = []

            def register_event_listener(self, callback):
                self.listeners.append(callback)

            def get_instance_addresses(self, instance):
                return defer.succeed({"net": [{
                    "addr": "10.0.0.5", "version": 4,
                    "OS-EXT-IPS:type": "fixed",
                    "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:00:00:05"}]})

        self.driver = HookedFake(self.conf, self.reactor, host=HOST)
        self.make_manager()

    def test_manager_listens_to_the_driver(self):
        self.assertEqual(self.driver.listeners,
                         [self.manager.handle_lifecycle_event])

    def test_build_records_the_addresses(self):
        instance = self.build(make_instance())
        row = self.db(instance)
        self.assertEqual(row["vm_state"], vm_states.ACTIVE)
        self.assertEqual(row["addresses"]["net"][0]["addr"], "10.0.0.5")

    def test_event_syncs_a_guest_that_stopped_by_itself(self):
        instance = self.build(make_instance())
        self.driver.set_power_state(instance.uuid, power_state.SHUTDOWN)
        self.successResultOf(self.manager.handle_lifecycle_event(
            instance.uuid, power_state.SHUTDOWN))
        self.assertEqual(
            (self.db(instance)["vm_state"], self.db(instance)["power_state"]),
            (vm_states.STOPPED, power_state.SHUTDOWN))
        update = self.conductor.named("instance_update")[-1]
        self.assertEqual(update["expected_task_state"], [None])

    def test_event_during_a_task_is_left_to_the_task(self):
        instance = self.build(make_instance())
        self.db(instance)["task_state"] = vm_states.REBOOTING
        self.driver.set_power_state(instance.uuid, power_state.SHUTDOWN)
        before = len(self.conductor.named("instance_update"))
        self.successResultOf(self.manager.handle_lifecycle_event(
            instance.uuid, power_state.SHUTDOWN))
        self.assertEqual(len(self.conductor.named("instance_update")),
                         before)
        self.assertEqual(self.db(instance)["power_state"],
                         power_state.RUNNING)

    def test_event_of_an_unknown_guest_is_ignored(self):
        self.successResultOf(self.manager.handle_lifecycle_event(
            "not-ours", power_state.RUNNING))
        self.assertEqual(self.conductor.named("instance_update"), [])

    def test_event_handling_never_fails(self):
        def broken(context, host):
            return defer.fail(RuntimeError("conductor down"))
        self.conductor.instances_on_host = broken
        self.successResultOf(self.manager.handle_lifecycle_event(
            "x", power_state.RUNNING))


class LibvirtAgentTests(AgentMixin, LibvirtFixture, SynchronousTestCase):

    host_name = HOST

    def setUp(self):
        self.setUpDriver()
        self.make_manager()
        self.successResultOf(self.manager.init_host())

    def active(self) -> Instance:
        instance = self.build(make_instance())
        self.spawned.append(instance)
        self.assertEqual(self.db(instance)["vm_state"], vm_states.ACTIVE)
        return instance

    def test_build_runs_a_domain_and_records_its_ip(self):
        instance = self.active()
        row = self.db(instance)
        self.assertEqual(row["power_state"], power_state.RUNNING)
        self.assertTrue(self.domain(instance).isActive())
        (address,) = row["addresses"]["default"]
        self.assertEqual(address["OS-EXT-IPS:type"], "fixed")
        self.assertTrue(address["addr"].startswith("192.168.122."))

    def test_every_action_on_libvirt(self):
        instance = self.active()
        for method, task_state, kw, vm_state, power in ACTION_STEPS:
            self.successResultOf(self.act(method, instance, task_state,
                                          **kw))
            row = self.db(instance)
            self.assertEqual(
                (row["vm_state"], row["power_state"], row["task_state"]),
                (vm_state, power, None), method)
        self.assertEqual(self.conductor.named("instance_fault_create"), [])
        console = self.successResultOf(self.manager.get_console_output(
            self.ctx, instance=dict(self.db(instance))))
        self.assertEqual(console, "")

    def test_delete_removes_the_domain(self):
        instance = self.active()
        self.successResultOf(self.manager.terminate_instance(
            self.ctx, instance=dict(self.db(instance))))
        self.assertIsNone(self.domain(instance))
        self.assertTrue(self.db(instance)["deleted"])

    def test_restart_reconciles_with_libvirt(self):
        kept = self.active()
        orphan = self.active()
        stopped_behind = self.active()
        self.db(orphan)["deleted"] = orphan.id
        self.domain(stopped_behind).destroy()
        manager = ComputeManager(self.conf, HOST, self.driver,
                                 self.conductor, self.reactor)
        manager.log = Logger(observer=lambda event: None)
        self.successResultOf(manager.init_host())
        self.assertTrue(self.domain(kept).isActive())
        self.assertIsNone(self.domain(orphan))
        self.assertEqual(
            (self.db(stopped_behind)["vm_state"],
             self.db(stopped_behind)["power_state"]),
            (vm_states.STOPPED, power_state.SHUTDOWN))
        # test:///default's own domain is not ours to destroy.
        self.assertIsNotNone(self.conn.lookupByName("test"))

    def test_lifecycle_event_from_libvirt(self):
        """A guest that shuts itself down (here: through another libvirt
        connection) is stopped in the DB by libvirt's event, without the
        periodic sync."""
        instance = self.active()
        self.reactor.drain()  # the start events of the build
        self.domain(instance).shutdown()
        self.assertTrue(self.reactor.drain_until(
            lambda: self.db(instance)["vm_state"] == vm_states.STOPPED),
            "no lifecycle event reached the agent")
        self.assertEqual(self.db(instance)["power_state"],
                         power_state.SHUTDOWN)
