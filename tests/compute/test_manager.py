"""The compute agent: builds, reschedule requests, deletes (also while
building), power actions, console output, periodic tasks, init_host; and
the agent's RPC client, also over the in-process bus."""

from __future__ import annotations

import datetime
import uuid as uuidlib
from typing import Any

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase

from twisted_compute import config, exception
from twisted_compute.compute import manager as manager_mod
from twisted_compute.compute.manager import ComputeManager
from twisted_compute.compute.rpcapi import (
    ComputeAPIClient, parse_version_cap)
from twisted_compute.context import RequestContext
from twisted_compute.objects import vm_states
from twisted_compute.objects.instance import Instance
from twisted_compute.objects.request_spec import RequestSpec
from twisted_compute.objects.selection import Selection
from twisted_compute.rpc import RPCServer
from twisted_compute.rpc.local import LocalTransport
from twisted_compute.virt import power_state
from twisted_compute.virt.fake import FakeDriver

HOST = "hv1"


#: Each server action an agent runs, in an order a guest can follow:
#: (method, task state set by the API, kwargs, vm_state and power state
#: after it).  Shared by the fake-driver and libvirt agent tests.
ACTION_STEPS = (
    ("stop_instance", vm_states.POWERING_OFF, {},
     vm_states.STOPPED, power_state.SHUTDOWN),
    ("start_instance", vm_states.POWERING_ON, {},
     vm_states.ACTIVE, power_state.RUNNING),
    ("reboot_instance", vm_states.REBOOTING,
     {"reboot_type": "SOFT"}, vm_states.ACTIVE, power_state.RUNNING),
    ("reboot_instance", vm_states.REBOOTING_HARD,
     {"reboot_type": "HARD"}, vm_states.ACTIVE, power_state.RUNNING),
    ("pause_instance", vm_states.PAUSING, {},
     vm_states.PAUSED, power_state.PAUSED),
    ("unpause_instance", vm_states.UNPAUSING, {},
     vm_states.ACTIVE, power_state.RUNNING),
    ("suspend_instance", vm_states.SUSPENDING, {},
     vm_states.SUSPENDED, power_state.SUSPENDED),
    ("resume_instance", vm_states.RESUMING, {},
     vm_states.ACTIVE, power_state.RUNNING),
)


class FakeConductor:
    """The conductor's agent-facing interface over a dict of instance
    dicts, recording every call."""

    def __init__(self):
        self.instances: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, dict]] = []
        self.nodes: list[dict] = []

    def add(self, instance: Instance) -> dict:
        self.instances[instance.uuid] = instance.to_dict()
        return self.instances[instance.uuid]

    def named(self, name: str) -> list[dict]:
        return [kw for call, kw in self.calls if call == name]

    def instance_update(self, context, instance_uuid, updates,
                        expected_task_state=None, expected_host=None,
                        fetch=True, event=None):
        call = dict(instance_uuid=instance_uuid, updates=updates,
                    expected_task_state=expected_task_state)
        if expected_host is not None:
            call["expected_host"] = expected_host
        self.calls.append(("instance_update", call))
        values = self.instances.get(instance_uuid)
        if values is None or values.get("deleted"):
            return defer.fail(exception.InstanceNotFound(
                instance_id=instance_uuid))
        actual = values["task_state"]
        if (expected_task_state is not None
                and actual not in expected_task_state) or (
                expected_host is not None
                and values.get("host") != expected_host):
            cls = (exception.UnexpectedDeletingTaskStateError
                   if actual == vm_states.DELETING
                   else exception.UnexpectedTaskStateError)
            return defer.fail(cls(instance_uuid=instance_uuid,
                                  expected=expected_task_state,
                                  actual=actual))
        values.update(updates)
        if event is not None:
            # Recorded in the same transaction as the update.
            if event.get("result") is None:
                self.calls.append(("action_event_start", dict(
                    instance_uuid=instance_uuid, **event)))
            else:
                self.calls.append(("action_event_finish", dict(
                    instance_uuid=instance_uuid, traceback=None, **event)))
        return defer.succeed(dict(values) if fetch else None)

    def instance_destroyed(self, context, instance_uuid):
        self.calls.append(("instance_destroyed",
                           dict(instance_uuid=instance_uuid)))
        values = self.instances.get(instance_uuid)
        if values is None or values.get("deleted"):
            return defer.fail(exception.InstanceNotFound(
                instance_id=instance_uuid))
        values["deleted"] = values["id"]
        return defer.succeed(None)

    def instances_on_host(self, context, host):
        self.calls.append(("instances_on_host", dict(host=host)))
        return defer.succeed([Instance.from_dict(v)
                              for v in self.instances.values()
                              if v.get("host") == host
                              and not v.get("deleted")])

    def compute_node_update(self, context, values):
        self.calls.append(("compute_node_update", dict(values=values)))
        self.nodes.append(values)
        return defer.succeed(None)

    def _record(self, name, **kw):
        self.calls.append((name, kw))
        return defer.succeed(None)

    def action_event_start(self, context, instance_uuid, request_id, event,
                           host):
        return self._record("action_event_start",
                            instance_uuid=instance_uuid,
                            request_id=request_id, event=event, host=host)

    def action_event_finish(self, context, instance_uuid, request_id, event,
                            host, result, traceback=None, details=None):
        return self._record("action_event_finish",
                            instance_uuid=instance_uuid,
                            request_id=request_id, event=event, host=host,
                            result=result, traceback=traceback,
                            details=details)

    def instance_fault_create(self, context, instance_uuid, code, message,
                              details, host):
        return self._record("instance_fault_create",
                            instance_uuid=instance_uuid, code=code,
                            message=message, details=details, host=host)

    def build_failed(self, context, instance, alternates, reason, attempt,
                     image, requested_networks=None):
        return self._record("build_failed", instance=instance,
                            alternates=alternates, reason=reason,
                            attempt=attempt, image=image,
                            requested_networks=requested_networks)


