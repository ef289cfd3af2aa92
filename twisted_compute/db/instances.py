"""Instances, with their metadata and tags: every instance write lives
here (the API's, the conductor's on behalf of the agents, the metadata
API's), as ``def thd(conn)`` queries, and :class:`InstancesComponent`
runs them in the DB pool.

Lists load instances in one query, then metadata, tags and faults in one
query each for the whole page (no query per instance).
"""

from __future__ import annotations

import datetime
import functools
import sys
from typing import Any, Callable, Optional, Sequence

import sqlalchemy as sa
from twisted.internet.defer import Deferred

from twisted_compute import exception
from twisted_compute.db import actions
from twisted_compute.db import aggregates
from twisted_compute.db import console_auth_tokens
from twisted_compute.db import flavors
from twisted_compute.db import images
from twisted_compute.db import keypairs
from twisted_compute.db import models as m
from twisted_compute.db import quotas
from twisted_compute.db import server_groups
from twisted_compute.db.base import DBComponent
from twisted_compute.objects import vm_states
from twisted_compute.objects.flavor import Flavor
from twisted_compute.objects.service import COMPUTE_BINARY
from twisted_compute.objects.image import Image
from twisted_compute.objects.instance import Instance, InstanceFault

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
            keys: tuple[str, ...] | None = None,
            spec: dict[str, Any] | None = None) -> Instance:
    values = dict(zip(keys or _keys(row), row))
    if spec is not None:
        values["request_spec"] = spec
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
    "id", "uuid", "user_id", "project_id", "host", "node", "reservation_id",
    "image_ref", "instance_type_id", "key_name", "availability_zone",
    "power_state", "vm_state", "task_state", "hostname", "launch_index",
    "config_drive", "access_ip_v4", "access_ip_v6", "kernel_id",
    "ramdisk_id", "progress", "launched_on", "locked_by")


#: The request spec's pieces that server details show (the pinned zone
#: from 2.96, the hints from 2.100), read in SQL rather than decoding
#: every spec of a page.
_SPEC_PIECES = ("availability_zone", "scheduler_hints")
_SPEC_COLUMNS = [I.c.request_spec[key].label("_spec_" + key)
                 for key in _SPEC_PIECES]


def _filtered(filters: dict[str, Any], with_spec: bool = False):
    query = sa.select(*_LIST_COLUMNS, *(_SPEC_COLUMNS if with_spec else ()))
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
                limit: int | None, with_spec: bool = False
                ) -> tuple[Any, dict[str, Any]]:
    """(statement, parameters) of a list with only ``project_id`` (text)
    and ``deleted`` filters and no marker: what :func:`get_all` builds for
    it, pre-built."""
    deleted = filters.get("deleted")
    deleted = deleted if isinstance(deleted, bool) else None
    by_project = "project_id" in filters
    shape = (by_project, deleted, tuple(keys), tuple(dirs),
             limit is not None, with_spec)
    query = _PLAIN_LISTS.get(shape)
    if query is None:
        template: dict[str, Any] = {"deleted": deleted}
        if by_project:
            template["project_id"] = sa.bindparam("project_id")
        exprs = [_sort_expr(k) for k in keys]
        query = _filtered(template, with_spec).order_by(
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
            with_extras: bool = True,
            with_spec: bool = False) -> list[Instance]:
    """Instances matching ``filters`` (see :data:`EXACT_FILTERS`, plus
    ``deleted`` (True/False/None), ``name`` (regex), ``changes_since``,
    ``changes_before``, ``locked``, ``tags``, ``tags_any``, ``not_tags``,
    ``not_tags_any``), sorted, after ``marker`` (a uuid); their request
    specs too when ``with_spec`` (the pinned zone and the hints that
    server details show from 2.96 and 2.100)."""
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
        rows = conn.execute(*_plain_list(filters, keys, dirs, limit,
                                         with_spec)).all()
        if with_spec:
            return _records_with_spec(conn, rows, with_extras)
        if not with_extras:
            return [_record(r) for r in rows]
        return _records(conn, rows)
    query = _filtered(filters, with_spec)
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
    if with_spec:
        return _records_with_spec(conn, rows, with_extras)
    if not with_extras:
        return [_record(r) for r in rows]
    return _records(conn, rows)


