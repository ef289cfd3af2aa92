"""``/os-hypervisors``: the compute nodes the compute services report,
with their service's state.  Ids are database ids before 2.53 and uuids
from 2.53; paging from 2.33; search and servers by hostname pattern move
from path segments to query parameters at 2.53."""

from __future__ import annotations

from twisted_compute import exception
from twisted_compute.api.openstack import common
from twisted_compute.api.openstack.common import (
    Controller, json_response, make_app, route)
from twisted_compute.api.openstack.compute.schemas import \
    query as query_schema
from twisted_compute.api.openstack.compute.views import hypervisors as views
from twisted_compute.db import models
from twisted_compute.db import services as services_db

_POLICY = "os_compute_api:os-hypervisors:"


class HypervisorsController(Controller):
    app = make_app()
    collections = (("os-hypervisors",),)

    def _authorize(self, request, action):
        self.services.policy.authorize(common.get_context(request),
                                       _POLICY + action)

    def _view(self, request, node, detail: bool) -> dict:
        view = views.detail if detail else views.basic
        return view(request, node, models.utcnow(),
                    self.conf.service_down_time)

    def _with_servers(self, request) -> bool:
        if not common.is_at_least(request, "2.53"):
            return False
        text = common.query_one(request, "with_servers")
        return text is not None and common.parse_bool(text, "with_servers")

    async def _list(self, request, detail: bool):
        self._authorize(request, "list-detail" if detail else "list")
        with_servers = self._with_servers(request)
        pattern = None
        limit = marker = None
        if common.is_at_least(request, "2.53"):
            pattern = common.query_one(request, "hypervisor_hostname_pattern")
        if common.is_at_least(request, "2.33"):
            if pattern is not None and (
                    common.query_one(request, "limit") is not None or
                    common.query_one(request, "marker") is not None):
                raise exception.InvalidInput(reason=(
                    "Paging over hypervisors with the "
                    "hypervisor_hostname_pattern query parameter is not "
                    "supported."))
            if pattern is None:
                limit, marker = common.limit_and_marker(
                    request, self.conf.api.max_limit)
        nodes, servers = await self.db.services.nodes_and_servers(
            self.conf, with_servers,
            hostname_pattern=pattern, limit=limit, marker=marker,
            marker_is_uuid=common.is_at_least(request, "2.53"))
        if pattern is not None and not nodes:
            raise exception.NotFound(
                f"No hypervisor matching '{pattern}' could be found.")
        items = []
        for node in nodes:
            body = self._view(request, node, detail)
            if with_servers:
                views.add_servers(request, body, servers[node.id])
            items.append(body)
        result = {"hypervisors": items}
        if limit is not None:
            path = "os-hypervisors/detail" if detail else "os-hypervisors"
            links = common.next_link(request, path, items, limit)
            if links:
                result["hypervisors_links"] = links
        return json_response(request, result)

    @route(app, "/os-hypervisors", ["GET"],
           query=query_schema.hypervisors)
    async def index(self, request):
        return await self._list(request, detail=False)

    @route(app, "/os-hypervisors/detail", ["GET"],
           query=query_schema.hypervisors)
    async def detail(self, request):
        return await self._list(request, detail=True)

    @route(app, "/os-hypervisors/statistics", ["GET"])
    async def statistics(self, request):
        if common.is_at_least(request, "2.88"):
            raise exception.NotFound()  # removed at 2.88
        self._authorize(request, "statistics")
        nodes, _ = await self.db.services.nodes_and_servers(self.conf)
        nodes = [n for n in nodes if not n.service.disabled]
        return json_response(request, {
            "hypervisor_statistics": views.statistics(nodes)})

    async def _node(self, request, hypervisor_id, with_servers=False):
        if common.is_at_least(request, "2.53"):
            if not common.is_uuid_like(hypervisor_id):
                raise exception.InvalidInput(
                    reason=f"Invalid uuid {hypervisor_id}")
            return await self.db.services.node_and_servers(
                self.conf, with_servers, uuid=hypervisor_id)
        try:
            number = int(hypervisor_id)
        except ValueError:
            number = -1
        if not 0 <= number <= common.MAX_INT:
            raise exception.HypervisorNotFound(hypervisor_id=hypervisor_id)
        return await self.db.services.node_and_servers(
            self.conf, with_servers, node_id=number)

    @route(app, "/os-hypervisors/<hypervisor_id>", ["GET"],
           query=query_schema.hypervisor)
    async def show(self, request, hypervisor_id):
        self._authorize(request, "show")
        with_servers = self._with_servers(request)
        node, servers = await self._node(request, hypervisor_id,
                                         with_servers)
        body = self._view(request, node, detail=True)
        if with_servers:
            views.add_servers(request, body, servers)
        return json_response(request, {"hypervisor": body})

    @route(app, "/os-hypervisors/<hypervisor_id>/uptime", ["GET"])
    async def uptime(self, request, hypervisor_id):
        if common.is_at_least(request, "2.88"):
            raise exception.NotFound()  # in show and detail from 2.88
        self._authorize(request, "uptime")
        node, _ = await self._node(request, hypervisor_id)
        if not services_db.is_up(node.service, models.utcnow(),
                                 self.conf.service_down_time):
            raise exception.ComputeServiceUnavailable(host=node.host)
        if node.uptime is None:
            # The node's driver reports none (a remote libvirtd).
            raise exception.NotImplementedYet(feature="Hypervisor uptime")
        body = views.basic(request, node, models.utcnow(),
                           self.conf.service_down_time)
        body["uptime"] = node.uptime
        return json_response(request, {"hypervisor": body})

    async def _by_pattern(self, request, pattern, with_servers):
        if common.is_at_least(request, "2.53"):
            raise exception.NotFound()
        nodes, servers = await self.db.services.nodes_and_servers(
            self.conf, with_servers,
            hostname_pattern=pattern)
        if not nodes:
            raise exception.NotFound(
                f"No hypervisor matching '{pattern}' could be found.")
        items = []
        for node in nodes:
            body = self._view(request, node, detail=False)
            if with_servers:
                views.add_servers(request, body, servers[node.id])
            items.append(body)
        return json_response(request, {"hypervisors": items})

    @route(app, "/os-hypervisors/<pattern>/search", ["GET"])
    async def search(self, request, pattern):
        self._authorize(request, "search")
        return await self._by_pattern(request, pattern, False)

    @route(app, "/os-hypervisors/<pattern>/servers", ["GET"])
    async def servers(self, request, pattern):
        self._authorize(request, "servers")
        return await self._by_pattern(request, pattern, True)
