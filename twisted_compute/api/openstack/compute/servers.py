"""``/servers``: list, detail, show, create (with multiple create),
update, delete.  The query of a list becomes filters in
:mod:`.server_filters`; a create body is normalised in
:mod:`.server_create`."""

from __future__ import annotations

from typing import Any

from twisted_compute import exception
from twisted_compute.api.openstack import common, extensions
from twisted_compute.api.openstack.common import (
    Controller, json_response, make_app, route)
from twisted_compute.api.openstack.compute import (
    server_create, server_filters)
from twisted_compute.api.openstack.compute.schemas import \
    query as query_schema
from twisted_compute.api.openstack.compute.schemas import servers as schema
from twisted_compute.api.openstack.compute.views import servers as views

#: The query of the server lists at 2.102 (the same names as from 2.75).
_LIST_QUERY = query_schema.servers(server_filters.KNOWN_PARAMS)


def make_views(services, request, context) -> views.ServerViews:
    """The per-request server view builder (what this caller sees)."""
    policy = services.policy
    return views.ServerViews(
        request, is_admin=context.is_admin,
        extended_attributes=policy.allowed(
            context, "os_compute_api:os-extended-server-attributes"),
        host_status=policy.allowed(
            context, "os_compute_api:servers:show:host_status"),
        flavor_extra_specs=policy.allowed(
            context, "os_compute_api:os-flavor-extra-specs:index"),
        instance_name_template=services.conf.instance_name_template)


def instance_target(instance) -> dict[str, str]:
    return {"project_id": instance.project_id, "user_id": instance.user_id}


async def show_body(services, request, context, instance,
                    full: bool = True) -> dict:
    """``{"server": ...}`` as show (or pre-2.75 update) renders it."""
    builder = make_views(services, request, context)
    groups = None
    if common.is_at_least(request, "2.71"):
        groups = await services.compute_api.server_groups_of(instance.uuid)
    statuses = None
    if full and builder.host_status and instance.host:
        statuses = await services.compute_api.host_statuses(
            [instance.host])
    server = builder.show(instance, full=full, server_groups=groups,
                          host_statuses=statuses)
    extensions.extend_servers(services, request, context,
                              [(instance, server)])
    return {"server": server}


