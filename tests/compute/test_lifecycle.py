"""The agent's part of a server's life on its host, with the fake driver:
rebuild, rescue / unrescue, soft delete / restore / reclaim, crash dumps,
admin passwords, and the deadline of each."""

from __future__ import annotations


from twisted.internet import defer

from tests.compute.test_manager import HOST, ManagerTestCase, make_instance
from twisted_compute import exception
from twisted_compute.objects import vm_states
from twisted_compute.objects.instance import Instance
from twisted_compute.virt import power_state

NEW_IMAGE = {"id": "img-2", "properties": {}}


class LifecycleTestCase(ManagerTestCase):
    def with_task(self, instance: Instance, task_state, **values
                  ) -> Instance:
        """The instance as the API hands it over: its task state set."""
        row = self.db(instance)
        row.update(task_state=task_state, **values)
        return Instance.from_dict(row)

    def faults(self, uuid):
        return [kw for kw in self.conductor.named("instance_fault_create")
                if kw["instance_uuid"] == uuid]


class RebuildTests(LifecycleTestCase):
    def rebuild(self, instance, image=NEW_IMAGE, **values):
        current = self.with_task(instance, vm_states.REBUILDING, **values)
        return self.manager.rebuild_instance(
            self.ctx, instance=current.to_dict(), image=image,
            admin_password="pw", injected_files=[],
            preserve_ephemeral=False, orig_image_ref="img")

    def test_rebuild_keeps_the_guest_and_boots_the_new_image(self):
        instance = self.active()
        guest = self.driver.guests[instance.uuid]
        internal_id = guest.internal_id
        self.successResultOf(self.rebuild(instance))
        row = self.db(instance)
        self.assertEqual((row["vm_state"], row["task_state"],
                          row["power_state"]),
                         (vm_states.ACTIVE, None, power_state.RUNNING))
        self.assertIs(self.driver.guests[instance.uuid], guest)
        self.assertEqual(guest.internal_id, internal_id)
        self.assertEqual(guest.image_id, "img-2")
        self.assertIn("from image img-2", guest.console[-1])
        # the task states Nova goes through, each guarded
        expected = [kw["expected_task_state"] for kw in
                    self.conductor.named("instance_update")][-3:]
        self.assertEqual(expected, [
            [vm_states.REBUILDING], [vm_states.REBUILD_BLOCK_DEVICE_MAPPING],
            [vm_states.REBUILD_SPAWNING]])
        self.assertEqual(self.events(instance.uuid)[-2:], [
            ("start", "compute_rebuild_instance", None),
            ("finish", "compute_rebuild_instance", "Success")])

    def test_a_stopped_server_is_stopped_after_its_rebuild(self):
        instance = self.active()
        self.driver.guests[instance.uuid].state = power_state.SHUTDOWN
        self.successResultOf(self.rebuild(instance,
                                          vm_state=vm_states.STOPPED))
        row = self.db(instance)
        self.assertEqual((row["vm_state"], row["power_state"]),
                         (vm_states.STOPPED, power_state.SHUTDOWN))

    def test_a_failed_rebuild_is_an_error_with_a_fault(self):
        instance = self.active()
        self.driver.guests.clear()  # the guest vanished
        self.successResultOf(self.rebuild(instance))
        row = self.db(instance)
        self.assertEqual((row["vm_state"], row["task_state"]),
                         (vm_states.ERROR, None))
        [fault] = self.faults(instance.uuid)
        self.assertIn(instance.uuid, fault["message"])
        self.assertEqual(self.events(instance.uuid)[-1],
                         ("finish", "compute_rebuild_instance", "Error"))

    def test_a_rebuild_that_never_ends_times_out(self):
        instance = self.active()
        self.driver.rebuild = lambda *a, **k: defer.Deferred()
        d = self.rebuild(instance)
        self.assertNoResult(d)
        self.clock.advance(self.conf.instance_action_timeout + 1)
        self.successResultOf(d)
        row = self.db(instance)
        self.assertEqual((row["vm_state"], row["task_state"]),
                         (vm_states.ERROR, None))
        [fault] = self.faults(instance.uuid)
        self.assertIn("instance_action_timeout", fault["message"])

    def test_without_a_driver_rebuild_it_destroys_and_spawns(self):
        instance = self.active()
        calls = []
        destroy, spawn = self.driver.destroy, self.driver.spawn
        self.driver.rebuild = None

        def recorded(name, func):
            def call(*args, **kwargs):
                calls.append(name)
                return func(*args, **kwargs)
            return call
        self.driver.destroy = recorded("destroy", destroy)
        self.driver.spawn = recorded("spawn", spawn)
        self.successResultOf(self.rebuild(instance))
        self.assertEqual(calls, ["destroy", "spawn"])
        self.assertEqual(self.driver.guests[instance.uuid].image_id, "img-2")
        self.assertEqual(self.db(instance)["vm_state"], vm_states.ACTIVE)

    def test_without_a_driver_rebuild_preserve_ephemeral_is_a_fault(self):
        instance = self.active()
        self.driver.rebuild = None
        current = self.with_task(instance, vm_states.REBUILDING)
        self.successResultOf(self.manager.rebuild_instance(
            self.ctx, instance=current.to_dict(), image=NEW_IMAGE,
            preserve_ephemeral=True))
        self.assertEqual(self.db(instance)["vm_state"], vm_states.ERROR)
        [fault] = self.faults(instance.uuid)
        self.assertIn("does not support preserving ephemeral",
                      fault["message"])
        # the guest was not touched
        self.assertEqual(self.driver.guests[instance.uuid].image_id, "img")

    def test_a_rebuild_of_a_server_deleted_meanwhile_does_nothing(self):
        instance = self.active()
        current = self.with_task(instance, vm_states.DELETING)
        self.successResultOf(self.manager.rebuild_instance(
            self.ctx, instance=current.to_dict(), image=NEW_IMAGE))
        self.assertEqual(self.driver.guests[instance.uuid].image_id, "img")


