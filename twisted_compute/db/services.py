"""Services and compute nodes (hypervisors): ``def thd(conn)`` queries,
:class:`ServicesComponent` that runs them in the DB pool, and
:func:`is_up`, the one place that decides whether a service is alive."""

from __future__ import annotations

import datetime
import uuid as uuidlib
from typing import Any, Iterable

import sqlalchemy as sa
from twisted.internet.defer import Deferred

from twisted_compute import exception
from twisted_compute.db import models as m
from twisted_compute.db.base import DBComponent
from twisted_compute.objects.service import (
    COMPUTE_BINARY, ComputeNode, Service)

_svc = m.services
_cn = m.compute_nodes


def is_up(service: Any, now: datetime.datetime,
          service_down_time: float) -> bool:
    """Whether ``service`` (a :class:`Service` or anything with the same
    attributes) has reported within ``service_down_time`` seconds of
    ``now`` (naive UTC) and is not forced down."""
    if getattr(service, "forced_down", False):
        return False
    last = (getattr(service, "last_seen_up", None) or
            getattr(service, "updated_at", None) or
            getattr(service, "created_at", None))
    if last is None:
        return False
    return abs((now - last).total_seconds()) <= service_down_time


# --- availability zones ---------------------------------------------------

def host_zones(conn) -> dict[str, str]:
    """Host -> availability zone, from aggregates' ``availability_zone``
    metadata (several zones of one host are joined by commas)."""
    # Each aggregate's metadata decoded once, not once per member host.
    aggregate_zone = {}
    for agg_id, metadata in conn.execute(sa.select(
            m.aggregates.c.id, m.aggregates.c.metadata)):
        zone = (metadata or {}).get("availability_zone")
        if zone:
            aggregate_zone[agg_id] = zone
    zones: dict[str, set[str]] = {}
    if not aggregate_zone:
        return {}
    rows = conn.execute(sa.select(
        m.aggregate_hosts.c.host, m.aggregate_hosts.c.aggregate_id).where(
        m.aggregate_hosts.c.aggregate_id.in_(sorted(aggregate_zone))))
    for host, agg_id in rows:
        zones.setdefault(host, set()).add(aggregate_zone[agg_id])
    return {host: ",".join(sorted(z)) for host, z in zones.items()}


def _zone(conf, row, zones: dict[str, str]) -> str:
    if row.binary != COMPUTE_BINARY:
        return conf.internal_service_availability_zone
    return zones.get(row.host) or conf.default_availability_zone


def _record(row, zone: str | None = None) -> Service:
    return Service(
        id=row.id, uuid=row.uuid, host=row.host, binary=row.binary,
        topic=row.topic, report_count=row.report_count,
        disabled=bool(row.disabled), disabled_reason=row.disabled_reason,
        forced_down=bool(row.forced_down), last_seen_up=row.last_seen_up,
        version=row.version, created_at=row.created_at,
        updated_at=row.updated_at, availability_zone=zone)


# --- services -------------------------------------------------------------

def get_all(conn, conf, host: str | None = None, binary: str | None = None,
            disabled: bool | None = None) -> list[Service]:
    """Services (with their zone), optionally filtered."""
    query = sa.select(_svc).order_by(_svc.c.id)
    if host is not None:
        query = query.where(_svc.c.host == host)
    if binary is not None:
        query = query.where(_svc.c.binary == binary)
    if disabled is not None:
        query = query.where(_svc.c.disabled == disabled)
    zones = host_zones(conn)
    return [_record(r, _zone(conf, r, zones)) for r in conn.execute(query)]


def _one(conn, conf, where, not_found: exception.ComputeException
         ) -> Service:
    row = conn.execute(sa.select(_svc).where(where)).first()
    if row is None:
        raise not_found
    return _record(row, _zone(conf, row, host_zones(conn)))


def get(conn, conf, service_id: int | None = None,
        uuid: str | None = None) -> Service:
    """The service with database id ``service_id`` or ``uuid``."""
    if uuid is not None:
        return _one(conn, conf, _svc.c.uuid == uuid,
                    exception.ServiceNotFound(service_id=uuid))
    return _one(conn, conf, _svc.c.id == service_id,
                exception.ServiceNotFound(service_id=service_id))


