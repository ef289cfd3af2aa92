"""Servers from 2.80 to 2.104: the 2.83 filters, ``hostname`` (2.90,
2.94), the pinned zone (2.96, 2.104), image properties (2.98), scheduler
hints (2.100), and the zone a server takes once placed."""

from __future__ import annotations

from tests.api.infra_rows import insert_aggregate
from tests.api.test_servers_base import IMAGE_ID, ServersTestCase
from twisted_compute.db import instances as instances_db
from twisted_compute.db import models as m

#: The top-level keys of Nova's servers/v2.90 server-get-resp.json (a
#: non-admin's view; the samples of 2.96 add pinned_availability_zone,
#: those of 2.100 scheduler_hints).
SHOW_290 = {
    "OS-DCF:diskConfig", "OS-EXT-AZ:availability_zone",
    "OS-EXT-SRV-ATTR:hostname", "OS-EXT-STS:power_state",
    "OS-EXT-STS:task_state", "OS-EXT-STS:vm_state",
    "OS-SRV-USG:launched_at", "OS-SRV-USG:terminated_at", "accessIPv4",
    "accessIPv6", "addresses", "config_drive", "created", "description",
    "flavor", "hostId", "id", "image", "key_name", "links", "locked",
    "locked_reason", "metadata", "name",
    "os-extended-volumes:volumes_attached", "progress", "security_groups",
    "server_groups", "status", "tags", "tenant_id",
    "trusted_image_certificates", "updated", "user_id"}
SHOW_296 = SHOW_290 | {"pinned_availability_zone"}
SHOW_2100 = SHOW_296 | {"scheduler_hints"}


class ServerViewsTests(ServersTestCase):
    def setUp(self):
        super().setUp()
        with self.db.engine.begin() as conn:
            conn.execute(m.images.update().where(
                m.images.c.id == IMAGE_ID).values(properties={
                    "architecture": "x86_64", "auto_disk_config": "True"}))

    def test_show_keys_per_version(self):
        server_id = self.create_server(version="2.100")
        for version, expected in (("2.89", SHOW_290 - {
                "OS-EXT-SRV-ATTR:hostname"}), ("2.90", SHOW_290),
                ("2.94", SHOW_290), ("2.95", SHOW_290), ("2.96", SHOW_296),
                ("2.98", SHOW_296), ("2.99", SHOW_296),
                ("2.100", SHOW_2100), ("2.104", SHOW_2100)):
            self.assertEqual(set(self.show(server_id, version=version)),
                             expected, version)
        detail = self.get("/v2.1/servers/detail", token="user:project",
                          version="2.100").json["servers"]
        self.assertEqual(set(detail[0]), SHOW_2100 - {"server_groups"})
        # Lists stay {id, name, links}.
        listed = self.get("/v2.1/servers", token="user:project",
                          version="2.104").json["servers"]
        self.assertEqual(set(listed[0]), {"id", "name", "links"})

    def test_hostname_visible_to_all_from_290(self):
        server_id = self.create_server("My Server")
        self.assertNotIn("OS-EXT-SRV-ATTR:hostname",
                         self.show(server_id, version="2.89"))
        self.assertEqual(self.show(server_id, version="2.90")[
            "OS-EXT-SRV-ATTR:hostname"], "my-server")

    def test_image_properties_from_298(self):
        server_id = self.create_server()
        self.assertNotIn("properties",
                         self.show(server_id, version="2.97")["image"])
        image = self.show(server_id, version="2.98")["image"]
        self.assertEqual(image["id"], IMAGE_ID)
        properties = image["properties"]
        self.assertEqual(properties["architecture"], "x86_64")
        self.assertEqual(properties["auto_disk_config"], "True")
        # What Nova keeps of the image with the instance, as strings.
        self.assertEqual(properties["min_ram"], "0")
        self.assertEqual(properties["disk_format"], "qcow2")
        self.assertEqual(properties["base_image_ref"], IMAGE_ID)
        detail = self.get("/v2.1/servers/detail", token="user:project",
                          version="2.98").json["servers"][0]
        self.assertEqual(detail["image"]["properties"], properties)

    def test_scheduler_hints_from_2100(self):
        other = self.create_server("other")
        body = self.server_body()
        body["os:scheduler_hints"] = {"same_host": other,
                                      "different_host": [other]}
        response = self.post("/v2.1/servers", body, token="user:project",
                             version="2.100")
        self.assertEqual(response.code, 202, response)
        server_id = response.json["server"]["id"]
        self.assertNotIn("scheduler_hints",
                         self.show(server_id, version="2.99"))
        hints = self.show(server_id, version="2.100")["scheduler_hints"]
        # Values as lists, as Nova's request spec holds them.
        self.assertEqual(hints, {"same_host": [other],
                                 "different_host": [other]})
        self.assertEqual(self.show(other, version="2.100")[
            "scheduler_hints"], {})
        detail = {s["id"]: s for s in self.get(
            "/v2.1/servers/detail", token="user:project",
            version="2.100").json["servers"]}
        self.assertEqual(detail[server_id]["scheduler_hints"], hints)

    def test_pinned_availability_zone_from_296(self):
        self.run_db(lambda conn: insert_aggregate(conn, "agg", ["h1"],
                                                  zone="az1"))
        pinned = self.create_server("pinned", availability_zone="az1")
        free = self.create_server("free")
        self.assertNotIn("pinned_availability_zone",
                         self.show(pinned, version="2.95"))
        self.assertEqual(self.show(pinned, version="2.96")[
            "pinned_availability_zone"], "az1")
        self.assertIsNone(self.show(free, version="2.96")[
            "pinned_availability_zone"])
        detail = {s["id"]: s["pinned_availability_zone"] for s in self.get(
            "/v2.1/servers/detail", token="user:project",
            version="2.96").json["servers"]}
        self.assertEqual(detail, {pinned: "az1", free: None})


