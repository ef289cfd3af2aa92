"""Instances (servers) and what hangs off them: metadata, tags, the last
fault, instance actions and their events."""

from __future__ import annotations

import datetime
from typing import Any

import attrs

from twisted_compute.objects import Record


@attrs.frozen
class InstanceFault(Record):
    code: int
    message: str
    details: str | None = None
    host: str | None = None
    created_at: datetime.datetime | None = None


@attrs.frozen
class Instance(Record):
    """One row of ``instances`` with its metadata, tags and latest fault
    (those three are loaded in batches for lists, never one query per
    instance)."""

    id: int
    uuid: str
    user_id: str
    project_id: str
    vm_state: str
    task_state: str | None = None
    power_state: int = 0
    display_name: str = ""
    display_description: str | None = None
    hostname: str | None = None
    host: str | None = None
    node: str | None = None
    launched_on: str | None = None
    launched_at: datetime.datetime | None = None
    terminated_at: datetime.datetime | None = None
    availability_zone: str | None = None
    image_ref: str | None = None
    kernel_id: str | None = None
    ramdisk_id: str | None = None
    key_name: str | None = None
    key_data: str | None = None
    instance_type_id: int | None = None
    memory_mb: int = 0
    vcpus: int = 0
    root_gb: int = 0
    ephemeral_gb: int = 0
    flavor: dict[str, Any] = attrs.field(factory=dict)
    user_data: str | None = None
    config_drive: str = ""
    reservation_id: str | None = None
    launch_index: int = 0
    locked: bool = False
    locked_by: str | None = None
    locked_reason: str | None = None
    access_ip_v4: str | None = None
    access_ip_v6: str | None = None
    progress: int = 0
    addresses: dict[str, Any] = attrs.field(factory=dict)
    security_groups: list[Any] = attrs.field(factory=list)
    system_metadata: dict[str, Any] = attrs.field(factory=dict)
    request_spec: dict[str, Any] = attrs.field(factory=dict)
    #: While it moves: a ``MigrationContext`` in bus form, else None.
    migration_context: dict[str, Any] | None = None
    created_at: datetime.datetime | None = None
    updated_at: datetime.datetime | None = None
    deleted_at: datetime.datetime | None = None
    deleted: int = 0
    metadata: dict[str, str] = attrs.field(factory=dict)
    tags: list[str] = attrs.field(factory=list)
    fault: InstanceFault | None = None

    @property
    def is_deleted(self) -> bool:
        return self.deleted != 0

    def instance_name(self, template: str = "instance-%08x") -> str:
        """The hypervisor's name for this instance."""
        try:
            return template % self.id
        except (TypeError, ValueError):
            return template % {"id": self.id, "uuid": self.uuid}

    def to_dict(self, exclude=()) -> dict[str, Any]:
        values = super().to_dict(exclude)
        if self.fault is not None:
            values["fault"] = self.fault.to_dict()
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "Instance":
        fault = values.get("fault")
        instance = super().from_dict(
            {k: v for k, v in values.items() if k != "fault"})
        if fault:
            instance = attrs.evolve(instance,
                                    fault=InstanceFault.from_dict(fault))
        return instance


@attrs.frozen
class InstanceActionEvent(Record):
    id: int
    action_id: int
    event: str
    start_time: datetime.datetime
    finish_time: datetime.datetime | None = None
    result: str | None = None
    traceback: str | None = None
    host: str | None = None
    details: str | None = None


@attrs.frozen
class InstanceAction(Record):
    id: int
    action: str
    instance_uuid: str
    request_id: str
    start_time: datetime.datetime
    user_id: str | None = None
    project_id: str | None = None
    finish_time: datetime.datetime | None = None
    message: str | None = None
    created_at: datetime.datetime | None = None
    updated_at: datetime.datetime | None = None
    events: list[InstanceActionEvent] = attrs.field(factory=list)
