"""A rolling upgrade: the conductor is upgraded first, the agents (and
the API) still speak the previous minor versions.

A new conductor behind a real RPCServer on the in-process bus (what
crosses is JSON) serves the calls of an older agent and an older API at
their versions, with their payload shapes; with ``[upgrade_levels]
compute = 1.0`` it sends builds in the form the older agent reads.  The
older agent is a stand-in that accepts exactly the 1.0 build message.
Then the end of the upgrade: the new clients against it, uncapped.
"""

from __future__ import annotations

from twisted.internet import defer
from twisted.logger import Logger

from tests.conductor.test_manager import FakeScheduler, hosts
from tests.api.infra_rows import insert_instance
from tests.base import DBTestCase, make_conf
from twisted_compute.compute.rpcapi import ComputeAPIClient
from twisted_compute.conductor import rpcapi as conductor_rpcapi
from twisted_compute.conductor.manager import ConductorManager
from twisted_compute.context import RequestContext
from twisted_compute.db import actions as actions_db
from twisted_compute.db import instances as instances_db
from twisted_compute.db import models as m
from twisted_compute.objects.boot_request import BootRequest
from twisted_compute.objects.instance import Instance
from twisted_compute.objects.request_spec import RequestSpec
from twisted_compute.objects.selection import Selection
from twisted_compute.rpc import RPCClient, RPCServer
from twisted_compute.rpc.local import LocalTransport


class OldAgent:
    """The compute endpoint of an agent at compute RPC 1.0: its build
    method takes the 1.0 arguments and nothing else."""

    RPC_API_VERSION = "1.0"

    def __init__(self):
        self.builds = []

    def build_and_run_instance(self, context, instance, request_spec,
                               filter_properties, alternates, image,
                               admin_password, injected_files,
                               requested_networks):
        self.builds.append(dict(
            instance=instance, request_spec=request_spec,
            filter_properties=filter_properties, alternates=alternates,
            image=image, admin_password=admin_password,
            injected_files=injected_files,
            requested_networks=requested_networks))


class NewAgent:
    """The compute endpoint of an agent at compute RPC 1.1."""

    RPC_API_VERSION = "1.1"

    def __init__(self):
        self.builds = []

    def build_and_run_instance(self, context, instance, image,
                               requested_networks, alternates, attempt,
                               admin_password, injected_files):
        self.builds.append(dict(
            instance=instance, image=image,
            requested_networks=requested_networks, alternates=alternates,
            attempt=attempt, admin_password=admin_password,
            injected_files=injected_files))