_ids = iter(range(1, 1_000_000))


def make_instance(**kw) -> Instance:
    values = dict(id=next(_ids), uuid=str(uuidlib.uuid4()), user_id="u",
                  project_id="p", vm_state=vm_states.BUILDING,
                  task_state=vm_states.SCHEDULING, vcpus=1, memory_mb=512,
                  root_gb=10, display_name="vm", host=HOST)
    values.update(kw)
    return Instance(**values)


class ManagerTestCase(SynchronousTestCase):

    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.conf = config.load()
        self.ctx = RequestContext(user_id="u", project_id="p")
        self.conductor = FakeConductor()
        self.driver = self.make_driver()
        self.manager = ComputeManager(self.conf, HOST, self.driver,
                                      self.conductor, self.clock)
        self.manager.log = Logger(observer=lambda event: None)

    def make_driver(self, **kw) -> FakeDriver:
        kw.setdefault("vcpus", 4)
        kw.setdefault("memory_mb", 4096)
        kw.setdefault("local_gb", 100)
        return FakeDriver(self.conf, self.clock, host=HOST, **kw)

    def db(self, instance: Instance) -> dict:
        return self.conductor.instances[instance.uuid]

    def build(self, instance: Instance, alternates=None):
        self.conductor.add(instance)
        result = self.manager.build_and_run_instance(
            self.ctx, instance=instance.to_dict(), image={"id": "img"},
            requested_networks=None,
            alternates=alternates or [{"host": "hv2"}], attempt=1,
            admin_password=None, injected_files=[])
        self.assertIsNone(result)

    def active(self, **kw) -> Instance:
        instance = make_instance(**kw)
        self.build(instance)
        self.assertEqual(self.db(instance)["vm_state"], vm_states.ACTIVE)
        return instance

    def events(self, uuid: str) -> list[tuple[str, str, str | None]]:
        out = []
        for call, kw in self.conductor.calls:
            if call == "action_event_start" and kw["instance_uuid"] == uuid:
                out.append(("start", kw["event"], None))
            elif call == "action_event_finish" and \
                    kw["instance_uuid"] == uuid:
                out.append(("finish", kw["event"], kw["result"]))
        return out

    def guest_state(self, instance: Instance) -> int:
        return self.driver.guests[instance.uuid].state


