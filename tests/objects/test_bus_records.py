"""The records that cross the bus: round trips through their bus form
(and JSON), the older forms they decode, what they refuse."""

from __future__ import annotations

import datetime
import json

import attrs
from twisted.trial.unittest import SynchronousTestCase

from twisted_compute.objects.boot_request import BootRequest
from twisted_compute.objects.instance import Instance
from twisted_compute.objects.migration import (
    MIGRATION_TYPES, STATUSES, Migration, MigrationContext)
from twisted_compute.objects.request_spec import RequestSpec
from twisted_compute.objects.selection import Selection


def over_the_bus(value):
    """What a bus form looks like on the other side (JSON)."""
    return json.loads(json.dumps(value))


SPEC = RequestSpec(
    flavor={"flavorid": "1", "vcpus": 2, "memory_mb": 512,
            "extra_specs": {"hw:cpu_policy": "shared"}},
    image={"id": "img", "checksum": "c", "properties": {"os": "linux"}},
    num_instances=2, instance_uuids=("u1", "u2"),
    availability_zone="az1:host1", force_hosts=["host1"],
    requested_destination={"host": "h", "node": None},
    requested_networks=[{"uuid": "net"}], security_groups=("default",),
    scheduler_hints={"group": "g"}, config_drive=True,
    group={"uuid": "g", "policy": "anti-affinity", "rules": {}},
    ignore_hosts=("bad",), project_id="p", user_id="u")


class RequestSpecTests(SynchronousTestCase):
    def test_round_trip(self):
        self.assertEqual(RequestSpec.from_dict(over_the_bus(SPEC.to_dict())),
                         SPEC)

    def test_is_frozen(self):
        with self.assertRaises(attrs.exceptions.FrozenInstanceError):
            SPEC.num_instances = 3

    def test_stored_spec_and_unknown_keys(self):
        # The spec stored with an instance has no count nor uuids; keys
        # of older forms (secrets, the attempt) are not part of it.
        spec = RequestSpec.from_dict({"flavor": {"vcpus": 1},
                                      "admin_password": "pw",
                                      "_attempt": 2})
        self.assertEqual((spec.num_instances, spec.instance_uuids),
                         (1, ()))
        self.assertNotIn("admin_password", spec.to_dict())
        self.assertNotIn("_attempt", spec.to_dict())

    def test_bus_form_is_what_the_scheduler_reads(self):
        from twisted_compute.scheduler.host_state import RequestSpec as View
        view = View.from_dict(SPEC.to_dict())
        self.assertEqual((view.vcpus, view.memory_mb, view.image_id,
                          view.availability_zone, view.force_hosts,
                          view.group_policy, view.ignore_hosts),
                         (2, 512, "img", "az1", ["host1"], "anti-affinity",
                          ["bad"]))


class SelectionTests(SynchronousTestCase):
    def test_round_trip_with_alternates(self):
        selection = Selection("a", "a-node", "cn-a", {"vcpu": 16.0},
                              alternates=(Selection("b", "b-node"),
                                          Selection("c", "c-node")))
        self.assertEqual(
            Selection.from_dict(over_the_bus(selection.to_dict())),
            selection)

    def test_from_the_scheduler_answer(self):
        answer = [{"host": "a", "nodename": "a-node",
                   "compute_node_uuid": "cn-a", "limits": {"vcpu": 4.0}},
                  {"host": "b", "nodename": "b-node"}]
        selection = Selection.from_hosts(answer)
        self.assertEqual((selection.host, selection.node,
                          selection.compute_node_uuid, selection.limits),
                         ("a", "a-node", "cn-a", {"vcpu": 4.0}))
        self.assertEqual(selection.alternates, (Selection("b", "b-node"),))
        # The bus form of one selection is the scheduler's host dict: a
        # 1.0 agent sends alternates back in it.
        self.assertEqual(selection.alternates[0].to_dict(),
                         {"host": "b", "nodename": "b-node",
                          "compute_node_uuid": None, "limits": {}})

    def test_a_host_alone(self):
        self.assertEqual(Selection.from_dict({"host": "h"}),
                         Selection("h"))
        self.assertEqual(Selection.from_dict({"host": "h", "node": "n"}),
                         Selection("h", "n"))