class RollingUpgradeTests(DBTestCase):
    def setUp(self):
        super().setUp()
        self.conf = make_conf(self.state_path)
        self.ctx = RequestContext("u", "p", ("member",),
                                  request_id="req-build")
        self.transport = LocalTransport(self.reactor, default_timeout=60)
        self.successResultOf(self.transport.start())
        self.scheduler = FakeScheduler(
            lambda uuids: [hosts("old1", "old2") for _ in uuids])
        self.agents = {}
        for host in ("old1", "old2"):
            self.agents[host] = OldAgent()
            self.serve("compute", host, self.agents[host])
        for host in ("new1", "new2"):
            self.agents[host] = NewAgent()
            self.serve("compute", host, self.agents[host])

    def serve(self, topic, host, endpoint):
        server = RPCServer(self.transport, topic, host, [endpoint])
        server.log = Logger(observer=lambda event: None)
        self.successResultOf(defer.ensureDeferred(server.start()))

    def start_conductor(self, compute_cap: str | None):
        compute = ComputeAPIClient.for_transport(self.transport,
                                                 compute_cap)
        self.conductor = ConductorManager(
            self.conf, self.db, self.scheduler, compute, self.reactor,
            host="cond1")
        self.conductor.log = Logger(observer=lambda event: None)
        self.serve(conductor_rpcapi.TOPIC, "cond1", self.conductor)

    def settle(self, d=None):
        for _ in range(20):
            self.reactor.advance(0)
        return d

    def old_client(self, version: str) -> RPCClient:
        """The conductor client of an older agent or API: it sends
        ``version`` (its own newest)."""
        return RPCClient(self.transport, conductor_rpcapi.TOPIC,
                         version=version)

    def new_instance(self):
        def thd(conn):
            row = insert_instance(conn)
            conn.execute(m.instances.update().where(
                m.instances.c.uuid == row["uuid"]).values(
                vm_state="building", task_state="scheduling"))
            actions_db.record_action(
                conn, row["uuid"], "create", request_id="req-build",
                user_id="u", project_id="p")
            return row["uuid"]
        return self.run_db(instances_db.get, self.run_db(thd))

    def old_api_boot(self, instance):
        """``schedule_and_build_instances`` as a 1.1 API casts it: the
        instance dicts, and the secrets inside the request spec."""
        self.settle(self.old_client("1.0").cast(
            self.ctx, "schedule_and_build_instances",
            build_requests=[instance.to_dict()],
            request_spec={"image": {"id": "img", "checksum": "c"},
                          "flavor": {"vcpus": 1}, "num_instances": 1,
                          "admin_password": "pw",
                          "injected_files": [{"path": "/f",
                                              "contents": "eA=="}],
                          "requested_networks": "auto"}))

    def test_old_agents_are_sent_1_0_builds_and_served_at_their_versions(
            self):
        self.start_conductor(compute_cap="1.0")
        instance = self.new_instance()
        self.old_api_boot(instance)
        [build] = self.agents["old1"].builds
        self.assertEqual(build["instance"]["uuid"], instance.uuid)
        self.assertEqual(build["image"], {"id": "img", "checksum": "c"})
        self.assertEqual(build["admin_password"], "pw")
        self.assertEqual(build["injected_files"],
                         [{"path": "/f", "contents": "eA=="}])
        self.assertEqual(build["requested_networks"], "auto")
        self.assertEqual(build["request_spec"]["_attempt"], 1)
        self.assertNotIn("admin_password", build["request_spec"])
        self.assertEqual(build["filter_properties"],
                         {"retry": {"num_attempts": 1}})
        self.assertEqual([a["host"] for a in build["alternates"]],
                         ["old2"])

        # The old agent takes the instance (instance_update at 1.1, the
        # event in the same call), then reads its host's instances (1.0).
        agent = self.old_client("1.1")
        self.assertIsNone(self.successResultOf(self.settle(agent.call(
            self.ctx, "instance_update", instance_uuid=instance.uuid,
            updates={"task_state": "spawning"},
            expected_task_state=["scheduling"], expected_host="old1",
            fetch=False, event={"request_id": "req-build",
                                "event": "compute_build_and_run_instance",
                                "host": "old1"}))))
        on_host = self.successResultOf(self.settle(
            self.old_client("1.0").call(self.ctx, "instances_on_host",
                                        host="old1")))
        self.assertEqual([i["uuid"] for i in on_host], [instance.uuid])

        # Its spawn fails: build_failed in the 1.0 form (the request spec
        # it was given, the alternates as they came).
        self.settle(self.old_client("1.0").cast(
            self.ctx, "build_failed", instance=build["instance"],
            request_spec=build["request_spec"],
            alternates=build["alternates"], reason="spawn failed"))
        [again] = self.agents["old2"].builds
        self.assertEqual(again["request_spec"]["_attempt"], 2)
        self.assertEqual(again["filter_properties"],
                         {"retry": {"num_attempts": 2}})
        self.assertEqual(again["image"], {"id": "img", "checksum": "c"})
        self.assertEqual(again["requested_networks"], "auto")
        self.assertEqual(again["alternates"], [])
        self.assertEqual(self.run_db(instances_db.get, instance.uuid).host,
                         "old2")

        # old2 fails too: no alternate left, the instance is in ERROR.
        self.settle(self.old_client("1.0").cast(
            self.ctx, "build_failed", instance=again["instance"],
            request_spec=again["request_spec"], alternates=[],
            reason="spawn failed again"))
        stored = self.run_db(instances_db.get, instance.uuid)
        self.assertEqual(stored.vm_state, "error")
        self.assertIn("spawn failed again", stored.fault.details)

    def test_without_the_cap_an_old_agent_gets_nothing_it_can_read(self):
        # What the cap is for: the 1.1 build is refused by a 1.0 agent.
        self.start_conductor(compute_cap="")
        instance = self.new_instance()
        self.old_api_boot(instance)
        self.assertEqual(self.agents["old1"].builds, [])

    def test_upgraded_api_and_agents(self):
        # Once everything runs the new code: the API's and the agents'
        # clients against the conductor, uncapped.
        self.scheduler.answer = lambda uuids: [hosts("new1", "new2")
                                               for _ in uuids]
        self.start_conductor(compute_cap="auto")
        instance = self.new_instance()
        client = conductor_rpcapi.ConductorAPIClient(self.transport)
        spec = RequestSpec(flavor={"vcpus": 1}, image={"id": "img"},
                           num_instances=1,
                           instance_uuids=(instance.uuid,),
                           requested_networks="auto")
        self.settle(client.schedule_and_build_instances(
            self.ctx, BootRequest((instance,), spec, admin_password="pw")))
        [build] = self.agents["new1"].builds
        self.assertEqual((build["instance"]["uuid"], build["image"],
                          build["requested_networks"], build["attempt"],
                          build["admin_password"]),
                         (instance.uuid, {"id": "img"}, "auto", 1, "pw"))
        self.assertNotIn("request_spec", build["instance"])
        self.assertEqual([a["host"] for a in build["alternates"]],
                         ["new2"])

        written = self.successResultOf(self.settle(client.instance_update(
            self.ctx, instance.uuid, {"task_state": "spawning"},
            expected_task_state=["scheduling"], expected_host="new1")))
        self.assertIsInstance(written, Instance)
        self.assertEqual(written.task_state, "spawning")
        [on_host] = self.successResultOf(self.settle(
            client.instances_on_host(self.ctx, "new1")))
        self.assertEqual(on_host.uuid, instance.uuid)

        self.settle(client.build_failed(
            self.ctx, on_host,
            tuple(Selection.from_dict(a) for a in build["alternates"]),
            "spawn failed", attempt=1, image=build["image"],
            requested_networks=build["requested_networks"]))
        [again] = self.agents["new2"].builds
        self.assertEqual((again["attempt"], again["image"],
                          again["requested_networks"], again["alternates"]),
                         (2, {"id": "img"}, "auto", []))
