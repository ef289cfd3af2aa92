"""``GET /``, ``GET /v2/`` and ``GET /v2.1/`` (Nova's version documents,
compared with Nova's samples), and the legacy v2 compatible API below
``/v2``."""

from __future__ import annotations

import json
import os

from tests.base import APITestCase
from twisted_compute.api.openstack import api_version

SAMPLES = "/work/shared/nova-api-samples/versions"


def sample(name: str):
    path = os.path.join(SAMPLES, name)
    if not os.path.exists(path):
        return None
    with open(path) as handle:
        text = handle.read()
    text = text.replace("http://openstack.example.com",
                        "http://localhost:8774")
    text = text.replace('"2.104"', json.dumps(str(api_version.MAX_VERSION)))
    return json.loads(text)


class VersionDocumentsTests(APITestCase):
    def assertSample(self, body, name):
        expected = sample(name)
        if expected is None:
            self.skipTest(f"no Nova sample {name}")
        self.assertEqual(body, expected)

    def test_root_lists_v20_then_v21(self):
        response = self.get("/", token=None)
        self.assertEqual(response.code, 200)
        self.assertEqual([v["id"] for v in response.json["versions"]],
                         ["v2.0", "v2.1"])
        self.assertSample(response.json, "versions-get-resp.json")

    def test_each_version_by_id(self):
        for path in ("/v2", "/v2/"):
            response = self.get(path, token=None)
            self.assertEqual(response.code, 200, response)
            self.assertSample(response.json, "v2-version-get-resp.json")
        for path in ("/v2.1", "/v2.1/"):
            response = self.get(path, token=None)
            self.assertEqual(response.code, 200, response)
            self.assertSample(response.json, "v21-version-get-resp.json")
        # the document below a project id, with a token
        response = self.get("/v2/admin/")
        self.assertEqual(response.json["version"]["id"], "v2.0")
        response = self.get("/v2.1/admin/")
        self.assertEqual(response.json["version"]["id"], "v2.1")

    def test_every_listed_version_is_served(self):
        for version in self.get("/", token=None).json["versions"]:
            href = version["links"][0]["href"]
            path = href[len("http://localhost:8774"):]
            shown = self.get(path, token=None).json["version"]
            self.assertEqual(shown["id"], version["id"])


class LegacyV2Tests(APITestCase):
    def test_needs_auth(self):
        self.assertFault(self.get("/v2/flavors", token=None), 401)

    def test_microversion_ignored_and_not_echoed(self):
        response = self.get("/v2/flavors/detail", version="2.60")
        self.assertEqual(response.code, 200, response)
        for name in ("OpenStack-API-Version",
                     "X-OpenStack-Nova-API-Version"):
            self.assertIsNone(response.header(name), name)
        self.assertNotIn("OpenStack-API-Version",
                         response.header("Vary") or "")
        # the 2.1 view (no description, which 2.55 adds)
        self.assertEqual(response.json["flavors"], [])
        self.post("/v2.1/flavors", {"flavor": {
            "name": "f", "ram": 64, "vcpus": 1, "disk": 1, "id": "9"}})
        flavor = self.get("/v2/flavors/9", version="2.60").json["flavor"]
        self.assertNotIn("description", flavor)
        self.assertIn("description", self.get(
            "/v2.1/flavors/9", version="2.60").json["flavor"])
        # an out-of-range version is ignored too, not refused
        self.assertEqual(self.get("/v2/flavors", version="9.9").code, 200)
        self.assertEqual(self.get("/v2.1/flavors", version="9.9").code, 406)

    def test_links_and_project_id(self):
        self.post("/v2.1/flavors", {"flavor": {
            "name": "f", "ram": 64, "vcpus": 1, "disk": 1, "id": "9"}})
        response = self.get("/v2/p/flavors", token="u:p")
        self.assertEqual(response.code, 200, response)
        self.assertEqual(response.json["flavors"][0]["links"][0]["href"],
                         "http://localhost:8774/v2/p/flavors/9")
        self.assertFault(self.get("/v2/other/flavors", token="u:p"), 400)

    def test_unknown_body_properties_are_dropped(self):
        body = {"keypair": {"name": "k", "unknown": 1}, "extra": True}
        self.assertFault(self.post("/v2.1/os-keypairs", body, token="u:p"),
                         400, "extra")
        response = self.post("/v2/os-keypairs", body, token="u:p")
        self.assertEqual(response.code, 200, response)
        self.assertEqual(response.json["keypair"]["name"], "k")
        # ... but a known property is still checked
        self.assertFault(self.post("/v2/os-keypairs", {
            "keypair": {"name": ""}}, token="u:p"), 400, "name")
        # and the next /v2.1 request is strict again
        self.assertFault(self.post("/v2.1/os-keypairs", {"keypair": {
            "name": "k2", "unknown": 1}}, token="u:p"), 400)
