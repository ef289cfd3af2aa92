"""Every resource with an owner is invisible to another project.

Project ``pa`` (user ``alice``) owns a server (with metadata, tags, an
instance action), a key pair, a server group and a private image; user
``bob`` of project ``pb`` tries every route on them.  Each route answers
404 with a Nova fault body, exactly as for an id that does not exist, and
nothing of ``pa`` shows in any of ``pb``'s lists.  The owner then gets a
2xx (or the route's own non-404 answer) for the same calls, so that a 404
here cannot come from a route that is simply missing.

Quotas are the one exception, as in Nova: a project id is not a secret
resource (any id has quotas), so another project's ``os-quota-sets``
answers 403 (policy), never its numbers.
"""

from __future__ import annotations

import os

from treq.testing import StubTreq

from tests.api.test_servers_base import IMAGE_ID, ServersTestCase
from tests.base import ETC, SyncThreadPool
from twisted_compute.api import pipeline
from twisted_compute.api.image.store import ImageStore, image_dir
from twisted_compute.api.openstack.compute import server_actions
from twisted_compute.db import models as m

OWNER = "alice:pa"
OTHER = "bob:pb"
OWN_IMAGE = "a1a1a1a1-2222-3333-4444-555555555555"

#: One valid body per server action the API accepts (the keys are those of
#: ServerActionsController's handlers).
ACTION_BODIES = {
    "reboot": {"reboot": {"type": "HARD"}},
    "lock": {"lock": None},
    "unlock": {"unlock": None},
    "os-resetState": {"os-resetState": {"state": "active"}},
    "os-getConsoleOutput": {"os-getConsoleOutput": {"length": 5}},
    "os-stop": {"os-stop": None},
    "os-start": {"os-start": None},
    "pause": {"pause": None},
    "unpause": {"unpause": None},
    "suspend": {"suspend": None},
    "resume": {"resume": None},
    "resize": {"resize": {"flavorRef": "2"}},
    "confirmResize": {"confirmResize": None},
    "revertResize": {"revertResize": None},
    "rebuild": {"rebuild": {"imageRef": IMAGE_ID}},
    "createImage": {"createImage": {"name": "snap"}},
    "createBackup": {"createBackup": {"name": "b", "backup_type": "daily",
                                      "rotation": 1}},
    "shelve": {"shelve": None},
    "shelveOffload": {"shelveOffload": None},
    "unshelve": {"unshelve": None},
    "rescue": {"rescue": None},
    "unrescue": {"unrescue": None},
    "migrate": {"migrate": None},
    "os-migrateLive": {"os-migrateLive": {"block_migration": "auto",
                                          "host": None}},
    "evacuate": {"evacuate": {}},
    "changePassword": {"changePassword": {"adminPass": "x"}},
    "addSecurityGroup": {"addSecurityGroup": {"name": "default"}},
    "removeSecurityGroup": {"removeSecurityGroup": {"name": "default"}},
    "forceDelete": {"forceDelete": None},
    "restore": {"restore": None},
    "trigger_crash_dump": {"trigger_crash_dump": None},
    "injectNetworkInfo": {"injectNetworkInfo": None},
    "resetNetwork": {"resetNetwork": None},
    # The legacy console actions, served until 2.5.
    "os-getVNCConsole": {"os-getVNCConsole": {"type": "novnc"}},
    "os-getSerialConsole": {"os-getSerialConsole": {"type": "serial"}},
    "os-getSPICEConsole": {"os-getSPICEConsole": {"type": "spice-html5"}},
    "os-getRDPConsole": {"os-getRDPConsole": {"type": "rdp-html5"}},
}

#: Actions served only by older microversions, with the one to use.
ACTION_VERSIONS = {"os-getVNCConsole": "2.5", "os-getSerialConsole": "2.5",
                   "os-getSPICEConsole": "2.5", "os-getRDPConsole": "2.5"}