def _records_with_spec(conn, rows, with_extras: bool) -> list[Instance]:
    """Records of rows carrying the ``_spec_*`` pieces: each instance's
    ``request_spec`` holds just those."""
    width = len(_LIST_COLUMNS)
    keys = _keys(rows[0])[:width] if rows else ()
    plain = [r[:width] for r in rows]
    specs = [{key: value for key, value in zip(_SPEC_PIECES, r[width:])
              if value is not None} for r in rows]
    if not with_extras:
        return [_record(p, keys=keys, spec=spec)
                for p, spec in zip(plain, specs)]
    metadata, tags, faults = _extras(conn, [r.uuid for r in rows])
    return [_record(p, metadata[r.uuid], tags[r.uuid], faults.get(r.uuid),
                    keys, spec)
            for p, r, spec in zip(plain, rows, specs)]


# --- reads for the agents and the metadata API -------------------------

_BUILD_STATES = sa.select(
    I.c.uuid, I.c.vm_state, I.c.task_state, I.c.host).where(
    I.c.uuid.in_(sa.bindparam("uuids", expanding=True)), I.c.deleted == 0)


def build_states(conn, uuids: Sequence[str]
                 ) -> dict[str, tuple[str, str | None, str | None]]:
    """``{uuid: (vm_state, task_state, host)}`` of the live instances
    among ``uuids`` (deleted ones are missing)."""
    if not uuids:
        return {}
    rows = conn.execute(_BUILD_STATES, {"uuids": list(uuids)}).all()
    return {r.uuid: (r.vm_state, r.task_state, r.host) for r in rows}


def on_host(conn, host: str) -> list[Instance]:
    """The live instances on ``host``, and those moving to or from it (a
    migration in progress names it as source or destination)."""
    from twisted_compute.objects.migration import ACTIVE_STATUSES
    mig = m.migrations
    moving = sa.select(mig.c.instance_uuid).where(
        mig.c.status.in_(ACTIVE_STATUSES), mig.c.deleted == 0,
        sa.or_(mig.c.source_compute == host, mig.c.dest_compute == host))
    rows = conn.execute(sa.select(I).where(
        sa.or_(I.c.host == host, I.c.uuid.in_(moving)),
        I.c.deleted == 0)).all()
    return _records(conn, rows)


def on_hosts(conn, hosts: Sequence[str]) -> dict[str, list[Instance]]:
    """The live instances on each of ``hosts`` (one query for all; every
    host asked for is a key, with an empty list when it has none)."""
    result: dict[str, list[Instance]] = {host: [] for host in hosts}
    if not result:
        return result
    rows = conn.execute(sa.select(I).where(
        I.c.host.in_(sa.bindparam("hosts", expanding=True)),
        I.c.deleted == 0), {"hosts": sorted(result)}).all()
    for instance in _records(conn, rows):
        result[instance.host].append(instance)
    return result


def building_too_long(conn, older_than: datetime.datetime,
                      limit: int = 500) -> list[tuple[str, str | None]]:
    """(uuid, host) of live instances still building since before
    ``older_than``."""
    rows = conn.execute(sa.select(I.c.uuid, I.c.host).where(
        I.c.deleted == 0, I.c.vm_state == vm_states.BUILDING,
        I.c.created_at < older_than).limit(limit)).all()
    return [(r.uuid, r.host) for r in rows]


