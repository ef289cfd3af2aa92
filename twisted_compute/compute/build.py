"""The compute agent's builds: ``build_and_run_instance`` and the
background work it starts (claim, spawn, report), for
:class:`~twisted_compute.compute.manager.ComputeManager`."""

from __future__ import annotations

from typing import Any

import attrs
from twisted.internet import defer
from twisted.python.failure import Failure

from twisted_compute import exception
from twisted_compute.objects import vm_states
from twisted_compute.compute.common import SUCCESS, bus_time, message
from twisted_compute.objects.instance import Instance
from twisted_compute.objects.selection import Selection

#: task_states an instance may have when its build reaches this host.
BUILD_TASK_STATES = [vm_states.SCHEDULING, vm_states.NETWORKING,
                     vm_states.BLOCK_DEVICE_MAPPING]


class _DeletedWhileBuilding(Exception):
    """The instance was deleted while this host was building it."""


@attrs.frozen
class _BuildArgs:
    """What a build message gave besides the instance."""

    image: dict[str, Any]
    requested_networks: Any
    alternates: tuple[Selection, ...]
    attempt: int
    admin_password: str | None
    injected_files: list[Any]


@attrs.define
class _Build:
    """A build in progress on this host."""

    instance_uuid: str
    done: defer.Deferred = attrs.field(factory=defer.Deferred)
    spawning: defer.Deferred | None = None
    deleted: bool = False



