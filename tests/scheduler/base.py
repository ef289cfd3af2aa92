"""Fixtures for scheduler tests: compute hosts as rows in a real,
migrated SQLite database, a Clock, and a :class:`SchedulerManager`."""

from __future__ import annotations

import datetime
import json
import random
import uuid as uuidlib
from typing import Any

import sqlalchemy as sa
from twisted.internet.defer import ensureDeferred
from twisted.internet.task import Clock

from tests.base import DBTestCase, make_conf
from twisted_compute.context import RequestContext
from twisted_compute.db import models as m
from twisted_compute.objects.service import COMPUTE_BINARY
from twisted_compute.scheduler import manager as manager_mod
from twisted_compute.scheduler.host_state import utc_from_seconds

#: The scheduler's clock starts here (tests compare it with DB times).
START = datetime.datetime(2025, 3, 1, 12, 0, 0)


def flavor(memory_mb=512, vcpus=1, root_gb=1, ephemeral_gb=0, swap=0,
           **extra_specs) -> dict[str, Any]:
    return {"memory_mb": memory_mb, "vcpus": vcpus, "root_gb": root_gb,
            "ephemeral_gb": ephemeral_gb, "swap": swap,
            "extra_specs": extra_specs}


def request_spec(**overrides) -> dict[str, Any]:
    spec = {"flavor": flavor(), "image": {"id": "img", "properties": {}},
            "availability_zone": None, "num_instances": 1, "group": None,
            "force_hosts": [], "force_nodes": [], "ignore_hosts": [],
            "project_id": "p", "user_id": "u", "scheduler_hints": {}}
    spec.update(overrides)
    return spec


