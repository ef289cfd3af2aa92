"""``[DEFAULT]`` options of the conductor: the build timeout."""

from __future__ import annotations

from twisted_compute.conf.opts import OptGroups, int_opt, str_opt

CONDUCTOR_OPTS = [
    int_opt("instance_build_timeout", 600,
            "Seconds after which an instance still building is put in "
            "ERROR (0: never)", min=0),
    int_opt("build_timeout_check_interval", 30,
            "Seconds between checks for builds that took too long", min=1),
    int_opt("resize_confirm_window", 0,
            "Seconds after which a resize or cold migration waiting in "
            "VERIFY_RESIZE is confirmed automatically (0: never)", min=0),
    int_opt("resize_confirm_check_interval", 60,
            "Seconds between checks for resizes to confirm automatically",
            min=1),
    int_opt("usage_audit_interval", 600,
            "Seconds between audits of each host's reported usage against "
            "the flavors placed on it (differences are logged)", min=1),
    int_opt("move_step_timeout", 300,
            "Seconds each step of a move (claim on the destination, disk "
            "copy on the source, finish, confirm, revert) may take before "
            "the conductor rolls the move back", min=1),
    int_opt("stuck_move_check_interval", 60,
            "Seconds between checks for moves that made no progress for "
            "4 x move_step_timeout (their conductor died): they are rolled "
            "back, or their instance set to ERROR with a fault; the first "
            "check runs when the conductor starts", min=1),
]

#: Rolling upgrades (:mod:`twisted_compute.compute.rpcapi`).
UPGRADE_LEVELS_OPTS = [
    str_opt("compute", "",
            "Highest compute agent RPC API version the conductor sends "
            "(e.g. 1.0 while agents older than the conductor run); empty "
            "or 'auto' sends the newest this conductor speaks"),
]


def list_opts() -> OptGroups:
    return [("DEFAULT", CONDUCTOR_OPTS),
            ("upgrade_levels", UPGRADE_LEVELS_OPTS)]
