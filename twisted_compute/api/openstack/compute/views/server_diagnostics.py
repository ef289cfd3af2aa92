"""The two bodies of ``GET /servers/{id}/diagnostics``, from one
:class:`~twisted_compute.objects.diagnostics.Diagnostics` record."""

from __future__ import annotations

from typing import Any

from twisted_compute.objects.diagnostics import Diagnostics

_CPU = ("id", "time", "utilisation")
_DISK = ("read_bytes", "read_requests", "write_bytes", "write_requests",
         "errors_count")
_NIC = ("mac_address", "rx_octets", "rx_errors", "rx_drop", "rx_packets",
        "rx_rate", "tx_octets", "tx_errors", "tx_drop", "tx_packets",
        "tx_rate")


def _pick(record, names) -> dict[str, Any]:
    return {name: getattr(record, name) for name in names}


def standard(diagnostics: Diagnostics) -> dict[str, Any]:
    """2.48: Nova's standard shape, every field present (None where the
    driver does not know it)."""
    d = diagnostics
    return {
        "state": d.state, "driver": d.driver, "hypervisor": d.hypervisor,
        "hypervisor_os": d.hypervisor_os, "uptime": d.uptime,
        "config_drive": d.config_drive, "num_cpus": len(d.cpu_details),
        "num_nics": len(d.nic_details), "num_disks": len(d.disk_details),
        "cpu_details": [_pick(c, _CPU) for c in d.cpu_details],
        "disk_details": [_pick(k, _DISK) for k in d.disk_details],
        "nic_details": [_pick(n, _NIC) for n in d.nic_details],
        "memory_details": {"maximum": d.memory_maximum,
                           "used": d.memory_used},
    }


def legacy(diagnostics: Diagnostics) -> dict[str, Any]:
    """Before 2.48: the driver's flat dict, as Nova's libvirt driver
    names it (``cpu0_time``, ``vda_read``, ``vnet0_rx``, ``memory``,
    ``memory-actual``, ...); unknown counters are left out."""
    d = diagnostics
    out: dict[str, Any] = {}
    for cpu in d.cpu_details:
        if cpu.time is not None:
            out[f"cpu{cpu.id}_time"] = cpu.time
    for disk in d.disk_details:
        for suffix, value in (("read_req", disk.read_requests),
                              ("read", disk.read_bytes),
                              ("write_req", disk.write_requests),
                              ("write", disk.write_bytes),
                              ("errors", disk.errors_count)):
            if value is not None:
                out[f"{disk.name}_{suffix}"] = value
    for nic in d.nic_details:
        if not nic.name:
            continue
        for suffix, value in (("rx", nic.rx_octets),
                              ("rx_packets", nic.rx_packets),
                              ("rx_errors", nic.rx_errors),
                              ("rx_drop", nic.rx_drop),
                              ("tx", nic.tx_octets),
                              ("tx_packets", nic.tx_packets),
                              ("tx_errors", nic.tx_errors),
                              ("tx_drop", nic.tx_drop)):
            if value is not None:
                out[f"{nic.name}_{suffix}"] = value
    stats = dict(d.memory_stats)
    maximum = stats.pop("maximum", None)
    if maximum is None and d.memory_maximum is not None:
        maximum = d.memory_maximum * 1024
    if maximum is not None:
        out["memory"] = maximum
    for key, value in stats.items():
        out[f"memory-{key}"] = value
    return out
