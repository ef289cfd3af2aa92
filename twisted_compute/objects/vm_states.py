"""Instance states: ``vm_state`` (what the server is), ``task_state``
(what is being done to it now), ``power_state`` (what the hypervisor
says), and the API ``status`` that clients see, derived from the first
two exactly as Nova derives it."""

from __future__ import annotations

# --- vm_state -------------------------------------------------------------

ACTIVE = "active"
BUILDING = "building"
PAUSED = "paused"
SUSPENDED = "suspended"
STOPPED = "stopped"
RESCUED = "rescued"
RESIZED = "resized"
SOFT_DELETED = "soft-delete"
DELETED = "deleted"
ERROR = "error"
SHELVED = "shelved"
SHELVED_OFFLOADED = "shelved_offloaded"

VM_STATES = (ACTIVE, BUILDING, PAUSED, SUSPENDED, STOPPED, RESCUED, RESIZED,
             SOFT_DELETED, DELETED, ERROR, SHELVED, SHELVED_OFFLOADED)

#: States from which a soft / hard reboot is allowed.
ALLOW_SOFT_REBOOT = (ACTIVE,)
ALLOW_HARD_REBOOT = ALLOW_SOFT_REBOOT + (STOPPED, PAUSED, SUSPENDED, ERROR)

# --- task_state -----------------------------------------------------------

SCHEDULING = "scheduling"
BLOCK_DEVICE_MAPPING = "block_device_mapping"
NETWORKING = "networking"
SPAWNING = "spawning"
IMAGE_SNAPSHOT = "image_snapshot"
IMAGE_SNAPSHOT_PENDING = "image_snapshot_pending"
IMAGE_PENDING_UPLOAD = "image_pending_upload"
IMAGE_UPLOADING = "image_uploading"
IMAGE_BACKUP = "image_backup"
UPDATING_PASSWORD = "updating_password"
RESIZE_PREP = "resize_prep"
RESIZE_MIGRATING = "resize_migrating"
RESIZE_MIGRATED = "resize_migrated"
RESIZE_FINISH = "resize_finish"
RESIZE_REVERTING = "resize_reverting"
RESIZE_CONFIRMING = "resize_confirming"
REBOOTING = "rebooting"
REBOOT_PENDING = "reboot_pending"
REBOOT_STARTED = "reboot_started"
REBOOTING_HARD = "rebooting_hard"
REBOOT_PENDING_HARD = "reboot_pending_hard"
REBOOT_STARTED_HARD = "reboot_started_hard"
PAUSING = "pausing"
UNPAUSING = "unpausing"
SUSPENDING = "suspending"
RESUMING = "resuming"
POWERING_OFF = "powering-off"
POWERING_ON = "powering-on"
RESCUING = "rescuing"
UNRESCUING = "unrescuing"
REBUILDING = "rebuilding"
REBUILD_BLOCK_DEVICE_MAPPING = "rebuild_block_device_mapping"
REBUILD_SPAWNING = "rebuild_spawning"
MIGRATING = "migrating"
DELETING = "deleting"
SOFT_DELETING = "soft-deleting"
RESTORING = "restoring"
SHELVING = "shelving"
SHELVING_IMAGE_PENDING_UPLOAD = "shelving_image_pending_upload"
SHELVING_IMAGE_UPLOADING = "shelving_image_uploading"
SHELVING_OFFLOADING = "shelving_offloading"
UNSHELVING = "unshelving"