def get_by_host_binary(conn, conf, host: str, binary: str) -> Service:
    return _one(conn, conf, sa.and_(_svc.c.host == host,
                                    _svc.c.binary == binary),
                exception.HostBinaryNotFound(host=host, binary=binary))


def update(conn, conf, service_id: int, values: dict[str, Any]) -> Service:
    """Change ``disabled``, ``disabled_reason`` or ``forced_down``."""
    allowed = {"disabled", "disabled_reason", "forced_down"}
    unknown = set(values) - allowed
    if unknown:
        raise exception.InvalidInput(
            reason=f"cannot update {', '.join(sorted(unknown))}")
    conn.execute(_svc.update().where(_svc.c.id == service_id).values(
        updated_at=m.utcnow(), **values))
    return get(conn, conf, service_id)


def destroy(conn, service_id: int) -> None:
    """Delete a service.  A compute service that still hosts servers
    cannot go (409); with it go its compute nodes and aggregate
    memberships."""
    row = conn.execute(sa.select(_svc).where(
        _svc.c.id == service_id)).first()
    if row is None:
        raise exception.ServiceNotFound(service_id=service_id)
    if row.binary == COMPUTE_BINARY:
        hosting = conn.execute(sa.select(sa.func.count()).select_from(
            m.instances).where(m.instances.c.host == row.host,
                               m.instances.c.deleted == 0)).scalar_one()
        if hosting:
            raise exception.ServiceInUse(reason=(
                "Unable to delete compute service that is hosting "
                "instances. Migrate or delete the instances first."))
        conn.execute(_cn.update().where(
            _cn.c.host == row.host, _cn.c.deleted == 0).values(
            deleted=_cn.c.id))
        conn.execute(m.aggregate_hosts.delete().where(
            m.aggregate_hosts.c.host == row.host))
    conn.execute(_svc.delete().where(_svc.c.id == service_id))


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



#: :func:`heartbeat`'s statements, built once (every value a parameter).
_SERVICE = sa.select(_svc).where(_svc.c.host == sa.bindparam("host"),
                                 _svc.c.binary == sa.bindparam("binary"))
_HEARTBEAT = _svc.update().where(
    _svc.c.host == sa.bindparam("b_host"),
    _svc.c.binary == sa.bindparam("b_binary")).values(
    report_count=_svc.c.report_count + 1,
    last_seen_up=sa.bindparam("last_seen_up",
                              type_=_svc.c.last_seen_up.type),
    updated_at=sa.bindparam("updated_at", type_=_svc.c.updated_at.type),
    topic=sa.bindparam("topic", type_=_svc.c.topic.type))


def heartbeat(conn, host: str, binary: str, topic: str,
              version: int = 0) -> dict[str, Any]:
    """Record that ``binary`` on ``host`` is alive (creating its row the
    first time); return the row (the caller learns ``disabled``)."""
    s = m.services
    now = m.utcnow()
    key = {"host": host, "binary": binary}
    row = conn.execute(_SERVICE, key).first()
    if row is None:
        try:
            with conn.begin_nested():
                conn.execute(s.insert().values(
                    uuid=str(uuidlib.uuid4()), host=host, binary=binary,
                    topic=topic, report_count=1, last_seen_up=now,
                    created_at=now, updated_at=now, version=version,
                    disabled=False, forced_down=False))
        except sa.exc.IntegrityError:
            pass  # created concurrently: update below
        else:
            row = conn.execute(_SERVICE, key).one()
            return dict(row._mapping)
    conn.execute(_HEARTBEAT, {"b_host": host, "b_binary": binary,
                              "last_seen_up": now, "updated_at": now,
                              "topic": topic})
    row = conn.execute(_SERVICE, key).one()
    return dict(row._mapping)


