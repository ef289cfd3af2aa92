"""``/servers/{id}/os-instance-actions``: what was done to a server, and
(for one request) the events of it."""

from __future__ import annotations

from twisted_compute.api.openstack import common
from twisted_compute.api.openstack.common import (
    Controller, json_response, make_app, route)
from twisted_compute.api.openstack.compute.servers import instance_target
from twisted_compute.api.openstack.compute.schemas import \
    query as query_schema
from twisted_compute.api.openstack.compute.views import servers as views

_RULE = "os_compute_api:os-instance-actions"


class InstanceActionsController(Controller):
    app = make_app()
    collections = (("servers", "os-instance-actions"),)

    async def _instance(self, request, server_id, rule):
        context = common.get_context(request)
        # From 2.21 the actions of deleted servers stay visible.
        instance = await self.services.compute_api.get(
            context, server_id,
            read_deleted=common.is_at_least(request, "2.21"))
        self.services.policy.authorize(context, f"{_RULE}:{rule}",
                                       instance_target(instance))
        return context, instance

    @route(app, "/servers/<server_id>/os-instance-actions", ["GET"],
           query=query_schema.instance_actions)
    async def index(self, request, server_id):
        context, instance = await self._instance(request, server_id, "list")
        kwargs = {}
        limit = None
        if common.is_at_least(request, "2.58"):
            limit, marker = common.limit_and_marker(
                request, self.conf.api.max_limit)
            kwargs.update(limit=limit, marker=marker)
            since = common.query_one(request, "changes-since")
            if since is not None:
                kwargs["changes_since"] = common.parse_isotime(
                    since, "changes-since")
            if common.is_at_least(request, "2.66"):
                before = common.query_one(request, "changes-before")
                if before is not None:
                    kwargs["changes_before"] = common.parse_isotime(
                        before, "changes-before")
        actions = await self.services.compute_api.get_actions(
            context, instance.uuid, **kwargs)
        body = {"instanceActions": [
            views.action(request, a, show_events=False, show_host=False,
                         show_traceback=False) for a in actions]}
        if limit is not None:
            links = common.next_link(
                request, f"servers/{server_id}/os-instance-actions",
                actions, limit, marker_of=lambda a: a.request_id)
            if links:
                body["links"] = links
        return json_response(request, body)

    @route(app, "/servers/<server_id>/os-instance-actions/<request_id>",
           ["GET"])
    async def show(self, request, server_id, request_id):
        context, instance = await self._instance(request, server_id, "show")
        action = await self.services.compute_api.get_action(
            context, instance.uuid, request_id)
        policy = self.services.policy
        target = instance_target(instance)
        may_see_events = policy.allowed(context, f"{_RULE}:events", target)
        body = views.action(request, action, show_events=True,
                            show_host=may_see_events,
                            show_traceback=may_see_events)
        show_details = common.is_at_least(request, "2.84") and \
            policy.allowed(context, f"{_RULE}:events:details", target)
        if may_see_events or common.is_at_least(request, "2.51"):
            body["events"] = [
                views.action_event(request, e,
                                   project_id=instance.project_id,
                                   show_host=may_see_events,
                                   show_traceback=may_see_events,
                                   show_details=show_details)
                for e in action.events]
        return json_response(request, {"instanceAction": body})
