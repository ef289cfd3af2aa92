"""``GET /servers`` query parameters to compute API filters: what a
caller may filter and sort by (by role and microversion), and how each
parameter becomes a filter on the instances."""

from __future__ import annotations

import re
from typing import Any

from twisted_compute import exception
from twisted_compute.api.openstack import common
from twisted_compute.objects import vm_states


#: Query parameters non-admins may filter by, with the microversion that
#: introduced each (others are silently dropped for them, as Nova does).
USER_FILTERS = {
    "reservation_id": None, "name": None, "status": None, "image": None,
    "flavor": None, "ip": None, "changes-since": None, "all_tenants": None,
    "ip6": "2.5", "tags": "2.26", "tags-any": "2.26", "not-tags": "2.26",
    "not-tags-any": "2.26", "changes-before": "2.66", "locked": "2.73",
    "availability_zone": "2.83", "config_drive": "2.83", "key_name": "2.83",
    "created_at": "2.83", "launched_at": "2.83", "terminated_at": "2.83",
    "power_state": "2.83", "task_state": "2.83", "vm_state": "2.83",
    "progress": "2.83", "user_id": "2.83",
}


#: Every query parameter Nova's schema knows (an unknown one is a 400 from
#: 2.75 on).
KNOWN_PARAMS = set(USER_FILTERS) | {
    "user_id", "project_id", "tenant_id", "launch_index", "image_ref",
    "kernel_id", "ramdisk_id", "hostname", "key_name", "power_state",
    "vm_state", "task_state", "host", "node", "launched_at",
    "terminated_at", "availability_zone", "display_name", "description",
    "display_description", "locked_by", "uuid", "root_device_name",
    "config_drive", "access_ip_v4", "access_ip_v6", "auto_disk_config",
    "progress", "sort_key", "sort_dir", "soft_deleted", "deleted",
    "created_at", "block_device_mapping", "services", "metadata",
    "system_metadata", "info_cache", "security_groups", "pci_devices",
    "limit", "marker",
}


#: Admin filters compared with ``=`` on a column of the same name.
ADMIN_EXACT = ("user_id", "uuid", "host", "node", "hostname", "key_name",
               "availability_zone", "launch_index", "access_ip_v4",
               "access_ip_v6", "kernel_id", "ramdisk_id", "progress",
               "locked_by", "config_drive", "power_state", "vm_state",
               "task_state", "image_ref")

VALID_SORT_KEYS = (
    "access_ip_v4", "access_ip_v6", "auto_disk_config", "availability_zone",
    "config_drive", "created_at", "display_description", "display_name",
    "host", "hostname", "image_ref", "instance_type_id", "kernel_id",
    "key_name", "launch_index", "launched_at", "locked_by", "node",
    "power_state", "progress", "project_id", "ramdisk_id",
    "root_device_name", "task_state", "terminated_at", "updated_at",
    "user_id", "uuid", "vm_state")
IGNORED_SORT_KEYS = (
    "architecture", "cell_name", "cleaned", "default_ephemeral_device",
    "default_swap_device", "deleted", "deleted_at", "disable_terminate",
    "ephemeral_gb", "ephemeral_key_uuid", "id", "key_data", "launched_on",
    "locked", "memory_mb", "os_type", "reservation_id", "root_gb",
    "shutdown_terminate", "user_data", "vcpus", "vm_mode")
#: Sort keys without a column here (accepted, not used).
_UNSORTABLE = ("auto_disk_config", "root_device_name")


def _loose_bool(value: str) -> bool:
    return value.strip().lower() in ("true", "1", "yes", "on", "t", "y")


