"""``/flavors/{id}/os-extra_specs`` through the real pipeline."""

from tests.base import APITestCase

BASE = "/v2.1/flavors/7/os-extra_specs"


class FlavorExtraSpecsTests(APITestCase):
    def setUp(self):
        super().setUp()
        response = self.post("/v2.1/flavors", {"flavor": {
            "name": "f", "id": "7", "ram": 512, "vcpus": 1, "disk": 1}})
        self.assertEqual(response.code, 200, response)

    def test_create_merges_and_lists(self):
        response = self.post(BASE, {"extra_specs": {
            "hw:cpu_policy": "shared", "hw:numa_nodes": 1}})
        self.assertEqual(response.code, 200, response)
        self.assertEqual(response.json, {"extra_specs": {
            "hw:cpu_policy": "shared", "hw:numa_nodes": "1"}})
        self.post(BASE, {"extra_specs": {"hw:numa_nodes": "2",
                                         "quota:cpu_shares": "10"}})
        listed = self.get(BASE, token="u:p")
        self.assertEqual(listed.json, {"extra_specs": {
            "hw:cpu_policy": "shared", "hw:numa_nodes": "2",
            "quota:cpu_shares": "10"}})
        # 2.61 shows them in the flavor itself
        flavor = self.get("/v2.1/flavors/7", version="2.61").json["flavor"]
        self.assertEqual(flavor["extra_specs"]["hw:numa_nodes"], "2")

    def test_show_update_delete_key(self):
        self.post(BASE, {"extra_specs": {"hw:numa_nodes": "1"}})
        shown = self.get(BASE + "/hw:numa_nodes", token="u:p")
        self.assertEqual(shown.json, {"hw:numa_nodes": "1"})
        updated = self.put(BASE + "/hw:numa_nodes", {"hw:numa_nodes": "2"})
        self.assertEqual(updated.code, 200, updated)
        self.assertEqual(updated.json, {"hw:numa_nodes": "2"})
        self.assertEqual(self.get(BASE + "/hw:numa_nodes").json,
                         {"hw:numa_nodes": "2"})
        deleted = self.delete(BASE + "/hw:numa_nodes")
        self.assertEqual(deleted.code, 200, deleted)
        self.assertFault(self.get(BASE + "/hw:numa_nodes"), 404,
                         "hw:numa_nodes")
        self.assertFault(self.delete(BASE + "/hw:numa_nodes"), 404)

    def test_update_body_must_match_uri(self):
        self.assertFault(self.put(BASE + "/a", {"b": "1"}), 400,
                         "mismatch")
        self.assertFault(self.put(BASE + "/a", {"a": "1", "b": "2"}), 400)
        self.assertFault(self.put(BASE + "/a", {}), 400)

    def test_invalid_key_is_rejected(self):
        response = self.post(BASE, {"extra_specs": {"bad/key!": "1"}})
        self.assertFault(response, 400, "bad/key!")
        response = self.post(BASE, {"extra_specs": {"k": "x" * 256}})
        self.assertFault(response, 400, "k")
        self.assertFault(self.post(BASE, {"specs": {}}), 400, "specs")

    def test_writes_need_admin(self):
        self.assertFault(self.post(BASE, {"extra_specs": {"a": "1"}},
                                   token="u:p"), 403)
        self.post(BASE, {"extra_specs": {"a": "1"}})
        self.assertFault(self.put(BASE + "/a", {"a": "2"}, token="u:p"),
                         403)
        self.assertFault(self.delete(BASE + "/a", token="u:p"), 403)
        self.assertEqual(self.get(BASE + "/a").json, {"a": "1"})

    def test_unknown_flavor(self):
        self.assertFault(self.get("/v2.1/flavors/nope/os-extra_specs"),
                         404)
        self.assertFault(self.post("/v2.1/flavors/nope/os-extra_specs",
                                   {"extra_specs": {"a": "1"}}), 404)
