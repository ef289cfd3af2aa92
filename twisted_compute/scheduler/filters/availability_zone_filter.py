"""AvailabilityZoneFilter: the host is in the requested zone."""

from __future__ import annotations

from twisted_compute.scheduler.filters import BaseHostFilter


class AvailabilityZoneFilter(BaseHostFilter):
    """Keeps hosts in the request's ``availability_zone``.  A host's
    zones are the ``availability_zone`` metadata of its aggregates, or
    ``default_availability_zone`` when it has none."""

    def applies(self, spec):
        return bool(spec.availability_zone)

    def host_passes(self, host, spec):
        return spec.availability_zone in host.zones

    def filter_all(self, hosts, spec):
        zone = spec.availability_zone
        return [h for h in hosts if zone in h.zones]
