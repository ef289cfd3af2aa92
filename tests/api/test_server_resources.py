"""Sub-resources of a server: metadata, tags, instance actions, server
password, topology."""

from __future__ import annotations

import json
import os

from tests.api.test_servers_base import ServersTestCase, random_uuid
from twisted_compute.db import models as m

SAMPLES = "/work/shared/nova-api-samples/os-instance-actions"


def sample(path):
    full = os.path.join(SAMPLES, path)
    if not os.path.exists(full):
        return None
    with open(full) as handle:
        return json.load(handle)


class MetadataTests(ServersTestCase):
    def setUp(self):
        super().setUp()
        self.server_id = self.create_server(metadata={"a": "1"})
        self.set_state(self.server_id, vm_state="active", task_state=None)
        self.base = f"/v2.1/servers/{self.server_id}/metadata"

    def test_index_show(self):
        self.assertEqual(self.get(self.base, token="user:project").json,
                         {"metadata": {"a": "1"}})
        self.assertEqual(self.get(self.base + "/a", token="user:project").json,
                         {"meta": {"a": "1"}})
        self.assertFault(self.get(self.base + "/b", token="user:project"),
                         404)
        self.assertFault(self.get(self.base, token="user:other"), 404)

    def test_create_merges_and_update_all_replaces(self):
        response = self.post(self.base, {"metadata": {"b": "2"}},
                             token="user:project")
        self.assertEqual(response.code, 200, response)
        self.assertEqual(response.json, {"metadata": {"a": "1", "b": "2"}})
        response = self.put(self.base, {"metadata": {"c": "3"}},
                            token="user:project")
        self.assertEqual(response.json, {"metadata": {"c": "3"}})
        self.assertEqual(self.show(self.server_id)["metadata"], {"c": "3"})

    def test_update_one_and_delete(self):
        response = self.put(self.base + "/a", {"meta": {"a": "9"}},
                            token="user:project")
        self.assertEqual(response.json, {"meta": {"a": "9"}})
        self.assertFault(self.put(self.base + "/a", {"meta": {"b": "9"}},
                                  token="user:project"), 400, "mismatch")
        self.assertFault(self.put(self.base + "/a", {"meta": {
            "a": "1", "b": "2"}}, token="user:project"), 400, "too many")
        response = self.delete(self.base + "/a", token="user:project")
        self.assertEqual(response.code, 204)
        self.assertEqual(self.get(self.base, token="user:project").json,
                         {"metadata": {}})
        self.assertFault(self.delete(self.base + "/a", token="user:project"),
                         404)

    def test_validation_state_and_quota(self):
        self.assertFault(self.post(self.base, {"metadata": {"a": 1}},
                                   token="user:project"), 400, "metadata")
        self.assertFault(self.post(self.base, {"metadata": {
            f"k{i}": "v" for i in range(128)}}, token="user:project"), 403)
        self.set_state(self.server_id, vm_state="building",
                       task_state="scheduling")
        self.assertFault(self.post(self.base, {"metadata": {"b": "2"}},
                                   token="user:project"), 409,
                         "update_instance_metadata")


