"""``/os-services``: list, enable/disable/force down, delete.  Before 2.53
services are named by database id and changed through
``PUT /os-services/{action}`` with host and binary; from 2.53 by uuid
through ``PUT /os-services/{uuid}``."""

from __future__ import annotations

from twisted_compute import exception
from twisted_compute.api.openstack import common
from twisted_compute.api.openstack.common import (
    Controller, json_response, make_app, route)
from twisted_compute.api.openstack.compute.schemas import \
    query as query_schema
from twisted_compute.api.openstack.compute.schemas import services as schema
from twisted_compute.api.openstack.compute.schemas import to_bool
from twisted_compute.api.openstack.compute.views import services as views
from twisted_compute.db import models
from twisted_compute.db import services as services_db

_POLICY = "os_compute_api:os-services:"


class ServicesController(Controller):
    app = make_app()
    collections = (("os-services",),)

    def _authorize(self, request, action):
        self.services.policy.authorize(common.get_context(request),
                                       _POLICY + action)

    def _notify(self, request, service) -> None:
        """Nova's ``service.update`` for the changed ``service``."""
        notifier = getattr(self.services, "notifier", None)
        if notifier is not None and service is not None:
            notifier.service_update(common.get_context(request),
                                    service.to_dict())

    def _detail(self, request, service):
        return views.detail(request, service, models.utcnow(),
                            self.conf.service_down_time)

    @route(app, "/os-services", ["GET"], query=query_schema.services)
    async def index(self, request):
        self._authorize(request, "list")
        services = await self.db.services.get_all(
            self.conf, host=common.query_one(request, "host"),
            binary=common.query_one(request, "binary"))
        return json_response(request, {"services": [
            self._detail(request, s) for s in services]})

    async def _lookup(self, request, service_id: str):
        """The service a path names: a uuid from 2.53, an id before."""
        if common.is_at_least(request, "2.53"):
            if not common.is_uuid_like(service_id):
                raise exception.InvalidInput(
                    reason=f"Invalid uuid {service_id}")
            return await self.db.services.get(self.conf, uuid=service_id)
        try:
            number = int(service_id)
        except ValueError:
            raise exception.InvalidInput(
                reason=f"Invalid service id {service_id}") from None
        if not 0 <= number <= common.MAX_INT:
            raise exception.ServiceNotFound(service_id=service_id)
        return await self.db.services.get(self.conf, service_id=number)

    @route(app, "/os-services/<service_id>", ["PUT"])
    async def update(self, request, service_id):
        self._authorize(request, "update")
        body = common.read_body(request)
        if common.is_at_least(request, "2.53"):
            return await self._update_v253(request, service_id, body)
        return await self._update_action(request, service_id, body)

    async def _update_action(self, request, action, body):
        actions = {"enable", "disable", "disable-log-reason"}
        if common.is_at_least(request, "2.11"):
            actions.add("force-down")
        if action not in actions:
            raise exception.NotFound("Unknown action")
        common.validate(body, schema.force_down if action == "force-down"
                        else schema.service_update)
        service = await self.db.services.get_by_host_binary(
            self.conf, body["host"], body["binary"])
        result = {"host": body["host"], "binary": body["binary"]}
        if action == "force-down":
            forced = to_bool(body["forced_down"])
            self._notify(request, await self.db.services.update(
                self.conf, service.id, {"forced_down": forced}))
            result["forced_down"] = forced
        elif action == "enable":
            self._notify(request, await self.db.services.update(
                self.conf, service.id,
                {"disabled": False, "disabled_reason": None}))
            result["status"] = "enabled"
        else:
            reason = body.get("disabled_reason")
            if action == "disable-log-reason" and not reason:
                raise exception.InvalidInput(
                    reason="Missing disabled reason field")
            if action == "disable":
                reason = None
            self._notify(request, await self.db.services.update(
                self.conf, service.id,
                {"disabled": True, "disabled_reason": reason}))
            result["status"] = "disabled"
            if action == "disable-log-reason":
                result["disabled_reason"] = reason
        return json_response(request, {"service": result})

    async def _update_v253(self, request, service_id, body):
        common.validate(body, schema.update_v253)
        service = await self._lookup(request, service_id)
        values = {}
        if "status" in body:
            values["disabled"] = body["status"] == "disabled"
            if values["disabled"]:
                values["disabled_reason"] = body.get("disabled_reason")
            elif "disabled_reason" in body:
                raise exception.InvalidInput(reason=(
                    "Specifying 'disabled_reason' with status 'enabled' "
                    "is invalid."))
            else:
                values["disabled_reason"] = None
        elif "disabled_reason" in body:
            raise exception.InvalidInput(reason=(
                "Invalid attribute in the request: 'disabled_reason' can "
                "only be given with status 'disabled'."))
        if "forced_down" in body:
            values["forced_down"] = to_bool(body["forced_down"])
        if not values:
            raise exception.InvalidInput(reason=(
                "No updates were requested. Fields 'status' or "
                "'forced_down' should be specified."))
        if service.binary != services_db.COMPUTE_BINARY:
            raise exception.InvalidInput(reason=(
                f"Updating a {service.binary} service is not supported. "
                f"Only {services_db.COMPUTE_BINARY} services can be updated."))
        service = await self.db.services.update(self.conf, service.id,
                                                values)
        self._notify(request, service)
        return json_response(request,
                             {"service": self._detail(request, service)})

    @route(app, "/os-services/<service_id>", ["DELETE"])
    async def delete(self, request, service_id):
        self._authorize(request, "delete")
        service = await self._lookup(request, service_id)
        await self.db.services.destroy(service.id)
        return json_response(request, None, 204)
