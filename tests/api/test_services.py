"""``/os-services`` through the real pipeline, on rows inserted as agents
would write them."""

import datetime

from tests.api.infra_rows import (
    count, insert_aggregate, insert_compute_node, insert_instance,
    insert_service)
from tests.base import APITestCase, SynchronousTestCase
from twisted_compute.db import models as m
from twisted_compute.db import services as services_db
from twisted_compute.objects.service import Service

KEYS_21 = {"id", "binary", "host", "zone", "status", "state", "updated_at",
           "disabled_reason"}


class IsUpTests(SynchronousTestCase):
    now = datetime.datetime(2024, 1, 1, 12, 0, 0)

    def service(self, **kw):
        return Service(id=1, uuid="u", host="h", binary="nova-compute",
                       **kw)

    def test_recent_heartbeat_is_up(self):
        seen = self.now - datetime.timedelta(seconds=59)
        self.assertTrue(services_db.is_up(
            self.service(last_seen_up=seen), self.now, 60))
        self.assertFalse(services_db.is_up(
            self.service(last_seen_up=seen), self.now, 30))

    def test_falls_back_to_updated_then_created(self):
        old = self.now - datetime.timedelta(seconds=600)
        self.assertFalse(services_db.is_up(
            self.service(updated_at=old), self.now, 60))
        self.assertTrue(services_db.is_up(
            self.service(created_at=self.now), self.now, 60))
        self.assertFalse(services_db.is_up(self.service(), self.now, 60))

    def test_forced_down_is_down(self):
        self.assertFalse(services_db.is_up(
            self.service(last_seen_up=self.now, forced_down=True),
            self.now, 60))


