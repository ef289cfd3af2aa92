"""``/flavors`` through the real pipeline."""

from tests.base import APITestCase, on_backends


class FlavorsTests(APITestCase):
    def create(self, name="m1.small", flavorid="2", ram=2048, vcpus=1,
               disk=20, version=None, **extra):
        body = {"flavor": {"name": name, "id": flavorid, "ram": ram,
                           "vcpus": vcpus, "disk": disk, **extra}}
        return self.post("/v2.1/flavors", body, version=version)

    def test_create_show_list(self):
        response = self.create(version="2.79", description="small one")
        self.assertEqual(response.code, 200, response)
        flavor = response.json["flavor"]
        self.assertEqual(flavor["id"], "2")
        self.assertEqual(flavor["ram"], 2048)
        self.assertEqual(flavor["description"], "small one")
        self.assertEqual(flavor["swap"], 0)
        self.assertEqual(
            flavor["links"][0]["href"],
            "http://localhost:8774/v2.1/flavors/2")
        listed = self.get("/v2.1/flavors", token="u:p").json["flavors"]
        self.assertEqual([f["id"] for f in listed], ["2"])
        self.assertEqual(set(listed[0]), {"id", "name", "links"})
        shown = self.get("/v2.1/flavors/2", token="u:p").json["flavor"]
        self.assertEqual(shown["swap"], "")  # before 2.75
        self.assertNotIn("description", shown)  # before 2.55

    def test_id_forms(self):
        # A JSON number is taken as its text, as Nova takes it.
        response = self.post("/v2.1/flavors", {"flavor": {
            "name": "numbered", "ram": 64, "vcpus": 1, "disk": 0,
            "id": 12345}})
        self.assertEqual(response.code, 200, response)
        self.assertEqual(response.json["flavor"]["id"], "12345")
        self.assertEqual(self.get("/v2.1/flavors/12345").json["flavor"][
            "name"], "numbered")
        # null or absent: a generated uuid.
        for extra in ({"id": None}, {}):
            response = self.post("/v2.1/flavors", {"flavor": {
                "name": f"generated-{len(extra)}", "ram": 64, "vcpus": 1,
                "disk": 0, **extra}})
            self.assertEqual(response.code, 200, response)
            self.assertRegex(response.json["flavor"]["id"],
                             r"^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$")
        for bad in ("", " x", True, [1]):
            response = self.post("/v2.1/flavors", {"flavor": {
                "name": "bad", "ram": 64, "vcpus": 1, "disk": 0,
                "id": bad}})
            self.assertFault(response, 400, "id")

    def test_only_admin_creates(self):
        response = self.post(
            "/v2.1/flavors", {"flavor": {"name": "x", "ram": 1, "vcpus": 1,
                                         "disk": 0}}, token="user:proj")
        self.assertFault(response, 403)

    def test_bad_body_names_the_field(self):
        response = self.create(ram="lots")
        self.assertFault(response, 400, "ram")
        response = self.post("/v2.1/flavors", raw=b"{not json",
                             headers={"Content-Type": "application/json"})
        self.assertFault(response, 400, "Malformed request body")

    def test_duplicate_is_conflict(self):
        self.assertEqual(self.create().code, 200)
        self.assertFault(self.create(flavorid="3"), 409, "m1.small")

    def test_pagination_and_min_ram(self):
        for i in range(5):
            self.create(name=f"f{i}", flavorid=str(i), ram=512 * (i + 1))
        page = self.get("/v2.1/flavors?limit=2").json
        self.assertEqual([f["id"] for f in page["flavors"]], ["0", "1"])
        self.assertIn("marker=1", page["flavors_links"][0]["href"])
        page = self.get("/v2.1/flavors?limit=2&marker=1").json
        self.assertEqual([f["id"] for f in page["flavors"]], ["2", "3"])
        big = self.get("/v2.1/flavors/detail?minRam=2000").json["flavors"]
        self.assertEqual(sorted(f["id"] for f in big), ["3", "4"])
        self.assertFault(self.get("/v2.1/flavors?marker=nope"), 400)

    def test_private_flavor_hidden_from_other_projects(self):
        self.create(**{"os-flavor-access:is_public": False})
        self.assertEqual(self.get("/v2.1/flavors", token="u:p").json,
                         {"flavors": []})
        self.assertFault(self.get("/v2.1/flavors/2", token="u:p"), 404)

    def test_delete(self):
        self.create()
        self.assertEqual(self.delete("/v2.1/flavors/2").code, 202)
        self.assertFault(self.get("/v2.1/flavors/2"), 404)
        self.assertFault(self.delete("/v2.1/flavors/2"), 404)

    def test_update_description_needs_255(self):
        self.create()
        body = {"flavor": {"description": "new"}}
        self.assertFault(self.put("/v2.1/flavors/2", body), 404)
        response = self.put("/v2.1/flavors/2", body, version="2.55")
        self.assertEqual(response.json["flavor"]["description"], "new")


on_backends(FlavorsTests, "postgresql", "mariadb", namespace=globals())
