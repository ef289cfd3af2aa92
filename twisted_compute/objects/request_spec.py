"""What the scheduler needs to place the instances of one boot request.

The API builds it (and stores a copy with each instance, without the
number of instances and their uuids); the conductor hands it to the
scheduler.  It never holds secrets: the admin password and the injected
files travel beside it (:class:`~twisted_compute.objects.boot_request.
BootRequest`).

Its bus form is the request spec dict the scheduler has always read (see
:class:`~twisted_compute.scheduler.manager.SchedulerManager`), so the
scheduler's RPC API did not change with it.
"""

from __future__ import annotations

from typing import Any

import attrs

#: Keys of the bus form, in the order :meth:`RequestSpec.to_dict` writes
#: them.
_KEYS = ("flavor", "image", "num_instances", "instance_uuids",
         "availability_zone", "force_hosts", "force_nodes",
         "requested_destination", "requested_networks", "security_groups",
         "scheduler_hints", "block_device_mapping", "config_drive",
         "group", "ignore_hosts", "project_id", "user_id")


@attrs.frozen(slots=True)
class RequestSpec:
    #: The flavor snapshot (``Flavor.snapshot()``).
    flavor: dict[str, Any] = attrs.field(factory=dict)
    #: What the scheduler filters on and the agent downloads by (id, name,
    #: status, sizes, formats, checksum and hash, properties), or None for
    #: a boot from volume.
    image: dict[str, Any] | None = None
    num_instances: int = 1
    instance_uuids: tuple[str, ...] = ()
    #: A zone, or the admin's ``zone:host[:node]``.
    availability_zone: str | None = None
    force_hosts: Any = None
    force_nodes: Any = None
    requested_destination: dict[str, Any] | None = None
    #: The ``networks`` of the request, as the API normalised them.
    requested_networks: Any = None
    security_groups: tuple[str, ...] = ()
    scheduler_hints: dict[str, Any] = attrs.field(factory=dict)
    block_device_mapping: tuple[Any, ...] = ()
    config_drive: bool = False
    #: The server group (uuid, policy, rules), or None.
    group: dict[str, Any] | None = None
    #: Hosts not to pick (tried already).
    ignore_hosts: tuple[str, ...] = ()
    project_id: str | None = None
    user_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The bus form (JSON values; nothing is copied)."""
        return {
            "flavor": self.flavor, "image": self.image,
            "num_instances": self.num_instances,
            "instance_uuids": list(self.instance_uuids),
            "availability_zone": self.availability_zone,
            "force_hosts": self.force_hosts,
            "force_nodes": self.force_nodes,
            "requested_destination": self.requested_destination,
            "requested_networks": self.requested_networks,
            "security_groups": list(self.security_groups),
            "scheduler_hints": self.scheduler_hints,
            "block_device_mapping": list(self.block_device_mapping),
            "config_drive": self.config_drive, "group": self.group,
            "ignore_hosts": list(self.ignore_hosts),
            "project_id": self.project_id, "user_id": self.user_id,
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "RequestSpec":
        """Decode the bus form (or a spec stored with an instance); keys
        it does not know are ignored."""
        get = values.get
        return cls(
            flavor=get("flavor") or {}, image=get("image") or None,
            num_instances=int(get("num_instances") or 1),
            instance_uuids=tuple(get("instance_uuids") or ()),
            availability_zone=get("availability_zone"),
            force_hosts=get("force_hosts"), force_nodes=get("force_nodes"),
            requested_destination=get("requested_destination"),
            requested_networks=get("requested_networks"),
            security_groups=tuple(get("security_groups") or ()),
            scheduler_hints=get("scheduler_hints") or {},
            block_device_mapping=tuple(get("block_device_mapping") or ()),
            config_drive=bool(get("config_drive")),
            group=get("group") or None,
            ignore_hosts=tuple(get("ignore_hosts") or ()),
            project_id=get("project_id"), user_id=get("user_id"))
