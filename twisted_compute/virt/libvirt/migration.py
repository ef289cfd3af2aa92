"""The pieces of a libvirt move that are not libvirt calls: domain XML
moved to another instance directory and flavor, where another host
keeps its files and how they get there, and the live migration's URI,
flags, parameters and progress.

Cold moves (resize, cold migration) go as Nova's do:

* the source stops the guest, keeps its domain XML in the instance
  directory as ``domain.xml``, renames the directory to
  ``<uuid>_resize`` and copies its files to ``<uuid>`` in the
  destination's ``images_path`` (:func:`copy_commands`) with a
  :data:`MARKER` file saying where they came from;
* the destination rebases the qcow2 overlay onto its own image cache
  (``qemu-img rebase -u``), grows it to the new root disk, and defines
  the domain from the copied XML (:func:`moved_domain_xml`);
* confirm deletes ``<uuid>_resize``; revert deletes the destination's
  copy and the source renames ``<uuid>_resize`` back and defines its
  old XML again.

Two agents sharing one libvirtd see the same domain (a domain is its
uuid): whose it is says the ``<tc:host>`` of its metadata, which the
destination rewrites when it defines the moved domain.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from typing import Any

import attrs

from twisted_compute.virt.libvirt import config as vconfig

#: The file a copy of an instance directory carries: JSON with the
#: source host and directories (a directory without it is no copy, and
#: is never deleted by a revert).
MARKER = "migrated.json"
#: The source's domain XML, kept in its directory for a revert and
#: copied to the destination.
DOMAIN_XML = "domain.xml"
#: Suffix of the source's instance directory while a move is unconfirmed.
RESIZE_SUFFIX = "_resize"


def parse_host_map(text: str) -> dict[str, str]:
    """``host=value,host=value`` -> dict (blanks ignored)."""
    result = {}
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        host, sep, value = item.partition("=")
        if not sep or not host.strip() or not value.strip():
            raise ValueError(f"{item!r} is not host=value")
        result[host.strip()] = value.strip()
    return result


def _replace_prefix(value: str, old: str, new: str) -> str:
    if value == old:
        return new
    if value.startswith(old + "/"):
        return new + value[len(old):]
    return value


def moved_domain_xml(xml: str, old_dir: str, new_dir: str, *,
                     host: str | None = None, memory_mb: int | None = None,
                     vcpus: int | None = None) -> str:
    """The domain of ``xml`` with every file under ``old_dir`` (disks,
    kernel, initrd, console log) under ``new_dir``, its metadata's host
    set to ``host`` and its memory and vCPUs to the new flavor's.
    ``<backingStore>`` elements are dropped: libvirt reads the chain
    from the moved overlay."""
    root = ET.fromstring(xml)
    for element in root.iter():
        for key, value in list(element.attrib.items()):
            element.set(key, _replace_prefix(value, old_dir, new_dir))
        if element.text and element.text.strip() and len(element) == 0:
            element.text = _replace_prefix(element.text, old_dir, new_dir)
    for disk in root.findall("devices/disk"):
        for child in disk.findall("backingStore"):
            disk.remove(child)
    if memory_mb:
        kib = str(int(memory_mb) * 1024)
        for tag in ("memory", "currentMemory"):
            element = root.find(tag)
            if element is None:
                element = ET.SubElement(root, tag)
            element.text = kib
            element.set("unit", "KiB")
    if vcpus:
        element = root.find("vcpu")
        if element is None:
            element = ET.SubElement(root, "vcpu")
        element.text = str(int(vcpus))
        # A vcpus list or NUMA cells sized for the old flavor would not
        # fit the new count.
        for tag in ("vcpus", "cputune"):
            for child in root.findall(tag):
                root.remove(child)
    if host is not None:
        metadata = root.find("metadata")
        if metadata is None:
            metadata = ET.SubElement(root, "metadata")
        instance = metadata.find("{%s}instance" % vconfig.NAMESPACE)
        if instance is None:
            instance = ET.SubElement(metadata,
                                     "{%s}instance" % vconfig.NAMESPACE)
        element = instance.find("{%s}host" % vconfig.NAMESPACE)
        if element is None:
            element = ET.SubElement(instance, "{%s}host" % vconfig.NAMESPACE)
        element.text = host
    return ET.tostring(root, encoding="unicode")


def domain_host(xml: str) -> str | None:
    """The ``<tc:host>`` of a domain's metadata, or None."""
    element = ET.fromstring(xml).find(
        "metadata/{%s}instance/{%s}host" % (vconfig.NAMESPACE,
                                            vconfig.NAMESPACE))
    return element.text if element is not None else None


