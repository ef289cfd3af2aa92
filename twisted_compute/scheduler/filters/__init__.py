"""Host filters: each keeps the hosts that can take one instance of the
request.

Names and meanings are Nova's (``[filter_scheduler] enabled_filters``).
A filter works on the whole list at once (:meth:`BaseHostFilter.filter_all`)
so the common ones are a single list comprehension over plain attributes:
scheduling 1,000 hosts must take milliseconds, not tens of them.
"""

from __future__ import annotations

from typing import Any, Sequence

from twisted_compute.scheduler.host_state import HostState, RequestSpec


class BaseHostFilter:
    """A filter; subclasses define :meth:`host_passes` and may override
    :meth:`filter_all` with a faster loop."""

    #: Key this filter sets in a selection's ``limits`` (resource filters).
    limit_key: str | None = None
    #: Whether Nova's rebuild check (a new image on the same host) runs
    #: this filter: only those that look at the image do.
    run_on_rebuild: bool = False

    def __init__(self, conf):
        self.conf = conf

    @property
    def name(self) -> str:
        return type(self).__name__

    def applies(self, spec: RequestSpec) -> bool:
        """Whether the filter has anything to say about ``spec`` (when
        not, it is skipped)."""
        return True

    def host_passes(self, host: HostState, spec: RequestSpec) -> bool:
        raise NotImplementedError

    def filter_all(self, hosts: Sequence[HostState], spec: RequestSpec
                   ) -> list[HostState]:
        passes = self.host_passes
        return [h for h in hosts if passes(h, spec)]

    def limit(self, host: HostState) -> Any:
        """The value of :attr:`limit_key` for ``host``."""
        return None


def all_filters() -> dict[str, type[BaseHostFilter]]:
    """Every filter class by name."""
    from twisted_compute.scheduler.filters import (
        affinity_filter, availability_zone_filter, compute_filter,
        image_props_filter, resource_filters)
    classes = [
        availability_zone_filter.AvailabilityZoneFilter,
        compute_filter.ComputeFilter,
        resource_filters.RamFilter,
        resource_filters.DiskFilter,
        resource_filters.CoreFilter,
        image_props_filter.ImagePropertiesFilter,
        affinity_filter.ServerGroupAntiAffinityFilter,
        affinity_filter.ServerGroupAffinityFilter,
    ]
    found = {cls.__name__: cls for cls in classes}
    # Another name for the vCPU filter.
    found["VCPUFilter"] = resource_filters.CoreFilter
    return found


def load_filters(conf, names: Sequence[str]) -> list[BaseHostFilter]:
    """Instances of the named filters, in order; ValueError naming the
    option for an unknown name."""
    known = all_filters()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(
            f"[filter_scheduler] enabled_filters names unknown filter(s) "
            f"{', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return [known[name](conf) for name in names]
