"""``/limits``: the project's absolute limits and what it uses."""

from __future__ import annotations

from twisted_compute import exception
from twisted_compute.api.openstack import common
from twisted_compute.api.openstack.common import (
    Controller, json_response, make_app, route)
from twisted_compute.api.openstack.compute.schemas import \
    query as query_schema
from twisted_compute.api.openstack.compute.views import limits as views


class LimitsController(Controller):
    app = make_app()
    collections = (("limits",),)

    @route(app, "/limits", ["GET"], query=query_schema.limits)
    async def index(self, request):
        context = common.get_context(request)
        self.services.policy.authorize(context, "os_compute_api:limits")
        if common.is_at_least(request, "2.75"):
            unknown = sorted(set(common.query(request)) - {"tenant_id"})
            if unknown:
                raise exception.ValidationError(
                    field=unknown[0],
                    detail="Additional properties are not allowed")
        project_id = context.project_id
        requested = common.query_one(request, "tenant_id")
        if requested is not None:
            project_id = requested
            self.services.policy.authorize(
                context, "os_compute_api:limits:other_project",
                target={"project_id": project_id})
        limits, usage = await self.db.quotas.limits_and_usage(self.conf,
                                                              project_id)
        return json_response(request, {"limits": {
            "absolute": views.absolute(request, limits, usage),
            "rate": []}})
