"""A whole deployment in one test: the compute API layer, a conductor, a
scheduler and three fake agents on the in-process bus, over a real
SQLite database, with a Clock."""

from __future__ import annotations

import uuid as uuidlib

from twisted.internet import defer
from twisted.logger import Logger

from tests.scheduler.base import SchedulerTestCase
from twisted_compute.compute.api import ComputeAPI
from twisted_compute.compute.manager import ComputeManager
from twisted_compute.compute.rpcapi import ComputeAPIClient
from twisted_compute.conductor.api import ComputeTaskAPI
from twisted_compute.conductor.manager import ConductorManager
from twisted_compute.conductor.rpcapi import ConductorAPIClient
from twisted_compute.context import RequestContext
from twisted_compute.db import flavors as flavors_db
from twisted_compute.db import instances as instances_db
from twisted_compute.db import migrations as migrations_db
from twisted_compute.db import models as m
from twisted_compute.objects.migration import usage_by_host
from twisted_compute.rpc import RPCClient, RPCServer
from twisted_compute.rpc.local import LocalTransport
from twisted_compute.scheduler.rpcapi import SchedulerAPIClient
from twisted_compute.virt.fake import FakeDriver

import os as _os
from twisted.logger import formatEvent as _fmt
_quiet = Logger(observer=(lambda event: print(_fmt(event), event.get("log_failure", ""))) if _os.environ.get("MOVE_DEBUG") else (lambda event: None))

HOSTS = ("h1", "h2", "h3")
FLAVORS = {
    # flavorid: (vcpus, memory_mb, root_gb)
    "small": (1, 512, 2),
    "big": (2, 1024, 4),
    "tinydisk": (2, 1024, 1),
    "huge": (1, 512, 500),
}


class MoveStackTestCase(SchedulerTestCase):
    overrides = {"DEFAULT": {"move_step_timeout": 30}}

    def setUp(self):
        super().setUp()
        self.manager.log = _quiet
        self.ctx = RequestContext("u", "p", ("member", "admin"),
                                  request_id="req-move", is_admin=True)
        self.transport = LocalTransport(self.clock, default_timeout=60)
        self.successResultOf(self.transport.start())
        self.serve("scheduler", "sched", self.manager)
        self.conductor = ConductorManager(
            self.conf, self.db, SchedulerAPIClient(
                RPCClient(self.transport, "scheduler", timeout=60),
                self.conf),
            ComputeAPIClient.for_transport(self.transport), self.clock,
            host="cond")
        self.conductor.log = _quiet
        self.serve("conductor", "cond", self.conductor)
        self.agents: dict[str, ComputeManager] = {}
        self.drivers: dict[str, FakeDriver] = {}
        for host in HOSTS:
            self.add_host(host, vcpus=8, memory_mb=8192, local_gb=100)
            driver = FakeDriver(self.conf, self.clock, host=host, vcpus=8,
                                memory_mb=8192, local_gb=100)
            agent = ComputeManager(self.conf, host, driver,
                                   ConductorAPIClient(self.transport,
                                                      timeout=60),
                                   self.clock)
            agent.log = _quiet
            self.drivers[host], self.agents[host] = driver, agent
            self.serve("compute", host, agent)
        self.flavors = {}
        for flavorid, (vcpus, memory_mb, root_gb) in FLAVORS.items():
            self.flavors[flavorid] = self.run_db(flavors_db.create, {
                "flavorid": flavorid, "name": flavorid, "vcpus": vcpus,
                "memory_mb": memory_mb, "root_gb": root_gb,
                "ephemeral_gb": 0, "swap": 0, "rxtx_factor": 1.0,
                "is_public": True, "disabled": False})
        self.api = ComputeAPI(self.conf, self.db, ComputeTaskAPI(
            self.conf, ConductorAPIClient(self.transport, timeout=60)),
            compute_rpcapi=ComputeAPIClient.for_transport(self.transport),
            clock=self.clock)

    def serve(self, topic, host, endpoint):
        server = RPCServer(self.transport, topic, host, [endpoint])
        server.log = _quiet
        self.successResultOf(defer.ensureDeferred(server.start()))

    def settle(self, seconds: float = 0.0, steps: int = 60):
        """Let messages flow (and ``seconds`` pass, in small steps)."""
        tick = seconds / steps if seconds else 0
        for _ in range(steps):
            self.clock.advance(tick)

    def defer(self, coroutine):
        return defer.ensureDeferred(coroutine)

    def call(self, coroutine, seconds: float = 0.0):
        """Run an API call, let the move it starts run (``seconds`` of
        clock too), return the call's result."""
        self.heartbeat()
        d = defer.ensureDeferred(coroutine)
        self.settle(seconds)
        return self.successResultOf(d)

    def boot(self, host="h1", flavorid="small", vm_state="active"):
        """An instance running on ``host`` (a row and a guest)."""
        flavor = self.flavors[flavorid]

        def thd(conn):
            uuid = str(uuidlib.uuid4())
            conn.execute(m.instances.insert().values(
                uuid=uuid, user_id="u", project_id="p", display_name="vm",
                host=host, node=host, vm_state=vm_state, task_state=None,
                power_state=1 if vm_state == "active" else 4,
                vcpus=flavor.vcpus, memory_mb=flavor.memory_mb,
                root_gb=flavor.root_gb, ephemeral_gb=0,
                instance_type_id=flavor.id, flavor=flavor.snapshot(),
                addresses={}, security_groups=[], system_metadata={},
                request_spec={"image": {"id": "img", "properties": {}},
                              "project_id": "p", "user_id": "u"}))
            return uuid
        uuid = self.run_db(thd)
        instance = self.get(uuid)
        self.successResultOf(self.drivers[host].spawn(
            self.ctx, instance, {}, [], None, [], None))
        if vm_state == "stopped":
            self.successResultOf(self.drivers[host].power_off(instance))
        self.refresh()
        return uuid

    def get(self, uuid):
        return self.run_db(instances_db.get, uuid)

    def migration(self, uuid):
        return self.run_db(migrations_db.for_instance, uuid)[-1]

    def heartbeat(self):
        """Every service was seen up just now (by the scheduler's clock)."""
        now = self.now()
        self.run_db(lambda conn: conn.execute(m.services.update().values(
            last_seen_up=now, updated_at=now)))

    def refresh(self):
        """Every agent's periodic resource update."""
        self.heartbeat()
        for agent in self.agents.values():
            d = agent.update_available_resource(self.ctx)
            self.settle()
            self.successResultOf(d)

    def expected_usage(self) -> dict[str, tuple[int, int, int]]:
        placed = usage_by_host(self.run_db(migrations_db.all_placed))
        return {host: tuple(sum(v[i] for v in placed.get(host, {}).values())
                            for i in range(3)) for host in HOSTS}

    def tracked_usage(self) -> dict[str, tuple[int, int, int]]:
        result = {}
        for host, agent in self.agents.items():
            used = agent.tracker.usage()
            result[host] = (used["vcpus_used"], used["memory_mb_used"],
                            used["local_gb_used"])
        return result

    def assertUsageConsistent(self, label=""):
        """Each host's tracked usage is the sum of the flavors the
        database places on it, before and after the periodic refresh."""
        expected = self.expected_usage()
        self.assertEqual(self.tracked_usage(), expected,
                         f"{label}: agents' usage before refresh")
        self.refresh()
        self.assertEqual(self.tracked_usage(), expected,
                         f"{label}: agents' usage after refresh")