class TagsTests(ServersTestCase):
    def setUp(self):
        super().setUp()
        self.server_id = self.create_server()
        self.set_state(self.server_id, vm_state="active", task_state=None)
        self.base = f"/v2.1/servers/{self.server_id}/tags"

    def req(self, method, path="", body=None, version="2.26"):
        return self.request(method, self.base + path, body=body,
                            token="user:project", version=version)

    def test_tags_need_2_26(self):
        self.assertFault(self.req("GET", version="2.25"), 404)

    def test_replace_add_check_delete(self):
        response = self.req("PUT", body={"tags": ["tag1", "tag2"]})
        self.assertEqual(response.json, {"tags": ["tag1", "tag2"]})
        self.assertEqual(self.req("GET").json, {"tags": ["tag1", "tag2"]})
        response = self.req("PUT", "/tag3")
        self.assertEqual(response.code, 201)
        self.assertTrue(response.header("location").endswith("/tags/tag3"))
        self.assertEqual(self.req("PUT", "/tag3").code, 204)
        self.assertEqual(self.req("GET", "/tag3").code, 204)
        self.assertFault(self.req("GET", "/nope"), 404)
        self.assertEqual(self.req("DELETE", "/tag3").code, 204)
        self.assertFault(self.req("DELETE", "/tag3"), 404)
        self.assertEqual(self.req("DELETE").code, 204)
        self.assertEqual(self.req("GET").json, {"tags": []})

    def test_tag_validation_and_limit(self):
        self.assertFault(self.req("PUT", body={"tags": ["a,b"]}), 400)
        self.assertFault(self.req("PUT", body={
            "tags": [f"t{i}" for i in range(51)]}), 400, "50")
        self.assertEqual(self.req("PUT", body={
            "tags": [f"t{i}" for i in range(50)]}).code, 200)
        self.assertFault(self.req("PUT", "/t50"), 400, "50")
        self.assertFault(self.req("PUT", "/" + "x" * 61), 400, "tag")

    def test_tags_in_wrong_state(self):
        self.set_state(self.server_id, vm_state="building",
                       task_state="scheduling")
        self.assertFault(self.req("PUT", "/x"), 409, "vm_state building")
        self.assertEqual(self.req("GET").code, 200)


