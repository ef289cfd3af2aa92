"""The compute agent: :class:`ComputeManager`, the RPC endpoint of topic
``compute.<host>`` on each hypervisor host.

The agent runs the virt driver (:mod:`twisted_compute.virt.driver`), holds
the host's resource claims (:mod:`twisted_compute.compute.resource_tracker`)
and reports everything through the conductor: agents have NO database.

RPC methods (``RPC_API_VERSION`` 1.1) take ``(context, **kwargs)``; an
``instance`` argument is an instance dict (``Instance.to_dict()``, bus
form: datetimes as ``{"__datetime__": iso}``), decoded into a record on
entry.  ``build_and_run_instance`` and the actions are casts;
``get_console_output`` and ``get_console`` are calls.

Periodic tasks, for the service to run with ``task.LoopingCall`` (each
returns a Deferred and never fails, so the loop never stops on an error):
:meth:`ComputeManager.update_available_resource`,
:meth:`ComputeManager.sync_power_states`; :meth:`ComputeManager.init_host`
runs once at start, *before* the RPC server consumes.

The conductor interface this module assumes
-------------------------------------------

``conductor`` is the conductor RPC client; every method returns a
Deferred; ``context`` is the request context; timestamps in ``updates``
are in bus form (``{"__datetime__": "<naive UTC ISO 8601>"}``, decode with
``twisted_compute.objects._decode`` / ``Record.from_dict``):

``instance_update(context, instance_uuid, updates: dict, expected_task_state: list | None = None, expected_host: str | None = None, fetch: bool = True, event: dict | None = None) -> dict | None``
    Write ``updates`` to the (non-deleted) instance and return the
    instance dict after the write (None when ``fetch`` is false: the
    agent passes false and applies its updates to its own copy).  With
    ``expected_host``, the write also needs the instance's host to be
    that one (a stale build request cannot take an instance that went
    elsewhere).  With ``event`` (``request_id``, ``event``, ``host``, and
    ``result`` to end it), the start or end of an action event is recorded
    in the same transaction.  With ``expected_task_state`` a list
    (``[None]`` meaning "no task"), the write happens only if the current
    task_state is in it, atomically; otherwise it raises
    ``UnexpectedDeletingTaskStateError`` when the actual task_state is
    ``deleting``, ``UnexpectedTaskStateError`` for any other.  Raises
    ``InstanceNotFound`` for a deleted or unknown instance.
``instance_destroyed(context, instance_uuid) -> None``
    (Not in the brief's list; the conductor has it.)  Soft-delete the
    instance row at the end of a termination (the agent has just written
    vm_state ``deleted``); an instance already gone is not an error.
``instances_on_host(context, host) -> list[Instance]``
    The non-deleted instances whose ``host`` is ``host`` (records: the
    client decodes them).
``compute_node_update(context, values: dict) -> None``
    Upsert this host's compute node, keyed by ``(host,
    hypervisor_hostname)``; ``values`` holds host, hypervisor_hostname,
    hypervisor_type, hypervisor_version, vcpus, memory_mb, local_gb,
    vcpus_used, memory_mb_used, local_gb_used, running_vms, cpu_info
    (JSON text), cpu_allocation_ratio, ram_allocation_ratio,
    disk_allocation_ratio, and ``uptime`` (the host's uptime line, or
    None).
``service_heartbeat(context, host, binary, topic) -> dict``
    The service row (with ``disabled``); called by the service, not here.
``action_event_start(context, instance_uuid, request_id, event, host) -> None``
``action_event_finish(context, instance_uuid, request_id, event, host, result, traceback=None, details=None) -> None``
    Start / finish event ``event`` of the instance action recorded by the
    API for ``request_id``; ``result`` is ``"Success"`` or ``"Error"``;
    ``details`` (1.3) is a failed event's fault message.
    A failure here is logged by the agent and does not stop its work.
``instance_fault_create(context, instance_uuid, code, message, details, host) -> None``
``build_failed(context, instance: Instance, alternates: tuple[Selection, ...], reason: str, attempt: int, image: dict | None, requested_networks=None) -> None``
    The build on this host failed (no room after all, or the spawn
    failed); the guest is destroyed and the claim released.  The
    conductor reschedules to the next alternate (resetting host, node
    and task_state ``scheduling``) or puts the instance in ERROR with a
    fault.
"""

