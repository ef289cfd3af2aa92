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
    counters.  A live migration is then ``finish_resize`` on the
    destination and ``confirm_resize`` on the source.
"""

from __future__ import annotations

from typing import Any

import attrs
from twisted.internet import defer

from twisted_compute.objects.instance import Instance


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

    async def _driver_step(self, name: str, *args, **kwargs):
        call = getattr(self.driver, name, None)
        if call is None:
            from twisted_compute import exception
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
        counters = await self._driver_step(
            "live_migration", context, instance,
            migration.get("dest_compute"),
            {"block_migration": bool(block_migration)})
        return dict(counters or {})

