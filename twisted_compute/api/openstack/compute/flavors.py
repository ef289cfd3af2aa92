"""``/flavors``: list, detail, show, create, update (2.55), delete."""

from __future__ import annotations

import uuid

from twisted_compute import exception
from twisted_compute.api.openstack import common
from twisted_compute.api.openstack.common import (
    Controller, json_response, make_app, route)
from twisted_compute.api.openstack.compute.schemas import flavors as schema
from twisted_compute.api.openstack.compute.schemas import \
    query as query_schema
from twisted_compute.api.openstack.compute.schemas import to_bool
from twisted_compute.api.openstack.compute.views import flavors as views


class FlavorsController(Controller):
    app = make_app()
    collections = (("flavors",),)

    async def _list(self, request):
        context = common.get_context(request)
        limit, marker = common.limit_and_marker(
            request, self.conf.api.max_limit)
        is_public: bool | None = True
        text = common.query_one(request, "is_public")
        if context.is_admin:
            # Admins see every flavor unless they filter.
            is_public = None
            if text is not None and text.lower() != "none":
                is_public = common.parse_bool(text, "is_public")
        project = None if context.is_admin else context.project_id

        sort_key = common.query_one(request, "sort_key", "flavorid")
        sort_dir = common.query_one(request, "sort_dir", "asc")
        if sort_dir not in ("asc", "desc"):
            raise exception.InvalidInput(
                reason=f"Invalid sort direction {sort_dir}")
        flavors = await self.db.flavors.get_all(
            project_id=project, is_public=is_public,
            min_memory_mb=common.query_int(request, "minRam"),
            min_root_gb=common.query_int(request, "minDisk"),
            limit=limit, marker=marker, sort_key=sort_key,
            sort_dir=sort_dir,
            name=(common.query_one(request, "name")
                  if common.is_at_least(request, "2.102") else None))
        return flavors, limit

    @route(app, "/flavors", ["GET"], query=query_schema.flavors)
    async def index(self, request):
        flavors, limit = await self._list(request)
        body = {"flavors": [views.basic(request, f) for f in flavors]}
        links = common.next_link(request, "flavors", body["flavors"], limit)
        if links:
            body["flavors_links"] = links
        return json_response(request, body)

    def _may_see_specs(self, request) -> bool:
        return self.services.policy.allowed(
            common.get_context(request),
            "os_compute_api:os-flavor-extra-specs:index")

    @route(app, "/flavors/detail", ["GET"], query=query_schema.flavors)
    async def detail(self, request):
        flavors, limit = await self._list(request)
        specs = self._may_see_specs(request)
        body = {"flavors": [views.detail(request, f, specs)
                            for f in flavors]}
        links = common.next_link(request, "flavors", body["flavors"], limit)
        if links:
            body["flavors_links"] = links
        return json_response(request, body)

    @route(app, "/flavors/<flavor_id>", ["GET"])
    async def show(self, request, flavor_id):
        context = common.get_context(request)
        flavor = await self.db.flavors.get_by_flavorid(
            flavor_id,
            None if context.is_admin else context.project_id)
        return json_response(request, {"flavor": views.detail(
            request, flavor, self._may_see_specs(request))})

    @route(app, "/flavors", ["POST"])
    async def create(self, request):
        context = common.get_context(request)
        self.services.policy.authorize(
            context, "os_compute_api:os-flavor-manage:create")
        body = common.read_body(request)
        common.validate(body, common.versioned(request, [
            ("2.102", None, schema.create_v2102),
            ("2.55", "2.101", schema.create_v255),
            (None, "2.54", schema.create)]))
        spec = body["flavor"]
        flavorid = spec.get("id")
        if flavorid is None or flavorid == "":
            flavorid = str(uuid.uuid4())
        is_public = to_bool(spec.get("os-flavor-access:is_public", True))
        values = {
            "flavorid": str(flavorid),
            "name": spec["name"],
            "memory_mb": common.bounded_int(spec["ram"], "flavor/ram", 1),
            "vcpus": common.bounded_int(spec["vcpus"], "flavor/vcpus", 1),
            "root_gb": common.bounded_int(spec["disk"], "flavor/disk"),
            "ephemeral_gb": common.bounded_int(
                spec.get("OS-FLV-EXT-DATA:ephemeral") or 0,
                "flavor/OS-FLV-EXT-DATA:ephemeral"),
            "swap": common.bounded_int(spec.get("swap") or 0,
                                       "flavor/swap"),
            "rxtx_factor": float(spec.get("rxtx_factor", 1.0)),
            "is_public": is_public,
            "description": spec.get("description"),
        }
        flavor = await self.db.flavors.create(values)
        return json_response(request, {"flavor": views.detail(
            request, flavor, True)})

    @route(app, "/flavors/<flavor_id>", ["PUT"])
    async def update(self, request, flavor_id):
        if not common.is_at_least(request, "2.55"):
            raise exception.NotFound()
        context = common.get_context(request)
        self.services.policy.authorize(
            context, "os_compute_api:os-flavor-manage:update")
        body = common.read_body(request)
        common.validate(body, schema.update_v255)
        flavor = await self.db.flavors.update_description(
            flavor_id, body["flavor"]["description"])
        return json_response(request, {"flavor": views.detail(
            request, flavor, True)})

    @route(app, "/flavors/<flavor_id>", ["DELETE"])
    async def delete(self, request, flavor_id):
        context = common.get_context(request)
        self.services.policy.authorize(
            context, "os_compute_api:os-flavor-manage:delete")
        await self.db.flavors.destroy(flavor_id)
        return json_response(request, None, 202)
