"""Services (the processes that heartbeat into the DB) and the compute
nodes (hypervisors) that compute services report."""

from __future__ import annotations

import datetime

import attrs

from twisted_compute.objects import Record

#: The ``binary`` of each role's service rows (the names the ``openstack``
#: CLI and Nova's API use).  Compute services' hosts carry availability
#: zones and hypervisors.
COMPUTE_BINARY = "nova-compute"
CONDUCTOR_BINARY = "nova-conductor"
SCHEDULER_BINARY = "nova-scheduler"


@attrs.frozen
class Service(Record):
    id: int
    uuid: str
    host: str
    binary: str
    topic: str | None = None
    report_count: int = 0
    disabled: bool = False
    disabled_reason: str | None = None
    forced_down: bool = False
    last_seen_up: datetime.datetime | None = None
    version: int = 0
    created_at: datetime.datetime | None = None
    updated_at: datetime.datetime | None = None
    #: The availability zone of the service's host (set by queries that
    #: resolve it; None when not resolved).
    availability_zone: str | None = None


@attrs.frozen
class ComputeNode(Record):
    """One hypervisor, with the service that manages it (if any)."""

    id: int
    uuid: str
    host: str
    hypervisor_hostname: str
    hypervisor_type: str
    hypervisor_version: int
    host_ip: str | None
    vcpus: int
    memory_mb: int
    local_gb: int
    vcpus_used: int = 0
    memory_mb_used: int = 0
    local_gb_used: int = 0
    running_vms: int = 0
    cpu_info: str = "{}"
    #: Instances on this node with a task in progress.
    current_workload: int = 0
    service: Service | None = None
    #: The host's ``uptime`` line as its agent last reported it.
    uptime: str | None = None
