"""Moves of an instance between hosts: a ``migrations`` row and the
instance's migration context, as Nova has them.

A migration says who owns which usage while an instance moves (resize,
cold or live migration, evacuation); the migration context holds what
the instance looks like on each side.  Nothing uses them yet: the move
operations of the next issues do.
"""

from __future__ import annotations

import datetime
from typing import Any

import attrs

from twisted_compute.objects import Record

#: Nova's migration statuses.
STATUSES = ("pre-migrating", "migrating", "post-migrating", "finished",
            "confirmed", "reverted", "error", "failed", "cancelled", "done",
            "completed")
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
