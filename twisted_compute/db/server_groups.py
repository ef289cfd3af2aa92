"""Server groups: ``def thd(conn)`` queries and
:class:`ServerGroupsComponent`, which runs them in the DB pool.  Members
are the group's instances that are not deleted (read from the
``instances`` table)."""

from __future__ import annotations

import uuid as uuidlib
from typing import Any, Iterable

import sqlalchemy as sa
from twisted.internet.defer import Deferred

from twisted_compute import exception
from twisted_compute.db import models as m
from twisted_compute.db import quotas
from twisted_compute.db.base import DBComponent
from twisted_compute.objects.server_group import ServerGroup

_sg = m.server_groups
_members = m.server_group_members


def _members_of(conn, group_ids: list[int]) -> dict[int, list[str]]:
    result: dict[int, list[str]] = {g: [] for g in group_ids}
    if not group_ids:
        return result
    rows = conn.execute(sa.select(_members.c.group_id,
                                  _members.c.instance_uuid)
                        .join(m.instances, m.instances.c.uuid ==
                              _members.c.instance_uuid)
                        .where(_members.c.group_id.in_(group_ids),
                               m.instances.c.deleted == 0)
                        .order_by(m.instances.c.id))
    for group_id, instance_uuid in rows:
        result[group_id].append(instance_uuid)
    return result


def _records(conn, rows) -> list[ServerGroup]:
    rows = list(rows)
    members = _members_of(conn, [r.id for r in rows])
    return [ServerGroup(
        id=r.id, uuid=r.uuid, name=r.name, user_id=r.user_id,
        project_id=r.project_id, policy=r.policy, rules=dict(r.rules or {}),
        members=tuple(members[r.id]), created_at=r.created_at,
        updated_at=r.updated_at) for r in rows]


def get(conn, group_uuid: str) -> ServerGroup:
    rows = conn.execute(sa.select(_sg).where(_sg.c.uuid == group_uuid))
    groups = _records(conn, rows)
    if not groups:
        raise exception.InstanceGroupNotFound(group_uuid=group_uuid)
    return groups[0]


def get_all(conn, project_id: str | None = None, limit: int | None = None,
            offset: int = 0) -> list[ServerGroup]:
    """Groups in creation order (of ``project_id``; all when None)."""
    query = sa.select(_sg).order_by(_sg.c.id)
    if project_id is not None:
        query = query.where(_sg.c.project_id == project_id)
    if offset:
        query = query.offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return _records(conn, conn.execute(query))


def get_by_instance(conn, instance_uuid: str) -> list[ServerGroup]:
    """The groups ``instance_uuid`` belongs to (at most one in practice)."""
    rows = conn.execute(sa.select(_sg).join(
        _members, _members.c.group_id == _sg.c.id).where(
        _members.c.instance_uuid == instance_uuid).order_by(_sg.c.id))
    return _records(conn, rows)


def uuids_of_instance(conn, uuid: str) -> list[str]:
    """UUIDs of the server groups ``uuid`` is a member of."""
    g, gm = m.server_groups, m.server_group_members
    return [r[0] for r in conn.execute(sa.select(g.c.uuid).select_from(
        gm.join(g, gm.c.group_id == g.c.id)).where(
        gm.c.instance_uuid == uuid))]



def hosts(conn, group_uuid: str,
          exclude_instances: Iterable[str] = ()) -> dict[str, Any]:
    """A server group's policy, rules and where its members run.

    Returns ``{"policy", "rules", "hosts": {host: member count},
    "unplaced": [instance uuid, ...]}``: the live members that have a
    host, counted per host, and those that have none yet (being
    scheduled or built by another request), leaving out
    ``exclude_instances`` (the ones being scheduled now); policy and
    rules are None when the group does not exist (any more).
    """
    group = conn.execute(sa.select(
        m.server_groups.c.id, m.server_groups.c.policy,
        m.server_groups.c.rules).where(
        m.server_groups.c.uuid == group_uuid)).first()
    if group is None:
        return {"policy": None, "rules": None, "hosts": {}, "unplaced": []}
    i = m.instances
    members = m.server_group_members
    query = (sa.select(i.c.uuid, i.c.host)
             .select_from(members.join(
                 i, i.c.uuid == members.c.instance_uuid))
             .where(members.c.group_id == group.id, i.c.deleted == 0))
    exclude = set(exclude_instances)
    hosts: dict[str, int] = {}
    unplaced = []
    for instance_uuid, host in conn.execute(query):
        if instance_uuid in exclude:
            continue
        if host is None:
            unplaced.append(instance_uuid)
        else:
            hosts[host] = hosts.get(host, 0) + 1
    return {"policy": group.policy, "rules": dict(group.rules or {}),
            "hosts": hosts, "unplaced": unplaced}



