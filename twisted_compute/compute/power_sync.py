"""The compute agent's power sync: the periodic task and the driver's
lifecycle events bring the database's power states (and a guest that
stopped by itself) in line with the hypervisor's, for
:class:`~twisted_compute.compute.manager.ComputeManager`."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

from twisted_compute import exception
from twisted_compute.objects import vm_states
from twisted_compute.context import get_admin_context
from twisted_compute.objects.instance import Instance
from twisted_compute.virt import power_state


class PowerSyncMixin:
    """Power sync of :class:`ComputeManager`; uses its ``conductor``,
    ``driver``, ``host``, ``builds``, ``_update``, ``_power_state`` and
    ``_periodic``."""

    def sync_power_states(self, context=None) -> defer.Deferred:
        """Periodic: bring the DB's power states in line with the
        driver's."""
        return self._periodic(self._sync_power_states, context)

    @staticmethod
    def _sync_updates(instance: Instance, state: int) -> dict[str, Any]:
        """What to write when the guest's power state is ``state``."""
        updates: dict[str, Any] = {}
        if state != instance.power_state:
            updates["power_state"] = state
        if instance.vm_state == vm_states.ACTIVE and state in (
                power_state.SHUTDOWN, power_state.CRASHED):
            # The guest stopped by itself: as Nova, the server is stopped.
            updates["vm_state"] = vm_states.STOPPED
        return updates

    async def _sync_one(self, context, instance: Instance) -> None:
        state = await self._power_state(instance)
        if instance.vm_state == vm_states.STOPPED and \
                state == power_state.RUNNING:
            # Started behind our back: a stopped server stays stopped.
            await self.driver.power_off(instance)
            state = await self._power_state(instance)
        updates = self._sync_updates(instance, state)
        if not updates:
            return
        self.log.info("power state of {uuid}: DB {db}, hypervisor {hv}",
                      uuid=instance.uuid,
                      db=power_state.name(instance.power_state),
                      hv=power_state.name(state))
        try:
            await self._update(context, instance.uuid, updates,
                               expected_task_state=[None])
        except (exception.InstanceNotFound,
                exception.UnexpectedTaskStateError):
            pass  # a task started meanwhile: it will set the state

    def handle_lifecycle_event(self, instance_uuid: str, state: int
                               ) -> defer.Deferred:
        """The driver saw a guest change power state (``state`` is a
        hint): sync that instance now, as the periodic sync would, unless
        it is being built or a task is acting on it."""
        d = defer.ensureDeferred(self._lifecycle_event(instance_uuid))
        d.addErrback(lambda f: self.log.failure(
            "lifecycle event of {uuid} ({state}) not handled", f,
            uuid=instance_uuid, state=power_state.name(state)))
        return d

    async def _lifecycle_event(self, instance_uuid: str) -> None:
        if instance_uuid in self.builds:
            return
        context = get_admin_context()
        for instance in await self.conductor.instances_on_host(
                context, self.host):
            if instance.uuid == instance_uuid:
                if instance.task_state is None:
                    await self._sync_one(context, instance)
                return

    async def _sync_power_states(self, context) -> None:
        instances = await self.conductor.instances_on_host(context,
                                                           self.host)
        await self.sync_power_states_of(context, instances)

    async def sync_power_states_of(self, context, instances) -> None:
        """The power sync of ``instances`` (this host's, as the
        conductor listed them: a fleet lists all its hosts' at once)."""
        for instance in instances:
            if instance.task_state is not None or \
                    instance.uuid in self.builds:
                continue
            try:
                await self._sync_one(context, instance)
            except Exception:
                self.log.failure("power sync of {uuid} failed",
                                 uuid=instance.uuid)
