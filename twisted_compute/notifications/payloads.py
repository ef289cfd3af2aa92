"""The payloads of Nova's versioned notifications, built from our records.

Each payload is Nova's ``nova_object`` form: ``nova_object.name``,
``nova_object.namespace`` (``"nova"``), ``nova_object.version`` and
``nova_object.data``.  Field names and versions are Nova's
(``nova/notifications/objects/``), so a consumer written for Nova reads
them unchanged.  Fields we have no value for are given as Nova gives an
unset nullable field (``None``, an empty list or dict).
"""

from __future__ import annotations

import datetime
from typing import Any

NAMESPACE = "nova"

#: Nova's names of the power states (the numbers of
#: :mod:`twisted_compute.virt.power_state`, which the API process, that
#: emits notifications too, does not import).
POWER_STATES = {0: "pending", 1: "running", 3: "paused", 4: "shutdown",
                6: "crashed", 7: "suspended"}

#: Versions of the payload objects, as Nova's of the same fields.
VERSIONS = {
    "InstanceActionPayload": "1.7",
    "InstanceCreatePayload": "1.11",
    "InstanceUpdatePayload": "1.8",
    "InstanceActionRebuildPayload": "1.8",
    "InstanceActionRescuePayload": "1.2",
    "InstanceActionResizePrepPayload": "1.2",
    "InstanceActionSnapshotPayload": "1.8",
    "InstanceStateUpdatePayload": "1.0",
    "FlavorPayload": "1.4",
    "IpPayload": "1.0",
    "ExceptionPayload": "1.1",
    "ServiceStatusPayload": "1.1",
    "AuditPeriodPayload": "1.0",
}


