"""Service bodies."""

from __future__ import annotations

import datetime

from twisted_compute.api.openstack import common
from twisted_compute.db import services as services_db
from twisted_compute.objects.service import Service


def status(service: Service) -> str:
    return "disabled" if service.disabled else "enabled"


def state(service: Service, now: datetime.datetime, down_time) -> str:
    return "up" if services_db.is_up(service, now, down_time) else "down"


def updated_at(service: Service) -> str | None:
    """When the service last changed or reported, whichever is later."""
    times = [t for t in (service.updated_at, service.last_seen_up) if t]
    return common.isotime_usec(max(times)) if times else None


def detail(request, service: Service, now: datetime.datetime,
           down_time) -> dict:
    body = {
        "id": service.uuid if common.is_at_least(request, "2.53")
        else service.id,
        "binary": service.binary,
        "host": service.host,
        "zone": service.availability_zone,
        "status": status(service),
        "state": state(service, now, down_time),
        "updated_at": updated_at(service),
        "disabled_reason": service.disabled_reason,
    }
    if common.is_at_least(request, "2.11"):
        body["forced_down"] = service.forced_down
    return body
