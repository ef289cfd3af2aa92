"""Quotas: limits (configured defaults, overridden per project and per
user in the ``quotas`` table) and usage (counted from live rows, as Nova
counts it: nothing to drift out of sync).

A create that consumes quota runs :func:`lock_project` and
:func:`check_deltas` in the same transaction as its inserts, so two
concurrent creates in one project cannot both pass the check.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from twisted.internet.defer import Deferred

from twisted_compute import exception
from twisted_compute.db import models as m
from twisted_compute.objects import vm_states
from twisted_compute.db.base import DBComponent

#: Resources with a limit, in the order the API shows them.
RESOURCES = (
    "instances", "cores", "ram", "metadata_items", "key_pairs",
    "server_groups", "server_group_members", "injected_files",
    "injected_file_content_bytes", "injected_file_path_length",
)

#: Resources whose usage is counted per project from live rows.
COUNTED = ("instances", "cores", "ram", "server_groups")


#: The quota class whose limits are every project's defaults (the only
#: class that means anything, as in Nova).
DEFAULT_CLASS = "default"


def defaults(conf) -> dict[str, int]:
    """The configured ``[quota]`` limits (-1: unlimited)."""
    return {name: getattr(conf.quota, name) for name in RESOURCES}


def get_class_limits(conn, conf, class_name: str = DEFAULT_CLASS
                     ) -> dict[str, int]:
    """A quota class's limits: the configured ones with the class's
    overrides."""
    limits = defaults(conf)
    rows = conn.execute(sa.select(
        m.quota_classes.c.resource, m.quota_classes.c.hard_limit).where(
        m.quota_classes.c.class_name == class_name)).all()
    for row in rows:
        if row.resource in limits:
            limits[row.resource] = row.hard_limit
    return limits


def set_class_limits(conn, conf, class_name: str,
                     values: dict[str, int]) -> dict[str, int]:
    """Override limits of a quota class; return its limits."""
    table = m.quota_classes
    for resource, limit in values.items():
        if resource not in RESOURCES:
            raise exception.InvalidInput(
                reason=f"unknown quota resource {resource}")
        updated = conn.execute(table.update().where(
            table.c.class_name == class_name,
            table.c.resource == resource).values(hard_limit=int(limit)))
        if updated.rowcount == 0:
            conn.execute(table.insert().values(
                class_name=class_name, resource=resource,
                hard_limit=int(limit)))
    return get_class_limits(conn, conf, class_name)
_LIMITS = sa.select(
    m.quotas.c.user_id, m.quotas.c.resource, m.quotas.c.hard_limit).where(
    m.quotas.c.project_id == sa.bindparam("project_id"),
    m.quotas.c.user_id.in_(sa.bindparam("users", expanding=True)))


def get_limits(conn, conf, project_id: str,
               user_id: str | None = None) -> dict[str, int]:
    """Effective limits: defaults (the ``default`` quota class), then
    project overrides, then (if ``user_id``) that user's overrides."""
    limits = get_class_limits(conn, conf)
    users = [""] if user_id is None else ["", user_id]
    rows = conn.execute(_LIMITS, {"project_id": project_id,
                                  "users": users}).all()
    # project rows first, user rows override them
    for row in sorted(rows, key=lambda r: r.user_id != ""):
        if row.resource in limits:
            limits[row.resource] = row.hard_limit
    return limits


def set_limits(conn, project_id: str, values: dict[str, int],
               user_id: str | None = None) -> None:
    """Override limits for a project (or one of its users)."""
    user = user_id or ""
    for resource, limit in values.items():
        if resource not in RESOURCES:
            raise exception.InvalidInput(
                reason=f"unknown quota resource {resource}")
        updated = conn.execute(m.quotas.update().where(
            m.quotas.c.project_id == project_id, m.quotas.c.user_id == user,
            m.quotas.c.resource == resource).values(
            hard_limit=int(limit)))
        if updated.rowcount == 0:
            conn.execute(m.quotas.insert().values(
                project_id=project_id, user_id=user, resource=resource,
                hard_limit=int(limit)))


def delete_limits(conn, project_id: str, user_id: str | None = None) -> None:
    """Back to the defaults (for the whole project when no user)."""
    query = m.quotas.delete().where(m.quotas.c.project_id == project_id)
    if user_id is not None:
        query = query.where(m.quotas.c.user_id == user_id)
    conn.execute(query)


