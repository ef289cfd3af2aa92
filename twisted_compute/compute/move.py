"""The compute agent's part of a move (resize, cold migration), for
:class:`~twisted_compute.compute.manager.ComputeManager`.

The conductor drives a move one step at a time, each step an RPC call
to one agent with a timeout (:mod:`twisted_compute.conductor.move`); an
agent step does its driver work and its claim bookkeeping and answers,
and the conductor writes the database.  Each step undoes its own claim
when its driver work fails, so a failed step leaves this host's usage as
it was before the step.

Steps (all calls, compute RPC 1.4):

``prep_resize`` (destination)
    Claim the new flavor (``move:<uuid>``); answers the node name.
``resize_instance`` (source)
    ``driver.migrate_disk_and_power_off``: the guest stops, its disk is
    copied to the destination.
``finish_resize`` (destination)
    ``driver.finish_migration`` with the new flavor: the guest runs
    there; answers its power state.
``confirm_resize`` (source)
    ``driver.confirm_migration``: the old guest is thrown away, the old
    flavor's usage given back.
``revert_resize`` (destination)
    ``driver.revert_migration``: the new guest is thrown away and the
    claim dropped.  Also the rollback of a failed later step.
``finish_revert_resize`` (source)
    ``driver.finish_revert_migration``: the old guest runs again.
``confirm_resize_dest`` (destination)
    The move's usage becomes the instance's own (bookkeeping only).
``live_migration`` (source)
    ``driver.live_migration``: the memory copy; answers the progress
    counters (and reports them to the conductor while it runs, 1.7).  A
    live migration is then ``finish_resize`` on the destination and
    ``confirm_resize`` on the source.  ``live_migration_force_complete``
    and ``live_migration_abort`` (casts, 1.7) reach the copy under way.
``evacuate_spawn`` (destination, 1.7)
    An evacuation: the guest spawned again from its image here (the
    source host is down); answers its power state.

A step that the conductor gave up on (it timed out there, and the
conductor rolled the move back with ``revert_resize``) may still finish
here later: each agent remembers the moves it was told to revert, and a
late ``prep_resize``, ``finish_resize`` or ``evacuate_spawn`` of one of
them undoes its own work (the claim dropped, the new guest destroyed)
instead of leaving a guest nobody counts.
"""

from __future__ import annotations

import collections
from typing import Any

import attrs
from twisted.internet import defer

from twisted_compute import exception
from twisted_compute.compute.common import message
from twisted_compute.objects.instance import Instance

#: How many reverted moves an agent remembers (late completions of older
#: ones are not detected: far beyond any step timeout).
REVERTED_MEMORY = 1024


def _with_flavor(instance: Instance, flavor: dict[str, Any]) -> Instance:
    """``instance`` as it is with ``flavor`` (a snapshot)."""
    if not flavor:
        return instance
    return attrs.evolve(
        instance, flavor=flavor, instance_type_id=flavor.get("id"),
        vcpus=int(flavor.get("vcpus") or 0),
        memory_mb=int(flavor.get("memory_mb") or 0),
        root_gb=int(flavor.get("root_gb") or 0),
        ephemeral_gb=int(flavor.get("ephemeral_gb") or 0))


def _is_live(migration: dict[str, Any] | None) -> bool:
    return (migration or {}).get("migration_type") == "live-migration"


