"""Server actions that make images: ``createImage``, ``createBackup``,
``shelve``, ``shelveOffload`` and ``unshelve`` (their handlers, which
:class:`~twisted_compute.api.openstack.compute.server_actions.
ServerActionsController` dispatches to)."""

from __future__ import annotations

from typing import Any, Callable

from twisted_compute import exception
from twisted_compute.api.openstack import common
from twisted_compute.api.openstack.common import json_response
from twisted_compute.api.openstack.compute.action_handlers import (
    bound, simple_action)
from twisted_compute.api.openstack.compute.schemas import servers as schema
from twisted_compute.api.openstack.compute.servers import instance_target
from twisted_compute.api.openstack.compute.views.images import (
    _image_api_url)


def handlers(controller) -> dict[str, Callable]:
    """The action name -> handler table for ``controller``."""
    return bound(controller, {
        "createImage": create_image,
        "createBackup": create_backup,
        "shelve": simple_action(
            schema.shelve, "os_compute_api:os-shelve:shelve",
            lambda api, context, server_id, args: api.shelve(context,
                                                             server_id)),
        "shelveOffload": simple_action(
            schema.shelve_offload, "os_compute_api:os-shelve:shelve_offload",
            lambda api, context, server_id, args: api.shelve_offload(
                context, server_id)),
        "unshelve": unshelve,
    })


def _image_response(controller, request, image_id: str):
    """2.45 on: ``{"image_id"}``; before: 202 with a ``Location``."""
    if common.is_at_least(request, "2.45"):
        return json_response(request, {"image_id": image_id}, 202)
    base = _image_api_url(request, controller.conf)
    request.setHeader(b"location", f"{base}/images/{image_id}".encode())
    return json_response(request, None, 202)


async def create_image(controller, request, server_id, name, body):
    common.validate(body, schema.create_image)
    args: dict[str, Any] = body["createImage"]
    context, _ = await controller._instance(
        request, server_id, "os_compute_api:servers:create_image")
    image_id = await controller.compute_api.snapshot(
        context, server_id, args["name"].strip() or args["name"],
        args.get("metadata") or {})
    return _image_response(controller, request, image_id)


async def create_backup(controller, request, server_id, name, body):
    common.validate(body, schema.create_backup)
    args: dict[str, Any] = body["createBackup"]
    context, _ = await controller._instance(
        request, server_id, "os_compute_api:os-create-backup")
    image_id = await controller.compute_api.backup(
        context, server_id, args["name"], args["backup_type"],
        int(args["rotation"]), args.get("metadata") or {})
    return _image_response(controller, request, image_id)


async def unshelve(controller, request, server_id, name, body):
    common.validate(body, schema.unshelve)
    args = body["unshelve"]
    zone: Any = ...
    host = None
    if args is not None:
        if not common.is_at_least(request, "2.77"):
            raise exception.Invalid(
                "Invalid input for field/attribute unshelve: the body "
                "must be null before microversion 2.77")
        if not isinstance(args, dict):
            raise exception.Invalid(
                "Invalid input for field/attribute unshelve.")
        at_291 = common.is_at_least(request, "2.91")
        if "host" in args and not at_291:
            raise exception.Invalid(
                "Additional properties are not allowed ('host' was "
                "unexpected)")
        if "availability_zone" in args:
            zone = args["availability_zone"]
            if zone is None and not at_291:
                raise exception.Invalid(
                    "Invalid input for field/attribute availability_zone. "
                    "Value: None. None is not of type 'string'")
        host = args.get("host")
    rule = "os_compute_api:os-shelve:unshelve"
    context, _ = await controller._instance(request, server_id, rule)
    if host is not None:
        instance = await controller.compute_api.get(context, server_id)
        controller.services.policy.authorize(
            context, "os_compute_api:os-shelve:unshelve_to_host",
            instance_target(instance))
    await controller.compute_api.unshelve(context, server_id, zone=zone,
                                          host=host)
    return json_response(request, None, 202)
