"""``/servers/{id}/os-server-password``: the encrypted admin password a
guest posted to the metadata service (show), and clearing it."""

from __future__ import annotations

from twisted_compute.api.openstack import common
from twisted_compute.api.openstack.common import (
    Controller, json_response, make_app, route)
from twisted_compute.api.openstack.compute.servers import instance_target


class ServerPasswordController(Controller):
    app = make_app()
    collections = (("servers", "os-server-password"),)

    async def _instance(self, request, server_id, rule):
        context = common.get_context(request)
        instance = await self.services.compute_api.get(context, server_id)
        self.services.policy.authorize(
            context, f"os_compute_api:os-server-password:{rule}",
            instance_target(instance))
        return context, instance

    @route(app, "/servers/<server_id>/os-server-password", ["GET"])
    async def index(self, request, server_id):
        _, instance = await self._instance(request, server_id, "show")
        password = (instance.system_metadata or {}).get("password") or ""
        return json_response(request, {"password": password})

    @route(app, "/servers/<server_id>/os-server-password", ["DELETE"])
    async def clear(self, request, server_id):
        context, _ = await self._instance(request, server_id, "clear")
        await self.services.compute_api.clear_password(context, server_id)
        return json_response(request, None, 204)
