"""Rows that the API tests of quotas, services, hypervisors, availability
zones and server groups insert directly (no agents exist in unit tests)."""

from __future__ import annotations

import datetime
import uuid as uuidlib

import sqlalchemy as sa

from twisted_compute.db import models as m


def insert_instance(conn, project_id="p", user_id="u", vcpus=1,
                    memory_mb=512, host=None, node=None, name="vm",
                    task_state=None, deleted=False) -> dict:
    values = dict(
        uuid=str(uuidlib.uuid4()), user_id=user_id, project_id=project_id,
        display_name=name, host=host, node=node, vm_state="active",
        task_state=task_state, vcpus=vcpus, memory_mb=memory_mb,
        flavor={}, addresses={}, security_groups=[], system_metadata={},
        request_spec={})
    pk = conn.execute(m.instances.insert().values(
        **values)).inserted_primary_key[0]
    if deleted:
        conn.execute(m.instances.update().where(
            m.instances.c.id == pk).values(deleted=pk))
    return {"id": pk, **values}


def insert_service(conn, host="host1", binary="nova-compute",
                   seen_ago: float | None = 0, **extra) -> dict:
    now = m.utcnow()
    values = dict(uuid=str(uuidlib.uuid4()), host=host, binary=binary,
                  topic=binary.split("-")[-1],
                  last_seen_up=None if seen_ago is None else
                  now - datetime.timedelta(seconds=seen_ago),
                  created_at=now - datetime.timedelta(days=1),
                  updated_at=now - datetime.timedelta(seconds=seen_ago or 0))
    values.update(extra)
    pk = conn.execute(m.services.insert().values(
        **values)).inserted_primary_key[0]
    return {"id": pk, **values}


def insert_compute_node(conn, service: dict | None, host="host1",
                        hostname="node1", **extra) -> dict:
    values = dict(
        uuid=str(uuidlib.uuid4()),
        service_id=service["id"] if service else None, host=host,
        hypervisor_hostname=hostname, hypervisor_type="QEMU",
        hypervisor_version=8002000, host_ip="192.0.2.10", vcpus=8,
        memory_mb=16384, local_gb=200, vcpus_used=2, memory_mb_used=4096,
        local_gb_used=20, running_vms=2,
        cpu_info='{"arch": "x86_64", "model": "Haswell"}')
    values.update(extra)
    pk = conn.execute(m.compute_nodes.insert().values(
        **values)).inserted_primary_key[0]
    return {"id": pk, **values}


def insert_aggregate(conn, name, hosts, zone=None) -> int:
    metadata = {"availability_zone": zone} if zone else {}
    pk = conn.execute(m.aggregates.insert().values(
        uuid=str(uuidlib.uuid4()), name=name,
        metadata=metadata)).inserted_primary_key[0]
    for host in hosts:
        conn.execute(m.aggregate_hosts.insert().values(aggregate_id=pk,
                                                       host=host))
    return pk


def count(conn, table) -> int:
    return conn.execute(sa.select(sa.func.count()).select_from(
        table)).scalar_one()
