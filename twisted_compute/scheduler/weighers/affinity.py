"""ServerGroupSoftAffinityWeigher and ServerGroupSoftAntiAffinityWeigher:
the ``soft-affinity`` / ``soft-anti-affinity`` group policies, which
prefer (rather than require) hosts with more (fewer) members."""

from __future__ import annotations

from twisted_compute.scheduler.weighers import BaseWeigher


class ServerGroupSoftAffinityWeigher(BaseWeigher):
    def multiplier(self):
        return self.conf.filter_scheduler.soft_affinity_weight_multiplier

    def applies(self, spec):
        return spec.group_policy == "soft-affinity" and bool(
            spec.group_hosts)

    def weights(self, hosts, spec):
        counts = spec.group_hosts
        return [counts.get(h.host, 0) for h in hosts]


class ServerGroupSoftAntiAffinityWeigher(BaseWeigher):
    def multiplier(self):
        return self.conf.filter_scheduler.soft_anti_affinity_weight_multiplier

    def applies(self, spec):
        return spec.group_policy == "soft-anti-affinity" and bool(
            spec.group_hosts)

    def weights(self, hosts, spec):
        counts = spec.group_hosts
        return [-counts.get(h.host, 0) for h in hosts]
