"""``/os-server-groups``: create, list, show and delete groups of servers
with an (anti-)affinity policy."""

from __future__ import annotations

from twisted_compute import exception
from twisted_compute.api.openstack import common
from twisted_compute.api.openstack.common import (
    Controller, json_response, make_app, route)
from twisted_compute.api.openstack.compute.schemas import \
    server_groups as schema
from twisted_compute.api.openstack.compute.schemas import \
    query as query_schema
from twisted_compute.api.openstack.compute.views import \
    server_groups as views

_POLICY = "os_compute_api:os-server-groups:"


class ServerGroupsController(Controller):
    app = make_app()
    collections = (("os-server-groups",),)

    def _authorize(self, request, action, project_id=None, user_id=None):
        context = common.get_context(request)
        self.services.policy.authorize(context, _POLICY + action, target={
            "project_id": project_id or context.project_id,
            "user_id": user_id or context.user_id})
        return context

    @route(app, "/os-server-groups", ["POST"])
    async def create(self, request):
        context = self._authorize(request, "create")
        body = common.read_body(request)
        common.validate(body, common.versioned(request, [
            ("2.64", None, schema.create_v264),
            ("2.15", "2.63", schema.create_v215),
            (None, "2.14", schema.create)]))
        spec = body["server_group"]
        if "policy" in spec:
            policy = spec["policy"]
            rules = {k: common.bounded_int(v, f"server_group/rules/{k}", 1)
                     for k, v in (spec.get("rules") or {}).items()}
            if rules and policy != "anti-affinity":
                raise exception.InvalidInput(
                    reason="Only anti-affinity policy supports rules.")
        else:
            policy, rules = spec["policies"][0], {}
        group = await self.db.server_groups.create(self.conf, {
            "name": spec["name"], "policy": policy, "rules": rules,
            "project_id": context.project_id, "user_id": context.user_id})
        return json_response(request,
                             {"server_group": views.show(request, group)})

    @staticmethod
    def _offset_and_limit(request, max_limit: int) -> tuple[int, int]:
        values = {}
        for name, default in (("offset", 0), ("limit", max_limit)):
            text = common.query_one(request, name)
            if text is None:
                values[name] = default
                continue
            try:
                values[name] = int(text)
            except ValueError:
                values[name] = -1
            if not 0 <= values[name] <= common.MAX_INT:
                raise exception.ValidationError(
                    field=name,
                    detail=f"Value: {text!r}. must be an integer >= 0")
        return values["offset"], min(values["limit"], max_limit)

    @route(app, "/os-server-groups", ["GET"],
           query=query_schema.server_groups)
    async def index(self, request):
        context = self._authorize(request, "index")
        offset, limit = self._offset_and_limit(request,
                                               self.conf.api.max_limit)
        project_id = context.project_id
        if common.query_one(request, "all_projects") is not None and \
                self.services.policy.allowed(
                    context, _POLICY + "index:all_projects"):
            project_id = None
        groups = await self.db.server_groups.get_all(
            project_id, limit=limit, offset=offset)
        return json_response(request, {"server_groups": [
            views.show(request, g) for g in groups]})

    async def _visible_group(self, request, group_id):
        """The group, or 404 when it belongs to another project and the
        caller is no admin: another project's group is invisible, as if
        it did not exist (never 403, which would tell that it exists)."""
        group = await self.db.server_groups.get(group_id)
        context = common.get_context(request)
        if group.project_id != context.project_id and not context.is_admin:
            raise exception.InstanceGroupNotFound(group_uuid=group_id)
        return group

    @route(app, "/os-server-groups/<group_id>", ["GET"])
    async def show(self, request, group_id):
        group = await self._visible_group(request, group_id)
        self._authorize(request, "show", group.project_id, group.user_id)
        return json_response(request,
                             {"server_group": views.show(request, group)})

    @route(app, "/os-server-groups/<group_id>", ["DELETE"])
    async def delete(self, request, group_id):
        group = await self._visible_group(request, group_id)
        self._authorize(request, "delete", group.project_id, group.user_id)
        await self.db.server_groups.destroy(group_id)
        return json_response(request, None, 204)
