"""The agent's notifications, as Nova's compute service emits them, seen
in the in-process sink: each event type where its action happens, with
start and end (or error), and the payloads' fields."""

from __future__ import annotations

from twisted.internet import defer

from tests.compute.test_lifecycle import LifecycleTestCase
from tests.compute.test_manager import ACTION_STEPS, HOST, make_instance
from twisted_compute.notifications import MemorySink, Notifier
from twisted_compute.objects import vm_states
from twisted_compute.virt import power_state

#: Nova's action name of each agent method of ACTION_STEPS.
ACTION_NAMES = {
    "stop_instance": "power_off", "start_instance": "power_on",
    "reboot_instance": "reboot", "pause_instance": "pause",
    "unpause_instance": "unpause", "suspend_instance": "suspend",
    "resume_instance": "resume",
}

FLAVOR = {"flavorid": "42", "name": "m1.small", "memory_mb": 512,
          "vcpus": 1, "root_gb": 10, "ephemeral_gb": 0, "swap": 0,
          "extra_specs": {"hw:cpu_policy": "shared"}, "is_public": True}


class NotificationTestCase(LifecycleTestCase):
    def setUp(self):
        super().setUp()
        self.sink = MemorySink()
        self.notifier = Notifier(self.clock, self.sink,
                                 drivers=["messagingv2"])
        self.manager.notifier = self.notifier.prepare(
            f"nova-compute:{HOST}")

    def types(self, without_updates: bool = False) -> list[str]:
        found = self.sink.event_types()
        if without_updates:
            found = [t for t in found if t != "instance.update"]
        return found

    def messages(self, event_type: str) -> list[dict]:
        return [m for m in self.sink.messages()
                if m["event_type"] == event_type]

    def data(self, event_type: str) -> dict:
        return self.messages(event_type)[-1]["payload"]["nova_object.data"]

    def active(self, **kw):
        kw.setdefault("flavor", FLAVOR)
        instance = super().active(**kw)
        self.sink.clear()
        return instance


class BuildNotificationTests(NotificationTestCase):
    def test_a_build_is_create_start_then_end(self):
        instance = make_instance(flavor=FLAVOR, image_ref="img-1",
                                 reservation_id="r-1", tags=["blue"])
        self.build(instance)
        self.assertEqual(self.types(), [
            "instance.update", "instance.create.start",
            "instance.update", "instance.create.end"])
        for message in self.sink.messages():
            self.assertEqual(message["publisher_id"], "nova-compute:hv1")
            self.assertEqual(message["priority"], "INFO")
        [end] = self.messages("instance.create.end")
        payload = end["payload"]
        self.assertEqual(payload["nova_object.name"],
                         "InstanceCreatePayload")
        self.assertEqual(payload["nova_object.namespace"], "nova")
        self.assertEqual(payload["nova_object.version"], "1.11")
        data = payload["nova_object.data"]
        self.assertEqual(
            (data["uuid"], data["state"], data["task_state"],
             data["power_state"], data["host"], data["node"],
             data["tenant_id"], data["user_id"], data["image_uuid"],
             data["reservation_id"], data["display_name"], data["tags"]),
            (instance.uuid, "active", None, "running", HOST, HOST, "p",
             "u", "img-1", "r-1", "vm", ["blue"]))
        self.assertTrue(data["launched_at"].endswith("Z"))
        self.assertIsNone(data["fault"])
        self.assertEqual(data["request_id"], self.ctx.request_id)
        self.assertEqual(data["action_initiator_project"], "p")
        flavor = data["flavor"]
        self.assertEqual(flavor["nova_object.name"], "FlavorPayload")
        self.assertEqual(
            (flavor["nova_object.data"]["flavorid"],
             flavor["nova_object.data"]["memory_mb"],
             flavor["nova_object.data"]["extra_specs"]),
            ("42", 512, {"hw:cpu_policy": "shared"}))
        start = self.data("instance.create.start")
        self.assertEqual((start["state"], start["task_state"]),
                         ("building", "spawning"))
        # instance.update says where the states went
        update = self.messages("instance.update")[-1]["payload"]
        self.assertEqual(update["nova_object.name"], "InstanceUpdatePayload")
        self.assertEqual(update["nova_object.data"]["state_update"][
            "nova_object.data"], {
            "old_state": "building", "state": "active",
            "old_task_state": "spawning", "new_task_state": None})

    def test_a_failed_build_is_create_error_with_the_fault(self):
        self.driver.fail_spawn = True
        self.build(make_instance())
        self.assertEqual(self.types(without_updates=True),
                         ["instance.create.start", "instance.create.error"])
        [error] = self.messages("instance.create.error")
        self.assertEqual(error["priority"], "ERROR")
        fault = error["payload"]["nova_object.data"]["fault"]
        self.assertEqual(fault["nova_object.name"], "ExceptionPayload")
        self.assertEqual(fault["nova_object.data"]["exception"],
                         "InstanceSpawnFailure")
        self.assertIn("injected failure",
                      fault["nova_object.data"]["exception_message"])