def _count_instances_statement(by_user: bool):
    i = m.instances
    # A shelved-offloaded server counts as an instance but holds no cores
    # and no RAM (it gave them back when it left its host, as Nova's
    # placement-based counting does); unshelve claims them again.
    held = sa.or_(i.c.vm_state.is_(None),
                  i.c.vm_state != vm_states.SHELVED_OFFLOADED)
    query = sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(
        sa.case((held, i.c.vcpus), else_=0)), 0),
        sa.func.coalesce(sa.func.sum(
            sa.case((held, i.c.memory_mb), else_=0)), 0)
    ).where(i.c.project_id == sa.bindparam("project_id"), i.c.deleted == 0)
    # A soft-deleted server counts in full: its guest still holds its
    # host's cores, RAM and disk until it is reclaimed (Nova's
    # placement-based counting, ``count_usage_from_placement``, counts it
    # too: its allocations stay until the reclaim).  So a restore needs
    # no new check, and only forceDelete or the reclaim free it.
    if by_user:
        query = query.where(i.c.user_id == sa.bindparam("user_id"))
    return query


#: :func:`count_instances`'s query, of a project (False) or of one of its
#: users (True), built once.
_COUNT_INSTANCES = {by_user: _count_instances_statement(by_user)
                    for by_user in (False, True)}


#: Task states of a resize whose new flavor is not yet the instance's
#: own (its growth is counted from its system metadata meanwhile).
_RESIZING = (vm_states.RESIZE_PREP, vm_states.RESIZE_MIGRATING,
             vm_states.RESIZE_MIGRATED, vm_states.RESIZE_FINISH)


def count_instances(conn, project_id: str,
                    user_id: str | None = None) -> dict[str, int]:
    """Instances, cores and ram a project (or one of its users) uses,
    with the growth of its resizes in progress."""
    instances, cores, ram = conn.execute(
        _COUNT_INSTANCES[user_id is not None],
        {"project_id": project_id, "user_id": user_id}).one()
    i = m.instances
    resizing = sa.select(i.c.system_metadata).where(
        i.c.project_id == project_id, i.c.deleted == 0,
        i.c.task_state.in_(_RESIZING))
    if user_id is not None:
        resizing = resizing.where(i.c.user_id == user_id)
    for (sysmeta,) in conn.execute(resizing):
        growth = (sysmeta or {}).get("resize_growth") or {}
        cores += int(growth.get("cores") or 0)
        ram += int(growth.get("ram") or 0)
    return {"instances": int(instances), "cores": int(cores),
            "ram": int(ram)}


def count_usage(conn, project_id: str,
                user_id: str | None = None) -> dict[str, int]:
    """What a project (or one user in it) uses now."""
    usage = count_instances(conn, project_id, user_id)
    groups = sa.select(sa.func.count()).select_from(m.server_groups).where(
        m.server_groups.c.project_id == project_id)
    if user_id is not None:
        groups = groups.where(m.server_groups.c.user_id == user_id)
    usage["server_groups"] = int(conn.execute(groups).scalar_one())
    if user_id is not None:
        usage["key_pairs"] = int(conn.execute(
            sa.select(sa.func.count()).select_from(m.key_pairs).where(
                m.key_pairs.c.user_id == user_id)).scalar_one())
    return usage


def limits_and_usage(conn, conf, project_id: str,
                     user_id: str | None = None
                     ) -> tuple[dict[str, int], dict[str, int]]:
    """:func:`get_limits` and :func:`count_usage`, read together."""
    return (get_limits(conn, conf, project_id, user_id),
            count_usage(conn, project_id, user_id))


def update_limits(conn, conf, project_id: str, user_id: str | None,
                  values: dict[str, int], force: bool) -> dict[str, int]:
    """Check the new limits against usage (unless ``force``) and, for a
    user, against the project's limits; store them; return the limits."""
    limits, usage = limits_and_usage(conn, conf, project_id, user_id)
    project_limits = get_limits(conn, conf, project_id) \
        if user_id is not None else None
    for resource, limit in values.items():
        if project_limits is not None:
            maximum = project_limits[resource]
            if maximum >= 0 and (limit == -1 or limit > maximum):
                raise exception.InvalidQuotaValue(reason=(
                    f"Quota limit {limit} for {resource} must be less "
                    f"than or equal to {maximum}."))
        if not force and limit >= 0 and limit < usage.get(resource, 0):
            raise exception.InvalidQuotaValue(reason=(
                f"Quota limit {limit} for {resource} must be greater than "
                f"or equal to already used and reserved "
                f"{usage.get(resource, 0)}."))
    set_limits(conn, project_id, values, user_id)
    return get_limits(conn, conf, project_id, user_id)


