"""``/os-quota-sets`` through the real pipeline."""

from tests.api.infra_rows import insert_instance
from tests.base import APITestCase

NETWORK = {"fixed_ips", "floating_ips", "security_group_rules",
           "security_groups"}
INJECTED = {"injected_files", "injected_file_content_bytes",
            "injected_file_path_bytes"}
CORE = {"instances", "cores", "ram", "metadata_items", "key_pairs",
        "server_groups", "server_group_members"}


class QuotaSetsTests(APITestCase):
    def test_show_fields_per_version(self):
        shown = self.get("/v2.1/os-quota-sets/p", token="u:p").json
        self.assertEqual(set(shown["quota_set"]),
                         CORE | NETWORK | INJECTED | {"id"})
        self.assertEqual(shown["quota_set"]["id"], "p")
        self.assertEqual(shown["quota_set"]["instances"],
                         self.conf.quota.instances)
        self.assertEqual(shown["quota_set"]["floating_ips"], -1)
        self.assertEqual(shown["quota_set"]["injected_file_path_bytes"],
                         self.conf.quota.injected_file_path_length)
        mid = self.get("/v2.1/os-quota-sets/p", token="u:p",
                       version="2.36").json["quota_set"]
        self.assertEqual(set(mid), CORE | INJECTED | {"id"})
        new = self.get("/v2.1/os-quota-sets/p", token="u:p",
                       version="2.79").json["quota_set"]
        self.assertEqual(set(new), CORE | {"id"})

    def test_other_project_is_forbidden(self):
        self.assertFault(self.get("/v2.1/os-quota-sets/other", token="u:p"),
                         403)
        self.assertEqual(self.get("/v2.1/os-quota-sets/other").code, 200)

    def test_defaults(self):
        self.put("/v2.1/os-quota-sets/p", {"quota_set": {"cores": 3}})
        defaults = self.get("/v2.1/os-quota-sets/p/defaults", token="u:p",
                            version="2.79").json["quota_set"]
        self.assertEqual(defaults["cores"], self.conf.quota.cores)
        self.assertEqual(defaults["id"], "p")

    def test_update_and_delete(self):
        response = self.put("/v2.1/os-quota-sets/p",
                            {"quota_set": {"cores": 45}})
        self.assertEqual(response.code, 200, response)
        body = response.json["quota_set"]
        self.assertNotIn("id", body)
        self.assertEqual(body["cores"], 45)
        self.assertEqual(set(body), CORE | NETWORK | INJECTED)
        self.assertEqual(self.get("/v2.1/os-quota-sets/p").json[
            "quota_set"]["cores"], 45)
        self.assertEqual(self.delete("/v2.1/os-quota-sets/p").code, 202)
        self.assertEqual(self.get("/v2.1/os-quota-sets/p").json[
            "quota_set"]["cores"], self.conf.quota.cores)

    def test_update_needs_admin_and_valid_values(self):
        self.assertFault(self.put("/v2.1/os-quota-sets/p",
                                  {"quota_set": {"cores": 1}}, token="u:p"),
                         403)
        self.assertFault(self.put("/v2.1/os-quota-sets/p",
                                  {"quota_set": {"cores": "many"}}), 400,
                         "cores")
        self.assertFault(self.put("/v2.1/os-quota-sets/p",
                                  {"quota_set": {"cores": -2}}), 400,
                         "cores")
        self.assertFault(self.put("/v2.1/os-quota-sets/p",
                                  {"quota_set": {"bogus": 1}}), 400,
                         "bogus")
        # network quotas are gone at 2.36, personality at 2.57
        self.assertFault(self.put("/v2.1/os-quota-sets/p",
                                  {"quota_set": {"floating_ips": 1}},
                                  version="2.36"), 400, "floating_ips")
        self.assertFault(self.put("/v2.1/os-quota-sets/p",
                                  {"quota_set": {"injected_files": 1}},
                                  version="2.57"), 400, "injected_files")
        self.assertFault(self.delete("/v2.1/os-quota-sets/p", token="u:p"),
                         403)

    def test_below_usage_needs_force(self):
        self.run_db(insert_instance, project_id="p", vcpus=4)
        self.run_db(insert_instance, project_id="p", vcpus=4)
        self.assertFault(self.put("/v2.1/os-quota-sets/p",
                                  {"quota_set": {"instances": 1}}), 400,
                         "instances")
        forced = self.put("/v2.1/os-quota-sets/p",
                          {"quota_set": {"instances": 1, "force": "True"}})
        self.assertEqual(forced.json["quota_set"]["instances"], 1)
        detail = self.get("/v2.1/os-quota-sets/p/detail", token="u:p",
                          version="2.79").json["quota_set"]
        self.assertEqual(detail["instances"],
                         {"limit": 1, "in_use": 2, "reserved": 0})
        self.assertEqual(detail["cores"]["in_use"], 8)
        self.assertEqual(set(detail), CORE | {"id"})

    def test_user_quotas(self):
        response = self.put("/v2.1/os-quota-sets/p?user_id=alice",
                            {"quota_set": {"instances": 9}})
        self.assertEqual(response.json["quota_set"]["instances"], 9)
        self.assertEqual(self.get("/v2.1/os-quota-sets/p?user_id=alice")
                         .json["quota_set"]["instances"], 9)
        self.assertEqual(self.get("/v2.1/os-quota-sets/p")
                         .json["quota_set"]["instances"],
                         self.conf.quota.instances)
        # a user's limit may not pass the project's
        self.assertFault(self.put(
            "/v2.1/os-quota-sets/p?user_id=alice",
            {"quota_set": {"instances": self.conf.quota.instances + 1}}),
            400, "instances")
        self.delete("/v2.1/os-quota-sets/p?user_id=alice")
        self.assertEqual(self.get("/v2.1/os-quota-sets/p?user_id=alice")
                         .json["quota_set"]["instances"],
                         self.conf.quota.instances)
