"""2.81 ``POST /os-aggregates/{id}/images``: Nova's validation, a cast
to each host of the aggregate, 202; the agent pre-caches through its
driver.  MAX_VERSION is patched to 2.81 (another branch raises it)."""

from __future__ import annotations

from twisted.internet import defer

from tests.base import APITestCase
from tests.compute.test_manager import ManagerTestCase
from twisted_compute.api.openstack import api_version
from twisted_compute.api.openstack.api_version import APIVersion

IMAGE = "70a599e0-31e7-49b7-b260-868f441e862b"
OTHER = "11111111-2222-3333-4444-555555555555"


class RecordingRPC:
    def __init__(self):
        self.sent = []

    def cache_images(self, context, host, image_ids):
        self.sent.append((host, image_ids))
        if host == "broken":
            return defer.fail(RuntimeError("no bus"))
        return defer.succeed(None)


class AggregateImagesTests(APITestCase):
    def setUp(self):
        super().setUp()
        if api_version.MAX_VERSION < APIVersion("2.81"):
            self.patch(api_version, "MAX_VERSION", APIVersion("2.81"))
        self.rpc = RecordingRPC()
        self.services.compute_api.compute_rpcapi = self.rpc
        from tests.api.infra_rows import insert_service
        for host in ("h1", "h2", "broken"):
            self.run_db(insert_service, host=host)
        self.agg = self.post("/v2.1/os-aggregates", {"aggregate": {
            "name": "a"}}).json["aggregate"]["id"]
        for host in ("h1", "broken", "h2"):
            response = self.post(f"/v2.1/os-aggregates/{self.agg}/action",
                                 {"add_host": {"host": host}})
            self.assertEqual(response.code, 200, response)
        self.path = f"/v2.1/os-aggregates/{self.agg}/images"

    def test_casts_to_every_host(self):
        response = self.post(self.path, {"cache": [{"id": IMAGE},
                                                   {"id": OTHER}]},
                             version="2.81")
        self.assertEqual(response.code, 202, response)
        self.assertEqual(response.body, b"")
        self.assertEqual(sorted(self.rpc.sent), [
            ("broken", [IMAGE, OTHER]), ("h1", [IMAGE, OTHER]),
            ("h2", [IMAGE, OTHER])])

    def test_validation(self):
        for body in ({}, {"cache": []}, {"cache": [{"id": "nope"}]},
                     {"cache": [{"id": IMAGE, "x": 1}]},
                     {"cache": [{"id": IMAGE}], "more": 1},
                     {"cache": [{"id": IMAGE}, {"id": IMAGE}]}):
            self.assertFault(self.post(self.path, body, version="2.81"),
                             400)
        self.assertFault(self.post("/v2.1/os-aggregates/x/images", {
            "cache": [{"id": IMAGE}]}, version="2.81"), 400)
        self.assertFault(self.post("/v2.1/os-aggregates/999/images", {
            "cache": [{"id": IMAGE}]}, version="2.81"), 404)
        self.assertEqual(self.rpc.sent, [])

    def test_version_and_policy(self):
        body = {"cache": [{"id": IMAGE}]}
        self.assertFault(self.post(self.path, body, version="2.80"), 404)
        self.assertFault(self.post(self.path, body, version="2.81",
                                   token="u:p"), 403)
        self.assertEqual(self.rpc.sent, [])


class AgentCacheImagesTests(ManagerTestCase):
    def test_fake_driver_records(self):
        results = self.successResultOf(defer.ensureDeferred(
            self.manager.cache_images(self.ctx, image_ids=[IMAGE, OTHER])))
        self.assertEqual(results, {IMAGE: "cached", OTHER: "cached"})
        self.assertEqual(self.driver.cached_images, [IMAGE, OTHER])
        results = self.successResultOf(defer.ensureDeferred(
            self.manager.cache_images(self.ctx, image_ids=[IMAGE])))
        self.assertEqual(results, {IMAGE: "existing"})

    def test_driver_without_cache(self):
        self.driver.cache_image = None
        self.manager.driver = type("NoCache", (), {})()
        results = self.successResultOf(defer.ensureDeferred(
            self.manager.cache_images(self.ctx, image_ids=[IMAGE])))
        self.assertEqual(results, {IMAGE: "unsupported"})