def fail_stuck_tasks(conn, task_states: dict[str, str | None],
                     older_than: datetime.datetime, message: str,
                     limit: int = 500) -> list[tuple[str, str, str]]:
    """Live instances whose task (a key of ``task_states``) has not moved
    since before ``older_than``: the task is cleared, the vm_state set to
    ``task_states[task]`` when not None, and a fault recorded; returns
    ``(uuid, vm_state, task_state)`` of each, the states it had."""
    rows = conn.execute(sa.select(
        I.c.uuid, I.c.host, I.c.vm_state, I.c.task_state).where(
        I.c.deleted == 0, I.c.task_state.in_(list(task_states)),
        I.c.updated_at < older_than).limit(limit)).all()
    failed = []
    for row in rows:
        values: dict[str, Any] = {"task_state": None,
                                  "updated_at": m.utcnow()}
        if task_states[row.task_state] is not None:
            values["vm_state"] = task_states[row.task_state]
        updated = conn.execute(I.update().where(
            I.c.uuid == row.uuid, I.c.deleted == 0,
            I.c.task_state == row.task_state,
            I.c.updated_at < older_than).values(**values))
        if updated.rowcount:
            actions.add_fault(conn, row.uuid, 500,
                              f"{message} (task {row.task_state})", None,
                              row.host)
            failed.append((row.uuid, row.vm_state, row.task_state))
    return failed


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
    the metadata API caches what this finds.  When two live instances
    share the address (separate networks), the newest wins.
    """
    rows = conn.execute(
        sa.select(I.c.uuid, I.c.addresses)
        .where(I.c.deleted == 0)
        .order_by(I.c.id.desc()))
    for uuid, addresses in rows:
        if address in _fixed_addresses(addresses):
            return uuid
    return None


def get_with_key_type(conn, uuid: str) -> dict[str, Any] | None:
    """``{"instance": Instance, "key_type": str | None}`` of the live
    instance ``uuid`` (the type of its key pair, for the metadata API), or
    None."""
    try:
        instance = get(conn, uuid)
    except exception.InstanceNotFound:
        return None
    key_type = None
    if instance.key_name:
        k = m.key_pairs
        key_type = conn.execute(sa.select(k.c.type).where(
            k.c.user_id == instance.user_id,
            k.c.name == instance.key_name)).scalar()
    return {"instance": instance, "key_type": key_type}


# --- create ---------------------------------------------------------------

_INSERT = I.insert()
_INSERT_METADATA = m.instance_metadata.insert()
_INSERT_TAG = m.tags.insert()
_INSERT_GROUP_MEMBER = m.server_group_members.insert()
_SELECT_CREATED = sa.select(I).where(
    I.c.uuid.in_(sa.bindparam("uuids", expanding=True)))


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
        try:
            key = keypairs.get(conn, user_id, key_name)
        except exception.KeypairNotFound:
            # A bad request, not a missing resource.
            raise exception.InvalidInput(
                reason=f"Invalid key_name provided: key pair {key_name} "
                f"not found for user {user_id}") from None
        values["key_name"] = key.name
        values["key_data"] = key.public_key
    group = None
    if group_uuid:
        group = server_groups.get(conn, group_uuid)
        if group.project_id != project_id:
            # Another project's group is invisible: as if it did not exist.
            raise exception.InstanceGroupNotFound(group_uuid=group_uuid)
        member_limit = limits.get("server_group_members", -1)
        if member_limit >= 0 and \
                len(group.members) + count > member_limit:
            raise exception.OverQuota(overs="server_group_members")
        spec = dict(values.get("request_spec") or {})
        spec["group"] = {"uuid": group.uuid, "policy": group.policy,
                         "rules": dict(group.rules)}
        values["request_spec"] = spec
    now = m.utcnow()
    created = []
    for index in range(count):
        row = dict(values)
        row.update(uuid=uuids[index], launch_index=index,
                   display_name=names(index), hostname=hostnames(index),
                   created_at=now, updated_at=now)
        # Plain inserts with a parameter dict: built once, not per call.
        conn.execute(_INSERT, row)
        for key, value in metadata.items():
            conn.execute(_INSERT_METADATA, {
                "instance_uuid": row["uuid"], "key": key, "value": value})
        for tag in dict.fromkeys(tags):
            conn.execute(_INSERT_TAG, {"resource_id": row["uuid"],
                                       "tag": tag})
        if group is not None:
            conn.execute(_INSERT_GROUP_MEMBER, {
                "group_id": group.id, "instance_uuid": row["uuid"]})
        actions.record_action(conn, row["uuid"], "create", now=now, **action)
        created.append(row["uuid"])
    rows = conn.execute(_SELECT_CREATED, {"uuids": created}).all()
    by_uuid = {r.uuid: r for r in rows}
    # Metadata and tags are the ones just written, and a new instance has
    # no fault: no need to read them back.
    tag_list = list(dict.fromkeys(tags))
    keys = _keys(rows[0])
    return [_record(by_uuid[u], dict(metadata), sorted(tag_list), None,
                    keys) for u in created]


def create_for_boot(conn, conf, *, flavorid: str, image_id: str | None,
                    scope: str | None, zone: str | None,
                    prepare: Callable[[Flavor | None, Image | None,
                                       set[str] | None], dict[str, Any]],
                    **create_args: Any) -> list[Instance]:
    """A boot, in one transaction: read the flavor ``flavorid`` and the
    image ``image_id`` (each None when missing or hidden from project
    ``scope``; None: an admin) and, when ``zone`` is asked for, the
    availability zones; ``prepare(flavor, image, zones)`` checks them
    (raising what the API answers) and returns the column values the new
    instances share; then :func:`create` with ``create_args``."""
    try:
        flavor = flavors.get_by_flavorid(conn, flavorid, scope)
    except exception.FlavorNotFound:
        flavor = None
    image = None
    if image_id:
        try:
            image = images.get(conn, image_id, scope)
        except exception.ImageNotFound:
            pass
    zones = aggregates.availability_zones(
        conn, conf.default_availability_zone) if zone else None
    base = prepare(flavor, image, zones)
    return create(conn, conf, base=base, **create_args)


# --- changes --------------------------------------------------------------

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
        actions.record_action(conn, uuid, action, **(action_values or {}))
    return get(conn, uuid)


def unshelve(conn, conf, uuid: str, *, project_id: str | None,
             check: Callable[[Instance], None], values: dict[str, Any],
             zone: str | None, host: str | None,
             action_values: dict[str, Any]) -> Instance:
    """Start the unshelve of a shelved-offloaded server, in one
    transaction: the zone asked for must exist (400), the host asked for
    be a compute host (400), the cores and RAM the server gave back must
    fit the project's quota again (403); then :func:`transition`."""
    if zone is not None and zone not in aggregates.availability_zones(
            conn, conf.default_availability_zone):
        raise exception.InvalidAvailabilityZone()
    if host is not None and conn.execute(sa.select(m.services.c.id).where(
            m.services.c.host == host,
            m.services.c.binary == COMPUTE_BINARY)).first() is None:
        raise exception.Invalid(f"Compute host {host} could not be found.")
    instance = get(conn, uuid, project_id)
    check(instance)
    quotas.lock_project(conn, instance.project_id)
    quotas.check_deltas(conn, conf, instance.project_id, None,
                        {"cores": instance.vcpus or 0,
                         "ram": instance.memory_mb or 0})
    return transition(conn, uuid, project_id=project_id, check=check,
                      values=values, action="unshelve",
                      action_values=action_values)


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


