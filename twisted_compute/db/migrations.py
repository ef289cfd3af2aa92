"""Migrations (moves of instances between hosts) and the instance's
migration context, as ``def thd(conn)`` queries and
:class:`MigrationsComponent`.

A move starts with :func:`start` (the row and the instance's context and
task state in one transaction) and ends with :func:`finish` (status, the
instance's new values and its context cleared, in one transaction), so
that the usage rule of :mod:`twisted_compute.objects.migration` holds at
every commit.
"""

from __future__ import annotations

import datetime
from typing import Any, Sequence

import sqlalchemy as sa
from twisted.internet.defer import Deferred

from twisted_compute import exception, ids
from twisted_compute.db import instances
from twisted_compute.db import models as m
from twisted_compute.db.base import DBComponent
from twisted_compute.objects.migration import (
    ACTIVE_STATUSES, Migration, MigrationContext)

M = m.migrations
I = m.instances

_NAMES = {a.name for a in Migration.__attrs_attrs__}  # type: ignore


def _record(row) -> Migration:
    values = {k: v for k, v in row._mapping.items() if k in _NAMES}
    values["hidden"] = bool(values.get("hidden"))
    values["cross_cell_move"] = bool(values.get("cross_cell_move"))
    return Migration(**values)


def get(conn, migration_id: int | str) -> Migration:
    """The migration by id (int) or uuid (str); MigrationNotFound."""
    column = M.c.id if isinstance(migration_id, int) else M.c.uuid
    row = conn.execute(sa.select(M).where(
        column == migration_id, M.c.deleted == 0)).first()
    if row is None:
        raise exception.MigrationNotFound(migration_id=migration_id)
    return _record(row)


def in_progress(conn, instance_uuid: str) -> Migration | None:
    row = conn.execute(sa.select(M).where(
        M.c.instance_uuid == instance_uuid, M.c.deleted == 0,
        M.c.status.in_(ACTIVE_STATUSES)).order_by(M.c.id.desc())).first()
    return None if row is None else _record(row)


def for_instance(conn, instance_uuid: str,
                 types: Sequence[str] | None = None,
                 statuses: Sequence[str] | None = None) -> list[Migration]:
    query = sa.select(M).where(M.c.instance_uuid == instance_uuid,
                               M.c.deleted == 0)
    if types:
        query = query.where(M.c.migration_type.in_(list(types)))
    if statuses:
        query = query.where(M.c.status.in_(list(statuses)))
    return [_record(r) for r in conn.execute(query.order_by(M.c.id))]


def get_all(conn, filters: dict[str, Any] | None = None,
            limit: int | None = None, marker: str | None = None
            ) -> list[Migration]:
    """Newest first (``created_at``, ``id`` descending, as Nova's 2.59
    list); ``filters``: host (source or destination), source_compute,
    dest_compute, status, migration_type, instance_uuid, user_id,
    project_id, changes_since / changes_before (``updated_at``, else
    ``created_at``), hidden (default False)."""
    filters = dict(filters or {})
    query = sa.select(M).where(M.c.deleted == 0)
    if not filters.pop("include_hidden", False):
        query = query.where(M.c.hidden == sa.false())
    host = filters.pop("host", None)
    if host:
        query = query.where(sa.or_(M.c.source_compute == host,
                                   M.c.dest_compute == host))
    for name in ("source_compute", "dest_compute", "status",
                 "migration_type", "instance_uuid", "user_id",
                 "project_id"):
        value = filters.pop(name, None)
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            query = query.where(M.c[name].in_(list(value)))
        else:
            query = query.where(M.c[name] == value)
    changed = sa.func.coalesce(M.c.updated_at, M.c.created_at)
    since = filters.pop("changes_since", None)
    if since is not None:
        query = query.where(changed >= since)
    before = filters.pop("changes_before", None)
    if before is not None:
        query = query.where(changed <= before)
    order = (M.c.created_at.desc(), M.c.id.desc())
    if marker is not None:
        row = conn.execute(sa.select(M.c.id, M.c.created_at).where(
            M.c.uuid == marker)).first()
        if row is None:
            raise exception.InvalidMarker(marker=marker)
        query = query.where(sa.or_(
            M.c.created_at < row.created_at,
            sa.and_(M.c.created_at == row.created_at, M.c.id < row.id)))
    query = query.order_by(*order)
    if limit is not None:
        query = query.limit(limit)
    return [_record(r) for r in conn.execute(query)]