def domain_memory_vcpus(xml: str) -> tuple[int, int]:
    """``(memory MiB, vCPUs)`` of a domain XML."""
    root = ET.fromstring(xml)
    memory = root.find("memory")
    kib = int(memory.text)
    unit = (memory.get("unit") or "KiB").lower()
    factor = {"kib": 1, "k": 1, "mib": 1024, "m": 1024, "gib": 1024 ** 2,
              "g": 1024 ** 2, "b": 1 / 1024, "bytes": 1 / 1024}[unit]
    return int(kib * factor // 1024), int(root.findtext("vcpu") or 1)


def writable_disks(xml: str) -> list[str]:
    """Target devices of a domain's disks that a block migration copies
    (``device='disk'``, not read-only: the root and ephemeral disks, not
    the config drive)."""
    targets = []
    for disk in ET.fromstring(xml).findall("devices/disk"):
        target = disk.find("target")
        if disk.get("device", "disk") == "disk" and \
                disk.find("readonly") is None and target is not None:
            targets.append(target.get("dev"))
    return targets


def copy_commands(transport: str, dest_host: str, files: list[str],
                  dest_dir: str) -> list[list[str]]:
    """The commands that copy ``files`` into ``dest_dir`` on
    ``dest_host`` over ``ssh`` (scp) or ``rsync``; ``local`` copies are
    made in a thread, not by a command (empty list)."""
    if transport == "local":
        return []
    mkdir = ["ssh", "-o", "BatchMode=yes", dest_host, "mkdir", "-p",
             dest_dir]
    if transport == "rsync":
        return [mkdir, ["rsync", "-a", "--sparse", "-e",
                        "ssh -o BatchMode=yes", *files,
                        f"{dest_host}:{dest_dir}/"]]
    return [mkdir, ["scp", "-B", "-p", *files, f"{dest_host}:{dest_dir}/"]]


# --- live migration -------------------------------------------------------

def live_migration_uri(options, dest: str) -> str:
    """The libvirt URI of ``dest``: ``host_live_migration_uris``, else
    ``live_migration_uri`` with ``%s`` the host, else
    ``qemu+<scheme>://<host>/system``."""
    uris = parse_host_map(options.host_live_migration_uris)
    if dest in uris:
        return uris[dest]
    template = options.live_migration_uri or \
        f"qemu+{options.live_migration_scheme or 'tcp'}://%s/system"
    return template % dest if "%s" in template else template


def inbound_address(options, dest: str) -> str | None:
    """Where QEMU sends the migration stream (``VIR_MIGRATE_PARAM_URI``
    ``tcp://addr``), or None for libvirt's choice."""
    address = parse_host_map(options.host_live_migration_addrs).get(dest)
    if address is None:
        return None
    if "://" in address:
        return address
    return f"tcp://{address}"


def live_migration_flags(libvirt, options, block_migration: bool) -> int:
    flags = (libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER
             | libvirt.VIR_MIGRATE_PERSIST_DEST
             | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE)
    if block_migration:
        flags |= libvirt.VIR_MIGRATE_NON_SHARED_INC
    if options.live_migration_tunnelled:
        flags |= libvirt.VIR_MIGRATE_TUNNELLED
    if options.live_migration_permit_post_copy:
        flags |= libvirt.VIR_MIGRATE_POSTCOPY
    elif options.live_migration_permit_auto_converge:
        flags |= libvirt.VIR_MIGRATE_AUTO_CONVERGE
    return flags


def live_migration_params(libvirt, options, dest: str, dest_xml: str,
                          block_disks: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {libvirt.VIR_MIGRATE_PARAM_DEST_XML: dest_xml,
                              libvirt.VIR_MIGRATE_PARAM_PERSIST_XML: dest_xml}
    if options.live_migration_bandwidth:
        params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] = \
            int(options.live_migration_bandwidth)
    address = inbound_address(options, dest)
    if address and not options.live_migration_tunnelled:
        params[libvirt.VIR_MIGRATE_PARAM_URI] = address
    if block_disks:
        params[libvirt.VIR_MIGRATE_PARAM_MIGRATE_DISKS] = list(block_disks)
    return params


@attrs.define
class Progress:
    """A live migration's counters (bytes), as the migrations API shows
    them."""

    memory_total: int = 0
    memory_processed: int = 0
    memory_remaining: int = 0
    disk_total: int = 0
    disk_processed: int = 0
    disk_remaining: int = 0

    def update(self, stats: dict[str, Any]) -> None:
        """From ``virDomainGetJobStats``'s dict (empty between jobs)."""
        for name in ("memory_total", "memory_processed", "memory_remaining",
                     "disk_total", "disk_processed", "disk_remaining"):
            if name in stats:
                setattr(self, name, int(stats[name]))

    def completed(self) -> None:
        self.memory_processed = max(self.memory_processed,
                                    self.memory_total)
        self.memory_remaining = 0
        self.disk_processed = max(self.disk_processed, self.disk_total)
        self.disk_remaining = 0

    def to_dict(self) -> dict[str, int]:
        return attrs.asdict(self)


def completion_deadline(options, memory_bytes: int,
                        disk_bytes: int) -> float | None:
    """Seconds after which the timeout action applies (Nova: the
    completion timeout is per GiB of data, at least one), or None."""
    per_gib = options.live_migration_completion_timeout
    if not per_gib:
        return None
    gib = (memory_bytes + disk_bytes) / (1024 ** 3)
    return float(per_gib) * max(1.0, gib)


def instance_dir_of(images_path: str, uuid: str) -> str:
    return os.path.join(images_path, uuid)


__all__ = ["DOMAIN_XML", "MARKER", "Progress", "RESIZE_SUFFIX",
           "completion_deadline", "copy_commands", "domain_host",
           "domain_memory_vcpus", "inbound_address", "live_migration_flags",
           "live_migration_params", "live_migration_uri", "moved_domain_xml",
           "parse_host_map"]
