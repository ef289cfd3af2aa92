"""Flavor queries: ``def thd(conn)`` functions for :meth:`DBService.run`."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from twisted_compute import exception
from twisted_compute.db import models as m
from twisted_compute.objects.flavor import Flavor

_SORT_KEYS = {"flavorid", "name", "memory_mb", "vcpus", "root_gb",
              "ephemeral_gb", "swap", "rxtx_factor", "id", "created_at",
              "updated_at", "description"}


def _extra_specs(conn, flavor_ids: list[int]) -> dict[int, dict[str, str]]:
    specs: dict[int, dict[str, str]] = {i: {} for i in flavor_ids}
    if not flavor_ids:
        return specs
    rows = conn.execute(sa.select(
        m.flavor_extra_specs.c.flavor_id, m.flavor_extra_specs.c.key,
        m.flavor_extra_specs.c.value).where(
        m.flavor_extra_specs.c.flavor_id.in_(flavor_ids)))
    for flavor_id, key, value in rows:
        specs[flavor_id][key] = value
    return specs


def _record(row, extra_specs: dict[str, str]) -> Flavor:
    return Flavor(
        id=row.id, flavorid=row.flavorid, name=row.name,
        memory_mb=row.memory_mb, vcpus=row.vcpus, root_gb=row.root_gb,
        ephemeral_gb=row.ephemeral_gb, swap=row.swap,
        rxtx_factor=row.rxtx_factor, vcpu_weight=row.vcpu_weight,
        disabled=row.disabled, is_public=row.is_public,
        description=row.description, extra_specs=extra_specs,
        created_at=row.created_at, updated_at=row.updated_at)


def _visible(project_id: str | None):
    """Public flavors, and the private ones ``project_id`` was given."""
    if project_id is None:
        return sa.true()
    return sa.or_(m.flavors.c.is_public == sa.true(),
                  m.flavors.c.id.in_(sa.select(
                      m.flavor_projects.c.flavor_id).where(
                      m.flavor_projects.c.project_id == project_id)))


def get_by_flavorid(conn, flavorid: str, project_id: str | None = None
                    ) -> Flavor:
    """The flavor with API id ``flavorid`` visible to ``project_id``
    (None: any flavor, for admins)."""
    row = conn.execute(sa.select(m.flavors).where(
        m.flavors.c.flavorid == flavorid, _visible(project_id))).first()
    if row is None:
        raise exception.FlavorNotFound(flavor_id=flavorid)
    return _record(row, _extra_specs(conn, [row.id])[row.id])


def get_all(conn, *, project_id: str | None = None,
            is_public: bool | None = True, min_memory_mb: int | None = None,
            min_root_gb: int | None = None, limit: int | None = None,
            marker: str | None = None, sort_key: str = "flavorid",
            sort_dir: str = "asc") -> list[Flavor]:
    """Flavors, filtered and paginated by ``marker`` (a flavorid).

    ``is_public``: True (public, plus private ones ``project_id`` can use),
    False (private only), None (all).
    """
    if sort_key not in _SORT_KEYS:
        raise exception.InvalidSortKey(sort_key=sort_key)
    query = sa.select(m.flavors).where(m.flavors.c.disabled == sa.false())
    if is_public is True:
        query = query.where(_visible(project_id))
    elif is_public is False:
        query = query.where(m.flavors.c.is_public == sa.false())
    if min_memory_mb is not None:
        query = query.where(m.flavors.c.memory_mb >= min_memory_mb)
    if min_root_gb is not None:
        query = query.where(m.flavors.c.root_gb >= min_root_gb)
    column = m.flavors.c[sort_key]
    order = column.desc() if sort_dir == "desc" else column.asc()
    tie = m.flavors.c.id.desc() if sort_dir == "desc" else m.flavors.c.id
    query = query.order_by(order, tie)
    if marker is not None:
        mrow = conn.execute(sa.select(m.flavors).where(
            m.flavors.c.flavorid == marker)).first()
        if mrow is None:
            raise exception.InvalidMarker(marker=marker)
        value = getattr(mrow, sort_key)
        if sort_dir == "desc":
            query = query.where(sa.or_(
                column < value, sa.and_(column == value,
                                        m.flavors.c.id < mrow.id)))
        else:
            query = query.where(sa.or_(
                column > value, sa.and_(column == value,
                                        m.flavors.c.id > mrow.id)))
    if limit is not None:
        query = query.limit(limit)
    rows = conn.execute(query).all()
    specs = _extra_specs(conn, [r.id for r in rows])
    return [_record(r, specs[r.id]) for r in rows]


def create(conn, values: dict[str, Any],
           projects: list[str] = ()) -> Flavor:
    """Insert a flavor; 409 when its name or id is taken."""
    for key in ("name", "flavorid"):
        taken = conn.execute(sa.select(m.flavors.c.id).where(
            m.flavors.c[key] == values[key])).first()
        if taken is not None:
            raise exception.FlavorExists(
                key="name" if key == "name" else "ID", value=values[key])
    flavor_id = conn.execute(
        m.flavors.insert().values(**values)).inserted_primary_key[0]
    for project in projects:
        conn.execute(m.flavor_projects.insert().values(
            flavor_id=flavor_id, project_id=project))
    row = conn.execute(sa.select(m.flavors).where(
        m.flavors.c.id == flavor_id)).one()
    return _record(row, {})


def update_description(conn, flavorid: str, description: str | None
                       ) -> Flavor:
    result = conn.execute(m.flavors.update().where(
        m.flavors.c.flavorid == flavorid).values(description=description))
    if result.rowcount == 0:
        raise exception.FlavorNotFound(flavor_id=flavorid)
    return get_by_flavorid(conn, flavorid)


def destroy(conn, flavorid: str) -> None:
    row = conn.execute(sa.select(m.flavors.c.id).where(
        m.flavors.c.flavorid == flavorid)).first()
    if row is None:
        raise exception.FlavorNotFound(flavor_id=flavorid)
    conn.execute(m.flavor_extra_specs.delete().where(
        m.flavor_extra_specs.c.flavor_id == row.id))
    conn.execute(m.flavor_projects.delete().where(
        m.flavor_projects.c.flavor_id == row.id))
    conn.execute(m.flavors.delete().where(m.flavors.c.id == row.id))


def count(conn) -> int:
    return conn.execute(sa.select(sa.func.count()).select_from(
        m.flavors)).scalar_one()
