"""``GET /servers/{id}/diagnostics`` (admin): the guest's counters, read
by its compute agent (a compute RPC call).  From 2.48 in Nova's standard
shape, before it as the driver's flat dict.  409 while the server has no
host or its guest is not running, as Nova."""

from __future__ import annotations

from twisted_compute.api.openstack import common
from twisted_compute.api.openstack.common import (
    Controller, json_response, make_app, route)
from twisted_compute.api.openstack.compute.servers import instance_target
from twisted_compute.api.openstack.compute.views import \
    server_diagnostics as views


class ServerDiagnosticsController(Controller):
    app = make_app()
    collections = (("servers", "diagnostics"),)

    @route(app, "/servers/<server_id>/diagnostics", ["GET"])
    async def index(self, request, server_id):
        context = common.get_context(request)
        compute_api = self.services.compute_api
        instance = await compute_api.get(context, server_id)
        self.services.policy.authorize(
            context, "os_compute_api:os-server-diagnostics",
            instance_target(instance))
        diagnostics = await compute_api.get_instance_diagnostics(
            context, instance)
        if common.is_at_least(request, "2.48"):
            return json_response(request, views.standard(diagnostics))
        return json_response(request, views.legacy(diagnostics))