_SERVICE_HOSTS = sa.select(_svc.c.host).where(
    _svc.c.binary == sa.bindparam("binary"),
    _svc.c.host.in_(sa.bindparam("hosts", expanding=True)))
_HEARTBEATS = _svc.update().where(
    _svc.c.binary == sa.bindparam("b_binary"),
    _svc.c.host.in_(sa.bindparam("b_hosts", expanding=True))).values(
    report_count=_svc.c.report_count + 1,
    last_seen_up=sa.bindparam("last_seen_up",
                              type_=_svc.c.last_seen_up.type),
    updated_at=sa.bindparam("updated_at", type_=_svc.c.updated_at.type),
    topic=sa.bindparam("topic", type_=_svc.c.topic.type))

#: How many hosts one statement of :func:`heartbeats` names at most
#: (SQLite's older builds allow 999 parameters per statement).
HEARTBEAT_CHUNK = 900


def heartbeats(conn, hosts: Iterable[str], binary: str, topic: str,
               version: int = 0) -> int:
    """:func:`heartbeat` of many hosts in one transaction: one UPDATE
    for those whose rows exist (per :data:`HEARTBEAT_CHUNK` hosts), one
    INSERT per new host; the number of hosts recorded."""
    hosts = sorted(set(hosts))
    now = m.utcnow()
    for start in range(0, len(hosts), HEARTBEAT_CHUNK):
        chunk = hosts[start:start + HEARTBEAT_CHUNK]
        known = set(conn.execute(_SERVICE_HOSTS, {
            "binary": binary, "hosts": chunk}).scalars())
        for host in chunk:
            if host in known:
                continue
            try:
                with conn.begin_nested():
                    conn.execute(_svc.insert().values(
                        uuid=str(uuidlib.uuid4()), host=host, binary=binary,
                        topic=topic, report_count=0, last_seen_up=now,
                        created_at=now, updated_at=now, version=version,
                        disabled=False, forced_down=False))
            except sa.exc.IntegrityError:
                pass  # created concurrently: updated below
        conn.execute(_HEARTBEATS, {"b_binary": binary, "b_hosts": chunk,
                                   "last_seen_up": now, "updated_at": now,
                                   "topic": topic})
    return len(hosts)


# --- compute nodes --------------------------------------------------------

#: The service columns a node's record carries, labelled apart from the
#: node's own.
_NODE_SERVICE = [c.label("svc_" + c.name) for c in _svc.c]
#: The node columns a :class:`ComputeNode` holds (not its timestamps:
#: on SQLite each is a string parsed per row).
_LISTED_NODE_COLUMNS = [_cn.c[name] for name in (
    "id", "uuid", "service_id", "host", "hypervisor_hostname",
    "hypervisor_type", "hypervisor_version", "host_ip", "vcpus",
    "memory_mb", "local_gb", "vcpus_used", "memory_mb_used",
    "local_gb_used", "running_vms", "cpu_info", "uptime")]
#: The node and the service it names (``service_id``) in one row.
_NODE_JOIN = _cn.outerjoin(_svc, _svc.c.id == _cn.c.service_id)


def _joined_service(row: dict) -> Service | None:
    """The service of a node's row; its zone is not resolved (None):
    what lists nodes does not show it, and with 1,000 hosts the
    aggregates' read cost a tenth of the listing."""
    if row["svc_id"] is None:
        return None
    host, binary = row["svc_host"], row["svc_binary"]
    return Service(
        id=row["svc_id"], uuid=row["svc_uuid"], host=host, binary=binary,
        topic=row["svc_topic"], report_count=row["svc_report_count"],
        disabled=bool(row["svc_disabled"]),
        disabled_reason=row["svc_disabled_reason"],
        forced_down=bool(row["svc_forced_down"]),
        last_seen_up=row["svc_last_seen_up"], version=row["svc_version"],
        created_at=row["svc_created_at"], updated_at=row["svc_updated_at"])


