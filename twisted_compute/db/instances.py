"""Instance queries (and their metadata, tags, faults, instance actions
and events): ``def thd(conn)`` functions for :meth:`DBService.run`.

Lists load instances in one query, then metadata, tags and faults in one
query each for the whole page (no query per instance).
"""

from __future__ import annotations

import datetime
import sys
from typing import Any, Callable, Iterable, Sequence

import sqlalchemy as sa

from twisted_compute import exception
from twisted_compute.compute import vm_states
from twisted_compute.db import models as m
from twisted_compute.db import quotas
from twisted_compute.objects.instance import (
    Instance, InstanceAction, InstanceActionEvent, InstanceFault)

I = m.instances  # noqa: E741

#: Most tags one instance may carry.
MAX_TAGS = 50



# --- records --------------------------------------------------------------

_JSON_DICTS = ("flavor", "addresses", "system_metadata", "request_spec")


_INTERNED: dict[tuple[str, ...], tuple[str, ...]] = {}


def _keys(row) -> tuple[str, ...]:
    """The row's column names as interned strings.  The driver's names are
    fresh strings; matching them to ``Instance``'s ~55 keyword parameters
    costs a string comparison each, and dominated building a list of
    servers before this cache."""
    fields = row._fields
    keys = _INTERNED.get(fields)
    if keys is None:
        keys = _INTERNED[fields] = tuple(sys.intern(str(f)) for f in fields)
    return keys


def _record(row, metadata: dict[str, str] | None = None,
            tags: list[str] | None = None,
            fault: InstanceFault | None = None,
            keys: tuple[str, ...] | None = None) -> Instance:
    values = dict(zip(keys or _keys(row), row))
    for name in _JSON_DICTS:
        if name in values:
            values[name] = values[name] or {}
    values["security_groups"] = values["security_groups"] or []
    values["locked"] = bool(values["locked"])
    values["config_drive"] = values["config_drive"] or ""
    return Instance(metadata=metadata or {}, tags=tags or [], fault=fault,
                    **values)


#: What lists load: every column but the request spec (large, and only
#: the conductor needs it).
_LIST_COLUMNS = [c for c in I.columns if c.name != "request_spec"]


def _extras_statements():
    """The three queries of :func:`_extras`, built once: an expanding
    ``uuids`` parameter instead of a list coerced into each statement
    (and a cache key made of it) on every call."""
    uuids = sa.bindparam("uuids", expanding=True)
    md, t, f = m.instance_metadata, m.tags, m.instance_faults
    return (
        sa.select(md.c.instance_uuid, md.c.key, md.c.value).where(
            md.c.instance_uuid.in_(uuids)),
        sa.select(t.c.resource_id, t.c.tag).where(
            t.c.resource_id.in_(uuids)).order_by(t.c.tag),
        sa.select(f).where(f.c.instance_uuid.in_(uuids)).order_by(
            f.c.created_at.desc(), f.c.id.desc()))


_EXTRAS = _extras_statements()


def _extras(conn, uuids: Sequence[str]):
    """Metadata, tags and latest fault of ``uuids``: three queries."""
    metadata: dict[str, dict[str, str]] = {u: {} for u in uuids}
    tags: dict[str, list[str]] = {u: [] for u in uuids}
    faults: dict[str, InstanceFault] = {}
    if not uuids:
        return metadata, tags, faults
    params = {"uuids": list(uuids)}
    metadata_query, tags_query, faults_query = _EXTRAS
    for uuid, key, value in conn.execute(metadata_query, params):
        metadata[uuid][key] = value
    for uuid, tag in conn.execute(tags_query, params):
        tags[uuid].append(tag)
    for row in conn.execute(faults_query, params):
        if row.instance_uuid not in faults:
            faults[row.instance_uuid] = InstanceFault(
                code=row.code, message=row.message, details=row.details,
                host=row.host, created_at=row.created_at)
    return metadata, tags, faults


def _records(conn, rows) -> list[Instance]:
    uuids = [r.uuid for r in rows]
    metadata, tags, faults = _extras(conn, uuids)
    keys = _keys(rows[0]) if rows else ()
    return [_record(r, metadata[r.uuid], tags[r.uuid], faults.get(r.uuid),
                    keys)
            for r in rows]


# --- reads ----------------------------------------------------------------

