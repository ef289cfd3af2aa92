"""The move actions' API checks, and ``/os-migrations`` and
``/servers/{id}/migrations`` per microversion."""

from __future__ import annotations

import datetime

from tests.api.test_servers_base import ServersTestCase, random_uuid
from twisted_compute.db import migrations as migrations_db
from twisted_compute.db import models as m


class MoveActionTests(ServersTestCase):
    def active_server(self, token="user:project"):
        server_id = self.create_server(token=token)
        self.set_state(server_id, vm_state="active", task_state=None,
                       host="compute1", power_state=1)
        return server_id

    def test_resize_checks(self):
        server_id = self.active_server()
        self.assertFault(self.action(server_id, {"resize": {
            "flavorRef": "1"}}), 400, "must change flavor")
        self.assertFault(self.action(server_id, {"resize": {
            "flavorRef": "99"}}), 400, "Unable to find flavor")
        self.assertFault(self.action(server_id, {"resize": {}}), 400,
                         "flavorRef")
        # Without a conductor, the move is refused and nothing changes.
        self.assertFault(self.action(server_id, {"resize": {
            "flavorRef": "2"}}), 501)
        self.assertIsNone(self.row(server_id).task_state)
        self.assertFault(self.action(server_id, {"confirmResize": None}),
                         409, "vm_state active")
        self.assertFault(self.action(server_id, {"revertResize": None}),
                         409)
        self.set_state(server_id, vm_state="building")
        self.assertFault(self.action(server_id, {"resize": {
            "flavorRef": "2"}}), 409)

    def test_resize_quota_counts_the_growth(self):
        casts = []
        self.services.compute_api.compute_task_api.migrate_server = (
            lambda context, uuid, **kwargs: casts.append((uuid, kwargs)))
        server_id = self.active_server()
        self.put("/v2.1/os-quota-sets/project", {"quota_set": {
            "ram": 1024, "force": True}}, token="admin:admin")
        self.assertFault(self.action(server_id, {"resize": {
            "flavorRef": "2"}}), 403, "ram")
        self.assertEqual(casts, [])
        self.put("/v2.1/os-quota-sets/project", {"quota_set": {
            "ram": 4096, "force": True}}, token="admin:admin")
        response = self.action(server_id, {"resize": {"flavorRef": "2"}})
        self.assertEqual(response.code, 202, response)
        self.assertEqual(casts[0][1]["flavor"]["flavorid"], "2")
        self.assertEqual(self.row(server_id).task_state, "resize_prep")
        self.assertIn("resize", self.actions(server_id))

    def test_migrate_is_admin_and_host_from_2_56(self):
        server_id = self.active_server()
        self.assertFault(self.action(server_id, {"migrate": None}), 403)
        self.assertFault(self.action(server_id, {"migrate": {
            "host": "h2"}}, token="admin:admin", version="2.55"), 400)
        # Without a conductor: 501 at 2.56 too.
        self.assertFault(self.action(server_id, {"migrate": {
            "host": "h2"}}, token="admin:admin", version="2.56"), 501)

    def test_live_migrate_body_per_microversion(self):
        casts = []
        self.services.compute_api.compute_task_api.live_migrate_instance = (
            lambda context, uuid, **kwargs: casts.append((uuid, kwargs)))
        server_id = self.active_server()

        def live(body, version):
            return self.action(server_id, {"os-migrateLive": body},
                               token="admin:admin", version=version)
        self.assertFault(self.action(server_id, {"os-migrateLive": {
            "block_migration": "auto", "host": None}}), 403)
        self.assertFault(live({"block_migration": "auto", "host": None},
                              "2.24"), 400, "block_migration")
        self.assertFault(live({"block_migration": "auto", "host": "h2",
                               "force": True}, "2.68"), 400, "force")
        self.assertFault(live({"block_migration": False, "host": None,
                               "disk_over_commit": False}, "2.25"), 400)
        response = live({"block_migration": "auto", "host": "h2",
                         "force": True}, "2.30")
        self.assertEqual(response.code, 202, response)
        self.assertEqual(casts, [(server_id, {
            "host": "h2", "block_migration": False, "force": True})])
        self.assertEqual(self.row(server_id).task_state, "migrating")
        self.assertEqual(self.show(server_id)["status"], "MIGRATING")
        self.assertIn("live-migration", self.actions(server_id))

    def test_resized_server_shows_verify_resize_and_new_flavor(self):
        server_id = self.active_server()
        flavor = self.run_db(lambda conn: conn.execute(
            m.flavors.select().where(m.flavors.c.flavorid == "2")).first())
        self.set_state(server_id, vm_state="resized",
                       flavor={"flavorid": "2", "name": "m1.small",
                               "memory_mb": flavor.memory_mb,
                               "vcpus": flavor.vcpus, "root_gb": 1,
                               "ephemeral_gb": 0, "swap": 0,
                               "extra_specs": {}})
        server = self.show(server_id, version="2.47")
        self.assertEqual(server["status"], "VERIFY_RESIZE")
        self.assertEqual(server["flavor"]["original_name"], "m1.small")


