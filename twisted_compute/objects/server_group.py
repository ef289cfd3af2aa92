"""Server groups: affinity and anti-affinity of their members."""

from __future__ import annotations

import datetime
from typing import Any

import attrs

from twisted_compute.objects import Record

POLICIES = ("affinity", "anti-affinity", "soft-affinity",
            "soft-anti-affinity")


@attrs.frozen
class ServerGroup(Record):
    id: int
    uuid: str
    name: str
    user_id: str
    project_id: str
    policy: str
    rules: dict[str, Any] = attrs.field(factory=dict)
    #: Instance uuids of the live members.
    members: tuple[str, ...] = ()
    created_at: datetime.datetime | None = None
    updated_at: datetime.datetime | None = None