class BuildTests(ManagerTestCase):

    def test_build_goes_active(self):
        instance = make_instance()
        self.build(instance)
        row = self.db(instance)
        self.assertEqual(row["vm_state"], vm_states.ACTIVE)
        self.assertIsNone(row["task_state"])
        self.assertEqual(row["power_state"], power_state.RUNNING)
        self.assertEqual((row["host"], row["node"], row["launched_on"]),
                         (HOST, HOST, HOST))
        launched = Instance.from_dict(row).launched_at
        self.assertIsNone(launched.tzinfo)  # naive UTC, as the DB stores
        self.assertEqual(
            launched.replace(tzinfo=datetime.timezone.utc).timestamp(),
            self.clock.seconds())
        self.assertEqual(self.guest_state(instance), power_state.RUNNING)
        self.assertEqual(self.events(instance.uuid), [
            ("start", "compute_build_and_run_instance", None),
            ("finish", "compute_build_and_run_instance", "Success")])
        for kw in self.conductor.named("action_event_start"):
            self.assertEqual(kw["request_id"], self.ctx.request_id)
            self.assertEqual(kw["host"], HOST)
        self.assertEqual(self.conductor.named("build_failed"), [])
        self.assertEqual(self.manager.tracker.usage()["vcpus_used"], 1)
        self.assertEqual(self.manager.builds, {})
        # The task states were guarded: scheduling -> spawning -> none.
        expected = [kw["expected_task_state"]
                    for kw in self.conductor.named("instance_update")]
        self.assertIn(vm_states.SCHEDULING, expected[0])
        self.assertEqual(expected[1], [vm_states.SPAWNING])

    def test_build_with_spawn_delay(self):
        self.driver.spawn_delay = 30
        instance = make_instance()
        self.build(instance)
        row = self.db(instance)
        self.assertEqual((row["vm_state"], row["task_state"]),
                         (vm_states.BUILDING, vm_states.SPAWNING))
        self.assertEqual(row["host"], HOST)
        self.assertIn(instance.uuid, self.manager.builds)
        waiting = self.manager.wait_for_build(instance.uuid)
        self.assertNoResult(waiting)
        self.clock.advance(30)
        self.successResultOf(waiting)
        self.assertEqual(self.db(instance)["vm_state"], vm_states.ACTIVE)

    def test_spawn_failure_calls_build_failed_and_releases_claim(self):
        self.driver.fail_spawn = True
        instance = make_instance()
        self.build(instance, alternates=[{"host": "hv2"},
                                         {"host": "hv3"}])
        [failed] = self.conductor.named("build_failed")
        self.assertEqual(failed["instance"].uuid, instance.uuid)
        self.assertEqual([a.host for a in failed["alternates"]],
                         ["hv2", "hv3"])
        self.assertEqual((failed["attempt"], failed["image"]),
                         (1, {"id": "img"}))
        self.assertIn("injected failure", failed["reason"])
        self.assertEqual(self.manager.tracker.usage()["vcpus_used"], 0)
        self.assertEqual(self.manager.tracker.claims, {})
        self.assertEqual(self.driver.guests, {})  # leftovers destroyed
        self.assertNotEqual(self.db(instance)["vm_state"], vm_states.ACTIVE)
        [finish] = self.conductor.named("action_event_finish")
        self.assertEqual(finish["result"], "Error")
        self.assertIn("InstanceSpawnFailure", finish["traceback"])
        # the fault message, shown as the event's details from 2.84
        self.assertIn("injected failure", finish["details"])

    def test_build_in_the_1_0_form(self):
        # From a conductor at compute RPC 1.0: the attempt in the request
        # spec, filter properties nobody reads.
        self.driver.fail_spawn = True
        instance = make_instance()
        self.conductor.add(instance)
        self.manager.build_and_run_instance(
            self.ctx, instance=instance.to_dict(),
            request_spec={"num_instances": 1, "_attempt": 2},
            filter_properties={"retry": {"num_attempts": 2}},
            alternates=[{"host": "hv2", "nodename": "n2"}],
            image={"id": "img"}, admin_password=None, injected_files=[],
            requested_networks=None)
        [failed] = self.conductor.named("build_failed")
        self.assertEqual((failed["attempt"], failed["image"]),
                         (2, {"id": "img"}))
        self.assertEqual(failed["alternates"], (Selection("hv2", "n2"),))

    def test_over_capacity_claim_is_refused(self):
        instance = make_instance(vcpus=100, memory_mb=100_000)
        self.build(instance)
        [failed] = self.conductor.named("build_failed")
        self.assertIn("Insufficient compute resources", failed["reason"])
        self.assertEqual(self.driver.spawn_count, 0)
        # The agent took the instance, then gave it back to the conductor.
        self.assertEqual([u["updates"]["task_state"] for u in
                          self.conductor.named("instance_update")],
                         [vm_states.SPAWNING])
        self.assertEqual(self.manager.tracker.usage()["running_vms"], 0)

    def test_racing_builds_cannot_overcommit(self):
        self.manager.tracker.cpu_allocation_ratio = 1.0
        self.driver.spawn_delay = 5
        first, second = make_instance(vcpus=3), make_instance(vcpus=3)
        self.build(first)
        self.build(second)
        [failed] = self.conductor.named("build_failed")
        self.assertEqual(failed["instance"].uuid, second.uuid)
        self.clock.advance(5)
        self.assertEqual(self.db(first)["vm_state"], vm_states.ACTIVE)
        self.assertEqual(list(self.driver.guests), [first.uuid])
        self.assertEqual(self.manager.tracker.usage()["vcpus_used"], 3)

    def test_duplicate_build_request_ignored(self):
        self.driver.spawn_delay = 5
        instance = make_instance()
        self.build(instance)
        self.manager.build_and_run_instance(self.ctx,
                                            instance=instance.to_dict())
        self.clock.advance(5)
        self.assertEqual(self.driver.spawn_count, 1)
        self.assertEqual(self.db(instance)["vm_state"], vm_states.ACTIVE)

    def test_spawning_write_whose_reply_was_lost_goes_on(self):
        # The conductor wrote "spawning", the reply was lost while the
        # broker failed over, and the call was handled a second time:
        # its answer is a conflict naming the state we wrote ourselves.
        instance = make_instance()
        real = self.conductor.instance_update
        seen = []

        def handled_twice(context, uuid, updates, **kwargs):
            if not seen and updates.get("task_state") == \
                    vm_states.SPAWNING:
                seen.append(uuid)
                real(context, uuid, updates, **kwargs)
            return real(context, uuid, updates, **kwargs)
        self.conductor.instance_update = handled_twice
        self.build(instance)
        self.assertEqual(seen, [instance.uuid])
        self.assertEqual(self.driver.spawn_count, 1)
        row = self.db(instance)
        self.assertEqual((row["vm_state"], row["task_state"], row["host"]),
                         (vm_states.ACTIVE, None, HOST))

    def test_active_write_whose_reply_was_lost_keeps_the_guest(self):
        # The last write (spawning -> active) landed, its reply was lost
        # and the call handled twice: the conflict names no task state.
        # The guest stays, nothing is rescheduled.
        instance = make_instance()
        real = self.conductor.instance_update
        seen = []

        def handled_twice(context, uuid, updates, **kwargs):
            if not seen and updates.get("vm_state") == vm_states.ACTIVE:
                seen.append(uuid)
                real(context, uuid, updates, **kwargs)
            return real(context, uuid, updates, **kwargs)
        self.conductor.instance_update = handled_twice
        self.build(instance)
        self.assertEqual(seen, [instance.uuid])
        self.assertEqual(self.driver.spawn_count, 1)
        self.assertIn(instance.uuid, self.driver.guests)
        self.assertEqual(self.conductor.named("build_failed"), [])
        self.assertEqual(self.db(instance)["vm_state"], vm_states.ACTIVE)

    def test_active_write_that_timed_out_is_tried_again(self):
        instance = make_instance()
        real = self.conductor.instance_update
        seen = []

        def lost_reply(context, uuid, updates, **kwargs):
            if not seen and updates.get("vm_state") == vm_states.ACTIVE:
                seen.append(uuid)
                real(context, uuid, updates, **kwargs)  # it landed
                return defer.fail(exception.MessagingTimeout(
                    method="instance_update"))
            return real(context, uuid, updates, **kwargs)
        self.conductor.instance_update = lost_reply
        self.build(instance)
        self.assertEqual(seen, [instance.uuid])
        self.assertIn(instance.uuid, self.driver.guests)
        self.assertEqual(self.conductor.named("build_failed"), [])
        self.assertEqual(self.db(instance)["vm_state"], vm_states.ACTIVE)

    def test_build_request_after_the_build_is_ignored(self):
        # The same request again once the guest runs (a conductor died
        # and its message was redelivered): the guest is not touched,
        # nothing is reported as failed.
        instance = self.active()
        self.manager.build_and_run_instance(self.ctx,
                                            instance=instance.to_dict())
        self.assertEqual(self.driver.spawn_count, 1)
        self.assertIn(instance.uuid, self.driver.guests)
        self.assertEqual(self.db(instance)["vm_state"], vm_states.ACTIVE)
        self.assertEqual(self.conductor.named("build_failed"), [])
        self.assertEqual(self.conductor.named("instance_fault_create"), [])
        self.assertEqual(list(self.manager.tracker.instances),
                         [instance.uuid])
        self.assertEqual(self.manager.tracker.usage()["running_vms"], 1)

    def test_stale_build_request_for_another_host_is_ignored(self):
        # The instance was rescheduled to hv2 meanwhile: a late request
        # here must not take it.
        instance = make_instance(host="hv2")
        self.build(instance)
        self.assertEqual(self.driver.spawn_count, 0)
        self.assertEqual(self.db(instance)["task_state"],
                         vm_states.SCHEDULING)
        self.assertEqual(self.db(instance)["host"], "hv2")
        self.assertEqual(self.conductor.named("build_failed"), [])
        self.assertEqual(self.events(instance.uuid), [])
        self.assertEqual(self.manager.tracker.claims, {})

    def test_deleted_before_spawn(self):
        instance = make_instance()
        # The API deleted the row locally before the build arrived.
        self.conductor.add(instance)["deleted"] = instance.id
        self.manager.build_and_run_instance(self.ctx,
                                            instance=instance.to_dict())
        self.assertEqual(self.driver.spawn_count, 0)
        self.assertEqual(self.conductor.named("build_failed"), [])
        self.assertEqual(self.manager.tracker.claims, {})

    def test_row_deleted_while_spawning(self):
        self.driver.spawn_delay = 10
        instance = make_instance()
        self.build(instance)
        self.db(instance)["deleted"] = instance.id
        self.clock.advance(10)
        self.assertEqual(self.driver.guests, {})
        self.assertEqual(self.conductor.named("build_failed"), [])
        self.assertEqual(self.manager.tracker.usage()["running_vms"], 0)

    def test_deleting_task_state_at_the_end_of_the_build(self):
        self.driver.spawn_delay = 10
        instance = make_instance()
        self.build(instance)
        self.db(instance)["task_state"] = vm_states.DELETING
        self.clock.advance(10)
        self.assertEqual(self.driver.guests, {})
        self.assertEqual(self.conductor.named("build_failed"), [])
        self.assertEqual(self.manager.tracker.claims, {})