def lock_project(conn, project_id: str) -> None:
    """Serialise quota-consuming transactions of one project.

    On PostgreSQL and MariaDB this takes a row lock held until commit; on
    SQLite every writing transaction already holds the database lock
    (BEGIN IMMEDIATE, see :mod:`twisted_compute.db.pool`): nothing to do.
    """
    if conn.dialect.name == "sqlite":
        return  # the transaction holds the database's write lock
    table = m.project_locks
    exists = conn.execute(sa.select(table.c.project_id).where(
        table.c.project_id == project_id)).first()
    if exists is None:
        try:
            with conn.begin_nested():
                conn.execute(table.insert().values(project_id=project_id,
                                                   generation=0))
        except sa.exc.IntegrityError:
            pass  # another transaction created it first
    if conn.dialect.name != "sqlite":
        conn.execute(sa.select(table.c.generation).where(
            table.c.project_id == project_id).with_for_update())
    conn.execute(table.update().where(
        table.c.project_id == project_id).values(
        generation=table.c.generation + 1))


def check_deltas(conn, conf, project_id: str, user_id: str | None,
                 deltas: dict[str, int]) -> None:
    """Raise :class:`TooManyInstances` (403) if adding ``deltas`` to the
    current usage passes a limit; call after :func:`lock_project`."""
    limits = get_limits(conn, conf, project_id, user_id)
    usage = count_usage(conn, project_id)
    overs = [name for name, delta in deltas.items()
             if delta > 0 and limits.get(name, -1) >= 0 and
             usage.get(name, 0) + delta > limits[name]]
    if not overs:
        return
    raise exception.TooManyInstances(
        overs=", ".join(overs),
        req=", ".join(str(deltas[o]) for o in overs),
        used=", ".join(str(usage.get(o, 0)) for o in overs),
        allowed=", ".join(str(limits[o]) for o in overs))


def recheck(conn, conf, project_id: str, user_id: str | None,
            deltas: dict[str, int]) -> None:
    """After the write (Nova's ``recheck_quota``): the usage that now
    includes ``deltas`` must still be within the limits of the resources
    named in ``deltas`` (403 otherwise, and the transaction is rolled
    back)."""
    limits = get_limits(conn, conf, project_id, user_id)
    usage = count_usage(conn, project_id)
    overs = [name for name in deltas
             if limits.get(name, -1) >= 0 and usage.get(name, 0) >
             limits[name]]
    if overs:
        raise exception.TooManyInstances(
            overs=", ".join(overs),
            req=", ".join(str(deltas[o]) for o in overs),
            used=", ".join(str(usage.get(o, 0) - deltas[o]) for o in overs),
            allowed=", ".join(str(limits[o]) for o in overs))


def headroom(conn, conf, project_id: str, user_id: str | None,
             per_instance: dict[str, int],
             limits: dict[str, int] | None = None) -> int:
    """How many instances of ``per_instance`` size (instances, cores,
    ram) still fit (for multi-create's min/max count); a large number
    when unlimited.  ``limits``: from :func:`get_limits`, if at hand."""
    if limits is None:
        limits = get_limits(conn, conf, project_id, user_id)
    limited = {name: size for name, size in per_instance.items()
               if size > 0 and limits.get(name, -1) >= 0}
    fits = 10 ** 6
    if not limited:
        return fits  # unlimited: nothing to count
    usage = count_instances(conn, project_id)
    for name, size in limited.items():
        fits = min(fits, max(0, (limits[name] - usage.get(name, 0)) // size))
    return fits


def as_dict(values: dict[str, Any]) -> dict[str, Any]:
    return {name: values[name] for name in RESOURCES if name in values}


# --- the component ----------------------------------------------------------

class QuotasComponent(DBComponent):
    """Quota limits and the usage they are checked against."""

    def get_limits(self, conf, project_id: str,
                   user_id: str | None = None) -> Deferred[dict[str, int]]:
        return self._read(get_limits, conf, project_id, user_id)

    def get_class_limits(self, conf, class_name: str = DEFAULT_CLASS
                         ) -> Deferred[dict[str, int]]:
        """A quota class's limits (the ``default`` class: every
        project's defaults)."""
        return self._read(get_class_limits, conf, class_name)

    def set_class_limits(self, conf, class_name: str,
                         values: dict[str, int]) -> Deferred[dict[str, int]]:
        return self._write(set_class_limits, conf, class_name, values)

    def limits_and_usage(self, conf, project_id: str,
                         user_id: str | None = None) -> Deferred[tuple]:
        """See :func:`limits_and_usage`."""
        return self._read(limits_and_usage, conf, project_id, user_id)

    def update_limits(self, conf, project_id: str, user_id: str | None,
                      values: dict[str, int],
                      force: bool) -> Deferred[dict[str, int]]:
        """See :func:`update_limits`."""
        return self._write(update_limits, conf, project_id, user_id,
                           values, force)

    def delete_limits(self, project_id: str,
                      user_id: str | None = None) -> Deferred[None]:
        return self._write(delete_limits, project_id, user_id)
