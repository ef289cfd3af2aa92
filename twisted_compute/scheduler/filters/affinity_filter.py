"""ServerGroupAffinityFilter and ServerGroupAntiAffinityFilter.

The request's group carries the hosts its members already run on (read
from the database at the start of the call) and the ones this call has
placed so far, with the number of members on each.
"""

from __future__ import annotations

from twisted_compute.scheduler.filters import BaseHostFilter


class ServerGroupAffinityFilter(BaseHostFilter):
    """``affinity``: every member on the same host.  The first member may
    go anywhere."""

    def applies(self, spec):
        return spec.group_policy == "affinity" and bool(spec.group_hosts)

    def host_passes(self, host, spec):
        return host.host in spec.group_hosts

    def filter_all(self, hosts, spec):
        wanted = spec.group_hosts
        return [h for h in hosts if h.host in wanted]


class ServerGroupAntiAffinityFilter(BaseHostFilter):
    """``anti-affinity``: fewer than ``max_server_per_host`` (rule,
    default 1) members on the host."""

    def applies(self, spec):
        return spec.group_policy == "anti-affinity" and bool(
            spec.group_hosts)

    @staticmethod
    def _max(spec) -> int:
        try:
            return max(1, int(spec.group_rules.get(
                "max_server_per_host", 1)))
        except (TypeError, ValueError):
            return 1

    def host_passes(self, host, spec):
        return spec.group_hosts.get(host.host, 0) < self._max(spec)

    def filter_all(self, hosts, spec):
        most = self._max(spec)
        counts = spec.group_hosts
        return [h for h in hosts if counts.get(h.host, 0) < most]