def _node_records(conn, conf, query, every_node: bool = False
                  ) -> list[ComputeNode]:
    """The nodes ``query`` (a select of ``compute_nodes`` rows) lists,
    each with its service, read in one query joined to ``services``
    (with 1,000 hosts: one round trip, no separate read of every
    service; rows read as plain tuples).  ``every_node``: the query
    lists every live node, so the current workloads are counted without
    an IN list of their names."""
    result = conn.execute(query.with_only_columns(
        *_LISTED_NODE_COLUMNS, *_NODE_SERVICE).select_from(_NODE_JOIN))
    keys = list(result.keys())
    rows = [dict(zip(keys, values)) for values in result.tuples()]
    if not rows:
        return []
    busy = sa.select(m.instances.c.node, sa.func.count()).where(
        m.instances.c.deleted == 0, m.instances.c.task_state.isnot(None))
    if not every_node:
        busy = busy.where(m.instances.c.node.in_(
            [r["hypervisor_hostname"] for r in rows]))
    workloads = dict(conn.execute(busy.group_by(m.instances.c.node)).all())
    orphans = sorted({r["host"] for r in rows if r["svc_id"] is None})
    by_host: dict[str, dict] = {}
    if orphans:
        # Nodes reported before their service row existed (or whose
        # service was replaced): the compute service of their host.
        found = conn.execute(sa.select(*_NODE_SERVICE).where(
            _svc.c.binary == COMPUTE_BINARY, _svc.c.host.in_(orphans)))
        found_keys = list(found.keys())
        for values in found.tuples():
            row = dict(zip(found_keys, values))
            by_host[row["svc_host"]] = row
    return [ComputeNode(
        id=r["id"], uuid=r["uuid"], host=r["host"],
        hypervisor_hostname=r["hypervisor_hostname"],
        hypervisor_type=r["hypervisor_type"],
        hypervisor_version=r["hypervisor_version"], host_ip=r["host_ip"],
        vcpus=r["vcpus"], memory_mb=r["memory_mb"], local_gb=r["local_gb"],
        vcpus_used=r["vcpus_used"], memory_mb_used=r["memory_mb_used"],
        local_gb_used=r["local_gb_used"], running_vms=r["running_vms"],
        cpu_info=r["cpu_info"], uptime=r["uptime"],
        current_workload=int(workloads.get(r["hypervisor_hostname"], 0)),
        service=_joined_service(
            by_host.get(r["host"], r) if r["svc_id"] is None else r))
        for r in rows]


def compute_nodes(conn, conf, *, hostname_pattern: str | None = None,
                  limit: int | None = None, marker: str | None = None,
                  marker_is_uuid: bool = False) -> list[ComputeNode]:
    """Live compute nodes by id; ``hostname_pattern`` matches a part of
    the hypervisor hostname; ``marker`` is an id (or a uuid)."""
    query = sa.select(_cn).where(_cn.c.deleted == 0).order_by(_cn.c.id)
    if hostname_pattern is not None:
        escaped = hostname_pattern.replace("\\", "\\\\").replace(
            "%", "\\%").replace("_", "\\_")
        query = query.where(_cn.c.hypervisor_hostname.like(
            f"%{escaped}%", escape="\\"))
    if marker is not None:
        column = _cn.c.uuid if marker_is_uuid else _cn.c.id
        try:
            value = marker if marker_is_uuid else int(marker)
        except ValueError:
            raise exception.InvalidMarker(marker=marker) from None
        if not marker_is_uuid and not 0 <= value < 2 ** 63:
            # no id is beyond the database's integers (SQLite would fail)
            raise exception.InvalidMarker(marker=marker)
        mrow = conn.execute(sa.select(_cn.c.id).where(
            column == value, _cn.c.deleted == 0)).first()
        if mrow is None:
            raise exception.InvalidMarker(marker=marker)
        query = query.where(_cn.c.id > mrow.id)
    if limit is not None:
        query = query.limit(limit)
    return _node_records(conn, conf, query,
                         every_node=hostname_pattern is None and
                         marker is None and limit is None)