from __future__ import annotations

import datetime
from typing import Any, Callable

import attrs
from twisted.internet import defer
from twisted.python.failure import Failure

from twisted_compute import exception
from twisted_compute.compute.build import BuildMixin, _Build
from twisted_compute.compute.common import (
    ERROR, HARD_REBOOT_TASK_STATES, SOFT_REBOOT_TASK_STATES, SUCCESS,
    bus_time, fault_code, message)
from twisted_compute.compute.init_host import (  # noqa: F401 - names of
    RESTART_BUILD_REASON, InitHostMixin)       # this module's API
from twisted_compute.compute.move import MoveMixin
from twisted_compute.compute.image_client import ImageClient
from twisted_compute.compute.lifecycle import LifecycleMixin
from twisted_compute.compute.power_sync import PowerSyncMixin
from twisted_compute.compute.snapshot import SnapshotMixin
from twisted_compute.compute.instance_events import InstanceEvents
from twisted_compute.compute.resource_tracker import ResourceTracker
from twisted_compute.context import get_admin_context
from twisted_compute.log import Logger
from twisted_compute.notifications import NOOP, Publisher
from twisted_compute.objects import _decode, vm_states
from twisted_compute.objects.instance import Instance
from twisted_compute.virt import power_state
from twisted_compute.virt.driver import HARD, SOFT


#: Fields of an instance record (what an update may change locally).
_INSTANCE_FIELDS = frozenset(f.name for f in attrs.fields(Instance))


