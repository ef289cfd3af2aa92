"""Flavor extra specs checked against the known namespaces (microversion
2.86), as Nova's ``nova.api.validation.extra_specs`` does.

A key of a known namespace must be one of its known keys, with a value of
the right kind; a key of another namespace (or of none) is accepted as it
is, since schedulers and drivers outside this project may read it.  The
table is data: each :class:`Spec` names a key (a regular expression for
keys with a parameter) and what its value may be.
"""

from __future__ import annotations

import re
from typing import Sequence

import attrs

from twisted_compute import exception

_TRUE = ("1", "t", "true", "on", "y", "yes")
_FALSE = ("0", "f", "false", "off", "n", "no")


@attrs.frozen
class Spec:
    """One known key: ``name`` (a regular expression, matched whole),
    ``kind`` (``int``, ``bool``, ``str``), and optionally ``enum``,
    ``pattern``, ``minimum``, ``maximum``."""

    name: str
    kind: type = str
    enum: Sequence[str] | None = None
    pattern: str | None = None
    minimum: int | None = None
    maximum: int | None = None

    def check(self, key: str, value: str) -> None:
        if self.kind is bool:
            if value.strip().lower() not in _TRUE + _FALSE:
                _fail(f"{key} must be a boolean value.")
            return
        if self.kind is int:
            try:
                number = int(value)
            except ValueError:
                _fail(f"{key} must be an integer value.")
            if self.minimum is not None and number < self.minimum:
                _fail(f"{key} must be greater than or equal to "
                      f"{self.minimum}.")
            if self.maximum is not None and number > self.maximum:
                _fail(f"{key} must be less than or equal to "
                      f"{self.maximum}.")
            return
        if self.enum is not None and value not in self.enum:
            _fail(f"{key} must be one of: {', '.join(self.enum)}.")
        if self.pattern is not None and not re.fullmatch(self.pattern,
                                                         value):
            _fail(f"{key} must match pattern {self.pattern}.")


def _fail(reason: str):
    raise exception.ExtraSpecValidationError(reason=reason)


def _ints(prefix: str, names: Sequence[str], minimum: int = 0
          ) -> list[Spec]:
    return [Spec(re.escape(prefix + n), int, minimum=minimum)
            for n in names]


_CPU_MASK = r"\^?\d+((-\d+)?(,\^?\d+(-\d+)?)?)*"
_GROUP = r"[a-zA-Z0-9_-]{1,64}"