def compute_node(conn, conf, node_id: int | None = None,
                 uuid: str | None = None) -> ComputeNode:
    where = _cn.c.uuid == uuid if uuid is not None else _cn.c.id == node_id
    nodes = _node_records(conn, conf,
                          sa.select(_cn).where(where, _cn.c.deleted == 0))
    if not nodes:
        raise exception.HypervisorNotFound(
            hypervisor_id=uuid if uuid is not None else node_id)
    return nodes[0]


def node_servers(conn, conf, nodes: list[ComputeNode]
                 ) -> dict[int, list[dict[str, str]]]:
    """Compute node id -> the live servers on it (``name`` is the
    hypervisor's name of the instance, ``uuid``)."""
    result: dict[int, list[dict[str, str]]] = {n.id: [] for n in nodes}
    if not nodes:
        return result
    index = {(n.host, n.hypervisor_hostname): n.id for n in nodes}
    i = m.instances
    rows = conn.execute(sa.select(i.c.id, i.c.uuid, i.c.host, i.c.node)
                        .where(i.c.deleted == 0,
                               i.c.host.in_({n.host for n in nodes}))
                        .order_by(i.c.id))
    template = conf.instance_name_template
    for row in rows:
        node_id = index.get((row.host, row.node))
        if node_id is not None:
            result[node_id].append({"name": template % row.id,
                                    "uuid": row.uuid})
    return result


def nodes_and_servers(conn, conf, with_servers: bool, **filters: Any
                      ) -> tuple[list[ComputeNode],
                                 dict[int, list[dict[str, str]]]]:
    """The compute nodes of :func:`compute_nodes` (``filters``) that have
    a compute service, and (``with_servers``) the servers on each."""
    nodes = [n for n in compute_nodes(conn, conf, **filters)
             if n.service is not None]
    servers = node_servers(conn, conf, nodes) if with_servers else {}
    return nodes, servers


def node_and_servers(conn, conf, with_servers: bool,
                     node_id: int | None = None, uuid: str | None = None
                     ) -> tuple[ComputeNode, list[dict[str, str]]]:
    """A compute node that has a compute service (404 otherwise) and
    (``with_servers``) the servers on it."""
    node = compute_node(conn, conf, node_id=node_id, uuid=uuid)
    if node.service is None:
        raise exception.HypervisorNotFound(
            hypervisor_id=uuid or node_id)
    servers = node_servers(conn, conf, [node]) if with_servers else {}
    return node, servers.get(node.id, [])


_COMPUTE_SERVICE_ID = sa.select(_svc.c.id).where(
    _svc.c.host == sa.bindparam("host"), _svc.c.binary == COMPUTE_BINARY)
_NODE_ID = sa.select(_cn.c.id).where(
    _cn.c.host == sa.bindparam("host"),
    _cn.c.hypervisor_hostname == sa.bindparam("node"), _cn.c.deleted == 0)
_UPDATE_NODE = _cn.update().where(_cn.c.id == sa.bindparam("b_id"))


def compute_node_update(conn, values: dict[str, Any]) -> int:
    """Insert or update the node (host, hypervisor_hostname); return its
    id.  ``values`` are the ``compute_nodes`` columns an agent reports."""
    columns = {c.name for c in m.compute_nodes.columns} - {
        "id", "uuid", "created_at", "updated_at", "deleted", "service_id"}
    data = {k: v for k, v in values.items() if k in columns}
    host, node = data["host"], data["hypervisor_hostname"]
    now = m.utcnow()
    service = conn.execute(_COMPUTE_SERVICE_ID, {"host": host}).first()
    if service is not None:
        data["service_id"] = service.id
    cn = m.compute_nodes
    row = conn.execute(_NODE_ID, {"host": host, "node": node}).first()
    if row is None:
        data.setdefault("cpu_info", "{}")
        return conn.execute(cn.insert().values(
            uuid=str(uuidlib.uuid4()), created_at=now, updated_at=now,
            deleted=0, **data)).inserted_primary_key[0]
    # The columns set are the parameters' keys (those an agent reports).
    conn.execute(_UPDATE_NODE, {"b_id": row.id, "updated_at": now, **data})
    return row.id