def search(request, context, policy, max_limit: int, detail: bool):
    """The query of a ``GET /servers`` (or ``/servers/detail``) as
    (filters, sort_keys, sort_dirs, limit, marker) for the compute API
    layer, or None when it can match nothing.  ``policy`` decides which
    filters the caller may use."""
    params = common.query(request)
    if common.is_at_least(request, "2.75"):
        unknown = sorted(set(params) - KNOWN_PARAMS)
        if unknown:
            raise exception.ValidationError(
                field="query parameters",
                detail="Additional properties are not allowed "
                f"({', '.join(repr(u) for u in unknown)} "
                f"{'was' if len(unknown) == 1 else 'were'} unexpected)")
    opts = {k: v[-1] for k, v in params.items() if v}
    all_filters = policy.allowed(
        context, "os_compute_api:servers:allow_all_filters")
    if not all_filters:
        opts = {k: v for k, v in opts.items()
                if k in ("limit", "marker", "sort_key", "sort_dir")
                or (k in USER_FILTERS and (
                    USER_FILTERS[k] is None or common.is_at_least(
                        request, USER_FILTERS[k])))}
    filters: dict[str, Any] = {}

    # status -> vm_state / task_state
    if "status" in opts:
        statuses = [s for s in params.get("status", []) if s]
        vm_state, task_state = vm_states.states_from_status(statuses)
        if not vm_state:
            if common.is_at_least(request, "2.38"):
                raise exception.InvalidInput(
                    reason="Invalid status value")
            return None
        filters["vm_state"] = vm_state
        if "default" not in task_state:
            filters["task_state"] = task_state
    # ``opts`` holds only what this caller may filter by (from 2.83 also
    # non-admins: zone, config drive, key name, states, progress, user).
    for key in ADMIN_EXACT:
        if key in opts and key not in ("vm_state", "task_state"):
            value: Any = opts[key]
            if key in ("launch_index", "progress", "power_state"):
                try:
                    value = int(value)
                except ValueError:
                    raise exception.ValidationError(
                        field=key,
                        detail=f"Value: {value!r}. not an "
                        "integer") from None
            filters[key] = value
    for key in ("vm_state", "task_state"):
        if key in opts and "status" not in opts:
            filters[key] = [v for v in params[key] if v]
    for key in ("changes-since", "changes-before"):
        if key in opts:
            filters[key.replace("-", "_")] = common.parse_isotime(
                opts[key], key)
    if filters.get("changes_since") and filters.get("changes_before") \
            and filters["changes_since"] > filters["changes_before"]:
        raise exception.InvalidInput(
            reason="The value of changes-since must be less than or "
            "equal to changes-before.")
    if "deleted" not in opts:
        if "changes_since" not in filters and \
                "changes_before" not in filters:
            filters["deleted"] = False
    else:
        filters["deleted"] = _loose_bool(opts["deleted"])
    if filters.get("vm_state") == [vm_states.DELETED]:
        if not context.is_admin:
            raise exception.Forbidden(
                "Only administrators may list deleted instances")
        filters["deleted"] = True

    all_tenants = False
    if "all_tenants" in opts:
        text = opts["all_tenants"]
        all_tenants = True if text == "" else common.parse_bool(
            text, "all_tenants")
    if all_tenants:
        policy.authorize(
            context, "os_compute_api:servers:"
            f"{'detail' if detail else 'index'}:get_all_tenants")
        project = opts.get("project_id") or opts.get("tenant_id")
        if project:
            filters["project_id"] = project
    else:
        filters["project_id"] = context.project_id

    if "name" in opts:
        try:
            re.compile(opts["name"])
        except re.error:
            raise exception.InvalidInput(
                reason=f"Invalid regular expression for name: "
                f"{opts['name']!r}") from None
        filters["name"] = opts["name"]
    if "reservation_id" in opts:
        filters["reservation_id"] = opts["reservation_id"]
    if "image" in opts:
        filters["image_ref"] = opts["image"].rstrip("/").rsplit(
            "/", 1)[-1]
    if "flavor" in opts:
        filters["flavor"] = opts["flavor"].rstrip("/").rsplit("/", 1)[-1]
    if "locked" in opts:
        filters["locked"] = common.parse_bool(opts["locked"], "locked")
    for key in ("tags", "tags-any", "not-tags", "not-tags-any"):
        if key in opts:
            filters[key.replace("-", "_")] = [
                t.strip() for t in opts[key].split(",") if t.strip()]

    sort_keys = [k for k in params.get("sort_key", []) if k]
    sort_dirs = [d for d in params.get("sort_dir", []) if d]
    for key in sort_keys:
        valid = VALID_SORT_KEYS + (
            ("locked",) if common.is_at_least(request, "2.73") else ())
        if key not in valid and key not in IGNORED_SORT_KEYS:
            raise exception.ValidationError(
                field="sort_key",
                detail=f"Value: {key!r}. is not one of the valid sort "
                "keys")
    for direction in sort_dirs:
        if direction not in ("asc", "desc"):
            raise exception.ValidationError(
                field="sort_dir",
                detail=f"Value: {direction!r}. is not one of "
                "['asc', 'desc']")
    if not all_filters and ({"host", "node"} & set(sort_keys)):
        raise exception.Forbidden(
            "Only administrators can sort servers by host, node")
    pairs = []
    for index, key in enumerate(sort_keys):
        direction = sort_dirs[index] if index < len(sort_dirs) else (
            sort_dirs[-1] if sort_dirs else "desc")
        usable = VALID_SORT_KEYS + ("locked",) if \
            common.is_at_least(request, "2.73") else VALID_SORT_KEYS
        if key in usable and key not in _UNSORTABLE:
            pairs.append((key, direction))
    if not pairs:
        pairs = [("created_at", sort_dirs[0] if sort_dirs and
                  not sort_keys else "desc")]
    limit, marker = common.limit_and_marker(request,
                                            max_limit)
    return (filters, [k for k, _ in pairs], [d for _, d in pairs],
            limit, marker)
