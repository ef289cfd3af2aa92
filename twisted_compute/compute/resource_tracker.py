"""The compute agent's resource tracker: claims checked on the host.

The scheduler picks hosts from the nodes' last reports, so two schedulers
(or one scheduler and a burst of requests) can send a host more than it
holds.  The tracker is the last word: every build *claims* its vCPUs, RAM
and disk here before the driver spawns, and a claim that does not fit the
host's capacity (times its allocation ratios, as in Nova:
``cpu_allocation_ratio`` 16.0, ``ram_allocation_ratio`` 1.5,
``disk_allocation_ratio`` 1.0) is refused with
:class:`~twisted_compute.exception.ComputeResourcesUnavailable`, so that
the conductor reschedules the instance to an alternate.

Claims are checked and recorded synchronously, in one reactor turn, so
concurrent builds cannot both pass the check against the same free space.

Usage is what the tracked instances take: those on this host that the
conductor reported (refreshed by :meth:`ResourceTracker.set_instances`)
plus the claims of the builds in progress.
"""

from __future__ import annotations

from typing import Any, Iterable

import attrs

from twisted_compute import exception
from twisted_compute.log import Logger
from twisted_compute.objects import vm_states
from twisted_compute.objects.migration import flavor_usage, usage_by_host

#: The key of a destination's usage of a move in progress.
MOVE_PREFIX = "move:"

#: vm_states whose instances take no resources on their host.
FREE_VM_STATES = (vm_states.DELETED, vm_states.SHELVED_OFFLOADED)


@attrs.frozen
class Usage:
    """What one instance takes on its host."""

    vcpus: int
    memory_mb: int
    disk_gb: int

    @classmethod
    def of(cls, instance) -> "Usage":
        """The usage of an :class:`Instance` record."""
        return cls(vcpus=int(instance.vcpus or 0),
                   memory_mb=int(instance.memory_mb or 0),
                   disk_gb=int(instance.root_gb or 0)
                   + int(instance.ephemeral_gb or 0))


@attrs.define(eq=False)
class Claim:
    """Resources held for one build; :meth:`abort` (or :meth:`release`)
    gives them back; a finished build keeps them as its instance's."""

    tracker: "ResourceTracker"
    instance_uuid: str
    usage: Usage
    active: bool = True
    #: The usage the instance had here before this claim (a reclaim):
    #: an aborted claim gives it back.
    previous: Usage | None = None

    def abort(self) -> None:
        """Give the resources back (the build failed or was deleted)."""
        if self.active:
            self.active = False
            self.tracker._drop_claim(self)

    release = abort

    def finish(self) -> None:
        """The build succeeded: the usage now belongs to the instance."""
        if self.active:
            self.active = False
            self.tracker._finish_claim(self)


