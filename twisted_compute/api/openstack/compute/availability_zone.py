"""``/os-availability-zone``: the zones of the services, and (``/detail``,
admin) the hosts and services in each.

A compute host's zone is the ``availability_zone`` metadata of its
aggregates, else ``[DEFAULT] default_availability_zone``; other services
are in ``internal_service_availability_zone``.  A zone is available when
one of its services is enabled; with no services there are no zones (as
in Nova).
"""

from __future__ import annotations

from twisted_compute.api.openstack import common
from twisted_compute.api.openstack.common import (
    Controller, json_response, make_app, route)
from twisted_compute.api.openstack.compute.views import \
    services as service_views
from twisted_compute.db import models
from twisted_compute.db import services as services_db

_POLICY = "os_compute_api:os-availability-zone:"


def _zones(services):
    """(available zones in order, unavailable zones in order)."""
    available: list[str] = []
    for service in services:
        if not service.disabled and \
                service.availability_zone not in available:
            available.append(service.availability_zone)
    unavailable: list[str] = []
    for service in services:
        zone = service.availability_zone
        if service.disabled and zone not in available and \
                zone not in unavailable:
            unavailable.append(zone)
    return sorted(available), sorted(unavailable)


class AvailabilityZoneController(Controller):
    app = make_app()
    collections = (("os-availability-zone",),)

    @route(app, "/os-availability-zone", ["GET"])
    async def index(self, request):
        self.services.policy.authorize(common.get_context(request),
                                       _POLICY + "list")
        services = await self.db.services.get_all(self.conf)
        available, unavailable = _zones(services)
        internal = self.conf.internal_service_availability_zone
        info = [{"zoneName": zone, "zoneState": {"available": True},
                 "hosts": None} for zone in available if zone != internal]
        info += [{"zoneName": zone, "zoneState": {"available": False},
                  "hosts": None} for zone in unavailable
                 if zone != internal]
        return json_response(request, {"availabilityZoneInfo": info})

    @route(app, "/os-availability-zone/detail", ["GET"])
    async def detail(self, request):
        self.services.policy.authorize(common.get_context(request),
                                       _POLICY + "detail")
        services = await self.db.services.get_all(self.conf)
        available, unavailable = _zones(services)
        now = models.utcnow()
        info = []
        for zone in available:
            hosts: dict[str, dict] = {}
            for service in services:
                if service.disabled or service.availability_zone != zone:
                    continue
                hosts.setdefault(service.host, {})[service.binary] = {
                    "available": services_db.is_up(service, now,
                                          self.conf.service_down_time),
                    "active": not service.disabled,
                    "updated_at": service_views.updated_at(service),
                }
            info.append({"zoneName": zone, "zoneState": {"available": True},
                         "hosts": hosts})
        info += [{"zoneName": zone, "zoneState": {"available": False},
                  "hosts": None} for zone in unavailable]
        return json_response(request, {"availabilityZoneInfo": info})
