"""Many compute agents in one process (``fake_agents = N``), reported
together.

Each agent of the fleet keeps its own RPC server (topic
``compute.<host>``), resource tracker and power sync; what would be two
RPCs per agent and interval (the heartbeat every ``report_interval``,
the resource report every ``update_resources_interval``) is one RPC per
interval for the whole fleet instead:

* ``conductor.service_heartbeats(hosts)`` every ``report_interval``;
* ``conductor.instances_on_hosts(hosts)`` then
  ``conductor.compute_nodes_update(nodes)`` every
  ``update_resources_interval``;
* ``conductor.instances_on_hosts(hosts)`` every
  ``sync_power_state_interval``, each agent's power sync then working on
  its own host's list (1,000 agents made 1,000 calls at once, every
  ten minutes).

A conductor older than 1.7 does not know those methods: the fleet then
falls back to one call per agent, as single agents do.
"""

from __future__ import annotations

from typing import Sequence

from twisted.application import service
from twisted.internet import defer

from twisted_compute.context import get_admin_context
from twisted_compute.log import Logger
from twisted_compute.objects.service import COMPUTE_BINARY
from twisted_compute.rpc import errors
from twisted_compute.rpc_service import PeriodicTask

#: What a conductor that does not serve the batched methods answers.
_OLD_CONDUCTOR = (errors.NoSuchMethod, errors.UnsupportedVersion)


class FleetReporter(service.Service):
    """The heartbeats and resource reports of ``managers`` (the
    :class:`~twisted_compute.compute.manager.ComputeManager` of each agent
    of this process), one RPC per interval for all of them."""

    log = Logger()
    name = "compute-fleet-reporter"

    def __init__(self, conf, clock, conductor, managers: Sequence,
                 topic: str = "compute"):
        self.conf = conf
        self.clock = clock
        self.conductor = conductor
        self.managers = list(managers)
        self.topic = topic
        #: False once the conductor said it has no batched methods.
        self.batched = True
        stop_timeout = conf.periodic_task_stop_timeout
        self.tasks = [
            PeriodicTask("fleet heartbeat", self.heartbeat,
                         conf.report_interval, clock,
                         stop_timeout=stop_timeout),
            PeriodicTask("fleet update_available_resource",
                         self.update_available_resource,
                         conf.update_resources_interval, clock,
                         initial_delay=conf.update_resources_interval,
                         stop_timeout=stop_timeout),
            # First after one interval: init_host reconciles at start.
            PeriodicTask("fleet sync_power_states", self.sync_power_states,
                         conf.sync_power_state_interval, clock,
                         initial_delay=conf.sync_power_state_interval,
                         stop_timeout=stop_timeout),
        ]

    @property
    def hosts(self) -> list[str]:
        return [manager.host for manager in self.managers]

    def startService(self):
        super().startService()
        for periodic in self.tasks:
            periodic.start()

    def stopService(self):
        super().stopService()
        return defer.gatherResults([periodic.stop()
                                    for periodic in self.tasks])

    # --- heartbeats ----------------------------------------------------

    def heartbeat(self) -> defer.Deferred:
        """One heartbeat RPC for every agent of the process."""
        return defer.ensureDeferred(self._heartbeat())

    async def _heartbeat(self) -> None:
        context = get_admin_context()
        if self.batched:
            try:
                await self.conductor.service_heartbeats(
                    context, self.hosts, COMPUTE_BINARY, self.topic)
                return
            except _OLD_CONDUCTOR:
                self._old_conductor_said()
        await defer.gatherResults([
            self.conductor.service_heartbeat(context, host, COMPUTE_BINARY,
                                             self.topic)
            for host in self.hosts], consumeErrors=True)

    def _old_conductor_said(self) -> None:
        if self.batched:
            self.log.warn("the conductor has no batched reports (RPC 1.7); "
                          "{count} agents report one by one",
                          count=len(self.managers))
        self.batched = False

    # --- resources -----------------------------------------------------

    def update_available_resource(self) -> defer.Deferred:
        """The resource report of every agent: the drivers read, one RPC
        for the instances of all hosts, one for all the nodes."""
        return defer.ensureDeferred(self._update_available_resource())

    async def _update_available_resource(self) -> int:
        context = get_admin_context()
        if not self.batched:
            await defer.gatherResults([
                manager.update_available_resource(context)
                for manager in self.managers], consumeErrors=True)
            return len(self.managers)
        ready = []
        for manager in self.managers:
            try:
                await manager.tracker.refresh()
            except Exception:
                self.log.failure("resources of {host} not read",
                                 host=manager.host)
                continue
            ready.append(manager)
        try:
            found = await self.conductor.instances_on_hosts(
                context, [manager.host for manager in ready])
        except _OLD_CONDUCTOR:
            self._old_conductor_said()
            return await self._update_available_resource()
        nodes = []
        for manager in ready:
            manager.tracker.set_instances(found.get(manager.host, ()))
            nodes.append(manager.tracker.compute_node_values())
        if nodes:
            await self.conductor.compute_nodes_update(context, nodes)
        return len(nodes)

    # --- power sync ----------------------------------------------------

    def sync_power_states(self) -> defer.Deferred:
        """The power sync of every agent, one RPC for the instances of
        all hosts."""
        return defer.ensureDeferred(self._sync_power_states())

    async def _sync_power_states(self) -> int:
        context = get_admin_context()
        if self.batched:
            try:
                found = await self.conductor.instances_on_hosts(
                    context, self.hosts)
            except _OLD_CONDUCTOR:
                self._old_conductor_said()
            else:
                for manager in self.managers:
                    try:
                        await manager.sync_power_states_of(
                            context, found.get(manager.host, ()))
                    except Exception:
                        self.log.failure("power sync of {host} failed",
                                         host=manager.host)
                return len(self.managers)
        await defer.gatherResults([
            manager.sync_power_states(context)
            for manager in self.managers], consumeErrors=True)
        return len(self.managers)