class HostnameTests(ServersTestCase):
    def test_create_with_hostname(self):
        self.assertFault(self.create_server(
            version="2.89", hostname="custom", expect=400), 400, "hostname")
        server_id = self.create_server(version="2.90",
                                       hostname="custom-hostname")
        self.assertEqual(self.row(server_id).hostname, "custom-hostname")
        # 2.90: one label; 2.94: an FQDN
        self.assertFault(self.create_server(
            version="2.90", hostname="a.example.com", expect=400), 400,
            "hostname")
        for bad in ("-dash", "x", "under_score!", "a" * 64):
            self.assertFault(self.create_server(
                version="2.90", hostname=bad, expect=400), 400, "hostname")
        fqdn = self.create_server(version="2.94",
                                  hostname="new-server.example.com")
        self.assertEqual(self.row(fqdn).hostname, "new-server.example.com")
        self.assertFault(self.create_server(
            version="2.94", hostname="bad name.example.com", expect=400),
            400, "hostname")

    def test_multi_create_with_hostname_refused(self):
        self.assertFault(self.create_server(
            version="2.90", hostname="same", max_count=2, expect=400),
            400, "multiple instances")
        # one instance asked for with counts of 1 is fine
        self.create_server(version="2.90", hostname="same", max_count=1)

    def test_update_hostname(self):
        server_id = self.create_server()
        path = f"/v2.1/servers/{server_id}"
        self.assertFault(self.put(path, {"server": {"hostname": "new"}},
                                  token="user:project", version="2.89"),
                         400, "hostname")
        response = self.put(path, {"server": {"hostname": "new-name"}},
                            token="user:project", version="2.90")
        self.assertEqual(response.code, 200, response)
        self.assertEqual(response.json["server"]["OS-EXT-SRV-ATTR:hostname"],
                         "new-name")
        self.assertFault(self.put(path, {"server": {
            "hostname": "new.example.com"}}, token="user:project",
            version="2.90"), 400, "hostname")
        response = self.put(path, {"server": {
            "hostname": "new-server-hostname.example.com"}},
            token="user:project", version="2.94")
        self.assertEqual(self.row(server_id).hostname,
                         "new-server-hostname.example.com")


