"""libvirt domain XML, built from attrs values and rendered with
:mod:`xml.etree.ElementTree` (no string templates: every value is
escaped by the serializer, and tests parse what comes out).

:func:`render` turns a :class:`Domain` into the XML text that
``virConnect.defineXML`` takes.  Only what the driver uses is modelled:
memory and vCPUs, the CPU mode, ``<os>`` (boot from disk, or direct
kernel boot with kernel, initrd and command line; SMBIOS from
``<sysinfo>``), disks (file-backed disks and CD-ROMs), network
interfaces on a libvirt network, serial consoles logged to a file.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Sequence

import attrs

from twisted_compute.conf.libvirt import CPU_MODES  # ``[libvirt] cpu_mode``


def _text(parent: ET.Element, tag: str, text, **attrib) -> ET.Element:
    element = ET.SubElement(parent, tag, {k: str(v)
                                          for k, v in attrib.items()})
    if text is not None:
        element.text = str(text)
    return element


@attrs.frozen
class Sysinfo:
    """SMBIOS system information the guest reads from
    ``/sys/class/dmi/id`` (cloud-init's OpenStack detection looks at
    ``product_name``)."""

    manufacturer: str = "OpenStack Foundation"
    product: str = "OpenStack Nova"
    version: str | None = None
    serial: str | None = None
    uuid: str | None = None
    family: str = "Virtual Machine"

    def to_xml(self) -> ET.Element:
        sysinfo = ET.Element("sysinfo", type="smbios")
        system = ET.SubElement(sysinfo, "system")
        for name in ("manufacturer", "product", "version", "serial",
                     "uuid", "family"):
            value = getattr(self, name)
            if value:
                _text(system, "entry", value, name=name)
        return sysinfo


@attrs.frozen
class OS:
    """``<os>``: boot from the first disk, or direct kernel boot when
    ``kernel`` is set."""

    type: str = "hvm"
    arch: str | None = None
    machine: str | None = None
    kernel: str | None = None
    initrd: str | None = None
    cmdline: str | None = None
    boot_devices: tuple[str, ...] = ("hd",)
    smbios_sysinfo: bool = True

    def to_xml(self) -> ET.Element:
        os_element = ET.Element("os")
        type_attrs = {}
        if self.arch:
            type_attrs["arch"] = self.arch
        if self.machine:
            type_attrs["machine"] = self.machine
        _text(os_element, "type", self.type, **type_attrs)
        if self.kernel:
            _text(os_element, "kernel", self.kernel)
            if self.initrd:
                _text(os_element, "initrd", self.initrd)
            if self.cmdline:
                _text(os_element, "cmdline", self.cmdline)
        else:
            for device in self.boot_devices:
                _text(os_element, "boot", None, dev=device)
        if self.smbios_sysinfo:
            _text(os_element, "smbios", None, mode="sysinfo")
        return os_element


@attrs.frozen
class CPU:
    """``<cpu>``; mode ``none`` renders nothing (the hypervisor's
    default CPU)."""

    mode: str = attrs.field(default="host-model",
                            validator=attrs.validators.in_(CPU_MODES))
    model: str | None = None

    def __attrs_post_init__(self):
        if self.mode == "custom" and not self.model:
            raise ValueError("cpu mode 'custom' needs a CPU model")

    def to_xml(self) -> ET.Element | None:
        if self.mode == "none":
            return None
        cpu = ET.Element("cpu", mode=self.mode)
        if self.mode == "custom":
            cpu.set("match", "exact")
            _text(cpu, "model", self.model, fallback="allow")
        return cpu


@attrs.frozen
class Disk:
    """A file-backed disk or CD-ROM."""

    source_path: str
    target_dev: str
    target_bus: str = "virtio"
    device: str = attrs.field(default="disk",
                              validator=attrs.validators.in_(
                                  ("disk", "cdrom")))
    driver_type: str = "qcow2"
    readonly: bool = False
    cache: str | None = "none"

    def to_xml(self) -> ET.Element:
        disk = ET.Element("disk", type="file", device=self.device)
        driver = {"name": "qemu", "type": self.driver_type}
        if self.cache:
            driver["cache"] = self.cache
        _text(disk, "driver", None, **driver)
        _text(disk, "source", None, file=self.source_path)
        _text(disk, "target", None, dev=self.target_dev, bus=self.target_bus)
        if self.readonly or self.device == "cdrom":
            _text(disk, "readonly", None)
        return disk


@attrs.frozen
class Interface:
    """A NIC on a libvirt network."""

    network: str
    mac: str
    model: str = "virtio"

    def to_xml(self) -> ET.Element:
        interface = ET.Element("interface", type="network")
        _text(interface, "mac", None, address=self.mac)
        _text(interface, "source", None, network=self.network)
        _text(interface, "model", None, type=self.model)
        return interface


@attrs.frozen
class SerialLog:
    """A serial port (and the console on it) written to a file: the
    guest's console log."""

    path: str
    port: int = 0
    #: ``(address, port)`` of a TCP server socket qemu binds for the
    #: interactive serial console, the log still written to ``path``
    #: (libvirt's ``<log file=.../>``, as Nova's); None: a file only.
    tcp: tuple[str, int] | None = None

    def to_xml(self) -> list[ET.Element]:
        if self.tcp is not None:
            host, service = self.tcp
            serial = ET.Element("serial", type="tcp")
            _text(serial, "source", None, mode="bind", host=host,
                  service=str(service))
            _text(serial, "protocol", None, type="raw")
            _text(serial, "log", None, file=self.path, append="on")
            _text(serial, "target", None, port=self.port)
            return [serial]
        serial = ET.Element("serial", type="file")
        _text(serial, "source", None, path=self.path)
        _text(serial, "target", None, port=self.port)
        console = ET.Element("console", type="file")
        _text(console, "source", None, path=self.path)
        _text(console, "target", None, type="serial", port=self.port)
        return [serial, console]


