"""The conductor: orchestrates builds and is the agents' DB proxy.

Build flow::

    API --cast--> schedule_and_build_instances
        --call--> scheduler.select_destinations  (host + alternates each)
        --cast--> compute.<host>.build_and_run_instance
    agent --cast--> build_failed  (reschedule to the next alternate,
                                   or ERROR with a fault)

A periodic task puts instances that are still building after
``instance_build_timeout`` seconds in ERROR, so that nothing stays in
BUILD forever, whatever died on the way (an agent, a conductor, a lost
message).
"""

from __future__ import annotations

import datetime
from typing import Any

import attrs

from twisted_compute import exception
from twisted_compute.conductor.move import MoveTaskMixin
from twisted_compute.context import RequestContext, get_admin_context
from twisted_compute.log import Logger
from twisted_compute.notifications import NOOP
from twisted_compute.objects import _decode, vm_states
from twisted_compute.objects.boot_request import BootRequest
from twisted_compute.objects.instance import Instance
from twisted_compute.objects.request_spec import RequestSpec
from twisted_compute.objects.selection import Selection

BUILD_EVENT = "conductor_schedule_and_build_instances"
REBUILD_EVENT = "conductor_rebuild_instance"


def _placement(selection: Selection) -> dict[str, Any]:
    """The instance columns a placement on ``selection`` sets."""
    return {"host": selection.host, "node": selection.node,
            "launched_on": selection.host,
            "task_state": vm_states.SCHEDULING}


def _ctx(context) -> RequestContext:
    if isinstance(context, RequestContext):
        return context
    return RequestContext.from_dict(context or {})


@attrs.frozen(slots=True)
class _Secrets:
    """What the agent needs to build and nobody stores."""

    admin_password: str | None = None
    injected_files: tuple = ()


_NO_SECRETS = _Secrets()