class InstanceActionsTests(ServersTestCase):
    def setUp(self):
        super().setUp()
        self.rpc = self.use_rpc()
        self.server_id = self.create_server()
        self.set_state(self.server_id, vm_state="active", task_state=None,
                       host="compute1")
        self.base = f"/v2.1/servers/{self.server_id}/os-instance-actions"

    def stop(self):
        response = self.action(self.server_id, {"os-stop": None})
        self.assertEqual(response.code, 202)
        return response.header("x-openstack-request-id")

    def test_list_and_show_shapes(self):
        request_id = self.stop()
        listed = self.get(self.base, token="user:project").json[
            "instanceActions"]
        self.assertEqual([a["action"] for a in listed], ["stop", "create"])
        self.assertEqual(listed[0]["request_id"], request_id)
        expected = sample("instance-actions-list-resp.json")
        if expected:
            self.assertEqual(set(listed[0]),
                             set(expected["instanceActions"][0]))
        self.assertEqual(listed[0]["user_id"], "user")
        self.assertEqual(listed[0]["project_id"], "project")
        with_updated = self.get(self.base, token="user:project",
                                version="2.58").json["instanceActions"]
        self.assertIn("updated_at", with_updated[0])

    def test_events_visibility(self):
        request_id = self.stop()
        with self.db.engine.begin() as conn:
            action_id = conn.execute(m.instance_actions.select().where(
                m.instance_actions.c.request_id == request_id)).first().id
            conn.execute(m.instance_actions_events.insert().values(
                action_id=action_id, event="compute_stop_instance",
                start_time=m.utcnow(), finish_time=m.utcnow(),
                result="Success", host="compute1", traceback=None))
        path = f"{self.base}/{request_id}"
        user_old = self.get(path, token="user:project").json["instanceAction"]
        self.assertNotIn("events", user_old)
        admin_old = self.get(path, token="admin:admin").json["instanceAction"]
        expected = sample("instance-action-get-resp.json")
        if expected:
            self.assertEqual(set(admin_old), set(expected["instanceAction"]))
            self.assertEqual(set(admin_old["events"][0]),
                             set(expected["instanceAction"]["events"][0]))
        user_new = self.get(path, token="user:project",
                            version="2.62").json["instanceAction"]
        expected = sample("v2.62/instance-action-get-non-admin-resp.json")
        if expected:
            self.assertEqual(set(user_new), set(expected["instanceAction"]))
            self.assertEqual(set(user_new["events"][0]),
                             set(expected["instanceAction"]["events"][0]))
        admin_new = self.get(path, token="admin:admin",
                             version="2.62").json["instanceAction"]
        expected = sample("v2.62/instance-action-get-resp.json")
        if expected:
            self.assertEqual(set(admin_new["events"][0]),
                             set(expected["instanceAction"]["events"][0]))
        self.assertEqual(admin_new["events"][0]["host"], "compute1")
        self.assertFault(self.get(f"{self.base}/req-nope",
                                  token="user:project"), 404)

    def test_failed_event_details_from_2_84(self):
        from twisted_compute.db import actions as actions_db
        request_id = self.stop()
        self.run_db(actions_db.action_event_start, self.server_id,
                    request_id, "compute_stop_instance", "compute1")
        self.run_db(actions_db.action_event_finish, self.server_id,
                    request_id, "compute_stop_instance", "compute1",
                    "Error", "Traceback ...", "The guest refused to stop")
        path = f"{self.base}/{request_id}"
        before = self.get(path, token="admin:admin",
                          version="2.83").json["instanceAction"]
        self.assertNotIn("details", before["events"][0])
        at = self.get(path, token="admin:admin",
                      version="2.84").json["instanceAction"]
        [event] = at["events"]
        self.assertEqual(set(event), {
            "details", "event", "finish_time", "host", "hostId", "result",
            "start_time", "traceback"})  # Nova's v2.84 sample
        self.assertEqual(event["details"], "The guest refused to stop")
        self.assertEqual(event["result"], "Error")
        # The project's reader sees no details (events:details is
        # admin-only by default here).
        user = self.get(path, token="user:project",
                        version="2.84").json["instanceAction"]
        self.assertEqual(set(user["events"][0]), {
            "event", "finish_time", "hostId", "result", "start_time"})

    def test_pagination_from_2_58(self):
        self.stop()
        page = self.get(self.base + "?limit=1", token="user:project",
                        version="2.58").json
        self.assertEqual([a["action"] for a in page["instanceActions"]],
                         ["stop"])
        self.assertIn("marker=", page["links"][0]["href"])
        marker = page["instanceActions"][0]["request_id"]
        page = self.get(f"{self.base}?limit=1&marker={marker}",
                        token="user:project", version="2.58").json
        self.assertEqual([a["action"] for a in page["instanceActions"]],
                         ["create"])
        none = self.get(self.base + "?changes-since=2999-01-01T00:00:00Z",
                        token="user:project", version="2.58").json
        self.assertEqual(none["instanceActions"], [])

    def test_deleted_server_from_2_21(self):
        self.set_state(self.server_id, host=None)
        self.assertEqual(self.delete(f"/v2.1/servers/{self.server_id}",
                                     token="user:project").code, 204)
        self.assertFault(self.get(self.base, token="user:project",
                                  version="2.20"), 404)
        listed = self.get(self.base, token="user:project",
                          version="2.21").json["instanceActions"]
        self.assertEqual([a["action"] for a in listed], ["delete", "create"])


class PasswordAndTopologyTests(ServersTestCase):
    def test_password(self):
        server_id = self.create_server()
        path = f"/v2.1/servers/{server_id}/os-server-password"
        self.assertEqual(self.get(path, token="user:project").json,
                         {"password": ""})
        self.set_state(server_id, system_metadata={"password": "c2VjcmV0"})
        self.assertEqual(self.get(path, token="user:project").json,
                         {"password": "c2VjcmV0"})
        self.assertEqual(self.delete(path, token="user:project").code, 204)
        self.assertEqual(self.get(path, token="user:project").json,
                         {"password": ""})
        self.assertFault(self.get(path, token="user:other"), 404)

    def test_topology(self):
        server_id = self.create_server()
        path = f"/v2.1/servers/{server_id}/topology"
        self.assertFault(self.get(path, token="user:project",
                                  version="2.77"), 404)
        self.assertEqual(self.get(path, token="user:project",
                                  version="2.78").json,
                         {"nodes": [], "pagesize_kb": None})
        self.assertFault(self.get(f"/v2.1/servers/{random_uuid()}/topology",
                                  token="user:project", version="2.78"), 404)
