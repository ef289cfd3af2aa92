"""Regression tests of what schemathesis found (tests/integration/
test_fuzz.py): each case answered 500, or hung the reactor, before its
fix."""

from __future__ import annotations

from urllib.parse import urlencode

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

    def test_hypervisor_marker(self):
        """Before 2.53 a hypervisor marker is an id: one beyond SQLite's
        integers was a 500."""
        for path in ("/v2.1/os-hypervisors", "/v2.1/os-hypervisors/detail"):
            self.assertFault(self.get(f"{path}?marker={HUGE}",
                                      version="2.47"), 400, "marker")
            self.assertFault(self.get(f"{path}?marker=-1", version="2.47"),
                             400, "marker")

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


class ImagePropertyTests(ImageAPITestCase):
    """An image list filtered on a property whose name SQLite's JSON path
    could not read was a 500 (``?%02%28g...%00...=1``); names PostgreSQL
    or MariaDB mis-read (a dot, a quote, a non-ASCII letter) matched
    nothing."""

    def names(self, query):
        response = self.get(f"/v2/images{query}", token="alice:p1")
        self.assertEqual(response.code, 200, response)
        return sorted(i["name"] for i in response.json["images"])

    def test_filter_on_any_property_name(self):
        odd = {"a.b": "1", 'a"b': "2", "a'b": "3", "a\\b": "4",
               "ünï": "5", "$x": "6", "a[0]": "7", "sp ace": "8"}
        self.create(name="odd", **odd)
        self.create(name="other", **{"a.b": "x"})
        for key, value in odd.items():
            self.assertEqual(self.names("?" + urlencode({key: value})),
                             ["odd"], key)
        self.assertEqual(self.names("?" + urlencode({"a.b": "x"})),
                         ["other"])
        self.assertEqual(self.names("?" + urlencode({"\x02(g": "1"})), [])
        self.assertEqual(self.names("?a.b=1&limit=1"), ["odd"])

    def test_nul_in_the_url(self):
        for path in ("/v2/images?%02%28g%00=1", "/v2/images?name=%00",
                     "/v2/images/%00"):
            self.assertFault(self.get(path, token="alice:p1"), 400, "NUL")

    def test_nul_or_control_in_a_property(self):
        for body in ({"x\u0000": "1"}, {"x": "1\u0000"},
                     {"name": "\u0000"}, {"tags": ["\u0000"]}):
            response = self.post("/v2/images", body, token="alice:p1")
            self.assertFault(response, 400, "NUL")
        for name in ("x\u0002", "", "p" * 256):
            response = self.post("/v2/images", {name: "1"},
                                 token="alice:p1")
            self.assertFault(response, 400, "property name")
        image = self.create()
        response = self.patch(image["id"], [
            {"op": "add", "path": "/x\u0001", "value": "1"}])
        self.assertFault(response, 400, "property name")
        self.assertEqual(self.patch(image["id"], [
            {"op": "add", "path": "/ünï", "value": "1"}]).code, 200)


class ComputeNulTests(ServersTestCase):

    def test_nul_in_the_url_and_body(self):
        self.assertFault(self.get("/v2.1/servers?name=%00"), 400, "NUL")
        self.assertFault(self.get("/v2.1/servers/%00"), 400, "NUL")
        server_id = self.create_server()
        response = self.put(f"/v2.1/servers/{server_id}/metadata",
                            {"metadata": {"k": "v\u0000"}},
                            token="user:project")
        self.assertFault(response, 400, "NUL")
