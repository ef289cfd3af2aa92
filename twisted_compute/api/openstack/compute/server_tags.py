"""``/servers/{id}/tags`` (2.26): list, replace all, delete all, check
one, add one, delete one."""

from __future__ import annotations

import jsonschema

from twisted_compute import exception
from twisted_compute.api.openstack import common
from twisted_compute.api.openstack.common import (
    Controller, json_response, make_app, route)
from twisted_compute.api.openstack.compute.schemas import servers as schema
from twisted_compute.api.openstack.compute.servers import instance_target


def _check_tag(tag: str) -> None:
    try:
        jsonschema.validate(tag, schema.tag)
    except jsonschema.ValidationError as error:
        raise exception.ValidationError(
            field="tag", detail=f"Value: {tag!r}. {error.message}") \
            from None


class ServerTagsController(Controller):
    app = make_app()
    collections = (("servers", "tags"),)

    @property
    def compute_api(self):
        return self.services.compute_api

    async def _instance(self, request, server_id, rule):
        if not common.is_at_least(request, "2.26"):
            raise exception.NotFound("The resource could not be found.")
        context = common.get_context(request)
        instance = await self.compute_api.get(context, server_id)
        self.services.policy.authorize(
            context, f"os_compute_api:os-server-tags:{rule}",
            instance_target(instance))
        return context, instance

    @route(app, "/servers/<server_id>/tags", ["GET"])
    async def index(self, request, server_id):
        _, instance = await self._instance(request, server_id, "index")
        return json_response(request, {"tags": list(instance.tags)})

    @route(app, "/servers/<server_id>/tags/<tag>", ["GET"])
    async def show(self, request, server_id, tag):
        _, instance = await self._instance(request, server_id, "show")
        if tag not in instance.tags:
            raise exception.InstanceTagNotFound(instance_id=server_id,
                                                tag=tag)
        return json_response(request, None, 204)

    @route(app, "/servers/<server_id>/tags", ["PUT"])
    async def update_all(self, request, server_id):
        if not common.is_at_least(request, "2.26"):
            raise exception.NotFound("The resource could not be found.")
        body = common.read_body(request)
        if isinstance(body, dict) and isinstance(body.get("tags"), list) \
                and len(set(map(str, body["tags"]))) > 50:
            raise exception.TooManyTags(limit=50)
        common.validate(body, schema.tags_all)
        context, _ = await self._instance(request, server_id, "update_all")
        tags = await self.compute_api.set_tags(context, server_id,
                                               body["tags"])
        return json_response(request, {"tags": tags})

    @route(app, "/servers/<server_id>/tags/<tag>", ["PUT"])
    async def update(self, request, server_id, tag):
        if not common.is_at_least(request, "2.26"):
            raise exception.NotFound("The resource could not be found.")
        _check_tag(tag)
        context, _ = await self._instance(request, server_id, "update")
        added = await self.compute_api.add_tag(context, server_id, tag)
        if not added:
            return json_response(request, None, 204)
        link = common.links(request, f"servers/{server_id}/tags", tag)[0]
        request.setHeader(b"location", link["href"].encode())
        return json_response(request, None, 201)

    @route(app, "/servers/<server_id>/tags", ["DELETE"])
    async def delete_all(self, request, server_id):
        context, _ = await self._instance(request, server_id, "delete_all")
        await self.compute_api.delete_tag(context, server_id, None)
        return json_response(request, None, 204)

    @route(app, "/servers/<server_id>/tags/<tag>", ["DELETE"])
    async def delete(self, request, server_id, tag):
        context, _ = await self._instance(request, server_id, "delete")
        await self.compute_api.delete_tag(context, server_id, tag)
        return json_response(request, None, 204)