def nova_object(name: str, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` wrapped as the versioned object ``name``."""
    return {"nova_object.name": name,
            "nova_object.namespace": NAMESPACE,
            "nova_object.version": VERSIONS[name],
            "nova_object.data": data}


def timestamp(value: Any) -> str | None:
    """A datetime as Nova's payloads give one (ISO 8601, ``Z``)."""
    if value is None:
        return None
    if isinstance(value, dict) and "__datetime__" in value:
        value = datetime.datetime.fromisoformat(value["__datetime__"])
    if isinstance(value, str):
        return value
    if value.tzinfo is not None:
        value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return value.replace(microsecond=0).isoformat() + "Z"


def flavor_payload(flavor: dict[str, Any] | None) -> dict[str, Any]:
    flavor = flavor or {}
    return nova_object("FlavorPayload", {
        "flavorid": str(flavor.get("flavorid", "")) or None,
        "name": flavor.get("name"),
        "memory_mb": flavor.get("memory_mb"),
        "vcpus": flavor.get("vcpus"),
        "root_gb": flavor.get("root_gb"),
        "ephemeral_gb": flavor.get("ephemeral_gb", 0),
        "swap": flavor.get("swap", 0) or 0,
        "rxtx_factor": flavor.get("rxtx_factor", 1.0),
        "vcpu_weight": flavor.get("vcpu_weight", 0) or 0,
        "disabled": bool(flavor.get("disabled", False)),
        "is_public": bool(flavor.get("is_public", True)),
        "extra_specs": dict(flavor.get("extra_specs") or {}),
        "projects": flavor.get("projects"),
        "description": flavor.get("description"),
    })


def ip_payloads(addresses: dict[str, Any] | None) -> list[dict[str, Any]]:
    """``IpPayload``s from an instance's ``addresses`` (the API's form:
    network label -> list of ``{addr, version, OS-EXT-IPS-MAC:mac_addr,
    ...}``)."""
    found = []
    for label, entries in (addresses or {}).items():
        for entry in entries or ():
            if not isinstance(entry, dict):
                continue
            found.append(nova_object("IpPayload", {
                "label": label,
                "mac": entry.get("OS-EXT-IPS-MAC:mac_addr")
                or entry.get("mac"),
                "meta": {},
                "port_uuid": entry.get("port_id"),
                "version": entry.get("version", 4),
                "address": entry.get("addr") or entry.get("address"),
                "device_name": entry.get("device_name"),
            }))
    return found


def exception_payload(exc: BaseException | None,
                      traceback: str | None = None
                      ) -> dict[str, Any] | None:
    """Nova's ``ExceptionPayload`` of a failed action (None for none)."""
    if exc is None:
        return None
    module = type(exc).__module__ or ""
    message = getattr(exc, "format_message", None)
    text = message() if callable(message) else str(exc)
    tb = getattr(exc, "__traceback__", None)
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return nova_object("ExceptionPayload", {
        "module_name": module,
        "function_name": tb.tb_frame.f_code.co_name if tb else "",
        "exception": type(exc).__name__,
        "exception_message": text,
        "traceback": traceback or "",
    })


def _instance_fields(context, instance) -> dict[str, Any]:
    """The fields of Nova's ``InstancePayload`` (1.7)."""
    user_id = getattr(context, "user_id", None)
    project_id = getattr(context, "project_id", None)
    system_metadata = instance.system_metadata or {}
    return {
        "uuid": instance.uuid,
        "user_id": instance.user_id,
        "tenant_id": instance.project_id,
        "reservation_id": instance.reservation_id,
        "display_name": instance.display_name,
        "display_description": instance.display_description,
        "host_name": instance.hostname,
        "host": instance.host,
        "node": instance.node,
        "os_type": system_metadata.get("image_os_type"),
        "architecture": system_metadata.get("image_architecture"),
        "availability_zone": instance.availability_zone,
        "flavor": flavor_payload(instance.flavor),
        "image_uuid": instance.image_ref,
        "key_name": instance.key_name,
        "kernel_id": instance.kernel_id or "",
        "ramdisk_id": instance.ramdisk_id or "",
        "created_at": timestamp(instance.created_at),
        "launched_at": timestamp(instance.launched_at),
        "terminated_at": timestamp(instance.terminated_at),
        "deleted_at": timestamp(instance.deleted_at),
        "updated_at": timestamp(instance.updated_at),
        "state": instance.vm_state,
        "power_state": POWER_STATES.get(instance.power_state or 0,
                                        "pending"),
        "task_state": instance.task_state,
        "progress": instance.progress,
        "ip_addresses": ip_payloads(instance.addresses),
        "block_devices": [],
        "metadata": dict(instance.metadata or {}),
        "locked": bool(instance.locked),
        "auto_disk_config": "MANUAL",
        # As Nova: periodic tasks' contexts carry no user, and no
        # request id is given for them.
        "request_id": (getattr(context, "request_id", None)
                       if user_id and project_id else None),
        "action_initiator_user": user_id,
        "action_initiator_project": project_id,
    }


def instance_action(context, instance, fault: dict[str, Any] | None = None,
                    name: str = "InstanceActionPayload",
                    **extra: Any) -> dict[str, Any]:
    """An ``InstanceActionPayload`` (or one of its children, ``name``,
    with its ``extra`` fields)."""
    data = _instance_fields(context, instance)
    data["fault"] = fault
    data.update(extra)
    return nova_object(name, data)


def instance_create(context, instance, fault=None) -> dict[str, Any]:
    return instance_action(
        context, instance, fault, name="InstanceCreatePayload",
        keypairs=[], tags=list(instance.tags or ()),
        trusted_image_certificates=None,
        instance_name=instance.instance_name())


def instance_update(context, old, new) -> dict[str, Any]:
    """An ``InstanceUpdatePayload``: ``new`` as it is now, with the move
    from ``old``'s states."""
    data = _instance_fields(context, new)
    data["state_update"] = nova_object("InstanceStateUpdatePayload", {
        "old_state": old.vm_state, "state": new.vm_state,
        "old_task_state": old.task_state,
        "new_task_state": new.task_state})
    data["audit_period"] = nova_object("AuditPeriodPayload", {
        "audit_period_beginning": None, "audit_period_ending": None})
    data["bandwidth"] = []
    data["old_display_name"] = (old.display_name
                                if old.display_name != new.display_name
                                else None)
    data["tags"] = list(new.tags or ())
    return nova_object("InstanceUpdatePayload", data)


def service_status(service: dict[str, Any]) -> dict[str, Any]:
    """A ``ServiceStatusPayload`` from a service row or record (a dict
    of its fields; what is missing is None)."""
    get = service.get
    return nova_object("ServiceStatusPayload", {
        "host": get("host"),
        "binary": get("binary"),
        "topic": get("topic"),
        "report_count": get("report_count", 0) or 0,
        "disabled": bool(get("disabled", False)),
        "disabled_reason": get("disabled_reason"),
        "availability_zone": get("availability_zone"),
        "last_seen_up": timestamp(get("last_seen_up")),
        "forced_down": bool(get("forced_down", False)),
        "version": get("version", 0) or 0,
        "uuid": get("uuid"),
    })