def set_pinned_zone(conn, uuid: str, zone: str | None,
                    project_id: str | None) -> Instance:
    """2.104: set the zone of ``uuid``'s request spec.  None unpins; a
    zone re-pins, only to the zone the server is in and only when it is
    unpinned (409 otherwise: unpin first); the current value is a
    no-op."""
    # The row is locked until the transaction ends (two PUTs at once).
    conn.execute(sa.select(I.c.id).where(I.c.uuid == uuid).with_for_update())
    instance = get(conn, uuid, project_id)
    spec = dict(instance.request_spec or {})
    pinned = spec.get("availability_zone") or None
    if zone == pinned:
        return instance
    if zone is not None:
        if pinned is not None:
            raise exception.PinnedZoneConflict(reason=(
                f"The server is pinned to availability zone {pinned}; "
                f"unpin it before pinning it to {zone}"))
        if zone != instance.availability_zone:
            raise exception.PinnedZoneConflict(reason=(
                f"The server is in availability zone "
                f"{instance.availability_zone or 'none'}, not {zone}"))
    spec["availability_zone"] = zone
    conn.execute(I.update().where(I.c.uuid == uuid).values(
        request_spec=spec, updated_at=m.utcnow()))
    return get(conn, uuid, project_id)


def soft_delete(conn, uuid: str, *, project_id: str | None,
                check: Callable[[Instance], None] | None = None,
                action_values: dict[str, Any] | None = None) -> Instance:
    """Mark the instance deleted (``deleted = id``), with its tags,
    group membership and console tokens gone, and record a ``delete``
    action."""
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
    console_auth_tokens.delete_for_instance(conn, uuid)
    if action_values is not None:
        actions.record_action(conn, uuid, "delete", now=now, **action_values)
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


