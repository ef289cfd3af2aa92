"""``[DEFAULT]`` options of the conductor: the build timeout."""

from __future__ import annotations

from twisted_compute.conf.opts import OptGroups, int_opt

CONDUCTOR_OPTS = [
    int_opt("instance_build_timeout", 600,
            "Seconds after which an instance still building is put in "
            "ERROR (0: never)", min=0),
    int_opt("build_timeout_check_interval", 30,
            "Seconds between checks for builds that took too long", min=1),
]


def list_opts() -> OptGroups:
    return [("DEFAULT", CONDUCTOR_OPTS)]
