"""The external events each instance received (``POST
/os-server-external-events``): a record of what a network service
said, kept with the instance's history."""

from __future__ import annotations

from typing import Any, Sequence

import sqlalchemy as sa
from twisted.internet.defer import Deferred

from twisted_compute.db import models as m
from twisted_compute.db.base import DBComponent

_FIELDS = ("instance_uuid", "name", "tag", "status", "request_id",
           "created_at")


def record(conn, events: Sequence[dict[str, Any]],
           request_id: str | None) -> None:
    """Store events (``instance_uuid``, ``name``, ``tag``, ``status``)."""
    now = m.utcnow()
    conn.execute(m.instance_external_events.insert(), [
        {"instance_uuid": e["instance_uuid"], "name": e["name"],
         "tag": e.get("tag"), "status": e["status"],
         "request_id": request_id, "created_at": now} for e in events])


def list_for(conn, instance_uuid: str) -> list[dict[str, Any]]:
    """The events of an instance, oldest first."""
    table = m.instance_external_events
    rows = conn.execute(sa.select(*[table.c[f] for f in _FIELDS]).where(
        table.c.instance_uuid == instance_uuid).order_by(table.c.id)).all()
    return [dict(row._mapping) for row in rows]


class ExternalEventsComponent(DBComponent):
    def record(self, events: Sequence[dict[str, Any]],
               request_id: str | None = None) -> Deferred[None]:
        return self._write(record, list(events), request_id)

    def list_for(self, instance_uuid: str) -> Deferred[list[dict]]:
        return self._read(list_for, instance_uuid)