def _get_statements():
    """The four forms of :func:`get`'s query, by (of a project, deleted
    too), built once with ``uuid`` and ``project_id`` parameters."""
    statements = {}
    for by_project in (False, True):
        for read_deleted in (False, True):
            query = sa.select(I).where(I.c.uuid == sa.bindparam("uuid"))
            if by_project:
                query = query.where(
                    I.c.project_id == sa.bindparam("project_id"))
            if not read_deleted:
                query = query.where(I.c.deleted == 0)
            statements[by_project, read_deleted] = query
    return statements


_GET = _get_statements()


def get(conn, uuid: str, project_id: str | None = None,
        read_deleted: bool = False) -> Instance:
    """The instance ``uuid`` (of ``project_id`` unless None); 404
    otherwise, and for deleted instances unless ``read_deleted``."""
    query = _GET[project_id is not None, read_deleted]
    row = conn.execute(query, {"uuid": uuid,
                               "project_id": project_id}).first()
    if row is None:
        raise exception.InstanceNotFound(instance_id=uuid)
    return _records(conn, [row])[0]


def server_groups_of(conn, uuid: str) -> list[str]:
    """UUIDs of the server groups ``uuid`` is a member of."""
    g, gm = m.server_groups, m.server_group_members
    return [r[0] for r in conn.execute(sa.select(g.c.uuid).select_from(
        gm.join(g, gm.c.group_id == g.c.id)).where(
        gm.c.instance_uuid == uuid))]


def host_statuses(conn, hosts: Iterable[str], down_after: int,
                  now: datetime.datetime | None = None) -> dict[str, str]:
    """``UP``/``DOWN``/``MAINTENANCE``/``UNKNOWN`` of each compute host,
    from its service record (one query for all)."""
    hosts = sorted({h for h in hosts if h})
    if not hosts:
        return {}
    now = now or m.utcnow()
    s = m.services
    result = {h: "UNKNOWN" for h in hosts}
    rows = conn.execute(sa.select(s).where(s.c.host.in_(hosts))).all()
    for row in rows:
        if "compute" not in (row.binary or "") and \
                row.topic not in ("compute",):
            continue
        if row.forced_down:
            status = "DOWN"
        elif row.last_seen_up is None or (
                now - row.last_seen_up).total_seconds() > down_after:
            status = "DOWN"
        elif row.disabled:
            status = "MAINTENANCE"
        else:
            status = "UP"
        result[row.host] = status
    return result


#: Sort keys of the API -> the value a NULL sorts as (so that markers can
#: be compared against every row on every backend).
_NULL_AS = {
    sa.String: "", sa.Text: "", sa.Integer: -1,
    sa.DateTime: datetime.datetime(1, 1, 1),
}


def _sort_expr(key: str):
    column = I.c[key]
    if key == "updated_at":
        return sa.func.coalesce(column, I.c.created_at)
    if not column.nullable:
        return column
    for kind, null_as in _NULL_AS.items():
        if isinstance(column.type, kind):
            return sa.func.coalesce(column, null_as)
    return column


def _sort_value(row, key: str):
    value = getattr(row, key)
    if value is None:
        if key == "updated_at":
            return row.created_at
        column = I.c[key]
        for kind, null_as in _NULL_AS.items():
            if isinstance(column.type, kind):
                return null_as
    return value


def _tags_clause(tag_list: Sequence[str], match_all: bool):
    t = m.tags
    if match_all:
        return sa.and_(*[I.c.uuid.in_(sa.select(t.c.resource_id).where(
            t.c.tag == tag)) for tag in tag_list])
    return I.c.uuid.in_(sa.select(t.c.resource_id).where(
        t.c.tag.in_(list(tag_list))))


#: Filters that compare a column with ``=`` (or ``IN`` for a list).
EXACT_FILTERS = (
    "uuid", "user_id", "project_id", "host", "node", "reservation_id",
    "image_ref", "instance_type_id", "key_name", "availability_zone",
    "power_state", "vm_state", "task_state", "hostname", "launch_index",
    "config_drive", "access_ip_v4", "access_ip_v6", "kernel_id",
    "ramdisk_id", "progress", "launched_on", "locked_by")


