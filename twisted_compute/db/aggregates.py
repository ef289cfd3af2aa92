"""Host aggregates: ``def thd(conn)`` queries and
:class:`AggregatesComponent`, which runs them in the DB pool.

An aggregate's availability zone is its ``availability_zone`` metadata
(what :func:`twisted_compute.db.services.host_zones` reads); the rules
that keep a host in one zone at most live here, with the writes they
guard, so that a check and its write share one transaction."""

from __future__ import annotations

import uuid as uuidlib
from typing import Any

import sqlalchemy as sa
from twisted.internet.defer import Deferred

from twisted_compute import exception
from twisted_compute.db import models as m
from twisted_compute.db.base import DBComponent
from twisted_compute.objects.aggregate import AZ_KEY, Aggregate
from twisted_compute.objects.service import COMPUTE_BINARY

_agg = m.aggregates
_hosts = m.aggregate_hosts


def _members(conn, ids: list[int]) -> dict[int, list[str]]:
    members: dict[int, list[str]] = {i: [] for i in ids}
    if not ids:
        return members
    rows = conn.execute(sa.select(_hosts.c.aggregate_id, _hosts.c.host)
                        .where(_hosts.c.aggregate_id.in_(ids))
                        .order_by(_hosts.c.host))
    for aggregate_id, host in rows:
        members[aggregate_id].append(host)
    return members


def _record(row, hosts: list[str]) -> Aggregate:
    return Aggregate(
        id=row.id, uuid=row.uuid, name=row.name,
        metadata=dict(row.metadata or {}), hosts=tuple(hosts),
        created_at=row.created_at, updated_at=row.updated_at)


def get_all(conn) -> list[Aggregate]:
    """Every aggregate, by id."""
    rows = conn.execute(sa.select(_agg).order_by(_agg.c.id)).all()
    members = _members(conn, [r.id for r in rows])
    return [_record(r, members[r.id]) for r in rows]


def get(conn, aggregate_id: int) -> Aggregate:
    row = conn.execute(sa.select(_agg).where(
        _agg.c.id == aggregate_id)).first()
    if row is None:
        raise exception.AggregateNotFound(aggregate_id=aggregate_id)
    return _record(row, _members(conn, [row.id])[row.id])


def availability_zones(conn, default_zone: str) -> set[str]:
    """Every availability zone: ``default_zone`` and those aggregates
    name."""
    zones = {default_zone}
    for (metadata,) in conn.execute(sa.select(_agg.c.metadata)):
        zone = (metadata or {}).get(AZ_KEY)
        if zone:
            zones.add(zone)
    return zones


def host_zone(conn, host: str, default_zone: str) -> str:
    """The availability zone of ``host``: the one an aggregate of it
    names, else ``default_zone``."""
    rows = conn.execute(sa.select(_agg.c.metadata).join(
        _hosts, _hosts.c.aggregate_id == _agg.c.id).where(
        _hosts.c.host == host))
    zones = sorted({(md or {}).get(AZ_KEY) for (md,) in rows} - {None, ""})
    return zones[0] if zones else default_zone


def _name_taken(conn, name: str, but: int | None = None) -> bool:
    query = sa.select(_agg.c.id).where(_agg.c.name == name)
    if but is not None:
        query = query.where(_agg.c.id != but)
    return conn.execute(query).first() is not None


def create(conn, name: str, zone: str | None = None) -> Aggregate:
    """A new aggregate, in availability zone ``zone`` when given; 409
    when ``name`` is taken."""
    if _name_taken(conn, name):
        raise exception.AggregateNameExists(aggregate_name=name)
    metadata = {AZ_KEY: zone} if zone else {}
    try:
        pk = conn.execute(_agg.insert().values(
            uuid=str(uuidlib.uuid4()), name=name, metadata=metadata,
            created_at=m.utcnow())).inserted_primary_key[0]
    except sa.exc.IntegrityError:
        # A concurrent create took the name between check and insert.
        raise exception.AggregateNameExists(aggregate_name=name) from None
    return get(conn, pk)


# --- availability zone rules -----------------------------------------------

def _zones_elsewhere(conn, hosts: list[str], aggregate_id: int) -> set[str]:
    """The zones that aggregates other than ``aggregate_id`` give to any of
    ``hosts``."""
    if not hosts:
        return set()
    rows = conn.execute(sa.select(_agg.c.metadata).join(
        _hosts, _hosts.c.aggregate_id == _agg.c.id).where(
        _hosts.c.host.in_(hosts), _agg.c.id != aggregate_id))
    return {(md or {}).get(AZ_KEY) for (md,) in rows} - {None, ""}


def _check_zone(conn, aggregate: Aggregate, updates: dict[str, Any],
                hosts: list[str], error, check_instances: bool) -> None:
    """Refuse (``error``) a change that would leave a host of ``hosts`` in
    two zones, name an empty zone, or (``check_instances``) move hosts
    that run servers to another zone."""
    if AZ_KEY not in updates:
        return
    zone = updates[AZ_KEY]
    if not zone:
        raise error(aggregate_id=aggregate.id, reason=(
            f"Aggregate {aggregate.name} does not support empty named "
            f"availability zone"))
    conflicting = sorted(_zones_elsewhere(conn, hosts, aggregate.id)
                         - {zone})
    if conflicting:
        raise error(aggregate_id=aggregate.id, reason=(
            f"One or more hosts already in availability zone(s) "
            f"{conflicting}"))
    if check_instances and hosts and zone != aggregate.availability_zone:
        running = conn.execute(sa.select(sa.func.count()).select_from(
            m.instances).where(m.instances.c.host.in_(hosts),
                               m.instances.c.deleted == 0)).scalar_one()
        if running:
            raise error(aggregate_id=aggregate.id, reason=(
                "One or more hosts contain instances in this zone"))


