"""Flavor access: ``/flavors/{id}/os-flavor-access`` and the actions."""

from tests.base import APITestCase


class FlavorAccessTests(APITestCase):
    def make_flavor(self, flavorid="10", public=False):
        response = self.post("/v2.1/flavors", {"flavor": {
            "name": "f" + flavorid, "id": flavorid, "ram": 512,
            "vcpus": 1, "disk": 1, "os-flavor-access:is_public": public}})
        self.assertEqual(response.code, 200, response)

    def action(self, name, tenant, flavorid="10", **kw):
        return self.post(f"/v2.1/flavors/{flavorid}/action",
                         {name: {"tenant": tenant}}, **kw)

    def test_add_list_remove(self):
        self.make_flavor()
        listed = self.get("/v2.1/flavors/10/os-flavor-access")
        self.assertEqual(listed.json, {"flavor_access": []})
        added = self.action("addTenantAccess", "proj1")
        self.assertEqual(added.code, 200, added)
        self.assertEqual(added.json, {"flavor_access": [
            {"flavor_id": "10", "tenant_id": "proj1"}]})
        # The project may now see and use the private flavor.
        self.assertEqual(self.get("/v2.1/flavors/10", token="u:proj1").code,
                         200)
        self.assertFault(self.get("/v2.1/flavors/10", token="u:other"),
                         404)
        self.assertFault(self.action("addTenantAccess", "proj1"), 409)
        removed = self.action("removeTenantAccess", "proj1")
        self.assertEqual(removed.json, {"flavor_access": []})
        self.assertFault(self.action("removeTenantAccess", "proj1"), 404)
        self.assertFault(self.get("/v2.1/flavors/10", token="u:proj1"),
                         404)

    def test_public_flavor(self):
        self.make_flavor(public=True)
        self.assertFault(self.get("/v2.1/flavors/10/os-flavor-access"),
                         404, "public")
        self.assertFault(self.action("addTenantAccess", "p",
                                     version="2.7"), 409, "public")
        # Before 2.7 the access is recorded anyway.
        self.assertEqual(self.action("addTenantAccess", "p").code, 200)

    def test_admin_only_and_validation(self):
        self.make_flavor()
        self.assertFault(self.get("/v2.1/flavors/10/os-flavor-access",
                                  token="u:p"), 403)
        self.assertFault(self.action("addTenantAccess", "p", token="u:p"),
                         403)
        self.assertFault(self.action("addTenantAccess", ""), 400, "tenant")
        self.assertFault(self.post("/v2.1/flavors/10/action",
                                   {"frobnicate": {}}), 400, "frobnicate")
        self.assertFault(self.action("addTenantAccess", "p", flavorid="9"),
                         404)
