"""``/os-quota-class-sets/{id}`` (admin): show and update a quota
class.  Every class can be shown and stored, but only ``default`` means
anything (as Nova): its limits are every project's defaults, under the
project's own overrides, in the quota checks, ``os-quota-sets/{p}/
defaults`` and ``/limits``."""

from __future__ import annotations

from twisted_compute import exception
from twisted_compute.api.openstack import common
from twisted_compute.api.openstack.common import (
    Controller, json_response, make_app, route)
from twisted_compute.api.openstack.compute.schemas import \
    quota_classes as schema
from twisted_compute.api.openstack.compute.views import \
    quota_classes as views
from twisted_compute.api.openstack.compute.views.quota_sets import ENFORCED

_POLICY = "os_compute_api:os-quota-class-sets:"


class QuotaClassSetsController(Controller):
    app = make_app()
    collections = (("os-quota-class-sets",),)

    def _authorize(self, request, action, class_name):
        context = common.get_context(request)
        self.services.policy.authorize(context, _POLICY + action,
                                       target={"quota_class": class_name})

    @route(app, "/os-quota-class-sets/<class_name>", ["GET"])
    async def show(self, request, class_name):
        self._authorize(request, "show", class_name)
        limits = await self.db.quotas.get_class_limits(self.conf,
                                                       class_name)
        return json_response(request, {"quota_class_set": views.body(
            request, limits, class_name)})

    @route(app, "/os-quota-class-sets/<class_name>", ["PUT"])
    async def update(self, request, class_name):
        self._authorize(request, "update", class_name)
        if not 1 <= len(class_name) <= 255:
            raise exception.Invalid(
                reason="quota_class_name has to be between 1 and 255 "
                       "characters long")
        body = common.read_body(request)
        common.validate(body, common.versioned(request, [
            ("2.57", None, schema.update_v257),
            ("2.50", "2.56", schema.update_v250),
            (None, "2.49", schema.update)]))
        values = {ENFORCED[name]: common.bounded_int(
                      value, f"quota_class_set/{name}", -1)
                  for name, value in body["quota_class_set"].items()
                  if name in ENFORCED}  # network quotas: not ours
        limits = await self.db.quotas.set_class_limits(self.conf,
                                                       class_name, values)
        return json_response(request, {"quota_class_set": views.body(
            request, limits)})