def _filtered(filters: dict[str, Any]):
    query = sa.select(*_LIST_COLUMNS)
    deleted = filters.get("deleted")
    if deleted is True:
        query = query.where(I.c.deleted != 0)
    elif deleted is False:
        query = query.where(I.c.deleted == 0)
    for name in EXACT_FILTERS:
        if name not in filters:
            continue
        value = filters[name]
        column = I.c[name]
        if isinstance(value, (list, tuple, set)):
            values = list(value)
            if None in values:
                values.remove(None)
                query = query.where(sa.or_(column.in_(values),
                                           column.is_(None)))
            else:
                query = query.where(column.in_(values))
        elif value is None:
            query = query.where(column.is_(None))
        else:
            query = query.where(column == value)
    if filters.get("name"):
        query = query.where(I.c.display_name.regexp_match(filters["name"]))
    if filters.get("changes_since") is not None:
        query = query.where(sa.func.coalesce(
            I.c.updated_at, I.c.created_at) >= filters["changes_since"])
    if filters.get("changes_before") is not None:
        query = query.where(sa.func.coalesce(
            I.c.updated_at, I.c.created_at) <= filters["changes_before"])
    if filters.get("locked") is not None:
        query = query.where(I.c.locked == bool(filters["locked"]))
    if filters.get("tags"):
        query = query.where(_tags_clause(filters["tags"], True))
    if filters.get("tags_any"):
        query = query.where(_tags_clause(filters["tags_any"], False))
    if filters.get("not_tags"):
        query = query.where(sa.not_(_tags_clause(filters["not_tags"],
                                                 True)))
    if filters.get("not_tags_any"):
        query = query.where(sa.not_(_tags_clause(filters["not_tags_any"],
                                                 False)))
    return query


#: The filters of the plainest lists (a project's or everyone's, by
#: deleted state): most lists, ``GET /servers/detail`` among them.
_PLAIN_FILTERS = frozenset(("project_id", "deleted"))
#: Their statements, built once per (project or not, deleted state, sort,
#: limit or not) with the project and the limit as parameters: building
#: and hashing a 48-column select cost more than running it on SQLite.
_PLAIN_LISTS: dict[tuple, Any] = {}
#: Most statements kept (sort keys come from the query string).
_PLAIN_LISTS_MAX = 128


def _plain_list(filters: dict[str, Any], keys: list[str], dirs: list[str],
                limit: int | None) -> tuple[Any, dict[str, Any]]:
    """(statement, parameters) of a list with only ``project_id`` (text)
    and ``deleted`` filters and no marker: what :func:`get_all` builds for
    it, pre-built."""
    deleted = filters.get("deleted")
    deleted = deleted if isinstance(deleted, bool) else None
    by_project = "project_id" in filters
    shape = (by_project, deleted, tuple(keys), tuple(dirs),
             limit is not None)
    query = _PLAIN_LISTS.get(shape)
    if query is None:
        template: dict[str, Any] = {"deleted": deleted}
        if by_project:
            template["project_id"] = sa.bindparam("project_id")
        exprs = [_sort_expr(k) for k in keys]
        query = _filtered(template).order_by(
            *[e.desc() if d == "desc" else e.asc()
              for e, d in zip(exprs, dirs)])
        if limit is not None:
            query = query.limit(sa.bindparam("limit"))
        if len(_PLAIN_LISTS) < _PLAIN_LISTS_MAX:
            _PLAIN_LISTS[shape] = query
    params: dict[str, Any] = {}
    if by_project:
        params["project_id"] = filters["project_id"]
    if limit is not None:
        params["limit"] = limit
    return query, params


