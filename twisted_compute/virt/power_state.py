"""Power states: what the hypervisor says about a guest.

The integers are Nova's (the API shows them as ``OS-EXT-STS:power_state``),
so they are the same numbers as :mod:`twisted_compute.objects.vm_states`
``NOSTATE`` ... ``SUSPENDED_POWER``.
"""

from __future__ import annotations

NOSTATE = 0
RUNNING = 1
PAUSED = 3
SHUTDOWN = 4
CRASHED = 6
SUSPENDED = 7

#: The name of each power state, as Nova's notifications spell them.
STATE_MAP = {
    NOSTATE: "pending",
    RUNNING: "running",
    PAUSED: "paused",
    SHUTDOWN: "shutdown",
    CRASHED: "crashed",
    SUSPENDED: "suspended",
}

ALL_STATES = tuple(STATE_MAP)


def name(state: int) -> str:
    """The name of ``state`` (``"unknown(N)"`` for anything else)."""
    return STATE_MAP.get(state, f"unknown({state})")