class ConductorManager(MoveTaskMixin):
    """The conductor's RPC endpoint (topic ``conductor``).

    RPC methods decode their arguments into records on entry (the old
    forms an agent or API one minor version behind sends as well); the
    rest of the class works on records only.
    """

    #: 1.0 - first version
    #: 1.1 - ``instance_update`` takes ``expected_host``, ``fetch`` and
    #:       ``event``
    #: 1.2 - ``schedule_and_build_instances`` takes one ``boot_request``
    #:       (:class:`BootRequest`; 1.0: ``build_requests`` and a
    #:       ``request_spec`` with the secrets in it);
    #:       ``build_failed`` takes ``attempt``, ``image`` and
    #:       ``requested_networks`` instead of a ``request_spec`` (1.0:
    #:       the request spec the agent was sent, ``_attempt`` in it)
    #: 1.3 - ``action_event_finish`` takes ``details`` (a failed event's
    #:       fault message, shown from microversion 2.84)
    #: 1.4 - ``migrate_server``, ``confirm_resize``, ``revert_resize``,
    #:       ``live_migrate_instance``
    #:       (casts: the moves of :mod:`twisted_compute.conductor.move`)
    #: 1.5 - ``unshelve_instance`` (a cast from the API)
    #: 1.6 - ``rebuild_instance`` (a cast from the API)
    #: 1.7 - the batched reports of a process of many (fake) agents:
    #:       ``service_heartbeats``, ``compute_nodes_update`` and
    #:       ``instances_on_hosts`` (new methods only)
    #: 1.8 - ``evacuate_instance`` (a cast from the API), and for the
    #:       agents ``evacuations_from_host``, ``evacuation_cleaned`` and
    #:       ``migration_progress`` (calls)
    RPC_API_VERSION = "1.8"
    log = Logger()
    #: Nova's versioned notifications (``nova-conductor:<host>``).
    notifier = NOOP

    def __init__(self, conf, db_service, scheduler, compute, clock,
                 host: str | None = None):
        self.conf = conf
        self.db = db_service
        self.scheduler = scheduler  # SchedulerAPIClient
        self.compute = compute      # ComputeAPIClient
        self.clock = clock
        self.host = host or conf.host

    # --- builds -------------------------------------------------------

    async def schedule_and_build_instances(self, context,
                                           build_requests=None,
                                           request_spec=None,
                                           boot_request=None):
        """RPC cast: pick hosts for the new instances and cast their
        builds.  1.2 sends ``boot_request`` (a :class:`BootRequest`'s bus
        form); 1.0 sent ``build_requests`` (instance dicts) and
        ``request_spec`` (with the secrets in it)."""
        if boot_request is not None:
            boot = BootRequest.from_dict(boot_request)
        else:
            boot = BootRequest.from_legacy(build_requests, request_spec)
        await self._schedule_and_build(_ctx(context), boot)

    async def _schedule_and_build(self, context, boot: BootRequest):
        """The message is acknowledged after this returns, so a conductor
        that dies half-way has it redelivered to another one: each
        instance's state in the database says how far the first run got.
        Instances not placed yet are scheduled; those placed on a host
        whose agent has not taken them yet are handed to that host again
        (an agent ignores a build it already has, or that went
        elsewhere); the rest are left alone.
        """
        instances = boot.instances
        secrets = _Secrets(boot.admin_password, boot.injected_files)
        states = await self.db.instances.build_states(
            [i.uuid for i in instances])
        to_schedule, to_resend = [], []
        for instance in instances:
            vm_state, task_state, host = states.get(
                instance.uuid, (None, None, None))
            if (vm_state != vm_states.BUILDING
                    or task_state != vm_states.SCHEDULING):
                continue  # deleted, built, failed, or an agent has it
            (to_resend if host else to_schedule).append((instance, host))
        if len(to_schedule) + len(to_resend) < len(instances):
            self.log.info("Request {request_id} seen again: {n} of its "
                          "instances are past scheduling", n=len(instances)
                          - len(to_schedule) - len(to_resend),
                          request_id=context.request_id)
        spec = boot.request_spec
        if to_schedule:
            await self._schedule_and_place(
                context, [i for i, _ in to_schedule], spec, secrets)
        for instance, host in to_resend:
            self.log.info("Handing {uuid} to {host} again (request "
                          "{request_id} redelivered)", uuid=instance.uuid,
                          host=host, request_id=context.request_id)
            await self._cast_build(context, instance, Selection(host), (),
                                   spec, secrets, attempt=1)

    async def _schedule_and_place(self, context, instances: list[Instance],
                                  spec: RequestSpec, secrets: _Secrets
                                  ) -> None:
        """Ask the scheduler, then record every placement and the
        scheduling event in one transaction, then cast the builds."""
        uuids = [i.uuid for i in instances]
        started = self._now()
        try:
            selections = await self.scheduler.select_destinations(
                context, spec, uuids, return_alternates=True)
        except Exception as error:  # noqa: BLE001 - every error ends here
            reason = (error.format_message()
                      if isinstance(error, exception.ComputeException)
                      else "Error while scheduling: " + str(error))
            if not isinstance(error, exception.NoValidHost):
                self.log.failure("Scheduling {uuids} failed (request "
                                 "{request_id})", uuids=uuids,
                                 request_id=context.request_id)
            else:
                self.log.warn("No valid host for {uuids} (request "
                              "{request_id}): {reason}", uuids=uuids,
                              request_id=context.request_id, reason=reason)
            failed = set(await self.db.instances.fail_scheduling(
                uuids, 500, reason, context.request_id, BUILD_EVENT,
                self.host, started))
            for instance in instances:
                if instance.uuid in failed:
                    self.notifier.instance_update(
                        context, instance, attrs.evolve(
                            instance, vm_state=vm_states.ERROR,
                            task_state=None))
            return
        placements = {i.uuid: _placement(selection)
                      for i, selection in zip(instances, selections)}
        placed = await self.db.instances.place_all(
            placements, context.request_id, BUILD_EVENT, self.host, started,
            default_zone=self.conf.default_availability_zone)
        for instance, selection in zip(instances, selections):
            if instance.uuid not in placed:
                self.log.info("Instance {uuid} was deleted while "
                              "scheduling; not building it",
                              uuid=instance.uuid)
                continue
            instance = attrs.evolve(instance, **placements[instance.uuid])
            self._log_building(context, instance, selection, 1)
            await self._cast_build(context, instance, selection,
                                   selection.alternates, spec, secrets,
                                   attempt=1)

    def _log_building(self, context, instance, selection: Selection,
                      attempt) -> None:
        self.log.info("Building {uuid} on {host} (attempt {attempt}, "
                      "request {request_id})", uuid=instance.uuid,
                      host=selection.host, attempt=attempt,
                      request_id=context.request_id)

    async def _build_on(self, context, instance: Instance,
                        selection: Selection,
                        alternates: tuple[Selection, ...],
                        spec: RequestSpec, secrets: _Secrets, attempt: int):
        placement = _placement(selection)
        if not await self.db.instances.place(
                instance.uuid, placement,
                default_zone=self.conf.default_availability_zone):
            self.log.info("Instance {uuid} was deleted while scheduling; "
                          "not building it", uuid=instance.uuid)
            return
        instance = attrs.evolve(instance, **placement)
        self._log_building(context, instance, selection, attempt)
        await self._cast_build(context, instance, selection, alternates,
                               spec, secrets, attempt)

    async def _cast_build(self, context, instance: Instance,
                          selection: Selection,
                          alternates: tuple[Selection, ...],
                          spec: RequestSpec, secrets: _Secrets,
                          attempt: int):
        try:
            await self.compute.build_and_run_instance(
                context, instance, selection.host, request_spec=spec,
                alternates=alternates, attempt=attempt,
                admin_password=secrets.admin_password,
                injected_files=secrets.injected_files)
        except Exception as error:  # noqa: BLE001
            self.log.warn("Could not hand {uuid} to {host}: {error}",
                          uuid=instance.uuid, host=selection.host,
                          error=error)
            await self._reschedule(
                context, instance, spec, alternates,
                f"could not reach host {selection.host}: {error}",
                attempt, secrets)

    async def build_failed(self, context, instance, alternates, reason,
                           request_spec=None, attempt=None, image=None,
                           requested_networks=None):
        """RPC cast: an agent could not build ``instance``.  1.2 sends
        ``attempt``, ``image`` and ``requested_networks``; 1.0 sent the
        ``request_spec`` the agent was given (``_attempt`` in it when not
        the first)."""
        instance = Instance.from_dict(instance)
        alternates = tuple(Selection.from_dict(a) for a in alternates or ())
        if request_spec is not None:
            spec = RequestSpec.from_dict(request_spec)
            attempt = int(request_spec.get("_attempt") or 1)
        else:
            spec = RequestSpec(image=image,
                               requested_networks=requested_networks)
        await self._reschedule(_ctx(context), instance, spec, alternates,
                               reason, int(attempt or 1), _NO_SECRETS)

    async def _reschedule(self, context, instance: Instance,
                          spec: RequestSpec,
                          alternates: tuple[Selection, ...], reason: str,
                          attempt: int, secrets: _Secrets) -> None:
        """Try the next alternate, or put the instance in ERROR when none
        is left."""
        max_attempts = self.conf.scheduler.max_attempts
        self.log.warn("Build of {uuid} failed on {host}: {reason}",
                      uuid=instance.uuid, host=instance.host,
                      reason=reason)
        if alternates and attempt < max_attempts:
            try:
                await self._state_write(
                    context, instance.uuid,
                    lambda: self.db.instances.guarded_update(
                        instance.uuid,
                        {"task_state": vm_states.SCHEDULING, "host": None,
                         "node": None},
                        expected_vm_state=[vm_states.BUILDING]))
            except (exception.InstanceNotFound,
                    exception.UnexpectedTaskStateError):
                return
            await self._build_on(context, instance, alternates[0],
                                 alternates[1:], spec, secrets, attempt + 1)
            return
        message = ("Exceeded maximum number of retries. Exhausted all "
                   "hosts available for retrying build failures for "
                   f"instance {instance.uuid}.")
        if not alternates and attempt < max_attempts:
            message = f"Build of instance {instance.uuid} failed: {reason}"
        await self._fail_build(context, instance.uuid, 500, message,
                               "compute_build_and_run_instance",
                               details=reason, host=instance.host)

    async def _fail_build(self, context, uuid, code, message, event,
                          details=None, host=None):
        await self._state_write(
            context, uuid, lambda: self.db.instances.set_error(
                uuid, code, message, details, host))
        await self.db.actions.event_finish(uuid, context.request_id, event,
                                           self.host, "Error", details,
                                           details=message)

    def _now(self) -> datetime.datetime:
        """Naive UTC now, from the injected clock."""
        return datetime.datetime.fromtimestamp(
            self.clock.seconds(), datetime.timezone.utc).replace(tzinfo=None)

    async def check_build_timeouts(self):
        """Periodic: instances building for too long go to ERROR."""
        timeout = self.conf.instance_build_timeout
        if not timeout:
            return 0
        now = self._now()
        stuck = await self.db.instances.building_too_long(
            now - datetime.timedelta(seconds=timeout))
        failed = 0
        for uuid, host in stuck:
            message = (f"Build of instance {uuid} timed out after "
                       f"{timeout} seconds")
            if await self._state_write(
                    None, uuid, lambda: self.db.instances.set_error(
                        uuid, 500, message, None, host,
                        only_if_building=True)):
                failed += 1
                self.log.warn("{message} (host {host})", message=message,
                              host=host or "none")
        return failed

    # --- unshelve -----------------------------------------------------

    async def unshelve_instance(self, context, instance, host=None):
        """RPC cast (1.5): schedule a SHELVED_OFFLOADED instance again
        (its stored request spec, the zone it is pinned to now, ``host``
        when an admin asked for one) and hand it to the chosen agent with
        its shelved image; with no host, it stays offloaded with a
        fault."""
        context = _ctx(context)
        instance = Instance.from_dict(instance)
        uuid = instance.uuid
        event = "conductor_unshelve_instance"
        await self.db.actions.event_start(uuid, context.request_id, event,
                                          self.host)
        image_id = (instance.system_metadata or {}).get("shelved_image_id")
        image = await self.db.images.boot_meta(image_id)
        spec = RequestSpec.from_dict(instance.request_spec or {})
        spec = attrs.evolve(
            spec, num_instances=1, instance_uuids=(uuid,),
            availability_zone=instance.availability_zone,
            force_hosts=[host] if host else None, force_nodes=None,
            ignore_hosts=(), image=image or spec.image)
        try:
            if image is None:
                raise exception.ImageNotFound(image_id=image_id)
            selections = await self.scheduler.select_destinations(
                context, spec, [uuid], return_alternates=False)
            selection = selections[0]
            await self.compute.unshelve_instance(
                context, instance, host=selection.host,
                node=selection.node, image=image)
        except Exception as error:  # noqa: BLE001 - every error ends here
            reason = (error.format_message()
                      if isinstance(error, exception.ComputeException)
                      else f"Error while unshelving: {error}")
            self.log.warn("Unshelve of {uuid} failed: {reason}", uuid=uuid,
                          reason=reason)
            await self.db.actions.add_fault(uuid, 500, reason, None, None)
            try:
                await self._state_write(
                    context, uuid, lambda: self.db.instances.guarded_update(
                        uuid, {"task_state": None},
                        expected_task_state=[vm_states.UNSHELVING]))
            except exception.ComputeException:
                pass
            await self.db.actions.event_finish(
                uuid, context.request_id, event, self.host, "Error",
                None, details=reason)
            return
        await self.db.actions.event_finish(uuid, context.request_id, event,
                                           self.host, "Success", None)

    # --- rebuild ------------------------------------------------------

    async def rebuild_instance(self, context, instance, orig_image_ref=None,
                               image=None, admin_password=None,
                               injected_files=None,
                               preserve_ephemeral=False):
        """RPC cast (1.6): a rebuild on the server's own host.  A new image
        is first checked against that host by the scheduler (Nova's
        rebuild check: the host forced, only the filters that look at the
        image, no resources claimed); when the host no longer fits, the
        old image is written back and the server goes to ERROR with a
        fault saying why.  Then the agent rebuilds."""
        context = _ctx(context)
        instance = Instance.from_dict(instance)
        event = REBUILD_EVENT
        await self.db.actions.event_start(instance.uuid, context.request_id,
                                          event, self.host)
        image_id = (image or {}).get("id")
        if image_id and image_id != orig_image_ref:
            try:
                await self._rebuild_check(context, instance, image)
            except exception.NoValidHost as error:
                fault = exception.RebuildHostDoesNotFit(
                    host=instance.host, image_id=image_id,
                    reason=error.format_message())
                self.log.warn("[{request_id}] rebuild of {uuid} refused: "
                              "{why}", request_id=context.request_id,
                              uuid=instance.uuid,
                              why=fault.format_message())
                await self._fail_rebuild(context, instance, orig_image_ref,
                                         fault)
                return
            except Exception as error:  # noqa: BLE001 - a fault, not a hang
                self.log.failure("[{request_id}] rebuild check of {uuid} "
                                 "failed", request_id=context.request_id,
                                 uuid=instance.uuid)
                await self._fail_rebuild(context, instance, orig_image_ref,
                                         error)
                return
        await self.db.actions.event_finish(instance.uuid, context.request_id,
                                           event, self.host, "Success")
        try:
            await self.compute.rebuild_instance(
                context, instance, image=image,
                admin_password=admin_password,
                injected_files=list(injected_files or ()),
                preserve_ephemeral=bool(preserve_ephemeral),
                orig_image_ref=orig_image_ref)
        except Exception as error:  # noqa: BLE001
            await self._fail_rebuild(context, instance, None, error,
                                     event_done=True)

    async def _rebuild_check(self, context, instance: Instance,
                             image: dict) -> None:
        stored = await self.db.instances.get(instance.uuid)
        spec = RequestSpec.from_dict(stored.request_spec or {})
        hints = dict(spec.scheduler_hints or {})
        hints["_nova_check_type"] = ["rebuild"]
        spec = attrs.evolve(
            spec, image=image, num_instances=1,
            instance_uuids=(instance.uuid,), force_hosts=None,
            force_nodes=None, ignore_hosts=(), scheduler_hints=hints,
            requested_destination={"host": instance.host,
                                   "node": instance.node})
        await self.scheduler.select_destinations(
            context, spec, [instance.uuid], return_alternates=False)

    async def _fail_rebuild(self, context, instance: Instance,
                            orig_image_ref: str | None,
                            error: BaseException,
                            event_done: bool = False) -> None:
        message = (error.format_message()
                   if isinstance(error, exception.ComputeException)
                   else f"Rebuild failed: {error}")
        try:
            await self._state_write(
                context, instance.uuid,
                lambda: self.db.instances.guarded_update(
                    instance.uuid, {"vm_state": vm_states.ERROR,
                                    "task_state": None},
                    expected_task_state=[vm_states.REBUILDING]))
            if orig_image_ref:
                # the image it still runs
                await self.db.instances.update(
                    instance.uuid, {"image_ref": orig_image_ref})
        except (exception.InstanceNotFound,
                exception.UnexpectedTaskStateError):
            return
        code = getattr(error, "code", 500)
        await self.db.actions.add_fault(instance.uuid, code, message, None,
                                        instance.host)
        if not event_done:
            await self.db.actions.event_finish(
                instance.uuid, context.request_id, REBUILD_EVENT, self.host,
                "Error", None, details=message)

    #: Lifecycle tasks nobody may hold for ever, and the vm_state a lost
    #: one leaves (None: unchanged).
    LIFECYCLE_TASKS = {
        vm_states.REBUILDING: vm_states.ERROR,
        vm_states.REBUILD_BLOCK_DEVICE_MAPPING: vm_states.ERROR,
        vm_states.REBUILD_SPAWNING: vm_states.ERROR,
        vm_states.RESCUING: vm_states.ERROR,
        vm_states.UNRESCUING: None, vm_states.SOFT_DELETING: None,
        vm_states.RESTORING: None, vm_states.UPDATING_PASSWORD: None,
    }

    async def check_lifecycle_timeouts(self):
        """Periodic: a rebuild, rescue, soft delete, restore or password
        change whose task has not moved for twice
        ``instance_action_timeout`` (the agent that had it died, or the
        message was lost) is failed: a fault, the task cleared, ERROR
        for a rebuild or rescue."""
        timeout = 2 * self.conf.instance_action_timeout
        failed = await self.db.instances.fail_stuck_tasks(
            self.LIFECYCLE_TASKS,
            self._now() - datetime.timedelta(seconds=timeout),
            f"The action did not finish within {timeout} seconds")
        for uuid, vm_state, task_state in failed:
            self.log.warn("{uuid}: lifecycle task {task} timed out",
                          uuid=uuid, task=task_state)
            if self.notifier.enabled:
                try:
                    after = await self.db.instances.get(uuid)
                except exception.InstanceNotFound:
                    continue
                self.notifier.instance_update(
                    get_admin_context(), attrs.evolve(
                        after, vm_state=vm_state, task_state=task_state),
                    after)
        return [uuid for uuid, _, _ in failed]

    # --- the agents' DB proxy -----------------------------------------

    async def instance_update(self, context, instance_uuid, updates,
                              expected_task_state=None, expected_host=None,
                              fetch=True, event=None):
        """Write an agent's ``updates`` (and, with ``event``, the start or
        end of an action event); the instance as written, or None when the
        agent does not need it back (``fetch`` false)."""
        if event is not None and not (
                isinstance(event, dict) and event.get("request_id")
                and event.get("event")):
            raise exception.InvalidInput(
                reason="event needs request_id and event")
        instance = await self.db.instances.guarded_update(
            instance_uuid, _decode(updates),
            expected_task_state=expected_task_state,
            expected_host=expected_host, fetch=bool(fetch), event=event)
        return None if instance is None else instance.to_dict()

    async def instances_on_host(self, context, host):
        """Instance dicts (the agent's client decodes them)."""
        return [i.to_dict() for i in
                await self.db.instances.on_host(host)]

    async def compute_node_update(self, context, values):
        return await self.db.services.update_node(_decode(values))

    async def service_heartbeat(self, context, host, binary, topic):
        row = await self.db.services.heartbeat(host, binary, topic)
        last_seen_up = row.get("last_seen_up")
        # The status an agent's service.update notification tells (the
        # fields past forced_down are new: older agents ignore them).
        return {"id": row["id"], "host": row["host"],
                "binary": row["binary"], "disabled": bool(row["disabled"]),
                "forced_down": bool(row["forced_down"]),
                "uuid": row.get("uuid"), "topic": row.get("topic"),
                "report_count": row.get("report_count"),
                "disabled_reason": row.get("disabled_reason"),
                "version": row.get("version"),
                "last_seen_up": (last_seen_up.isoformat()
                                 if last_seen_up is not None else None)}

    async def service_heartbeats(self, context, hosts, binary, topic):
        """1.4: the heartbeats of every agent of one process, in one
        transaction; how many hosts were recorded."""
        return await self.db.services.heartbeats(list(hosts), binary, topic)

    async def compute_nodes_update(self, context, nodes):
        """1.4: the resource reports of many agents at once (each as
        :meth:`compute_node_update` takes it); how many were written."""
        return await self.db.services.update_nodes(
            [_decode(values) for values in nodes])

    async def instances_on_hosts(self, context, hosts):
        """1.4: ``{host: [instance dict, ...]}`` for each of ``hosts``."""
        found = await self.db.instances.on_hosts(list(hosts))
        return {host: [i.to_dict() for i in instances]
                for host, instances in found.items()}

    async def action_event_start(self, context, instance_uuid, request_id,
                                 event, host):
        await self.db.actions.event_start(instance_uuid, request_id, event,
                                          host)

    async def action_event_finish(self, context, instance_uuid, request_id,
                                  event, host, result, traceback=None,
                                  details=None):
        """1.3 sends ``details`` (a failed event's fault message)."""
        await self.db.actions.event_finish(instance_uuid, request_id, event,
                                           host, result, traceback, details)

    async def instance_fault_create(self, context, instance_uuid, code,
                                    message, details, host):
        await self.db.actions.add_fault(instance_uuid, code, message,
                                        details, host)

    async def instance_destroyed(self, context, instance_uuid):
        """An agent finished deleting: the row becomes deleted."""
        try:
            await self.db.instances.soft_delete(
                instance_uuid, project_id=None, action_values=None)
        except exception.InstanceNotFound:
            pass
