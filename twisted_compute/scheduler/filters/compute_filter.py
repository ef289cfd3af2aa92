"""ComputeFilter: the host's compute service is up, enabled and not
forced down."""

from __future__ import annotations

from twisted_compute.scheduler.filters import BaseHostFilter
from twisted_compute.scheduler.host_state import epoch


class ComputeFilter(BaseHostFilter):
    """Keeps hosts whose compute service has reported within
    ``service_down_time`` (the same :func:`~twisted_compute.db.services.is_up`
    the os-services API uses) and is neither disabled nor forced down."""

    def host_passes(self, host, spec):
        service = host.service
        if service is None or service.disabled:
            return False
        return host.is_up(spec.now, self.conf.service_down_time)

    def filter_all(self, hosts, spec):
        # The same test as is_up, on the epoch seconds each host state
        # keeps (1,000 hosts per request: no datetime arithmetic here).
        now = epoch(spec.now)
        down_time = self.conf.service_down_time
        return [h for h in hosts
                if h.seen_at is not None and not h.service.disabled
                and abs(now - h.seen_at) <= down_time]