def instance(**kw):
    values = dict(id=1, uuid="u1", user_id="u", project_id="p",
                  vm_state="building", task_state="scheduling",
                  flavor={"flavorid": "1"},
                  request_spec={"flavor": {"flavorid": "1"}},
                  created_at=datetime.datetime(2026, 1, 2, 3, 4, 5))
    values.update(kw)
    return Instance(**values)


class BootRequestTests(SynchronousTestCase):
    def test_round_trip_sends_the_spec_once(self):
        boot = BootRequest((instance(), instance(id=2, uuid="u2")), SPEC,
                           admin_password="pw",
                           injected_files=({"path": "/f",
                                            "contents": "eA=="},))
        wire = over_the_bus(boot.to_dict())
        self.assertNotIn("request_spec", wire["instances"][0])
        decoded = BootRequest.from_dict(wire)
        self.assertEqual(decoded.request_spec, SPEC)
        self.assertEqual((decoded.admin_password, decoded.injected_files),
                         ("pw", ({"path": "/f", "contents": "eA=="},)))
        self.assertEqual(decoded.instances,
                         tuple(attrs.evolve(i, request_spec={})
                               for i in boot.instances))
        self.assertEqual(decoded.instances[0].created_at,
                         datetime.datetime(2026, 1, 2, 3, 4, 5))

    def test_legacy_form_does_not_change_its_argument(self):
        spec = {"flavor": {"vcpus": 1}, "admin_password": "pw",
                "injected_files": [{"path": "/f", "contents": ""}]}
        before = json.dumps(spec, sort_keys=True)
        boot = BootRequest.from_legacy([instance().to_dict()], spec)
        self.assertEqual(json.dumps(spec, sort_keys=True), before)
        self.assertEqual(boot.admin_password, "pw")
        self.assertEqual(boot.injected_files,
                         ({"path": "/f", "contents": ""},))
        self.assertEqual(boot.request_spec.flavor, {"vcpus": 1})
        self.assertEqual(boot.instances[0].uuid, "u1")


class MigrationTests(SynchronousTestCase):
    def migration(self, **kw):
        values = dict(
            id=7, uuid="m1", instance_uuid="u1", status="migrating",
            migration_type="resize", source_compute="a", source_node="a-n",
            dest_compute="b", dest_node="b-n", dest_host="10.0.0.2",
            old_instance_type_id=1, new_instance_type_id=2,
            memory_total=100, memory_processed=50, memory_remaining=50,
            disk_total=10, disk_processed=1, disk_remaining=9,
            user_id="u", project_id="p",
            created_at=datetime.datetime(2026, 1, 1, 0, 0, 0),
            updated_at=datetime.datetime(2026, 1, 1, 0, 1, 0))
        values.update(kw)
        return Migration(**values)

    def test_round_trip(self):
        migration = self.migration()
        self.assertEqual(
            Migration.from_dict(over_the_bus(migration.to_dict())),
            migration)
        self.assertFalse(migration.cross_cell_move)
        self.assertFalse(migration.hidden)
        self.assertTrue(migration.is_resize)

    def test_nova_statuses_and_types(self):
        for status in STATUSES:
            self.assertEqual(self.migration(status=status).status, status)
        for kind in MIGRATION_TYPES:
            self.assertEqual(self.migration(migration_type=kind)
                             .migration_type, kind)
        self.assertRaises(ValueError, self.migration, status="moving")
        self.assertRaises(ValueError, self.migration,
                          migration_type="teleport")

    def test_context_round_trip(self):
        context = MigrationContext(
            instance_uuid="u1", migration_id=7,
            old_flavor={"flavorid": "1"}, new_flavor={"flavorid": "2"},
            source_compute="a", source_node="a-n", dest_compute="b",
            dest_node="b-n")
        self.assertEqual(
            MigrationContext.from_dict(over_the_bus(context.to_dict())),
            context)