class PinnedZoneUpdateTests(ServersTestCase):
    def setUp(self):
        super().setUp()
        self.run_db(lambda conn: insert_aggregate(conn, "agg1", ["h1"],
                                                  zone="az1"))
        self.run_db(lambda conn: insert_aggregate(conn, "agg2", ["h2"],
                                                  zone="az2"))

    def put_zone(self, server_id, zone, version="2.104"):
        return self.put(f"/v2.1/servers/{server_id}", {"server": {
            "pinned_availability_zone": zone}}, token="user:project",
            version=version)

    def test_unpin_repin_and_conflicts(self):
        server_id = self.create_server(availability_zone="az1")
        self.assertFault(self.put_zone(server_id, None, version="2.103"),
                         400, "pinned_availability_zone")
        # the same value: idempotent
        response = self.put_zone(server_id, "az1")
        self.assertEqual(response.code, 200, response)
        self.assertEqual(response.json["server"]["pinned_availability_zone"],
                         "az1")
        # from one zone to another: unpin first
        self.assertFault(self.put_zone(server_id, "az2"), 409, "unpin")
        response = self.put_zone(server_id, None)
        self.assertEqual(response.code, 200, response)
        self.assertIsNone(response.json["server"]["pinned_availability_zone"])
        self.assertIsNone(self.show(server_id, version="2.104")[
            "pinned_availability_zone"])
        self.assertEqual(self.put_zone(server_id, None).code, 200)
        # re-pin: only to the zone the server is in
        self.assertFault(self.put_zone(server_id, "az2"), 409, "az1")
        response = self.put_zone(server_id, "az1")
        self.assertEqual(response.code, 200, response)
        self.assertEqual(self.show(server_id, version="2.104")[
            "pinned_availability_zone"], "az1")

    def test_update_sample_body(self):
        # Nova's servers/v2.104/server-update-req.json
        server_id = self.create_server()
        response = self.put(f"/v2.1/servers/{server_id}", {"server": {
            "accessIPv4": "1.2.3.4", "accessIPv6": "80fe::",
            "OS-DCF:diskConfig": "AUTO",
            "hostname": "new-server-hostname.example.com",
            "pinned_availability_zone": None}}, token="user:project",
            version="2.104")
        self.assertEqual(response.code, 200, response)
        self.assertEqual(set(response.json["server"]), SHOW_2100)

    def test_other_project_gets_404(self):
        server_id = self.create_server(availability_zone="az1")
        response = self.put(f"/v2.1/servers/{server_id}", {"server": {
            "pinned_availability_zone": None}}, token="other:other-project",
            version="2.104")
        self.assertFault(response, 404)
        self.assertEqual(self.show(server_id, version="2.104")[
            "pinned_availability_zone"], "az1")


class FiltersTests(ServersTestCase):
    def test_user_filters_from_283(self):
        one = self.create_server("one")
        two = self.create_server("two")
        self.set_state(two, vm_state="active", task_state=None,
                       power_state=1, availability_zone="az9",
                       progress=100)

        def ids(query, version):
            response = self.get(f"/v2.1/servers?{query}",
                                token="user:project", version=version)
            self.assertEqual(response.code, 200, response)
            return {s["id"] for s in response.json["servers"]}

        for query, expected in (
                ("availability_zone=az9", {two}),
                ("vm_state=active", {two}),
                ("power_state=1", {two}),
                ("task_state=scheduling", {one}),
                ("progress=100", {two}),
                ("user_id=nobody", set()),
                ("user_id=user", {one, two}),
                ("config_drive=True", set())):
            # before 2.83 ignored for non-admins, applied from 2.83
            self.assertEqual(ids(query, "2.82"), {one, two}, query)
            self.assertEqual(ids(query, "2.83"), expected, query)
        # still only their own project's servers
        self.create_server("theirs", token="b:project-b")
        self.assertEqual(ids("vm_state=building", "2.83"), {one})


class PlacedZoneTests(ServersTestCase):
    """Issue 8: a server booted without a zone shows its host's zone once
    placed, as the metadata API does."""

    def test_api_and_metadata_agree(self):
        from twisted_compute.metadata.base import InstanceMetadata
        server_id = self.create_server()
        self.assertEqual(self.show(server_id)[
            "OS-EXT-AZ:availability_zone"], "")
        self.assertTrue(self.run_db(instances_db.place, server_id, {
            "host": "h1", "node": "h1", "task_state": "scheduling"},
            "nova"))
        shown = self.show(server_id)["OS-EXT-AZ:availability_zone"]
        self.assertEqual(shown, "nova")
        instance = self.run_db(instances_db.get, server_id)
        self.assertEqual(InstanceMetadata(instance).availability_zone, shown)
        # in an aggregate's zone: that zone
        other = self.create_server("other")
        self.run_db(lambda conn: insert_aggregate(conn, "agg", ["h2"],
                                                  zone="az2"))
        self.run_db(instances_db.place, other, {
            "host": "h2", "node": "h2", "task_state": "scheduling"}, "nova")
        self.assertEqual(self.show(other)["OS-EXT-AZ:availability_zone"],
                         "az2")
        self.assertEqual(InstanceMetadata(self.run_db(
            instances_db.get, other)).availability_zone, "az2")
