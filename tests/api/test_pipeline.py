"""The osapi_compute pipeline: middleware and microversions, in memory."""

from __future__ import annotations

import json

from twisted.trial.unittest import SynchronousTestCase

from tests.base import APITestCase
from twisted_compute.api import pipeline
from twisted_compute.api.policy import Enforcer, parse_rule
from twisted_compute.context import RequestContext


class MiddlewareTests(APITestCase):
    conf_overrides = {"cors": {"allowed_origin": ["https://dash.example"]}}

    def test_request_ids(self):
        response = self.get("/v2.1/flavors")
        request_id = response.header("x-compute-request-id")
        self.assertRegex(request_id, r"^req-[0-9a-f-]{36}$")
        self.assertEqual(response.header("x-openstack-request-id"),
                         request_id)
        self.assertNotEqual(self.get("/v2.1/flavors").header(
            "x-compute-request-id"), request_id)

    def test_fault_carries_request_id(self):
        response = self.get("/v2.1/flavors/none")
        self.assertFault(response, 404)
        self.assertIsNotNone(response.header("x-compute-request-id"))

    def test_body_size_limit(self):
        body = b"{" + b" " * 114688 + b"}"
        response = self.post("/v2.1/flavors", raw=body,
                             headers={"Content-Type": "application/json"})
        self.assertFault(response, 413)

    def test_no_token(self):
        self.assertFault(self.get("/v2.1/flavors", token=None), 401)

    def test_versions_need_no_token(self):
        response = self.get("/", token=None)
        self.assertEqual(response.code, 200)
        self.assertEqual([v["id"] for v in response.json["versions"]],
                         ["v2.0", "v2.1"])
        for path in ("/v2.1", "/v2.1/"):
            response = self.get(path, token=None)
            self.assertEqual(response.code, 200, path)
            self.assertEqual(response.json["version"]["version"], "2.104")
        self.assertEqual(response.json["version"]["min_version"], "2.1")

    def test_microversion_headers(self):
        response = self.get("/v2.1/flavors", version="2.60")
        self.assertEqual(response.header("openstack-api-version"),
                         "compute 2.60")
        self.assertEqual(response.header("x-openstack-nova-api-version"),
                         "2.60")
        self.assertIn("OpenStack-API-Version", response.header("vary"))
        legacy = self.get("/v2.1/flavors", headers={
            "X-OpenStack-Nova-API-Version": "2.5"})
        self.assertEqual(legacy.header("openstack-api-version"),
                         "compute 2.5")
        latest = self.get("/v2.1/flavors", version="latest")
        self.assertEqual(latest.header("openstack-api-version"),
                         "compute 2.104")
        self.assertEqual(self.get("/v2.1/flavors").header(
            "openstack-api-version"), "compute 2.1")

    def test_bad_microversions(self):
        # Well formed but outside the range: 406.
        for text in ("2.105", "3.0", "2.0", "1.1"):
            self.assertFault(self.get("/v2.1/flavors", version=text), 406)
        # Not of the form MajorNum.MinorNum: 400, as Nova answers.
        for text in ("abc", "2.x", "2.", "02.1", "2.1.1"):
            self.assertFault(self.get("/v2.1/flavors", version=text), 400,
                             "invalid format")

    def test_project_id_in_url(self):
        response = self.get("/v2.1/proj/flavors", token="u:proj")
        self.assertEqual(response.code, 200)
        response = self.get("/v2.1/other/flavors", token="u:proj")
        self.assertFault(response, 400, "doesn't match")

    def test_unknown_collection(self):
        # Paths that no resource serves are not found, whatever their
        # depth; only a served path below a foreign project id is a
        # malformed URL.
        for path in ("/v2.1/nothing-here/x", "/v2.1/os-volumes/detail",
                     "/v2.1/os-no-such-extension/x", "/v2.1/a/b/c/d",
                     "/v3/"):
            self.assertFault(self.get(path), 404, "could not be found")
        self.assertFault(self.get("/v2.1/other/servers/detail",
                                  token="u:proj"), 400, "doesn't match")

    def test_deeply_nested_body(self):
        depth = 5000
        body = ('{"server": ' + '[' * depth + ']' * depth + '}').encode()
        response = self.post("/v2.1/servers", raw=body,
                             headers={"Content-Type": "application/json"})
        self.assertFault(response, 400, "nested too deeply")
        body = ('{"metadata": {"a": ' + '{"b": ' * depth + '1'
                + '}' * depth + '}}').encode()
        response = self.post("/v2.1/flavors", raw=body,
                             headers={"Content-Type": "application/json"})
        self.assertFault(response, 400)

    def test_undecodable_path(self):
        for path in ("/v2.1/servers/%ff%fe", "/v2.1/flavors/%ff"):
            self.assertFault(self.get(path), 400, "not UTF-8")

    def test_cors(self):
        response = self.get("/v2.1/flavors", headers={
            "Origin": "https://dash.example"})
        self.assertEqual(response.header("access-control-allow-origin"),
                         "https://dash.example")
        response = self.request("OPTIONS", "/v2.1/flavors", headers={
            "Origin": "https://dash.example",
            "Access-Control-Request-Method": "POST"}, token=None)
        self.assertEqual(response.code, 200)
        self.assertIn("POST", response.header(
            "access-control-allow-methods"))
        response = self.get("/v2.1/flavors", headers={
            "Origin": "https://evil.example"})
        self.assertIsNone(response.header("access-control-allow-origin"))