def start(conn, instance_uuid: str, *, migration_type: str,
          source_compute: str | None, source_node: str | None,
          dest_compute: str | None, dest_node: str | None,
          old_flavor: dict[str, Any], new_flavor: dict[str, Any],
          user_id: str | None, project_id: str | None,
          status: str = "pre-migrating",
          instance_updates: dict[str, Any] | None = None,
          dest_host: str | None = None) -> Migration:
    """Record a migration and set the instance's context (and
    ``instance_updates``) in one transaction; MigrationPreCheckError when
    another move of the instance is in progress."""
    if in_progress(conn, instance_uuid) is not None:
        raise exception.MigrationPreCheckError(
            reason=f"instance {instance_uuid} is already moving")
    now = m.utcnow()
    uuid = ids.uuid4_str()
    result = conn.execute(M.insert().values(
        uuid=uuid, created_at=now, instance_uuid=instance_uuid,
        status=status, migration_type=migration_type,
        source_compute=source_compute, source_node=source_node,
        dest_compute=dest_compute, dest_node=dest_node, dest_host=dest_host,
        old_instance_type_id=old_flavor.get("id"),
        new_instance_type_id=new_flavor.get("id"), hidden=False,
        user_id=user_id, project_id=project_id, cross_cell_move=False,
        deleted=0))
    migration_id = result.inserted_primary_key[0]
    context = MigrationContext(
        instance_uuid=instance_uuid, migration_id=migration_id,
        old_flavor=old_flavor, new_flavor=new_flavor,
        source_compute=source_compute, source_node=source_node,
        dest_compute=dest_compute, dest_node=dest_node)
    values = dict(instance_updates or {})
    values["migration_context"] = context.to_dict()
    values["updated_at"] = now
    if conn.execute(I.update().where(
            I.c.uuid == instance_uuid, I.c.deleted == 0).values(
            **values)).rowcount == 0:
        raise exception.InstanceNotFound(instance_id=instance_uuid)
    return get(conn, migration_id)


def update(conn, migration_id: int, values: dict[str, Any],
           context_updates: dict[str, Any] | None = None) -> Migration:
    """Write ``values`` to the migration; with ``context_updates``, the
    same keys of the instance's context too (a new destination)."""
    values = dict(values)
    values["updated_at"] = m.utcnow()
    conn.execute(M.update().where(M.c.id == migration_id).values(**values))
    migration = get(conn, migration_id)
    if context_updates:
        row = conn.execute(sa.select(I.c.migration_context).where(
            I.c.uuid == migration.instance_uuid)).first()
        if row is not None and row.migration_context:
            ctx = dict(row.migration_context)
            ctx.update(context_updates)
            conn.execute(I.update().where(
                I.c.uuid == migration.instance_uuid).values(
                migration_context=ctx, updated_at=m.utcnow()))
    return migration


def set_status(conn, migration_id: int, status: str,
               instance_updates: dict[str, Any] | None = None,
               clear_context: bool = False,
               expected_task_state: Sequence[str | None] | None = None,
               ) -> Migration:
    """The migration's new ``status`` and, in the same transaction, the
    instance's ``instance_updates`` (with its context cleared when
    ``clear_context``), guarded by ``expected_task_state`` when given
    (UnexpectedTaskStateError otherwise, and nothing written)."""
    migration = get(conn, migration_id)
    values = dict(instance_updates or {})
    if clear_context:
        values["migration_context"] = None
    if values:
        values["updated_at"] = m.utcnow()
        query = I.update().where(I.c.uuid == migration.instance_uuid,
                                 I.c.deleted == 0)
        if expected_task_state is not None:
            expected = list(expected_task_state)
            clauses = [I.c.task_state.in_(
                [s for s in expected if s is not None])]
            if None in expected:
                clauses.append(I.c.task_state.is_(None))
            query = query.where(sa.or_(*clauses))
        if conn.execute(query.values(**values)).rowcount == 0:
            row = conn.execute(sa.select(I.c.task_state).where(
                I.c.uuid == migration.instance_uuid,
                I.c.deleted == 0)).first()
            if row is None:
                raise exception.InstanceNotFound(
                    instance_id=migration.instance_uuid)
            raise exception.UnexpectedTaskStateError(
                instance_uuid=migration.instance_uuid,
                expected=expected_task_state, actual=row.task_state)
    conn.execute(M.update().where(M.c.id == migration_id).values(
        status=status, updated_at=m.utcnow()))
    return get(conn, migration_id)


