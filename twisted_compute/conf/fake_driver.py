"""``[fake_driver]``: the fake hypervisor's capacity, spawn delay and
injected failures (:mod:`twisted_compute.virt.fake`)."""

from __future__ import annotations

from twisted_compute.conf.opts import (OptGroups, bool_opt, float_opt,
                                       int_opt, list_opt)

FAKE_DRIVER_OPTS = [
    bool_opt("fail_spawn", False,
             "Every fake spawn fails (to test reschedules)"),
    float_opt("fail_spawn_ratio", 0.0,
              "Fraction of fake spawns that fail at random (0 to 1)",
              min=0, max=1),
    int_opt("local_gb", 2048,
            "GiB of local disk of each fake hypervisor host", min=1),
    int_opt("memory_mb", 131072,
            "MiB of RAM of each fake hypervisor host", min=1),
    float_opt("spawn_delay", 0.0,
              "Seconds a fake spawn takes before the guest runs", min=0),
    int_opt("vcpus", 32, "vCPUs of each fake hypervisor host", min=1),
    list_opt("fail_move_steps", [],
             "Move steps that fail on this fake host (prep_resize, "
             "migrate_disk_and_power_off, finish_migration, "
             "confirm_migration, finish_revert_migration, "
             "revert_migration, live_migration)"),
    float_opt("move_step_delay", 0.0,
              "Seconds each fake move step takes", min=0),
    float_opt("live_migration_delay", -1.0,
              "Seconds the memory copy of a fake live migration takes "
              "(its progress is reported in ten parts meanwhile; "
              "force_complete ends it, abort cancels it); negative: "
              "move_step_delay"),
]


def list_opts() -> OptGroups:
    return [("fake_driver", FAKE_DRIVER_OPTS)]