class TerminateTests(ManagerTestCase):

    def terminate(self, instance):
        self.db(instance)["task_state"] = vm_states.DELETING
        return defer.ensureDeferred(self.manager.terminate_instance(
            self.ctx, instance=self.db(instance), bdms=[]))

    def test_terminate_active(self):
        instance = self.active()
        self.successResultOf(self.terminate(instance))
        row = self.db(instance)
        self.assertEqual(row["vm_state"], vm_states.DELETED)
        self.assertIsNone(row["task_state"])
        self.assertEqual(row["power_state"], power_state.NOSTATE)
        self.assertIsNotNone(row["terminated_at"])
        self.assertEqual(row["deleted"], instance.id)
        self.assertEqual(self.driver.guests, {})
        self.assertEqual(self.manager.tracker.usage()["running_vms"], 0)
        self.assertIn(("finish", "compute_terminate_instance", "Success"),
                      self.events(instance.uuid))

    def test_delete_while_building(self):
        self.driver.spawn_delay = 60
        instance = make_instance()
        self.build(instance)
        self.assertIn(instance.uuid, self.manager.builds)
        d = self.terminate(instance)
        self.successResultOf(d)
        self.assertEqual(self.manager.builds, {})
        self.assertEqual(self.driver.guests, {})
        self.assertEqual(self.manager.tracker.claims, {})
        self.assertEqual(self.conductor.named("build_failed"), [])
        self.assertTrue(self.db(instance)["deleted"])
        self.clock.advance(120)  # the cancelled spawn never comes back
        self.assertEqual(self.driver.guests, {})
        self.assertEqual(self.db(instance)["vm_state"], vm_states.DELETED)
        self.assertIn(("finish", "compute_build_and_run_instance", "Error"),
                      self.events(instance.uuid))

    def test_terminate_unknown_guest(self):
        instance = make_instance(vm_state=vm_states.ERROR, task_state=None,
                                 host=HOST)
        self.conductor.add(instance)
        self.successResultOf(self.terminate(instance))
        self.assertTrue(self.db(instance)["deleted"])

    def test_terminate_twice(self):
        instance = self.active()
        self.successResultOf(self.terminate(instance))
        self.successResultOf(defer.ensureDeferred(
            self.manager.terminate_instance(self.ctx,
                                            instance=instance.to_dict())))