def finished_before(conn, status: str, older_than: datetime.datetime
                    ) -> list[Migration]:
    """Migrations in ``status`` since before ``older_than`` (the resize
    confirm window)."""
    rows = conn.execute(sa.select(M).where(
        M.c.status == status, M.c.deleted == 0,
        sa.func.coalesce(M.c.updated_at, M.c.created_at) < older_than))
    return [_record(r) for r in rows]


def stuck(conn, older_than: datetime.datetime) -> list[Migration]:
    """Migrations in progress (not ``finished``: that one waits for the
    user) untouched since before ``older_than``."""
    rows = conn.execute(sa.select(M).where(
        M.c.status.in_([s for s in ACTIVE_STATUSES if s != "finished"]),
        M.c.deleted == 0,
        sa.func.coalesce(M.c.updated_at, M.c.created_at) < older_than))
    return [_record(r) for r in rows]


def begin_evacuate(conn, uuid: str, *, project_id: str | None, check,
                   action_values: dict[str, Any]) -> Migration:
    """An evacuation accepted: the instance's check, task_state
    rebuilding and action ``evacuate``, and its migration (type
    evacuation, status accepted, no destination yet: the conductor
    picks it) with the migration context, in one transaction."""
    from twisted_compute.objects import vm_states
    instance = instances.transition(
        conn, uuid, project_id=project_id, check=check,
        values={"task_state": vm_states.REBUILDING}, action="evacuate",
        action_values=action_values)
    flavor = dict(instance.flavor or {})
    return start(conn, uuid, migration_type="evacuation",
                 source_compute=instance.host, source_node=instance.node,
                 dest_compute=None, dest_node=None, old_flavor=flavor,
                 new_flavor=flavor, user_id=instance.user_id,
                 project_id=instance.project_id, status="accepted")


def evacuations_from_host(conn, host: str) -> list[Migration]:
    """Evacuations away from ``host`` that its agent has not cleaned up
    (Nova's filter: accepted, pre-migrating, done)."""
    rows = conn.execute(sa.select(M).where(
        M.c.source_compute == host, M.c.migration_type == "evacuation",
        M.c.status.in_(["accepted", "pre-migrating", "done"]),
        M.c.deleted == 0).order_by(M.c.id))
    return [_record(r) for r in rows]


def set_status_if(conn, migration_id: int, status: str,
                  expected: Sequence[str]) -> bool:
    """``status`` only while the migration is in one of ``expected``
    (an abort racing the conductor's own progress); whether written."""
    return conn.execute(M.update().where(
        M.c.id == migration_id, M.c.status.in_(list(expected))).values(
        status=status, updated_at=m.utcnow())).rowcount > 0


def all_placed(conn) -> list:
    """Every live instance (what the usage audit adds up)."""
    rows = conn.execute(sa.select(I).where(I.c.deleted == 0)).all()
    return instances._records(conn, rows)


#: The key of an instance's ``system_metadata`` holding the growth in
#: cores and RAM of its resize in progress (counted against the quota
#: until the new flavor is the instance's own, see
#: :func:`twisted_compute.db.quotas.count_instances`).
RESIZE_GROWTH = "resize_growth"


def transition_with_quota(conn, conf, uuid: str, *, project_id: str | None,
                          check, values: dict[str, Any], action: str,
                          action_values: dict[str, Any],
                          deltas: dict[str, int]):
    """:func:`instances.transition` after checking that ``deltas``
    (cores, ram: a resize's growth) fit the instance's project's quota,
    in one transaction (the project lock held), and recording the growth
    on the instance: until the resize's new flavor is written the
    instance's own columns still hold the old one, so without it a
    second resize would be checked against usage that does not count
    the first's growth, and both could take the last headroom.  The
    growth is re-checked after it is written (Nova's recheck): the
    project's usage with it must still fit."""
    from twisted_compute.db import quotas
    instance = instances.get(conn, uuid, project_id)
    growth = {k: v for k, v in deltas.items() if v > 0}
    if growth:
        quotas.lock_project(conn, instance.project_id)
        quotas.check_deltas(conn, conf, instance.project_id,
                            instance.user_id, growth)

    def with_growth(current):
        sysmeta = {k: v for k, v in (current.system_metadata or {}).items()
                   if k != RESIZE_GROWTH}
        if growth:
            sysmeta[RESIZE_GROWTH] = {"cores": int(growth.get("cores", 0)),
                                      "ram": int(growth.get("ram", 0))}
        return {**values, "system_metadata": sysmeta}

    moved = instances.transition(conn, uuid, project_id=project_id,
                                 check=check, values=with_growth,
                                 action=action, action_values=action_values)
    if growth:
        quotas.recheck(conn, conf, instance.project_id, instance.user_id,
                       growth)
    return moved