TASK_STATES = (
    SCHEDULING, BLOCK_DEVICE_MAPPING, NETWORKING, SPAWNING, IMAGE_SNAPSHOT,
    IMAGE_SNAPSHOT_PENDING, IMAGE_PENDING_UPLOAD, IMAGE_UPLOADING,
    IMAGE_BACKUP, UPDATING_PASSWORD, RESIZE_PREP, RESIZE_MIGRATING,
    RESIZE_MIGRATED, RESIZE_FINISH, RESIZE_REVERTING, RESIZE_CONFIRMING,
    REBOOTING, REBOOT_PENDING, REBOOT_STARTED, REBOOTING_HARD,
    REBOOT_PENDING_HARD, REBOOT_STARTED_HARD, PAUSING, UNPAUSING,
    SUSPENDING, RESUMING, POWERING_OFF, POWERING_ON, RESCUING, UNRESCUING,
    REBUILDING, REBUILD_BLOCK_DEVICE_MAPPING, REBUILD_SPAWNING, MIGRATING,
    DELETING, SOFT_DELETING, RESTORING, SHELVING,
    SHELVING_IMAGE_PENDING_UPLOAD, SHELVING_IMAGE_UPLOADING,
    SHELVING_OFFLOADING, UNSHELVING)

# --- power_state (integers, as the API shows them) -------------------------

NOSTATE = 0
RUNNING = 1
PAUSED_POWER = 3
SHUTDOWN = 4
CRASHED = 6
SUSPENDED_POWER = 7

POWER_STATES = {NOSTATE: "pending", RUNNING: "running",
                PAUSED_POWER: "paused", SHUTDOWN: "shutdown",
                CRASHED: "crashed", SUSPENDED_POWER: "suspended"}

# --- API status -----------------------------------------------------------

_REBUILD = {REBUILDING: "REBUILD", REBUILD_BLOCK_DEVICE_MAPPING: "REBUILD",
            REBUILD_SPAWNING: "REBUILD"}
_RESIZE = {RESIZE_PREP: "RESIZE", RESIZE_MIGRATING: "RESIZE",
           RESIZE_MIGRATED: "RESIZE", RESIZE_FINISH: "RESIZE"}

#: vm_state -> {task_state or "default": status}
STATUS_MAP: dict[str, dict[str | None, str]] = {
    ACTIVE: {
        "default": "ACTIVE",
        REBOOTING: "REBOOT", REBOOT_PENDING: "REBOOT",
        REBOOT_STARTED: "REBOOT",
        REBOOTING_HARD: "HARD_REBOOT", REBOOT_PENDING_HARD: "HARD_REBOOT",
        REBOOT_STARTED_HARD: "HARD_REBOOT",
        UPDATING_PASSWORD: "PASSWORD",
        MIGRATING: "MIGRATING",
        **_REBUILD, **_RESIZE,
    },
    BUILDING: {"default": "BUILD"},
    STOPPED: {"default": "SHUTOFF", **_RESIZE, **_REBUILD},
    RESIZED: {"default": "VERIFY_RESIZE", RESIZE_REVERTING: "REVERT_RESIZE"},
    PAUSED: {"default": "PAUSED", MIGRATING: "MIGRATING"},
    SUSPENDED: {"default": "SUSPENDED"},
    RESCUED: {"default": "RESCUE"},
    ERROR: {"default": "ERROR", **_REBUILD},
    DELETED: {"default": "DELETED"},
    SOFT_DELETED: {"default": "SOFT_DELETED"},
    SHELVED: {"default": "SHELVED"},
    SHELVED_OFFLOADED: {"default": "SHELVED_OFFLOADED"},
}


def status_from_state(vm_state: str, task_state: str | None) -> str:
    """The API status of an instance in ``vm_state`` / ``task_state``."""
    task_map = STATUS_MAP.get(vm_state)
    if task_map is None:
        return "UNKNOWN"
    return task_map.get(task_state, task_map["default"])


def states_from_status(statuses) -> tuple[list[str], list[str]]:
    """The vm_states and task_states (``"default"`` meaning any) that show
    as one of ``statuses`` (case-insensitive); both empty when none
    does."""
    wanted = {s.lower() for s in statuses}
    vm_states: set[str] = set()
    task_states: set[str] = set()
    for vm_state, task_map in STATUS_MAP.items():
        for task_state, status in task_map.items():
            if status.lower() in wanted:
                vm_states.add(vm_state)
                task_states.add(task_state)
    return sorted(vm_states), sorted(task_states)
