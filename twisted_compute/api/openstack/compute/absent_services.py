"""What Nova answers for a cloud without a block storage or a shared
file system service, and for the APIs Nova removed.

* ``/servers/{id}/os-volume_attachments``: a server has no volume
  attached, so the list is empty; attaching a volume names the volume as
  not found (there is no volume service to find it in), as Nova does
  for a volume its Cinder does not know.
* ``/servers/{id}/shares`` (2.97): the same for shares (Manila).
* The APIs Nova removed (``os-agents``, ``os-cells``, ``os-fping``, ...)
  answer 410 Gone, as Nova answers them, rather than 404: a client learns
  the API is gone, not that a resource is missing.
"""

from __future__ import annotations

from twisted_compute import exception
from twisted_compute.api.openstack import common
from twisted_compute.api.openstack.common import (
    Controller, json_response, make_app, route)
from twisted_compute.api.openstack.compute.schemas import query as q
from twisted_compute.api.openstack.compute.servers import instance_target

#: The collections Nova answers 410 for, and the release that removed
#: them.
REMOVED = {
    "os-agents": "22.0.0 (Victoria)",
    "os-cells": "20.0.0 (Train)",
    "os-certificates": "16.0.0 (Pike)",
    "os-cloudpipe": "16.0.0 (Pike)",
    "os-fping": "18.0.0 (Rocky)",
    "os-fixed-ips": "18.0.0 (Rocky)",
    "os-floating-ips-bulk": "18.0.0 (Rocky)",
    "os-floating-ip-dns": "18.0.0 (Rocky)",
    "os-security-group-default-rules": "21.0.0 (Ussuri)",
}


class VolumeNotFound(exception.NotFound):
    msg_fmt = "Volume %(volume_id)s could not be found."


class ShareNotFound(exception.NotFound):
    msg_fmt = "Share %(share_id)s could not be found."


def removed(collection: str) -> str | None:
    """The 410 message for a collection Nova removed (None: not one)."""
    release = REMOVED.get(collection)
    if release is None:
        return None
    return f"This API was removed in Nova {release}."


class VolumeAttachmentsController(Controller):
    """``/servers/{id}/os-volume_attachments``: no volume service."""

    app = make_app()
    collections = (("servers", "os-volume_attachments"),)

    async def _server(self, request, server_id, rule):
        context = common.get_context(request)
        instance = await self.services.compute_api.get(context, server_id)
        self.services.policy.authorize(context, rule,
                                       instance_target(instance))
        return instance

    @route(app, "/servers/<server_id>/os-volume_attachments", ["GET"],
           query=q.params(limit=q.non_negative_int,
                          offset=q.non_negative_int))
    async def index(self, request, server_id):
        await self._server(request, server_id,
                           "os_compute_api:os-volumes-attachments:index")
        return json_response(request, {"volumeAttachments": []})

    @route(app, "/servers/<server_id>/os-volume_attachments/<volume_id>",
           ["GET", "PUT", "DELETE"])
    async def show(self, request, server_id, volume_id):
        await self._server(request, server_id,
                           "os_compute_api:os-volumes-attachments:show")
        raise exception.NotFound(
            f"volume_id not found: {volume_id}")

    @route(app, "/servers/<server_id>/os-volume_attachments", ["POST"])
    async def create(self, request, server_id):
        await self._server(request, server_id,
                           "os_compute_api:os-volumes-attachments:create")
        body = common.read_body(request)
        common.validate(body, ATTACH)
        raise VolumeNotFound(volume_id=body["volumeAttachment"]["volumeId"])


class SharesController(Controller):
    """``/servers/{id}/shares`` (2.97): no shared file system service."""

    app = make_app()
    collections = (("servers", "shares"),)

    async def _server(self, request, server_id, rule):
        if not common.is_at_least(request, "2.97"):
            raise exception.NotFound("The resource could not be found.")
        context = common.get_context(request)
        instance = await self.services.compute_api.get(context, server_id)
        self.services.policy.authorize(context, rule,
                                       instance_target(instance))
        return instance

    @route(app, "/servers/<server_id>/shares", ["GET"])
    async def index(self, request, server_id):
        await self._server(request, server_id,
                           "os_compute_api:os-server-shares:index")
        return json_response(request, {"shares": []})

    @route(app, "/servers/<server_id>/shares/<share_id>", ["GET", "DELETE"])
    async def show(self, request, server_id, share_id):
        await self._server(request, server_id,
                           "os_compute_api:os-server-shares:show")
        raise ShareNotFound(share_id=share_id)

    @route(app, "/servers/<server_id>/shares", ["POST"])
    async def create(self, request, server_id):
        await self._server(request, server_id,
                           "os_compute_api:os-server-shares:create")
        body = common.read_body(request)
        common.validate(body, ATTACH_SHARE)
        raise ShareNotFound(share_id=body["share"]["share_id"])


ATTACH = {
    "type": "object",
    "properties": {"volumeAttachment": {
        "type": "object",
        "properties": {
            "volumeId": {"type": "string", "format": "uuid"},
            "device": {"type": ["string", "null"]},
            "tag": {"type": "string", "maxLength": 60},
            "delete_on_termination": {"type": "boolean"},
        },
        "required": ["volumeId"],
        "additionalProperties": False,
    }},
    "required": ["volumeAttachment"],
    "additionalProperties": False,
}

ATTACH_SHARE = {
    "type": "object",
    "properties": {"share": {
        "type": "object",
        "properties": {
            "share_id": {"type": "string", "format": "uuid"},
            "tag": {"type": "string", "maxLength": 255},
        },
        "required": ["share_id"],
        "additionalProperties": False,
    }},
    "required": ["share"],
    "additionalProperties": False,
}
