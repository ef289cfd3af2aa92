"""Server actions of a server's life on its host: ``rebuild``, ``rescue``,
``unrescue``, ``forceDelete``, ``restore``, ``trigger_crash_dump`` (2.17)
and ``changePassword``, as Nova's API answers them.  The work is in
:mod:`twisted_compute.compute.lifecycle_api`."""

from __future__ import annotations

import base64
import binascii
from typing import Any, Callable

from twisted_compute import exception
from twisted_compute.api.openstack import common
from twisted_compute.api.openstack.common import json_response
from twisted_compute.api.openstack.compute.action_handlers import (
    bound, simple_action)
from twisted_compute.api.openstack.compute import server_create
from twisted_compute.api.openstack.compute.schemas import servers as schema
from twisted_compute.api.openstack.compute.servers import (
    instance_target, show_body)
from twisted_compute.compute.api import generate_password


#: The actions of the common shape (see :mod:`.action_handlers`).
SIMPLE = {
    "unrescue": simple_action(
        schema.unrescue, "os_compute_api:os-unrescue",
        lambda api, context, server_id, args: api.unrescue(context,
                                                           server_id)),
    "forceDelete": simple_action(
        schema.force_delete, "os_compute_api:os-deferred-delete:force",
        lambda api, context, server_id, args: api.force_delete(context,
                                                               server_id)),
    "restore": simple_action(
        schema.restore, "os_compute_api:os-deferred-delete:restore",
        lambda api, context, server_id, args: api.restore(context,
                                                          server_id)),
    "trigger_crash_dump": simple_action(
        schema.trigger_crash_dump,
        "os_compute_api:servers:trigger_crash_dump",
        lambda api, context, server_id, args: api.trigger_crash_dump(
            context, server_id), min_version="2.17"),
    "changePassword": simple_action(
        schema.change_password, "os_compute_api:os-admin-password",
        lambda api, context, server_id, args: api.set_admin_password(
            context, server_id, args["adminPass"])),
}


def handlers(controller) -> dict[str, Callable]:
    """The action handlers, bound to ``controller`` (a
    ServerActionsController: its ``services``, ``compute_api`` and
    ``_instance``)."""
    actions = LifecycleActions(controller)
    return {"rebuild": actions.rebuild, "rescue": actions.rescue,
            **bound(controller, SIMPLE)}


def _rebuild_fields(request, conf, body: dict[str, Any]) -> dict[str, Any]:
    """The normalised rebuild body (only what was given)."""
    fields: dict[str, Any] = {}
    if "name" in body:
        fields["name"] = body["name"]
    if "metadata" in body:
        fields["metadata"] = body["metadata"] or {}
    if "accessIPv4" in body:
        fields["access_ip_v4"] = body["accessIPv4"] or None
    if "accessIPv6" in body:
        fields["access_ip_v6"] = common.canonical_ipv6(body["accessIPv6"])
    if "OS-DCF:diskConfig" in body:
        fields["disk_config"] = body["OS-DCF:diskConfig"]
    if "preserve_ephemeral" in body:
        # the schema allowed only Nova's boolean spellings
        value = body["preserve_ephemeral"]
        fields["preserve_ephemeral"] = value if isinstance(value, bool) \
            else common.parse_bool(value, "preserve_ephemeral")
    if "description" in body:
        fields["description"] = body["description"]
    if "key_name" in body:
        fields["key_name"] = body["key_name"]
    if "user_data" in body:
        if body["user_data"] is not None:
            try:
                base64.b64decode(body["user_data"], validate=False)
            except (binascii.Error, ValueError):
                raise exception.InvalidInput(
                    reason="Userdata content cannot be decoded") from None
        fields["user_data"] = body["user_data"]
    if "trusted_image_certificates" in body:
        fields["trusted_image_certificates"] = \
            body["trusted_image_certificates"]
    if "hostname" in body:
        fields["hostname"] = body["hostname"]
    if body.get("personality"):
        fields["personality"] = server_create._personality(conf, body)
    return fields


class LifecycleActions:
    def __init__(self, controller):
        self.controller = controller
        self.services = controller.services

    @property
    def compute_api(self):
        return self.services.compute_api

    async def rebuild(self, request, server_id, name, body):
        common.validate(body, schema.rebuild_schema(request.api_version))
        rebuild = body["rebuild"]
        context, instance = await self.controller._instance(
            request, server_id, "os_compute_api:servers:rebuild")
        if rebuild.get("trusted_image_certificates"):
            self.services.policy.authorize(
                context, "os_compute_api:servers:rebuild:trusted_certs",
                instance_target(instance))
        fields = _rebuild_fields(request, self.services.conf, rebuild)
        admin_pass = rebuild.get("adminPass") or generate_password()
        instance = await self.compute_api.rebuild(
            context, server_id, rebuild["imageRef"], admin_pass, fields)
        full = common.is_at_least(request, "2.75")
        answer = await show_body(self.services, request, context, instance,
                                 full=full)
        server = answer["server"]
        if common.is_at_least(request, "2.54"):
            server.setdefault("key_name", instance.key_name)
        if common.is_at_least(request, "2.57"):
            server["user_data"] = instance.user_data
        server["adminPass"] = admin_pass
        return json_response(request, answer, 202)

    async def rescue(self, request, server_id, name, body):
        common.validate(body, schema.rescue)
        options = body["rescue"] or {}
        context, _ = await self.controller._instance(
            request, server_id, "os_compute_api:os-rescue")
        admin_pass = options.get("adminPass") or generate_password()
        await self.compute_api.rescue(
            context, server_id, options.get("rescue_image_ref"), admin_pass)
        return json_response(request, {"adminPass": admin_pass}, 200)
