"""``[filter_scheduler]`` and ``[scheduler]``: which filters and weighers
pick hosts, and how the scheduler keeps its view of them.  (The
allocation ratios the scheduler also reads are the agents', in
:mod:`twisted_compute.conf.compute`.)"""

from __future__ import annotations

from twisted_compute.conf.opts import (
    OptGroups, float_opt, int_opt, list_opt)

DEFAULT_FILTERS = [
    "AvailabilityZoneFilter", "ComputeFilter", "RamFilter", "DiskFilter",
    "CoreFilter", "ImagePropertiesFilter", "ServerGroupAntiAffinityFilter",
    "ServerGroupAffinityFilter",
]

FILTER_SCHEDULER_OPTS = [
    float_opt("cpu_weight_multiplier", 1.0,
              "Multiplier of the free-vCPU weight (negative stacks "
              "instances)"),
    float_opt("disk_weight_multiplier", 1.0,
              "Multiplier of the free-disk weight (negative stacks "
              "instances)"),
    list_opt("enabled_filters", list(DEFAULT_FILTERS),
             "Host filters applied, in order"),
    int_opt("host_subset_size", 1,
            "The chosen host is picked at random among this many best "
            "weighed hosts", min=1),
    float_opt("ram_weight_multiplier", 1.0,
              "Multiplier of the free-RAM weight (negative stacks "
              "instances)"),
    float_opt("soft_affinity_weight_multiplier", 1.0,
              "Multiplier of the soft-affinity group weight", min=0.0),
    float_opt("soft_anti_affinity_weight_multiplier", 1.0,
              "Multiplier of the soft-anti-affinity group weight",
              min=0.0),
    list_opt("weight_classes", ["all"],
             "Host weighers applied (class names, or 'all')"),
]

SCHEDULER_OPTS = [
    float_opt("host_claim_timeout", 120.0,
              "Seconds after which a claim the scheduler made on a host is "
              "forgotten even if the host has not reported since",
              min=1.0),
    float_opt("host_state_refresh_interval", 5.0,
              "Seconds the scheduler reuses the compute nodes it read from "
              "the database before reading them again (0: every request)",
              min=0.0),
    # The conductor reads it too: it reschedules to the alternates.
    int_opt("max_attempts", 3,
            "Hosts tried for one build (the first and its alternates)",
            min=1),
]


def list_opts() -> OptGroups:
    return [("filter_scheduler", FILTER_SCHEDULER_OPTS),
            ("scheduler", SCHEDULER_OPTS)]
