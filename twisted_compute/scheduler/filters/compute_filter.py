"""ComputeFilter: the host's compute service is up, enabled and not
forced down."""

from __future__ import annotations

from twisted_compute.scheduler.filters import BaseHostFilter


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
        now = spec.now
        down_time = self.conf.service_down_time
        return [h for h in hosts
                if h.service is not None and not h.service.disabled
                and h.is_up(now, down_time)]
