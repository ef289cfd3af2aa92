"""The compute agent's part of a server's life on its host (mixed into
:class:`~twisted_compute.compute.manager.ComputeManager`, RPC 1.6):
rebuild, rescue / unrescue, soft delete / restore and the periodic
reclaim of soft-deleted servers, crash dumps (NMI) and admin passwords.

Every driver call here has a deadline (``[DEFAULT]
instance_action_timeout``): when it passes, the call is cancelled and
the server gets a fault and leaves its task state, as for any failure.
"""

from __future__ import annotations

import datetime
from typing import Any

from twisted.internet import defer
from twisted.python.failure import Failure

from twisted_compute import exception
from twisted_compute.compute.common import SUCCESS, bus_time, message
from twisted_compute.context import get_admin_context
from twisted_compute.objects import vm_states
from twisted_compute.objects.instance import Instance
from twisted_compute.virt import power_state

REBUILD_EVENT = "compute_rebuild_instance"


class LifecycleMixin:
    """Uses the manager's ``conf``, ``driver``, ``conductor``,
    ``reactor``, ``host``, ``tracker``, ``_update``, ``_event``,
    ``_event_start``, ``_event_finish``, ``_fault``, ``_action``,
    ``_power_state``, ``_finish_delete`` and ``now``."""

    def _timed(self, d: defer.Deferred, action: str,
               instance_uuid: str) -> defer.Deferred:
        """``d`` cancelled and failed with LifecycleActionTimeout after
        ``instance_action_timeout`` seconds."""
        timeout = self.conf.instance_action_timeout

        def timed_out(result, seconds):
            raise exception.LifecycleActionTimeout(
                action=action, instance_uuid=instance_uuid,
                timeout=seconds)

        return d.addTimeout(timeout, self.reactor, onTimeoutCancel=timed_out)

    # --- rebuild -------------------------------------------------------

    def rebuild_instance(self, context, instance, image=None,
                         admin_password=None, injected_files=None,
                         preserve_ephemeral=False, orig_image_ref=None,
                         **kwargs):
        """Cast (1.6): reinstall the guest from ``image`` (the instance
        record carries its new image, name, user data and key already),
        keeping its uuid, MAC and fixed IP; task states
        rebuild_block_device_mapping then rebuild_spawning.  A server
        that was stopped is stopped again afterwards, as Nova."""
        return defer.ensureDeferred(self._rebuild(
            context, Instance.from_dict(instance), image or {},
            list(injected_files or ()), admin_password,
            bool(preserve_ephemeral)))

    async def _rebuild(self, context, instance: Instance, image: dict,
                       injected_files: list, admin_password,
                       preserve_ephemeral: bool) -> None:
        uuid = instance.uuid
        was_stopped = instance.vm_state == vm_states.STOPPED
        try:
            instance = await self._update(
                context, uuid,
                {"task_state": vm_states.REBUILD_BLOCK_DEVICE_MAPPING},
                expected_task_state=[vm_states.REBUILDING],
                instance=instance, event=self._event(context, REBUILD_EVENT))
        except (exception.InstanceNotFound,
                exception.UnexpectedTaskStateError) as why:
            self.log.info("[{request_id}] rebuild of {uuid} not started: "
                          "{why}", request_id=context.request_id, uuid=uuid,
                          why=message(why))
            return
        self._notify(context, instance, "rebuild", "start",
                     name="InstanceActionRebuildPayload",
                     trusted_image_certificates=None)
        try:
            instance = await self._update(
                context, uuid, {"task_state": vm_states.REBUILD_SPAWNING},
                expected_task_state=[vm_states.REBUILD_BLOCK_DEVICE_MAPPING],
                instance=instance)
            try:
                await self._timed(self._driver_rebuild(
                    context, instance, image, injected_files,
                    admin_password, preserve_ephemeral), "rebuild", uuid)
            except exception.InstanceNotFound as gone:
                # the guest, not the server, is missing: a failure
                raise exception.InstanceSpawnFailure(
                    instance_uuid=uuid, reason=message(gone)) from None
            if was_stopped:
                await self._timed(self.driver.power_off(instance),
                                  "rebuild", uuid)
            state = await self._power_state(instance)
            updates: dict[str, Any] = {
                "vm_state": (vm_states.STOPPED if was_stopped
                             else vm_states.ACTIVE),
                "task_state": None, "power_state": state,
                "launched_at": bus_time(self.now())}
            get_addresses = getattr(self.driver, "get_instance_addresses",
                                    None)
            if get_addresses is not None:
                addresses = await get_addresses(instance)
                if addresses:
                    updates["addresses"] = addresses
            instance = await self._update(
                context, uuid, updates,
                expected_task_state=[vm_states.REBUILD_SPAWNING],
                event=self._event(context, REBUILD_EVENT, SUCCESS),
                instance=instance)
            self._notify(context, instance, "rebuild", "end",
                         name="InstanceActionRebuildPayload",
                         trusted_image_certificates=None)
        except (exception.InstanceNotFound,
                exception.UnexpectedDeletingTaskStateError) as why:
            self.log.info("[{request_id}] {uuid} was deleted while "
                          "rebuilding: {why}", request_id=context.request_id,
                          uuid=uuid, why=message(why))
            await self._event_finish(context, uuid, REBUILD_EVENT, Failure())
        except Exception as exc:
            failure = Failure()
            self.log.warn("[{request_id}] rebuild of {uuid} failed: "
                          "{error}", request_id=context.request_id,
                          uuid=uuid, error=message(exc))
            await self._event_finish(context, uuid, REBUILD_EVENT, failure)
            await self._fault(context, uuid, exc, failure.getTraceback())
            try:
                instance = await self._update(context, uuid, {
                    "vm_state": vm_states.ERROR, "task_state": None,
                    "power_state": await self._power_state(instance)},
                    instance=instance)
            except exception.InstanceNotFound:
                pass
            self._notify(context, instance, "rebuild", "error", exc=exc,
                         traceback=failure.getTraceback(),
                         name="InstanceActionRebuildPayload",
                         trusted_image_certificates=None)

    def _driver_rebuild(self, context, instance, image, injected_files,
                        admin_password, preserve_ephemeral
                        ) -> defer.Deferred:
        """The driver's own rebuild, or (as Nova's default) destroy and
        spawn again."""
        rebuild = getattr(self.driver, "rebuild", None)
        if rebuild is not None:
            return rebuild(context, instance, image, injected_files,
                           admin_password, preserve_ephemeral)

        if preserve_ephemeral:
            # Nova's default rebuild cannot keep a disk either
            return defer.fail(exception.PreserveEphemeralNotSupported())

        async def destroy_and_spawn():
            await self.driver.destroy(context, instance, [], None)
            await self.driver.spawn(context, instance, image, injected_files,
                                    admin_password, [], None)
        return defer.ensureDeferred(destroy_and_spawn())

    # --- rescue --------------------------------------------------------

    def rescue_instance(self, context, instance, rescue_password=None,
                        rescue_image=None, **kwargs):
        """Cast (1.6): boot ``rescue_image`` with the server's disk as the
        second disk; RESCUED.  A failure puts the server in ERROR, as
        Nova."""
        instance = Instance.from_dict(instance)
        rescue = getattr(self.driver, "rescue", None)

        def call(i):
            if rescue is None:
                return defer.fail(exception.InstanceNotRescuable(
                    instance_uuid=i.uuid,
                    reason=f"the {type(self.driver).__name__} driver "
                    f"cannot rescue"))
            return self._timed(rescue(context, i, rescue_image or {},
                                      rescue_password), "rescue", i.uuid)

        return defer.ensureDeferred(self._action(
            context, instance, "compute_rescue_instance", call,
            vm_states.RESCUED, [vm_states.RESCUING],
            lambda state: vm_states.ERROR, notification="rescue",
            notification_payload=(
                "InstanceActionRescuePayload",
                {"rescue_image_ref": (rescue_image or {}).get("id")})))

    def unrescue_instance(self, context, instance, **kwargs):
        """Cast (1.6): boot the server's own disk again; ACTIVE."""
        instance = Instance.from_dict(instance)

        def call(i):
            return self._timed(self.driver.unrescue(context, i),
                               "unrescue", i.uuid)

        return defer.ensureDeferred(self._action(
            context, instance, "compute_unrescue_instance", call,
            vm_states.ACTIVE, [vm_states.UNRESCUING],
            notification="unrescue"))

    # --- soft delete, restore, reclaim ---------------------------------

    def soft_delete_instance(self, context, instance, **kwargs):
        """Cast (1.6): power the guest off and leave it SOFT_DELETED (its
        disk and resources stay until it is restored or reclaimed)."""
        instance = Instance.from_dict(instance)

        def call(i):
            return self._timed(self.driver.power_off(i), "soft_delete",
                               i.uuid)

        return defer.ensureDeferred(self._action(
            context, instance, "compute_soft_delete_instance", call,
            vm_states.SOFT_DELETED, [vm_states.SOFT_DELETING],
            notification="soft_delete"))

    def restore_instance(self, context, instance, **kwargs):
        """Cast (1.6): power a SOFT_DELETED guest on again; ACTIVE."""
        instance = Instance.from_dict(instance)

        def call(i):
            return self._timed(self._power_on_if_off(context, i),
                               "restore", i.uuid)

        return defer.ensureDeferred(self._action(
            context, instance, "compute_restore_instance", call,
            vm_states.ACTIVE, [vm_states.RESTORING],
            notification="restore"))

    def _power_on_if_off(self, context, instance) -> defer.Deferred:
        async def run():
            if await self._power_state(instance) != power_state.RUNNING:
                await self.driver.power_on(context, instance, [])
        return defer.ensureDeferred(run())

    def reclaim_queued_deletes(self, context=None) -> defer.Deferred:
        """Periodic: delete for good the servers of this host that have
        been SOFT_DELETED for ``reclaim_instance_interval`` seconds."""
        return self._periodic(self._reclaim_queued_deletes, context)

    async def _reclaim_queued_deletes(self, context) -> list[str]:
        interval = self.conf.reclaim_instance_interval
        if interval <= 0:
            return []
        context = context or get_admin_context()
        instances = await self.conductor.instances_on_host(context,
                                                           self.host)
        oldest = self.now() - datetime.timedelta(seconds=interval)
        reclaimed = []
        for instance in instances:
            if instance.vm_state != vm_states.SOFT_DELETED or \
                    instance.task_state is not None:
                continue
            if instance.deleted_at is not None and \
                    instance.deleted_at > oldest:
                continue
            self.log.info("reclaiming {uuid}, soft deleted since "
                          "{deleted_at}", uuid=instance.uuid,
                          deleted_at=instance.deleted_at)
            try:
                instance = await self._update(
                    context, instance.uuid,
                    {"task_state": vm_states.DELETING},
                    expected_task_state=[None], instance=instance)
                self._notify(context, instance, "delete", "start")
                await self._timed(defer.maybeDeferred(
                    self.driver.destroy, context, instance, [], None),
                    "reclaim", instance.uuid)
            except (exception.InstanceNotFound,
                    exception.UnexpectedTaskStateError):
                continue  # restored or deleted meanwhile
            except Exception as exc:  # noqa: BLE001 - the next one goes on
                failure = Failure()
                await self._fault(context, instance.uuid, exc,
                                  failure.getTraceback())
                await self._update(context, instance.uuid, {
                    "vm_state": vm_states.ERROR, "task_state": None})
                continue
            self.tracker.drop(instance.uuid)
            deleted = await self._finish_delete(context, instance.uuid,
                                                instance)
            self._notify(context, deleted or instance, "delete", "end")
            reclaimed.append(instance.uuid)
        return reclaimed

    # --- crash dump, password ------------------------------------------

    def trigger_crash_dump(self, context, instance, **kwargs):
        """Cast (1.6): an NMI to the guest (its kernel's crash dump);
        no task state, as Nova."""
        return defer.ensureDeferred(self._crash_dump(
            context, Instance.from_dict(instance)))

    async def _crash_dump(self, context, instance: Instance) -> None:
        event = "compute_trigger_crash_dump"
        uuid = instance.uuid
        await self._event_start(context, uuid, event)
        self._notify(context, instance, "trigger_crash_dump", "start")
        try:
            inject = getattr(self.driver, "inject_nmi", None)
            if inject is None:
                raise exception.NMINotSupported()
            await self._timed(inject(instance), "trigger_crash_dump", uuid)
        except Exception as exc:
            failure = Failure()
            await self._event_finish(context, uuid, event, failure)
            await self._fault(context, uuid, exc, failure.getTraceback())
            self._notify(context, instance, "trigger_crash_dump", "error",
                         exc=exc, traceback=failure.getTraceback())
            return
        await self._event_finish(context, uuid, event)
        self._notify(context, instance, "trigger_crash_dump", "end")

    async def set_admin_password(self, context, instance, new_pass,
                                 **kwargs) -> None:
        """Call (1.6): set the guest's admin password through its guest
        agent.  Raises InstanceAgentNotEnabled (409) when the image has
        none, NotImplementedYet (501) for a driver that cannot at all,
        InstancePasswordSetFailed (409, nothing of the password in it)
        for anything else.  The task state is cleared in every case."""
        instance = Instance.from_dict(instance)
        uuid = instance.uuid
        event = "compute_set_admin_password"
        await self._event_start(context, uuid, event)
        error = None
        try:
            setter = getattr(self.driver, "set_admin_password", None)
            if setter is None:
                raise exception.NotImplementedYet(
                    feature="Setting the admin password on the "
                    f"{type(self.driver).__name__} driver")
            await self._timed(setter(instance, new_pass),
                              "set_admin_password", uuid)
        except (exception.InstanceAgentNotEnabled,
                exception.NotImplementedYet) as exc:
            error = exc
        except Exception as exc:  # noqa: BLE001 - never echo the password
            self.log.warn("setting the password of {uuid} failed: {error}",
                          uuid=uuid, error=type(exc).__name__)
            error = exception.InstancePasswordSetFailed(
                instance_uuid=uuid, reason="the guest agent failed")
        try:
            await self._update(context, uuid, {"task_state": None},
                               expected_task_state=[
                                   vm_states.UPDATING_PASSWORD])
        except (exception.InstanceNotFound,
                exception.UnexpectedTaskStateError):
            pass
        if error is not None:
            try:
                raise error
            except Exception:
                failure = Failure()
            await self._event_finish(context, uuid, event, failure)
            # a fault, as Nova's (wrap_instance_fault); the message never
            # holds the password
            await self._fault(context, uuid, error, None)
            raise error
        await self._event_finish(context, uuid, event)