class ActionTests(ManagerTestCase):

    def act(self, method: str, instance: Instance, task_state: str, **kw):
        self.db(instance)["task_state"] = task_state
        return getattr(self.manager, method)(
            self.ctx, instance=dict(self.db(instance)), **kw)

    def assertStates(self, instance, vm_state, power, task_state=None):
        row = self.db(instance)
        self.assertEqual((row["vm_state"], row["power_state"],
                          row["task_state"]), (vm_state, power, task_state))

    def test_every_action_updates_the_right_states(self):
        instance = self.active()
        for method, task_state, kw, vm_state, power in ACTION_STEPS:
            self.successResultOf(self.act(method, instance, task_state,
                                          **kw))
            self.assertStates(instance, vm_state, power)
            self.assertEqual(self.guest_state(instance), power)
            update = self.conductor.named("instance_update")[-1]
            self.assertEqual(update["expected_task_state"][0], task_state)
            self.assertEqual(self.events(instance.uuid)[-2:], [
                ("start", "compute_" + method, None),
                ("finish", "compute_" + method, "Success")])
        self.assertEqual(self.conductor.named("instance_fault_create"), [])

    def test_driver_error_resets_task_and_records_fault(self):
        instance = self.active()
        failure = self.failureResultOf(
            self.act("unpause_instance", instance, vm_states.UNPAUSING),
            exception.InstancePowerStateTransitionError)
        self.assertIn("running", failure.getErrorMessage())
        self.assertStates(instance, vm_states.ACTIVE, power_state.RUNNING)
        [fault] = self.conductor.named("instance_fault_create")
        self.assertEqual(fault["code"], 409)
        self.assertIn("unpause", fault["message"])
        self.assertEqual(fault["host"], HOST)
        self.assertEqual(self.events(instance.uuid)[-1],
                         ("finish", "compute_unpause_instance", "Error"))

    def test_failed_stop_keeps_vm_state(self):
        instance = self.active()
        self.driver.guests.clear()  # the guest vanished
        self.failureResultOf(
            self.act("stop_instance", instance, vm_states.POWERING_OFF),
            exception.InstanceNotFound)
        self.assertStates(instance, vm_states.ACTIVE, power_state.NOSTATE)

    def test_failed_resume_is_an_error(self):
        instance = self.active()
        self.failureResultOf(
            self.act("resume_instance", instance, vm_states.RESUMING),
            exception.InstancePowerStateTransitionError)
        self.assertStates(instance, vm_states.ERROR, power_state.RUNNING)

    def test_failed_soft_reboot_of_a_dead_guest_is_an_error(self):
        instance = self.active()
        self.driver.set_power_state(instance.uuid, power_state.SHUTDOWN)
        self.failureResultOf(
            self.act("reboot_instance", instance, vm_states.REBOOTING,
                     reboot_type="SOFT"),
            exception.InstancePowerStateTransitionError)
        self.assertStates(instance, vm_states.ERROR, power_state.SHUTDOWN)

    def test_action_loses_to_a_delete(self):
        instance = self.active()
        d = self.act("pause_instance", instance, vm_states.PAUSING)
        # pause ran synchronously; simulate a delete racing the update:
        self.successResultOf(d)
        self.db(instance)["task_state"] = vm_states.DELETING
        self.successResultOf(
            self.manager.unpause_instance(self.ctx,
                                          instance=self.db(instance)))
        self.assertEqual(self.db(instance)["task_state"],
                         vm_states.DELETING)

    def test_console_output_contains_the_uuid(self):
        instance = self.active()
        text = self.successResultOf(defer.ensureDeferred(
            self.manager.get_console_output(self.ctx,
                                            instance=self.db(instance),
                                            tail_length=None)))
        self.assertIsInstance(text, str)
        self.assertIn(instance.uuid, text)
        lines = text.splitlines()
        self.assertGreater(len(lines), 1)
        tail = self.successResultOf(defer.ensureDeferred(
            self.manager.get_console_output(self.ctx,
                                            instance=self.db(instance),
                                            tail_length=1)))
        self.assertEqual(tail, lines[-1])
        empty = self.successResultOf(defer.ensureDeferred(
            self.manager.get_console_output(self.ctx,
                                            instance=self.db(instance),
                                            tail_length=0)))
        self.assertEqual(empty, "")