@attrs.frozen
class VNCGraphics:
    """A VNC server on the guest's display, on a port libvirt picks at
    start (read back from the live XML), bound to ``listen``."""

    listen: str

    def to_xml(self) -> ET.Element:
        graphics = ET.Element("graphics", type="vnc", autoport="yes",
                              listen=self.listen)
        _text(graphics, "listen", None, type="address", address=self.listen)
        return graphics


@attrs.frozen
class Domain:
    """A guest.  ``virt_type`` is libvirt's domain type: ``kvm``,
    ``qemu`` or ``test``."""

    virt_type: str
    name: str
    uuid: str
    memory_mb: int = attrs.field(validator=attrs.validators.ge(1))
    vcpus: int = attrs.field(validator=attrs.validators.ge(1))
    os: OS = attrs.field(factory=OS)
    cpu: CPU | None = None
    sysinfo: Sysinfo | None = None
    disks: Sequence[Disk] = ()
    interfaces: Sequence[Interface] = ()
    serials: Sequence[SerialLog] = ()
    graphics: VNCGraphics | None = None
    metadata: dict[str, str] = attrs.field(factory=dict)
    #: Emulator binary; None lets libvirt pick one from its capabilities.
    emulator: str | None = None
    #: A virtio channel for the QEMU guest agent (the image's
    #: ``hw_qemu_guest_agent=yes``): passwords are set through it.
    guest_agent: bool = False

    def to_xml(self) -> ET.Element:
        domain = ET.Element("domain", type=self.virt_type)
        _text(domain, "name", self.name)
        _text(domain, "uuid", self.uuid)
        if self.metadata:
            metadata = ET.SubElement(domain, "metadata")
            instance = ET.SubElement(
                metadata, "{%s}instance" % NAMESPACE)
            for key, value in sorted(self.metadata.items()):
                _text(instance, "{%s}%s" % (NAMESPACE, key), value)
        _text(domain, "memory", self.memory_mb * 1024, unit="KiB")
        _text(domain, "currentMemory", self.memory_mb * 1024, unit="KiB")
        _text(domain, "vcpu", self.vcpus)
        if self.sysinfo is not None:
            domain.append(self.sysinfo.to_xml())
        domain.append(self.os.to_xml())
        features = ET.SubElement(domain, "features")
        ET.SubElement(features, "acpi")
        ET.SubElement(features, "apic")
        if self.cpu is not None:
            cpu = self.cpu.to_xml()
            if cpu is not None:
                domain.append(cpu)
        _text(domain, "clock", None, offset="utc")
        _text(domain, "on_poweroff", "destroy")
        _text(domain, "on_reboot", "restart")
        _text(domain, "on_crash", "destroy")
        devices = ET.SubElement(domain, "devices")
        if self.emulator:
            _text(devices, "emulator", self.emulator)
        for disk in self.disks:
            devices.append(disk.to_xml())
        for interface in self.interfaces:
            devices.append(interface.to_xml())
        for serial in self.serials:
            devices.extend(serial.to_xml())
        if self.guest_agent:
            channel = ET.SubElement(devices, "channel", type="unix")
            _text(channel, "source", None, mode="bind")
            _text(channel, "target", None, type="virtio",
                  name=GUEST_AGENT_CHANNEL)
        if self.graphics is not None:
            devices.append(self.graphics.to_xml())
        if self.virt_type != "test":
            # The balloon libvirt would add anyway, named so that the
            # XML read back matches.
            _text(devices, "memballoon", None, model="virtio")
        return domain


#: The name of the QEMU guest agent's virtio channel.
GUEST_AGENT_CHANNEL = "org.qemu.guest_agent.0"

#: XML namespace of the instance metadata in ``<metadata>``.
NAMESPACE = "http://twisted-compute.invalid/xmlns/libvirt/instance/1.0"
ET.register_namespace("tc", NAMESPACE)


def render(domain: Domain) -> str:
    """The domain XML text of ``domain``."""
    element = domain.to_xml()
    ET.indent(element)
    return ET.tostring(element, encoding="unicode")


__all__ = ["CPU", "CPU_MODES", "Disk", "Domain", "Interface", "NAMESPACE",
           "OS", "SerialLog", "Sysinfo", "VNCGraphics", "render"]
