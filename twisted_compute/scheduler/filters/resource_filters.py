"""RamFilter, DiskFilter and CoreFilter: the flavor fits in what the host
has left, with its allocation ratios.

Nova checks these in placement; we check them here.  "Left" is the
node's total times its allocation ratio, minus what its last report says
is used, minus what this scheduler has claimed on it since.  Each filter
also sets the matching ``limits`` of a selection, which the compute
agent's claim checks against.
"""

from __future__ import annotations

from twisted_compute.scheduler.filters import BaseHostFilter


class RamFilter(BaseHostFilter):
    limit_key = "memory_mb"

    def host_passes(self, host, spec):
        return host.usable_ram_mb >= spec.memory_mb

    def filter_all(self, hosts, spec):
        wanted = spec.memory_mb
        return [h for h in hosts if h.usable_ram_mb >= wanted]

    def limit(self, host):
        return host.ram_limit_mb


class DiskFilter(BaseHostFilter):
    """Root plus ephemeral disk plus swap, in MiB."""

    limit_key = "disk_gb"

    def host_passes(self, host, spec):
        return host.usable_disk_mb >= spec.disk_mb

    def filter_all(self, hosts, spec):
        wanted = spec.disk_mb
        return [h for h in hosts if h.usable_disk_mb >= wanted]

    def limit(self, host):
        return host.disk_limit_mb / 1024


class CoreFilter(BaseHostFilter):
    """vCPUs.  As in Nova, a node that reports no vCPUs at all passes
    (its driver cannot count them)."""

    limit_key = "vcpu"

    def host_passes(self, host, spec):
        return not host.vcpus_total or host.usable_vcpus >= spec.vcpus

    def filter_all(self, hosts, spec):
        wanted = spec.vcpus
        return [h for h in hosts
                if h.usable_vcpus >= wanted or not h.vcpus_total]

    def limit(self, host):
        return host.vcpu_limit
