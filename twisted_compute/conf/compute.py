"""``[DEFAULT]`` options of the compute agents: allocation ratios (which
the scheduler reads too), the agents' periodic tasks, the image cache's
ageing, and how many fake agents ``compute-all`` runs."""

from __future__ import annotations

from twisted_compute.conf.opts import (
    OptGroups, bool_opt, float_opt, int_opt)

ALLOCATION_RATIO_OPTS = [
    float_opt("cpu_allocation_ratio", 16.0,
              "Virtual CPUs a compute host offers per physical CPU",
              min=0.0),
    float_opt("ram_allocation_ratio", 1.5,
              "MiB of RAM a compute host offers per physical MiB", min=0.0),
    float_opt("disk_allocation_ratio", 1.0,
              "GiB of disk a compute host offers per physical GiB",
              min=0.0),
]

AGENT_OPTS = [
    int_opt("update_resources_interval", 60,
            "Seconds between an agent's resource reports", min=1),
    int_opt("sync_power_state_interval", 600,
            "Seconds between an agent's power state syncs", min=1),
    int_opt("image_cache_manager_interval", 2400,
            "Seconds between runs of the image cache manager (ageing out "
            "unused cached images); 0 disables it", min=0),
    int_opt("remove_unused_original_minimum_age_seconds", 86400,
            "Seconds a cached image must have been unused before it is "
            "removed", min=0),
    int_opt("fake_agents", 1,
            "compute-all and compute-agent with compute_driver = fake: "
            "how many fake compute agents to run in the process (hosts "
            "<host>-fake-1 ...; 1 means one agent named <host>); several "
            "send their heartbeats and resource reports together, one "
            "RPC per interval", min=0, max=5000),
    int_opt("vif_plugging_timeout", 0,
            "Seconds a build waits for the network-vif-plugged event of "
            "its guest (POST /os-server-external-events, sent by a "
            "network service) after the driver created it; 0: do not "
            "wait (no network service here sends them)", min=0),
    bool_opt("vif_plugging_is_fatal", True,
             "Whether a build fails when network-vif-plugged does not come "
             "in time or comes with status failed (else it goes on)"),
]


#: A server's life on its host: deferred delete, and how long an agent
#: gives a lifecycle action (rebuild, rescue, ...) before it fails it.
LIFECYCLE_OPTS = [
    int_opt("reclaim_instance_interval", 0,
            "Seconds a deleted server stays SOFT_DELETED (powered off, "
            "restorable with the restore action) before a periodic task "
            "of its agent deletes it for good; 0: servers are deleted at "
            "once (restore then has nothing to restore: 409)", min=0),
    int_opt("instance_action_timeout", 600,
            "Seconds an agent gives one lifecycle action of a guest "
            "(rebuild, rescue, unrescue, soft delete, restore, password) "
            "before it fails it: the server gets a fault and leaves its "
            "task state", min=1),
]


def list_opts() -> OptGroups:
    return [("DEFAULT", ALLOCATION_RATIO_OPTS + AGENT_OPTS +
             LIFECYCLE_OPTS)]