_COMPUTE_SERVICE_IDS = sa.select(_svc.c.host, _svc.c.id).where(
    _svc.c.binary == COMPUTE_BINARY,
    _svc.c.host.in_(sa.bindparam("hosts", expanding=True)))
_NODE_IDS = sa.select(_cn.c.host, _cn.c.hypervisor_hostname, _cn.c.id).where(
    _cn.c.deleted == 0, _cn.c.host.in_(sa.bindparam("hosts", expanding=True)))


def compute_nodes_update(conn, nodes: Iterable[dict[str, Any]]) -> int:
    """:func:`compute_node_update` of each of ``nodes`` in one
    transaction: per :data:`HEARTBEAT_CHUNK` nodes, one read of their
    services' and rows' ids and one UPDATE run with many parameter sets
    (an INSERT for each new node); how many were written."""
    columns = {c.name for c in m.compute_nodes.columns} - {
        "id", "uuid", "created_at", "updated_at", "deleted", "service_id"}
    nodes = list(nodes)
    now = m.utcnow()
    for start in range(0, len(nodes), HEARTBEAT_CHUNK):
        chunk = nodes[start:start + HEARTBEAT_CHUNK]
        hosts = sorted({values["host"] for values in chunk})
        services = dict(conn.execute(_COMPUTE_SERVICE_IDS,
                                     {"hosts": hosts}).all())
        ids = {(r.host, r.hypervisor_hostname): r.id for r in
               conn.execute(_NODE_IDS, {"hosts": hosts})}
        updates: dict[frozenset, list[dict[str, Any]]] = {}
        for values in chunk:
            data = {k: v for k, v in values.items() if k in columns}
            node_id = ids.get((data["host"], data["hypervisor_hostname"]))
            if node_id is None:
                compute_node_update(conn, values)
                continue
            service_id = services.get(data["host"])
            if service_id is not None:
                data["service_id"] = service_id
            data.update(b_id=node_id, updated_at=now)
            updates.setdefault(frozenset(data), []).append(data)
        for parameters in updates.values():
            conn.execute(_UPDATE_NODE, parameters)
    return len(nodes)


# --- what the scheduler reads ---------------------------------------------

#: Columns of a host row: the compute node's, then its service's
#: (prefixed ``service_``; None when the node has no compute service).
_NODE_COLUMNS = (
    _cn.c.id, _cn.c.uuid, _cn.c.host, _cn.c.hypervisor_hostname,
    _cn.c.hypervisor_type, _cn.c.hypervisor_version, _cn.c.cpu_info,
    _cn.c.vcpus, _cn.c.memory_mb, _cn.c.local_gb, _cn.c.vcpus_used,
    _cn.c.memory_mb_used, _cn.c.local_gb_used, _cn.c.running_vms,
    _cn.c.cpu_allocation_ratio, _cn.c.ram_allocation_ratio,
    _cn.c.disk_allocation_ratio, _cn.c.created_at, _cn.c.updated_at,
)

_SERVICE_COLUMNS = (
    _svc.c.id.label("service_id"),
    _svc.c.disabled.label("service_disabled"),
    _svc.c.disabled_reason.label("service_disabled_reason"),
    _svc.c.forced_down.label("service_forced_down"),
    _svc.c.last_seen_up.label("service_last_seen_up"),
    _svc.c.created_at.label("service_created_at"),
    _svc.c.updated_at.label("service_updated_at"),
)



def compute_hosts(conn) -> dict[str, Any]:
    """Every live compute node with its compute service and zone.

    Returns ``{"nodes": [dict, ...], "zones": {host: [zone, ...]},
    "read_at": naive UTC datetime}``.  A node row's keys are the
    ``compute_nodes`` columns plus ``service_*`` ones (None when no
    compute service runs on the node's host).  ``zones`` only lists
    hosts that are in an aggregate with an ``availability_zone``.
    """
    query = (sa.select(*_NODE_COLUMNS, *_SERVICE_COLUMNS)
             .select_from(_cn.outerjoin(_svc, sa.and_(
                 _svc.c.host == _cn.c.host,
                 _svc.c.binary == COMPUTE_BINARY)))
             .where(_cn.c.deleted == 0)
             .order_by(_cn.c.id))
    nodes = [dict(row._mapping) for row in conn.execute(query)]
    zones = {host: zone.split(",") for host, zone in
             host_zones(conn).items()}
    return {"nodes": nodes, "zones": zones, "read_at": m.utcnow()}



