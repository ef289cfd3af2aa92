"""``/os-hosts`` (until 2.42) through the real pipeline, on rows inserted
as agents would write them."""

from tests.api.infra_rows import (
    insert_compute_node, insert_instance, insert_service)
from tests.base import APITestCase
from twisted_compute.db import models as m


class HostsTests(APITestCase):
    def setUp(self):
        super().setUp()
        self.svc1 = self.run_db(insert_service, host="host1")
        self.svc2 = self.run_db(insert_service, host="host2")
        self.run_db(insert_service, host="host3", disabled=True)
        self.run_db(insert_service, host="ctl", binary="nova-conductor")
        self.run_db(insert_compute_node, self.svc1, host="host1",
                    hostname="node1")
        with self.db.engine.begin() as conn:
            agg = conn.execute(m.aggregates.insert().values(
                uuid="a" * 8 + "-0000-0000-0000-" + "0" * 12, name="z",
                metadata={"availability_zone": "zone-2"},
                created_at=m.utcnow())).inserted_primary_key[0]
            conn.execute(m.aggregate_hosts.insert().values(
                aggregate_id=agg, host="host2"))
        for project, vcpus, ram in (("p1", 1, 512), ("p1", 2, 1024),
                                    ("p2", 4, 2048)):
            self.run_db(insert_instance, project_id=project, vcpus=vcpus,
                        memory_mb=ram, host="host1", node="node1")
        self.run_db(insert_instance, project_id="p3", host="host1",
                    node="node1", deleted=True)

    def test_index(self):
        hosts = self.get("/v2.1/os-hosts").json["hosts"]
        self.assertEqual(sorted((h["host_name"], h["service"], h["zone"])
                                for h in hosts), [
            ("ctl", "conductor", "internal"),
            ("host1", "compute", "nova"),
            ("host2", "compute", "zone-2")])
        zoned = self.get("/v2.1/os-hosts?zone=zone-2").json["hosts"]
        self.assertEqual([h["host_name"] for h in zoned], ["host2"])

    def test_show(self):
        resources = [r["resource"] for r in
                     self.get("/v2.1/os-hosts/host1").json["host"]]
        by_project = {r["project"]: (r["cpu"], r["memory_mb"], r["disk_gb"])
                      for r in resources}
        self.assertEqual(by_project, {
            "(total)": (8, 16384, 200), "(used_now)": (2, 4096, 20),
            "(used_max)": (7, 3584, 0), "p1": (3, 1536, 0),
            "p2": (4, 2048, 0)})
        self.assertEqual({r["host"] for r in resources}, {"host1"})
        self.assertEqual([r["project"] for r in resources][:3],
                         ["(total)", "(used_now)", "(used_max)"])
        self.assertFault(self.get("/v2.1/os-hosts/nowhere"), 404,
                         "Compute host nowhere could not be found")
        self.assertFault(self.get("/v2.1/os-hosts/ctl"), 404)

    def test_update_status(self):
        response = self.put("/v2.1/os-hosts/host2", {"status": "disable"})
        self.assertEqual(response.json, {"host": "host2",
                                         "status": "disabled"})
        services = self.get("/v2.1/os-services?host=host2").json["services"]
        self.assertEqual(services[0]["status"], "disabled")
        self.assertNotIn("host2", [h["host_name"] for h in self.get(
            "/v2.1/os-hosts").json["hosts"]])
        response = self.put("/v2.1/os-hosts/host2", {"status": "enable"})
        self.assertEqual(response.json["status"], "enabled")
        self.assertEqual(self.get("/v2.1/os-services?host=host2").json[
            "services"][0]["status"], "enabled")
        self.assertFault(self.put("/v2.1/os-hosts/host2", {}), 400)
        self.assertFault(self.put("/v2.1/os-hosts/host2",
                                  {"status": "sideways"}), 400)
        self.assertFault(self.put("/v2.1/os-hosts/host2",
                                  {"maintenance_mode": "enable"}), 501)
        self.assertFault(self.put("/v2.1/os-hosts/nowhere",
                                  {"status": "enable"}), 404)

    def test_power_actions_are_not_implemented(self):
        for action in ("reboot", "shutdown", "startup"):
            self.assertFault(self.get(f"/v2.1/os-hosts/host1/{action}"),
                             501, "host power management")
        self.assertFault(self.get("/v2.1/os-hosts/nowhere/reboot"), 404)
        self.assertFault(self.get("/v2.1/os-hosts/host1/explode"), 404)

    def test_admin_only_and_gone_after_2_42(self):
        for path in ("/v2.1/os-hosts", "/v2.1/os-hosts/host1"):
            self.assertFault(self.get(path, token="u:p1"), 403)
            self.assertEqual(self.get(path, version="2.42").code, 200)
            self.assertFault(self.get(path, version="2.43"), 404)
