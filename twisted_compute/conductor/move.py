"""The conductor's moves: resize and cold migration, their confirm and
revert, and the automatic confirm after ``resize_confirm_window``.

Flow (each agent step an RPC call with ``move_step_timeout``)::

    API --cast--> migrate_server
      scheduler.select_destinations (the source excluded unless
          allow_resize_to_same_host; the stored request spec with the new
          flavor; the group and zone rules kept; alternates)
      db.migrations.start       (row "pre-migrating" + migration context:
                                 from here the destination owns the new
                                 flavor, the source the old)
      compute.<dest>.prep_resize          (claim; on failure the next
                                           alternate, the migration's and
                                           context's destination updated)
      compute.<source>.resize_instance    ("migrating", resize_migrating)
      compute.<dest>.finish_resize        ("post-migrating", resize_finish)
      db: host/flavor := destination/new, VERIFY_RESIZE, "finished"
    confirm: compute.<source>.confirm_resize, then "confirmed", context
        cleared (the destination owns the instance's usage)
    revert:  compute.<dest>.revert_resize, compute.<source>.
        finish_revert_resize, then "reverted", host/flavor := the old,
        context cleared

A failed or timed-out step rolls back: the destination's claim is dropped
(``revert_resize`` there) and the source's guest started again
(``finish_revert_resize``); the instance gets its old state back with a
fault and the migration becomes "error".  Only when the rollback itself
fails does the instance go to ERROR (still owned by its source: the
context is cleared so no usage stays claimed on the destination).
"""

from __future__ import annotations

import datetime
from typing import Any

import attrs

from twisted_compute import exception
from twisted_compute.compute.common import fault_code, message
from twisted_compute.context import get_admin_context
from twisted_compute.objects import vm_states
from twisted_compute.objects.instance import Instance
from twisted_compute.objects.migration import Migration
from twisted_compute.objects.request_spec import RequestSpec


MIGRATE_EVENT = "conductor_migrate_server"
RESIZE_TASK_STATES = (vm_states.RESIZE_PREP, vm_states.RESIZE_MIGRATING,
                      vm_states.RESIZE_MIGRATED, vm_states.RESIZE_FINISH)


def _flavor_values(flavor: dict[str, Any]) -> dict[str, Any]:
    """The instance columns a flavor snapshot sets."""
    return {"flavor": flavor, "instance_type_id": flavor.get("id"),
            "vcpus": int(flavor.get("vcpus") or 0),
            "memory_mb": int(flavor.get("memory_mb") or 0),
            "root_gb": int(flavor.get("root_gb") or 0),
            "ephemeral_gb": int(flavor.get("ephemeral_gb") or 0)}


#: A live migration's progress counters (``migrations`` columns).
_COUNTERS = ("memory_total", "memory_processed", "memory_remaining",
             "disk_total", "disk_processed", "disk_remaining")


class _Cancelled(Exception):
    """A live migration was aborted before its copy started."""


class _StepFailed(Exception):
    def __init__(self, step: str, host: str, cause: BaseException):
        super().__init__(f"{step} on {host} failed: {message(cause)}")
        self.step, self.host, self.cause = step, host, cause


