"""2.102: every GET refuses query parameters its schema does not name;
earlier versions stay as permissive as they were.  And the flavor
changes of 2.102."""

from __future__ import annotations

from tests.api.infra_rows import insert_compute_node, insert_service
from tests.api.test_servers_base import ServersTestCase
from twisted_compute.api.openstack.compute import CONTROLLERS, _load

#: GET routes not checked: removed long before 2.102 (they answer 404
#: there first, as Nova's do).
_UNCHECKED_PREFIXES = ("/images", "/os-hosts")


class EveryGetHasASchemaTests(ServersTestCase):
    def test_every_get_route_declares_its_query(self):
        missing = []
        for spec in CONTROLLERS:
            controller = _load(spec)
            for rule in controller.app.url_map.iter_rules():
                if "GET" not in rule.methods or rule.rule.startswith(
                        _UNCHECKED_PREFIXES):
                    continue
                handler = getattr(controller, rule.endpoint, None)
                if getattr(handler, "query_schema", None) is None:
                    missing.append(rule.rule)
        self.assertEqual(missing, [])


class UnknownParametersTests(ServersTestCase):
    def setUp(self):
        super().setUp()
        self.server_id = self.create_server()
        service = self.run_db(insert_service, host="host1")
        self.node = self.run_db(insert_compute_node, service, host="host1",
                                hostname="node1")

    def paths(self):
        sid = self.server_id
        return [
            "/v2.1/servers", "/v2.1/servers/detail", f"/v2.1/servers/{sid}",
            f"/v2.1/servers/{sid}/os-instance-actions",
            f"/v2.1/servers/{sid}/metadata", f"/v2.1/servers/{sid}/tags",
            f"/v2.1/servers/{sid}/ips", "/v2.1/flavors",
            "/v2.1/flavors/detail", "/v2.1/flavors/1",
            "/v2.1/flavors/1/os-extra_specs", "/v2.1/os-keypairs",
            "/v2.1/os-hypervisors", "/v2.1/os-hypervisors/detail",
            f"/v2.1/os-hypervisors/{self.node['uuid']}",
            "/v2.1/os-services", "/v2.1/os-server-groups", "/v2.1/limits",
            "/v2.1/os-availability-zone", "/v2.1/os-aggregates",
            "/v2.1/os-quota-sets/project",
            "/v2.1/os-quota-sets/project/defaults"]

    def test_unknown_parameter_400_from_2102(self):
        for path in self.paths():
            # before 2.102 ignored (servers and limits refuse from 2.75)
            before = self.get(path + "?bogus=1", token="admin:admin",
                              version="2.74")
            self.assertEqual(before.code, 200, (path, before))
            self.assertFault(self.get(path + "?bogus=1",
                                      token="admin:admin",
                                      version="2.102"), 400, "bogus")
            self.assertEqual(self.get(path, token="admin:admin",
                                      version="2.102").code, 200, path)

    def test_known_parameters_accepted_at_2102(self):
        sid = self.server_id
        for path in (
                "/v2.1/servers?limit=1&sort_key=display_name&sort_dir=asc"
                "&name=new&status=BUILD&all_tenants=1",
                "/v2.1/servers/detail?availability_zone=nova&user_id=user",
                "/v2.1/flavors?minRam=0&minDisk=0&is_public=None&limit=5"
                "&sort_key=name&sort_dir=desc&name=m1.tiny",
                "/v2.1/flavors/detail?marker=1",
                "/v2.1/os-keypairs?user_id=user&limit=2",
                "/v2.1/os-hypervisors?with_servers=true",
                "/v2.1/os-hypervisors/detail?limit=1",
                f"/v2.1/os-hypervisors/{self.node['uuid']}"
                "?with_servers=false",
                f"/v2.1/servers/{sid}/os-instance-actions?limit=1"
                "&changes-since=2000-01-01T00:00:00Z",
                "/v2.1/os-services?host=host1&binary=nova-compute",
                "/v2.1/os-server-groups?all_projects=true&limit=1&offset=0",
                "/v2.1/limits?tenant_id=project",
                "/v2.1/os-quota-sets/project?user_id=user",
                "/v2.1/os-quota-sets/project/detail?user_id=user"):
            response = self.get(path, token="admin:admin", version="2.102")
            self.assertEqual(response.code, 200, (path, response))

    def test_bad_values_at_2102(self):
        self.assertFault(self.get("/v2.1/flavors?limit=abc",
                                  token="admin:admin", version="2.102"),
                         400, "limit")
        self.assertFault(self.get("/v2.1/flavors?sort_dir=up",
                                  token="admin:admin", version="2.102"),
                         400, "sort_dir")
        self.assertFault(self.get("/v2.1/os-hypervisors?with_servers=maybe",
                                  token="admin:admin", version="2.102"),
                         400, "with_servers")
        # the flavors' rxtx_factor filter is gone at 2.102
        self.assertFault(self.get("/v2.1/flavors?rxtx_factor=1.0",
                                  token="admin:admin", version="2.102"),
                         400, "rxtx_factor")


class Flavors2102Tests(ServersTestCase):
    def test_fields_removed(self):
        for path, key in (("/v2.1/flavors/1", "flavor"),
                          ("/v2.1/flavors/detail", "flavors")):
            old = self.get(path, version="2.101").json[key]
            new = self.get(path, version="2.102").json[key]
            old = old[0] if isinstance(old, list) else old
            new = new[0] if isinstance(new, list) else new
            self.assertIn("rxtx_factor", old)
            self.assertIn("OS-FLV-DISABLED:disabled", old)
            # Nova's flavors/v2.102 flavor-get-resp.json
            self.assertEqual(set(new), {
                "OS-FLV-EXT-DATA:ephemeral", "description", "disk",
                "extra_specs", "id", "links", "name",
                "os-flavor-access:is_public", "ram", "swap", "vcpus"})

    def test_name_filter(self):
        names = {f["name"] for f in self.get(
            "/v2.1/flavors?name=m1.small", version="2.102").json["flavors"]}
        self.assertEqual(names, {"m1.small"})
        self.assertEqual(self.get("/v2.1/flavors?name=nope",
                                  version="2.102").json["flavors"], [])
        # ignored before
        self.assertEqual(len(self.get("/v2.1/flavors?name=m1.small",
                                      version="2.101").json["flavors"]), 2)

    def test_create_refuses_rxtx_factor(self):
        body = {"flavor": {"name": "f9", "id": "9", "ram": 512, "vcpus": 1,
                           "disk": 1, "rxtx_factor": 2.0}}
        self.assertFault(self.post("/v2.1/flavors", body, token="admin:admin",
                                   version="2.102"), 400, "rxtx_factor")
        created = self.post("/v2.1/flavors", body, token="admin:admin",
                            version="2.101")
        self.assertEqual(created.code, 200, created)
        del body["flavor"]["rxtx_factor"]
        body["flavor"].update(id="10", name="f10")
        created = self.post("/v2.1/flavors", body, token="admin:admin",
                            version="2.102")
        self.assertEqual(created.code, 200, created)
        self.assertNotIn("rxtx_factor", created.json["flavor"])
