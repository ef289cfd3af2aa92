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


class ExtraSpecValidationTests(APITestCase):
    """2.86: keys of the known namespaces are checked."""

    def setUp(self):
        super().setUp()
        self.assertEqual(self.post("/v2.1/flavors", {"flavor": {
            "name": "f", "id": "7", "ram": 512, "vcpus": 1,
            "disk": 1}}).code, 200)

    def create(self, specs, version="2.86"):
        return self.post(BASE, {"extra_specs": specs}, version=version)

    def test_valid_specs_accepted(self):
        specs = {"hw:cpu_policy": "dedicated", "hw:numa_nodes": "2",
                 "hw:numa_cpus.0": "0-1", "hw:numa_mem.0": "512",
                 "hw:mem_page_size": "2MB", "hw_rng:allowed": "True",
                 "hw_video:ram_max_mb": "64", "os:secure_boot": "required",
                 "quota:disk_read_iops_sec": "100",
                 "resources:VCPU": "2", "resources1:CUSTOM_GPU": "1",
                 "trait:HW_CPU_X86_AVX2": "required",
                 "trait1:COMPUTE_STATUS_DISABLED": "forbidden",
                 "aggregate_instance_extra_specs:ssd": "true",
                 "capabilities:cpu_info:features": "avx",
                 "pci_passthrough:alias": "gpu:2",
                 "accel:device_profile": "fpga",
                 # other namespaces and no namespace: as they are
                 "vendor:anything": "goes", "plain": "too"}
        response = self.create(specs)
        self.assertEqual(response.code, 200, response)
        self.assertEqual(response.json["extra_specs"], specs)

    def test_bad_specs_refused_from_286(self):
        for key, value, words in (
                ("hw:cpu_policy", "fastest", "must be one of"),
                ("hw:numa_nodes", "two", "integer"),
                ("hw:numa_nodes", "0", "greater than or equal to 1"),
                ("hw:cpu_realtime", "maybe", "boolean"),
                ("hw:cpu_poliocy", "shared", "hw:cpu_poliocy"),
                ("hw_rng:rate_bytes", "-1", "greater"),
                ("quota:cpu_shares", "lots", "integer"),
                ("resources:VCPU", "x", "integer"),
                ("trait:HW_CPU_X86_AVX2", "wanted", "required, forbidden"),
                ("os:unknown_key", "1", "does not appear to be a valid"),
                ("pci_passthrough:alias", "gpu", "pattern")):
            fault = self.assertFault(self.create({key: value}), 400, words)
            self.assertTrue(fault["message"].startswith(
                "Validation failed; "), key)
            # before 2.86 stored as given
            self.assertEqual(self.create({key: value},
                                         version="2.85").code, 200, key)
        # PUT of one key too
        self.assertFault(self.put(BASE + "/hw:cpu_policy", {
            "hw:cpu_policy": "fastest"}, version="2.86"), 400,
            "must be one of")
        self.assertEqual(self.put(BASE + "/hw:cpu_policy", {
            "hw:cpu_policy": "shared"}, version="2.86").code, 200)