def get_all(conn, filters: dict[str, Any] | None = None,
            sort_keys: Sequence[str] = ("created_at",),
            sort_dirs: Sequence[str] = ("desc",),
            limit: int | None = None, marker: str | None = None,
            with_extras: bool = True) -> list[Instance]:
    """Instances matching ``filters`` (see :data:`EXACT_FILTERS`, plus
    ``deleted`` (True/False/None), ``name`` (regex), ``changes_since``,
    ``changes_before``, ``locked``, ``tags``, ``tags_any``, ``not_tags``,
    ``not_tags_any``), sorted, after ``marker`` (a uuid)."""
    filters = filters or {}
    keys = list(sort_keys) or ["created_at"]
    dirs = list(sort_dirs) or ["desc"]
    while len(dirs) < len(keys):
        dirs.append(dirs[-1] if dirs else "desc")
    for key in keys:
        if key not in I.c:
            raise exception.InvalidSortKey(sort_key=key)
    if "id" not in keys:
        keys.append("id")
        dirs.append(dirs[0])
    if marker is None and _PLAIN_FILTERS.issuperset(filters) and \
            isinstance(filters.get("project_id", ""), str):
        rows = conn.execute(*_plain_list(filters, keys, dirs, limit)).all()
        if not with_extras:
            return [_record(r) for r in rows]
        return _records(conn, rows)
    query = _filtered(filters)
    exprs = [_sort_expr(k) for k in keys]
    query = query.order_by(*[e.desc() if d == "desc" else e.asc()
                             for e, d in zip(exprs, dirs)])
    if marker is not None:
        mrow = conn.execute(sa.select(I).where(I.c.uuid == marker)).first()
        if mrow is None:
            raise exception.InvalidMarker(marker=marker)
        values = [_sort_value(mrow, k) for k in keys]
        clauses = []
        for i, (expr, direction) in enumerate(zip(exprs, dirs)):
            equal = [exprs[j] == values[j] for j in range(i)]
            beyond = expr < values[i] if direction == "desc" \
                else expr > values[i]
            clauses.append(sa.and_(*equal, beyond))
        query = query.where(sa.or_(*clauses))
    if limit is not None:
        query = query.limit(limit)
    rows = conn.execute(query).all()
    if not with_extras:
        return [_record(r) for r in rows]
    return _records(conn, rows)


# --- create ---------------------------------------------------------------

def key_pair(conn, user_id: str, name: str) -> dict[str, str]:
    """``{"name", "public_key", "type"}`` of a user's key pair (400 when
    unknown: a bad request, not a missing resource)."""
    k = m.key_pairs
    row = conn.execute(sa.select(k.c.name, k.c.public_key, k.c.type).where(
        k.c.user_id == user_id, k.c.name == name)).first()
    if row is None:
        raise exception.InvalidInput(
            reason=f"Invalid key_name provided: key pair {name} not found "
            f"for user {user_id}") from None
    return {"name": row.name, "public_key": row.public_key,
            "type": row.type}


def server_group(conn, group_uuid: str, project_id: str | None
                 ) -> dict[str, Any]:
    g = m.server_groups
    query = sa.select(g).where(g.c.uuid == group_uuid)
    if project_id is not None:
        query = query.where(g.c.project_id == project_id)
    row = conn.execute(query).first()
    if row is None:
        raise exception.InstanceGroupNotFound(group_uuid=group_uuid)
    members = conn.execute(sa.select(sa.func.count()).select_from(
        m.server_group_members).where(
        m.server_group_members.c.group_id == row.id)).scalar_one()
    return {"id": row.id, "uuid": row.uuid, "policy": row.policy,
            "rules": dict(row.rules or {}), "members": int(members)}


def create(conn, conf, *, project_id: str, user_id: str,
           base: dict[str, Any], min_count: int, max_count: int,
           metadata: dict[str, str], tags: Sequence[str],
           key_name: str | None, group_uuid: str | None,
           uuids: Sequence[str], hostnames: Callable[[int], str],
           names: Callable[[int], str], action: dict[str, Any]
           ) -> list[Instance]:
    """Check quotas and insert between ``min_count`` and ``max_count``
    instances (as many as fit), their metadata, tags, group membership and
    ``create`` action, in one transaction.

    ``base`` holds the column values shared by all; ``names(i)`` /
    ``hostnames(i)`` give per-instance names; ``action`` holds
    ``request_id``, ``user_id``, ``project_id`` of the create action.
    """
    quotas.lock_project(conn, project_id)
    limits = quotas.get_limits(conn, conf, project_id, user_id)
    md_limit = limits.get("metadata_items", -1)
    if md_limit >= 0 and len(metadata) > md_limit:
        raise exception.MetadataLimitExceeded(allowed=md_limit)
    per_instance = {"instances": 1, "cores": base["vcpus"],
                    "ram": base["memory_mb"]}
    fits = quotas.headroom(conn, conf, project_id, user_id, per_instance,
                           limits)
    if fits < min_count:
        quotas.check_deltas(conn, conf, project_id, user_id,
                            {k: v * min_count
                             for k, v in per_instance.items()})
        # check_deltas raises when one resource is short; headroom agrees.
        raise exception.TooManyInstances(
            overs="instances", req=min_count, used="?", allowed="?")
    count = min(max_count, fits)
    values = dict(base)
    if key_name:
        key = key_pair(conn, user_id, key_name)
        values["key_name"] = key["name"]
        values["key_data"] = key["public_key"]
    group = None
    if group_uuid:
        group = server_group(conn, group_uuid, None)
        member_limit = limits.get("server_group_members", -1)
        if member_limit >= 0 and group["members"] + count > member_limit:
            raise exception.OverQuota(overs="server_group_members")
        spec = dict(values.get("request_spec") or {})
        spec["group"] = {"uuid": group["uuid"], "policy": group["policy"],
                         "rules": group["rules"]}
        values["request_spec"] = spec
    now = m.utcnow()
    created = []
    for index in range(count):
        row = dict(values)
        row.update(uuid=uuids[index], launch_index=index,
                   display_name=names(index), hostname=hostnames(index),
                   created_at=now, updated_at=now)
        conn.execute(I.insert().values(**row))
        for key, value in metadata.items():
            conn.execute(m.instance_metadata.insert().values(
                instance_uuid=row["uuid"], key=key, value=value))
        for tag in dict.fromkeys(tags):
            conn.execute(m.tags.insert().values(resource_id=row["uuid"],
                                                tag=tag))
        if group is not None:
            conn.execute(m.server_group_members.insert().values(
                group_id=group["id"], instance_uuid=row["uuid"]))
        record_action(conn, row["uuid"], "create", now=now, **action)
        created.append(row["uuid"])
    rows = conn.execute(sa.select(I).where(I.c.uuid.in_(created))).all()
    by_uuid = {r.uuid: r for r in rows}
    # Metadata and tags are the ones just written, and a new instance has
    # no fault: no need to read them back.
    tag_list = list(dict.fromkeys(tags))
    keys = _keys(rows[0])
    return [_record(by_uuid[u], dict(metadata), sorted(tag_list), None,
                    keys) for u in created]