def begin_settle(conn, uuid: str, *, project_id: str | None, check,
                 values: dict[str, Any], action: str,
                 action_values: dict[str, Any], status: str):
    """Confirm or revert: the instance's state change and action, and the
    migration waiting in ``finished`` set to ``status``, in one
    transaction; returns the migration (400 when there is none)."""
    migration = None
    for candidate in reversed(for_instance(conn, uuid,
                                           statuses=["finished"])):
        migration = candidate
        break
    instances.transition(conn, uuid, project_id=project_id, check=check,
                         values=values, action=action,
                         action_values=action_values)
    if migration is None:
        raise exception.MigrationNotFoundForInstance(
            migration_id="(finished)", instance_id=uuid)
    conn.execute(M.update().where(M.c.id == migration.id).values(
        status=status, updated_at=m.utcnow()))
    return get(conn, migration.id)


def audit_usage(conn) -> list[dict[str, Any]]:
    """Each compute node's reported usage against the sum of the flavors
    the database places on its host (the ownership rule of
    :mod:`twisted_compute.objects.migration`): one row per host, with
    ``reported``, ``expected`` (vcpus, memory_mb, disk_gb) and ``ok``."""
    from twisted_compute.objects.migration import usage_by_host
    placed = usage_by_host(all_placed(conn))
    n = m.compute_nodes
    rows = conn.execute(sa.select(
        n.c.host, sa.func.sum(n.c.vcpus_used), sa.func.sum(
            n.c.memory_mb_used), sa.func.sum(n.c.local_gb_used)).where(
        n.c.deleted == 0).group_by(n.c.host).order_by(n.c.host)).all()
    report = []
    for host, vcpus, memory_mb, disk_gb in rows:
        held = placed.get(host, {}).values()
        expected = tuple(sum(v[i] for v in held) for i in range(3))
        reported = (int(vcpus or 0), int(memory_mb or 0), int(disk_gb or 0))
        report.append({"host": host, "reported": reported,
                       "expected": expected, "ok": reported == expected,
                       "instances": sorted(placed.get(host, {}))})
    return report


class MigrationsComponent(DBComponent):
    """The way into ``migrations`` (and the instances' contexts)."""

    def get(self, migration_id: int | str) -> Deferred[Migration]:
        return self._read(get, migration_id)

    def in_progress(self, instance_uuid: str
                    ) -> Deferred[Migration | None]:
        return self._read(in_progress, instance_uuid)

    def for_instance(self, instance_uuid: str, types=None, statuses=None
                     ) -> Deferred[list[Migration]]:
        return self._read(for_instance, instance_uuid, types, statuses)

    def get_all(self, filters=None, limit=None, marker=None
                ) -> Deferred[list[Migration]]:
        return self._read(get_all, filters, limit, marker)

    def start(self, instance_uuid: str, **kwargs) -> Deferred[Migration]:
        return self._write(start, instance_uuid, **kwargs)

    def update(self, migration_id: int, values: dict[str, Any],
               context_updates=None) -> Deferred[Migration]:
        return self._write(update, migration_id, values, context_updates)

    def set_status(self, migration_id: int, status: str,
                   instance_updates=None, clear_context: bool = False,
                   expected_task_state=None) -> Deferred[Migration]:
        return self._write(set_status, migration_id, status,
                           instance_updates, clear_context,
                           expected_task_state)

    def finished_before(self, status: str, older_than
                        ) -> Deferred[list[Migration]]:
        return self._read(finished_before, status, older_than)

    def stuck(self, older_than) -> Deferred[list[Migration]]:
        return self._read(stuck, older_than)

    def all_placed(self) -> Deferred[list]:
        return self._read(all_placed)

    def begin_evacuate(self, uuid: str, **kwargs) -> Deferred[Migration]:
        return self._write(begin_evacuate, uuid, **kwargs)

    def evacuations_from_host(self, host: str) -> Deferred[list[Migration]]:
        return self._read(evacuations_from_host, host)

    def set_status_if(self, migration_id: int, status: str,
                      expected: Sequence[str]) -> Deferred[bool]:
        return self._write(set_status_if, migration_id, status, expected)

    def transition_with_quota(self, conf, uuid: str, **kwargs):
        return self._write(transition_with_quota, conf, uuid, **kwargs)

    def begin_settle(self, uuid: str, **kwargs) -> Deferred[Migration]:
        return self._write(begin_settle, uuid, **kwargs)

    def audit_usage(self) -> Deferred[list[dict[str, Any]]]:
        return self._read(audit_usage)