#: Routes on the server and its sub-resources: (method, path, body,
#: microversion).  ``{s}`` is the server, ``{r}`` its action's request id.
SERVER_ROUTES = [
    ("GET", "/servers/{s}", None, "2.79"),
    ("PUT", "/servers/{s}", {"server": {"name": "mine"}}, "2.79"),
    ("GET", "/servers/{s}/ips", None, "2.79"),
    ("GET", "/servers/{s}/ips/private", None, "2.79"),
    ("GET", "/servers/{s}/metadata", None, "2.79"),
    ("GET", "/servers/{s}/metadata/a", None, "2.79"),
    ("POST", "/servers/{s}/metadata", {"metadata": {"b": "2"}}, "2.79"),
    ("PUT", "/servers/{s}/metadata", {"metadata": {"a": "1"}}, "2.79"),
    ("PUT", "/servers/{s}/metadata/a", {"meta": {"a": "9"}}, "2.79"),
    ("DELETE", "/servers/{s}/metadata/a", None, "2.79"),
    ("GET", "/servers/{s}/tags", None, "2.79"),
    ("GET", "/servers/{s}/tags/t1", None, "2.79"),
    ("PUT", "/servers/{s}/tags", {"tags": ["t1"]}, "2.79"),
    ("PUT", "/servers/{s}/tags/t2", None, "2.79"),
    ("DELETE", "/servers/{s}/tags/t1", None, "2.79"),
    ("DELETE", "/servers/{s}/tags", None, "2.79"),
    ("GET", "/servers/{s}/os-instance-actions", None, "2.79"),
    ("GET", "/servers/{s}/os-instance-actions/{r}", None, "2.79"),
    ("GET", "/servers/{s}/os-server-password", None, "2.79"),
    ("DELETE", "/servers/{s}/os-server-password", None, "2.79"),
    ("GET", "/servers/{s}/topology", None, "2.79"),
    ("GET", "/servers/{s}/diagnostics", None, "2.79"),
    ("POST", "/servers/{s}/remote-consoles",
     {"remote_console": {"protocol": "vnc", "type": "novnc"}}, "2.79"),
] + [("POST", "/servers/{s}/action", body,
      ACTION_VERSIONS.get(name, "2.79"))
     for name, body in ACTION_BODIES.items() if name != "forceDelete"] + [
    ("DELETE", "/servers/{s}", None, "2.79"),
    # it deletes at once (any vm_state, as Nova): last
    ("POST", "/servers/{s}/action", ACTION_BODIES["forceDelete"], "2.79"),
]

#: Routes of the Compute API's image proxy (until 2.35) on a private image.
PROXY_ROUTES = [
    ("GET", "/images/{i}", None),
    ("GET", "/images/{i}/metadata", None),
    ("GET", "/images/{i}/metadata/k", None),
    ("POST", "/images/{i}/metadata", {"metadata": {"k2": "v"}}),
    ("PUT", "/images/{i}/metadata", {"metadata": {"k": "v"}}),
    ("PUT", "/images/{i}/metadata/k", {"meta": {"k": "w"}}),
    ("DELETE", "/images/{i}/metadata/k", None),
    ("DELETE", "/images/{i}", None),
]


