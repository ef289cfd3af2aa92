"""The pre-built statements of a boot's hot calls take their values each
time: two calls with different values give different, correct results
(a value baked into a statement built once would stick to the next call).
"""

from __future__ import annotations

import datetime
import uuid

from tests.base import DBTestCase, make_conf, on_backends
from twisted_compute import exception
from twisted_compute.db import actions
from twisted_compute.db import flavors
from twisted_compute.db import images
from twisted_compute.db import instances
from twisted_compute.db import models as m
from twisted_compute.db import quotas
from twisted_compute.db import services


def _base(project: str, **extra):
    values = {
        "user_id": "u", "project_id": project, "vm_state": "building",
        "task_state": "scheduling", "memory_mb": 512, "vcpus": 1,
        "root_gb": 1, "flavor": {"flavorid": "1"}, "addresses": {},
        "security_groups": [], "system_metadata": {}, "request_spec": {},
        "image_ref": "img",
    }
    values.update(extra)
    return values


class PrebuiltStatementTests(DBTestCase):
    def setUp(self):
        super().setUp()
        self.conf = make_conf(self.state_path)

    def create(self, project="p", user="u", count=1, request_id="req-1",
               metadata=None, tags=(), **extra):
        uuids = [str(uuid.uuid4()) for _ in range(count)]
        return self.run_db(
            instances.create, self.conf, project_id=project, user_id=user,
            base=_base(project, user_id=user, **extra), min_count=count,
            max_count=count, metadata=metadata or {}, tags=list(tags),
            key_name=None, group_uuid=None, uuids=uuids, hostnames=str,
            names=lambda i: f"{project}-{i}",
            action={"request_id": request_id, "user_id": user,
                    "project_id": project})

    def test_create_writes_each_boots_own_values(self):
        [a] = self.create("p", metadata={"k": "a"}, tags=["ta"], vcpus=1)
        [b1, b2] = self.create("q", count=2, metadata={"k": "b"},
                               tags=["tb"], vcpus=2, request_id="req-2")
        self.assertEqual((a.project_id, a.vcpus, a.metadata, a.tags),
                         ("p", 1, {"k": "a"}, ["ta"]))
        for b in (b1, b2):
            got = self.run_db(instances.get, b.uuid)
            self.assertEqual((got.project_id, got.vcpus, got.metadata,
                              got.tags), ("q", 2, {"k": "b"}, ["tb"]))
        self.assertEqual([b1.launch_index, b2.launch_index], [0, 1])
        got = self.run_db(instances.get, a.uuid)
        self.assertEqual((got.metadata, got.tags), ({"k": "a"}, ["ta"]))
        self.assertEqual([x.request_id for x in self.run_db(
            actions.get_actions, b2.uuid)], ["req-2"])

    def test_guarded_update_takes_its_values_and_guards_each_time(self):
        [a, b] = self.create(count=2)
        self.run_db(instances.guarded_update, a.uuid,
                    {"task_state": "spawning", "host": "h1"},
                    expected_task_state=["scheduling"],
                    expected_vm_state=["building"], fetch=False)
        # same shape, other values: the uuid and the states are new
        self.run_db(instances.guarded_update, b.uuid,
                    {"task_state": "networking", "host": "h2"},
                    expected_task_state=["scheduling"],
                    expected_vm_state=["building"], fetch=False)
        got_a = self.run_db(instances.get, a.uuid)
        got_b = self.run_db(instances.get, b.uuid)
        self.assertEqual((got_a.task_state, got_a.host), ("spawning", "h1"))
        self.assertEqual((got_b.task_state, got_b.host), ("networking",
                                                          "h2"))
        # a's task state is no longer the expected one: refused
        self.failureResultOf(self.db.run(
            instances.guarded_update, a.uuid, {"task_state": "x"},
            expected_task_state=["scheduling"]),
            exception.UnexpectedTaskStateError)
        # the expected lists of the call count, not the first call's
        got = self.run_db(instances.guarded_update, a.uuid,
                          {"task_state": None},
                          expected_task_state=["spawning", "other"])
        self.assertIsNone(got.task_state)
        got = self.run_db(instances.guarded_update, a.uuid,
                          {"vm_state": "active"},
                          expected_task_state=[None])
        self.assertEqual(got.vm_state, "active")
        self.failureResultOf(self.db.run(
            instances.guarded_update, a.uuid, {"task_state": "y"},
            expected_vm_state=["building"]),
            exception.UnexpectedTaskStateError)
        # the expected host of the call counts
        self.failureResultOf(self.db.run(
            instances.guarded_update, b.uuid, {"task_state": "z"},
            expected_host="h1"), exception.UnexpectedTaskStateError)
        got = self.run_db(instances.guarded_update, b.uuid,
                          {"task_state": "z"}, expected_host="h2")
        self.assertEqual(got.task_state, "z")
        # place: only the instance asked for moves
        [c, d] = self.create(count=2)
        self.assertTrue(self.run_db(instances.place, c.uuid,
                                    {"host": "hc", "node": "nc"}))
        self.assertTrue(self.run_db(instances.place, d.uuid,
                                    {"host": "hd", "node": "nd"}))
        self.assertEqual(self.run_db(instances.build_states,
                                     [c.uuid, d.uuid, a.uuid]), {
            c.uuid: ("building", "scheduling", "hc"),
            d.uuid: ("building", "scheduling", "hd"),
            a.uuid: ("active", None, "h1")})
        self.assertEqual(self.run_db(instances.build_states, [d.uuid]),
                         {d.uuid: ("building", "scheduling", "hd")})

    def events(self, instance_uuid, request_id):
        return [(e.event, e.result, e.host) for e in sorted(
            self.run_db(actions.get_action, instance_uuid,
                        request_id).events, key=lambda e: e.id)]

    def test_action_events_go_to_their_own_action(self):
        [a] = self.create(request_id="ra")
        [b] = self.create(request_id="rb")
        self.run_db(actions.action_event_start, a.uuid, "ra", "e1", "h1")
        self.run_db(actions.action_event_start, b.uuid, "rb", "e2", "h2")
        self.run_db(actions.action_event_finish, a.uuid, "ra", "e1", "h1",
                    "Success")
        self.run_db(actions.action_event_finish, b.uuid, "rb", "e2", "h2",
                    "Error", "tb")
        self.assertEqual(self.events(a.uuid, "ra"),
                         [("e1", "Success", "h1")])
        self.assertEqual(self.events(b.uuid, "rb"), [("e2", "Error", "h2")])
        self.assertIsNone(self.run_db(actions.get_action, a.uuid,
                                      "ra").message)
        self.assertEqual(self.run_db(actions.get_action, b.uuid,
                                     "rb").message, "Error")
        # an unknown request: nothing recorded anywhere
        self.run_db(actions.action_event_start, a.uuid, "rb", "e3", "h")
        self.assertEqual(len(self.events(a.uuid, "ra")), 1)
        self.assertEqual(len(self.events(b.uuid, "rb")), 1)
        started = datetime.datetime(2026, 1, 1)
        self.run_db(actions.action_events_done, [a.uuid], "ra", "s1", "c1",
                    started, "Success")
        self.run_db(actions.action_events_done, [b.uuid], "rb", "s2", "c2",
                    started, "Error")
        self.assertEqual(self.events(a.uuid, "ra")[-1],
                         ("s1", "Success", "c1"))
        self.assertEqual(self.events(b.uuid, "rb")[-1], ("s2", "Error",
                                                         "c2"))

    def test_flavor_and_image_reads_take_their_values(self):
        self.run_db(flavors.create, {"flavorid": "f1", "name": "one",
                                     "memory_mb": 1, "vcpus": 1,
                                     "root_gb": 1})
        self.run_db(flavors.create, {"flavorid": "f2", "name": "two",
                                     "memory_mb": 2, "vcpus": 2,
                                     "root_gb": 1, "is_public": False},
                    ["p"])
        self.run_db(flavors.update_specs, "f1", {"k": "1"})
        self.run_db(flavors.update_specs, "f2", {"k": "2"})
        self.assertEqual(self.run_db(flavors.get_by_flavorid, "f1",
                                     "q").extra_specs, {"k": "1"})
        self.assertEqual(self.run_db(flavors.get_by_flavorid, "f2",
                                     "p").extra_specs, {"k": "2"})
        self.failureResultOf(self.db.run(flavors.get_by_flavorid, "f2",
                                         "q"), exception.FlavorNotFound)
        self.assertEqual(self.run_db(flavors.get_by_flavorid, "f2").name,
                         "two")
        for image_id, owner in (("i1", "p"), ("i2", "q")):
            self.run_db(images.create, {
                "id": image_id, "name": image_id, "status": "active",
                "visibility": "private", "owner": owner})
        self.assertEqual(self.run_db(images.get, "i1", "p").owner, "p")
        self.assertEqual(self.run_db(images.get, "i2", "q").owner, "q")
        self.failureResultOf(self.db.run(images.get, "i2", "p"),
                             exception.ImageNotFound)
        self.assertEqual(self.run_db(images.get, "i2").id, "i2")

    def test_quota_reads_take_their_values(self):
        self.run_db(quotas.set_limits, "p", {"instances": 5})
        self.run_db(quotas.set_limits, "p", {"instances": 3}, "u2")
        self.run_db(quotas.set_limits, "q", {"instances": 7})
        self.assertEqual(self.run_db(quotas.get_limits, self.conf, "p",
                                     "u2")["instances"], 3)
        self.assertEqual(self.run_db(quotas.get_limits, self.conf, "p",
                                     "u")["instances"], 5)
        self.assertEqual(self.run_db(quotas.get_limits, self.conf,
                                     "q")["instances"], 7)
        self.create("p", count=2, vcpus=2)
        self.create("p", user="u2", vcpus=1)
        self.create("q", vcpus=4)
        self.assertEqual(self.run_db(quotas.count_instances, "p"),
                         {"instances": 3, "cores": 5, "ram": 1536})
        self.assertEqual(self.run_db(quotas.count_instances, "p", "u2"),
                         {"instances": 1, "cores": 1, "ram": 512})
        self.assertEqual(self.run_db(quotas.count_instances, "q"),
                         {"instances": 1, "cores": 4, "ram": 512})

    def node(self, host, vcpus):
        return {"host": host, "hypervisor_hostname": host, "vcpus": vcpus,
                "memory_mb": 1024, "local_gb": 10, "vcpus_used": 0,
                "memory_mb_used": 0, "local_gb_used": 0, "running_vms": 0,
                "hypervisor_type": "fake", "hypervisor_version": 1,
                "cpu_info": "{}"}

    def test_heartbeats_and_node_updates_take_their_values(self):
        for host in ("h1", "h2"):
            self.run_db(services.heartbeat, host, "compute-agent", "compute")
        row = self.run_db(services.heartbeat, "h1", "compute-agent", "t1")
        self.assertEqual((row["host"], row["report_count"], row["topic"]),
                         ("h1", 2, "t1"))
        row = self.run_db(services.heartbeat, "h2", "compute-agent", "t2")
        self.assertEqual((row["host"], row["report_count"], row["topic"]),
                         ("h2", 2, "t2"))
        n1 = self.run_db(services.compute_node_update, self.node("h1", 4))
        n2 = self.run_db(services.compute_node_update, self.node("h2", 8))
        self.assertNotEqual(n1, n2)
        self.assertEqual(self.run_db(services.compute_node_update,
                                     self.node("h1", 16)), n1)
        self.assertEqual(self.run_db(services.compute_node_update,
                                     self.node("h2", 32)), n2)

        def vcpus(conn):
            cn = m.compute_nodes
            return dict(conn.execute(
                cn.select().with_only_columns(cn.c.host, cn.c.vcpus)).all())
        self.assertEqual(self.run_db(vcpus), {"h1": 16, "h2": 32})


on_backends(PrebuiltStatementTests, "postgresql", "mariadb",
            namespace=globals())