class ServersController(Controller):
    app = make_app()
    collections = (("servers",),)

    @property
    def compute_api(self):
        return self.services.compute_api

    # --- list ---------------------------------------------------------

    async def _list(self, request, detail: bool):
        context = common.get_context(request)
        self.services.policy.authorize(
            context, f"os_compute_api:servers:{'detail' if detail else 'index'}")
        search = server_filters.search(request, context,
                                       self.services.policy,
                                       self.conf.api.max_limit, detail)
        if search is None:
            return [], 0
        filters, sort_keys, sort_dirs, limit, marker = search
        if "flavor" in filters:
            flavorid = filters.pop("flavor")
            try:
                flavor = await self.db.flavors.get_by_flavorid(flavorid)
            except exception.FlavorNotFound:
                return [], limit
            filters["instance_type_id"] = flavor.id
        # Details show the pinned zone (2.96) and the hints (2.100) from
        # the request spec: those two pieces are read with the page.
        instances = await self.compute_api.get_all(
            context, filters, sort_keys, sort_dirs, limit, marker,
            with_spec=detail and common.is_at_least(request, "2.96"))
        return instances, limit

    @route(app, "/servers", ["GET"], query=_LIST_QUERY)
    async def index(self, request):
        instances, limit = await self._list(request, detail=False)
        builder = make_views(self.services, request,
                             common.get_context(request))
        body: dict[str, Any] = {
            "servers": [builder.basic(i) for i in instances]}
        links = common.next_link(request, "servers", body["servers"], limit)
        if links:
            body["servers_links"] = links
        return json_response(request, body)

    @route(app, "/servers/detail", ["GET"], query=_LIST_QUERY)
    async def detail(self, request):
        instances, limit = await self._list(request, detail=True)
        context = common.get_context(request)
        builder = make_views(self.services, request, context)
        statuses = None
        if builder.host_status:
            statuses = await self.compute_api.host_statuses(
                [i.host for i in instances if i.host])
        body: dict[str, Any] = {"servers": [
            builder.show(i, host_statuses=statuses) for i in instances]}
        extensions.extend_servers(self.services, request, context,
                                  list(zip(instances, body["servers"])))
        links = common.next_link(request, "servers", body["servers"], limit)
        if links:
            body["servers_links"] = links
        return json_response(request, body)

    # --- show ---------------------------------------------------------

    async def _instance(self, request, server_id, rule: str,
                        read_deleted: bool = False):
        context = common.get_context(request)
        instance = await self.compute_api.get(context, server_id,
                                              read_deleted)
        self.services.policy.authorize(context, rule,
                                       instance_target(instance))
        return context, instance

    @route(app, "/servers/<server_id>", ["GET"])
    async def show(self, request, server_id):
        context, instance = await self._instance(
            request, server_id, "os_compute_api:servers:show")
        return json_response(request, await show_body(
            self.services, request, context, instance))

    # --- create -------------------------------------------------------

    @route(app, "/servers", ["POST"])
    async def create(self, request):
        context = common.get_context(request)
        self.services.policy.authorize(
            context, "os_compute_api:servers:create",
            {"project_id": context.project_id, "user_id": context.user_id})
        body = common.read_body(request)
        common.validate(body, schema.create(request.api_version))
        server = server_create.server_body(request, context, body,
                                           self.services.policy, self.conf)
        try:
            instances, reservation_id, admin_pass = \
                await self.compute_api.create(context, server)
        except exception.InstanceGroupNotFound as exc:
            raise exception.InvalidInput(
                reason=exc.format_message()) from None
        if server["return_reservation_id"]:
            return json_response(request,
                                 {"reservation_id": reservation_id}, 202)
        builder = make_views(self.services, request, context)
        first = instances[0]
        request.setHeader(b"location", builder.links(first.uuid)[0][
            "href"].encode())
        return json_response(request, views.create_response(
            builder, first, admin_pass), 202)

    # --- update, delete -----------------------------------------------

    @route(app, "/servers/<server_id>", ["PUT"])
    async def update(self, request, server_id):
        context, instance = await self._instance(
            request, server_id, "os_compute_api:servers:update")
        body = common.read_body(request)
        common.validate(body, schema.update(request.api_version))
        server = body["server"]
        values: dict[str, Any] = {}
        if "name" in server:
            values["display_name"] = server["name"]
        if "description" in server:
            values["display_description"] = server["description"]
        if "accessIPv4" in server:
            values["access_ip_v4"] = server["accessIPv4"] or None
        if "accessIPv6" in server:
            values["access_ip_v6"] = common.canonical_ipv6(
                server["accessIPv6"])
        if "hostname" in server:  # 2.90
            values["hostname"] = server["hostname"]
        if "OS-DCF:diskConfig" in server:
            values["system_metadata"] = {
                **instance.system_metadata,
                "disk_config": server["OS-DCF:diskConfig"]}
        if values:
            instance = await self.compute_api.update(context, server_id,
                                                     values)
        if "pinned_availability_zone" in server:  # 2.104
            instance = await self.compute_api.set_pinned_zone(
                context, server_id, server["pinned_availability_zone"])
        full = common.is_at_least(request, "2.75")
        return json_response(request, await show_body(
            self.services, request, context, instance, full=full))

    @route(app, "/servers/<server_id>", ["DELETE"])
    async def delete(self, request, server_id):
        context, instance = await self._instance(
            request, server_id, "os_compute_api:servers:delete")
        await self.compute_api.delete(context, server_id)
        return json_response(request, None, 204)
