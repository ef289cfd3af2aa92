"""Flavor extra specs and flavor access (which projects may use a private
flavor): ``def thd(conn)`` functions for :meth:`DBService.run`."""

from __future__ import annotations

import sqlalchemy as sa

from twisted_compute import exception
from twisted_compute.db import flavors as flavors_db
from twisted_compute.db import models as m
from twisted_compute.objects.flavor import Flavor

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
    flavor = flavors_db.get_by_flavorid(conn, flavorid)
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
