"""``/os-quota-class-sets``: Nova's shapes per microversion, and the
``default`` class as every project's defaults in the quota checks,
``os-quota-sets/{p}/defaults`` and ``/limits``."""

from __future__ import annotations

from tests.api.test_servers_base import ServersTestCase

BASE = {"cores", "id", "instances", "key_pairs", "metadata_items", "ram"}
INJECTED = {"injected_file_content_bytes", "injected_file_path_bytes",
            "injected_files"}
NETWORK = {"fixed_ips", "floating_ips", "security_group_rules",
           "security_groups"}
GROUPS = {"server_group_members", "server_groups"}
PATH = "/v2.1/os-quota-class-sets/default"


class QuotaClassesTests(ServersTestCase):
    def test_show_shapes(self):
        for version, keys in (("2.1", BASE | INJECTED | NETWORK),
                              ("2.49", BASE | INJECTED | NETWORK),
                              ("2.50", BASE | INJECTED | GROUPS),
                              ("2.57", BASE | GROUPS)):
            response = self.get(PATH, version=version)
            self.assertEqual(response.code, 200, response)
            body = response.json["quota_class_set"]
            self.assertEqual(set(body), keys, version)
            self.assertEqual(body["id"], "default")
            self.assertEqual(body["cores"], self.conf.quota.cores)
        body = self.get(PATH).json["quota_class_set"]
        self.assertEqual((body["floating_ips"], body["injected_file_path_bytes"]),
                         (-1, self.conf.quota.injected_file_path_length))

    def test_update_shape_and_validation(self):
        response = self.put(PATH, {"quota_class_set": {"cores": 50}},
                            version="2.57")
        self.assertEqual(response.code, 200, response)
        self.assertEqual(set(response.json["quota_class_set"]),
                         (BASE | GROUPS) - {"id"})
        self.assertEqual(response.json["quota_class_set"]["cores"], 50)
        for version, body in (
                ("2.1", {"server_groups": 1}), ("2.50", {"floating_ips": 1}),
                ("2.57", {"injected_files": 1}), ("2.1", {"cores": -2}),
                ("2.1", {"cores": "x"}), ("2.1", {"force": True}),
                # a digit string beyond the database's integers
                ("2.1", {"key_pairs": "9" * 30})):
            self.assertFault(self.put(PATH, {"quota_class_set": body},
                                      version=version), 400)
        self.assertEqual(self.put(PATH, {"quota_class_set": {
            "floating_ips": 3, "instances": "4"}}).code, 200)
        self.assertEqual(self.get(PATH).json["quota_class_set"][
            "instances"], 4)
        self.assertFault(self.put("/v2.1/os-quota-class-sets/" + "x" * 256,
                                  {"quota_class_set": {"cores": 1}}), 400)

    def test_admin_only(self):
        self.assertFault(self.get(PATH, token="user:project"), 403)
        self.assertFault(self.put(PATH, {"quota_class_set": {"cores": 1}},
                                  token="user:project"), 403)

    def test_default_class_is_every_projects_default(self):
        self.put(PATH, {"quota_class_set": {"instances": 1, "cores": 7}})
        defaults = self.get("/v2.1/os-quota-sets/project/defaults",
                            token="user:project").json["quota_set"]
        self.assertEqual((defaults["instances"], defaults["cores"]), (1, 7))
        shown = self.get("/v2.1/os-quota-sets/project",
                         token="user:project").json["quota_set"]
        self.assertEqual(shown["instances"], 1)
        absolute = self.get("/v2.1/limits", token="user:project").json[
            "limits"]["absolute"]
        self.assertEqual((absolute["maxTotalInstances"],
                          absolute["maxTotalCores"]), (1, 7))
        self.create_server(token="user:project")
        self.assertFault(self.create_server(name="two", token="user:project",
                                            expect=403), 403, "instances")
        # a project's own override still wins
        self.put("/v2.1/os-quota-sets/project",
                 {"quota_set": {"instances": 3}})
        self.create_server(name="two", token="user:project")

    def test_other_classes_are_stored_not_used(self):
        path = "/v2.1/os-quota-class-sets/gold"
        self.put(path, {"quota_class_set": {"instances": 99}})
        self.assertEqual(self.get(path).json["quota_class_set"],
                         {**self.get(PATH).json["quota_class_set"],
                          "id": "gold", "instances": 99})
        self.assertEqual(self.get("/v2.1/os-quota-sets/p/defaults").json[
            "quota_set"]["instances"], self.conf.quota.instances)