# --- changes --------------------------------------------------------------

def record_action(conn, instance_uuid: str, action: str, *,
                  request_id: str, user_id: str | None,
                  project_id: str | None, message: str | None = None,
                  now: datetime.datetime | None = None) -> int:
    """Insert an instance action row; return its id."""
    now = now or m.utcnow()
    result = conn.execute(m.instance_actions.insert().values(
        action=action, instance_uuid=instance_uuid, request_id=request_id,
        user_id=user_id, project_id=project_id, start_time=now,
        created_at=now, updated_at=now, message=message))
    return result.inserted_primary_key[0]


def record_event(conn, action_id: int, event: str, *,
                 result: str | None = None, host: str | None = None,
                 traceback: str | None = None, finish: bool = False
                 ) -> None:
    now = m.utcnow()
    conn.execute(m.instance_actions_events.insert().values(
        action_id=action_id, event=event, start_time=now,
        finish_time=now if finish else None, result=result, host=host,
        traceback=traceback))
    conn.execute(m.instance_actions.update().where(
        m.instance_actions.c.id == action_id).values(updated_at=now))


def add_fault(conn, instance_uuid: str, code: int, message: str,
              details: str | None = None, host: str | None = None) -> None:
    conn.execute(m.instance_faults.insert().values(
        instance_uuid=instance_uuid, code=code, message=message[:255],
        details=details, host=host, created_at=m.utcnow()))


def transition(conn, uuid: str, *, project_id: str | None,
               check: Callable[[Instance], None] | None,
               values: dict[str, Any] | Callable[[Instance], dict],
               action: str | None = None,
               action_values: dict[str, Any] | None = None) -> Instance:
    """Read the instance, ``check(instance)`` (raises on a wrong state),
    write ``values`` and record ``action``, atomically (the transaction
    holds the write lock from its start on SQLite, and the row update is
    guarded by the vm_state/task_state that were checked elsewhere)."""
    instance = get(conn, uuid, project_id)
    if check is not None:
        check(instance)
    if callable(values):
        values = values(instance)
    values = dict(values)
    values.setdefault("updated_at", m.utcnow())
    updated = conn.execute(I.update().where(
        I.c.uuid == uuid, I.c.deleted == 0,
        I.c.vm_state == instance.vm_state,
        (I.c.task_state.is_(None) if instance.task_state is None
         else I.c.task_state == instance.task_state)).values(**values))
    if updated.rowcount == 0:
        raise exception.InstanceInvalidState(
            action=action or "update", instance_uuid=uuid,
            attr="task_state", state="changing")
    if action is not None:
        record_action(conn, uuid, action, **(action_values or {}))
    return get(conn, uuid)


