"""Host aggregates: named groups of compute hosts with metadata; the
``availability_zone`` key of the metadata makes one an availability zone."""

from __future__ import annotations

import datetime

import attrs

from twisted_compute.objects import Record

#: The metadata key that names an aggregate's availability zone.
AZ_KEY = "availability_zone"


@attrs.frozen
class Aggregate(Record):
    id: int
    uuid: str
    name: str
    metadata: dict[str, str] = attrs.field(factory=dict)
    #: Member hosts (compute service hosts), sorted.
    hosts: tuple[str, ...] = ()
    created_at: datetime.datetime | None = None
    updated_at: datetime.datetime | None = None

    @property
    def availability_zone(self) -> str | None:
        return self.metadata.get(AZ_KEY)
