"""Remote consoles: ``POST /servers/{id}/remote-consoles`` (2.6 and
later), the legacy actions ``os-getVNCConsole``, ``os-getSPICEConsole``,
``os-getSerialConsole`` and ``os-getRDPConsole`` (2.1 to 2.5, served
through ``/servers/{id}/action``), and ``GET
/os-console-auth-tokens/{token}`` (admin).

The agent says where the console is; the compute API layer stores a
token for it and answers the URL of the console proxy with the token.
"""

from __future__ import annotations

from twisted_compute import exception
from twisted_compute.api.openstack import common
from twisted_compute.api.openstack.common import (
    Controller, json_response, make_app, route)
from twisted_compute.api.openstack.compute.schemas import \
    remote_consoles as schema
from twisted_compute.api.openstack.compute.servers import instance_target
from twisted_compute.objects.console import CONSOLE_PROTOCOLS

#: Legacy action -> its body schema.
LEGACY_ACTIONS = {
    "os-getVNCConsole": schema.get_vnc_console,
    "os-getSPICEConsole": schema.get_spice_console,
    "os-getSerialConsole": schema.get_serial_console,
    "os-getRDPConsole": schema.get_rdp_console,
}

POLICY = "os_compute_api:os-remote-consoles"
TOKENS_POLICY = "os_compute_api:os-console-auth-tokens"


async def _console(services, request, server_id: str, console_type: str
                   ) -> dict:
    context = common.get_context(request)
    instance = await services.compute_api.get(context, server_id)
    services.policy.authorize(context, POLICY, instance_target(instance))
    return await services.compute_api.get_console(context, server_id,
                                                  console_type)


async def legacy_action(services, request, server_id: str, name: str,
                        body) -> bytes:
    """One of :data:`LEGACY_ACTIONS` (404 from 2.6 on, as Nova)."""
    if common.is_at_least(request, "2.6"):
        raise exception.NotFound(
            f"There is no such action: {name} after microversion 2.5")
    common.validate(body, LEGACY_ACTIONS[name])
    console = await _console(services, request, server_id,
                             body[name]["type"])
    return json_response(request, {"console": {
        "type": console["type"], "url": console["url"]}})


class RemoteConsolesController(Controller):
    app = make_app()
    collections = (("servers", "remote-consoles"),)

    @route(app, "/servers/<server_id>/remote-consoles", ["POST"])
    async def create(self, request, server_id):
        if not common.is_at_least(request, "2.6"):
            raise exception.NotFound("The resource could not be found.")
        body = common.read_body(request)
        common.validate(body, common.versioned(request, (
            ("2.6", "2.7", schema.create_v26),
            ("2.8", "2.98", schema.create_v28),
            ("2.99", None, schema.create_v299))))
        protocol = body["remote_console"]["protocol"]
        console_type = body["remote_console"]["type"]
        if CONSOLE_PROTOCOLS.get(console_type) != protocol:
            raise exception.ConsoleTypeInvalid(console_type=console_type)
        console = await _console(self.services, request, server_id,
                                 console_type)
        return json_response(request, {"remote_console": console})


class ConsoleAuthTokensController(Controller):
    app = make_app()
    collections = (("os-console-auth-tokens",),)

    @route(app, "/os-console-auth-tokens/<token>", ["GET"])
    async def show(self, request, token):
        context = common.get_context(request)
        self.services.policy.authorize(context, TOKENS_POLICY, {
            "project_id": context.project_id})
        if not token:
            raise exception.Invalid("token not provided")
        record = await self.services.compute_api.get_console_connect_info(
            context, token)
        if not common.is_at_least(request, "2.31") and \
                record.console_type != "rdp-html5":
            raise exception.ConsoleDetailsNotAccessible()
        console = {
            "instance_uuid": record.instance_uuid,
            "host": record.host,
            "port": record.port,
            "internal_access_path": record.internal_access_path,
        }
        if common.is_at_least(request, "2.99"):
            console["tls_port"] = record.tls_port
        return json_response(request, {"console": console})