class MoveTaskMixin:
    """Moves of :class:`~twisted_compute.conductor.manager.
    ConductorManager` (its ``db``, ``scheduler``, ``compute``, ``conf``,
    ``clock``, ``host``, ``log``, ``_now``)."""

    # --- helpers -------------------------------------------------------

    @property
    def _step_timeout(self) -> float:
        return float(getattr(self.conf, "move_step_timeout", 300))

    async def _event(self, context, uuid, event, host, result=None,
                     details=None):
        try:
            if result is None:
                await self.db.actions.event_start(
                    uuid, context.request_id, event, host)
            else:
                await self.db.actions.event_finish(
                    uuid, context.request_id, event, host, result,
                    None, details=details)
        except Exception:  # noqa: BLE001 - an action is bookkeeping
            self.log.debug("no action {request_id} of {uuid} to record "
                           "{event} in", request_id=context.request_id,
                           uuid=uuid, event=event)

    async def _step(self, context, step: str, host: str, instance,
                    **kwargs):
        """One agent step, recorded as action event ``compute_<step>``;
        raises :class:`_StepFailed`."""
        event = "compute_" + step
        await self._event(context, instance.uuid, event, host)
        try:
            result = await self.compute.move_step(
                context, step, host, instance, self._step_timeout,
                **kwargs)
        except Exception as exc:  # noqa: BLE001 - every error rolls back
            await self._event(context, instance.uuid, event, host, "Error",
                              message(exc))
            raise _StepFailed(step, host, exc) from exc
        await self._event(context, instance.uuid, event, host, "Success")
        return result

    async def _state_write(self, context, uuid: str, write):
        """``await write()``, a write of ``uuid``'s state; then Nova's
        ``instance.update`` when it changed the vm or task state (the
        instance read before, and after unless the write returns it; only
        while notifications are on)."""
        if not self.notifier.enabled:
            return await write()
        try:
            before = await self.db.instances.get(uuid)
        except exception.InstanceNotFound:
            return await write()
        result = await write()
        after = result
        if not isinstance(after, Instance):
            try:
                after = await self.db.instances.get(uuid)
            except exception.InstanceNotFound:
                return result
        self.notifier.instance_update(context or get_admin_context(),
                                      before, after)
        return result

    async def _task(self, context, uuid: str, task_state: str | None,
                    expected: tuple) -> None:
        await self._state_write(
            context, uuid, lambda: self.db.instances.guarded_update(
                uuid, {"task_state": task_state},
                expected_task_state=list(expected),
                fetch=self.notifier.enabled))

    async def _set_status(self, context, migration: Migration, status: str,
                          instance_updates: dict[str, Any] | None = None,
                          **kwargs) -> Migration:
        """``migration``'s ``status`` (and its instance's
        ``instance_updates``), with ``instance.update`` as
        :meth:`_state_write` when those change a state."""
        def write():
            return self.db.migrations.set_status(
                migration.id, status, instance_updates, **kwargs)
        if not {"vm_state", "task_state"} & set(instance_updates or ()):
            return await write()
        return await self._state_write(context, migration.instance_uuid,
                                       write)

    async def _fault(self, uuid: str, exc: BaseException, host=None):
        try:
            await self.db.actions.add_fault(uuid, fault_code(exc),
                                            message(exc)[:255], None, host)
        except Exception:  # noqa: BLE001
            self.log.failure("could not record a fault of {uuid}", uuid=uuid)

    async def _recorded(self, context, uuid: str, event: str, what: str,
                        run) -> None:
        """``await run()`` as this conductor's action event ``event`` of
        ``uuid``: Success, or Error with the message (a crash, an error
        that is not a domain one, is also logged with its traceback); an
        instance deleted meanwhile ends it quietly."""
        await self._event(context, uuid, event, self.host)
        try:
            await run()
        except exception.InstanceNotFound:
            self.log.info("{uuid} was deleted during its {what}", uuid=uuid,
                          what=what)
            return
        except Exception as exc:  # noqa: BLE001 - recorded on the action
            await self._event(context, uuid, event, self.host, "Error",
                              message(exc))
            if not isinstance(exc, (exception.ComputeException, _StepFailed)):
                self.log.failure("{what} of {uuid} crashed", what=what,
                                 uuid=uuid)
            return
        await self._event(context, uuid, event, self.host, "Success")

    # --- resize and cold migration --------------------------------------

    async def migrate_server(self, context, instance_uuid, flavor=None,
                             host=None, **kwargs) -> None:
        """Cast (conductor 1.4): resize ``instance_uuid`` to ``flavor`` (a
        snapshot), or cold-migrate it (no ``flavor``) to ``host`` or where
        the scheduler says.  The API has set task_state resize_prep and
        recorded the action."""
        from twisted_compute.conductor.manager import _ctx
        context = _ctx(context)
        await self._recorded(context, instance_uuid, MIGRATE_EVENT, "move",
                             lambda: self._migrate(context, instance_uuid,
                                                   flavor, host))

    async def _migrate(self, context, uuid, new_flavor, host) -> None:
        instance = await self.db.instances.get(uuid)
        old_flavor = dict(instance.flavor)
        migration_type = "resize" if new_flavor else "migration"
        new_flavor = dict(new_flavor or old_flavor)
        source = instance.host
        try:
            candidates = await self._destinations(
                context, instance, new_flavor, host,
                same_host=self.conf.allow_resize_to_same_host)
        except Exception as exc:  # noqa: BLE001 - nothing claimed yet
            self.log.warn("no destination for the move of {uuid}: {why}",
                          uuid=uuid, why=message(exc))
            await self._fault(uuid, exc)
            await self._task(context, uuid, None, (vm_states.RESIZE_PREP,))
            raise
        migration = await self.db.migrations.start(
            uuid, migration_type=migration_type, source_compute=source,
            source_node=instance.node, dest_compute=candidates[0].host,
            dest_node=candidates[0].node, old_flavor=old_flavor,
            new_flavor=new_flavor, user_id=instance.user_id,
            project_id=instance.project_id)
        dest, migration, failures = await self._claim(
            context, instance, migration, candidates, new_flavor)
        if dest is None:
            reason = "; ".join(failures) or "no destination"
            error = exception.MigrationError(
                reason=f"no destination could hold the move: {reason}")
            await self._fault(uuid, error)
            await self._set_status(
                context, migration, "error", {"task_state": None},
                clear_context=True)
            raise error
        await self._run_move(context, instance, migration, new_flavor,
                             old_flavor)

    async def _destinations(self, context, instance, flavor, host, *,
                            force: bool = False, same_host: bool = False
                            ) -> list:
        """Where a move of ``instance`` with ``flavor`` may go, best
        first: ``host`` alone when ``force``d, else the scheduler's choice
        (limited to ``host`` when given) and its alternates; its own host
        among them only with ``same_host``.  The scheduler's failure
        (NoValidHost) is raised: nothing is claimed yet."""
        from twisted_compute.objects.selection import Selection
        if host and force:
            return [Selection(host)]
        spec = RequestSpec.from_dict(instance.request_spec or {})
        ignore = set(spec.ignore_hosts)
        if same_host:
            ignore.discard(instance.host)
        else:
            ignore.add(instance.host)
        spec = attrs.evolve(
            spec, flavor=flavor, num_instances=1,
            instance_uuids=(instance.uuid,),
            ignore_hosts=tuple(sorted(ignore)),
            force_hosts=[host] if host else None, force_nodes=None,
            project_id=instance.project_id, user_id=instance.user_id)
        [selection] = await self.scheduler.select_destinations(
            context, spec, [instance.uuid], return_alternates=True)
        return [selection, *selection.alternates]

    async def _claim(self, context, instance, migration: Migration,
                     candidates: list, flavor: dict[str, Any], *,
                     skip: str | None = None, status: str | None = None):
        """Claim ``flavor`` on the first of ``candidates`` (but ``skip``)
        whose agent takes it (prep_resize), ``migration`` pointed at each
        in turn (and set to ``status``).  Returns the chosen candidate
        (None when none took it), the migration as it is now, and the
        refusals' texts."""
        failures: list[str] = []
        for candidate in candidates:
            if candidate.host == skip:
                continue
            where = {"dest_compute": candidate.host,
                     "dest_node": candidate.node}
            if status or where != {"dest_compute": migration.dest_compute,
                                   "dest_node": migration.dest_node}:
                migration = await self.db.migrations.update(
                    migration.id, {**where, **({"status": status}
                                               if status else {})},
                    context_updates=where)
            try:
                result = await self._step(
                    context, "prep_resize", candidate.host, instance,
                    new_flavor=flavor, migration=migration.to_dict())
            except _StepFailed as failed:
                failures.append(str(failed))
                # A claim that timed out may have been made after all.
                await self._quietly(context, "revert_resize", candidate.host,
                                    instance, migration)
                continue
            node = (result or {}).get("node") or candidate.node
            if node != migration.dest_node:
                migration = await self.db.migrations.update(
                    migration.id, {"dest_node": node},
                    context_updates={"dest_node": node})
            return candidate, migration, failures
        return None, migration, failures

    async def _quietly(self, context, step, host, instance, migration,
                       **kwargs) -> bool:
        try:
            await self.compute.move_step(
                context, step, host, instance, self._step_timeout,
                migration=migration.to_dict(), **kwargs)
            return True
        except Exception as exc:  # noqa: BLE001
            self.log.warn("{step} of {uuid} on {host} failed: {why}",
                          step=step, uuid=instance.uuid, host=host,
                          why=message(exc))
            return False

    async def _run_move(self, context, instance, migration: Migration,
                        new_flavor, old_flavor) -> None:
        uuid = instance.uuid
        source, dest = migration.source_compute, migration.dest_compute
        try:
            await self._task(context, uuid, vm_states.RESIZE_MIGRATING,
                             (vm_states.RESIZE_PREP,))
            migration = await self._set_status(
                context, migration, "migrating")
            await self._step(context, "resize_instance", source, instance,
                             migration=migration.to_dict(),
                             new_flavor=new_flavor)
            await self._task(context, uuid, vm_states.RESIZE_MIGRATED,
                             (vm_states.RESIZE_MIGRATING,))
            migration = await self._set_status(
                context, migration, "post-migrating")
            await self._task(context, uuid, vm_states.RESIZE_FINISH,
                             (vm_states.RESIZE_MIGRATED,))
            power_on = instance.vm_state != vm_states.STOPPED
            result = await self._step(
                context, "finish_resize", dest, instance,
                migration=migration.to_dict(), new_flavor=new_flavor,
                power_on=power_on)
        except (_StepFailed, exception.UnexpectedTaskStateError) as failed:
            await self._roll_back(context, instance, migration, failed)
            raise exception.MigrationError(reason=str(failed)) from failed
        values = {"host": dest, "node": migration.dest_node,
                  "vm_state": vm_states.RESIZED, "task_state": None,
                  "power_state": int((result or {}).get(
                      "power_state", vm_states.RUNNING)),
                  **_flavor_values(new_flavor)}
        if instance.vm_state == vm_states.STOPPED:
            values["system_metadata"] = {**instance.system_metadata,
                                         "old_vm_state": vm_states.STOPPED}
        await self._set_status(
            context, migration, "finished", values,
            expected_task_state=[vm_states.RESIZE_FINISH])
        self.log.info("[{request_id}] {uuid} moved {source} -> {dest}: "
                      "VERIFY_RESIZE", request_id=context.request_id,
                      uuid=uuid, source=source, dest=dest)

    async def _roll_back(self, context, instance, migration, failed):
        """Undo a move whose step failed: the destination drops its claim
        and copy, the source runs its guest again."""
        uuid = instance.uuid
        cause = getattr(failed, "cause", failed)
        self.log.warn("[{request_id}] move of {uuid} failed, rolling back: "
                      "{why}", request_id=context.request_id, uuid=uuid,
                      why=str(failed))
        dest_ok = await self._quietly(context, "revert_resize",
                                      migration.dest_compute, instance,
                                      migration)
        source_ok = await self._quietly(
            context, "finish_revert_resize", migration.source_compute,
            instance, migration, old_flavor=dict(instance.flavor),
            power_on=instance.vm_state != vm_states.STOPPED)
        await self._fault(uuid, cause, getattr(failed, "host", None))
        values: dict[str, Any] = {"task_state": None}
        if not (dest_ok and source_ok):
            # Cannot be undone: the instance stays its source's, in ERROR.
            values["vm_state"] = vm_states.ERROR
        try:
            await self._set_status(
                context, migration, "error", values, clear_context=True)
        except exception.InstanceNotFound:
            pass

    # --- live migration ------------------------------------------------

    async def live_migrate_instance(self, context, instance_uuid, host=None,
                                    block_migration=False, force=False,
                                    **kwargs) -> None:
        """Cast (conductor 1.4): live-migrate to ``host`` (checked by the
        scheduler unless ``force``) or where the scheduler says.  The API
        has set task_state migrating.  Steps: claim on the destination
        (``prep_resize``), the memory copy on the source
        (``live_migration``, its counters written to the migration), the
        guest started on the destination (``finish_resize``), the source
        cleaned up (``confirm_resize``); a failure before the source's
        cleanup rolls back and leaves the guest running on its source."""
        from twisted_compute.conductor.manager import _ctx
        context = _ctx(context)
        await self._recorded(
            context, instance_uuid, "conductor_live_migrate_instance",
            "live migration", lambda: self._live_migrate(
                context, instance_uuid, host, bool(block_migration),
                bool(force)))

    async def _live_migrate(self, context, uuid, host, block_migration,
                            force) -> None:
        instance = await self.db.instances.get(uuid)
        flavor = dict(instance.flavor)
        source = instance.host
        try:
            candidates = await self._destinations(context, instance, flavor,
                                                  host, force=force)
        except Exception as exc:  # noqa: BLE001 - nothing claimed yet
            await self._fault(uuid, exc)
            await self._task(context, uuid, None, (vm_states.MIGRATING,))
            raise
        if candidates[0].host == source:
            error = exception.MigrationPreCheckError(
                reason="the destination is the server's own host")
            await self._task(context, uuid, None, (vm_states.MIGRATING,))
            raise error
        dest = candidates[0]
        migration = await self.db.migrations.start(
            uuid, migration_type="live-migration", source_compute=source,
            source_node=instance.node, dest_compute=dest.host,
            dest_node=dest.node, old_flavor=flavor, new_flavor=flavor,
            user_id=instance.user_id, project_id=instance.project_id,
            status="accepted", dest_host=dest.host)
        memory = int(flavor.get("memory_mb") or 0) * 1024 * 1024
        try:
            if not await self.db.migrations.set_status_if(
                    migration.id, "preparing", ("accepted",)):
                raise _Cancelled()
            await self._step(context, "prep_resize", dest.host, instance,
                             new_flavor=flavor, migration=migration.to_dict())
            # An abort (2.65) while preparing wins over the copy.
            if not await self.db.migrations.set_status_if(
                    migration.id, "running", ("preparing",)):
                raise _Cancelled()
            migration = await self.db.migrations.update(migration.id, {
                "memory_total": memory,
                "memory_processed": 0, "memory_remaining": memory,
                "disk_total": 0, "disk_processed": 0, "disk_remaining": 0})
            counters = await self._step(
                context, "live_migration", source, instance,
                migration=migration.to_dict(),
                block_migration=block_migration)
            migration = await self.db.migrations.update(
                migration.id, {k: v for k, v in (counters or {}).items()
                               if k.startswith(("memory_", "disk_"))})
            await self._step(context, "finish_resize", dest.host, instance,
                             migration=migration.to_dict(),
                             new_flavor=flavor, power_on=True)
        except _Cancelled:
            await self._cancel_live(context, instance, migration)
            return
        except _StepFailed as failed:
            if isinstance(failed.cause, exception.LiveMigrationAborted):
                await self._cancel_live(context, instance, migration)
                return
            await self._roll_back(context, instance, migration, failed)
            raise exception.MigrationError(reason=str(failed)) from failed
        # The guest runs on the destination: the source cleans up.  A
        # failure here is logged; the source's usage goes with the
        # context below either way (its guest is gone or stopped).
        await self._quietly(context, "confirm_resize", source, instance,
                            migration)
        await self._quietly(context, "confirm_resize_dest", dest.host,
                            instance, migration)
        await self._set_status(
            context, migration, "completed",
            {"host": dest.host, "node": dest.node, "task_state": None,
             "power_state": vm_states.RUNNING}, clear_context=True)
        self.log.info("[{request_id}] {uuid} live-migrated {source} -> "
                      "{dest}", request_id=context.request_id, uuid=uuid,
                      source=source, dest=dest.host)

    async def _cancel_live(self, context, instance, migration) -> None:
        """An aborted live migration: the destination drops its claim, the
        guest keeps running on its source; "cancelled", ACTIVE."""
        self.log.info("[{request_id}] live migration of {uuid} aborted",
                      request_id=context.request_id, uuid=instance.uuid)
        dest_ok = await self._quietly(context, "revert_resize",
                                      migration.dest_compute, instance,
                                      migration)
        values: dict[str, Any] = {"task_state": None}
        if not dest_ok:
            values["vm_state"] = vm_states.ERROR
        try:
            await self._set_status(
                context, migration, "cancelled", values, clear_context=True)
        except exception.InstanceNotFound:
            pass

    async def migration_progress(self, context, migration_id, counters,
                                 **kwargs) -> None:
        """Call (conductor 1.8) from a source agent: a running live
        migration's counters (bytes), shown by
        ``/servers/{id}/migrations``."""
        values = {k: int(v) for k, v in (counters or {}).items()
                  if k in _COUNTERS and v is not None}
        if values:
            await self.db.migrations.update(int(migration_id), values)

    # --- evacuation ----------------------------------------------------

    async def evacuate_instance(self, context, instance_uuid, host=None,
                                force=False, admin_password=None,
                                on_shared_storage=None, target_state=None,
                                **kwargs) -> None:
        """Cast (conductor 1.8): rebuild ``instance_uuid``, whose host is
        down, elsewhere.  The API recorded the migration (evacuation,
        accepted) and set task_state rebuilding.  Steps: the scheduler
        picks a destination (the source excluded; ``host`` checked by it
        unless ``force``), ``prep_resize`` claims there ("pre-migrating";
        the next alternate on failure), ``evacuate_spawn`` spawns the
        guest from its image, then the destination owns the instance
        ("done"; the source's agent destroys its old guest when it comes
        back and completes the migration).  A failure after the claim
        drops it, and the instance goes to ERROR (migration "failed")."""
        from twisted_compute.conductor.manager import _ctx
        context = _ctx(context)
        await self._recorded(
            context, instance_uuid, "conductor_rebuild_server", "evacuation",
            lambda: self._evacuate(context, instance_uuid, host, bool(force),
                                   admin_password, target_state))

    async def _evacuate(self, context, uuid, host, force, admin_password,
                        target_state) -> None:
        instance = await self.db.instances.get(uuid)
        accepted = await self.db.migrations.for_instance(
            uuid, types=["evacuation"], statuses=["accepted"])
        migration = accepted[-1] if accepted else None
        if migration is None:
            raise exception.MigrationError(
                reason=f"no accepted evacuation of {uuid}")
        flavor = dict(instance.flavor)
        source = instance.host
        try:
            candidates = await self._destinations(context, instance, flavor,
                                                  host, force=force)
        except Exception as exc:  # noqa: BLE001 - nothing claimed yet
            self.log.warn("no destination for the evacuation of {uuid}: "
                          "{why}", uuid=uuid, why=message(exc))
            await self._fault(uuid, exc)
            await self._set_status(
                context, migration, "error", {"task_state": None},
                clear_context=True)
            raise
        dest, migration, failures = await self._claim(
            context, instance, migration, candidates, flavor, skip=source,
            status="pre-migrating")
        if dest is None:
            error = exception.MigrationError(
                reason="no destination could hold the evacuation: "
                       + ("; ".join(failures) or "none"))
            await self._fault(uuid, error)
            await self._set_status(
                context, migration, "error", {"task_state": None},
                clear_context=True)
            raise error
        power_on = (target_state != vm_states.STOPPED
                    and instance.vm_state != vm_states.STOPPED)
        image = dict(RequestSpec.from_dict(
            instance.request_spec or {}).image or {})
        try:
            await self._task(context, uuid, vm_states.REBUILD_SPAWNING,
                             (vm_states.REBUILDING,))
            result = await self._step(
                context, "evacuate_spawn", dest.host, instance,
                migration=migration.to_dict(), image=image,
                admin_password=admin_password, power_on=power_on)
        except (_StepFailed, exception.UnexpectedTaskStateError) as failed:
            cause = getattr(failed, "cause", failed)
            await self._quietly(context, "revert_resize", dest.host,
                                instance, migration)
            await self._fault(uuid, cause, getattr(failed, "host", None))
            try:
                await self._set_status(
                    context, migration, "failed",
                    {"vm_state": vm_states.ERROR, "task_state": None},
                    clear_context=True)
            except exception.InstanceNotFound:
                pass
            raise exception.MigrationError(reason=str(failed)) from failed
        await self._quietly(context, "confirm_resize_dest", dest.host,
                            instance, migration)
        state = int((result or {}).get(
            "power_state", vm_states.RUNNING if power_on
            else vm_states.SHUTDOWN))
        await self._set_status(
            context, migration, "done",
            {"host": dest.host, "node": migration.dest_node,
             "launched_on": dest.host,
             "vm_state": vm_states.ACTIVE if power_on
             else vm_states.STOPPED,
             "task_state": None, "power_state": state},
            clear_context=True,
            expected_task_state=[vm_states.REBUILD_SPAWNING])
        self.log.info("[{request_id}] {uuid} evacuated {source} -> {dest}",
                      request_id=context.request_id, uuid=uuid,
                      source=source, dest=dest.host)

    async def evacuations_from_host(self, context, host, **kwargs):
        """Call (conductor 1.8) from an agent at its start: what was
        evacuated from it while it was down."""
        return [{"id": m.id, "instance_uuid": m.instance_uuid,
                 "dest_compute": m.dest_compute, "status": m.status}
                for m in await self.db.migrations.evacuations_from_host(
                    host)]

    async def evacuation_cleaned(self, context, migration_id, **kwargs):
        """Call (conductor 1.8): the source destroyed its old guest."""
        migration = await self.db.migrations.get(int(migration_id))
        if migration.status == "done":
            await self._set_status(context, migration, "completed")
        elif migration.status in ("accepted", "pre-migrating"):
            # Still under way (or its conductor died): the source's guest
            # is gone either way; the evacuation goes on or is reaped.
            pass

    # --- confirm and revert ---------------------------------------------

    async def confirm_resize(self, context, migration_id, **kwargs) -> None:
        """Cast (conductor 1.4): the source gives its old usage back."""
        from twisted_compute.conductor.manager import _ctx
        context = _ctx(context)
        migration = await self.db.migrations.get(int(migration_id))
        instance = await self.db.instances.get(migration.instance_uuid)
        try:
            await self._step(context, "confirm_resize",
                             migration.source_compute, instance,
                             migration=migration.to_dict())
        except _StepFailed as failed:
            # The source keeps the old guest (and its usage) until a
            # confirm works; the instance stays in VERIFY_RESIZE.
            await self._fault(instance.uuid, failed.cause, failed.host)
            await self._set_status(
                context, migration, "finished", {"task_state": None})
            return
        if migration.dest_compute != migration.source_compute:
            await self._quietly(context, "confirm_resize_dest",
                                migration.dest_compute, instance, migration)
        old_vm_state = (instance.system_metadata or {}).get("old_vm_state")
        sysmeta = {k: v for k, v in (instance.system_metadata or {}).items()
                   if k != "old_vm_state"}
        await self._set_status(
            context, migration, "confirmed",
            {"vm_state": old_vm_state or vm_states.ACTIVE,
             "task_state": None, "system_metadata": sysmeta},
            clear_context=True)

    async def revert_resize(self, context, migration_id, **kwargs) -> None:
        """Cast (conductor 1.4): back to the source with the old flavor;
        the API set task_state resize_reverting."""
        from twisted_compute.conductor.manager import _ctx
        context = _ctx(context)
        migration = await self.db.migrations.get(int(migration_id))
        instance = await self.db.instances.get(migration.instance_uuid)
        ctx = instance.migration_context or {}
        old_flavor = ctx.get("old_flavor") or instance.flavor
        old_vm_state = (instance.system_metadata or {}).get("old_vm_state")
        try:
            await self._step(context, "revert_resize",
                             migration.dest_compute, instance,
                             migration=migration.to_dict())
            result = await self._step(
                context, "finish_revert_resize", migration.source_compute,
                instance, migration=migration.to_dict(),
                old_flavor=old_flavor,
                power_on=old_vm_state != vm_states.STOPPED)
        except _StepFailed as failed:
            await self._fault(instance.uuid, failed.cause, failed.host)
            await self._set_status(
                context, migration, "error",
                {"vm_state": vm_states.ERROR, "task_state": None,
                 "host": migration.source_compute,
                 "node": migration.source_node,
                 **_flavor_values(old_flavor)}, clear_context=True)
            return
        sysmeta = {k: v for k, v in (instance.system_metadata or {}).items()
                   if k != "old_vm_state"}
        await self._set_status(
            context, migration, "reverted",
            {"vm_state": old_vm_state or vm_states.ACTIVE,
             "task_state": None, "host": migration.source_compute,
             "node": migration.source_node, "system_metadata": sysmeta,
             "power_state": int((result or {}).get(
                 "power_state", vm_states.RUNNING)),
             **_flavor_values(old_flavor)}, clear_context=True)

    async def confirm_resizes(self) -> int:
        """Periodic: confirm the resizes waiting in VERIFY_RESIZE for
        longer than ``resize_confirm_window`` seconds."""
        window = getattr(self.conf, "resize_confirm_window", 0)
        if not window:
            return 0
        older = self._now() - datetime.timedelta(seconds=window)
        migrations = await self.db.migrations.finished_before("finished",
                                                              older)
        done = 0
        for migration in migrations:
            try:
                instance = await self.db.instances.get(
                    migration.instance_uuid)
                if (instance.vm_state != vm_states.RESIZED
                        or instance.task_state is not None):
                    continue
                self.log.info("confirming the resize of {uuid} "
                              "automatically", uuid=instance.uuid)
                await self.confirm_resize(get_admin_context(), migration.id)
                done += 1
            except Exception:  # noqa: BLE001 - the next one still goes
                self.log.failure("automatic confirm of migration {id} "
                                 "failed", id=migration.id)
        return done

    #: How many step timeouts a move may go without touching its
    #: migration before it counts as stuck: a step, plus the rollback of
    #: a reschedule or of the move (two steps), with one to spare.
    STUCK_STEPS = 4

    async def reap_stuck_moves(self) -> list[int]:
        """Periodic (and once at start): moves whose migration has not
        changed for ``STUCK_STEPS`` x ``move_step_timeout`` (the
        conductor driving them died: every live move touches its
        migration within that bound) are settled.  A confirm or revert is
        run again; a move in flight is rolled back (the destination's
        claim dropped, the source's guest started again); an evacuation
        drops the destination's claim.  The instance gets a fault; it goes
        to ERROR only when the rollback fails.  The migration ids
        settled."""
        seconds = self.STUCK_STEPS * self._step_timeout
        stuck = await self.db.migrations.stuck(
            self._now() - datetime.timedelta(seconds=seconds))
        reaped = []
        for migration in stuck:
            try:
                await self._reap(migration, seconds)
                reaped.append(migration.id)
            except Exception:  # noqa: BLE001 - the next one still goes
                self.log.failure("could not settle stuck migration {id}",
                                 id=migration.id)
        return reaped

    async def _reap(self, migration: Migration, seconds: float) -> None:
        context = get_admin_context()
        error = exception.MigrationStuck(
            migration_id=migration.id, instance_uuid=migration.instance_uuid,
            seconds=int(seconds), status=migration.status)
        self.log.warn("{why}", why=str(error))
        try:
            instance = await self.db.instances.get(migration.instance_uuid)
        except exception.InstanceNotFound:
            await self._set_status(None, migration, "error")
            return
        if migration.status == "confirming":
            await self.confirm_resize(context, migration.id)
            return
        if migration.status == "reverting":
            await self.revert_resize(context, migration.id)
            return
        if migration.migration_type == "evacuation":
            if migration.dest_compute:
                await self._quietly(context, "revert_resize",
                                    migration.dest_compute, instance,
                                    migration)
            await self._fault(instance.uuid, error)
            await self._set_status(
                None, migration, "error", {"task_state": None},
                clear_context=True)
            return
        await self._roll_back(context, instance, migration, error)

    async def audit_usage(self) -> list[dict[str, Any]]:
        """Periodic: log each host whose reported usage differs from the
        flavors the database places on it (``compute-manage audit
        usage`` reports the same).  A host reports every
        ``update_resources_interval``, so a difference that lasts one
        report is a move in flight; one that lasts is a leak."""
        report = await self.db.migrations.audit_usage()
        for row in report:
            if not row["ok"]:
                self.log.warn(
                    "usage audit: host {host} reports {reported} (vcpus, "
                    "MiB, GB) but holds {expected} for {count} placed "
                    "instance(s)", host=row["host"],
                    reported=row["reported"], expected=row["expected"],
                    count=len(row["instances"]))
        return report

