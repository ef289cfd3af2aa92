"""A guest's diagnostics, as a virt driver reads them and the agent
answers ``get_instance_diagnostics`` with.

One record serves both API forms: the 2.48 one (Nova's standard shape:
every field present, ``None`` where the driver does not know it) and the
older driver-specific dict (``cpu0_time``, ``vda_read``, ``vnet0_rx``,
``memory``, ``memory-<stat>``), which needs the device names and
libvirt's memory statistics (:attr:`Diagnostics.memory_stats`).
"""

from __future__ import annotations

from typing import Any

import attrs


@attrs.frozen
class CpuDiagnostics:
    id: int
    #: CPU time used, in nanoseconds
    time: int | None = None
    #: percent, where the driver knows it
    utilisation: int | None = None


@attrs.frozen
class DiskDiagnostics:
    #: the guest's device name (``vda``), for the pre-2.48 form
    name: str
    read_bytes: int | None = None
    read_requests: int | None = None
    write_bytes: int | None = None
    write_requests: int | None = None
    errors_count: int | None = None


@attrs.frozen
class NicDiagnostics:
    #: the host side device (``vnet0``), for the pre-2.48 form
    name: str
    mac_address: str | None = None
    rx_octets: int | None = None
    rx_errors: int | None = None
    rx_drop: int | None = None
    rx_packets: int | None = None
    rx_rate: int | None = None
    tx_octets: int | None = None
    tx_errors: int | None = None
    tx_drop: int | None = None
    tx_packets: int | None = None
    tx_rate: int | None = None


_NESTED = {"cpu_details": CpuDiagnostics, "disk_details": DiskDiagnostics,
           "nic_details": NicDiagnostics}


@attrs.frozen
class Diagnostics:
    #: the power state's name (``running``)
    state: str
    driver: str
    hypervisor: str | None = None
    hypervisor_os: str | None = None
    #: seconds since the guest was launched
    uptime: int | None = None
    config_drive: bool = False
    cpu_details: tuple[CpuDiagnostics, ...] = ()
    disk_details: tuple[DiskDiagnostics, ...] = ()
    nic_details: tuple[NicDiagnostics, ...] = ()
    #: MiB
    memory_maximum: int | None = None
    #: MiB
    memory_used: int | None = None
    #: the hypervisor's memory statistics (KiB), for the pre-2.48 form
    memory_stats: dict[str, int] = attrs.field(factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "Diagnostics":
        names = {f.name for f in attrs.fields(cls)}
        kwargs = {k: v for k, v in values.items() if k in names}
        for key, record in _NESTED.items():
            kwargs[key] = tuple(record(**item)
                                for item in values.get(key) or ())
        return cls(**kwargs)
