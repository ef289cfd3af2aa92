"""``/os-quota-sets/{project_id}``: show, detail, defaults, update and
delete the quota limits of a project (or of one user in it)."""

from __future__ import annotations

from twisted_compute.api.openstack import common
from twisted_compute.api.openstack.common import (
    Controller, json_response, make_app, route)
from twisted_compute.api.openstack.compute.schemas import \
    quota_sets as schema
from twisted_compute.api.openstack.compute.schemas import \
    query as query_schema
from twisted_compute.api.openstack.compute.schemas import to_bool
from twisted_compute.api.openstack.compute.views import quota_sets as views

_POLICY = "os_compute_api:os-quota-sets:"


class QuotaSetsController(Controller):
    app = make_app()
    collections = (("os-quota-sets",),)

    def _authorize(self, request, action, project_id):
        context = common.get_context(request)
        self.services.policy.authorize(
            context, _POLICY + action,
            target={"project_id": project_id,
                    "user_id": context.user_id})
        return context

    @staticmethod
    def _user_id(request) -> str | None:
        return common.query_one(request, "user_id") or None

    @route(app, "/os-quota-sets/<project_id>", ["GET"],
           query=query_schema.quota_set)
    async def show(self, request, project_id):
        self._authorize(request, "show", project_id)
        limits = await self.db.quotas.get_limits(self.conf, project_id,
                                                 self._user_id(request))
        return json_response(request, {"quota_set": views.limits_body(
            request, limits, project_id)})

    @route(app, "/os-quota-sets/<project_id>/detail", ["GET"],
           query=query_schema.quota_set)
    async def detail(self, request, project_id):
        self._authorize(request, "detail", project_id)
        limits, usage = await self.db.quotas.limits_and_usage(
            self.conf, project_id, self._user_id(request))
        return json_response(request, {"quota_set": views.detail_body(
            request, limits, usage, project_id)})

    @route(app, "/os-quota-sets/<project_id>/defaults", ["GET"])
    async def defaults(self, request, project_id):
        self._authorize(request, "defaults", project_id)
        limits = await self.db.quotas.get_class_limits(self.conf)
        return json_response(request, {"quota_set": views.limits_body(
            request, limits, project_id)})

    @route(app, "/os-quota-sets/<project_id>", ["PUT"])
    async def update(self, request, project_id):
        self._authorize(request, "update", project_id)
        body = common.read_body(request)
        common.validate(body, common.versioned(request, [
            ("2.57", None, schema.update_v257),
            ("2.36", "2.56", schema.update_v236),
            (None, "2.35", schema.update)]))
        params = dict(body["quota_set"])
        force = to_bool(params.pop("force", False))
        values = {}
        for name, value in params.items():
            if name not in views.ENFORCED:
                continue  # networking quotas: accepted, not ours
            limit = common.bounded_int(value, f"quota_set/{name}", -1)
            values[views.ENFORCED[name]] = limit
        limits = await self.db.quotas.update_limits(
            self.conf, project_id, self._user_id(request), values, force)
        return json_response(request, {"quota_set": views.limits_body(
            request, limits)})

    @route(app, "/os-quota-sets/<project_id>", ["DELETE"])
    async def delete(self, request, project_id):
        self._authorize(request, "delete", project_id)
        await self.db.quotas.delete_limits(project_id,
                                           self._user_id(request))
        return json_response(request, None, 202)