class ProxyHeaderTests(APITestCase):
    conf_overrides = {"wsgi": {"secure_proxy_ssl_header": True}}

    def test_links_follow_forwarded_headers(self):
        self.post("/v2.1/flavors", {"flavor": {
            "name": "a", "id": "1", "ram": 1, "vcpus": 1, "disk": 0}})
        response = self.get("/v2.1/flavors", headers={
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "cloud.example:443"})
        href = response.json["flavors"][0]["links"][0]["href"]
        self.assertEqual(href, "https://cloud.example:443/v2.1/flavors/1")


class PipelineLoaderTests(SynchronousTestCase):
    def write(self, text):
        path = self.mktemp()
        with open(path, "w") as handle:
            handle.write(text)
        return path

    def test_unknown_section(self):
        path = self.write("[composite:x]\nuse = call:twisted_compute.api."
                          "urlmap:urlmap_factory\n/ = missing\n")
        error = self.assertRaises(pipeline.PipelineError,
                                  pipeline.load_api, path, "x", {})
        self.assertIn("missing", str(error))

    def test_bad_factory(self):
        path = self.write("[app:x]\npaste.app_factory = no.such.module:f\n")
        error = self.assertRaises(pipeline.PipelineError,
                                  pipeline.load_api, path, "x", {})
        self.assertIn("no.such.module", str(error))


class PolicyTests(SynchronousTestCase):
    def ctx(self, user="u", project="p", roles=("member", "reader"),
            admin=False):
        return RequestContext(user, project, roles, is_admin=admin)

    def test_rule_language(self):
        enforcer = Enforcer({"a": "role:x or (role:y and not role:z)",
                             "b": "!", "c": "@", "d": "rule:a"})
        self.assertTrue(enforcer.allowed(self.ctx(roles=("x",)), "a"))
        self.assertTrue(enforcer.allowed(self.ctx(roles=("y",)), "a"))
        self.assertFalse(enforcer.allowed(self.ctx(roles=("y", "z")), "a"))
        self.assertFalse(enforcer.allowed(self.ctx(roles=("x",)), "b"))
        self.assertTrue(enforcer.allowed(self.ctx(), "c"))
        self.assertTrue(enforcer.allowed(self.ctx(roles=("x",)), "d"))

    def test_project_scoping(self):
        enforcer = Enforcer()
        action = "os_compute_api:servers:show"
        self.assertTrue(enforcer.allowed(self.ctx(), action,
                                         {"project_id": "p"}))
        self.assertFalse(enforcer.allowed(self.ctx(), action,
                                          {"project_id": "q"}))
        self.assertTrue(enforcer.allowed(
            self.ctx(roles=("admin",), admin=True), action,
            {"project_id": "q"}))

    def test_unknown_action_is_admin_only(self):
        enforcer = Enforcer()
        self.assertFalse(enforcer.allowed(self.ctx(), "no:such:rule"))

    def test_override_file(self):
        path = self.mktemp()
        with open(path, "w") as handle:
            handle.write('"os_compute_api:os-flavor-manage:create": '
                         '"role:member"\n')
        enforcer = Enforcer.from_file(path)
        self.assertTrue(enforcer.allowed(
            self.ctx(), "os_compute_api:os-flavor-manage:create"))

    def test_bad_rule(self):
        self.assertRaises(ValueError, parse_rule, "role:x and (role:y")
        self.assertRaises(ValueError, parse_rule, "bare")


class PolicyOverrideAPITests(APITestCase):
    def setUp(self):
        super().setUp()
        self.services.policy = Enforcer(
            {"os_compute_api:os-flavor-manage:create": "!"})
        from twisted_compute.api import pipeline as pl
        from tests.base import ETC
        import os
        self.root = pl.load_api(os.path.join(ETC, "api-pipeline.ini"),
                                "osapi_compute",
                                {"conf": self.conf,
                                 "services": self.services})
        from treq.testing import StubTreq
        self.http = StubTreq(self.root)

    def test_admin_denied_by_override(self):
        response = self.post("/v2.1/flavors", {"flavor": {
            "name": "a", "ram": 1, "vcpus": 1, "disk": 0}})
        fault = self.assertFault(response, 403)
        self.assertIn("os-flavor-manage:create", fault["message"])
        json.dumps(fault)
