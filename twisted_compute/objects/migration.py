"""Moves of an instance between hosts: a ``migrations`` row and the
instance's migration context, as Nova has them.

A migration says who owns which usage while an instance moves (resize,
cold or live migration, evacuation); the migration context holds what
the instance looks like on each side.

Usage ownership while a move is in progress (the migration context is
set on the instance): the source host holds the old flavor, the
destination host holds the new one (both, on a resize to the same host);
the instance's own usage is not counted besides.  Once confirmed, the
destination holds the instance's (new) flavor; once reverted, the source
holds the old one.
"""

from __future__ import annotations

import datetime
from typing import Any

import attrs

from twisted_compute.objects import Record

#: Nova's migration statuses.
STATUSES = ("pre-migrating", "migrating", "post-migrating", "finished",
            "confirming", "reverting", "confirmed", "reverted", "error",
            "failed", "cancelled", "done", "completed", "accepted",
            "queued", "preparing", "running")
#: Statuses of a migration that is over (its claims are settled).
DONE_STATUSES = ("confirmed", "reverted", "error", "failed", "cancelled",
                 "done", "completed")
#: Statuses of a migration still in progress.
ACTIVE_STATUSES = tuple(s for s in STATUSES if s not in DONE_STATUSES)
#: Nova's migration types.
MIGRATION_TYPES = ("resize", "migration", "live-migration", "evacuation")


@attrs.frozen
class Migration(Record):
    """One row of ``migrations``: an instance moving from a source
    host/node to a destination."""

    id: int
    uuid: str
    instance_uuid: str
    status: str = attrs.field(validator=attrs.validators.in_(STATUSES))
    migration_type: str = attrs.field(
        validator=attrs.validators.in_(MIGRATION_TYPES))
    source_compute: str | None = None
    source_node: str | None = None
    dest_compute: str | None = None
    dest_node: str | None = None
    #: The destination's address (for live migration).
    dest_host: str | None = None
    #: Flavor ids (``flavors.id``) before and after the move; equal for a
    #: migration that is not a resize.
    old_instance_type_id: int | None = None
    new_instance_type_id: int | None = None
    #: Whether the API hides it (an internal step of another operation).
    hidden: bool = False
    #: Progress of a live migration, in bytes.
    memory_total: int | None = None
    memory_processed: int | None = None
    memory_remaining: int | None = None
    disk_total: int | None = None
    disk_processed: int | None = None
    disk_remaining: int | None = None
    user_id: str | None = None
    project_id: str | None = None
    #: Always False: there is one cell.
    cross_cell_move: bool = False
    created_at: datetime.datetime | None = None
    updated_at: datetime.datetime | None = None

    @property
    def is_resize(self) -> bool:
        return self.migration_type == "resize"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES


@attrs.frozen
class MigrationContext(Record):
    """What an instance that is moving looks like on each side: the
    flavor snapshots (``Flavor.snapshot()``) and the hosts and nodes."""

    instance_uuid: str
    migration_id: int
    old_flavor: dict[str, Any] = attrs.field(factory=dict)
    new_flavor: dict[str, Any] = attrs.field(factory=dict)
    source_compute: str | None = None
    source_node: str | None = None
    dest_compute: str | None = None
    dest_node: str | None = None


def flavor_usage(flavor: dict[str, Any]) -> tuple[int, int, int]:
    """(vcpus, memory_mb, disk_gb) of a flavor snapshot."""
    return (int(flavor.get("vcpus") or 0), int(flavor.get("memory_mb") or 0),
            int(flavor.get("root_gb") or 0)
            + int(flavor.get("ephemeral_gb") or 0))


def usage_by_host(instances) -> dict[str, dict[str, tuple[int, int, int]]]:
    """What each host holds, by key (the instance uuid; ``move:<uuid>``
    for a destination's claim of a move), for instance records: the
    ownership rule of this module's docstring."""
    hosts: dict[str, dict[str, tuple[int, int, int]]] = {}
    for inst in instances:
        if inst.deleted or inst.vm_state in ("deleted", "shelved_offloaded"):
            continue
        ctx = inst.migration_context
        if ctx:
            if ctx.get("source_compute"):
                hosts.setdefault(ctx["source_compute"], {})[inst.uuid] = \
                    flavor_usage(ctx.get("old_flavor") or {})
            if ctx.get("dest_compute"):
                hosts.setdefault(ctx["dest_compute"], {})[
                    "move:" + inst.uuid] = flavor_usage(
                        ctx.get("new_flavor") or {})
        elif inst.host:
            hosts.setdefault(inst.host, {})[inst.uuid] = (
                int(inst.vcpus or 0), int(inst.memory_mb or 0),
                int(inst.root_gb or 0) + int(inst.ephemeral_gb or 0))
    return hosts
