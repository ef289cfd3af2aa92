"""``/flavors/{flavor_id}/os-flavor-access`` and the flavor actions
``addTenantAccess`` / ``removeTenantAccess``."""

from __future__ import annotations

from twisted_compute import exception
from twisted_compute.api.openstack import common
from twisted_compute.api.openstack.common import (
    Controller, json_response, make_app, route)
from twisted_compute.api.openstack.compute.schemas import \
    flavor_access as schema

_POLICY = "os_compute_api:os-flavor-access"


def _body(flavor_id: str, projects: list[str]) -> dict:
    return {"flavor_access": [{"flavor_id": flavor_id, "tenant_id": p}
                              for p in projects]}


class FlavorAccessController(Controller):
    app = make_app()
    collections = (("flavors", "os-flavor-access"), ("flavors", "action"))

    @route(app, "/flavors/<flavor_id>/os-flavor-access", ["GET"])
    async def index(self, request, flavor_id):
        self.services.policy.authorize(common.get_context(request),
                                       _POLICY)
        flavor, projects = await self.db.flavors.get_access(flavor_id)
        if flavor.is_public:
            raise exception.NotFound(
                "Access list not available for public flavors.")
        return json_response(request, _body(flavor_id, projects))

    @route(app, "/flavors/<flavor_id>/action", ["POST"])
    async def action(self, request, flavor_id):
        context = common.get_context(request)
        body = common.read_body(request)
        if isinstance(body, dict) and "addTenantAccess" in body:
            self.services.policy.authorize(
                context, _POLICY + ":add_tenant_access")
            common.validate(body, schema.add_tenant_access)
            projects = await self.db.flavors.add_access(
                flavor_id,
                body["addTenantAccess"]["tenant"],
                refuse_public=common.is_at_least(request, "2.7"))
        elif isinstance(body, dict) and "removeTenantAccess" in body:
            self.services.policy.authorize(
                context, _POLICY + ":remove_tenant_access")
            common.validate(body, schema.remove_tenant_access)
            projects = await self.db.flavors.remove_access(
                flavor_id,
                body["removeTenantAccess"]["tenant"])
        else:
            name = next(iter(body), "") if isinstance(body, dict) else ""
            raise exception.InvalidInput(
                reason=f"There is no such action: {name}")
        return json_response(request, _body(flavor_id, projects))