class MoveMixin:
    """Move steps of :class:`ComputeManager`.  Uses its ``driver``,
    ``tracker``, ``host``, ``nodename``, ``_power_state`` and the event
    helpers."""

    @property
    def _reverted(self) -> "collections.OrderedDict[Any, None]":
        """Migration ids this host was told to revert (bounded)."""
        reverted = self.__dict__.get("_reverted_moves")
        if reverted is None:
            reverted = self.__dict__["_reverted_moves"] = \
                collections.OrderedDict()
        return reverted

    def _remember_revert(self, migration) -> None:
        key = (migration or {}).get("id")
        if key is None:
            return
        self._reverted[key] = None
        while len(self._reverted) > REVERTED_MEMORY:
            self._reverted.popitem(last=False)

    def _was_reverted(self, migration) -> bool:
        return (migration or {}).get("id") in self._reverted

    async def _late(self, context, step: str, instance: Instance,
                    migration, destroy: bool) -> None:
        """``step`` finished after its move was rolled back: undo it."""
        self.log.warn("[{request_id}] {step} of {uuid} finished on {host} "
                      "after its move {id} was rolled back: undoing it",
                      request_id=context.request_id, step=step,
                      uuid=instance.uuid, host=self.host,
                      id=migration.get("id"))
        if destroy and migration.get("source_compute") != self.host:
            try:
                await self.driver.destroy(context, instance, [], None)
            except Exception as exc:  # noqa: BLE001 - logged
                self.log.warn("could not destroy the late guest of {uuid}: "
                              "{why}", uuid=instance.uuid, why=message(exc))
        self.tracker.drop_move_claim(instance.uuid)
        raise exception.MigrationError(
            reason=f"{step} of {instance.uuid} on {self.host} came after "
                   f"its move was rolled back")

    async def _driver_step(self, name: str, *args, **kwargs):
        call = getattr(self.driver, name, None)
        if call is None:
            raise exception.MigrationError(
                reason=f"the {type(self.driver).__name__} driver cannot "
                       f"{name}")
        return await defer.maybeDeferred(call, *args, **kwargs)

    async def _noted(self, context, instance: Instance, action: str, run,
                     end: bool = True, **payload):
        """``await run()`` between Nova's ``instance.<action>.start`` and
        ``.end`` notifications (``.error`` with the fault when it
        fails; no ``.end`` when ``end`` is false)."""
        self._notify(context, instance, action, "start", **payload)
        try:
            result = await run()
        except Exception as exc:
            self._notify(context, instance, action, "error", exc=exc,
                         **payload)
            raise
        if end:
            self._notify(context, instance, action, "end", **payload)
        return result

    async def prep_resize(self, context, instance, new_flavor, migration,
                          **kwargs) -> dict[str, Any]:
        instance = Instance.from_dict(instance)
        if self.tracker.resources is None:
            await self.tracker.refresh()

        async def claim_it():
            claim = self.tracker.move_claim(instance.uuid, new_flavor)
            check = getattr(self.driver, "check_move_claim", None)
            try:
                if check is not None:
                    await defer.maybeDeferred(check, instance)
            except Exception:
                claim.abort()
                raise
            if self._was_reverted(migration):
                claim.abort()
                await self._late(context, "prep_resize", instance,
                                 migration, destroy=False)
            claim.finish()

        from twisted_compute.notifications import payloads
        if _is_live(migration):
            await self._noted(context, instance, "live_migration_pre",
                              claim_it)
        else:
            await self._noted(
                context, instance, "resize_prep", claim_it,
                name="InstanceActionResizePrepPayload",
                new_flavor=payloads.flavor_payload(new_flavor))
        self.log.info("[{request_id}] move of {uuid} claimed on {host}",
                      request_id=context.request_id, uuid=instance.uuid,
                      host=self.host)
        return {"host": self.host, "node": self.nodename}

    async def resize_instance(self, context, instance, migration,
                              new_flavor, **kwargs) -> None:
        instance = Instance.from_dict(instance)
        await self._noted(context, instance, "resize", lambda: (
            self._driver_step(
                "migrate_disk_and_power_off", context, instance,
                migration.get("dest_host") or migration.get("dest_compute"),
                new_flavor)))

    async def finish_resize(self, context, instance, migration, new_flavor,
                            power_on=True, **kwargs) -> dict[str, Any]:
        instance = _with_flavor(Instance.from_dict(instance), new_flavor)
        action = ("live_migration_post_dest" if _is_live(migration)
                  else "resize_finish")
        await self._noted(context, instance, action, lambda: (
            self._driver_step("finish_migration", context, migration,
                              instance, power_on=power_on)))
        if self._was_reverted(migration):
            await self._late(context, "finish_resize", instance, migration,
                             destroy=True)
        return {"power_state": await self._power_state(instance)}

    async def confirm_resize(self, context, instance, migration,
                             **kwargs) -> None:
        instance = Instance.from_dict(instance)
        action = ("live_migration_post" if _is_live(migration)
                  else "resize_confirm")
        await self._noted(context, instance, action, lambda: (
            self._driver_step("confirm_migration", context, migration,
                              instance)))
        self.tracker.drop_source_usage(instance.uuid)
        if migration.get("dest_compute") == self.host:
            self.tracker.adopt_move(instance.uuid)

    async def confirm_resize_dest(self, context, instance, **kwargs) -> None:
        self.tracker.adopt_move(Instance.from_dict(instance).uuid)

    async def revert_resize(self, context, instance, migration,
                            **kwargs) -> None:
        instance = Instance.from_dict(instance)
        # As Nova: the destination starts the revert, the source ends it.
        action = ("live_migration_rollback_dest" if _is_live(migration)
                  else "resize_revert")
        if migration.get("dest_compute") == self.host and \
                migration.get("source_compute") != self.host:
            self._remember_revert(migration)
        try:
            await self._noted(
                context, instance, action, lambda: self._driver_step(
                    "revert_migration", context, instance, migration),
                end=_is_live(migration))
        finally:
            # Whatever the driver says, this host no longer holds the
            # move: the instance goes back to (or stays on) its source.
            self.tracker.drop_move_claim(instance.uuid)

    async def finish_revert_resize(self, context, instance, migration,
                                   old_flavor=None, power_on=True,
                                   **kwargs) -> dict[str, Any]:
        instance = _with_flavor(Instance.from_dict(instance),
                                old_flavor or {})
        try:
            await self._driver_step("finish_revert_migration", context,
                                    instance, migration=migration,
                                    power_on=power_on)
        except Exception as exc:
            self._notify(context, instance, "resize_revert", "error",
                         exc=exc)
            raise
        self._notify(context, instance, "resize_revert", "end")
        return {"power_state": await self._power_state(instance)}

    async def live_migration(self, context, instance, migration,
                             block_migration=False, **kwargs
                             ) -> dict[str, Any]:
        """Source: the driver's live migration; answers its progress
        counters (bytes)."""
        instance = Instance.from_dict(instance)
        # No notification of its own, as Nova: the destination's claim
        # was instance.live_migration_pre, the ends to come are
        # live_migration_post_dest and live_migration_post.
        progress = _ProgressReporter(self, context, migration.get("id"))
        kwargs = {}
        if getattr(self.driver, "reports_live_migration_progress", False):
            kwargs["progress"] = progress.report
        counters = await self._driver_step(
            "live_migration", context, instance,
            migration.get("dest_compute"),
            {"block_migration": bool(block_migration)}, **kwargs)
        return dict(counters or {})

    def live_migration_force_complete(self, context, instance,
                                      migration_id=None, **kwargs):
        """Cast (1.7): finish the live migration under way now (Nova:
        pause the guest or switch to post-copy)."""
        return self._live_control(context, instance,
                                  "live_migration_force_complete")

    def live_migration_abort(self, context, instance, migration_id=None,
                             **kwargs):
        """Cast (1.7): cancel the live migration under way; the step
        fails with LiveMigrationAborted and the conductor rolls back."""
        return self._live_control(context, instance, "live_migration_abort")

    def _live_control(self, context, instance, name: str):
        instance = Instance.from_dict(instance)
        call = getattr(self.driver, name, None)
        if call is None:
            self.log.warn("the {driver} driver cannot {name}",
                          driver=type(self.driver).__name__, name=name)
            return defer.succeed(None)
        d = defer.maybeDeferred(call, instance)

        def failed(failure):
            self.log.warn("[{request_id}] {name} of {uuid} failed: {why}",
                          request_id=context.request_id, name=name,
                          uuid=instance.uuid,
                          why=message(failure.value))
        return d.addErrback(failed)

    # --- evacuation ----------------------------------------------------

    async def evacuate_spawn(self, context, instance, migration, image=None,
                             admin_password=None, power_on=True,
                             **kwargs) -> dict[str, Any]:
        """Destination of an evacuation (its claim made by
        ``prep_resize``): spawn the guest from its image; a failure
        destroys what was made here (the claim is the conductor's to
        drop, with ``revert_resize``)."""
        instance = Instance.from_dict(instance)
        try:
            await defer.maybeDeferred(
                self.driver.spawn, context, instance, image or {}, [],
                admin_password, [], None)
            if not power_on:
                await defer.maybeDeferred(self.driver.power_off, instance)
        except Exception:
            await self._destroy_quietly(context, instance)
            raise
        if self._was_reverted(migration):
            await self._late(context, "evacuate_spawn", instance, migration,
                             destroy=True)
        return {"power_state": await self._power_state(instance)}

    # --- the source's clean-up of evacuated instances (init_host) ------

    async def destroy_evacuated_instances(self, context) -> list[str]:
        """Nova's ``_destroy_evacuated_instances``: the guests of the
        instances evacuated from this host while it was down are
        destroyed, their usage dropped, and their migrations completed.
        The uuids cleaned."""
        find = getattr(self.conductor, "evacuations_from_host", None)
        if find is None:
            return []
        try:
            migrations = await find(context, self.host)
        except Exception as exc:  # noqa: BLE001 - an older conductor
            self.log.warn("could not list the evacuations from {host}: "
                          "{why}", host=self.host, why=message(exc))
            return []
        guests = set(await self.driver.list_instance_uuids())
        cleaned = []
        for migration in migrations:
            uuid = migration["instance_uuid"]
            if uuid in guests:
                self.log.info("destroying guest {uuid}: it was evacuated "
                              "from {host} to {dest}", uuid=uuid,
                              host=self.host,
                              dest=migration.get("dest_compute"))
                await self._destroy_quietly(context, Instance(
                    id=0, uuid=uuid, user_id="", project_id="",
                    vm_state="deleted"))
            self.tracker.drop_source_usage(uuid)
            await self.conductor.evacuation_cleaned(context,
                                                    migration["id"])
            cleaned.append(uuid)
        return cleaned


class _ProgressReporter:
    """Writes a running live migration's counters through the conductor,
    one write at a time (a report while the last is in flight replaces
    the pending one: bounded)."""

    def __init__(self, manager, context, migration_id):
        self.manager = manager
        self.context = context
        self.migration_id = migration_id
        self.pending: dict[str, int] | None = None
        self.busy = False

    def report(self, counters: dict[str, int]) -> None:
        if self.migration_id is None:
            return
        self.pending = dict(counters)
        if not self.busy:
            self._send()

    def _send(self) -> None:
        update = getattr(self.manager.conductor, "migration_progress", None)
        if update is None or self.pending is None:
            return
        counters, self.pending = self.pending, None
        self.busy = True
        d = defer.maybeDeferred(update, self.context, self.migration_id,
                                counters)

        def done(result):
            self.busy = False
            if self.pending is not None:
                self._send()

        def failed(failure):
            self.manager.log.debug("progress of migration {id} not "
                                   "written: {why}", id=self.migration_id,
                                   why=message(failure.value))
            done(None)
        d.addCallbacks(done, failed)

