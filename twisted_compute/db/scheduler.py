"""What the scheduler reads: ``def thd(conn)`` functions for
:meth:`DBService.read`.

They return plain dicts and tuples (the scheduler turns them into its own
mutable host states on the reactor thread); nothing here writes.
"""

from __future__ import annotations

import datetime
from typing import Any, Iterable

import sqlalchemy as sa

from twisted_compute.db import models as m
from twisted_compute.db import services as services_db
from twisted_compute.objects.service import COMPUTE_BINARY

_cn = m.compute_nodes
_svc = m.services

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
             services_db.host_zones(conn).items()}
    return {"nodes": nodes, "zones": zones, "read_at": m.utcnow()}


def group_hosts(conn, group_uuid: str,
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


def epoch(value: datetime.datetime | None) -> float | None:
    """Seconds since the epoch of a naive UTC timestamp (None stays
    None)."""
    if value is None:
        return None
    return (value - _EPOCH).total_seconds()


_EPOCH = datetime.datetime(1970, 1, 1)