class ActionNotificationTests(NotificationTestCase):
    def test_each_action_has_start_and_end(self):
        instance = self.active()
        for method, task_state, kwargs, vm_state, _ in ACTION_STEPS:
            self.sink.clear()
            current = self.with_task(instance, task_state)
            self.successResultOf(getattr(self.manager, method)(
                self.ctx, instance=current.to_dict(), **kwargs))
            name = ACTION_NAMES[method]
            self.assertEqual(self.types(), [
                f"instance.{name}.start", "instance.update",
                f"instance.{name}.end"], method)
            start, end = (self.data(f"instance.{name}.start"),
                          self.data(f"instance.{name}.end"))
            self.assertEqual(start["task_state"], task_state)
            self.assertEqual((end["state"], end["task_state"]),
                             (vm_state, None))

    def test_power_off_end_shows_the_guest_shut_down(self):
        instance = self.active()
        current = self.with_task(instance, vm_states.POWERING_OFF)
        self.successResultOf(self.manager.stop_instance(
            self.ctx, instance=current.to_dict()))
        end = self.data("instance.power_off.end")
        self.assertEqual((end["state"], end["power_state"]),
                         ("stopped", "shutdown"))

    def test_a_failed_action_is_an_error_notification(self):
        instance = self.active()
        self.driver.guests.clear()
        current = self.with_task(instance, vm_states.POWERING_ON)
        self.failureResultOf(self.manager.start_instance(
            self.ctx, instance=current.to_dict()))
        self.assertEqual(self.types(without_updates=True), [
            "instance.power_on.start", "instance.power_on.error"])
        [error] = self.messages("instance.power_on.error")
        self.assertEqual(error["priority"], "ERROR")
        self.assertIsNotNone(error["payload"]["nova_object.data"]["fault"])

    def test_delete_is_start_then_end(self):
        instance = self.active()
        current = self.with_task(instance, vm_states.DELETING)
        self.successResultOf(defer.ensureDeferred(
            self.manager.terminate_instance(
                self.ctx, instance=current.to_dict())))
        self.assertEqual(self.types(), [
            "instance.delete.start", "instance.update",
            "instance.delete.end"])
        end = self.data("instance.delete.end")
        self.assertEqual((end["state"], end["power_state"]),
                         ("deleted", "pending"))
        self.assertIsNotNone(end["terminated_at"])
        self.assertIsNotNone(end["deleted_at"])