# --- password -------------------------------------------------------------

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


# --- the agents' steps, scheduling and build failures ---------------------

#: Instance columns an agent may write through the conductor.
WRITABLE = frozenset({
    "vm_state", "task_state", "power_state", "host", "node", "launched_on",
    "launched_at", "terminated_at", "progress", "addresses",
    "system_metadata", "locked", "hostname", "availability_zone",
})


@functools.lru_cache(maxsize=256)
def _guarded_update_statement(columns: tuple[str, ...],
                              task_form: bool | None, by_vm_state: bool,
                              by_host: bool):
    """:func:`guarded_update`'s UPDATE of ``columns`` (and
    ``updated_at``), built once per shape: ``task_form`` None when no task
    state is expected, else whether None is among the expected ones;
    whether a vm state and a host are expected.  Every value is a
    parameter: ``set_<column>``, ``b_uuid``, ``b_task_states`` and
    ``b_vm_states`` (expanding lists), ``b_host``."""
    query = I.update().where(I.c.uuid == sa.bindparam("b_uuid"),
                             I.c.deleted == 0)
    if task_form is not None:
        clauses = [I.c.task_state.in_(
            sa.bindparam("b_task_states", expanding=True))]
        if task_form:
            clauses.append(I.c.task_state.is_(None))
        query = query.where(sa.or_(*clauses))
    if by_vm_state:
        query = query.where(I.c.vm_state.in_(
            sa.bindparam("b_vm_states", expanding=True)))
    if by_host:
        query = query.where(I.c.host == sa.bindparam("b_host"))
    return query.values({
        name: sa.bindparam("set_" + name, type_=I.c[name].type)
        for name in columns + ("updated_at",)})