class ServicesTests(APITestCase):
    def setUp(self):
        super().setUp()
        self.compute = self.run_db(insert_service, host="host1")
        self.sched = self.run_db(insert_service, host="host1",
                                 binary="nova-scheduler")
        self.dead = self.run_db(insert_service, host="host2",
                                seen_ago=3600, disabled=True,
                                disabled_reason="broken")

    def test_list_shapes_and_state(self):
        response = self.get("/v2.1/os-services")
        self.assertEqual(response.code, 200, response)
        services = response.json["services"]
        self.assertEqual(len(services), 3)
        for service in services:
            self.assertEqual(set(service), KEYS_21)
        by_id = {s["id"]: s for s in services}
        self.assertEqual(by_id[self.compute["id"]]["state"], "up")
        self.assertEqual(by_id[self.compute["id"]]["zone"], "nova")
        self.assertEqual(by_id[self.sched["id"]]["zone"], "internal")
        dead = by_id[self.dead["id"]]
        self.assertEqual((dead["state"], dead["status"],
                          dead["disabled_reason"]),
                         ("down", "disabled", "broken"))
        new = self.get("/v2.1/os-services", version="2.79").json["services"]
        self.assertEqual(set(new[0]), KEYS_21 | {"forced_down"})
        self.assertEqual({s["id"] for s in new},
                         {self.compute["uuid"], self.sched["uuid"],
                          self.dead["uuid"]})

    def test_updated_at_is_the_latest_report(self):
        seen = m.utcnow().replace(microsecond=123456)
        self.run_db(insert_service, host="host3", updated_at=None,
                    last_seen_up=seen)
        listed = self.get("/v2.1/os-services?host=host3").json["services"]
        self.assertEqual(listed[0]["updated_at"],
                         seen.strftime("%Y-%m-%dT%H:%M:%S.123456"))

    def test_filters_and_aggregate_zone(self):
        self.run_db(insert_aggregate, "agg", ["host1"], zone="az1")
        listed = self.get("/v2.1/os-services?binary=nova-compute&host=host1")
        self.assertEqual([(s["host"], s["zone"]) for s in
                          listed.json["services"]], [("host1", "az1")])

    def test_admin_only(self):
        self.assertFault(self.get("/v2.1/os-services", token="u:p"), 403)
        self.assertFault(self.put("/v2.1/os-services/disable", {
            "host": "host1", "binary": "nova-compute"}, token="u:p"), 403)

    def test_old_style_actions(self):
        body = {"host": "host1", "binary": "nova-compute"}
        response = self.put("/v2.1/os-services/disable", body)
        self.assertEqual(response.json, {"service": {
            **body, "status": "disabled"}})
        response = self.put("/v2.1/os-services/disable-log-reason",
                            {**body, "disabled_reason": "maintenance"})
        self.assertEqual(response.json, {"service": {
            **body, "status": "disabled",
            "disabled_reason": "maintenance"}})
        listed = self.get("/v2.1/os-services?binary=nova-compute&host=host1")
        self.assertEqual(listed.json["services"][0]["disabled_reason"],
                         "maintenance")
        response = self.put("/v2.1/os-services/enable", body)
        self.assertEqual(response.json["service"]["status"], "enabled")
        # force-down exists from 2.11
        self.assertFault(self.put("/v2.1/os-services/force-down",
                                  {**body, "forced_down": True}), 404)
        response = self.put("/v2.1/os-services/force-down",
                            {**body, "forced_down": True}, version="2.11")
        self.assertEqual(response.json, {"service": {
            **body, "forced_down": True}})
        listed = self.get("/v2.1/os-services?host=host1&binary=nova-compute",
                          version="2.11").json["services"][0]
        self.assertEqual((listed["forced_down"], listed["state"]),
                         (True, "down"))
        self.assertFault(self.put("/v2.1/os-services/disable", {
            "host": "nohost", "binary": "nova-compute"}), 404)
        self.assertFault(self.put("/v2.1/os-services/disable", {
            "host": "host1"}), 400, "binary")
        self.assertFault(self.put("/v2.1/os-services/disable-log-reason",
                                  body), 400, "reason")

    def test_update_by_uuid_253(self):
        path = "/v2.1/os-services/" + self.compute["uuid"]
        response = self.put(path, {"status": "disabled",
                                   "disabled_reason": "maint"},
                            version="2.53")
        self.assertEqual(response.code, 200, response)
        service = response.json["service"]
        self.assertEqual(set(service), KEYS_21 | {"forced_down"})
        self.assertEqual((service["id"], service["status"],
                          service["disabled_reason"]),
                         (self.compute["uuid"], "disabled", "maint"))
        response = self.put(path, {"forced_down": True}, version="2.79")
        self.assertEqual(response.json["service"]["state"], "down")
        response = self.put(path, {"status": "enabled"}, version="2.79")
        self.assertEqual(response.json["service"]["disabled_reason"], None)
        self.assertFault(self.put(path, {"status": "enabled",
                                         "disabled_reason": "x"},
                                  version="2.79"), 400)
        self.assertFault(self.put(path, {}, version="2.79"), 400)
        self.assertFault(self.put(path, {"status": "off"}, version="2.79"),
                         400, "status")
        self.assertFault(self.put("/v2.1/os-services/" + self.sched["uuid"],
                                  {"status": "disabled"}, version="2.79"),
                         400, "nova-scheduler")
        self.assertFault(self.put("/v2.1/os-services/not-a-uuid",
                                  {"status": "disabled"}, version="2.79"),
                         400)
        # the old actions are gone at 2.53
        self.assertFault(self.put("/v2.1/os-services/disable", {
            "host": "host1", "binary": "nova-compute"}, version="2.53"),
            400)

    def test_delete(self):
        self.assertEqual(self.delete(
            f"/v2.1/os-services/{self.sched['id']}").code, 204)
        self.assertFault(self.delete(
            f"/v2.1/os-services/{self.sched['id']}"), 404)
        self.assertFault(self.delete("/v2.1/os-services/abc"), 400)
        self.assertFault(self.delete(
            f"/v2.1/os-services/{self.compute['id']}", version="2.53"), 400)

    def test_delete_compute_service(self):
        self.run_db(insert_compute_node, self.compute)
        self.run_db(insert_aggregate, "agg", ["host1"], zone="az1")
        instance = self.run_db(insert_instance, host="host1")
        path = f"/v2.1/os-services/{self.compute['uuid']}"
        self.assertFault(self.delete(path, version="2.53"), 409)
        self.run_db(lambda conn: conn.execute(m.instances.update().where(
            m.instances.c.id == instance["id"]).values(deleted=1)))
        self.assertEqual(self.delete(path, version="2.53").code, 204)
        self.assertEqual(self.run_db(count, m.aggregate_hosts), 0)
        self.assertEqual(self.get("/v2.1/os-hypervisors").json,
                         {"hypervisors": []})
