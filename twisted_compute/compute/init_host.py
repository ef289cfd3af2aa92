"""The compute agent's start: reconcile this host's instances and guests
after a restart (``init_host``), for
:class:`~twisted_compute.compute.manager.ComputeManager`."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

from twisted_compute.objects import vm_states
from twisted_compute.compute.common import (
    HARD_REBOOT_TASK_STATES, SOFT_REBOOT_TASK_STATES)
from twisted_compute.context import get_admin_context
from twisted_compute.objects.instance import Instance
from twisted_compute.virt import power_state

#: task_states of an instance whose build was under way.
BUILDING_TASK_STATES = (vm_states.SCHEDULING, vm_states.NETWORKING,
                        vm_states.BLOCK_DEVICE_MAPPING, vm_states.SPAWNING)
#: transient task_states left behind by a restart: reset, and the vm_state
#: follows the guest's power state.
ACTION_TASK_STATES = tuple(SOFT_REBOOT_TASK_STATES + HARD_REBOOT_TASK_STATES
                           + [vm_states.PAUSING, vm_states.UNPAUSING,
                              vm_states.SUSPENDING, vm_states.RESUMING,
                              vm_states.POWERING_OFF, vm_states.POWERING_ON])

RESTART_BUILD_REASON = "Instance was building when the compute agent restarted"

#: The vm_state that a guest's power state means (None: leave it).
VM_STATE_OF_POWER = {
    power_state.RUNNING: vm_states.ACTIVE,
    power_state.PAUSED: vm_states.PAUSED,
    power_state.SUSPENDED: vm_states.SUSPENDED,
    power_state.SHUTDOWN: vm_states.STOPPED,
    power_state.CRASHED: vm_states.STOPPED,
    power_state.NOSTATE: None,
}


class InitHostMixin:
    """Start of :class:`ComputeManager`; uses its ``conductor``,
    ``driver``, ``tracker``, ``host``, ``builds``, ``_update``,
    ``_power_state``, ``_destroy_quietly``, ``_finish_delete`` and
    ``_sync_updates``."""

    def init_host(self, context=None) -> defer.Deferred:
        """Once at start: reconcile this host's instances and guests after
        a restart, then report the node.  Unlike the periodic tasks, a
        failure here fails the Deferred (the service should not serve)."""
        return defer.ensureDeferred(
            self._init_host(context or get_admin_context()))

    async def _init_host(self, context) -> None:
        await self.driver.init_host(self.host)
        await self.tracker.refresh()
        # Servers evacuated while this host was down run elsewhere now:
        # their guests here go first (Nova's _destroy_evacuated_instances).
        await self.destroy_evacuated_instances(context)
        instances = await self.conductor.instances_on_host(context,
                                                           self.host)
        guests = set(await self.driver.list_instance_uuids())
        remaining = []
        for instance in instances:
            try:
                if await self._init_instance(context, instance, guests):
                    remaining.append(instance)
            except Exception:
                self.log.failure("could not reconcile instance {uuid}",
                                 uuid=instance.uuid)
                remaining.append(instance)
        known = {instance.uuid for instance in instances}
        for uuid in sorted(guests - known - set(self.builds)):
            self.log.info("destroying guest {uuid}: its instance is deleted "
                          "or not on host {host}", uuid=uuid, host=self.host)
            await self._destroy_quietly(context, Instance(
                id=0, uuid=uuid, user_id="", project_id="",
                vm_state=vm_states.DELETED))
        self.tracker.set_instances(remaining)
        await self.conductor.compute_node_update(
            context, self.tracker.compute_node_values())

    async def _init_instance(self, context, instance: Instance,
                             guests: set[str]) -> bool:
        """Reconcile one instance after a restart; whether it still takes
        resources here."""
        uuid = instance.uuid
        if instance.task_state == vm_states.DELETING:
            await self._destroy_quietly(context, instance)
            await self._finish_delete(context, uuid)
            return False
        if instance.vm_state == vm_states.BUILDING or \
                instance.task_state in BUILDING_TASK_STATES:
            if uuid in guests:
                await self._destroy_quietly(context, instance)
            self.log.warn("instance {uuid} was building when {host} "
                          "restarted: ERROR", uuid=uuid, host=self.host)
            await self._update(context, uuid, {
                "vm_state": vm_states.ERROR, "task_state": None,
                "power_state": power_state.NOSTATE})
            await self.conductor.instance_fault_create(
                context, uuid, 500, RESTART_BUILD_REASON, None, self.host)
            return True
        state = await self._power_state(instance)
        if instance.task_state in ACTION_TASK_STATES:
            updates: dict[str, Any] = {"task_state": None,
                                       "power_state": state}
            vm_state = VM_STATE_OF_POWER.get(state)
            if vm_state is not None:
                updates["vm_state"] = vm_state
            await self._update(context, uuid, updates)
            return True
        updates = self._sync_updates(instance, state)
        if updates:
            await self._update(context, uuid, updates)
        return True