SPECS: list[Spec] = [
    # hw: CPU and NUMA placement, memory, devices
    Spec("hw:cpu_policy", enum=("dedicated", "shared", "mixed")),
    Spec("hw:cpu_thread_policy", enum=("prefer", "isolate", "require")),
    Spec("hw:emulator_threads_policy", enum=("isolate", "share")),
    Spec("hw:cpu_realtime", bool),
    Spec("hw:cpu_realtime_mask", pattern=_CPU_MASK),
    Spec("hw:cpu_dedicated_mask", pattern=_CPU_MASK),
    Spec("hw:hide_hypervisor_id", bool),
    *_ints("hw:", ("cpu_sockets", "cpu_cores", "cpu_threads",
                   "cpu_max_sockets", "cpu_max_cores", "cpu_max_threads",
                   "numa_nodes"), minimum=1),
    Spec(r"hw:numa_cpus\.\d+", pattern=_CPU_MASK),
    Spec(r"hw:numa_mem\.\d+", int, minimum=0),
    Spec("hw:mem_page_size",
         pattern=r"(large|small|any|\d+([kKMGT]i?)?(b|bit|B)?)"),
    Spec("hw:mem_encryption", bool),
    Spec("hw:mem_encryption_model", enum=("amd-sev", "amd-sev-es")),
    Spec("hw:pmem", pattern=r"[a-zA-Z0-9_-]+(,[a-zA-Z0-9_-]+)*"),
    Spec("hw:pmu", bool),
    Spec("hw:serial_port_count", int, minimum=0),
    Spec("hw:tpm_model", enum=("tpm-tis", "tpm-crb")),
    Spec("hw:tpm_version", enum=("1.2", "2.0")),
    Spec("hw:watchdog_action",
         enum=("none", "pause", "poweroff", "reset", "disabled")),
    Spec("hw:boot_menu", bool),
    Spec("hw:vif_multiqueue_enabled", bool),
    Spec("hw:locked_memory", bool),
    Spec("hw:virtio_packed_ring", bool),
    Spec("hw:pci_numa_affinity_policy",
         enum=("required", "legacy", "preferred", "socket")),
    Spec("hw:maxphysaddr_mode", enum=("transparent", "emulate")),
    Spec("hw:maxphysaddr_bits", int, minimum=1),
    Spec("hw:viommu_model", enum=("intel", "smmuv3", "virtio", "auto")),
    Spec("hw:ephemeral_encryption", bool),
    Spec("hw:ephemeral_encryption_format", enum=("luks", "plain")),
    Spec("hw:stateless_firmware", bool),
    Spec("hw:sound_model", enum=("sb16", "es1370", "pcspk", "ac97",
                                 "ich6", "ich9", "usb", "virtio")),
    Spec("hw:usb_model", enum=("none", "auto", "piix3-uhci", "qemu-xhci",
                               "nec-xhci")),
    Spec("hw:redirected_usb_ports", int, minimum=0, maximum=15),
    # hw_rng:, hw_video:
    Spec("hw_rng:allowed", bool),
    Spec("hw_rng:rate_bytes", int, minimum=0),
    Spec("hw_rng:rate_period", int, minimum=0),
    Spec("hw_video:ram_max_mb", int, minimum=0),
    # os:
    Spec("os:secure_boot", enum=("required", "disabled", "optional")),
    Spec("os:monitors", int, minimum=1, maximum=8),
    Spec("os:resolution", enum=(
        "1024x768", "1280x1024", "1600x1200", "1920x1200", "2560x1600",
        "3840x2160")),
    Spec("os:vram", enum=("64", "128", "256", "512", "1024")),
    # quota: (libvirt's tuning and I/O limits, VMware's shares)
    *_ints("quota:", (
        "cpu_shares", "cpu_period", "cpu_quota", "cpu_limit",
        "cpu_reservation", "cpu_shares_share", "disk_read_bytes_sec",
        "disk_read_bytes_sec_max", "disk_read_iops_sec",
        "disk_read_iops_sec_max", "disk_write_bytes_sec",
        "disk_write_bytes_sec_max", "disk_write_iops_sec",
        "disk_write_iops_sec_max", "disk_total_bytes_sec",
        "disk_total_bytes_sec_max", "disk_total_iops_sec",
        "disk_total_iops_sec_max", "disk_read_bytes_sec_max_length",
        "disk_write_bytes_sec_max_length",
        "disk_total_bytes_sec_max_length",
        "disk_read_iops_sec_max_length", "disk_write_iops_sec_max_length",
        "disk_total_iops_sec_max_length", "size_iops_sec",
        "vif_inbound_average", "vif_inbound_peak", "vif_inbound_burst",
        "vif_outbound_average", "vif_outbound_peak", "vif_outbound_burst",
        "memory_limit", "memory_reservation", "memory_shares_share",
        "disk_io_limit", "disk_io_reservation", "disk_io_shares_share",
        "vif_limit", "vif_reservation", "vif_shares_share")),
    *[Spec(re.escape(f"quota:{n}_shares_level"),
           enum=("custom", "high", "normal", "low"))
      for n in ("cpu", "memory", "disk_io", "vif")],
    # resources{group}:{RESOURCE_CLASS} (placement amounts)
    Spec(rf"resources({_GROUP})?:[A-Z0-9_]{{1,255}}", int, minimum=0),
    # trait{group}:{TRAIT}
    Spec(rf"trait({_GROUP})?:[A-Z0-9_]{{1,255}}",
         enum=("required", "forbidden")),
    # group policies of the numbered groups
    Spec("group_policy", enum=("none", "isolate")),
    # accel:, pci_passthrough:
    Spec("accel:device_profile", pattern=r"[^:]{1,255}"),
    Spec("pci_passthrough:alias",
         pattern=r"[^:,]+:\d+(,[^:,]+:\d+)*"),
    # any key, any value: the scheduler filters compare them with hosts
    Spec(r"aggregate_instance_extra_specs:.+"),
    Spec(r"capabilities:.+"),
]

#: Namespaces whose keys must be known (the part before the first ':').
NAMESPACES = (
    "accel", "aggregate_instance_extra_specs", "capabilities", "hw",
    "hw_rng", "hw_video", "os", "pci_passthrough", "quota",
    rf"resources({_GROUP})?", rf"trait({_GROUP})?")

#: Keys without a parameter, looked up first (most keys are).
_EXACT = {s.name.replace("\\", ""): s for s in SPECS
          if re.escape(s.name.replace("\\", "")) == s.name}
_COMPILED = [(re.compile(s.name), s) for s in SPECS
             if s.name.replace("\\", "") not in _EXACT]
_NAMESPACES = [re.compile(n) for n in NAMESPACES]


def validate(key: str, value: str) -> None:
    """400 when ``key`` belongs to a known namespace but
    is not a known key of it, or its ``value`` is of the wrong kind."""
    spec = _EXACT.get(key)
    if spec is None:
        for pattern, candidate in _COMPILED:
            if pattern.fullmatch(key):
                spec = candidate
                break
    if spec is not None:
        spec.check(key, value)
        return
    if ":" not in key:
        return
    namespace = key.split(":", 1)[0]
    if any(n.fullmatch(namespace) for n in _NAMESPACES):
        _fail(f"extra spec '{key}' does not appear to be a valid extra "
              f"spec.")


def validate_all(specs: dict[str, str]) -> None:
    for key, value in specs.items():
        validate(key, value)