class IsolationTests(ServersTestCase):
    def setUp(self):
        super().setUp()
        self.services.image_store = ImageStore(
            self.conf, self.reactor, threadpool=SyncThreadPool())
        os.makedirs(image_dir(self.conf), exist_ok=True)
        with open(os.path.join(image_dir(self.conf), "own.img"),
                  "wb") as handle:
            handle.write(b"bits")
        with self.db.engine.begin() as conn:
            conn.execute(m.images.insert().values(
                id=OWN_IMAGE, name="alices", status="active",
                visibility="private", owner="pa", properties={"k": "v"},
                tags=[], disk_format="qcow2", container_format="bare",
                size=4, min_disk=0, min_ram=0, location="own.img",
                created_at=m.utcnow()))
        self.image_http = StubTreq(pipeline.load_api(
            os.path.join(ETC, "api-pipeline.ini"), "image",
            {"conf": self.conf, "services": self.services,
             "image_threadpool": SyncThreadPool()}))
        self.use_rpc()
        self.server_id = self.create_server(
            token=OWNER, metadata={"a": "1"})
        self.set_state(self.server_id, vm_state="active", task_state=None,
                       power_state=1)
        self.put(f"/v2.1/servers/{self.server_id}/tags", {"tags": ["t1"]},
                 token=OWNER, version="2.79")
        self.request_id = self.get(
            f"/v2.1/servers/{self.server_id}/os-instance-actions",
            token=OWNER).json["instanceActions"][0]["request_id"]

    def image_request(self, method, path, body=None, token=OTHER, **kw):
        http, self.http = self.http, self.image_http
        try:
            return self.request(method, path, body=body, token=token, **kw)
        finally:
            self.http = http

    def fill(self, path: str) -> str:
        return "/v2.1" + path.format(s=self.server_id, r=self.request_id,
                                     i=OWN_IMAGE)

    def assertInvisible(self, response, what):
        self.assertEqual(response.code, 404, (what, response))
        self.assertFault(response, 404)

    # --- servers and their sub-resources ---------------------------------

    def test_every_action_is_in_the_table(self):
        """A new server action must be added to ACTION_BODIES."""
        handlers = server_actions.ServerActionsController(
            self.services)._handlers()
        self.assertEqual(set(handlers), set(ACTION_BODIES))

    def test_server_routes_are_404_for_another_project(self):
        for method, path, body, version in SERVER_ROUTES:
            for token in (OTHER, "alice:pb"):
                response = self.request(method, self.fill(path), body=body,
                                        token=token, version=version)
                self.assertInvisible(response, (method, path, body, token))
        # ... and nothing happened to it.
        shown = self.show(self.server_id, token=OWNER)
        self.assertEqual((shown["name"], shown["metadata"], shown["status"],
                          shown["locked"]),
                         ("new-server-test", {"a": "1"}, "ACTIVE", False))
        self.assertEqual(self.get(self.fill("/servers/{s}/tags"),
                                  token=OWNER, version="2.79").json, {"tags": ["t1"]})
        self.assertEqual(self.services.compute_api.compute_rpcapi.casts, [])

    def test_server_routes_answer_the_owner(self):
        """The same routes exist: the owner never gets a 404 for them."""
        for method, path, body, version in SERVER_ROUTES:
            if (method, path) == ("DELETE", "/servers/{s}"):
                # on a host, DELETE casts (the row stays): forceDelete,
                # the last route, still finds the server
                self.set_state(self.server_id, host="compute1")
            response = self.request(method, self.fill(path), body=body,
                                    token=OWNER, version=version)
            if path.endswith("/ips/private"):
                # the server has no network: Nova's own 404 says so
                self.assertFault(response, 404, "not a member")
                continue
            self.assertNotEqual(response.code, 404,
                                (method, path, body, response))
            self.assertIn(response.code // 100, (2, 4, 5),
                          (method, path, response))
            if response.code >= 400:
                self.assertFault(response, response.code)

    def test_server_lists_show_nothing_of_another_project(self):
        other_id = self.create_server(name="bobs", token=OTHER)
        for query in ("", "?all_tenants=1", "?all_tenants=True",
                      "?project_id=pa", "?tenant_id=pa",
                      f"?uuid={self.server_id}", "?name=new-server-test"):
            for kind in ("/servers", "/servers/detail"):
                response = self.get("/v2.1" + kind + query, token=OTHER)
                if response.code != 200:
                    # a non-admin filter may be refused (403/400), never
                    # answered with another project's servers
                    self.assertIn(response.code, (400, 403), response)
                    continue
                ids = [s["id"] for s in response.json["servers"]]
                self.assertNotIn(self.server_id, ids, (kind, query))
                if query in ("", "?all_tenants=1", "?all_tenants=True"):
                    self.assertIn(other_id, ids, (kind, query))
        admin = self.get("/v2.1/servers?all_tenants=1").json["servers"]
        self.assertEqual({s["id"] for s in admin}, {self.server_id,
                                                    other_id})

    def test_instance_action_lists(self):
        response = self.get(self.fill("/servers/{s}/os-instance-actions"),
                            token=OTHER)
        self.assertInvisible(response, "actions")
        response = self.get(self.fill("/servers/{s}/os-instance-actions"),
                            token=OWNER)
        self.assertEqual([a["request_id"] for a in
                          response.json["instanceActions"]],
                         [self.request_id])

    # --- key pairs ---------------------------------------------------------

    def test_key_pairs(self):
        created = self.post("/v2.1/os-keypairs", {"keypair": {
            "name": "kp", "public_key": self._public_key()}},
            token=OWNER, version="2.79")
        self.assertEqual(created.code, 201, created)
        for token in (OTHER, "carol:pa"):
            self.assertInvisible(self.get("/v2.1/os-keypairs/kp",
                                          token=token), "kp show")
            self.assertInvisible(self.delete("/v2.1/os-keypairs/kp",
                                             token=token), "kp delete")
            listed = self.get("/v2.1/os-keypairs", token=token,
                              version="2.79")
            self.assertEqual(listed.json["keypairs"], [])
            # naming the owner is for admins only
            response = self.get("/v2.1/os-keypairs?user_id=alice",
                                token=token, version="2.79")
            self.assertNotEqual(response.code, 200, response)
            response = self.get("/v2.1/os-keypairs/kp?user_id=alice",
                                token=token, version="2.79")
            self.assertIn(response.code, (403, 404), response)
        self.assertEqual(self.get("/v2.1/os-keypairs/kp",
                                  token=OWNER).code, 200)
        # a server of another user cannot use the key pair either
        self.assertFault(self.create_server(
            name="k", token=OTHER, key_name="kp", expect=400), 400, "kp")

    def _public_key(self) -> str:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
        key = ed25519.Ed25519PrivateKey.generate().public_key()
        return key.public_bytes(serialization.Encoding.OpenSSH,
                                serialization.PublicFormat.OpenSSH).decode()

    # --- server groups -----------------------------------------------------

    def test_server_groups(self):
        group = self.post("/v2.1/os-server-groups", {"server_group": {
            "name": "g", "policies": ["anti-affinity"]}},
            token=OWNER).json["server_group"]
        path = f"/v2.1/os-server-groups/{group['id']}"
        self.assertInvisible(self.get(path, token=OTHER), "group show")
        self.assertInvisible(self.delete(path, token=OTHER), "group del")
        for query in ("", "?all_projects=True"):
            listed = self.get("/v2.1/os-server-groups" + query, token=OTHER)
            self.assertNotIn(group["id"], [
                g["id"] for g in listed.json.get("server_groups", [])])
        self.assertFault(self.create_server(
            name="g", token=OTHER, expect=400,
            **{"os:scheduler_hints": {"group": group["id"]}}), 400)
        self.assertEqual(self.get(path, token=OWNER).json["server_group"][
            "members"], [])

    # --- images ------------------------------------------------------------

    def test_image_api(self):
        base = f"/v2/images/{OWN_IMAGE}"
        patch = {"raw": b'[{"op": "replace", "path": "/name", '
                        b'"value": "x"}]',
                 "headers": {"Content-Type": "application/"
                             "openstack-images-v2.1-json-patch"}}
        routes = [("GET", base, {}), ("GET", base + "/file", {}),
                  ("PATCH", base, patch), ("PUT", base + "/tags/x", {}),
                  ("DELETE", base + "/tags/x", {}),
                  ("POST", base + "/actions/deactivate", {}),
                  ("POST", base + "/actions/reactivate", {}),
                  ("DELETE", base, {})]
        for method, path, kw in routes:
            self.assertInvisible(self.image_request(method, path, **kw),
                                 (method, path))
        listed = self.image_request("GET", "/v2/images")
        self.assertEqual(listed.code, 200, listed)
        self.assertNotIn(OWN_IMAGE, [i["id"] for i in
                                     listed.json["images"]])
        for method, path, kw in routes:
            # (deactivate is admin-only in Glance: 403, not 404)
            response = self.image_request(method, path, token=OWNER, **kw)
            self.assertNotEqual(response.code, 404, (method, path, response))

    def test_compute_image_proxy(self):
        for method, path, body in PROXY_ROUTES:
            response = self.request(method, self.fill(path), body=body,
                                    token=OTHER, version="2.35")
            self.assertInvisible(response, (method, path))
        for kind in ("/images", "/images/detail"):
            listed = self.get("/v2.1" + kind, token=OTHER, version="2.35")
            self.assertEqual(listed.code, 200, listed)
            self.assertNotIn(OWN_IMAGE, [i["id"] for i in
                                         listed.json["images"]])
        self.assertEqual(self.get(self.fill("/images/{i}"), token=OWNER,
                                  version="2.35").code, 200)

    # --- quotas ------------------------------------------------------------

    def test_quotas_of_another_project(self):
        self.put("/v2.1/os-quota-sets/pa", {"quota_set": {"cores": 7}})
        for path in ("/v2.1/os-quota-sets/pa",
                     "/v2.1/os-quota-sets/pa/detail"):
            response = self.get(path, token=OTHER)
            self.assertFault(response, 403)
            self.assertNotIn(b"cores", response.body)
        self.assertFault(self.put("/v2.1/os-quota-sets/pa", {
            "quota_set": {"cores": 1}}, token=OTHER), 403)
        self.assertFault(self.delete("/v2.1/os-quota-sets/pa",
                                     token=OTHER), 403)
        # another project's /limits is for admins (403, as Nova)
        self.assertFault(self.get("/v2.1/limits?tenant_id=pa",
                                  token=OTHER), 403)
        self.assertNotEqual(self.get("/v2.1/limits", token=OTHER).json[
            "limits"]["absolute"]["maxTotalCores"], 7)
        self.assertEqual(self.get("/v2.1/os-quota-sets/pa", token=OWNER)
                         .json["quota_set"]["cores"], 7)

    def test_legacy_v2_is_isolated_too(self):
        for method, path, body, _version in SERVER_ROUTES[:8]:
            response = self.request(method, "/v2" + self.fill(path)[5:],
                                    body=body, token=OTHER)
            self.assertInvisible(response, ("v2", method, path))
        listed = self.get("/v2/servers/detail", token=OTHER)
        self.assertEqual(listed.code, 200, listed)
        self.assertEqual(listed.json["servers"], [])
