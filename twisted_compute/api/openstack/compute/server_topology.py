"""``/servers/{id}/topology`` (2.78): the server's NUMA topology, as
its agent recorded it after spawn (``system_metadata["numa_topology"]``:
the libvirt driver reads the guest's NUMA cells and vCPU pinning from its
domain XML).  A server without one answers ``{"nodes": [],
"pagesize_kb": null}``, as Nova; ``host_node`` and ``cpu_pinning`` are
for admins."""

from __future__ import annotations

from twisted_compute import exception
from twisted_compute.api.openstack import common
from twisted_compute.api.openstack.common import (
    Controller, json_response, make_app, route)
from twisted_compute.api.openstack.compute.servers import instance_target


class ServerTopologyController(Controller):
    app = make_app()
    collections = (("servers", "topology"),)

    @route(app, "/servers/<server_id>/topology", ["GET"])
    async def index(self, request, server_id):
        if not common.is_at_least(request, "2.78"):
            raise exception.NotFound("The resource could not be found.")
        context = common.get_context(request)
        instance = await self.services.compute_api.get(context, server_id)
        self.services.policy.authorize(
            context, "os_compute_api:server-topology:index",
            instance_target(instance))
        numa = (instance.system_metadata or {}).get("numa_topology")
        if not numa:
            return json_response(request, {"nodes": [],
                                           "pagesize_kb": None})
        body = {"nodes": [dict(n) for n in numa.get("nodes", [])],
                "pagesize_kb": numa.get("pagesize_kb")}
        if not self.services.policy.allowed(
                context, "os_compute_api:server-topology:host:index",
                instance_target(instance)):
            for node in body["nodes"]:
                node.pop("host_node", None)
                node.pop("cpu_pinning", None)
        return json_response(request, body)
