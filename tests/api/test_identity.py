"""The Keystone v3 version document served at ``/identity`` on the
compute port (what keystoneauth's discovery reads)."""

from __future__ import annotations

from tests.base import APITestCase


class IdentityVersionTests(APITestCase):

    def test_root_lists_v3(self):
        for path in ("/identity", "/identity/"):
            response = self.get(path, token=None)
            self.assertEqual(response.code, 300, path)
            values = response.json["versions"]["values"]
            self.assertEqual([v["id"] for v in values], ["v3.14"])
            self.assertEqual(values[0]["status"], "stable")
            self.assertEqual(values[0]["links"], [
                {"rel": "self",
                 "href": "http://localhost:8774/identity/v3/"}])
            self.assertEqual(values[0]["media-types"][0]["type"],
                             "application/vnd.openstack.identity-v3+json")
            self.assertIn("updated", values[0])

    def test_v3(self):
        for path in ("/identity/v3", "/identity/v3/"):
            response = self.get(path, token=None)
            self.assertEqual(response.code, 200, path)
            version = response.json["version"]
            self.assertEqual(version["id"], "v3.14")
            self.assertEqual(version["links"][0]["href"],
                             "http://localhost:8774/identity/v3/")

    def test_no_token_api(self):
        self.assertFault(self.get("/identity/v3/auth/tokens", token=None),
                         404)
        self.assertFault(self.get("/identity/v2.0", token=None), 404)

    def test_discovery_agrees_with_keystoneauth(self):
        # keystoneauth's own parser picks v3 and its URL from our answer.
        from keystoneauth1 import discover
        body = self.get("/identity", token=None).json
        url = "http://localhost:8774/identity"
        versions = discover.get_version_data(_FakeSession(body), url)
        data = discover.Discover(_FakeSession(body), url).version_data()
        self.assertEqual(versions[0]["id"], "v3.14")
        self.assertEqual(data[0]["version"], (3, 14))
        self.assertEqual(data[0]["url"],
                         "http://localhost:8774/identity/v3/")


class _FakeSession:
    """Enough of a keystoneauth session for discovery to read ``body``."""

    def __init__(self, body):
        self._body = body

    def get(self, url, **kwargs):
        body = self._body

        class _Response:
            status_code = 300
            text = ""

            def json(self):
                return body
        return _Response()


class NoauthProjectLookupTests(APITestCase):
    """Under noauth the CLI's project and domain lookups (``quota show
    P``, ``flavor set --project P``) are answered by echoing the name."""

    def test_project_by_id_echoes(self):
        response = self.get("/identity/v3/projects/tenant-a", token=None)
        self.assertEqual(response.code, 200)
        project = response.json["project"]
        self.assertEqual(project["id"], "tenant-a")
        self.assertEqual(project["name"], "tenant-a")
        self.assertEqual(project["domain_id"], "default")
        self.assertIs(project["enabled"], True)
        self.assertIs(project["is_domain"], False)
        self.assertEqual(
            project["links"]["self"],
            "http://localhost:8774/identity/v3/projects/tenant-a")

    def test_project_by_name_lists_one(self):
        response = self.get("/identity/v3/projects?name=tenant-b",
                            token="admin:admin")
        self.assertEqual(response.code, 200)
        projects = response.json["projects"]
        self.assertEqual([(p["id"], p["name"]) for p in projects],
                         [("tenant-b", "tenant-b")])
        self.assertEqual(response.json["links"]["self"],
                         "http://localhost:8774/identity/v3/projects")

    def test_project_list_without_name_is_empty(self):
        # There is no store of projects to enumerate.
        response = self.get("/identity/v3/projects", token=None)
        self.assertEqual(response.code, 200)
        self.assertEqual(response.json["projects"], [])

    def test_other_domain_has_no_projects(self):
        response = self.get(
            "/identity/v3/projects?name=tenant-c&domain_id=elsewhere",
            token=None)
        self.assertEqual(response.json["projects"], [])
        self.assertFault(self.get(
            "/identity/v3/projects/tenant-c?domain_id=elsewhere",
            token=None), 404)
        response = self.get(
            "/identity/v3/projects/tenant-c?domain_id=default", token=None)
        self.assertEqual(response.json["project"]["id"], "tenant-c")

    def test_default_domain(self):
        response = self.get("/identity/v3/domains/default", token=None)
        self.assertEqual(response.code, 200)
        self.assertEqual(response.json["domain"]["id"], "default")
        self.assertEqual(response.json["domain"]["name"], "Default")
        for name in ("default", "Default"):
            listed = self.get(f"/identity/v3/domains?name={name}",
                              token=None).json["domains"]
            self.assertEqual([d["id"] for d in listed], ["default"])
        self.assertEqual(self.get("/identity/v3/domains?name=other",
                                  token=None).json["domains"], [])
        self.assertFault(self.get("/identity/v3/domains/other",
                                  token=None), 404)

    def test_no_user_or_nested_project_api(self):
        for path in ("/identity/v3/users", "/identity/v3/users/u1",
                     "/identity/v3/projects/p1/users",
                     "/identity/v3/auth/projects",
                     ):
            self.assertFault(self.get(path, token=None), 404)

    def test_sdk_finds_echoed_project(self):
        # openstacksdk's own resource parsing accepts our project body.
        from openstack.identity.v3 import project as sdk_project
        body = self.get("/identity/v3/projects/tenant-d",
                        token=None).json["project"]
        parsed = sdk_project.Project(**body)
        self.assertEqual((parsed.id, parsed.name, parsed.domain_id,
                          parsed.is_enabled),
                         ("tenant-d", "tenant-d", "default", True))


