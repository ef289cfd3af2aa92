"""The shape most server actions share, once: validate the body against
the action's schema (400), look the server up (404: another project's
too), check the policy rule on it (403), hand the work to the compute
API layer (which checks lock and state: 409) and answer with no body.

:func:`simple_action` makes such a handler; the action tables of
:mod:`.server_actions`, :mod:`.lifecycle_actions` and
:mod:`.snapshot_actions` use it for their plain actions."""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from twisted_compute import exception
from twisted_compute.api.openstack import common
from twisted_compute.api.openstack.common import json_response

#: ``call(compute_api, context, server_id, args)``: ``args`` is the
#: action's own value in the body (``body[name]``).
ActionCall = Callable[[Any, Any, str, Any], Awaitable[Any]]


def simple_action(action_schema: dict, rule: str, call: ActionCall,
                  code: int = 202, min_version: str | None = None):
    """A handler ``(controller, request, server_id, name, body)`` for an
    action answered ``code`` with no body; before ``min_version`` the
    action does not exist (404, as Nova)."""

    async def handler(controller, request, server_id: str, name: str,
                      body: dict):
        if min_version and not common.is_at_least(request, min_version):
            raise exception.NotFound(
                f"There is no such action: {name} before microversion "
                f"{min_version}")
        common.validate(body, action_schema)
        context, _ = await controller._instance(request, server_id, rule)
        await call(controller.compute_api, context, server_id, body[name])
        return json_response(request, None, code)

    return handler


def bound(controller, handlers: dict[str, Callable]) -> dict[str, Callable]:
    """``handlers`` (name -> handler taking the controller first) bound to
    ``controller``: what the action dispatch calls."""
    def bind(handler):
        async def call(request, server_id, name, body):
            return await handler(controller, request, server_id, name, body)
        return call
    return {name: bind(handler) for name, handler in handlers.items()}
