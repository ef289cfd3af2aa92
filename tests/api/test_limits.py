"""``/limits`` through the real pipeline."""

from tests.api.infra_rows import insert_instance
from tests.base import APITestCase

ALWAYS = {"maxServerMeta", "maxTotalCores", "maxTotalInstances",
          "maxTotalKeypairs", "maxTotalRAMSize", "maxServerGroups",
          "maxServerGroupMembers", "totalCoresUsed", "totalInstancesUsed",
          "totalRAMUsed", "totalServerGroupsUsed"}
NETWORK = {"maxSecurityGroupRules", "maxSecurityGroups",
           "maxTotalFloatingIps", "totalSecurityGroupsUsed",
           "totalFloatingIpsUsed"}
PERSONALITY = {"maxPersonality", "maxPersonalitySize"}


class LimitsTests(APITestCase):
    def absolute(self, version=None, token="u:p", query=""):
        response = self.get("/v2.1/limits" + query, token=token,
                            version=version)
        self.assertEqual(response.code, 200, response)
        self.assertEqual(response.json["limits"]["rate"], [])
        self.assertEqual(set(response.json["limits"]), {"absolute", "rate"})
        return response.json["limits"]["absolute"]

    def test_fields_per_version(self):
        self.assertEqual(set(self.absolute()),
                         ALWAYS | NETWORK | PERSONALITY | {"maxImageMeta"})
        self.assertEqual(set(self.absolute("2.36")),
                         ALWAYS | PERSONALITY | {"maxImageMeta"})
        self.assertEqual(set(self.absolute("2.39")), ALWAYS | PERSONALITY)
        self.assertEqual(set(self.absolute("2.57")), ALWAYS)
        self.assertEqual(set(self.absolute("2.79")), ALWAYS)

    def test_values_follow_quotas_and_usage(self):
        self.put("/v2.1/os-quota-sets/p", {"quota_set": {"cores": 7}})
        self.run_db(insert_instance, project_id="p", vcpus=2, memory_mb=256)
        self.run_db(insert_instance, project_id="p", vcpus=3, memory_mb=256)
        self.run_db(insert_instance, project_id="p", vcpus=5, deleted=True)
        self.run_db(insert_instance, project_id="other", vcpus=9)
        absolute = self.absolute("2.79")
        self.assertEqual(absolute["maxTotalCores"], 7)
        self.assertEqual(absolute["maxTotalInstances"],
                         self.conf.quota.instances)
        self.assertEqual(absolute["totalCoresUsed"], 5)
        self.assertEqual(absolute["totalInstancesUsed"], 2)
        self.assertEqual(absolute["totalRAMUsed"], 512)

    def test_tenant_id_is_admin_only(self):
        self.run_db(insert_instance, project_id="other", vcpus=9)
        self.assertFault(self.get("/v2.1/limits?tenant_id=other",
                                  token="u:p"), 403)
        absolute = self.absolute(token="admin:admin",
                                 query="?tenant_id=other")
        self.assertEqual(absolute["totalCoresUsed"], 9)

    def test_unknown_query_rejected_from_275(self):
        self.assertEqual(self.get("/v2.1/limits?foo=1", token="u:p",
                                  version="2.74").code, 200)
        self.assertFault(self.get("/v2.1/limits?foo=1", token="u:p",
                                  version="2.75"), 400, "foo")
