"""``/os-hypervisors`` through the real pipeline, on rows inserted as
agents would write them."""

from tests.api.infra_rows import (
    insert_compute_node, insert_instance, insert_service)
from tests.base import APITestCase

BASIC = {"id", "hypervisor_hostname", "state", "status"}
DETAIL = BASIC | {
    "cpu_info", "current_workload", "disk_available_least", "host_ip",
    "free_disk_gb", "free_ram_mb", "hypervisor_type", "hypervisor_version",
    "local_gb", "local_gb_used", "memory_mb", "memory_mb_used",
    "running_vms", "service", "vcpus", "vcpus_used"}
#: Nova's os-hypervisors/v2.88 samples (show and detail).
DETAIL_288 = BASIC | {"host_ip", "hypervisor_type", "hypervisor_version",
                      "service", "uptime"}


class HypervisorsTests(APITestCase):
    def setUp(self):
        super().setUp()
        self.svc1 = self.run_db(insert_service, host="host1")
        self.svc2 = self.run_db(insert_service, host="host2",
                                seen_ago=3600, disabled=True,
                                disabled_reason="off")
        self.node1 = self.run_db(insert_compute_node, self.svc1,
                                 host="host1", hostname="node1.example")
        self.node2 = self.run_db(insert_compute_node, self.svc2,
                                 host="host2", hostname="node2.example",
                                 vcpus=4)
        self.vm = self.run_db(insert_instance, host="host1",
                              node="node1.example", task_state="spawning")

    def test_list_21_and_253(self):
        old = self.get("/v2.1/os-hypervisors").json["hypervisors"]
        self.assertEqual(old, [
            {"id": self.node1["id"], "hypervisor_hostname": "node1.example",
             "state": "up", "status": "enabled"},
            {"id": self.node2["id"], "hypervisor_hostname": "node2.example",
             "state": "down", "status": "disabled"}])
        new = self.get("/v2.1/os-hypervisors", version="2.79").json
        self.assertEqual([h["id"] for h in new["hypervisors"]],
                         [self.node1["uuid"], self.node2["uuid"]])
        self.assertNotIn("hypervisors_links", new)

    def test_detail_shapes(self):
        old = self.get("/v2.1/os-hypervisors/detail").json["hypervisors"][0]
        self.assertEqual(set(old), DETAIL)
        self.assertIsInstance(old["cpu_info"], str)
        self.assertEqual(old["service"], {"host": "host1",
                                          "id": self.svc1["id"],
                                          "disabled_reason": None})
        self.assertEqual(old["free_ram_mb"], 16384 - 4096)
        self.assertEqual(old["current_workload"], 1)
        new = self.get("/v2.1/os-hypervisors/detail",
                       version="2.79").json["hypervisors"][0]
        self.assertEqual(new["cpu_info"]["arch"], "x86_64")
        self.assertEqual(new["service"]["id"], self.svc1["uuid"])

    def test_show(self):
        shown = self.get(f"/v2.1/os-hypervisors/{self.node1['id']}").json
        self.assertEqual(set(shown["hypervisor"]), DETAIL)
        self.assertFault(self.get("/v2.1/os-hypervisors/999"), 404)
        self.assertFault(self.get("/v2.1/os-hypervisors/abc"), 404)
        path = f"/v2.1/os-hypervisors/{self.node1['uuid']}"
        new = self.get(path + "?with_servers=true", version="2.53").json
        self.assertEqual(new["hypervisor"]["servers"], [
            {"name": "instance-%08x" % self.vm["id"],
             "uuid": self.vm["uuid"]}])
        self.assertFault(self.get("/v2.1/os-hypervisors/1",
                                  version="2.53"), 400)
        # no servers: left out before 2.75, [] from 2.75
        path2 = f"/v2.1/os-hypervisors/{self.node2['uuid']}?with_servers=1"
        self.assertNotIn("servers", self.get(path2, version="2.74").json[
            "hypervisor"])
        self.assertEqual(self.get(path2, version="2.75").json[
            "hypervisor"]["servers"], [])

    def test_pagination(self):
        page = self.get("/v2.1/os-hypervisors?limit=1",
                        version="2.33").json
        self.assertEqual([h["id"] for h in page["hypervisors"]],
                         [self.node1["id"]])
        self.assertIn(f"marker={self.node1['id']}",
                      page["hypervisors_links"][0]["href"])
        page = self.get(f"/v2.1/os-hypervisors/detail?limit=1&marker="
                        f"{self.node1['uuid']}", version="2.53").json
        self.assertEqual([h["id"] for h in page["hypervisors"]],
                         [self.node2["uuid"]])
        self.assertIn("/os-hypervisors/detail?",
                      page["hypervisors_links"][0]["href"])
        # paging is ignored before 2.33
        self.assertEqual(len(self.get("/v2.1/os-hypervisors?limit=1").json[
            "hypervisors"]), 2)
        self.assertFault(self.get("/v2.1/os-hypervisors?marker=nope",
                                  version="2.53"), 400)

    def test_search_and_servers(self):
        found = self.get("/v2.1/os-hypervisors/node1/search").json
        self.assertEqual([h["hypervisor_hostname"] for h in
                          found["hypervisors"]], ["node1.example"])
        self.assertFault(self.get("/v2.1/os-hypervisors/zzz/search"), 404)
        servers = self.get("/v2.1/os-hypervisors/example/servers").json
        by_name = {h["hypervisor_hostname"]: h for h in
                   servers["hypervisors"]}
        self.assertEqual(by_name["node1.example"]["servers"][0]["uuid"],
                         self.vm["uuid"])
        self.assertNotIn("servers", by_name["node2.example"])
        # 2.53 moves both into query parameters
        self.assertFault(self.get("/v2.1/os-hypervisors/node1/search",
                                  version="2.53"), 404)
        found = self.get("/v2.1/os-hypervisors?hypervisor_hostname_pattern="
                         "node2&with_servers=true", version="2.79").json
        self.assertEqual(found["hypervisors"][0]["servers"], [])
        self.assertFault(self.get(
            "/v2.1/os-hypervisors?hypervisor_hostname_pattern=zzz",
            version="2.79"), 404)
        self.assertFault(self.get(
            "/v2.1/os-hypervisors?hypervisor_hostname_pattern=n&limit=1",
            version="2.79"), 400)

    def test_statistics(self):
        stats = self.get("/v2.1/os-hypervisors/statistics").json[
            "hypervisor_statistics"]
        # node2's service is disabled: not counted
        self.assertEqual(stats["count"], 1)
        self.assertEqual(stats["vcpus"], 8)
        self.assertEqual(set(stats), {
            "count", "current_workload", "disk_available_least",
            "free_disk_gb", "free_ram_mb", "local_gb", "local_gb_used",
            "memory_mb", "memory_mb_used", "running_vms", "vcpus",
            "vcpus_used"})

    def test_uptime(self):
        self.assertFault(self.get(
            f"/v2.1/os-hypervisors/{self.node2['id']}/uptime"), 400,
            "host2")
        self.assertFault(self.get(
            f"/v2.1/os-hypervisors/{self.node1['id']}/uptime"), 501)

    def set_uptime(self, node, text):
        import sqlalchemy as sa
        from twisted_compute.db import models as m
        with self.db.engine.begin() as conn:
            conn.execute(sa.update(m.compute_nodes).where(
                m.compute_nodes.c.id == node["id"]).values(uptime=text))

    def test_uptime_before_288_answers_the_reported_uptime(self):
        line = " 08:32:11 up 93 days, 18:25,  load average: 0.20, 0.12, 0.14"
        self.set_uptime(self.node1, line)
        body = self.get(f"/v2.1/os-hypervisors/{self.node1['id']}/uptime"
                        ).json["hypervisor"]
        self.assertEqual(body, {
            "id": self.node1["id"], "hypervisor_hostname": "node1.example",
            "state": "up", "status": "enabled", "uptime": line})
        self.assertEqual(set(self.get(
            f"/v2.1/os-hypervisors/{self.node1['uuid']}/uptime",
            version="2.87").json["hypervisor"]), BASIC | {"uptime"})

    def test_288_shape(self):
        self.set_uptime(self.node1, " 10:00:00 up 5 min")
        self.set_uptime(self.node2, " 10:00:00 up 7 min")
        shown = self.get(f"/v2.1/os-hypervisors/{self.node1['uuid']}",
                         version="2.88").json["hypervisor"]
        self.assertEqual(set(shown), DETAIL_288)
        self.assertEqual(shown["uptime"], " 10:00:00 up 5 min")
        self.assertEqual(shown["service"]["host"], "host1")
        before = self.get(f"/v2.1/os-hypervisors/{self.node1['uuid']}",
                          version="2.87").json["hypervisor"]
        self.assertEqual(set(before), DETAIL)
        detail = {h["hypervisor_hostname"]: h for h in self.get(
            "/v2.1/os-hypervisors/detail",
            version="2.88").json["hypervisors"]}
        self.assertEqual(set(detail["node1.example"]), DETAIL_288)
        # node2's service is down: its last report may be stale.
        self.assertIsNone(detail["node2.example"]["uptime"])
        self.assertEqual(set(self.get("/v2.1/os-hypervisors",
                                      version="2.88").json[
            "hypervisors"][0]), BASIC)
        # removed at 2.88
        self.assertFault(self.get("/v2.1/os-hypervisors/statistics",
                                  version="2.88"), 404)
        self.assertFault(self.get(
            f"/v2.1/os-hypervisors/{self.node1['uuid']}/uptime",
            version="2.88"), 404)
        self.assertEqual(self.get("/v2.1/os-hypervisors/statistics",
                                  version="2.87").code, 200)

    def test_admin_only(self):
        for path in ("", "/detail", "/statistics", f"/{self.node1['id']}"):
            self.assertFault(self.get("/v2.1/os-hypervisors" + path,
                                      token="u:p"), 403)

    def test_node_without_service_id_gets_its_host_service(self):
        # A node reported before its service row existed: the compute
        # service of its host; a node with no service at all is not
        # listed.
        svc3 = self.run_db(insert_service, host="host3")
        self.run_db(insert_compute_node, None, host="host3",
                    hostname="node3.example")
        self.run_db(insert_compute_node, None, host="nohost",
                    hostname="node4.example")
        listed = self.get("/v2.1/os-hypervisors/detail",
                          version="2.53").json["hypervisors"]
        self.assertEqual([h["hypervisor_hostname"] for h in listed],
                         ["node1.example", "node2.example", "node3.example"])
        self.assertEqual(listed[2]["service"]["id"], svc3["uuid"])
        self.assertEqual(listed[2]["state"], "up")
        self.assertEqual(listed[0]["current_workload"], 1)
        self.assertEqual(listed[0]["cpu_info"]["model"], "Haswell")