def _write_metadata(conn, aggregate: Aggregate, updates: dict[str, Any],
                    values: dict[str, Any] | None = None) -> None:
    """Merge ``updates`` into the metadata (a None value removes its key,
    absent or not) and write it with ``values``."""
    metadata = dict(aggregate.metadata)
    for key, value in updates.items():
        if value is None:
            metadata.pop(key, None)
        else:
            metadata[key] = value
    conn.execute(_agg.update().where(_agg.c.id == aggregate.id).values(
        metadata=metadata, updated_at=m.utcnow(), **(values or {})))


def update(conn, aggregate_id: int, name: str | None = None,
           zone_updates: dict[str, Any] | None = None) -> Aggregate:
    """Rename and/or change the zone (``zone_updates`` is
    ``{"availability_zone": zone}`` or empty)."""
    aggregate = get(conn, aggregate_id)
    zone_updates = dict(zone_updates or {})
    if name is not None and _name_taken(conn, name, but=aggregate_id):
        raise exception.AggregateNameExists(aggregate_name=name)
    _check_zone(conn, aggregate, zone_updates, list(aggregate.hosts),
                exception.InvalidAggregateActionUpdate, True)
    values = {"name": name} if name is not None else {}
    try:
        _write_metadata(conn, aggregate, zone_updates, values)
    except sa.exc.IntegrityError:
        raise exception.AggregateNameExists(aggregate_name=name) from None
    return get(conn, aggregate_id)


def set_metadata(conn, aggregate_id: int, updates: dict[str, Any]
                 ) -> Aggregate:
    """Set keys; a None value deletes its key."""
    aggregate = get(conn, aggregate_id)
    _check_zone(conn, aggregate, updates, list(aggregate.hosts),
                exception.InvalidAggregateActionUpdateMeta, True)
    _write_metadata(conn, aggregate, updates)
    return get(conn, aggregate_id)


def destroy(conn, aggregate_id: int) -> None:
    """Delete an aggregate that has no hosts left (400 otherwise)."""
    aggregate = get(conn, aggregate_id)
    if aggregate.hosts:
        raise exception.InvalidAggregateActionDelete(
            aggregate_id=aggregate_id, reason="Host aggregate is not empty")
    conn.execute(_agg.delete().where(_agg.c.id == aggregate_id))


def _require_compute_host(conn, host: str) -> None:
    row = conn.execute(sa.select(m.services.c.id).where(
        m.services.c.host == host,
        m.services.c.binary == COMPUTE_BINARY)).first()
    if row is None:
        raise exception.ComputeHostNotFound(host=host)


def add_host(conn, aggregate_id: int, host: str) -> Aggregate:
    """Add a compute host (404 when no compute service runs there; 409
    when it is a member already or would end up in two zones)."""
    _require_compute_host(conn, host)
    aggregate = get(conn, aggregate_id)
    if host in aggregate.hosts:
        raise exception.AggregateHostExists(aggregate_id=aggregate_id,
                                            host=host)
    _check_zone(conn, aggregate, aggregate.metadata, [host],
                exception.InvalidAggregateActionAdd, False)
    try:
        conn.execute(_hosts.insert().values(aggregate_id=aggregate_id,
                                            host=host))
    except sa.exc.IntegrityError:
        raise exception.AggregateHostExists(aggregate_id=aggregate_id,
                                            host=host) from None
    return get(conn, aggregate_id)


def remove_host(conn, aggregate_id: int, host: str) -> Aggregate:
    """Remove a member host (404 when the host or membership is
    unknown)."""
    _require_compute_host(conn, host)
    get(conn, aggregate_id)
    result = conn.execute(_hosts.delete().where(
        _hosts.c.aggregate_id == aggregate_id, _hosts.c.host == host))
    if result.rowcount == 0:
        raise exception.AggregateHostNotFound(aggregate_id=aggregate_id,
                                              host=host)
    return get(conn, aggregate_id)


# --- the component ----------------------------------------------------------

class AggregatesComponent(DBComponent):
    """Host aggregates and their hosts."""

    def get_all(self) -> Deferred[list[Aggregate]]:
        return self._read(get_all)

    def get(self, aggregate_id: int) -> Deferred[Aggregate]:
        return self._read(get, aggregate_id)

    def create(self, name: str, zone: str | None = None
               ) -> Deferred[Aggregate]:
        return self._write(create, name, zone)

    def update(self, aggregate_id: int, name: str | None = None,
               zone_updates: dict[str, Any] | None = None
               ) -> Deferred[Aggregate]:
        return self._write(update, aggregate_id, name, zone_updates)

    def set_metadata(self, aggregate_id: int, updates: dict[str, Any]
                     ) -> Deferred[Aggregate]:
        return self._write(set_metadata, aggregate_id, updates)

    def destroy(self, aggregate_id: int) -> Deferred[None]:
        return self._write(destroy, aggregate_id)

    def add_host(self, aggregate_id: int, host: str) -> Deferred[Aggregate]:
        return self._write(add_host, aggregate_id, host)

    def remove_host(self, aggregate_id: int, host: str
                    ) -> Deferred[Aggregate]:
        return self._write(remove_host, aggregate_id, host)