class ComputeManager(BuildMixin, MoveMixin, PowerSyncMixin, InitHostMixin,
                     SnapshotMixin, LifecycleMixin):
    """The agent of one host: RPC endpoint, builds
    (:class:`~twisted_compute.compute.build.BuildMixin`), actions,
    periodic tasks (power sync:
    :class:`~twisted_compute.compute.power_sync.PowerSyncMixin`) and its
    start (:class:`~twisted_compute.compute.init_host.InitHostMixin`)."""

    #: See :data:`twisted_compute.compute.rpcapi.RPC_API_VERSION` (1.1:
    #: ``build_and_run_instance`` takes ``image``, ``requested_networks``
    #: and ``attempt``; the 1.0 form is served too; 1.2: ``get_console``;
    #: 1.3: diagnostics, external events, image pre-caching: new methods
    #: only, so older messages are served unchanged; 1.4: the move steps
    #: of :mod:`twisted_compute.compute.move`),
    #: 1.5: snapshots, backups, shelving: new methods only;
    #: 1.6: rebuild, rescue, soft delete, restore, crash dump, password:
    #: :mod:`.lifecycle`); 1.7: ``evacuate_spawn``,
    #: ``live_migration_force_complete``, ``live_migration_abort``).
    RPC_API_VERSION = "1.7"
    target_version = RPC_API_VERSION
    log = Logger()
    #: Nova's versioned notifications (``nova-compute:<host>``); the
    #: agent's process gives it its own.
    notifier: Publisher = NOOP

    def __init__(self, conf, host: str, driver, conductor, reactor,
                 images: ImageClient | None = None):
        self.conf = conf
        self.host = host
        self.driver = driver
        self.conductor = conductor
        self.reactor = reactor
        #: The image API, for snapshots (uploads read files in the
        #: driver's IO pool when it has one).
        self.images = images if images is not None else \
            ImageClient.from_conf(conf, reactor,
                                  pool=getattr(driver, "io_pool", None))
        self.tracker = ResourceTracker(conf, host, driver)
        #: What builds in progress wait for (network-vif-plugged).
        self.instance_events = InstanceEvents(reactor)
        #: Builds in progress on this host, by instance uuid.
        self.builds: dict[str, _Build] = {}
        listen = getattr(driver, "register_event_listener", None)
        if listen is not None:
            listen(self.handle_lifecycle_event)

    # --- helpers -------------------------------------------------------

    @property
    def nodename(self) -> str | None:
        return self.tracker.nodename

    def now(self) -> datetime.datetime:
        """Naive UTC now, from the injected reactor's clock."""
        return datetime.datetime.fromtimestamp(
            self.reactor.seconds(), datetime.timezone.utc
        ).replace(tzinfo=None)

    async def _update(self, context, instance_uuid: str,
                      updates: dict[str, Any],
                      expected_task_state: list | None = None,
                      expected_host: str | None = None,
                      instance: Instance | None = None,
                      event: dict[str, Any] | None = None
                      ) -> Instance | None:
        """Write ``updates`` (and ``event``, see :meth:`_event`) through
        the conductor.  The database is not read back: with ``instance``
        given, the result is that record with the updates applied;
        otherwise None."""
        await self.conductor.instance_update(
            context, instance_uuid, updates,
            expected_task_state=expected_task_state,
            expected_host=expected_host, fetch=False, event=event)
        if instance is None:
            return None
        updated = attrs.evolve(instance, **{
            k: v for k, v in _decode(updates).items()
            if k in _INSTANCE_FIELDS})
        self.notifier.instance_update(context, instance, updated)
        return updated

    def _notify(self, context, instance: Instance | None, action: str,
                phase: str, exc: BaseException | None = None,
                **kwargs) -> None:
        """Nova's ``instance.<action>.<phase>`` notification (never
        raises, never waits)."""
        self.notifier.instance_action(context, instance, action, phase,
                                      exc=exc, **kwargs)

    def _event(self, context, event: str, result: str | None = None
               ) -> dict[str, Any]:
        """An action event to record with an instance update: its start,
        or with ``result`` its end."""
        value = {"request_id": context.request_id, "event": event,
                 "host": self.host}
        if result is not None:
            value["result"] = result
        return value

    async def _event_start(self, context, instance_uuid: str,
                           event: str) -> None:
        try:
            await self.conductor.action_event_start(
                context, instance_uuid, context.request_id, event,
                self.host)
        except Exception:
            self.log.failure("[{request_id}] could not record the start of "
                             "{event} of {uuid}",
                             request_id=context.request_id, event=event,
                             uuid=instance_uuid)

    async def _event_finish(self, context, instance_uuid: str, event: str,
                            failure: Failure | None = None) -> None:
        try:
            await self.conductor.action_event_finish(
                context, instance_uuid, context.request_id, event,
                self.host, ERROR if failure is not None else SUCCESS,
                traceback=(failure.getTraceback() if failure is not None
                           else None),
                details=(message(failure.value) if failure is not None
                         else None))
        except Exception:
            self.log.failure("[{request_id}] could not record the end of "
                             "{event} of {uuid}",
                             request_id=context.request_id, event=event,
                             uuid=instance_uuid)

    async def _fault(self, context, instance_uuid: str, exc: BaseException,
                     details: str | None = None) -> None:
        try:
            await self.conductor.instance_fault_create(
                context, instance_uuid, fault_code(exc), message(exc),
                details, self.host)
        except Exception:
            self.log.failure("could not record a fault of {uuid}",
                             uuid=instance_uuid)

    async def _power_state(self, instance: Instance) -> int:
        """The guest's power state; NOSTATE when the driver lacks it."""
        try:
            info = await self.driver.get_info(instance)
        except exception.InstanceNotFound:
            return power_state.NOSTATE
        return info.state

    async def _destroy_quietly(self, context, instance: Instance) -> None:
        try:
            await self.driver.destroy(context, instance, [], None)
        except Exception:
            self.log.failure("could not destroy the guest of {uuid}",
                             uuid=instance.uuid)

    # --- build ---------------------------------------------------------

    # --- terminate -----------------------------------------------------

    async def terminate_instance(self, context, instance, bdms=None,
                                 **kwargs) -> None:
        """Cast: destroy the guest and finish the deletion; a build in
        progress is aborted first."""
        instance = Instance.from_dict(instance)
        uuid = instance.uuid
        event = "compute_terminate_instance"
        await self._event_start(context, uuid, event)
        self._notify(context, instance, "delete", "start")
        build = self.builds.get(uuid)
        if build is not None:
            build.deleted = True
            if build.spawning is not None:
                build.spawning.cancel()
            await self.wait_for_build(uuid)
        try:
            await self.driver.destroy(context, instance, [], None)
        except Exception as exc:
            failure = Failure()
            await self._event_finish(context, uuid, event, failure)
            await self._fault(context, uuid, exc, failure.getTraceback())
            try:
                await self._update(context, uuid, {
                    "vm_state": vm_states.ERROR, "task_state": None},
                    instance=instance)
            except exception.InstanceNotFound:
                pass
            raise
        self.tracker.drop(uuid)
        deleted = await self._finish_delete(context, uuid, instance)
        await self._event_finish(context, uuid, event)
        self._notify(context, deleted or instance, "delete", "end")

    async def _finish_delete(self, context, instance_uuid: str,
                             instance: Instance | None = None
                             ) -> Instance | None:
        """The deleted instance (``instance`` as written) when given."""
        try:
            deleted = await self._update(context, instance_uuid, {
                "vm_state": vm_states.DELETED, "task_state": None,
                "power_state": power_state.NOSTATE,
                "terminated_at": bus_time(self.now())}, instance=instance)
            await self.conductor.instance_destroyed(context, instance_uuid)
            if deleted is not None:
                deleted = attrs.evolve(deleted, deleted_at=self.now())
            return deleted
        except exception.InstanceNotFound:
            self.log.info("instance {uuid} was already deleted",
                          uuid=instance_uuid)
            return None

    # --- actions -------------------------------------------------------

    async def _action(self, context, instance: Instance, event: str,
                      call: Callable[[Instance], defer.Deferred],
                      vm_state: str, expected_task_state: list,
                      error_vm_state: Callable[[int], str | None] = (
                          lambda state: None),
                      notification: str | None = None,
                      notification_payload: tuple[str, dict] | None = None
                      ) -> None:
        """Run one driver action the way Nova does: event recorded; on
        success the new vm_state and power_state with no task; on a driver
        error a fault, the task_state reset and, where ``error_vm_state``
        says so, a new vm_state; the error is re-raised.  With
        ``notification`` (Nova's action name, ``power_off``), its
        ``.start`` and ``.end`` notifications, or ``.error``;
        ``notification_payload`` names their payload and its extra
        fields (``("InstanceActionRescuePayload", {...})``)."""
        uuid = instance.uuid
        name, extra = notification_payload or ("InstanceActionPayload", {})

        def notify(record, phase, **kwargs):
            if notification:
                self._notify(context, record, notification, phase,
                             name=name, **extra, **kwargs)

        await self._event_start(context, uuid, event)
        notify(instance, "start")
        try:
            await call(instance)
        except Exception as exc:
            failure = Failure()
            self.log.warn("[{request_id}] {event} of {uuid} failed: "
                          "{error}", request_id=context.request_id,
                          event=event, uuid=uuid, error=message(exc))
            await self._event_finish(context, uuid, event, failure)
            await self._fault(context, uuid, exc, failure.getTraceback())
            state = await self._power_state(instance)
            revert: dict[str, Any] = {"task_state": None,
                                      "power_state": state}
            new_vm_state = error_vm_state(state)
            if new_vm_state is not None:
                revert["vm_state"] = new_vm_state
            try:
                reverted = await self._update(
                    context, uuid, revert,
                    expected_task_state=expected_task_state,
                    instance=instance)
            except (exception.InstanceNotFound,
                    exception.UnexpectedTaskStateError) as why:
                reverted = instance
                self.log.info("not resetting the task of {uuid}: {why}",
                              uuid=uuid, why=message(why))
            notify(reverted, "error", exc=exc,
                   traceback=failure.getTraceback())
            failure.raiseException()
        state = await self._power_state(instance)
        done = instance
        try:
            done = await self._update(context, uuid, {
                "vm_state": vm_state, "power_state": state,
                "task_state": None}, expected_task_state=expected_task_state,
                instance=instance)
        except (exception.InstanceNotFound,
                exception.UnexpectedTaskStateError) as why:
            # Deleted, or another task took over meanwhile: theirs wins.
            self.log.info("[{request_id}] {event} of {uuid} done, but the "
                          "instance changed meanwhile: {why}",
                          request_id=context.request_id, event=event,
                          uuid=uuid, why=message(why))
        await self._event_finish(context, uuid, event)
        notify(done, "end")

    def stop_instance(self, context, instance, clean_shutdown=True,
                      **kwargs):
        return defer.ensureDeferred(self._action(
            context, Instance.from_dict(instance), "compute_stop_instance",
            lambda i: self.driver.power_off(i), vm_states.STOPPED,
            [vm_states.POWERING_OFF], notification="power_off"))

    def start_instance(self, context, instance, **kwargs):
        return defer.ensureDeferred(self._action(
            context, Instance.from_dict(instance), "compute_start_instance",
            lambda i: self.driver.power_on(context, i, []),
            vm_states.ACTIVE, [vm_states.POWERING_ON],
            notification="power_on"))

    def reboot_instance(self, context, instance, reboot_type=SOFT,
                        **kwargs):
        expected = (HARD_REBOOT_TASK_STATES if reboot_type == HARD
                    else SOFT_REBOOT_TASK_STATES)

        def error_vm_state(state: int) -> str | None:
            # As Nova: a failed reboot leaves a running guest's vm_state
            # alone, anything else is an error.
            return None if state == power_state.RUNNING else vm_states.ERROR

        return defer.ensureDeferred(self._action(
            context, Instance.from_dict(instance), "compute_reboot_instance",
            lambda i: self.driver.reboot(context, i, [], reboot_type),
            vm_states.ACTIVE, expected, error_vm_state,
            notification="reboot"))

    def pause_instance(self, context, instance, **kwargs):
        return defer.ensureDeferred(self._action(
            context, Instance.from_dict(instance), "compute_pause_instance",
            self.driver.pause, vm_states.PAUSED, [vm_states.PAUSING],
            notification="pause"))

    def unpause_instance(self, context, instance, **kwargs):
        return defer.ensureDeferred(self._action(
            context, Instance.from_dict(instance), "compute_unpause_instance",
            self.driver.unpause, vm_states.ACTIVE, [vm_states.UNPAUSING],
            notification="unpause"))

    def suspend_instance(self, context, instance, **kwargs):
        return defer.ensureDeferred(self._action(
            context, Instance.from_dict(instance), "compute_suspend_instance",
            lambda i: self.driver.suspend(context, i), vm_states.SUSPENDED,
            [vm_states.SUSPENDING], notification="suspend"))

    def resume_instance(self, context, instance, **kwargs):
        # As Nova: a failed resume puts the instance in ERROR.
        return defer.ensureDeferred(self._action(
            context, Instance.from_dict(instance), "compute_resume_instance",
            lambda i: self.driver.resume(context, i, []), vm_states.ACTIVE,
            [vm_states.RESUMING], lambda state: vm_states.ERROR,
            notification="resume"))

    async def get_console_output(self, context, instance, tail_length=None,
                                 **kwargs) -> str:
        """Call: the guest's console log as text, only its last
        ``tail_length`` lines when given."""
        instance = Instance.from_dict(instance)
        output = await self.driver.get_console_output(context, instance)
        text = output.decode("utf-8", "replace") if isinstance(
            output, bytes) else str(output)
        if tail_length is not None:
            length = int(tail_length)
            if length <= 0:
                return ""
            text = "\n".join(text.splitlines()[-length:])
        return text

    async def get_console(self, context, instance, console_type,
                          **kwargs) -> dict:
        """Call: where the guest's ``console_type`` console is (a
        :class:`~twisted_compute.objects.console.ConsoleInfo` dict) for
        the console proxy to connect to."""
        instance = Instance.from_dict(instance)
        get = getattr(self.driver, "get_console", None)
        if get is None:
            raise exception.ConsoleNotSupported(
                console_type=console_type, driver=type(self.driver).__name__)
        info = await get(context, instance, console_type)
        return info.to_dict()
    async def get_instance_diagnostics(self, context, instance,
                                       **kwargs) -> dict:
        """Call (1.3): the guest's diagnostics (bus form of
        :class:`~twisted_compute.objects.diagnostics.Diagnostics`), with
        its uptime and config drive; only of a running guest, as Nova
        (InstanceInvalidState otherwise)."""
        instance = Instance.from_dict(instance)
        read = getattr(self.driver, "get_instance_diagnostics", None)
        if read is None:
            raise exception.NotImplementedYet(
                feature="Diagnostics on this virt driver")
        current = await self._power_state(instance)
        if current != power_state.RUNNING:
            raise exception.InstanceInvalidState(
                attr="power_state", instance_uuid=instance.uuid,
                state=power_state.name(current), action="get_diagnostics")
        result = await read(instance)
        uptime = None
        if instance.launched_at is not None:
            uptime = max(0, int((self.now() - instance.launched_at)
                                .total_seconds()))
        return attrs.evolve(result, uptime=uptime,
                            config_drive=bool(instance.config_drive)
                            ).to_dict()

    async def cache_images(self, context, image_ids, **kwargs) -> dict:
        """Cast (1.3): pre-cache images on this host, one after another
        (the driver's ``cache_image``); logs and returns what each
        became (``cached``, ``existing``, ``error``, ``unsupported``)."""
        cache = getattr(self.driver, "cache_image", None)
        results = {}
        for image_id in image_ids:
            if cache is None:
                results[image_id] = "unsupported"
                continue
            try:
                results[image_id] = await cache(context, image_id)
            except Exception as exc:  # noqa: BLE001 - reported per image
                self.log.warn("pre-caching {image_id} on {host} failed: "
                              "{error}", image_id=image_id, host=self.host,
                              error=exc)
                results[image_id] = "error"
        self.log.info("[{request_id}] image pre-cache on {host}: {results}",
                      request_id=context.request_id, host=self.host,
                      results=", ".join(f"{k} {v}" for k, v in
                                        results.items()))
        return results

    def external_instance_event(self, context, events, **kwargs) -> None:
        """Cast (1.3): external events (``{"name", "server_uuid",
        "status", "tag"}``) for instances on this host; each goes to the
        build that waits for it, if any (the API recorded it already)."""
        for event in events:
            uuid = event.get("server_uuid")
            name = event.get("name")
            status = event.get("status") or "completed"
            if self.instance_events.deliver(uuid, name, status):
                self.log.info("[{request_id}] event {name} ({status}) of "
                              "{uuid} received", request_id=context.request_id,
                              name=name, status=status, uuid=uuid)
            else:
                self.log.debug("event {name} of {uuid}: no build waits "
                               "for it", name=name, uuid=uuid)

    # --- periodic tasks ------------------------------------------------

    def update_available_resource(self, context=None) -> defer.Deferred:
        """Periodic: report this node's capacity and usage."""
        return self._periodic(self._update_available_resource, context)

    def _periodic(self, func, context) -> defer.Deferred:
        d = defer.ensureDeferred(func(context or get_admin_context()))
        d.addErrback(lambda f: self.log.failure(
            "periodic task {task} of {host} failed", f,
            task=func.__name__.lstrip("_"), host=self.host))
        return d

    async def _update_available_resource(self, context) -> dict[str, Any]:
        await self.tracker.refresh()
        instances = await self.conductor.instances_on_host(context,
                                                           self.host)
        self.tracker.set_instances(instances)
        values = self.tracker.compute_node_values()
        await self.conductor.compute_node_update(context, values)
        return values
