"""Flavors, their extra specs and flavor access (which projects may use
a private flavor): ``def thd(conn)`` queries and :class:`FlavorsComponent`,
which runs them in the DB pool."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from twisted.internet.defer import Deferred

from twisted_compute import exception
from twisted_compute.db import models as m
from twisted_compute.db.base import DBComponent
from twisted_compute.objects.flavor import Flavor

_SORT_KEYS = {"flavorid", "name", "memory_mb", "vcpus", "root_gb",
              "ephemeral_gb", "swap", "rxtx_factor", "id", "created_at",
              "updated_at", "description"}


_EXTRA_SPECS = sa.select(
    m.flavor_extra_specs.c.flavor_id, m.flavor_extra_specs.c.key,
    m.flavor_extra_specs.c.value).where(
    m.flavor_extra_specs.c.flavor_id.in_(
        sa.bindparam("ids", expanding=True)))


def _extra_specs(conn, flavor_ids: list[int]) -> dict[int, dict[str, str]]:
    specs: dict[int, dict[str, str]] = {i: {} for i in flavor_ids}
    if not flavor_ids:
        return specs
    rows = conn.execute(_EXTRA_SPECS, {"ids": list(flavor_ids)})
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


#: :func:`get_by_flavorid`'s query, for any project (False) and for one
#: (True), built once with ``flavorid`` and ``project_id`` parameters.
_BY_FLAVORID = {
    by_project: sa.select(m.flavors).where(
        m.flavors.c.flavorid == sa.bindparam("flavorid"),
        _visible(sa.bindparam("project_id") if by_project else None))
    for by_project in (False, True)}


def get_by_flavorid(conn, flavorid: str, project_id: str | None = None
                    ) -> Flavor:
    """The flavor with API id ``flavorid`` visible to ``project_id``
    (None: any flavor, for admins)."""
    row = conn.execute(_BY_FLAVORID[project_id is not None], {
        "flavorid": flavorid, "project_id": project_id}).first()
    if row is None:
        raise exception.FlavorNotFound(flavor_id=flavorid)
    return _record(row, _extra_specs(conn, [row.id])[row.id])


def get_all(conn, *, project_id: str | None = None,
            is_public: bool | None = True, min_memory_mb: int | None = None,
            min_root_gb: int | None = None, limit: int | None = None,
            marker: str | None = None, sort_key: str = "flavorid",
            sort_dir: str = "asc", name: str | None = None) -> list[Flavor]:
    """Flavors, filtered and paginated by ``marker`` (a flavorid).

    ``is_public``: True (public, plus private ones ``project_id`` can use),
    False (private only), None (all).  ``name``: only the flavor of that
    name (2.102).
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
    if name is not None:
        query = query.where(m.flavors.c.name == name)
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


_specs = m.flavor_extra_specs
_access = m.flavor_projects


def _flavor_pk(conn, flavorid: str) -> int:
    row = conn.execute(sa.select(m.flavors.c.id).where(
        m.flavors.c.flavorid == flavorid)).first()
    if row is None:
        raise exception.FlavorNotFound(flavor_id=flavorid)
    return row.id


# --- extra specs ----------------------------------------------------------

def get_specs(conn, flavorid: str) -> dict[str, str]:
    """All extra specs of a flavor (404 when there is no such flavor)."""
    pk = _flavor_pk(conn, flavorid)
    rows = conn.execute(sa.select(_specs.c.key, _specs.c.value).where(
        _specs.c.flavor_id == pk).order_by(_specs.c.key))
    return {key: value for key, value in rows}


def get_spec(conn, flavorid: str, key: str) -> str:
    pk = _flavor_pk(conn, flavorid)
    row = conn.execute(sa.select(_specs.c.value).where(
        _specs.c.flavor_id == pk, _specs.c.key == key)).first()
    if row is None:
        raise exception.FlavorExtraSpecsNotFound(flavor_id=flavorid,
                                                 key=key)
    return row.value


