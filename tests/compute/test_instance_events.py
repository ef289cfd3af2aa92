"""A build that waits for ``network-vif-plugged`` (``vif_plugging_timeout``
above 0): the event arrives by the ``external_instance_event`` cast, a
timeout or a failed event fails the build when fatal."""

from __future__ import annotations

from tests.compute.test_manager import ManagerTestCase, make_instance
from twisted_compute.objects import vm_states


class WaitForVifPluggedTests(ManagerTestCase):
    def setUp(self):
        super().setUp()
        self.wait(30, fatal=True)

    def wait(self, timeout, fatal):
        self.manager.conf = self.conf.with_overrides(DEFAULT={
            "vif_plugging_timeout": timeout,
            "vif_plugging_is_fatal": fatal})

    def send(self, instance, status="completed", name="network-vif-plugged"):
        self.manager.external_instance_event(self.ctx, events=[{
            "server_uuid": instance.uuid, "name": name, "status": status,
            "tag": "port"}])

    def test_build_goes_on_when_the_event_comes(self):
        instance = make_instance()
        self.build(instance)
        self.assertEqual(self.db(instance)["vm_state"], vm_states.BUILDING)
        self.assertIn(instance.uuid, self.driver.guests)
        self.send(instance, name="network-changed")  # not what it waits for
        self.clock.advance(10)
        self.assertEqual(self.db(instance)["vm_state"], vm_states.BUILDING)
        self.send(instance)
        self.assertEqual(self.db(instance)["vm_state"], vm_states.ACTIVE)
        # the waiter is gone: a late duplicate is ignored
        self.send(instance)
        self.assertEqual(self.conductor.named("build_failed"), [])

    def test_timeout_fails_the_build(self):
        instance = make_instance()
        self.build(instance)
        self.clock.advance(29)
        self.assertEqual(self.conductor.named("build_failed"), [])
        self.clock.advance(1)
        failed = self.conductor.named("build_failed")
        self.assertEqual(len(failed), 1)
        self.assertIn("network-vif-plugged", failed[0]["reason"])
        self.assertNotIn(instance.uuid, self.driver.guests)

    def test_failed_event_fails_the_build(self):
        instance = make_instance()
        self.build(instance)
        self.send(instance, status="failed")
        failed = self.conductor.named("build_failed")
        self.assertEqual(len(failed), 1)
        self.assertIn("status failed", failed[0]["reason"])

    def test_not_fatal_goes_on_after_the_timeout(self):
        self.wait(5, fatal=False)
        instance = make_instance()
        self.build(instance)
        self.clock.advance(5)
        self.assertEqual(self.db(instance)["vm_state"], vm_states.ACTIVE)

    def test_no_wait_by_default(self):
        self.manager.conf = self.conf
        instance = self.active()
        self.assertEqual(self.db(instance)["vm_state"], vm_states.ACTIVE)

    def test_delete_while_waiting(self):
        instance = make_instance()
        self.build(instance)
        self.db(instance)["task_state"] = vm_states.DELETING
        self.successResultOf(self.manager.terminate_instance(
            self.ctx, instance=dict(self.db(instance))))
        self.assertEqual(self.manager.builds, {})
        self.assertEqual(self.driver.guests, {})
        self.assertTrue(self.db(instance)["deleted"])
        self.clock.advance(60)
        self.assertEqual(self.conductor.named("build_failed"), [])
        self.assertFalse(self.manager.instance_events.deliver(
            instance.uuid, "network-vif-plugged", "completed"))