class PeriodicTests(ManagerTestCase):

    def test_update_available_resource(self):
        self.active(vcpus=2, memory_mb=1024, root_gb=20)
        other = make_instance(vcpus=1, memory_mb=256, root_gb=1,
                              vm_state=vm_states.STOPPED, task_state=None,
                              host=HOST)
        self.conductor.add(other)
        elsewhere = make_instance(vcpus=3, host="hv2",
                                  vm_state=vm_states.ACTIVE,
                                  task_state=None)
        self.conductor.add(elsewhere)
        self.successResultOf(self.manager.update_available_resource())
        node = self.conductor.nodes[-1]
        self.assertEqual((node["vcpus_used"], node["memory_mb_used"],
                          node["local_gb_used"], node["running_vms"]),
                         (3, 1280, 21, 2))
        self.assertEqual((node["host"], node["hypervisor_hostname"],
                          node["vcpus"], node["memory_mb"]),
                         (HOST, HOST, 4, 4096))

    def test_periodic_task_never_fails(self):
        def broken(context, host):
            return defer.fail(exception.MessagingTimeout(
                method="instances_on_host"))
        self.conductor.instances_on_host = broken
        self.successResultOf(self.manager.update_available_resource())
        self.successResultOf(self.manager.sync_power_states())

    def test_sync_power_states(self):
        crashed = self.active()
        paused = self.active()
        busy = self.active()
        restarted = self.active()
        vanished = self.active()
        self.db(restarted).update(vm_state=vm_states.STOPPED,
                                  power_state=power_state.SHUTDOWN)
        self.driver.set_power_state(crashed.uuid, power_state.CRASHED)
        self.driver.set_power_state(paused.uuid, power_state.PAUSED)
        self.driver.set_power_state(busy.uuid, power_state.SHUTDOWN)
        self.db(busy)["task_state"] = vm_states.REBOOTING
        del self.driver.guests[vanished.uuid]
        self.successResultOf(self.manager.sync_power_states())
        self.assertEqual(
            (self.db(crashed)["vm_state"], self.db(crashed)["power_state"]),
            (vm_states.STOPPED, power_state.CRASHED))
        self.assertEqual(
            (self.db(paused)["vm_state"], self.db(paused)["power_state"]),
            (vm_states.ACTIVE, power_state.PAUSED))
        # An instance with a task is left to its task.
        self.assertEqual(self.db(busy)["power_state"], power_state.RUNNING)
        # A stopped server whose guest runs is powered off again.
        self.assertEqual(self.guest_state(restarted), power_state.SHUTDOWN)
        self.assertEqual(self.db(restarted)["vm_state"], vm_states.STOPPED)
        self.assertEqual(
            (self.db(vanished)["vm_state"],
             self.db(vanished)["power_state"]),
            (vm_states.ACTIVE, power_state.NOSTATE))
        for kw in self.conductor.named("instance_update")[-3:]:
            self.assertEqual(kw["expected_task_state"], [None])


