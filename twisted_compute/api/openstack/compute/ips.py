"""``/servers/{id}/ips`` and ``/servers/{id}/ips/{network}``."""

from __future__ import annotations

from twisted_compute import exception
from twisted_compute.api.openstack import common
from twisted_compute.api.openstack.common import (
    Controller, json_response, make_app, route)
from twisted_compute.api.openstack.compute.servers import instance_target
from twisted_compute.api.openstack.compute.views.servers import addresses


class IPsController(Controller):
    app = make_app()
    collections = (("servers", "ips"),)

    async def _instance(self, request, server_id, rule):
        context = common.get_context(request)
        instance = await self.services.compute_api.get(context, server_id)
        self.services.policy.authorize(context, f"os_compute_api:ips:{rule}",
                                       instance_target(instance))
        return instance

    @route(app, "/servers/<server_id>/ips", ["GET"])
    async def index(self, request, server_id):
        instance = await self._instance(request, server_id, "index")
        return json_response(request, {"addresses": addresses(
            instance, extended=False)})

    @route(app, "/servers/<server_id>/ips/<network>", ["GET"])
    async def show(self, request, server_id, network):
        instance = await self._instance(request, server_id, "show")
        networks = addresses(instance, extended=False)
        if network not in networks:
            raise exception.NotFound(
                "Instance is not a member of specified network")
        return json_response(request, {network: networks[network]})