class MigrationsListTests(ServersTestCase):
    def setUp(self):
        super().setUp()
        self.server_id = self.create_server()
        self.set_state(self.server_id, vm_state="active", host="h1")
        self.rows = []
        for kind, status in (("resize", "confirmed"),
                             ("migration", "finished"),
                             ("live-migration", "running")):
            migration = self.run_db(
                migrations_db.start, self.server_id, migration_type=kind,
                source_compute="h1", source_node="h1", dest_compute="h2",
                dest_node="h2", old_flavor={"id": 1}, new_flavor={"id": 2},
                user_id="user", project_id="project", status="done")
            self.rows.append(migration)
        for migration, status in zip(self.rows, ("confirmed", "finished",
                                                 "running")):
            self.run_db(lambda conn: conn.execute(
                m.migrations.update().where(
                    m.migrations.c.id == migration.id).values(
                    status=status)))
        self.run_db(lambda conn: conn.execute(
            m.instances.update().values(migration_context=None)))
        self.rows = [self.run_db(migrations_db.get, r.id) for r in self.rows]

    def test_list_per_microversion(self):
        old = self.get("/v2.1/os-migrations", token="admin:admin").json
        # Before 2.23 live migrations are not listed, nor their type.
        self.assertEqual(len(old["migrations"]), 2)
        self.assertNotIn("migration_type", old["migrations"][0])
        self.assertEqual(old["migrations"][0]["instance_uuid"],
                         self.server_id)
        v23 = self.get("/v2.1/os-migrations", token="admin:admin",
                       version="2.23").json["migrations"]
        self.assertEqual(len(v23), 3)
        live = [x for x in v23 if x["migration_type"] == "live-migration"]
        self.assertIn("links", live[0])
        self.assertNotIn("uuid", v23[0])
        v80 = self.get("/v2.1/os-migrations?limit=2", token="admin:admin",
                       version="2.80").json
        self.assertEqual([x["uuid"] for x in v80["migrations"]],
                         [self.rows[2].uuid, self.rows[1].uuid])
        self.assertEqual(v80["migrations"][0]["user_id"], "user")
        self.assertIn("marker=" + self.rows[1].uuid,
                      v80["migrations_links"][0]["href"])
        rest = self.get(f"/v2.1/os-migrations?marker={self.rows[1].uuid}",
                        token="admin:admin", version="2.59").json
        self.assertEqual([x["id"] for x in rest["migrations"]],
                         [self.rows[0].id])
        self.assertFault(self.get("/v2.1/os-migrations?marker=nope",
                                  token="admin:admin", version="2.59"), 400)

    def test_filters(self):
        def ids(query, version="2.80"):
            return [x["id"] for x in self.get(
                "/v2.1/os-migrations?" + query, token="admin:admin",
                version=version).json["migrations"]]
        self.assertEqual(ids("status=finished"), [self.rows[1].id])
        self.assertEqual(ids("migration_type=resize"), [self.rows[0].id])
        self.assertEqual(len(ids("host=h2")), 3)
        self.assertEqual(ids("host=h9"), [])
        self.assertEqual(ids("project_id=other"), [])
        future = (datetime.datetime.utcnow() + datetime.timedelta(
            hours=1)).isoformat()
        self.assertEqual(ids("changes-since=" + future), [])
        self.assertEqual(len(ids("changes-before=" + future)), 3)

    def test_admin_only(self):
        self.assertFault(self.get("/v2.1/os-migrations",
                                  token="user:project"), 403)

    def test_server_migrations(self):
        path = f"/v2.1/servers/{self.server_id}/migrations"
        self.assertFault(self.get(path, token="admin:admin",
                                  version="2.22"), 404)
        listed = self.get(path, token="admin:admin",
                          version="2.23").json["migrations"]
        self.assertEqual([x["id"] for x in listed], [self.rows[2].id])
        self.assertIn("memory_total_bytes", listed[0])
        self.assertEqual(listed[0]["server_uuid"], self.server_id)
        shown = self.get(f"{path}/{self.rows[2].id}", token="admin:admin",
                         version="2.23")
        self.assertEqual(shown.json["migration"]["id"], self.rows[2].id)
        self.assertFault(self.get(f"{path}/{self.rows[0].id}",
                                  token="admin:admin", version="2.23"), 404)
        self.assertFault(self.get(f"{path}/9999", token="admin:admin",
                                  version="2.23"), 404)
        # Only a server in task_state migrating (Nova's 409) ...
        self.assertFault(self.post(f"{path}/{self.rows[1].id}/action",
                                   {"force_complete": None},
                                   token="admin:admin", version="2.22"),
                         409, "task_state")
        self.assertFault(self.delete(f"{path}/{self.rows[2].id}",
                                     token="admin:admin", version="2.24"),
                         409, "task_state")
        # ... and only a live migration (400) can be forced or aborted.
        self.set_state(self.server_id, task_state="migrating")
        self.assertFault(self.post(f"{path}/{self.rows[1].id}/action",
                                   {"force_complete": None},
                                   token="admin:admin", version="2.22"),
                         400, "not a live migration")
        # Without an agent layer: 501, nothing changed.
        self.assertFault(self.delete(f"{path}/{self.rows[2].id}",
                                     token="admin:admin", version="2.24"),
                         501)
        other = random_uuid()
        self.assertFault(self.get(f"/v2.1/servers/{other}/migrations",
                                  token="admin:admin", version="2.23"), 404)