def guarded_update(conn, uuid: str, updates: dict[str, Any],
                   expected_task_state: Sequence[str | None] | None = None,
                   expected_vm_state: Sequence[str] | None = None,
                   expected_host: str | None = None,
                   fetch: bool = True,
                   event: dict[str, Any] | None = None
                   ) -> Instance | None:
    """Write ``updates`` to a live instance, only while its task state is
    one of ``expected_task_state`` (when given), its vm state one of
    ``expected_vm_state`` (when given) and its host ``expected_host``
    (when given: a build request that went stale, because the instance
    was rescheduled elsewhere meanwhile, must not take the instance).
    Returns the instance as written, or None without ``fetch`` (which
    saves the four queries of reading it back).

    ``event`` (``request_id``, ``event``, ``host``, and ``result`` /
    ``traceback`` to finish one) records the start or the end of an
    instance action event in the same transaction: an agent's step and its
    event in one round trip, and no event when the update is refused.

    Raises :class:`InstanceNotFound` when it is gone (deleted), and
    :class:`UnexpectedDeletingTaskStateError` when someone asked for its
    deletion meanwhile, :class:`UnexpectedTaskStateError` otherwise.
    """
    bad = set(updates) - WRITABLE
    if bad:
        raise exception.InvalidInput(
            reason=f"instance fields not writable over RPC: {sorted(bad)}")
    params: dict[str, Any] = {"set_" + k: v for k, v in updates.items()}
    params["set_updated_at"] = m.utcnow()
    params["b_uuid"] = uuid
    task_form = None
    if expected_task_state is not None:
        expected = list(expected_task_state)
        task_form = None in expected
        params["b_task_states"] = [s for s in expected if s is not None]
    if expected_vm_state is not None:
        params["b_vm_states"] = list(expected_vm_state)
    if expected_host is not None:
        params["b_host"] = expected_host
    query = _guarded_update_statement(
        tuple(sorted(updates)), task_form, expected_vm_state is not None,
        expected_host is not None)
    if conn.execute(query, params).rowcount == 0:
        row = conn.execute(sa.select(
                I.c.task_state, I.c.vm_state, I.c.host).where(
            I.c.uuid == uuid, I.c.deleted == 0)).first()
        if row is None:
            raise exception.InstanceNotFound(instance_id=uuid)
        if row.task_state == vm_states.DELETING:
            raise exception.UnexpectedDeletingTaskStateError(
                instance_uuid=uuid, expected=expected_task_state,
                actual=row.task_state)
        if expected_host is not None and row.host != expected_host:
            raise exception.UnexpectedTaskStateError(
                instance_uuid=uuid, expected=expected_task_state,
                actual=f"{row.task_state} on host {row.host}")
        raise exception.UnexpectedTaskStateError(
            instance_uuid=uuid, expected=expected_task_state,
            actual=row.task_state)
    if event is not None:
        if event.get("result") is None:
            actions.action_event_start(conn, uuid, event["request_id"],
                                       event["event"], event.get("host"))
        else:
            actions.action_event_finish(
                conn, uuid, event["request_id"], event["event"],
                event.get("host"), event["result"], event.get("traceback"))
    if not fetch:
        return None
    return get(conn, uuid)


def place(conn, uuid: str, values: dict[str, Any],
          default_zone: str | None = None) -> bool:
    """Write an instance's placement while it is still building and
    unplaced-or-scheduling; False when it was deleted meanwhile.  With
    ``default_zone``, the instance's zone becomes its host's
    (``default_zone`` when no aggregate gives the host one): the zone
    asked for at create when there was one (the scheduler kept to it),
    and on a reschedule the new host's, so that the API and the metadata
    API show the same zone."""
    try:
        guarded_update(conn, uuid, values,
                       expected_task_state=[vm_states.SCHEDULING, None],
                       expected_vm_state=[vm_states.BUILDING], fetch=False)
    except (exception.InstanceNotFound, exception.UnexpectedTaskStateError):
        return False
    if default_zone is not None and values.get("host"):
        conn.execute(I.update().where(I.c.uuid == uuid).values(
            availability_zone=aggregates.host_zone(
                conn, values["host"], default_zone)))
    return True


def place_all(conn, placements: dict[str, dict[str, Any]],
               request_id: str, event: str, host: str | None,
               started: datetime.datetime,
               default_zone: str | None = None) -> set[str]:
    """Write each instance's placement (``{uuid: values}``) while it is
    still building and unplaced-or-scheduling, and record the scheduling
    ``event`` of those placed; the uuids placed (the others were deleted
    meanwhile)."""
    placed = {uuid for uuid, values in placements.items()
              if place(conn, uuid, values, default_zone)}
    if placed:
        actions.action_events_done(conn, sorted(placed), request_id,
                                   event, host, started, "Success")
    return placed


def fail_scheduling(conn, uuids: Sequence[str], code: int, message: str,
                    request_id: str, event: str, host: str | None,
                    started: datetime.datetime) -> list[str]:
    """No host for ``uuids``: ERROR with a fault, and the scheduling
    event ends in error; the uuids put in ERROR (not deleted meanwhile)."""
    failed = [uuid for uuid in uuids
              if set_error(conn, uuid, code, message, None, None)]
    actions.action_events_done(conn, uuids, request_id, event, host,
                               started, "Error", details=message)
    return failed


