"""``/os-server-groups`` through the real pipeline."""

from tests.api.infra_rows import insert_instance
from tests.base import APITestCase
from twisted_compute import exception
from twisted_compute.db import server_groups as groups_db


class ServerGroupsTests(APITestCase):
    def create(self, version="2.1", token="u:p", **group):
        group.setdefault("name", "g")
        if version < "2.64" or version in ("2.7", "2.8", "2.9"):
            group.setdefault("policies", ["anti-affinity"])
        return self.post("/v2.1/os-server-groups", {"server_group": group},
                         token=token, version=version)

    def test_create_shapes(self):
        response = self.create()
        self.assertEqual(response.code, 200, response)
        body = response.json["server_group"]
        self.assertEqual(set(body), {"id", "name", "policies", "members",
                                     "metadata"})
        self.assertEqual((body["policies"], body["members"],
                          body["metadata"]), (["anti-affinity"], [], {}))
        body = self.create(version="2.13").json["server_group"]
        self.assertEqual((body["project_id"], body["user_id"]), ("p", "u"))
        response = self.create(version="2.79", policy="anti-affinity",
                               rules={"max_server_per_host": 3})
        body = response.json["server_group"]
        self.assertEqual(set(body), {"id", "name", "policy", "rules",
                                     "members", "project_id", "user_id"})
        self.assertEqual(body["rules"], {"max_server_per_host": 3})
        shown = self.get(f"/v2.1/os-server-groups/{body['id']}",
                         token="u:p", version="2.1").json["server_group"]
        self.assertEqual(shown["policies"], ["anti-affinity"])

    def test_validation(self):
        self.assertFault(self.create(policies=["soft-affinity"]), 400,
                         "policies")
        self.assertEqual(self.create(version="2.15",
                                     policies=["soft-affinity"]).code, 200)
        self.assertFault(self.create(policies=["affinity",
                                               "anti-affinity"]), 400)
        self.assertFault(self.create(policies=[]), 400, "policies")
        self.assertFault(self.create(name=""), 400, "name")
        # 2.64 takes policy + rules, not policies
        self.assertFault(self.create(version="2.64",
                                     policies=["affinity"]), 400)
        self.assertFault(self.create(version="2.64", policy="affinity",
                                     rules={"max_server_per_host": 2}),
                         400, "anti-affinity")
        self.assertFault(self.create(version="2.64", policy="anti-affinity",
                                     rules={"max_server_per_host": 0}),
                         400, "max_server_per_host")
        self.assertFault(self.create(version="2.64", policy="anti-affinity",
                                     rules={"other": 1}), 400, "other")

    def test_members(self):
        group = self.create().json["server_group"]
        vm = self.run_db(insert_instance, project_id="p")
        gone = self.run_db(insert_instance, project_id="p", deleted=True)
        self.run_db(groups_db.add_members, self.conf, group["id"],
                    [vm["uuid"], gone["uuid"]])
        shown = self.get(f"/v2.1/os-server-groups/{group['id']}",
                         token="u:p").json["server_group"]
        self.assertEqual(shown["members"], [vm["uuid"]])
        self.assertEqual([g.uuid for g in self.run_db(
            groups_db.get_by_instance, vm["uuid"])], [group["id"]])

    def test_member_quota(self):
        self.put("/v2.1/os-quota-sets/p",
                 {"quota_set": {"server_group_members": 1}})
        group = self.create().json["server_group"]
        vms = [self.run_db(insert_instance, project_id="p")["uuid"]
               for _ in range(2)]
        self.run_db(groups_db.add_members, self.conf, group["id"], vms[:1])
        failure = self.failureResultOf(self.db.run(
            groups_db.add_members, self.conf, group["id"], vms[1:]),
            exception.ServerGroupMemberLimitExceeded)
        self.assertEqual(failure.value.code, 403)

    def test_list_projects_and_paging(self):
        for i in range(3):
            self.create(name=f"g{i}")
        self.create(name="theirs", token="v:q")
        mine = self.get("/v2.1/os-server-groups", token="u:p").json
        self.assertEqual([g["name"] for g in mine["server_groups"]],
                         ["g0", "g1", "g2"])
        page = self.get("/v2.1/os-server-groups?offset=1&limit=1",
                        token="u:p").json["server_groups"]
        self.assertEqual([g["name"] for g in page], ["g1"])
        # all_projects: admins only; others just get their own
        allp = self.get("/v2.1/os-server-groups?all_projects=True").json
        self.assertEqual(len(allp["server_groups"]), 4)
        self.assertEqual(len(self.get(
            "/v2.1/os-server-groups?all_projects=True",
            token="u:p").json["server_groups"]), 3)
        self.assertFault(self.get("/v2.1/os-server-groups?limit=-1",
                                  token="u:p"), 400, "limit")

    def test_other_project_and_delete(self):
        group = self.create().json["server_group"]
        path = f"/v2.1/os-server-groups/{group['id']}"
        # Another project's group is invisible (404, as for an unknown
        # id), never forbidden, and is not deleted.
        unknown = "/v2.1/os-server-groups/" + "0" * 8 + "-0000-0000-0000-" \
            + "0" * 12
        for token in ("v:q", "u:q"):
            self.assertFault(self.get(path, token=token), 404,
                             "could not be found")
            self.assertFault(self.delete(path, token=token), 404,
                             "could not be found")
            self.assertFault(self.get(unknown, token=token), 404,
                             "could not be found")
        self.assertNotIn(group["id"], [g["id"] for g in self.get(
            "/v2.1/os-server-groups", token="v:q").json["server_groups"]])
        self.assertEqual(self.get(path, token="admin:admin").code, 200)
        self.assertEqual(self.get(path, token="u:p").code, 200)
        self.assertEqual(self.delete(path, token="u:p").code, 204)
        self.assertFault(self.get(path, token="u:p"), 404)
        self.assertFault(self.delete(path, token="u:p"), 404)

    def test_quota(self):
        self.put("/v2.1/os-quota-sets/p", {"quota_set": {"server_groups": 1}})
        self.assertEqual(self.create().code, 200)
        self.assertFault(self.create(name="two"), 403, "server groups")
        usage = self.get("/v2.1/limits", token="u:p").json["limits"][
            "absolute"]
        self.assertEqual(usage["totalServerGroupsUsed"], 1)
