"""Domain XML from the attrs config objects, checked on the parsed
XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from twisted.trial.unittest import SynchronousTestCase

from twisted_compute.virt.libvirt import config as vconfig

UUID = "5c5b2f57-8f8b-4f34-9a5e-2b8a3d0f6d11"


def parse(domain: vconfig.Domain) -> ET.Element:
    return ET.fromstring(vconfig.render(domain))


def domain(**kw) -> vconfig.Domain:
    values = dict(virt_type="qemu", name="instance-0000002a", uuid=UUID,
                  memory_mb=512, vcpus=2)
    values.update(kw)
    return vconfig.Domain(**values)


class DomainXMLTests(SynchronousTestCase):

    def test_basics(self):
        root = parse(domain())
        self.assertEqual(root.tag, "domain")
        self.assertEqual(root.get("type"), "qemu")
        self.assertEqual(root.findtext("name"), "instance-0000002a")
        self.assertEqual(root.findtext("uuid"), UUID)
        memory = root.find("memory")
        self.assertEqual((memory.get("unit"), memory.text),
                         ("KiB", str(512 * 1024)))
        self.assertEqual(root.findtext("vcpu"), "2")
        self.assertIsNotNone(root.find("features/acpi"))
        self.assertEqual(root.findtext("on_crash"), "destroy")

    def test_values_are_escaped_not_templated(self):
        root = parse(domain(name="a<b>&'\"", metadata={
            "display_name": "</name><evil/>"}))
        self.assertEqual(root.findtext("name"), "a<b>&'\"")
        self.assertIsNone(root.find(".//evil"))
        self.assertEqual(root.findtext(
            "metadata/{%s}instance/{%s}display_name"
            % (vconfig.NAMESPACE, vconfig.NAMESPACE)), "</name><evil/>")

    def test_sysinfo_smbios(self):
        root = parse(domain(sysinfo=vconfig.Sysinfo(serial=UUID, uuid=UUID)))
        sysinfo = root.find("sysinfo")
        self.assertEqual(sysinfo.get("type"), "smbios")
        entries = {e.get("name"): e.text
                   for e in sysinfo.findall("system/entry")}
        self.assertEqual(entries["manufacturer"], "OpenStack Foundation")
        self.assertEqual(entries["product"], "OpenStack Nova")
        self.assertEqual(entries["serial"], UUID)
        self.assertEqual(entries["uuid"], UUID)
        self.assertEqual(root.find("os/smbios").get("mode"), "sysinfo")

    def test_boot_from_disk(self):
        root = parse(domain(os=vconfig.OS(arch="x86_64")))
        self.assertEqual(root.find("os/type").get("arch"), "x86_64")
        self.assertEqual(root.findtext("os/type"), "hvm")
        self.assertEqual([b.get("dev") for b in root.findall("os/boot")],
                         ["hd"])
        self.assertIsNone(root.find("os/kernel"))

    def test_direct_kernel_boot(self):
        root = parse(domain(os=vconfig.OS(
            kernel="/i/kernel", initrd="/i/ramdisk",
            cmdline="root=/dev/vda console=ttyS0")))
        self.assertEqual(root.findtext("os/kernel"), "/i/kernel")
        self.assertEqual(root.findtext("os/initrd"), "/i/ramdisk")
        self.assertEqual(root.findtext("os/cmdline"),
                         "root=/dev/vda console=ttyS0")
        self.assertEqual(root.findall("os/boot"), [])

    def test_disks_and_config_drive(self):
        root = parse(domain(disks=[
            vconfig.Disk("/i/disk", "vda"),
            vconfig.Disk("/i/disk.config", "hdc", target_bus="ide",
                         device="cdrom", driver_type="raw", cache=None)]))
        disks = root.findall("devices/disk")
        self.assertEqual(len(disks), 2)
        root_disk, cdrom = disks
        self.assertEqual((root_disk.get("device"),
                          root_disk.find("driver").get("type"),
                          root_disk.find("source").get("file"),
                          root_disk.find("target").get("dev"),
                          root_disk.find("target").get("bus")),
                         ("disk", "qcow2", "/i/disk", "vda", "virtio"))
        self.assertIsNone(root_disk.find("readonly"))
        self.assertEqual((cdrom.get("device"),
                          cdrom.find("driver").get("type"),
                          cdrom.find("target").get("dev"),
                          cdrom.find("target").get("bus")),
                         ("cdrom", "raw", "hdc", "ide"))
        self.assertIsNotNone(cdrom.find("readonly"))

    def test_interface_on_a_network(self):
        root = parse(domain(interfaces=[
            vconfig.Interface("default", "fa:16:3e:00:00:01")]))
        nic = root.find("devices/interface")
        self.assertEqual(nic.get("type"), "network")
        self.assertEqual(nic.find("source").get("network"), "default")
        self.assertEqual(nic.find("mac").get("address"),
                         "fa:16:3e:00:00:01")
        self.assertEqual(nic.find("model").get("type"), "virtio")

    def test_serial_console_to_a_file(self):
        root = parse(domain(serials=[vconfig.SerialLog("/i/console.log")]))
        serial = root.find("devices/serial")
        self.assertEqual(serial.get("type"), "file")
        self.assertEqual(serial.find("source").get("path"), "/i/console.log")
        console = root.find("devices/console")
        self.assertEqual(console.find("target").get("type"), "serial")

    def test_cpu_modes(self):
        self.assertIsNone(parse(domain(cpu=vconfig.CPU("none"))).find("cpu"))
        cpu = parse(domain(cpu=vconfig.CPU("host-model"))).find("cpu")
        self.assertEqual(cpu.get("mode"), "host-model")
        cpu = parse(domain(cpu=vconfig.CPU("custom", "Haswell"))).find("cpu")
        self.assertEqual((cpu.get("mode"), cpu.findtext("model")),
                         ("custom", "Haswell"))
        self.assertRaises(ValueError, vconfig.CPU, "custom")
        self.assertRaises(ValueError, vconfig.CPU, "turbo")

    def test_bad_sizes_refused(self):
        self.assertRaises(ValueError, domain, memory_mb=0)
        self.assertRaises(ValueError, domain, vcpus=0)


class ConsoleDeviceTests(SynchronousTestCase):
    def test_tcp_serial_with_its_log_and_vnc(self):
        root = parse(domain(serials=[vconfig.SerialLog(
            "/i/console.log", tcp=("192.0.2.1", 10005))],
            graphics=vconfig.VNCGraphics("0.0.0.0")))
        serial = root.find("devices/serial")
        self.assertEqual(serial.get("type"), "tcp")
        self.assertEqual((serial.find("source").get("mode"),
                          serial.find("source").get("host"),
                          serial.find("source").get("service")),
                         ("bind", "192.0.2.1", "10005"))
        self.assertEqual(serial.find("log").get("file"), "/i/console.log")
        self.assertEqual(serial.find("protocol").get("type"), "raw")
        graphics = root.find("devices/graphics")
        self.assertEqual((graphics.get("type"), graphics.get("autoport"),
                          graphics.get("listen")), ("vnc", "yes", "0.0.0.0"))
