"""``/flavors/{flavor_id}/os-extra_specs``: list, create (merge), show,
update and delete one key."""

from __future__ import annotations

from twisted_compute import exception
from twisted_compute.api.openstack import common
from twisted_compute.api.openstack.common import (
    Controller, json_response, make_app, route)
from twisted_compute.api.openstack.compute import extra_spec_validators
from twisted_compute.api.openstack.compute.schemas import \
    flavor_extra_specs as schema

_POLICY = "os_compute_api:os-flavor-extra-specs:"


def _as_text(specs: dict) -> dict[str, str]:
    """Numbers (and booleans) are accepted as values and stored as text."""
    return {key: value if isinstance(value, str) else
            str(value) for key, value in specs.items()}


class FlavorExtraSpecsController(Controller):
    app = make_app()
    collections = (("flavors", "os-extra_specs"),)

    def _authorize(self, request, action):
        self.services.policy.authorize(common.get_context(request),
                                       _POLICY + action)

    @route(app, "/flavors/<flavor_id>/os-extra_specs", ["GET"])
    async def index(self, request, flavor_id):
        self._authorize(request, "index")
        specs = await self.db.flavors.get_specs(flavor_id)
        return json_response(request, {"extra_specs": specs})

    @route(app, "/flavors/<flavor_id>/os-extra_specs", ["POST"])
    async def create(self, request, flavor_id):
        self._authorize(request, "create")
        body = common.read_body(request)
        common.validate(body, schema.create)
        specs = _as_text(body["extra_specs"])
        if common.is_at_least(request, "2.86"):
            extra_spec_validators.validate_all(specs)
        await self.db.flavors.update_specs(flavor_id, specs)
        return json_response(request, {"extra_specs": specs})

    @route(app, "/flavors/<flavor_id>/os-extra_specs/<key>", ["GET"])
    async def show(self, request, flavor_id, key):
        self._authorize(request, "show")
        value = await self.db.flavors.get_spec(flavor_id, key)
        return json_response(request, {key: value})

    @route(app, "/flavors/<flavor_id>/os-extra_specs/<key>", ["PUT"])
    async def update(self, request, flavor_id, key):
        self._authorize(request, "update")
        body = common.read_body(request)
        common.validate(body, schema.update)
        if key not in body:
            raise exception.InvalidInput(
                reason="Request body and URI mismatch")
        specs = _as_text(body)
        if common.is_at_least(request, "2.86"):
            extra_spec_validators.validate_all(specs)
        await self.db.flavors.update_specs(flavor_id, specs)
        return json_response(request, specs)

    @route(app, "/flavors/<flavor_id>/os-extra_specs/<key>", ["DELETE"])
    async def delete(self, request, flavor_id, key):
        self._authorize(request, "delete")
        await self.db.flavors.delete_spec(flavor_id, key)
        return json_response(request, None, 200)
