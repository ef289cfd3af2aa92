"""The metadata API's queries (``def thd(conn)`` functions)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from twisted_compute import exception
from twisted_compute.db import instances as instances_db
from twisted_compute.db import models as m

I = m.instances  # noqa: E741


def _fixed_addresses(addresses: Any):
    for entries in (addresses or {}).values():
        for entry in entries or ():
            if isinstance(entry, dict) and entry.get("addr") and \
                    entry.get("OS-EXT-IPS:type", "fixed") == "fixed":
                yield entry["addr"]


def uuid_by_fixed_ip(conn, address: str) -> str | None:
    """The live instance with the fixed IP ``address``, or None.

    ``addresses`` is a JSON column that no index covers portably, so the
    live instances are scanned here, two columns each;
    the API caches what this finds.  When two live instances share the
    address (separate networks), the newest wins.
    """
    rows = conn.execute(
        sa.select(I.c.uuid, I.c.addresses)
        .where(I.c.deleted == 0)
        .order_by(I.c.id.desc()))
    for uuid, addresses in rows:
        if address in _fixed_addresses(addresses):
            return uuid
    return None


def load(conn, uuid: str) -> dict[str, Any] | None:
    """``{"instance": Instance, "key_type": str | None}`` of the live
    instance ``uuid``, or None."""
    try:
        instance = instances_db.get(conn, uuid)
    except exception.InstanceNotFound:
        return None
    key_type = None
    if instance.key_name:
        k = m.key_pairs
        key_type = conn.execute(sa.select(k.c.type).where(
            k.c.user_id == instance.user_id,
            k.c.name == instance.key_name)).scalar()
    return {"instance": instance, "key_type": key_type}


def set_password(conn, uuid: str, password: str) -> bool:
    """Store the password a guest posts; False (and nothing changes) when
    one is already set, as a guest may set it only once."""
    row = conn.execute(sa.select(I.c.system_metadata).where(
        I.c.uuid == uuid, I.c.deleted == 0)).first()
    if row is None:
        raise exception.InstanceNotFound(instance_id=uuid)
    system_metadata = dict(row.system_metadata or {})
    if system_metadata.get("password"):
        return False
    system_metadata["password"] = password
    conn.execute(I.update().where(I.c.uuid == uuid).values(
        system_metadata=system_metadata, updated_at=m.utcnow()))
    return True