# --- the component ----------------------------------------------------------

def host_usage(conn, host: str) -> dict[str, dict[str, int]]:
    """Project -> the ``cpu``, ``memory_mb`` and ``disk_gb`` that live
    instances on ``host`` take (``os-hosts`` show)."""
    i = m.instances
    rows = conn.execute(sa.select(
        i.c.project_id, sa.func.sum(i.c.vcpus), sa.func.sum(i.c.memory_mb),
        sa.func.sum(i.c.root_gb + i.c.ephemeral_gb))
        .where(i.c.deleted == 0, i.c.host == host)
        .group_by(i.c.project_id).order_by(i.c.project_id))
    return {project: {"cpu": int(cpu or 0), "memory_mb": int(ram or 0),
                      "disk_gb": int(disk or 0)}
            for project, cpu, ram, disk in rows}


class ServicesComponent(DBComponent):
    """Services (with their heartbeats) and compute nodes."""

    def get_all(self, conf, host: str | None = None,
                binary: str | None = None,
                disabled: bool | None = None) -> Deferred[list[Service]]:
        return self._read(get_all, conf, host, binary, disabled)

    def get(self, conf, service_id: int | None = None,
            uuid: str | None = None) -> Deferred[Service]:
        return self._read(get, conf, service_id, uuid)

    def get_by_host_binary(self, conf, host: str, binary: str
                           ) -> Deferred[Service]:
        return self._read(get_by_host_binary, conf, host, binary)

    def update(self, conf, service_id: int, values: dict[str, Any]
               ) -> Deferred[Service]:
        return self._write(update, conf, service_id, values)

    def destroy(self, service_id: int) -> Deferred[None]:
        return self._write(destroy, service_id)

    def heartbeat(self, host: str, binary: str, topic: str,
                  version: int = 0) -> Deferred[dict[str, Any]]:
        """See :func:`heartbeat`."""
        return self._write(heartbeat, host, binary, topic, version)

    def heartbeats(self, hosts: Iterable[str], binary: str, topic: str,
                   version: int = 0) -> Deferred[int]:
        """See :func:`heartbeats`."""
        return self._write(heartbeats, list(hosts), binary, topic, version)

    def update_nodes(self, nodes: Iterable[dict[str, Any]]
                     ) -> Deferred[int]:
        """See :func:`compute_nodes_update`."""
        return self._write(compute_nodes_update, list(nodes))

    def host_statuses(self, hosts: Iterable[str], down_after: int
                      ) -> Deferred[dict[str, str]]:
        return self._read(host_statuses, hosts, down_after)

    def host_zones(self) -> Deferred[dict[str, str]]:
        return self._read(host_zones)

    def nodes_and_servers(self, conf, with_servers: bool = False,
                          **filters: Any) -> Deferred[tuple]:
        """See :func:`nodes_and_servers`."""
        return self._read(nodes_and_servers, conf, with_servers, **filters)

    def node_and_servers(self, conf, with_servers: bool = False,
                         node_id: int | None = None,
                         uuid: str | None = None) -> Deferred[tuple]:
        """See :func:`node_and_servers`."""
        return self._read(node_and_servers, conf, with_servers, node_id,
                          uuid)

    def update_node(self, values: dict[str, Any]) -> Deferred[int]:
        """See :func:`compute_node_update`."""
        return self._write(compute_node_update, values)

    def compute_hosts(self) -> Deferred[dict[str, Any]]:
        """See :func:`compute_hosts`."""
        return self._read(compute_hosts)

    def host_usage(self, host: str) -> Deferred[dict[str, dict[str, int]]]:
        """See :func:`host_usage`."""
        return self._read(host_usage, host)