class ResourceTracker:
    """Capacity and usage of one hypervisor node of this host."""

    log = Logger()

    def __init__(self, conf, host: str, driver,
                 nodename: str | None = None):
        self.conf = conf
        self.host = host
        self.driver = driver
        self.nodename = nodename
        self.cpu_allocation_ratio = conf.cpu_allocation_ratio
        self.ram_allocation_ratio = conf.ram_allocation_ratio
        self.disk_allocation_ratio = conf.disk_allocation_ratio
        #: The driver's last report (None until :meth:`refresh`).
        self.resources: dict[str, Any] | None = None
        #: Instances on this host that take resources, by uuid.
        self.instances: dict[str, Usage] = {}
        #: Builds in progress, by uuid.
        self.claims: dict[str, Claim] = {}

    # --- capacity ------------------------------------------------------

    async def refresh(self) -> dict[str, Any]:
        """Read the node's capacity from the driver."""
        if self.nodename is None:
            nodes = await self.driver.get_available_nodes()
            self.nodename = nodes[0]
        self.resources = await self.driver.get_available_resource(
            self.nodename)
        return self.resources

    @property
    def limits(self) -> dict[str, float]:
        """The most this node may hand out: totals times ratios."""
        if self.resources is None:
            raise exception.ComputeResourcesUnavailable(
                reason=f"the resources of host {self.host} are not known "
                       f"yet")
        return {
            "vcpus": self.resources["vcpus"] * self.cpu_allocation_ratio,
            "memory_mb":
                self.resources["memory_mb"] * self.ram_allocation_ratio,
            "disk_gb":
                self.resources["local_gb"] * self.disk_allocation_ratio,
        }

    # --- usage ---------------------------------------------------------

    def _usages(self) -> dict[str, Usage]:
        usages = dict(self.instances)
        usages.update({uuid: claim.usage
                       for uuid, claim in self.claims.items()})
        return usages

    def usage(self) -> dict[str, int]:
        """``vcpus_used``, ``memory_mb_used``, ``local_gb_used`` and
        ``running_vms`` (instances counted) of this node."""
        usages = self._usages().values()
        return {
            "vcpus_used": sum(u.vcpus for u in usages),
            "memory_mb_used": sum(u.memory_mb for u in usages),
            "local_gb_used": sum(u.disk_gb for u in usages),
            "running_vms": len(usages),
        }

    def set_instances(self, instances: Iterable[Any]) -> None:
        """Replace the tracked instances with those the conductor says are
        on this host or moving to or from it (records), by the ownership
        rule of :mod:`twisted_compute.objects.migration`; builds and move
        claims in progress stay claimed."""
        self.instances = {}
        for instance in instances:
            if instance.migration_context:
                for key, values in usage_by_host([instance]).get(
                        self.host, {}).items():
                    self.instances[key] = Usage(*values)
            else:
                self.track(instance)

    def track(self, instance) -> None:
        """Count an instance (a record) already on this host."""
        if instance.vm_state in FREE_VM_STATES or instance.deleted:
            self.instances.pop(instance.uuid, None)
            return
        self.instances[instance.uuid] = Usage.of(instance)

    def drop(self, instance_uuid: str) -> None:
        """Stop counting an instance (deleted, or gone from this host),
        and any move claim of it here."""
        for key in (instance_uuid, MOVE_PREFIX + instance_uuid):
            self.instances.pop(key, None)
            claim = self.claims.pop(key, None)
            if claim is not None:
                claim.active = False

    # --- moves ---------------------------------------------------------

    def move_claim(self, instance_uuid: str, flavor: dict[str, Any]
                   ) -> Claim:
        """The destination's claim of a move: the new flavor, held under
        ``move:<uuid>`` besides whatever the instance holds here already
        (a resize on the same host holds both until confirm or revert).
        Raises :class:`ComputeResourcesUnavailable`."""
        key = MOVE_PREFIX + instance_uuid
        self.instances.pop(key, None)  # a retried claim replaces the last
        old = self.claims.pop(key, None)
        if old is not None:
            old.active = False
        wanted = Usage(*flavor_usage(flavor))
        self._check_fits(instance_uuid, wanted, self._usages())
        claim = Claim(self, key, wanted)
        self.claims[key] = claim
        return claim

    def drop_move_claim(self, instance_uuid: str) -> None:
        """The destination gives a move's usage back (revert, rollback)."""
        key = MOVE_PREFIX + instance_uuid
        self.instances.pop(key, None)
        claim = self.claims.pop(key, None)
        if claim is not None:
            claim.active = False

    def drop_source_usage(self, instance_uuid: str) -> None:
        """The source gives the old flavor back (confirm)."""
        self.instances.pop(instance_uuid, None)

    def adopt_move(self, instance_uuid: str) -> None:
        """After a confirm: the destination's move usage becomes the
        instance's own (same key as the database's rule gives it)."""
        usage = self.instances.pop(MOVE_PREFIX + instance_uuid, None)
        if usage is not None:
            self.instances[instance_uuid] = usage

    def _check_fits(self, uuid: str, wanted: Usage,
                    usages: dict[str, Usage]) -> None:
        limits = self.limits
        problems = []
        for name, unit, used, ask in (
                ("vcpus", "VCPU", sum(u.vcpus for u in usages.values()),
                 wanted.vcpus),
                ("memory_mb", "MB of memory",
                 sum(u.memory_mb for u in usages.values()),
                 wanted.memory_mb),
                ("disk_gb", "GB of disk",
                 sum(u.disk_gb for u in usages.values()), wanted.disk_gb)):
            free = limits[name] - used
            if ask > free:
                problems.append(
                    f"{name}: asked {ask} {unit}, {max(free, 0):g} free of "
                    f"{limits[name]:g}")
        if problems:
            raise exception.ComputeResourcesUnavailable(
                reason=f"host {self.host} cannot hold instance {uuid} ("
                       + "; ".join(problems) + ")")

    # --- claims --------------------------------------------------------

    def claim(self, instance) -> Claim:
        """Hold the instance's resources, or raise
        :class:`ComputeResourcesUnavailable` naming what does not fit."""
        wanted = Usage.of(instance)
        uuid = instance.uuid
        usages = self._usages()
        usages.pop(uuid, None)  # a reclaim replaces the old one
        self._check_fits(uuid, wanted, usages)
        claim = Claim(self, uuid, wanted,
                      previous=self.instances.pop(uuid, None))
        self.claims[uuid] = claim
        return claim

    def _drop_claim(self, claim: Claim) -> None:
        if self.claims.get(claim.instance_uuid) is claim:
            del self.claims[claim.instance_uuid]
            if claim.previous is not None:
                self.instances[claim.instance_uuid] = claim.previous

    def _finish_claim(self, claim: Claim) -> None:
        if self.claims.get(claim.instance_uuid) is claim:
            del self.claims[claim.instance_uuid]
            self.instances[claim.instance_uuid] = claim.usage

    # --- report --------------------------------------------------------

    def compute_node_values(self) -> dict[str, Any]:
        """The values of ``conductor.compute_node_update``: the driver's
        capacity and identity, this tracker's usage, the ratios."""
        if self.resources is None:
            raise exception.ComputeResourcesUnavailable(
                reason=f"the resources of host {self.host} are not known "
                       f"yet")
        resources = self.resources
        values = {
            "host": self.host,
            "hypervisor_hostname": resources["hypervisor_hostname"],
            "hypervisor_type": resources["hypervisor_type"],
            "hypervisor_version": resources["hypervisor_version"],
            "vcpus": resources["vcpus"],
            "memory_mb": resources["memory_mb"],
            "local_gb": resources["local_gb"],
            "cpu_info": resources["cpu_info"],
            # The host's uptime line (2.88); None when the driver has none.
            "uptime": resources.get("uptime"),
            "cpu_allocation_ratio": self.cpu_allocation_ratio,
            "ram_allocation_ratio": self.ram_allocation_ratio,
            "disk_allocation_ratio": self.disk_allocation_ratio,
        }
        values.update(self.usage())
        return values