class SchedulerTestCase(DBTestCase):
    """``self.add_host(...)`` inserts a compute service and node;
    ``self.select(spec, n)`` runs ``select_destinations``."""

    overrides: dict[str, dict[str, Any]] = {}

    def setUp(self):
        super().setUp()
        self.clock = Clock()
        self.clock.advance((START - datetime.datetime(1970, 1, 1))
                           .total_seconds())
        self.conf = make_conf(self.state_path, **self.overrides)
        self.context = RequestContext(user_id="u", project_id="p")
        self.manager = self.make_manager()

    def make_manager(self, conf=None, seed=0):
        return manager_mod.SchedulerManager(
            conf or self.conf, self.db, self.clock,
            rng=random.Random(seed))

    def now(self) -> datetime.datetime:
        return utc_from_seconds(self.clock.seconds())

    # --- rows --------------------------------------------------------------

    def add_host(self, host: str, *, memory_mb=4096, local_gb=100,
                 vcpus=4, memory_mb_used=0, local_gb_used=0, vcpus_used=0,
                 running_vms=0, ram_ratio=1.0, disk_ratio=1.0,
                 cpu_ratio=1.0, disabled=False, forced_down=False,
                 last_seen_up: datetime.datetime | None = None,
                 reported_at: datetime.datetime | None = None,
                 hypervisor_type="fake", hypervisor_version=1000,
                 cpu_info: dict | None = None, service=True,
                 nodename: str | None = None) -> str:
        """Insert a compute service (unless ``service`` is false) and its
        node; returns the node's uuid.  By default the service was seen
        up and the node reported one second before the clock's now."""
        node_uuid = str(uuidlib.uuid4())
        seen = self.now() - datetime.timedelta(seconds=1)
        reported = reported_at or seen

        def thd(conn):
            service_id = None
            existing = conn.execute(sa.select(m.services.c.id).where(
                m.services.c.host == host,
                m.services.c.binary == COMPUTE_BINARY)).first()
            if existing is not None:
                service_id = existing.id
            elif service:
                service_id = conn.execute(m.services.insert().values(
                    uuid=str(uuidlib.uuid4()), host=host,
                    binary=COMPUTE_BINARY, topic="compute",
                    disabled=disabled, forced_down=forced_down,
                    last_seen_up=last_seen_up or seen, created_at=seen,
                    updated_at=last_seen_up or seen,
                )).inserted_primary_key[0]
            conn.execute(m.compute_nodes.insert().values(
                uuid=node_uuid, service_id=service_id, host=host,
                hypervisor_hostname=nodename or host,
                hypervisor_type=hypervisor_type,
                hypervisor_version=hypervisor_version, vcpus=vcpus,
                memory_mb=memory_mb, local_gb=local_gb,
                vcpus_used=vcpus_used, memory_mb_used=memory_mb_used,
                local_gb_used=local_gb_used, running_vms=running_vms,
                cpu_info=json.dumps(cpu_info if cpu_info is not None
                                    else {"arch": "x86_64"}),
                cpu_allocation_ratio=cpu_ratio,
                ram_allocation_ratio=ram_ratio,
                disk_allocation_ratio=disk_ratio,
                created_at=reported, updated_at=reported))

        self.run_db(thd)
        return node_uuid

    def update_node(self, host: str, **values):
        """Change a node's row; ``updated_at`` (the report's time) stays
        unless given (the column's own default is the wall clock, not
        the test's)."""
        def thd(conn):
            if "updated_at" not in values:
                values["updated_at"] = m.compute_nodes.c.updated_at
            conn.execute(m.compute_nodes.update().where(
                m.compute_nodes.c.host == host).values(**values))
        self.run_db(thd)

    def update_service(self, host: str, **values):
        def thd(conn):
            if "updated_at" not in values:
                values["updated_at"] = m.services.c.updated_at
            conn.execute(m.services.update().where(
                m.services.c.host == host).values(**values))
        self.run_db(thd)

    def add_aggregate(self, name: str, hosts, **metadata):
        def thd(conn):
            agg_id = conn.execute(m.aggregates.insert().values(
                uuid=str(uuidlib.uuid4()), name=name, metadata=metadata,
                created_at=self.now())).inserted_primary_key[0]
            for host in hosts:
                conn.execute(m.aggregate_hosts.insert().values(
                    aggregate_id=agg_id, host=host))
        self.run_db(thd)

    def add_group(self, policy: str, rules=None,
                  members: dict[str, int] | None = None) -> dict:
        """A server group with ``members`` = {host: count} existing live
        instances; returns the request spec's ``group``."""
        group_uuid = str(uuidlib.uuid4())

        def thd(conn):
            group_id = conn.execute(m.server_groups.insert().values(
                uuid=group_uuid, name="g", user_id="u", project_id="p",
                policy=policy, rules=rules or {},
                created_at=self.now())).inserted_primary_key[0]
            for host, count in (members or {}).items():
                for _ in range(count):
                    instance_uuid = self.add_instance(conn, host)
                    conn.execute(m.server_group_members.insert().values(
                        group_id=group_id, instance_uuid=instance_uuid))

        self.run_db(thd)
        return {"uuid": group_uuid, "policy": policy, "rules": rules or {}}

    def add_instance(self, conn, host: str | None, deleted=False) -> str:
        instance_uuid = str(uuidlib.uuid4())
        result = conn.execute(m.instances.insert().values(
            uuid=instance_uuid, user_id="u", project_id="p",
            vm_state="active", host=host, node=host, flavor={},
            addresses={}, security_groups=[], system_metadata={},
            request_spec={}, created_at=self.now()))
        if deleted:
            row_id = result.inserted_primary_key[0]
            conn.execute(m.instances.update().where(
                m.instances.c.id == row_id).values(deleted=row_id))
        return instance_uuid

    # --- calls ---------------------------------------------------------------

    def select(self, spec: dict | None = None, count: int = 1,
               return_alternates: bool = True, manager=None):
        uuids = [str(uuidlib.uuid4()) for _ in range(count)]
        spec = dict(spec or request_spec())
        spec["num_instances"] = count
        d = ensureDeferred((manager or self.manager).select_destinations(
            self.context, spec, uuids, return_alternates))
        return self.successResultOf(d)

    def chosen(self, spec=None, count=1, **kw) -> list[str]:
        """The chosen hosts only."""
        return [r[0]["host"] for r in self.select(spec, count, **kw)]

    def no_valid_host(self, spec=None, count=1, manager=None):
        from twisted_compute import exception
        uuids = [str(uuidlib.uuid4()) for _ in range(count)]
        spec = dict(spec or request_spec())
        d = ensureDeferred((manager or self.manager).select_destinations(
            self.context, spec, uuids))
        return self.failureResultOf(d, exception.NoValidHost).value
