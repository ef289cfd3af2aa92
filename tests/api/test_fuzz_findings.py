"""Regression tests of what schemathesis found (tests/integration/
test_fuzz.py): each case answered 500, or hung the reactor, before its
fix."""

from __future__ import annotations

from tests.api.test_image import ImageAPITestCase
from tests.api.test_servers_base import ServersTestCase

#: Larger than any integer column (and than Nova's db.MAX_INT).
HUGE = "264741092406893700900107102"


class ContentTypeTests(ServersTestCase):

    def test_body_not_json_is_415(self):
        """A body sent as multipart/form-data was a 500."""
        response = self.put("/v2.1/flavors/1", raw=b'{"flavor": {}}',
                            version="2.55", headers={
                                "Content-Type": "multipart/form-data"})
        self.assertFault(response, 415, "multipart/form-data")

    def test_server_metadata(self):
        server_id = self.create_server()
        response = self.put(f"/v2.1/servers/{server_id}/metadata",
                            raw=b'{"metadata": {}}', token="user:project",
                            headers={"Content-Type": "text/xml"})
        self.assertFault(response, 415)


class DigitStringTests(ServersTestCase):
    """The schemas' integers may be digit strings, which no schema
    bounds: beyond the database's integers (or empty) they were 500s."""

    def flavor(self, **values):
        body = {"name": "f", "ram": 64, "vcpus": 1, "disk": 1}
        body.update(values)
        return self.post("/v2.1/flavors", {"flavor": body})

    def test_flavor_sizes(self):
        self.assertFault(self.flavor(ram=HUGE), 400, "flavor/ram")
        self.assertFault(self.flavor(disk=HUGE), 400, "flavor/disk")
        self.assertFault(self.flavor(ram=""), 400)
        self.assertFault(self.flavor(swap=HUGE), 400, "flavor/swap")
        self.assertEqual(self.flavor(ram="128").code, 200)

    def test_flavor_filters(self):
        for name in ("minDisk", "minRam"):
            self.assertFault(self.get(f"/v2.1/flavors/detail?{name}={HUGE}"),
                             400, f"Invalid {name} filter")
        self.assertEqual(self.get("/v2.1/flavors/detail?minRam=512").code,
                         200)

    def test_server_group_rules(self):
        for value in ("", HUGE):
            response = self.post("/v2.1/os-server-groups", {"server_group": {
                "name": "g", "policy": "anti-affinity",
                "rules": {"max_server_per_host": value}}}, version="2.64")
            self.assertFault(response, 400)

    def test_server_group_offset(self):
        self.assertFault(self.get(f"/v2.1/os-server-groups?offset={HUGE}"),
                         400, "offset")

    def test_quota_limit(self):
        response = self.put("/v2.1/os-quota-sets/project", {
            "quota_set": {"instances": HUGE}})
        self.assertFault(response, 400, "quota_set/instances")

    def test_ids_beyond_the_database(self):
        self.assertFault(self.get(f"/v2.1/os-aggregates/{HUGE}"), 404)
        self.assertFault(self.delete(f"/v2.1/os-services/{HUGE}"), 404)
        self.assertFault(self.get(f"/v2.1/os-hypervisors/{HUGE}"), 404)

    def test_image_proxy_filter(self):
        self.assertFault(self.get(f"/v2.1/images/detail?minRam={HUGE}"),
                         400, "Invalid minRam filter")


class MaxCountTests(ServersTestCase):

    def test_beyond_the_schema_maximum(self):
        """A digit string max_count made a uuid per requested server
        before the quota check: the reactor hung."""
        response = self.post("/v2.1/servers", self.server_body(
            max_count=HUGE), token="user:project", version="2.79")
        self.assertFault(response, 400, "server/max_count")

    def test_many_more_than_the_quota(self):
        """max_count = the largest integer: as many servers as the quota
        lets in (10), at once."""
        response = self.post("/v2.1/servers", self.server_body(
            max_count="2147483647", return_reservation_id=True),
            token="user:project", version="2.79")
        self.assertEqual(response.code, 202, response)
        listed = self.get("/v2.1/servers", token="user:project").json
        self.assertEqual(len(listed["servers"]), 10)


class ImageSizeTests(ImageAPITestCase):

    def test_size_filters(self):
        for name in ("size_min", "size_max"):
            self.assertFault(self.get(f"/v2/images?{name}={HUGE}",
                                      token="alice:p1"), 400, name)
        self.assertEqual(self.get("/v2/images?size_min=1",
                                  token="alice:p1").code, 200)