class RescueTests(LifecycleTestCase):
    def test_rescue_then_unrescue(self):
        instance = self.active()
        guest = self.driver.guests[instance.uuid]
        current = self.with_task(instance, vm_states.RESCUING)
        self.successResultOf(self.manager.rescue_instance(
            self.ctx, instance=current.to_dict(), rescue_password="pw",
            rescue_image={"id": "rescue-img"}))
        row = self.db(instance)
        self.assertEqual((row["vm_state"], row["task_state"],
                          row["power_state"]),
                         (vm_states.RESCUED, None, power_state.RUNNING))
        self.assertEqual(guest.disks, ["rescue:rescue-img", "img"])
        current = self.with_task(instance, vm_states.UNRESCUING)
        self.successResultOf(self.manager.unrescue_instance(
            self.ctx, instance=current.to_dict()))
        row = self.db(instance)
        self.assertEqual((row["vm_state"], row["task_state"]),
                         (vm_states.ACTIVE, None))
        self.assertEqual(guest.disks, ["img"])
        self.assertEqual([e[1] for e in self.events(instance.uuid)[-4:]], [
            "compute_rescue_instance", "compute_rescue_instance",
            "compute_unrescue_instance", "compute_unrescue_instance"])

    def test_a_failed_rescue_is_an_error(self):
        instance = self.active()
        current = self.with_task(instance, vm_states.RESCUING)
        self.driver.guests.clear()
        self.failureResultOf(self.manager.rescue_instance(
            self.ctx, instance=current.to_dict(),
            rescue_image={"id": "img"}), exception.InstanceNotFound)
        row = self.db(instance)
        self.assertEqual((row["vm_state"], row["task_state"]),
                         (vm_states.ERROR, None))
        self.assertEqual(len(self.faults(instance.uuid)), 1)


class SoftDeleteTests(LifecycleTestCase):
    def setUp(self):
        super().setUp()
        self.conf = self.conf.with_overrides(
            DEFAULT={"reclaim_instance_interval": 3600})
        self.manager.conf = self.conf

    def soft_delete(self, instance):
        now = self.manager.now()
        current = self.with_task(instance, vm_states.SOFT_DELETING,
                                 deleted_at={"__datetime__":
                                             now.isoformat()})
        self.successResultOf(self.manager.soft_delete_instance(
            self.ctx, instance=current.to_dict()))

    def test_soft_delete_powers_off_and_restore_powers_on(self):
        instance = self.active()
        self.soft_delete(instance)
        row = self.db(instance)
        self.assertEqual((row["vm_state"], row["task_state"],
                          row["power_state"]),
                         (vm_states.SOFT_DELETED, None,
                          power_state.SHUTDOWN))
        self.assertIn(instance.uuid, self.driver.guests)
        current = self.with_task(instance, vm_states.RESTORING)
        self.successResultOf(self.manager.restore_instance(
            self.ctx, instance=current.to_dict()))
        row = self.db(instance)
        self.assertEqual((row["vm_state"], row["power_state"]),
                         (vm_states.ACTIVE, power_state.RUNNING))

    def test_reclaim_after_the_interval_only(self):
        instance = self.active()
        self.soft_delete(instance)
        reclaim = self.manager._reclaim_queued_deletes
        self.assertEqual(self.successResultOf(defer.ensureDeferred(
            reclaim(self.ctx))), [])
        self.assertIn(instance.uuid, self.driver.guests)
        self.clock.advance(3601)
        self.assertEqual(self.successResultOf(defer.ensureDeferred(
            reclaim(self.ctx))), [instance.uuid])
        self.assertNotIn(instance.uuid, self.driver.guests)
        self.assertTrue(self.db(instance)["deleted"])

    def test_no_reclaim_when_deferred_delete_is_off(self):
        instance = self.active()
        self.soft_delete(instance)
        self.manager.conf = self.conf.with_overrides(
            DEFAULT={"reclaim_instance_interval": 0})
        self.clock.advance(10 ** 6)
        self.assertEqual(self.successResultOf(
            self.manager.reclaim_queued_deletes(self.ctx)), [])
        self.assertIn(instance.uuid, self.driver.guests)


