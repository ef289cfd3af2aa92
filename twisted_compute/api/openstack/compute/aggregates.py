"""``/os-aggregates``: host aggregates (admin only): list, create, show,
update, delete, and the ``add_host``, ``remove_host`` and
``set_metadata`` actions.  From 2.41 an aggregate shows its ``uuid``."""

from __future__ import annotations

from twisted_compute import exception
from twisted_compute.api.openstack import common
from twisted_compute.api.openstack.common import (
    Controller, json_response, make_app, route)
from twisted_compute.api.openstack.compute.schemas import aggregates as schema
from twisted_compute.api.openstack.compute.views import aggregates as views
from twisted_compute.log import Logger
from twisted_compute.objects.aggregate import AZ_KEY

_POLICY = "os_compute_api:os-aggregates:"


def _aggregate_id(text: str) -> int:
    """The integer id a path names (400 otherwise, as Nova)."""
    try:
        number = int(text)
    except ValueError:
        raise exception.InvalidInput(
            reason="id must be an integer") from None
    if not 0 <= number <= common.MAX_INT:
        # No aggregate has such an id (nor could the database hold it).
        raise exception.AggregateNotFound(aggregate_id=text)
    return number


class AggregatesController(Controller):
    log = Logger()
    app = make_app()
    collections = (("os-aggregates",),)

    def _authorize(self, request, action: str) -> None:
        self.services.policy.authorize(common.get_context(request),
                                       _POLICY + action, target={})

    def _one(self, request, aggregate, status: int = 200):
        return json_response(request,
                             {"aggregate": views.show(request, aggregate)},
                             status)

    @route(app, "/os-aggregates", ["GET"])
    async def index(self, request):
        self._authorize(request, "index")
        aggregates = await self.db.aggregates.get_all()
        return json_response(request, {"aggregates": [
            views.show(request, a) for a in aggregates]})

    @route(app, "/os-aggregates", ["POST"])
    async def create(self, request):
        self._authorize(request, "create")
        body = common.read_body(request)
        common.validate(body, schema.create)
        spec = body["aggregate"]
        aggregate = await self.db.aggregates.create(
            spec["name"], spec.get("availability_zone"))
        # Nova's create answer has neither hosts nor metadata.
        return json_response(request, {"aggregate": views.show(
            request, aggregate, members=False)})

    @route(app, "/os-aggregates/<aggregate_id>", ["GET"])
    async def show(self, request, aggregate_id):
        self._authorize(request, "show")
        aggregate = await self.db.aggregates.get(_aggregate_id(aggregate_id))
        return self._one(request, aggregate)

    @route(app, "/os-aggregates/<aggregate_id>", ["PUT"])
    async def update(self, request, aggregate_id):
        self._authorize(request, "update")
        number = _aggregate_id(aggregate_id)
        body = common.read_body(request)
        common.validate(body, schema.update)
        spec = body["aggregate"]
        name = spec.get("name")
        if name is not None:
            name = name.strip()
        zone = ({AZ_KEY: spec["availability_zone"]}
                if "availability_zone" in spec else {})
        aggregate = await self.db.aggregates.update(number, name, zone)
        return self._one(request, aggregate)

    @route(app, "/os-aggregates/<aggregate_id>", ["DELETE"])
    async def delete(self, request, aggregate_id):
        self._authorize(request, "delete")
        await self.db.aggregates.destroy(_aggregate_id(aggregate_id))
        return json_response(request, None, 200)

    @route(app, "/os-aggregates/<aggregate_id>/images", ["POST"])
    async def images(self, request, aggregate_id):
        """2.81: pre-cache images on the aggregate's hosts (a cast to each
        host's agent, which fetches them into its image cache); 202."""
        if not common.is_at_least(request, "2.81"):
            raise exception.NotFound("The resource could not be found.")
        context = common.get_context(request)
        self.services.policy.authorize(context, "compute:aggregates:images",
                                       target={})
        number = _aggregate_id(aggregate_id)
        body = common.read_body(request)
        common.validate(body, schema.images)
        image_ids = [item["id"] for item in body["cache"]]
        if len(set(image_ids)) != len(image_ids):
            raise exception.Invalid(reason="Duplicate images in request")
        aggregate = await self.db.aggregates.get(number)
        rpcapi = self.services.compute_api.compute_rpcapi
        if rpcapi is None:
            raise exception.ComputeAgentUnavailable(action="cache images")
        for host in aggregate.hosts:
            try:
                await rpcapi.cache_images(context, host, image_ids)
            except Exception as exc:  # noqa: BLE001 - one host's bus
                self.log.warn("image pre-cache request for {host} not "
                              "sent: {error}", host=host, error=exc)
        return json_response(request, None, 202)

    @route(app, "/os-aggregates/<aggregate_id>/action", ["POST"])
    async def action(self, request, aggregate_id):
        body = common.read_body(request)
        if not isinstance(body, dict) or not body:
            raise exception.Invalid(reason="Malformed request body")
        handlers = {"add_host": self._add_host,
                    "remove_host": self._remove_host,
                    "set_metadata": self._set_metadata}
        name = next((key for key in body if key in handlers), None)
        if name is None:
            raise exception.InstanceUnknownAction(action=next(iter(body)))
        self._authorize(request, name)
        number = _aggregate_id(aggregate_id)
        aggregate = await handlers[name](number, body)
        return self._one(request, aggregate)

    async def _add_host(self, aggregate_id: int, body):
        common.validate(body, schema.add_host)
        return await self.db.aggregates.add_host(aggregate_id,
                                                 body["add_host"]["host"])

    async def _remove_host(self, aggregate_id: int, body):
        common.validate(body, schema.remove_host)
        host = body["remove_host"]["host"]
        try:
            return await self.db.aggregates.remove_host(aggregate_id, host)
        except exception.NotFound:
            # Nova names neither the missing host nor membership apart.
            raise exception.AggregateHostNotFound(
                aggregate_id=aggregate_id, host=host) from None

    async def _set_metadata(self, aggregate_id: int, body):
        common.validate(body, schema.set_metadata)
        return await self.db.aggregates.set_metadata(
            aggregate_id, body["set_metadata"]["metadata"])