def update_specs(conn, flavorid: str, specs: dict[str, str]
                 ) -> dict[str, str]:
    """Add or replace ``specs`` (others are kept); returns all specs."""
    pk = _flavor_pk(conn, flavorid)
    for key, value in specs.items():
        updated = conn.execute(_specs.update().where(
            _specs.c.flavor_id == pk, _specs.c.key == key).values(
            value=value))
        if updated.rowcount == 0:
            conn.execute(_specs.insert().values(flavor_id=pk, key=key,
                                                value=value))
    conn.execute(m.flavors.update().where(m.flavors.c.id == pk).values(
        updated_at=m.utcnow()))
    return get_specs(conn, flavorid)


def delete_spec(conn, flavorid: str, key: str) -> None:
    pk = _flavor_pk(conn, flavorid)
    deleted = conn.execute(_specs.delete().where(
        _specs.c.flavor_id == pk, _specs.c.key == key))
    if deleted.rowcount == 0:
        raise exception.FlavorExtraSpecsNotFound(flavor_id=flavorid,
                                                 key=key)


# --- access ---------------------------------------------------------------

def get_access(conn, flavorid: str) -> tuple[Flavor, list[str]]:
    """The flavor and the projects given access to it."""
    flavor = get_by_flavorid(conn, flavorid)
    rows = conn.execute(sa.select(_access.c.project_id).where(
        _access.c.flavor_id == flavor.id).order_by(_access.c.id))
    return flavor, [r.project_id for r in rows]


def add_access(conn, flavorid: str, project_id: str,
               refuse_public: bool = True) -> list[str]:
    """Give ``project_id`` access; 409 when it has it already, or (with
    ``refuse_public``, microversion 2.7 on) when the flavor is public."""
    flavor, projects = get_access(conn, flavorid)
    if refuse_public and flavor.is_public:
        raise exception.Conflict("Can not add access to a public flavor.")
    if project_id in projects:
        raise exception.FlavorAccessExists(flavor_id=flavorid,
                                           project_id=project_id)
    conn.execute(_access.insert().values(flavor_id=flavor.id,
                                         project_id=project_id))
    return projects + [project_id]


def remove_access(conn, flavorid: str, project_id: str) -> list[str]:
    flavor, projects = get_access(conn, flavorid)
    if project_id not in projects:
        raise exception.FlavorAccessNotFound(flavor_id=flavorid,
                                             project_id=project_id)
    conn.execute(_access.delete().where(
        _access.c.flavor_id == flavor.id,
        _access.c.project_id == project_id))
    return [p for p in projects if p != project_id]


# --- the component ----------------------------------------------------------

class FlavorsComponent(DBComponent):
    """Flavors, their extra specs and access lists."""

    def get_by_flavorid(self, flavorid: str,
                        project_id: str | None = None) -> Deferred[Flavor]:
        return self._read(get_by_flavorid, flavorid, project_id)

    def get_all(self, **kwargs: Any) -> Deferred[list[Flavor]]:
        """See :func:`get_all` (keyword arguments only)."""
        return self._read(get_all, **kwargs)

    def create(self, values: dict[str, Any],
               projects: list[str] = ()) -> Deferred[Flavor]:
        return self._write(create, values, projects)

    def update_description(self, flavorid: str, description: str | None
                           ) -> Deferred[Flavor]:
        return self._write(update_description, flavorid, description)

    def destroy(self, flavorid: str) -> Deferred[None]:
        return self._write(destroy, flavorid)

    def get_specs(self, flavorid: str) -> Deferred[dict[str, str]]:
        return self._read(get_specs, flavorid)

    def get_spec(self, flavorid: str, key: str) -> Deferred[str]:
        return self._read(get_spec, flavorid, key)

    def update_specs(self, flavorid: str, specs: dict[str, str]
                     ) -> Deferred[dict[str, str]]:
        return self._write(update_specs, flavorid, specs)

    def delete_spec(self, flavorid: str, key: str) -> Deferred[None]:
        return self._write(delete_spec, flavorid, key)

    def get_access(self, flavorid: str
                   ) -> Deferred[tuple[Flavor, list[str]]]:
        return self._read(get_access, flavorid)

    def add_access(self, flavorid: str, project_id: str,
                   refuse_public: bool = True) -> Deferred[list[str]]:
        return self._write(add_access, flavorid, project_id, refuse_public)

    def remove_access(self, flavorid: str, project_id: str
                      ) -> Deferred[list[str]]:
        return self._write(remove_access, flavorid, project_id)