class CrashDumpAndPasswordTests(LifecycleTestCase):
    def test_crash_dump_injects_an_nmi(self):
        instance = self.active()
        self.successResultOf(self.manager.trigger_crash_dump(
            self.ctx, instance=self.db(instance)))
        self.assertEqual(self.driver.guests[instance.uuid].nmi_count, 1)
        self.assertEqual(self.events(instance.uuid)[-1],
                         ("finish", "compute_trigger_crash_dump", "Success"))

    def test_crash_dump_of_a_stopped_guest_is_a_fault(self):
        instance = self.active()
        self.driver.guests[instance.uuid].state = power_state.SHUTDOWN
        self.successResultOf(self.manager.trigger_crash_dump(
            self.ctx, instance=self.db(instance)))
        self.assertEqual(self.driver.guests[instance.uuid].nmi_count, 0)
        self.assertEqual(len(self.faults(instance.uuid)), 1)

    def test_password_needs_the_guest_agent(self):
        instance = self.active()
        current = self.with_task(instance, vm_states.UPDATING_PASSWORD)
        self.failureResultOf(defer.ensureDeferred(
            self.manager.set_admin_password(
                self.ctx, instance=current.to_dict(), new_pass="s3cret")),
            exception.InstanceAgentNotEnabled)
        self.assertIsNone(self.db(instance)["task_state"])
        guest = self.driver.guests[instance.uuid]
        self.assertIsNone(guest.admin_password)
        guest.guest_agent = True
        current = self.with_task(instance, vm_states.UPDATING_PASSWORD)
        self.successResultOf(defer.ensureDeferred(
            self.manager.set_admin_password(
                self.ctx, instance=current.to_dict(), new_pass="s3cret")))
        self.assertEqual(guest.admin_password, "s3cret")
        self.assertIsNone(self.db(instance)["task_state"])

    def test_a_failing_agent_never_shows_the_password(self):
        instance = self.active()

        def broken(instance, new_pass):
            return defer.fail(RuntimeError(f"agent said no to {new_pass}"))
        self.driver.set_admin_password = broken
        current = self.with_task(instance, vm_states.UPDATING_PASSWORD)
        failure = self.failureResultOf(defer.ensureDeferred(
            self.manager.set_admin_password(
                self.ctx, instance=current.to_dict(), new_pass="s3cret")),
            exception.InstancePasswordSetFailed)
        self.assertNotIn("s3cret", str(failure.value))
        self.assertIsNone(self.db(instance)["task_state"])