class InitHostTests(ManagerTestCase):

    def test_init_host_reconciles(self):
        # What the host had before the "restart".
        running = self.active()
        halfway = make_instance()
        self.driver.spawn_delay = 100
        self.build(halfway)
        self.driver.spawn_delay = 0
        stopped_behind = self.active()
        deleting = self.active()
        orphan = self.active()
        waiting_build = make_instance(task_state=vm_states.SPAWNING,
                                      host=HOST)
        self.conductor.add(waiting_build)
        self.driver.set_power_state(stopped_behind.uuid,
                                    power_state.SHUTDOWN)
        self.db(deleting)["task_state"] = vm_states.DELETING
        self.db(orphan)["deleted"] = orphan.id
        pausing = self.active()
        self.db(pausing)["task_state"] = vm_states.PAUSING
        self.successResultOf(self.driver.pause(pausing))

        # A new agent process, the same hypervisor.
        self.manager = ComputeManager(self.conf, HOST, self.driver,
                                      self.conductor, self.clock)
        self.manager.log = Logger(observer=lambda event: None)
        self.conductor.calls.clear()
        self.successResultOf(self.manager.init_host())

        self.assertTrue(self.driver.initialized)
        self.assertEqual(self.db(running)["vm_state"], vm_states.ACTIVE)
        for built in (halfway, waiting_build):
            row = self.db(built)
            self.assertEqual((row["vm_state"], row["task_state"]),
                             (vm_states.ERROR, None))
            self.assertNotIn(built.uuid, self.driver.guests)
        faults = {kw["instance_uuid"]: kw["message"] for kw in
                  self.conductor.named("instance_fault_create")}
        self.assertEqual(faults, {
            halfway.uuid: manager_mod.RESTART_BUILD_REASON,
            waiting_build.uuid: manager_mod.RESTART_BUILD_REASON})
        self.assertEqual(
            manager_mod.RESTART_BUILD_REASON,
            "Instance was building when the compute agent restarted")
        self.assertEqual((self.db(stopped_behind)["vm_state"],
                          self.db(stopped_behind)["power_state"]),
                         (vm_states.STOPPED, power_state.SHUTDOWN))
        self.assertTrue(self.db(deleting)["deleted"])
        self.assertNotIn(deleting.uuid, self.driver.guests)
        self.assertNotIn(orphan.uuid, self.driver.guests)
        self.assertEqual((self.db(pausing)["vm_state"],
                          self.db(pausing)["task_state"],
                          self.db(pausing)["power_state"]),
                         (vm_states.PAUSED, None, power_state.PAUSED))
        self.assertEqual(sorted(self.driver.guests),
                         sorted([running.uuid, stopped_behind.uuid,
                                 pausing.uuid]))
        # The node is reported with what is left.
        node = self.conductor.nodes[-1]
        self.assertEqual(node["running_vms"], 5)


