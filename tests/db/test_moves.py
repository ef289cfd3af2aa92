"""The migrations table and the instance's migration context."""

from __future__ import annotations

import uuid

from tests.base import DBTestCase, make_conf
from tests.db.test_instances import _values
from twisted_compute import exception
from twisted_compute.db import instances as idb
from twisted_compute.db import migrations as db
from twisted_compute.objects.migration import usage_by_host

OLD = {"id": 1, "flavorid": "1", "vcpus": 1, "memory_mb": 512,
       "root_gb": 1, "ephemeral_gb": 0}
NEW = {"id": 2, "flavorid": "2", "vcpus": 2, "memory_mb": 1024,
       "root_gb": 2, "ephemeral_gb": 0}


class MigrationsTableTests(DBTestCase):
    def setUp(self):
        super().setUp()
        self.conf = make_conf(self.state_path)
        [self.instance] = self.run_db(
            idb.create, self.conf, project_id="p", user_id="u",
            base=_values(vm_state="active", task_state=None, host="a"),
            min_count=1, max_count=1, metadata={}, tags=[], key_name=None,
            group_uuid=None, uuids=[str(uuid.uuid4())],
            hostnames=lambda i: "s", names=lambda i: "s",
            action={"request_id": "r", "user_id": "u", "project_id": "p"})

    def start(self):
        return self.run_db(
            db.start, self.instance.uuid, migration_type="resize",
            source_compute="a", source_node="a", dest_compute="b",
            dest_node="b", old_flavor=OLD, new_flavor=NEW, user_id="u",
            project_id="p",
            instance_updates={"task_state": "resize_prep"})

    def test_start_sets_the_context_and_the_usage_moves(self):
        migration = self.start()
        self.assertEqual(migration.status, "pre-migrating")
        self.assertTrue(migration.is_active)
        got = self.run_db(idb.get, self.instance.uuid)
        self.assertEqual(got.task_state, "resize_prep")
        self.assertEqual(got.migration_context["new_flavor"], NEW)
        self.assertEqual(usage_by_host([got]), {
            "a": {got.uuid: (1, 512, 1)},
            "b": {"move:" + got.uuid: (2, 1024, 2)}})
        # The destination sees the moving instance.
        self.assertEqual([i.uuid for i in self.run_db(idb.on_host, "b")],
                         [got.uuid])
        # Only one move at a time.
        self.failureResultOf(self.db.run(
            db.start, self.instance.uuid, migration_type="migration",
            source_compute="a", source_node="a", dest_compute="c",
            dest_node="c", old_flavor=OLD, new_flavor=OLD, user_id="u",
            project_id="p"), exception.MigrationPreCheckError)

    def test_finish_clears_the_context_atomically(self):
        migration = self.start()
        self.failureResultOf(self.db.run(
            db.set_status, migration.id, "confirmed",
            {"task_state": None}, True, ["resize_finish"]),
            exception.UnexpectedTaskStateError)
        self.assertEqual(self.run_db(db.get, migration.id).status,
                         "pre-migrating")
        done = self.run_db(db.set_status, migration.id, "error",
                           {"task_state": None}, True, ["resize_prep"])
        self.assertEqual(done.status, "error")
        got = self.run_db(idb.get, self.instance.uuid)
        self.assertIsNone(got.migration_context)
        self.assertEqual(usage_by_host([got]), {"a": {got.uuid: (1, 512, 1)}})
        self.assertEqual(self.run_db(idb.on_host, "b"), [])

    def test_list_filters_and_pages(self):
        first = self.start()
        self.run_db(db.set_status, first.id, "confirmed", {}, True)
        second = self.start()
        listed = self.run_db(db.get_all, {})
        self.assertEqual([m.id for m in listed], [second.id, first.id])
        self.assertEqual([m.id for m in self.run_db(
            db.get_all, {"status": "confirmed"})], [first.id])
        self.assertEqual([m.id for m in self.run_db(
            db.get_all, {"host": "b"}, 1, second.uuid)], [first.id])
        self.assertEqual(self.run_db(db.get_all, {"host": "zz"}), [])
        self.failureResultOf(self.db.run(db.get, 999),
                             exception.MigrationNotFound)
