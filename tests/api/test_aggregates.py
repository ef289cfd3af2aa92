"""``/os-aggregates`` through the real pipeline."""

from __future__ import annotations

from tests.api.infra_rows import (
    insert_aggregate, insert_instance, insert_service)
from tests.base import APITestCase, on_backends
from twisted_compute.db import services as services_db

#: The keys of an aggregate (show, list, update, actions) before 2.41.
KEYS = {"availability_zone", "created_at", "deleted", "deleted_at", "hosts",
        "id", "metadata", "name", "updated_at"}
#: The create answer has neither hosts nor metadata.
CREATE_KEYS = KEYS - {"hosts", "metadata"}

URL = "/v2.1/os-aggregates"


class AggregatesTests(APITestCase):

    def create(self, name="agg1", zone=None, version=None, expect=200):
        body = {"aggregate": {"name": name}}
        if zone is not None:
            body["aggregate"]["availability_zone"] = zone
        response = self.post(URL, body, version=version)
        self.assertEqual(response.code, expect, response)
        return response.json["aggregate"] if expect == 200 else response

    def action(self, aggregate_id, body, version=None, **kw):
        return self.post(f"{URL}/{aggregate_id}/action", body,
                         version=version, **kw)

    def add_host(self, aggregate_id, host, **kw):
        return self.action(aggregate_id, {"add_host": {"host": host}}, **kw)

    # --- create, show, list ----------------------------------------------

    def test_create_shape_and_zone(self):
        created = self.create("rack1", zone="london")
        self.assertEqual(set(created), CREATE_KEYS)
        self.assertEqual(created["name"], "rack1")
        self.assertEqual(created["availability_zone"], "london")
        self.assertIs(created["deleted"], False)
        self.assertIsNone(created["deleted_at"])
        self.assertIsNone(created["updated_at"])
        self.assertRegex(created["created_at"],
                         r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$")
        shown = self.get(f"{URL}/{created['id']}").json["aggregate"]
        self.assertEqual(set(shown), KEYS)
        self.assertEqual(shown["metadata"], {"availability_zone": "london"})
        self.assertEqual(shown["hosts"], [])

    def test_create_without_zone(self):
        created = self.create("plain")
        self.assertIsNone(created["availability_zone"])
        shown = self.get(f"{URL}/{created['id']}").json["aggregate"]
        self.assertEqual(shown["metadata"], {})
        body = {"aggregate": {"name": "explicit-null",
                              "availability_zone": None}}
        response = self.post(URL, body)
        self.assertEqual(response.code, 200, response)
        self.assertIsNone(response.json["aggregate"]["availability_zone"])

    def test_uuid_from_241(self):
        created = self.create("u", version="2.41")
        self.assertEqual(set(created), CREATE_KEYS | {"uuid"})
        self.assertEqual(len(created["uuid"]), 36)
        for version in ("2.41", "2.79"):
            shown = self.get(f"{URL}/{created['id']}",
                             version=version).json["aggregate"]
            self.assertEqual(set(shown), KEYS | {"uuid"})
            self.assertEqual(shown["uuid"], created["uuid"])
        old = self.get(f"{URL}/{created['id']}", version="2.40").json
        self.assertNotIn("uuid", old["aggregate"])
        listed = self.get(URL, version="2.79").json["aggregates"]
        self.assertEqual(listed[0]["uuid"], created["uuid"])

    def test_duplicate_name_conflicts(self):
        self.create("same")
        self.assertFault(self.create("same", expect=409), 409, "same")
        self.assertEqual(len(self.get(URL).json["aggregates"]), 1)

    def test_create_validation(self):
        for body in ({"aggregate": {}},
                     {"aggregate": {"name": ""}},
                     {"aggregate": {"name": "x" * 256}},
                     {"aggregate": {"name": " padded"}},
                     {"aggregate": {"name": "a", "availability_zone": ""}},
                     {"aggregate": {"name": "a",
                                    "availability_zone": "az:1"}},
                     {"aggregate": {"name": "a", "other": 1}},
                     {"name": "a"}):
            self.assertFault(self.post(URL, body), 400)
        self.assertEqual(self.get(URL).json["aggregates"], [])

    def test_list(self):
        self.run_db(insert_service, host="c1")
        first = self.create("one", zone="z1")
        self.create("two")
        self.add_host(first["id"], "c1")
        listed = self.get(URL).json["aggregates"]
        self.assertEqual([a["name"] for a in listed], ["one", "two"])
        self.assertEqual([set(a) for a in listed], [KEYS, KEYS])
        self.assertEqual(listed[0]["hosts"], ["c1"])
        self.assertEqual(listed[1]["hosts"], [])

    def test_show_unknown_and_bad_id(self):
        self.assertFault(self.get(f"{URL}/42"), 404, "42")
        self.assertFault(self.get(f"{URL}/abc"), 400)

    def test_admin_only(self):
        created = self.create("adm")
        user = {"token": "u:p"}
        self.assertFault(self.get(URL, **user), 403)
        self.assertFault(self.get(f"{URL}/{created['id']}", **user), 403)
        self.assertFault(self.post(URL, {"aggregate": {"name": "n"}},
                                   **user), 403)
        self.assertFault(self.put(f"{URL}/{created['id']}",
                                  {"aggregate": {"name": "n"}}, **user), 403)
        self.assertFault(self.delete(f"{URL}/{created['id']}", **user), 403)
        for body in ({"add_host": {"host": "c1"}},
                     {"remove_host": {"host": "c1"}},
                     {"set_metadata": {"metadata": {"k": "v"}}}):
            self.assertFault(self.action(created["id"], body, **user), 403)
        shown = self.get(f"{URL}/{created['id']}").json["aggregate"]
        self.assertEqual((shown["name"], shown["metadata"]), ("adm", {}))

    # --- update ----------------------------------------------------------

    def test_update_name_and_zone(self):
        created = self.create("old", zone="z1")
        response = self.put(f"{URL}/{created['id']}", {"aggregate": {
            "name": "new", "availability_zone": "z2"}})
        self.assertEqual(response.code, 200, response)
        updated = response.json["aggregate"]
        self.assertEqual(set(updated), KEYS)
        self.assertEqual((updated["name"], updated["availability_zone"]),
                         ("new", "z2"))
        self.assertEqual(updated["metadata"], {"availability_zone": "z2"})
        self.assertIsNotNone(updated["updated_at"])
        only_zone = self.put(f"{URL}/{created['id']}", {"aggregate": {
            "availability_zone": "z3"}}).json["aggregate"]
        self.assertEqual((only_zone["name"], only_zone["availability_zone"]),
                         ("new", "z3"))

    def test_update_errors(self):
        first = self.create("first")
        self.create("second")
        url = f"{URL}/{first['id']}"
        self.assertFault(self.put(url, {"aggregate": {"name": "second"}}),
                         409)
        self.assertFault(self.put(url, {"aggregate": {}}), 400)
        self.assertFault(self.put(url, {"aggregate": {"uuid": "x"}}), 400)
        self.assertFault(self.put(url, {"aggregate": {
            "availability_zone": None}}), 400, "empty named")
        self.assertFault(self.put(f"{URL}/99", {"aggregate": {
            "name": "n"}}), 404)
        self.assertEqual(self.get(url).json["aggregate"]["name"], "first")
        # Renaming to its own name is no conflict.
        self.assertEqual(self.put(url, {"aggregate": {
            "name": "first"}}).code, 200)

    def test_zone_change_refused_when_hosts_run_servers(self):
        self.run_db(insert_service, host="c1")
        created = self.create("busy", zone="z1")
        self.add_host(created["id"], "c1")
        self.run_db(insert_instance, host="c1", node="n1")
        url = f"{URL}/{created['id']}"
        self.assertFault(self.put(url, {"aggregate": {
            "availability_zone": "z2"}}), 400, "contain instances")
        self.assertFault(self.action(created["id"], {"set_metadata": {
            "metadata": {"availability_zone": "z2"}}}), 400)
        # Same zone, or other keys, are fine.
        self.assertEqual(self.put(url, {"aggregate": {
            "availability_zone": "z1", "name": "busy2"}}).code, 200)
        self.assertEqual(self.action(created["id"], {"set_metadata": {
            "metadata": {"ssd": "true"}}}).code, 200)

    # --- delete ----------------------------------------------------------

    def test_delete(self):
        created = self.create("gone")
        response = self.delete(f"{URL}/{created['id']}")
        self.assertEqual(response.code, 200, response)
        self.assertEqual(response.body, b"")
        self.assertFault(self.get(f"{URL}/{created['id']}"), 404)
        self.assertFault(self.delete(f"{URL}/{created['id']}"), 404)

    def test_delete_refused_while_hosts_remain(self):
        self.run_db(insert_service, host="c1")
        created = self.create("full")
        self.add_host(created["id"], "c1")
        self.assertFault(self.delete(f"{URL}/{created['id']}"), 400,
                         "not empty")
        self.assertEqual(self.get(f"{URL}/{created['id']}").code, 200)
        self.action(created["id"], {"remove_host": {"host": "c1"}})
        self.assertEqual(self.delete(f"{URL}/{created['id']}").code, 200)

    # --- add_host / remove_host -----------------------------------------

    def test_add_and_remove_host(self):
        self.run_db(insert_service, host="c1")
        self.run_db(insert_service, host="c2")
        created = self.create("hosts", zone="z1")
        response = self.add_host(created["id"], "c2", version="2.79")
        self.assertEqual(response.code, 200, response)
        body = response.json["aggregate"]
        self.assertEqual(set(body), KEYS | {"uuid"})
        self.assertEqual(body["hosts"], ["c2"])
        self.add_host(created["id"], "c1")
        shown = self.get(f"{URL}/{created['id']}").json["aggregate"]
        self.assertEqual(shown["hosts"], ["c1", "c2"])
        # The zone shows through the services and zones APIs.
        zones = self.run_db(services_db.host_zones)
        self.assertEqual(zones, {"c1": "z1", "c2": "z1"})
        services = self.get("/v2.1/os-services").json["services"]
        self.assertEqual({s["host"]: s["zone"] for s in services},
                         {"c1": "z1", "c2": "z1"})
        response = self.action(created["id"],
                               {"remove_host": {"host": "c2"}})
        self.assertEqual(response.code, 200, response)
        self.assertEqual(response.json["aggregate"]["hosts"], ["c1"])
        self.assertEqual(self.run_db(services_db.host_zones), {"c1": "z1"})

    def test_add_host_must_be_compute_host(self):
        self.run_db(insert_service, host="ctl", binary="nova-conductor")
        created = self.create("strict")
        self.assertFault(self.add_host(created["id"], "nowhere"), 404,
                         "nowhere")
        self.assertFault(self.add_host(created["id"], "ctl"), 404, "ctl")
        self.assertEqual(self.get(f"{URL}/{created['id']}").json[
            "aggregate"]["hosts"], [])

    def test_add_host_twice_conflicts(self):
        self.run_db(insert_service, host="c1")
        created = self.create("twice")
        self.assertEqual(self.add_host(created["id"], "c1").code, 200)
        self.assertFault(self.add_host(created["id"], "c1"), 409, "c1")

    def test_add_host_to_unknown_aggregate(self):
        self.run_db(insert_service, host="c1")
        self.assertFault(self.add_host(77, "c1"), 404)

    def test_host_in_one_zone_only(self):
        self.run_db(insert_service, host="c1")
        self.run_db(insert_aggregate, "existing", ["c1"], zone="z1")
        other_zone = self.create("other", zone="z2")
        self.assertFault(self.add_host(other_zone["id"], "c1"), 409, "z1")
        same_zone = self.create("same", zone="z1")
        self.assertEqual(self.add_host(same_zone["id"], "c1").code, 200)
        no_zone = self.create("nozone")
        self.assertEqual(self.add_host(no_zone["id"], "c1").code, 200)
        # Giving the zone-less aggregate another zone would move c1 too.
        self.assertFault(self.action(no_zone["id"], {"set_metadata": {
            "metadata": {"availability_zone": "z3"}}}), 400, "z1")
        self.assertFault(self.put(f"{URL}/{no_zone['id']}", {"aggregate": {
            "availability_zone": "z3"}}), 400, "z1")
        self.assertEqual(self.run_db(services_db.host_zones), {"c1": "z1"})

    def test_remove_host_errors(self):
        self.run_db(insert_service, host="c1")
        created = self.create("rm")
        remove = {"remove_host": {"host": "c1"}}
        self.assertFault(self.action(created["id"], remove), 404, "c1")
        self.assertFault(self.action(created["id"], {"remove_host": {
            "host": "ghost"}}), 404)
        self.assertFault(self.action(99, remove), 404)

    def test_action_validation(self):
        created = self.create("v")
        for body in ({"add_host": {}}, {"add_host": {"host": ""}},
                     {"add_host": {"host": "a b"}},
                     {"add_host": {"host": "c1", "x": 1}},
                     {"set_metadata": {}},
                     {"set_metadata": {"metadata": {"k": 1}}},
                     {"set_metadata": {"metadata": {"bad/key": "v"}}},
                     {"set_metadata": {"metadata": {"k": "v" * 256}}},
                     []):
            self.assertFault(self.action(created["id"], body), 400)
        self.assertFault(self.action(created["id"], {"explode": {}}), 400,
                         "explode")
        self.assertFault(self.action("x", {"add_host": {"host": "c1"}}),
                         400)

    # --- set_metadata ----------------------------------------------------

    def test_set_metadata(self):
        created = self.create("meta", zone="z1")
        response = self.action(created["id"], {"set_metadata": {
            "metadata": {"ssd": "true", "gpu": "none"}}})
        self.assertEqual(response.code, 200, response)
        body = response.json["aggregate"]
        self.assertEqual(set(body), KEYS)
        self.assertEqual(body["metadata"], {"availability_zone": "z1",
                                            "ssd": "true", "gpu": "none"})
        self.assertIsNotNone(body["updated_at"])
        # A null value deletes its key; an unknown key deleted is no error.
        body = self.action(created["id"], {"set_metadata": {"metadata": {
            "gpu": None, "absent": None, "ssd": "false"}}}).json["aggregate"]
        self.assertEqual(body["metadata"], {"availability_zone": "z1",
                                            "ssd": "false"})
        # The zone can be changed through metadata too.
        body = self.action(created["id"], {"set_metadata": {"metadata": {
            "availability_zone": "z9"}}}).json["aggregate"]
        self.assertEqual(body["availability_zone"], "z9")
        shown = self.get(f"{URL}/{created['id']}").json["aggregate"]
        self.assertEqual(shown["metadata"], {"availability_zone": "z9",
                                             "ssd": "false"})

    def test_set_metadata_empty_zone_refused(self):
        created = self.create("keep", zone="z1")
        self.assertFault(self.action(created["id"], {"set_metadata": {
            "metadata": {"availability_zone": None}}}), 400, "empty named")
        self.assertEqual(self.get(f"{URL}/{created['id']}").json[
            "aggregate"]["availability_zone"], "z1")

    def test_set_metadata_unknown_aggregate(self):
        self.assertFault(self.action(5, {"set_metadata": {
            "metadata": {"k": "v"}}}), 404)


on_backends(AggregatesTests, "postgresql", "mariadb", namespace=globals())