def update(conn, uuid: str, values: dict[str, Any],
           project_id: str | None = None) -> Instance:
    """Write ``values`` (no state check: display fields)."""
    values = dict(values)
    values.setdefault("updated_at", m.utcnow())
    query = I.update().where(I.c.uuid == uuid, I.c.deleted == 0)
    if project_id is not None:
        query = query.where(I.c.project_id == project_id)
    if conn.execute(query.values(**values)).rowcount == 0:
        raise exception.InstanceNotFound(instance_id=uuid)
    return get(conn, uuid)


def soft_delete(conn, uuid: str, *, project_id: str | None,
                check: Callable[[Instance], None] | None = None,
                action_values: dict[str, Any] | None = None) -> Instance:
    """Mark the instance deleted (``deleted = id``), with its tags and
    group membership gone, and record a ``delete`` action."""
    instance = get(conn, uuid, project_id)
    if check is not None:
        check(instance)
    now = m.utcnow()
    conn.execute(I.update().where(I.c.id == instance.id).values(
        deleted=instance.id, deleted_at=now, updated_at=now,
        terminated_at=now, vm_state=vm_states.DELETED, task_state=None,
        power_state=vm_states.NOSTATE))
    conn.execute(m.tags.delete().where(m.tags.c.resource_id == uuid))
    conn.execute(m.server_group_members.delete().where(
        m.server_group_members.c.instance_uuid == uuid))
    if action_values is not None:
        record_action(conn, uuid, "delete", now=now, **action_values)
    return get(conn, uuid, read_deleted=True)


# --- metadata -------------------------------------------------------------

def update_metadata(conn, conf, uuid: str, metadata: dict[str, str], *,
                    project_id: str | None, replace: bool,
                    check: Callable[[Instance], None] | None = None
                    ) -> dict[str, str]:
    """Merge (or with ``replace`` set) the instance's metadata, within the
    ``metadata_items`` quota; return the whole metadata."""
    instance = get(conn, uuid, project_id)
    if check is not None:
        check(instance)
    merged = dict(metadata) if replace else {**instance.metadata,
                                            **metadata}
    limit = quotas.get_limits(conn, conf, instance.project_id).get(
        "metadata_items", -1)
    if limit >= 0 and len(merged) > limit:
        raise exception.MetadataLimitExceeded(allowed=limit)
    md = m.instance_metadata
    if replace:
        conn.execute(md.delete().where(md.c.instance_uuid == uuid))
        existing: dict[str, str] = {}
    else:
        existing = instance.metadata
    for key, value in metadata.items():
        if key in existing:
            conn.execute(md.update().where(
                md.c.instance_uuid == uuid, md.c.key == key).values(
                value=value))
        else:
            conn.execute(md.insert().values(instance_uuid=uuid, key=key,
                                            value=value))
    conn.execute(I.update().where(I.c.uuid == uuid).values(
        updated_at=m.utcnow()))
    return merged


def delete_metadata(conn, uuid: str, key: str, *, project_id: str | None,
                    check: Callable[[Instance], None] | None = None) -> None:
    instance = get(conn, uuid, project_id)
    if key not in instance.metadata:
        raise exception.InstanceMetadataNotFound(instance_uuid=uuid,
                                                 key=key)
    if check is not None:
        check(instance)
    md = m.instance_metadata
    conn.execute(md.delete().where(md.c.instance_uuid == uuid,
                                   md.c.key == key))
    conn.execute(I.update().where(I.c.uuid == uuid).values(
        updated_at=m.utcnow()))


# --- tags -----------------------------------------------------------------

def _check_tag_count(uuid: str, count: int) -> None:
    if count > MAX_TAGS:
        raise exception.TooManyTags(limit=MAX_TAGS)


def set_tags(conn, uuid: str, tags: Sequence[str], *,
             project_id: str | None,
             check: Callable[[Instance], None] | None = None) -> list[str]:
    instance = get(conn, uuid, project_id)
    if check is not None:
        check(instance)
    unique = sorted(set(tags))
    _check_tag_count(uuid, len(unique))
    conn.execute(m.tags.delete().where(m.tags.c.resource_id == uuid))
    for tag in unique:
        conn.execute(m.tags.insert().values(resource_id=uuid, tag=tag))
    conn.execute(I.update().where(I.c.uuid == uuid).values(
        updated_at=m.utcnow()))
    return unique