def create(conn, conf, values: dict[str, Any]) -> ServerGroup:
    """Insert a group; 403 over the ``server_groups`` quota of the
    project or of the user in it."""
    project_id, user_id = values["project_id"], values["user_id"]
    quotas.lock_project(conn, project_id)
    for user in (None, user_id):
        limit = quotas.get_limits(conn, conf, project_id,
                                  user)["server_groups"]
        used = quotas.count_usage(conn, project_id, user)["server_groups"]
        if limit >= 0 and used + 1 > limit:
            raise exception.ServerGroupLimitExceeded()
    group_uuid = values.get("uuid") or str(uuidlib.uuid4())
    conn.execute(_sg.insert().values(
        uuid=group_uuid, name=values["name"], user_id=user_id,
        project_id=project_id, policy=values["policy"],
        rules=values.get("rules") or {}))
    return get(conn, group_uuid)


def destroy(conn, group_uuid: str) -> None:
    row = conn.execute(sa.select(_sg.c.id).where(
        _sg.c.uuid == group_uuid)).first()
    if row is None:
        raise exception.InstanceGroupNotFound(group_uuid=group_uuid)
    conn.execute(_members.delete().where(_members.c.group_id == row.id))
    conn.execute(_sg.delete().where(_sg.c.id == row.id))


def add_members(conn, conf, group_uuid: str,
                instance_uuids: Iterable[str]) -> ServerGroup:
    """Add instances to a group (for server create), enforcing the
    ``server_group_members`` quota of the group's project (403)."""
    group = get(conn, group_uuid)
    new = [u for u in instance_uuids if u not in group.members]
    limit = quotas.get_limits(conn, conf, group.project_id)[
        "server_group_members"]
    if limit >= 0 and len(group.members) + len(new) > limit:
        raise exception.ServerGroupMemberLimitExceeded()
    for instance_uuid in new:
        exists = conn.execute(sa.select(_members.c.group_id).where(
            _members.c.group_id == group.id,
            _members.c.instance_uuid == instance_uuid)).first()
        if exists is None:
            conn.execute(_members.insert().values(
                group_id=group.id, instance_uuid=instance_uuid))
    return get(conn, group_uuid)


def remove_members(conn, instance_uuids: Iterable[str]) -> None:
    """Forget deleted instances in every group."""
    uuids = list(instance_uuids)
    if uuids:
        conn.execute(_members.delete().where(
            _members.c.instance_uuid.in_(uuids)))


# --- the component ----------------------------------------------------------

class ServerGroupsComponent(DBComponent):
    """Server groups and their members."""

    def get(self, group_uuid: str) -> Deferred[ServerGroup]:
        return self._read(get, group_uuid)

    def get_all(self, project_id: str | None = None,
                limit: int | None = None,
                offset: int = 0) -> Deferred[list[ServerGroup]]:
        return self._read(get_all, project_id, limit, offset)

    def get_by_instance(self, instance_uuid: str
                        ) -> Deferred[list[ServerGroup]]:
        return self._read(get_by_instance, instance_uuid)

    def uuids_of_instance(self, instance_uuid: str) -> Deferred[list[str]]:
        """See :func:`uuids_of_instance`."""
        return self._read(uuids_of_instance, instance_uuid)

    def hosts(self, group_uuid: str, exclude_instances: Iterable[str] = ()
              ) -> Deferred[dict[str, Any]]:
        """See :func:`hosts`."""
        return self._read(hosts, group_uuid, exclude_instances)

    def create(self, conf, values: dict[str, Any]
               ) -> Deferred[ServerGroup]:
        return self._write(create, conf, values)

    def destroy(self, group_uuid: str) -> Deferred[None]:
        return self._write(destroy, group_uuid)

    def add_members(self, conf, group_uuid: str,
                    instance_uuids: Iterable[str]) -> Deferred[ServerGroup]:
        return self._write(add_members, conf, group_uuid, instance_uuids)

    def remove_members(self, instance_uuids: Iterable[str]
                       ) -> Deferred[None]:
        return self._write(remove_members, instance_uuids)
