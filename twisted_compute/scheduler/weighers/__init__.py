"""Host weighers: rank the hosts that passed the filters.

As in Nova, each weigher gives every host a raw weight; the raw weights
are normalized to [0, 1] across the hosts (the smallest becomes 0, the
largest 1; all 0 when they are equal), multiplied by the weigher's
multiplier, and summed.  The highest total wins.  A positive RAM, CPU or
disk multiplier spreads instances (prefers the emptiest host), a negative
one stacks them.
"""

from __future__ import annotations

from typing import Sequence

from twisted_compute.scheduler.host_state import HostState, RequestSpec


class BaseWeigher:
    def __init__(self, conf):
        self.conf = conf

    @property
    def name(self) -> str:
        return type(self).__name__

    def multiplier(self) -> float:
        return 1.0

    def applies(self, spec: RequestSpec) -> bool:
        return True

    def weights(self, hosts: Sequence[HostState], spec: RequestSpec
                ) -> list[float]:
        """Raw weights of ``hosts``, in order."""
        raise NotImplementedError


def normalize(values: Sequence[float]) -> list[float]:
    """``values`` scaled to [0, 1]; all 0 when they are all equal."""
    if not values:
        return []
    low = min(values)
    high = max(values)
    if high == low:
        return [0.0] * len(values)
    span = float(high - low)
    return [(v - low) / span for v in values]


def weigh(hosts: Sequence[HostState], spec: RequestSpec,
          weighers: Sequence[BaseWeigher]) -> list[HostState]:
    """``hosts`` sorted best first (a stable sort: equal totals keep the
    filters' order)."""
    if len(hosts) < 2:
        return list(hosts)
    totals = [0.0] * len(hosts)
    for weigher in weighers:
        factor = weigher.multiplier()
        if not factor or not weigher.applies(spec):
            continue
        raw = weigher.weights(hosts, spec)
        low = min(raw)
        high = max(raw)
        if high == low:
            continue
        scale = factor / float(high - low)
        totals = [t + (w - low) * scale for t, w in zip(totals, raw)]
    order = sorted(range(len(hosts)), key=totals.__getitem__, reverse=True)
    return [hosts[i] for i in order]


def all_weighers() -> dict[str, type[BaseWeigher]]:
    from twisted_compute.scheduler.weighers import affinity, resources
    classes = [resources.RAMWeigher, resources.CPUWeigher,
               resources.DiskWeigher,
               affinity.ServerGroupSoftAffinityWeigher,
               affinity.ServerGroupSoftAntiAffinityWeigher]
    return {cls.__name__: cls for cls in classes}


def load_weighers(conf, names: Sequence[str]) -> list[BaseWeigher]:
    """Instances of the named weighers (``all`` for every one);
    ValueError naming the option for an unknown name."""
    known = all_weighers()
    if list(names) in (["all"], []):
        names = list(known)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(
            f"[filter_scheduler] weight_classes names unknown weigher(s) "
            f"{', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return [known[name](conf) for name in names]