class KeystoneProjectLookupTests(APITestCase):
    """Under keystone the real Keystone owns projects: no echo here."""

    auth_strategy = "keystone"

    def test_projects_not_served(self):
        self.assertEqual(self.get("/identity", token=None).code, 300)
        self.assertFault(self.get("/identity/v3/projects/tenant-a",
                                  token=None), 404)
        self.assertFault(self.get("/identity/v3/projects?name=tenant-a",
                                  token=None), 404)
        self.assertFault(self.get("/identity/v3/domains/default",
                                  token=None), 404)


class NoauthTokenTests(APITestCase):
    """Under noauth ``POST /identity/v3/auth/tokens`` issues the
    ``user:project`` token of the user and project asked for."""

    def issue(self, identity, scope=None):
        body = {"auth": {"identity": identity}}
        if scope is not None:
            body["auth"]["scope"] = scope
        return self.post("/identity/v3/auth/tokens", body, token=None)

    def test_password_scoped_to_a_project(self):
        response = self.issue(
            {"methods": ["password"], "password": {"user": {
                "name": "alice", "domain": {"name": "Default"},
                "password": "anything"}}},
            {"project": {"name": "tenant-a", "domain": {"name": "Default"}}})
        self.assertEqual(response.code, 201, response)
        self.assertEqual(response.header("X-Subject-Token"),
                         "alice:tenant-a")
        token = response.json["token"]
        self.assertEqual(token["project"]["id"], "tenant-a")
        self.assertEqual(token["user"]["name"], "alice")
        self.assertEqual([r["name"] for r in token["roles"]],
                         ["member", "reader"])
        kinds = {entry["type"]: entry for entry in token["catalog"]}
        self.assertEqual(
            kinds["compute"]["endpoints"][0]["url"],
            "http://localhost:8774/v2.1")
        self.assertIn("image", kinds)
        self.assertGreater(token["expires_at"], token["issued_at"])
        # the token works on the compute API as the user of that project
        listed = self.get("/v2.1/servers",
                          token=response.header("X-Subject-Token"))
        self.assertEqual(listed.code, 200)

    def test_admin_and_token_method(self):
        response = self.issue({"methods": ["token"],
                               "token": {"id": "admin:admin"}})
        self.assertEqual(response.header("X-Subject-Token"), "admin:admin")
        self.assertIn("admin", [r["name"] for r in
                                response.json["token"]["roles"]])

    def test_bad_bodies_are_400(self):
        for identity in ({"methods": ["totp"]},
                         {"methods": ["password"], "password": {}},
                         {"methods": ["password"], "password": {
                             "user": {"name": "a:b"}}}):
            self.assertFault(self.issue(identity), 400)