def set_error(conn, uuid: str, code: int, message: str,
              details: str | None = None, host: str | None = None,
              only_if_building: bool = False) -> bool:
    """Put a live instance in ERROR with a fault; False if it is gone (or,
    with ``only_if_building``, no longer building)."""
    query = I.update().where(I.c.uuid == uuid, I.c.deleted == 0)
    if only_if_building:
        query = query.where(I.c.vm_state == vm_states.BUILDING)
    updated = conn.execute(query.values(
        vm_state=vm_states.ERROR, task_state=None,
        updated_at=m.utcnow()))
    if updated.rowcount == 0:
        return False
    actions.add_fault(conn, uuid, code, message, details, host)
    return True


# --- the component ----------------------------------------------------------

_Check = Optional[Callable[[Instance], None]]


class InstancesComponent(DBComponent):
    """Instances, their metadata, tags and password."""

    # --- reads

    def get(self, uuid: str, project_id: str | None = None,
            read_deleted: bool = False) -> Deferred[Instance]:
        """See :func:`get`."""
        return self._read(get, uuid, project_id, read_deleted)

    def get_all(self, filters: dict[str, Any] | None = None,
                sort_keys: Sequence[str] = ("created_at",),
                sort_dirs: Sequence[str] = ("desc",),
                limit: int | None = None, marker: str | None = None,
                with_extras: bool = True,
                with_spec: bool = False) -> Deferred[list[Instance]]:
        """See :func:`get_all`."""
        return self._read(get_all, filters, sort_keys, sort_dirs, limit,
                          marker, with_extras, with_spec)

    def build_states(self, uuids: Sequence[str]) -> Deferred[dict]:
        """See :func:`build_states`."""
        return self._read(build_states, uuids)

    def on_host(self, host: str) -> Deferred[list[Instance]]:
        return self._read(on_host, host)

    def on_hosts(self, hosts: Sequence[str]
                 ) -> Deferred[dict[str, list[Instance]]]:
        """See :func:`on_hosts`."""
        return self._read(on_hosts, hosts)

    def building_too_long(self, older_than: datetime.datetime,
                          limit: int = 500) -> Deferred[list[tuple]]:
        return self._read(building_too_long, older_than, limit)

    def fail_stuck_tasks(self, task_states: dict[str, str | None],
                         older_than: datetime.datetime, message: str
                         ) -> Deferred[list[tuple[str, str, str]]]:
        """See :func:`fail_stuck_tasks`."""
        return self._write(fail_stuck_tasks, task_states, older_than,
                           message)

    def uuid_by_fixed_ip(self, address: str) -> Deferred[str | None]:
        return self._read(uuid_by_fixed_ip, address)

    def get_with_key_type(self, uuid: str
                          ) -> Deferred[dict[str, Any] | None]:
        return self._read(get_with_key_type, uuid)

    # --- the API's writes

    def create(self, conf, *, flavorid: str, image_id: str | None,
               scope: str | None, zone: str | None,
               prepare: Callable[..., dict[str, Any]],
               **create_args: Any) -> Deferred[list[Instance]]:
        """New instances of a boot, quotas checked: see
        :func:`create_for_boot` and :func:`create`."""
        return self._write(create_for_boot, conf, flavorid=flavorid,
                           image_id=image_id, scope=scope, zone=zone,
                           prepare=prepare, **create_args)

    def update(self, uuid: str, values: dict[str, Any],
               project_id: str | None = None) -> Deferred[Instance]:
        return self._write(update, uuid, values, project_id)

    def transition(self, uuid: str, *, project_id: str | None,
                   check: _Check,
                   values: dict[str, Any] | Callable[[Instance], dict],
                   action: str | None = None,
                   action_values: dict[str, Any] | None = None
                   ) -> Deferred[Instance]:
        """See :func:`transition`."""
        return self._write(transition, uuid, project_id=project_id,
                           check=check, values=values, action=action,
                           action_values=action_values)

    def unshelve(self, conf, uuid: str, **kwargs: Any
                 ) -> Deferred[Instance]:
        """See :func:`unshelve`."""
        return self._write(unshelve, conf, uuid, **kwargs)

    def set_pinned_zone(self, uuid: str, zone: str | None,
                        project_id: str | None) -> Deferred[Instance]:
        """See :func:`set_pinned_zone`."""
        return self._write(set_pinned_zone, uuid, zone, project_id)

    def soft_delete(self, uuid: str, *, project_id: str | None,
                    check: _Check = None,
                    action_values: dict[str, Any] | None = None
                    ) -> Deferred[Instance]:
        return self._write(soft_delete, uuid, project_id=project_id,
                           check=check, action_values=action_values)

    def update_metadata(self, conf, uuid: str, metadata: dict[str, str], *,
                        project_id: str | None, replace: bool,
                        check: _Check = None) -> Deferred[dict[str, str]]:
        return self._write(update_metadata, conf, uuid, metadata,
                           project_id=project_id, replace=replace,
                           check=check)

    def delete_metadata(self, uuid: str, key: str, *,
                        project_id: str | None,
                        check: _Check = None) -> Deferred[None]:
        return self._write(delete_metadata, uuid, key,
                           project_id=project_id, check=check)

    def set_tags(self, uuid: str, tags: Sequence[str], *,
                 project_id: str | None,
                 check: _Check = None) -> Deferred[list[str]]:
        return self._write(set_tags, uuid, tags, project_id=project_id,
                           check=check)

    def add_tag(self, uuid: str, tag: str, *, project_id: str | None,
                check: _Check = None) -> Deferred[bool]:
        return self._write(add_tag, uuid, tag, project_id=project_id,
                           check=check)

    def delete_tag(self, uuid: str, tag: str | None, *,
                   project_id: str | None,
                   check: _Check = None) -> Deferred[None]:
        return self._write(delete_tag, uuid, tag, project_id=project_id,
                           check=check)

    def set_system_metadata(self, uuid: str, values: dict[str, Any], *,
                            project_id: str | None) -> Deferred[Instance]:
        return self._write(set_system_metadata, uuid, values,
                           project_id=project_id)

    def set_password(self, uuid: str, password: str) -> Deferred[bool]:
        return self._write(set_password, uuid, password)

    # --- the conductor's writes (its own, and the agents')

    def guarded_update(self, uuid: str, updates: dict[str, Any],
                       expected_task_state=None, expected_vm_state=None,
                       expected_host: str | None = None, fetch: bool = True,
                       event: dict[str, Any] | None = None
                       ) -> Deferred[Instance | None]:
        """See :func:`guarded_update`."""
        return self._write(guarded_update, uuid, updates,
                           expected_task_state, expected_vm_state,
                           expected_host, fetch, event)

    def place(self, uuid: str, values: dict[str, Any],
              default_zone: str | None = None) -> Deferred[bool]:
        """See :func:`place`."""
        return self._write(place, uuid, values, default_zone)

    def place_all(self, placements: dict[str, dict[str, Any]],
                  request_id: str, event: str, host: str | None,
                  started: datetime.datetime,
                  default_zone: str | None = None) -> Deferred[set[str]]:
        """See :func:`place_all`."""
        return self._write(place_all, placements, request_id, event, host,
                           started, default_zone)

    def fail_scheduling(self, uuids: Sequence[str], code: int,
                        message: str, request_id: str, event: str,
                        host: str | None,
                        started: datetime.datetime) -> Deferred[list[str]]:
        return self._write(fail_scheduling, uuids, code, message,
                           request_id, event, host, started)

    def set_error(self, uuid: str, code: int, message: str,
                  details: str | None = None, host: str | None = None,
                  only_if_building: bool = False) -> Deferred[bool]:
        """See :func:`set_error`."""
        return self._write(set_error, uuid, code, message, details, host,
                           only_if_building)
