"""What the compute agent's modules share: action event results, the bus
form of a timestamp, how an error is reported, the reboot task states."""

from __future__ import annotations

import datetime

from twisted_compute import exception
from twisted_compute.objects import vm_states

SUCCESS = "Success"
ERROR = "Error"


def bus_time(value: datetime.datetime) -> dict[str, str]:
    """A datetime in the bus form records use."""
    return {"__datetime__": value.isoformat()}


def message(exc: BaseException) -> str:
    if isinstance(exc, exception.ComputeException):
        return exc.format_message()
    return str(exc) or type(exc).__name__


def fault_code(exc: BaseException) -> int:
    return getattr(exc, "code", 500) if isinstance(
        exc, exception.ComputeException) else 500


SOFT_REBOOT_TASK_STATES = [vm_states.REBOOTING, vm_states.REBOOT_PENDING,
                           vm_states.REBOOT_STARTED]
HARD_REBOOT_TASK_STATES = [vm_states.REBOOTING_HARD,
                           vm_states.REBOOT_PENDING_HARD,
                           vm_states.REBOOT_STARTED_HARD]