class BuildMixin:
    """Builds of :class:`ComputeManager`; ``builds`` holds those in
    progress.  Uses its ``conductor``, ``driver``, ``tracker``, ``host``,
    ``_update``, ``_event``, ``_event_finish``, ``_power_state`` and
    ``_destroy_quietly``."""

    builds: dict[str, _Build]

    def build_and_run_instance(self, context, instance, image=None,
                               requested_networks=None, alternates=None,
                               attempt=None, admin_password=None,
                               injected_files=None, request_spec=None,
                               **kwargs) -> None:
        """RPC cast: build ``instance`` here.  Returns at once (the
        message is acknowledged); the build goes on in the background
        (:meth:`wait_for_build`).  1.1 sends ``attempt``; 1.0 sent a
        ``request_spec`` with ``_attempt`` in it (and a
        ``filter_properties`` nobody read)."""
        instance = Instance.from_dict(instance)
        alternates = tuple(Selection.from_dict(a) for a in alternates or ())
        if attempt is None:
            attempt = (request_spec or {}).get("_attempt")
        if instance.uuid in self.builds:
            self.log.warn("[{request_id}] instance {uuid} is already being "
                          "built here; duplicate request ignored",
                          request_id=context.request_id, uuid=instance.uuid)
            return None
        build = _Build(instance.uuid)
        self.builds[instance.uuid] = build
        d = defer.ensureDeferred(self._build_and_run(
            context, instance, build, _BuildArgs(
                image=image or {}, requested_networks=requested_networks,
                alternates=alternates, attempt=int(attempt or 1),
                admin_password=admin_password,
                injected_files=list(injected_files or ()))))

        def finished(result):
            self.builds.pop(instance.uuid, None)
            build.done.callback(None)
            return result

        d.addBoth(finished)
        d.addErrback(lambda f: self.log.failure(
            "build of {uuid} crashed", f, uuid=instance.uuid))
        return None

    def wait_for_build(self, instance_uuid: str) -> defer.Deferred:
        """Fires once the build of ``instance_uuid`` (if any) is over."""
        build = self.builds.get(instance_uuid)
        if build is None:
            return defer.succeed(None)
        d = defer.Deferred()
        build.done.addBoth(lambda r: (d.callback(None), r)[1])
        return d

    def _prepare_events(self, instance: Instance):
        """The waiter of the events the driver says a new guest of
        ``instance`` waits for (``events_to_wait_for``; none while
        ``vif_plugging_timeout`` is 0)."""
        wanted = getattr(self.driver, "events_to_wait_for", None)
        if wanted is None or self.conf.vif_plugging_timeout <= 0:
            return None
        names = wanted(instance)
        if not names:
            return None
        return self.instance_events.prepare(instance.uuid, names)

    def _check_not_deleted(self, build: _Build) -> None:
        if build.deleted:
            raise _DeletedWhileBuilding()

    async def _write_active(self, context, uuid: str, updates: dict,
                            instance: Instance, event: str) -> Instance:
        """The build's last write (spawning -> active), safe to repeat: a
        reply lost in a broker failover (the call timed out, or was
        handled twice and the second answer is a conflict) must not
        destroy a guest the database already shows ACTIVE here."""
        attempts = 3
        for attempt in range(1, attempts + 1):
            try:
                return await self._update(
                    context, uuid, updates,
                    expected_task_state=[vm_states.SPAWNING],
                    instance=instance,
                    event=self._event(context, event, SUCCESS))
            except exception.MessagingTimeout:
                if attempt == attempts:
                    raise
                # The write may have landed: the next try tells.
            except exception.UnexpectedDeletingTaskStateError:
                raise
            except exception.UnexpectedTaskStateError as exc:
                if (getattr(exc, "kwargs", {}) or {}).get("actual") \
                        is not None:
                    raise
                current = await self.conductor.instance_update(
                    context, uuid, {"host": self.host},
                    expected_task_state=[None], expected_host=self.host,
                    fetch=True)
                # A record from the conductor's client (a dict from a
                # test double).
                state = (current.get("vm_state") if isinstance(current, dict)
                         else getattr(current, "vm_state", None))
                if state != vm_states.ACTIVE:
                    raise
                self.log.info("[{request_id}] {uuid} was already active "
                              "on {host} (a reply lost on the bus)",
                              request_id=context.request_id, uuid=uuid,
                              host=self.host)
                return await self._update(
                    context, uuid, updates, expected_task_state=[None],
                    expected_host=self.host, instance=instance)
        raise AssertionError("unreachable")

    async def _build_and_run(self, context, instance: Instance,
                             build: _Build, args: "_BuildArgs") -> None:
        uuid = instance.uuid
        event = "compute_build_and_run_instance"
        claim = None
        spawned = False
        try:
            if self.tracker.resources is None:
                await self.tracker.refresh()
            self._check_not_deleted(build)
            spawning = {"vm_state": vm_states.BUILDING,
                        "task_state": vm_states.SPAWNING,
                        "host": self.host, "node": self.nodename,
                        "launched_on": self.host}
            try:
                instance = await self._update(
                    context, uuid, spawning,
                    expected_task_state=BUILD_TASK_STATES,
                    expected_host=self.host, instance=instance,
                    event=self._event(context, event))
            except exception.UnexpectedDeletingTaskStateError:
                raise
            except exception.UnexpectedTaskStateError as exc:
                if (getattr(exc, "kwargs", {}) or {}).get("actual") \
                        != vm_states.SPAWNING:
                    # A build request seen twice (a conductor died and
                    # its message went to another), or one that went
                    # stale (the instance was rescheduled elsewhere): the
                    # instance is not waiting for this host.  Leave it
                    # alone: no guest to destroy, nothing to report.
                    self.log.warn("[{request_id}] build request for {uuid} "
                                  "ignored on {host}: {reason}",
                                  request_id=context.request_id, uuid=uuid,
                                  host=self.host, reason=message(exc))
                    return
                # Spawning on this very host, with no build of it
                # running here (``builds`` says so): our own write, whose
                # reply was lost while the broker failed over, the call
                # then handled a second time.  Take the instance as it is.
                self.log.info("[{request_id}] {uuid} was already marked "
                              "spawning on {host} (a reply lost on the "
                              "bus); building it", uuid=uuid,
                              request_id=context.request_id, host=self.host)
                instance = await self._update(
                    context, uuid, spawning,
                    expected_task_state=(vm_states.SPAWNING,),
                    expected_host=self.host, instance=instance)
            self._notify(context, instance, "create", "start",
                         name="InstanceCreatePayload")
            # Checked here, on the host: two schedulers racing cannot
            # over-commit it (a refused claim reschedules the build).
            claim = self.tracker.claim(instance)
            self._check_not_deleted(build)
            spawned = True
            # Ready before the guest exists: an event at once is not lost.
            waiter = self._prepare_events(instance)
            build.spawning = self.driver.spawn(
                context, instance, args.image, args.injected_files,
                args.admin_password, args.requested_networks or [], None)
            try:
                await build.spawning
                if waiter is not None:
                    # cancellable as the spawn is, by a delete
                    build.spawning = defer.ensureDeferred(
                        self.instance_events.wait(
                            waiter, self.conf.vif_plugging_timeout,
                            self.conf.vif_plugging_is_fatal))
                    await build.spawning
            finally:
                build.spawning = None
                self.instance_events.clear(uuid)
            self._check_not_deleted(build)
            state = await self._power_state(instance)
            updates = {
                "vm_state": vm_states.ACTIVE, "power_state": state,
                "task_state": None, "launched_at": bus_time(self.now()),
                "host": self.host, "node": self.nodename,
            }
            get_addresses = getattr(self.driver, "get_instance_addresses",
                                    None)
            if get_addresses is not None:
                addresses = await get_addresses(instance)
                if addresses:
                    updates["addresses"] = addresses
            get_numa = getattr(self.driver, "get_instance_numa_topology",
                               None)
            if get_numa is not None:
                numa = await get_numa(instance)
                if numa:
                    updates["system_metadata"] = {
                        **(instance.system_metadata or {}),
                        "numa_topology": numa}
            instance = await self._write_active(context, uuid, updates,
                                                instance, event)
        except (exception.InstanceNotFound,
                exception.UnexpectedDeletingTaskStateError,
                _DeletedWhileBuilding, defer.CancelledError):
            failure = Failure()
            self.log.info("[{request_id}] instance {uuid} was deleted while "
                          "building on {host}; cleaning up",
                          request_id=context.request_id, uuid=uuid,
                          host=self.host)
            if spawned:
                await self._destroy_quietly(context, instance)
            if claim is not None:
                claim.abort()
            await self._event_finish(context, uuid, event, failure)
            return
        except Exception as exc:
            failure = Failure()
            reason = message(exc)
            self.log.warn("[{request_id}] build of {uuid} failed on {host}: "
                          "{reason}", request_id=context.request_id,
                          uuid=uuid, host=self.host, reason=reason)
            if spawned:
                await self._destroy_quietly(context, instance)
            if claim is not None:
                claim.abort()
            await self._event_finish(context, uuid, event, failure)
            self._notify(context, instance, "create", "error", exc=exc,
                         traceback=failure.getTraceback(),
                         name="InstanceCreatePayload")
            if build.deleted:
                return
            await self.conductor.build_failed(
                context, instance, args.alternates, reason, args.attempt,
                args.image, args.requested_networks)
            return
        claim.finish()
        self._notify(context, instance, "create", "end",
                     name="InstanceCreatePayload")
        self.log.info("[{request_id}] instance {uuid} is active on {host}",
                      request_id=context.request_id, uuid=uuid,
                      host=self.host)
