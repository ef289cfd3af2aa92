"""``POST /servers/{id}/action``: every server action Nova has.

Each action's body is validated against its schema first (400 naming the
field), then the server is looked up (404), the policy checked (403) and
the work handed to the compute API layer, which checks lock and state
(409).  Actions that need what twisted-compute does not have (volumes,
images of servers, migrations, ...) answer 501 naming the action.
Rebuild, rescue, deferred delete, crash dumps and passwords are in
:mod:`.lifecycle_actions`.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted_compute import exception
from twisted_compute.api.openstack import common, extensions
from twisted_compute.api.openstack.common import (
    Controller, json_response, make_app, route)
from twisted_compute.api.openstack.compute import (
    action_handlers, lifecycle_actions, remote_consoles, snapshot_actions)
from twisted_compute.api.openstack.compute.schemas import servers as schema
from twisted_compute.api.openstack.compute.servers import instance_target

#: Actions answered 501: action -> (schema, min version, why).
UNSUPPORTED: dict[str, tuple[dict, str | None, str]] = {
    "addSecurityGroup": (schema.add_security_group, None,
                         "there is no network service"),
    "removeSecurityGroup": (schema.remove_security_group, None,
                            "there is no network service"),
    "injectNetworkInfo": (schema.inject_network_info, None,
                          "there is no network service"),
    "resetNetwork": (schema.reset_network, None,
                     "there is no network service"),
}

_POWER = {
    "os-stop": ("stop", schema.stop, "os_compute_api:servers:stop"),
    "os-start": ("start", schema.start, "os_compute_api:servers:start"),
    "pause": ("pause", schema.pause, "os_compute_api:os-pause-server:pause"),
    "unpause": ("unpause", schema.unpause,
                "os_compute_api:os-pause-server:unpause"),
    "suspend": ("suspend", schema.suspend,
                "os_compute_api:os-suspend-server:suspend"),
    "resume": ("resume", schema.resume,
               "os_compute_api:os-suspend-server:resume"),
}



def _power_call(action: str):
    return lambda api, context, server_id, args: api.power_action(
        context, server_id, action)


_POWER_HANDLERS = {
    name: action_handlers.simple_action(action_schema, rule,
                                        _power_call(action))
    for name, (action, action_schema, rule) in _POWER.items()}


class ServerActionsController(Controller):
    app = make_app()
    collections = (("servers", "action"),)

    @property
    def compute_api(self):
        return self.services.compute_api

    def _handlers(self) -> dict[str, Callable]:
        handlers: dict[str, Callable] = {
            "reboot": self._reboot,
            "lock": self._lock,
            "unlock": self._unlock,
            "os-resetState": self._reset_state,
            "os-getConsoleOutput": self._console_output,
            "resize": self._resize,
            "confirmResize": self._confirm_resize,
            "revertResize": self._revert_resize,
            "migrate": self._migrate,
            "os-migrateLive": self._live_migrate,
            "evacuate": self._evacuate,
            **snapshot_actions.handlers(self),
        }
        handlers.update(lifecycle_actions.handlers(self))
        for name in remote_consoles.LEGACY_ACTIONS:
            handlers[name] = self._legacy_console
        handlers.update(action_handlers.bound(self, _POWER_HANDLERS))
        for name in UNSUPPORTED:
            handlers[name] = self._unsupported
        return handlers

    @route(app, "/servers/<server_id>/action", ["POST"])
    async def action(self, request, server_id):
        body = common.read_body(request)
        if not isinstance(body, dict) or not body:
            raise exception.Invalid("Malformed request body")
        handlers = self._handlers()
        name = next((key for key in body if key in handlers), None)
        if name is None:
            for key in body:
                handler = extensions.server_action(self.services, request,
                                                   key)
                if handler is not None:
                    context = common.get_context(request)
                    instance = await self.compute_api.get(context,
                                                          server_id)
                    return await handler(self.services, request, context,
                                         instance, body)
        if name is None:
            raise exception.InstanceUnknownAction(action=next(iter(body)))
        return await handlers[name](request, server_id, name, body)

    async def _instance(self, request, server_id, rule: str | None):
        context = common.get_context(request)
        instance = await self.compute_api.get(context, server_id)
        if rule is not None:
            self.services.policy.authorize(context, rule,
                                           instance_target(instance))
        return context, instance

    # --- handled here -------------------------------------------------

    async def _reboot(self, request, server_id, name, body):
        common.validate(body, schema.reboot)
        hard = body["reboot"]["type"].upper() == "HARD"
        context, _ = await self._instance(request, server_id,
                                          "os_compute_api:servers:reboot")
        await self.compute_api.reboot(context, server_id, hard)
        return json_response(request, None, 202)

    async def _lock(self, request, server_id, name, body):
        at_273 = common.is_at_least(request, "2.73")
        common.validate(body, schema.lock_v273 if at_273 else schema.lock)
        reason = None
        if at_273 and isinstance(body["lock"], dict):
            reason = body["lock"].get("locked_reason")
        context, _ = await self._instance(
            request, server_id, "os_compute_api:os-lock-server:lock")
        await self.compute_api.lock(context, server_id, reason)
        return json_response(request, None, 202)

    async def _unlock(self, request, server_id, name, body):
        common.validate(body, schema.unlock)
        context, instance = await self._instance(
            request, server_id, "os_compute_api:os-lock-server:unlock")
        if instance.locked and not self.compute_api.is_expected_locked_by(
                context, instance):
            self.services.policy.authorize(
                context, "os_compute_api:os-lock-server:unlock:"
                "unlock_override", instance_target(instance))
        await self.compute_api.unlock(context, server_id)
        return json_response(request, None, 202)

    async def _reset_state(self, request, server_id, name, body):
        common.validate(body, schema.reset_state)
        context, _ = await self._instance(
            request, server_id,
            "os_compute_api:os-admin-actions:reset_state")
        await self.compute_api.reset_state(
            context, server_id, body["os-resetState"]["state"])
        return json_response(request, None, 202)

    async def _console_output(self, request, server_id, name, body):
        common.validate(body, schema.get_console_output)
        length: Any = (body["os-getConsoleOutput"] or {}).get("length")
        if length is not None:
            length = int(length)
            if length == -1:
                length = None
        context, _ = await self._instance(
            request, server_id, "os_compute_api:os-console-output")
        output = await self.compute_api.get_console_output(
            context, server_id, length)
        return json_response(request, {"output": output})

    async def _resize(self, request, server_id, name, body):
        common.validate(body, schema.resize)
        context, _ = await self._instance(request, server_id,
                                          "os_compute_api:servers:resize")
        await self.compute_api.resize(context, server_id,
                                      str(body["resize"]["flavorRef"]))
        return json_response(request, None, 202)

    async def _confirm_resize(self, request, server_id, name, body):
        common.validate(body, schema.confirm_resize)
        context, _ = await self._instance(
            request, server_id, "os_compute_api:servers:confirm_resize")
        await self.compute_api.confirm_resize(context, server_id)
        return json_response(request, None, 204)

    async def _revert_resize(self, request, server_id, name, body):
        common.validate(body, schema.revert_resize)
        context, _ = await self._instance(
            request, server_id, "os_compute_api:servers:revert_resize")
        await self.compute_api.revert_resize(context, server_id)
        return json_response(request, None, 202)

    async def _migrate(self, request, server_id, name, body):
        common.validate(body, schema.migrate)
        host = None
        if common.is_at_least(request, "2.56"):
            host = (body["migrate"] or {}).get("host")
        elif body["migrate"]:
            raise exception.ValidationError(
                field="migrate", detail="Additional properties are not "
                                        "allowed before microversion 2.56")
        context, instance = await self._instance(
            request, server_id, "os_compute_api:os-migrate-server:migrate")
        if host:
            self.services.policy.authorize(
                context, "os_compute_api:os-migrate-server:migrate:host",
                instance_target(instance))
        await self.compute_api.resize(context, server_id, None, host=host)
        return json_response(request, None, 202)

    async def _live_migrate(self, request, server_id, name, body):
        common.validate(body, schema.live_migrate)
        args = body["os-migrateLive"]
        block = args.get("block_migration")
        if common.is_at_least(request, "2.25"):
            if "disk_over_commit" in args:
                raise exception.ValidationError(
                    field="os-migrateLive", detail="disk_over_commit is "
                    "not allowed from microversion 2.25")
            if not (isinstance(block, bool) or block == "auto"):
                raise exception.ValidationError(
                    field="block_migration",
                    detail="must be a boolean or 'auto'")
        else:
            if not isinstance(block, bool):
                raise exception.ValidationError(
                    field="block_migration",
                    detail="must be a boolean before microversion 2.25")
        force = bool(args.get("force", False))
        if "force" in args and not common.is_at_least(request, "2.30"):
            raise exception.ValidationError(
                field="force", detail="force is accepted from microversion "
                                      "2.30")
        if "force" in args and common.is_at_least(request, "2.68"):
            raise exception.ValidationError(
                field="force", detail="force is not accepted from "
                                      "microversion 2.68")
        context, _ = await self._instance(
            request, server_id,
            "os_compute_api:os-migrate-server:migrate_live")
        await self.compute_api.live_migrate(
            context, server_id, args.get("host"), block, force)
        return json_response(request, None, 202)

    async def _evacuate(self, request, server_id, name, body):
        """Nova's evacuate per microversion: ``onSharedStorage`` required
        until 2.13 (an ``adminPass`` with it is 400), the password
        answered until 2.13 (when ``[api] enable_instance_password``);
        ``force`` 2.29 to 2.67 (with a host only); from 2.95 the server
        ends stopped.  200, as Nova."""
        common.validate(body, schema.evacuate)
        args = body["evacuate"]
        at_214 = common.is_at_least(request, "2.14")
        if at_214:
            if "onSharedStorage" in args:
                raise exception.ValidationError(
                    field="evacuate", detail="onSharedStorage is not "
                    "allowed from microversion 2.14")
            shared = None
        else:
            if "onSharedStorage" not in args:
                raise exception.ValidationError(
                    field="onSharedStorage",
                    detail="'onSharedStorage' is a required property")
            shared = bool(args["onSharedStorage"])
        force = False
        if "force" in args:
            if not common.is_at_least(request, "2.29") or \
                    common.is_at_least(request, "2.68"):
                raise exception.ValidationError(
                    field="force", detail="force is accepted from "
                    "microversion 2.29 to 2.67")
            force = bool(args["force"])
        host = args.get("host")
        if force and not host:
            raise exception.Invalid(
                reason="Can't force to a non-provided destination")
        if not at_214 and shared:
            if "adminPass" in args:
                raise exception.Invalid(
                    reason="admin password can't be changed on existing "
                           "disk")
            password = None
        else:
            from twisted_compute.compute.api import generate_password
            password = args.get("adminPass") or generate_password()
        # Before 2.29 a given host bypassed the scheduler (Nova).
        if host and not common.is_at_least(request, "2.29"):
            force = True
        target_state = "stopped" if common.is_at_least(request, "2.95") \
            else None
        context, _ = await self._instance(request, server_id,
                                          "os_compute_api:os-evacuate")
        await self.compute_api.evacuate(
            context, server_id, host, password, force=force,
            on_shared_storage=shared, target_state=target_state)
        if not at_214 and password and \
                self.conf.api.enable_instance_password:
            return json_response(request, {"adminPass": password}, 200)
        return json_response(request, None, 200)

    async def _legacy_console(self, request, server_id, name, body):
        return await remote_consoles.legacy_action(
            self.services, request, server_id, name, body)

    async def _unsupported(self, request, server_id, name, body):
        action_schema, min_version, why = UNSUPPORTED[name]
        if min_version and not common.is_at_least(request, min_version):
            raise exception.NotFound(
                f"There is no such action: {name} before microversion "
                f"{min_version}")
        common.validate(body, action_schema)
        await self._instance(request, server_id, None)
        raise exception.ServerActionNotSupported(action=name, reason=why)