class RPCClientTests(SynchronousTestCase):

    def setUp(self):
        self.sent = []
        test = self

        class Prepared:
            def __init__(self, kw):
                self.kw = kw

            def cast(self, context, method, **kwargs):
                test.sent.append(("cast", self.kw, method, kwargs))
                return defer.succeed(None)

            def call(self, context, method, **kwargs):
                test.sent.append(("call", self.kw, method, kwargs))
                return defer.succeed("console")

        class RecordingClient:
            version_cap = None

            def prepare(self, **kw):
                return Prepared(kw)

            def can_send_version(self, version):
                return self.version_cap is None or \
                    version <= self.version_cap

        self.rpc_client = RecordingClient()
        self.client = ComputeAPIClient(self.rpc_client)
        self.ctx = RequestContext(user_id="u", project_id="p")

    def test_casts_go_to_the_instance_host(self):
        instance = make_instance(host="hv7")
        for method, kw in (("stop_instance", {}), ("start_instance", {}),
                           ("reboot_instance", {"reboot_type": "HARD"}),
                           ("pause_instance", {}), ("unpause_instance", {}),
                           ("suspend_instance", {}), ("resume_instance", {}),
                           ("terminate_instance", {"bdms": []})):
            self.successResultOf(getattr(self.client, method)(
                self.ctx, instance, **kw))
            kind, prepared, sent_method, args = self.sent[-1]
            self.assertEqual((kind, prepared["server"], sent_method),
                             ("cast", "hv7", method))
            self.assertEqual(args["instance"]["uuid"], instance.uuid)
        self.assertEqual(self.sent[2][3]["reboot_type"], "HARD")

    def test_build_goes_to_the_chosen_host(self):
        instance = make_instance(flavor={"flavorid": "1"},
                                 request_spec={"flavor": {"flavorid": "1"}})
        spec = RequestSpec(flavor={"flavorid": "1"}, image={"id": "img"},
                           requested_networks="auto")
        self.successResultOf(self.client.build_and_run_instance(
            self.ctx, instance, "hv3", request_spec=spec,
            alternates=[Selection("hv4", "n4")], attempt=2,
            admin_password="pw"))
        kind, prepared, method, args = self.sent[-1]
        self.assertEqual((prepared["server"], prepared["version"], method),
                         ("hv3", "1.1", "build_and_run_instance"))
        self.assertEqual(args["alternates"], [Selection("hv4", "n4")
                                              .to_dict()])
        # Each record once: the image beside the instance, the flavor in
        # it, no request spec and no filter properties.
        self.assertEqual(sorted(args), [
            "admin_password", "alternates", "attempt", "image",
            "injected_files", "instance", "requested_networks"])
        self.assertNotIn("request_spec", args["instance"])
        self.assertEqual(args["instance"]["flavor"], {"flavorid": "1"})
        self.assertEqual((args["image"], args["requested_networks"],
                          args["attempt"], args["admin_password"]),
                         ({"id": "img"}, "auto", 2, "pw"))

    def test_build_under_a_1_0_cap_is_sent_as_1_0(self):
        self.rpc_client.version_cap = "1.0"
        instance = make_instance()
        spec = RequestSpec(image={"id": "img"}, requested_networks="auto")
        self.successResultOf(self.client.build_and_run_instance(
            self.ctx, instance, "hv3", request_spec=spec,
            alternates=[Selection("hv4", "n4")], attempt=2))
        kind, prepared, method, args = self.sent[-1]
        self.assertEqual((prepared["version"], method),
                         ("1.0", "build_and_run_instance"))
        self.assertEqual(args["request_spec"]["_attempt"], 2)
        self.assertEqual(args["filter_properties"],
                         {"retry": {"num_attempts": 2}})
        self.assertEqual((args["image"], args["requested_networks"]),
                         ({"id": "img"}, "auto"))
        self.assertEqual(args["alternates"][0]["nodename"], "n4")
        # Other casts are 1.0 under any cap.
        self.successResultOf(self.client.stop_instance(self.ctx, instance))
        self.assertEqual(self.sent[-1][1]["version"], "1.0")

    def test_upgrade_levels_values(self):
        self.assertIsNone(parse_version_cap(""))
        self.assertIsNone(parse_version_cap("auto"))
        self.assertEqual(parse_version_cap(" 1.0 "), "1.0")

    def test_console_output_is_a_call(self):
        instance = make_instance(host="hv7")
        self.assertEqual(self.successResultOf(
            self.client.get_console_output(self.ctx, instance, 5)),
            "console")
        self.assertEqual(self.sent[-1][0], "call")
        self.assertEqual(self.sent[-1][3]["tail_length"], 5)

    def test_no_host(self):
        self.failureResultOf(
            self.client.stop_instance(self.ctx, make_instance(host=None)),
            exception.InstanceNotReady)


class OverTheLocalBusTests(ManagerTestCase):
    """The agent behind a real RPCServer on the in-process bus: what
    crosses is JSON, and the client's names match the manager's."""

    def setUp(self):
        super().setUp()
        self.transport = LocalTransport(self.clock, default_timeout=60)
        server = RPCServer(self.transport, "compute", HOST, [self.manager])
        server.log = Logger(observer=lambda event: None)
        self.successResultOf(defer.ensureDeferred(server.start()))
        self.client = ComputeAPIClient.for_transport(self.transport)

    def test_build_stop_console_delete(self):
        instance = make_instance()
        self.conductor.add(instance)
        self.successResultOf(self.client.build_and_run_instance(
            self.ctx, instance, HOST, request_spec=RequestSpec(),
            alternates=[]))
        self.clock.advance(0)
        row = self.db(instance)
        self.assertEqual(row["vm_state"], vm_states.ACTIVE)
        current = Instance.from_dict(row)
        row["task_state"] = vm_states.POWERING_OFF
        self.successResultOf(self.client.stop_instance(
            self.ctx, Instance.from_dict(row)))
        self.clock.advance(0)
        self.assertEqual(self.db(instance)["vm_state"], vm_states.STOPPED)
        d = self.client.get_console_output(self.ctx, current, None)
        self.clock.advance(0)
        self.clock.advance(0)
        self.assertIn(instance.uuid, self.successResultOf(d))
        row["task_state"] = vm_states.DELETING
        self.successResultOf(self.client.terminate_instance(
            self.ctx, Instance.from_dict(row), bdms=[]))
        self.clock.advance(0)
        self.assertTrue(self.db(instance)["deleted"])