def add_tag(conn, uuid: str, tag: str, *, project_id: str | None,
            check: Callable[[Instance], None] | None = None) -> bool:
    """Add ``tag``; False when the instance already had it."""
    instance = get(conn, uuid, project_id)
    if check is not None:
        check(instance)
    if tag in instance.tags:
        return False
    _check_tag_count(uuid, len(instance.tags) + 1)
    conn.execute(m.tags.insert().values(resource_id=uuid, tag=tag))
    conn.execute(I.update().where(I.c.uuid == uuid).values(
        updated_at=m.utcnow()))
    return True


def delete_tag(conn, uuid: str, tag: str | None, *, project_id: str | None,
               check: Callable[[Instance], None] | None = None) -> None:
    """Delete one tag (404 if absent), or all with ``tag=None``."""
    instance = get(conn, uuid, project_id)
    if check is not None:
        check(instance)
    query = m.tags.delete().where(m.tags.c.resource_id == uuid)
    if tag is not None:
        if tag not in instance.tags:
            raise exception.InstanceTagNotFound(instance_id=uuid, tag=tag)
        query = query.where(m.tags.c.tag == tag)
    conn.execute(query)
    conn.execute(I.update().where(I.c.uuid == uuid).values(
        updated_at=m.utcnow()))


# --- system metadata ------------------------------------------------------

def set_system_metadata(conn, uuid: str, values: dict[str, Any], *,
                        project_id: str | None) -> Instance:
    """Merge ``values`` into system_metadata (a None value removes)."""
    instance = get(conn, uuid, project_id)
    merged = dict(instance.system_metadata)
    for key, value in values.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    conn.execute(I.update().where(I.c.uuid == uuid).values(
        system_metadata=merged, updated_at=m.utcnow()))
    return get(conn, uuid)


# --- instance actions -----------------------------------------------------

def _action(row, events=()) -> InstanceAction:
    return InstanceAction(
        id=row.id, action=row.action, instance_uuid=row.instance_uuid,
        request_id=row.request_id, user_id=row.user_id,
        project_id=row.project_id, start_time=row.start_time,
        finish_time=row.finish_time, message=row.message,
        created_at=row.created_at, updated_at=row.updated_at,
        events=list(events))


def get_actions(conn, uuid: str, *, limit: int | None = None,
                marker: str | None = None,
                changes_since: datetime.datetime | None = None,
                changes_before: datetime.datetime | None = None
                ) -> list[InstanceAction]:
    """Actions of an instance, newest first; ``marker`` is a request
    id."""
    a = m.instance_actions
    query = sa.select(a).where(a.c.instance_uuid == uuid)
    updated = sa.func.coalesce(a.c.updated_at, a.c.created_at)
    if changes_since is not None:
        query = query.where(updated >= changes_since)
    if changes_before is not None:
        query = query.where(updated <= changes_before)
    if marker is not None:
        mrow = conn.execute(sa.select(a).where(
            a.c.instance_uuid == uuid, a.c.request_id == marker)).first()
        if mrow is None:
            raise exception.InvalidMarker(marker=marker)
        query = query.where(sa.or_(
            a.c.created_at < mrow.created_at,
            sa.and_(a.c.created_at == mrow.created_at, a.c.id < mrow.id)))
    query = query.order_by(a.c.created_at.desc(), a.c.id.desc())
    if limit is not None:
        query = query.limit(limit)
    return [_action(r) for r in conn.execute(query)]


def get_action(conn, uuid: str, request_id: str) -> InstanceAction:
    """The action of ``request_id`` on ``uuid``, with its events."""
    a, e = m.instance_actions, m.instance_actions_events
    row = conn.execute(sa.select(a).where(
        a.c.instance_uuid == uuid, a.c.request_id == request_id).order_by(
        a.c.created_at.desc(), a.c.id.desc())).first()
    if row is None:
        raise exception.InstanceActionNotFound(request_id=request_id,
                                               instance_uuid=uuid)
    events = [InstanceActionEvent(
        id=r.id, action_id=r.action_id, event=r.event,
        start_time=r.start_time, finish_time=r.finish_time,
        result=r.result, traceback=r.traceback, host=r.host,
        details=r.details)
        for r in conn.execute(sa.select(e).where(
            e.c.action_id == row.id).order_by(e.c.start_time.desc(),
                                             e.c.id.desc()))]
    return _action(row, events)
