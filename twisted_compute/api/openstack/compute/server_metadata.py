"""``/servers/{id}/metadata``: index, show, create (merge), update_all
(replace), update one key, delete one key."""

from __future__ import annotations

from twisted_compute import exception
from twisted_compute.api.openstack import common
from twisted_compute.api.openstack.common import (
    Controller, json_response, make_app, route)
from twisted_compute.api.openstack.compute.schemas import servers as schema
from twisted_compute.api.openstack.compute.servers import instance_target


class ServerMetadataController(Controller):
    app = make_app()
    collections = (("servers", "metadata"),)

    @property
    def compute_api(self):
        return self.services.compute_api

    async def _instance(self, request, server_id, rule):
        context = common.get_context(request)
        instance = await self.compute_api.get(context, server_id)
        self.services.policy.authorize(
            context, f"os_compute_api:server-metadata:{rule}",
            instance_target(instance))
        return context, instance

    @route(app, "/servers/<server_id>/metadata", ["GET"])
    async def index(self, request, server_id):
        _, instance = await self._instance(request, server_id, "index")
        return json_response(request, {"metadata": dict(instance.metadata)})

    @route(app, "/servers/<server_id>/metadata/<key>", ["GET"])
    async def show(self, request, server_id, key):
        _, instance = await self._instance(request, server_id, "show")
        if key not in instance.metadata:
            raise exception.NotFound("Metadata item was not found")
        return json_response(request, {"meta": {key: instance.metadata[key]}})

    @route(app, "/servers/<server_id>/metadata", ["POST"])
    async def create(self, request, server_id):
        body = common.read_body(request)
        common.validate(body, schema.metadata_all)
        context, _ = await self._instance(request, server_id, "create")
        merged = await self.compute_api.update_metadata(
            context, server_id, body["metadata"], replace=False)
        return json_response(request, {"metadata": merged})

    @route(app, "/servers/<server_id>/metadata", ["PUT"])
    async def update_all(self, request, server_id):
        body = common.read_body(request)
        common.validate(body, schema.metadata_all)
        context, _ = await self._instance(request, server_id, "update_all")
        metadata = await self.compute_api.update_metadata(
            context, server_id, body["metadata"], replace=True)
        return json_response(request, {"metadata": metadata})

    @route(app, "/servers/<server_id>/metadata/<key>", ["PUT"])
    async def update(self, request, server_id, key):
        meta = common.metadata_item(request, key, schema.metadata_item)
        context, _ = await self._instance(request, server_id, "update")
        await self.compute_api.update_metadata(
            context, server_id, meta, replace=False)
        return json_response(request, {"meta": meta})

    @route(app, "/servers/<server_id>/metadata/<key>", ["DELETE"])
    async def delete(self, request, server_id, key):
        context, instance = await self._instance(request, server_id,
                                                 "delete")
        if key not in instance.metadata:
            raise exception.NotFound("Metadata item was not found")
        await self.compute_api.delete_metadata(context, server_id, key)
        return json_response(request, None, 204)