class LifecycleNotificationTests(NotificationTestCase):
    def test_rebuild(self):
        instance = self.active()
        current = self.with_task(instance, vm_states.REBUILDING)
        self.successResultOf(self.manager.rebuild_instance(
            self.ctx, instance=current.to_dict(),
            image={"id": "img-2", "properties": {}}, injected_files=[]))
        self.assertEqual(self.types(without_updates=True), [
            "instance.rebuild.start", "instance.rebuild.end"])
        [end] = self.messages("instance.rebuild.end")
        self.assertEqual(end["payload"]["nova_object.name"],
                         "InstanceActionRebuildPayload")
        self.assertEqual(end["payload"]["nova_object.data"]["state"],
                         "active")

    def test_a_failed_rebuild_is_an_error(self):
        instance = self.active()
        self.driver.guests.clear()
        current = self.with_task(instance, vm_states.REBUILDING)
        self.successResultOf(self.manager.rebuild_instance(
            self.ctx, instance=current.to_dict(),
            image={"id": "img-2", "properties": {}}, injected_files=[]))
        self.assertEqual(self.types(without_updates=True), [
            "instance.rebuild.start", "instance.rebuild.error"])

    def test_rescue_and_unrescue(self):
        instance = self.active()
        current = self.with_task(instance, vm_states.RESCUING)
        self.successResultOf(self.manager.rescue_instance(
            self.ctx, instance=current.to_dict(),
            rescue_image={"id": "rescue-img"}))
        current = self.with_task(instance, vm_states.UNRESCUING)
        self.successResultOf(self.manager.unrescue_instance(
            self.ctx, instance=current.to_dict()))
        self.assertEqual(self.types(without_updates=True), [
            "instance.rescue.start", "instance.rescue.end",
            "instance.unrescue.start", "instance.unrescue.end"])
        [end] = self.messages("instance.rescue.end")
        self.assertEqual(end["payload"]["nova_object.name"],
                         "InstanceActionRescuePayload")
        self.assertEqual(
            end["payload"]["nova_object.data"]["rescue_image_ref"],
            "rescue-img")

    def test_soft_delete_restore_and_reclaim(self):
        self.manager.conf = self.conf = self.conf.with_overrides(
            DEFAULT={"reclaim_instance_interval": 3600})
        instance = self.active()
        for task_state, method in (
                (vm_states.SOFT_DELETING, "soft_delete_instance"),
                (vm_states.RESTORING, "restore_instance"),
                (vm_states.SOFT_DELETING, "soft_delete_instance")):
            current = self.with_task(instance, task_state)
            self.successResultOf(getattr(self.manager, method)(
                self.ctx, instance=current.to_dict()))
        self.clock.advance(3601)
        self.successResultOf(self.manager.reclaim_queued_deletes(self.ctx))
        self.assertEqual(self.types(without_updates=True), [
            "instance.soft_delete.start", "instance.soft_delete.end",
            "instance.restore.start", "instance.restore.end",
            "instance.soft_delete.start", "instance.soft_delete.end",
            "instance.delete.start", "instance.delete.end"])

    def test_trigger_crash_dump(self):
        instance = self.active()
        self.successResultOf(self.manager.trigger_crash_dump(
            self.ctx, instance=self.db(instance)))
        self.assertEqual(self.types(), [
            "instance.trigger_crash_dump.start",
            "instance.trigger_crash_dump.end"])
        self.driver.guests[instance.uuid].state = power_state.SHUTDOWN
        self.sink.clear()
        self.successResultOf(self.manager.trigger_crash_dump(
            self.ctx, instance=self.db(instance)))
        self.assertEqual(self.types(), [
            "instance.trigger_crash_dump.start",
            "instance.trigger_crash_dump.error"])


class NoopTests(NotificationTestCase):
    def test_noop_emits_nothing_and_the_work_is_the_same(self):
        self.manager.notifier = Notifier.noop(self.clock).prepare("x")
        instance = self.active()
        current = self.with_task(instance, vm_states.POWERING_OFF)
        self.successResultOf(self.manager.stop_instance(
            self.ctx, instance=current.to_dict()))
        self.assertEqual(self.db(instance)["vm_state"], vm_states.STOPPED)
        self.assertEqual(self.types(), [])