class TimeoutTests(LifecycleTestCase):
    """Every driver step of issue 10's actions is bounded by
    ``instance_action_timeout``: a driver call that never answers ends in
    a fault, the task state cleared (and the vm_state Nova gives a
    failure), driven on the clock."""

    def hang(self, *names):
        for name in names:
            setattr(self.driver, name, lambda *a, **k: defer.Deferred())

    def expire(self, d):
        self.assertNoResult(d)
        self.clock.advance(self.conf.instance_action_timeout + 1)
        return d

    def assert_timed_out(self, instance, vm_state, event=None):
        row = self.db(instance)
        self.assertEqual((row["vm_state"], row["task_state"]),
                         (vm_state, None))
        faults = self.faults(instance.uuid)
        self.assertTrue(faults, "no fault")
        if event is not None:
            self.assertEqual(self.events(instance.uuid)[-1],
                             ("finish", event, "Error"))
        return faults[-1]

    def test_rescue(self):
        instance = self.active()
        self.hang("rescue")
        d = self.expire(self.manager.rescue_instance(
            self.ctx, instance=self.with_task(
                instance, vm_states.RESCUING).to_dict(),
            rescue_password="pw", rescue_image=None))
        self.failureResultOf(d, exception.LifecycleActionTimeout)
        fault = self.assert_timed_out(instance, vm_states.ERROR,
                                      "compute_rescue_instance")
        self.assertIn("instance_action_timeout", fault["message"])

    def test_unrescue(self):
        instance = self.active()
        self.hang("unrescue")
        current = self.with_task(instance, vm_states.UNRESCUING,
                                 vm_state=vm_states.RESCUED)
        d = self.expire(self.manager.unrescue_instance(
            self.ctx, instance=current.to_dict()))
        self.failureResultOf(d, exception.LifecycleActionTimeout)
        self.assert_timed_out(instance, vm_states.RESCUED,
                              "compute_unrescue_instance")

    def test_soft_delete_and_restore(self):
        instance = self.active()
        self.hang("power_off")
        d = self.expire(self.manager.soft_delete_instance(
            self.ctx, instance=self.with_task(
                instance, vm_states.SOFT_DELETING).to_dict()))
        self.failureResultOf(d, exception.LifecycleActionTimeout)
        self.assert_timed_out(instance, vm_states.ACTIVE,
                              "compute_soft_delete_instance")
        self.driver.guests[instance.uuid].state = power_state.SHUTDOWN
        self.hang("power_on")
        current = self.with_task(instance, vm_states.RESTORING,
                                 vm_state=vm_states.SOFT_DELETED)
        d = self.expire(self.manager.restore_instance(
            self.ctx, instance=current.to_dict()))
        self.failureResultOf(d, exception.LifecycleActionTimeout)
        self.assert_timed_out(instance, vm_states.SOFT_DELETED,
                              "compute_restore_instance")

    def test_reclaim(self):
        self.manager.conf = self.conf = self.conf.with_overrides(
            DEFAULT={"reclaim_instance_interval": 60})
        instance = self.active()
        self.db(instance).update(vm_state=vm_states.SOFT_DELETED,
                                 deleted_at=self.manager.now())
        self.clock.advance(61)
        self.hang("destroy")
        d = self.expire(self.manager.reclaim_queued_deletes(self.ctx))
        self.assertEqual(self.successResultOf(d), [])
        self.assert_timed_out(instance, vm_states.ERROR)

    def test_crash_dump(self):
        instance = self.active()
        self.hang("inject_nmi")
        d = self.expire(self.manager.trigger_crash_dump(
            self.ctx, instance=self.db(instance)))
        self.successResultOf(d)
        self.assert_timed_out(instance, vm_states.ACTIVE,
                              "compute_trigger_crash_dump")

    def test_admin_password(self):
        instance = self.active()
        self.hang("set_admin_password")
        current = self.with_task(instance, vm_states.UPDATING_PASSWORD)
        d = self.expire(defer.ensureDeferred(self.manager.set_admin_password(
            self.ctx, instance=current.to_dict(), new_pass="s3cret")))
        failure = self.failureResultOf(d, exception.InstancePasswordSetFailed)
        self.assertNotIn("s3cret", str(failure.value))
        fault = self.assert_timed_out(instance, vm_states.ACTIVE,
                                      "compute_set_admin_password")
        self.assertNotIn("s3cret", fault["message"])

    def test_shelve_power_off(self):
        instance = self.active()
        self.hang("power_off")
        d = self.expire(self.manager.shelve_instance(
            self.ctx, instance=self.with_task(
                instance, vm_states.SHELVING).to_dict(), image_id="img-s"))
        self.successResultOf(d)
        fault = self.assert_timed_out(instance, vm_states.ACTIVE,
                                      "compute_shelve_instance")
        self.assertIn("shelve", fault["message"])

    def test_shelve_offload(self):
        instance = self.active()
        self.hang("destroy")
        current = self.with_task(instance, vm_states.SHELVING_OFFLOADING,
                                 vm_state=vm_states.SHELVED)
        d = self.expire(self.manager.shelve_offload_instance(
            self.ctx, instance=current.to_dict()))
        self.successResultOf(d)
        self.assert_timed_out(instance, vm_states.SHELVED,
                              "compute_shelve_offload_instance")

    def test_unshelve_on_its_host(self):
        instance = self.active()
        self.driver.guests[instance.uuid].state = power_state.SHUTDOWN
        self.hang("power_on")
        current = self.with_task(instance, vm_states.UNSHELVING,
                                 vm_state=vm_states.SHELVED)
        d = self.expire(self.manager.unshelve_instance(
            self.ctx, instance=current.to_dict()))
        self.successResultOf(d)
        self.assert_timed_out(instance, vm_states.SHELVED,
                              "compute_unshelve_instance")


class RPCClientTests(LifecycleTestCase):
    def test_new_methods_need_1_4(self):
        from twisted_compute.compute.rpcapi import ComputeAPIClient

        class Capped:
            def can_send_version(self, version):
                return version <= "1.3"
        client = ComputeAPIClient(Capped())
        instance = make_instance(host=HOST)
        for method in ("rebuild_instance", "rescue_instance",
                       "unrescue_instance", "soft_delete_instance",
                       "restore_instance", "trigger_crash_dump"):
            self.failureResultOf(getattr(client, method)(self.ctx, instance),
                                 exception.ComputeAgentTooOld)
        self.failureResultOf(client.set_admin_password(
            self.ctx, instance, "pw"), exception.ComputeAgentTooOld)


