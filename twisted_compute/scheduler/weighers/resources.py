"""RAMWeigher, CPUWeigher and DiskWeigher: free resources, with
``[filter_scheduler] ram_weight_multiplier``, ``cpu_weight_multiplier``
and ``disk_weight_multiplier``."""

from __future__ import annotations

from twisted_compute.scheduler.weighers import BaseWeigher


class RAMWeigher(BaseWeigher):
    """Free RAM in MiB (physical, after claims)."""

    def multiplier(self):
        return self.conf.filter_scheduler.ram_weight_multiplier

    def weights(self, hosts, spec):
        return [h.free_ram_mb for h in hosts]


class CPUWeigher(BaseWeigher):
    """Free vCPUs (total times the allocation ratio, minus used)."""

    def multiplier(self):
        return self.conf.filter_scheduler.cpu_weight_multiplier

    def weights(self, hosts, spec):
        return [h.free_vcpus for h in hosts]


class DiskWeigher(BaseWeigher):
    """Free local disk in MiB (physical, after claims)."""

    def multiplier(self):
        return self.conf.filter_scheduler.disk_weight_multiplier

    def weights(self, hosts, spec):
        return [h.free_disk_mb for h in hosts]
