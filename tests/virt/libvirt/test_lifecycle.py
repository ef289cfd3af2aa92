"""The libvirt driver's rebuild, rescue / unrescue, NMI and guest-agent
password on test:///default, with real images from a loopback image API
(as :mod:`.test_spawn_image`)."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET

from twisted.trial.unittest import SynchronousTestCase

from tests.virt.libvirt.base import make_instance
from twisted.trial.unittest import TestCase

from tests.virt.libvirt import test_spawn_image
from twisted_compute.virt.libvirt import config as vconfig
from twisted_compute.virt.libvirt import driver as driver_mod


class LifecycleWithImageTests(TestCase):
    #: the image API, driver and qcow2 image of the spawn tests
    setUp = test_spawn_image.SpawnWithImageTests.setUp

    def xml(self, instance):
        return ET.fromstring(
            self.conn.lookupByUUIDString(instance.uuid).XMLDesc(0))

    async def spawned(self, image):
        instance = make_instance(root_gb=1)
        await self.driver.spawn(None, instance, image, [], None, [], None)
        self.addCleanup(self.driver.destroy, None, instance, [])
        return instance

    async def test_rebuild_keeps_uuid_mac_and_ip_with_a_new_overlay(self):
        first = self.api.add(self.qcow2, disk_format="qcow2")
        second = self.api.add(self.qcow2, disk_format="qcow2",
                              properties={"hw_qemu_guest_agent": "yes"})
        instance = await self.spawned(first)
        before = await self.driver.get_instance_addresses(instance)
        mac = self.xml(instance).find("devices/interface/mac").get(
            "address")
        await self.driver.rebuild(None, instance, second, [], None)
        root = self.xml(instance)
        self.assertEqual(root.findtext("uuid"), instance.uuid)
        self.assertEqual(root.find("devices/interface/mac").get("address"),
                         mac)
        self.assertEqual(await self.driver.get_instance_addresses(instance),
                         before)
        from twisted.internet import reactor
        info = await driver_mod.imagecache.image_info(
            reactor,
            os.path.join(self.driver.instance_dir(instance.uuid), "disk"),
            "qcow2")
        self.assertEqual(info["backing-filename"],
                         self.driver.image_cache.path(second["id"]))
        # the new image asks for the guest agent: its channel is there
        self.assertTrue(driver_mod.has_guest_agent(
            self.conn.lookupByUUIDString(instance.uuid).XMLDesc(0)))

    async def test_rebuild_preserve_ephemeral_keeps_only_that_disk(self):
        from twisted.internet import reactor
        image = self.api.add(self.qcow2, disk_format="qcow2")
        instance = make_instance(root_gb=1, ephemeral_gb=1)
        await self.driver.spawn(None, instance, image, [], None, [], None)
        self.addCleanup(self.driver.destroy, None, instance, [])
        directory = self.driver.instance_dir(instance.uuid)
        local = os.path.join(directory, "disk.local")
        disks = {d.find("target").get("dev"): d.find("source").get("file")
                 for d in self.xml(instance).findall("devices/disk")
                 if d.get("device") == "disk"}
        self.assertEqual(disks, {"vda": os.path.join(directory, "disk"),
                                 "vdb": local})

        async def size(path):
            info = await driver_mod.imagecache.image_info(reactor, path,
                                                          "qcow2")
            return info["virtual-size"] >> 30
        self.assertEqual(await size(local), 1)
        # mark the ephemeral disk (a 2 GiB one stands for its data)
        await driver_mod.imagecache.run_qemu_img(
            reactor, "create", "-f", "qcow2", local, "2G")
        await self.driver.rebuild(None, instance, image, [], None,
                                  preserve_ephemeral=True)
        self.assertEqual(await size(local), 2)
        self.assertTrue(os.path.exists(os.path.join(directory, "disk")))
        # without it the ephemeral disk is made again, empty
        await self.driver.rebuild(None, instance, image, [], None,
                                  preserve_ephemeral=False)
        self.assertEqual(await size(local), 1)

    async def test_rescue_boots_the_rescue_disk_first_and_unrescue_back(
            self):
        image = self.api.add(self.qcow2, disk_format="qcow2")
        rescue = self.api.add(self.qcow2, disk_format="qcow2")
        instance = await self.spawned(image)
        directory = self.driver.instance_dir(instance.uuid)
        await self.driver.rescue(None, instance, rescue, "pw")
        disks = {d.find("target").get("dev"): d.find("source").get("file")
                 for d in self.xml(instance).findall("devices/disk")
                 if d.get("device") == "disk"}
        self.assertEqual(disks, {
            "vda": os.path.join(directory, "disk.rescue"),
            "vdb": os.path.join(directory, "disk")})
        self.assertTrue(self.conn.lookupByUUIDString(instance.uuid)
                        .isActive())
        await self.driver.unrescue(None, instance)
        disks = {d.find("target").get("dev"): d.find("source").get("file")
                 for d in self.xml(instance).findall("devices/disk")
                 if d.get("device") == "disk"}
        self.assertEqual(disks, {"vda": os.path.join(directory, "disk")})
        self.assertFalse(os.path.exists(os.path.join(directory,
                                                     "disk.rescue")))
        self.assertFalse(os.path.exists(os.path.join(directory,
                                                     "unrescue.xml")))


    def disks(self, instance):
        return {d.find("target").get("dev"):
                (d.get("device"), d.find("target").get("bus"),
                 os.path.basename(d.find("source").get("file")),
                 d.find("boot").get("order") if d.find("boot") is not None
                 else None)
                for d in self.xml(instance).findall("devices/disk")}

    async def test_stable_device_rescue_and_a_rescue_config_drive(self):
        image = self.api.add(self.qcow2, disk_format="qcow2")
        rescue = self.api.add(self.qcow2, disk_format="qcow2", properties={
            "hw_rescue_device": "cdrom", "hw_rescue_bus": "scsi"})
        instance = make_instance(root_gb=1, ephemeral_gb=1,
                                 config_drive="True")
        await self.driver.spawn(None, instance, image, [], "pw0", [], None)
        self.addCleanup(self.driver.destroy, None, instance, [])
        before = self.disks(instance)
        await self.driver.rescue(None, instance, rescue, "rescue-pw")
        # every disk where it was, the rescue disk last, booting first
        self.assertEqual(self.disks(instance), {
            "vda": ("disk", "virtio", "disk", "2"),
            "vdb": ("disk", "virtio", "disk.local", None),
            "hdc": ("cdrom", "ide", "disk.config.rescue", None),
            "sda": ("cdrom", "scsi", "disk.rescue", "1")})
        self.assertIsNone(self.xml(instance).find("os/boot"))
        directory = self.driver.instance_dir(instance.uuid)
        self.assertTrue(os.path.exists(os.path.join(directory,
                                                    "disk.config.rescue")))
        await self.driver.unrescue(None, instance)
        self.assertEqual(self.disks(instance), before)
        self.assertFalse(os.path.exists(os.path.join(directory,
                                                     "disk.config.rescue")))

    async def test_legacy_rescue_leaves_the_ephemeral_disk_out(self):
        image = self.api.add(self.qcow2, disk_format="qcow2")
        instance = make_instance(root_gb=1, ephemeral_gb=1)
        await self.driver.spawn(None, instance, image, [], None, [], None)
        self.addCleanup(self.driver.destroy, None, instance, [])
        await self.driver.rescue(None, instance, image, "pw")
        disks = self.disks(instance)
        self.assertEqual({dev: disks[dev][2] for dev in disks},
                         {"vda": "disk.rescue", "vdb": "disk"})

    async def test_default_rescue_image_is_the_option_else_the_own(self):
        from twisted.internet import reactor
        own = self.api.add(self.qcow2, disk_format="qcow2")
        chosen = self.api.add(self.qcow2, disk_format="qcow2")
        instance = make_instance(root_gb=1, image_ref=own["id"])
        await self.driver.spawn(None, instance, own, [], None, [], None)
        self.addCleanup(self.driver.destroy, None, instance, [])
        rescue_disk = os.path.join(
            self.driver.instance_dir(instance.uuid), "disk.rescue")

        async def backing():
            info = await driver_mod.imagecache.image_info(
                reactor, rescue_disk, "qcow2")
            return info["backing-filename"]
        await self.driver.rescue(None, instance, {}, "pw")
        self.assertEqual(await backing(),
                         self.driver.image_cache.path(own["id"]))
        await self.driver.unrescue(None, instance)
        self.driver.conf = self.driver.conf.with_overrides(
            libvirt={"rescue_image_id": chosen["id"]})
        await self.driver.rescue(None, instance, {}, "pw")
        self.assertEqual(await backing(),
                         self.driver.image_cache.path(chosen["id"]))


class DomainXMLTests(SynchronousTestCase):
    def test_guest_agent_channel(self):
        domain = vconfig.Domain(virt_type="qemu", name="i", uuid="u" * 8,
                                memory_mb=64, vcpus=1, guest_agent=True)
        xml = vconfig.render(domain)
        self.assertTrue(driver_mod.has_guest_agent(xml))
        self.assertFalse(driver_mod.has_guest_agent(vconfig.render(
            vconfig.Domain(virt_type="qemu", name="i", uuid="u" * 8,
                           memory_mb=64, vcpus=1))))

    def test_rescue_xml_swaps_disks_and_kernel(self):
        domain = vconfig.Domain(
            virt_type="qemu", name="i", uuid="u" * 8, memory_mb=64, vcpus=1,
            os=vconfig.OS(arch="x86_64", kernel="/i/kernel",
                          initrd="/i/ramdisk", cmdline="console=ttyS0"),
            disks=[vconfig.Disk(source_path="/i/disk", target_dev="vda")])
        xml = vconfig.render(domain)
        root = ET.fromstring(driver_mod.rescue_domain_xml(
            xml, "/i/disk.rescue", "/i/kernel.rescue", None))
        self.assertEqual(
            [(d.find("target").get("dev"), d.find("source").get("file"))
             for d in root.findall("devices/disk")],
            [("vda", "/i/disk.rescue"), ("vdb", "/i/disk")])
        self.assertEqual(root.findtext("os/kernel"), "/i/kernel.rescue")
        self.assertIsNone(root.find("os/initrd"))
        self.assertEqual(root.findtext("os/cmdline"), "console=ttyS0")
        plain = ET.fromstring(driver_mod.rescue_domain_xml(
            xml, "/i/disk.rescue"))
        self.assertIsNone(plain.find("os/kernel"))

    def test_stable_rescue_xml_appends_the_rescue_disk_booting_first(self):
        domain = vconfig.Domain(
            virt_type="qemu", name="i", uuid="u" * 8, memory_mb=64, vcpus=1,
            os=vconfig.OS(arch="x86_64"),
            disks=[vconfig.Disk(source_path="/i/disk", target_dev="vda"),
                   vconfig.Disk(source_path="/i/disk.local",
                                target_dev="vdb")])
        root = ET.fromstring(driver_mod.stable_rescue_domain_xml(
            vconfig.render(domain), "/i/disk.rescue", "disk", "virtio"))
        self.assertEqual(
            [(d.find("target").get("dev"), d.find("source").get("file"),
              d.find("boot").get("order") if d.find("boot") is not None
              else None) for d in root.findall("devices/disk")],
            [("vda", "/i/disk", "2"), ("vdb", "/i/disk.local", None),
             ("vdc", "/i/disk.rescue", "1")])
        self.assertIsNone(root.find("os/boot"))

    def test_rescue_device_of_image_properties(self):
        self.assertIsNone(driver_mod.rescue_device({}))
        self.assertEqual(driver_mod.rescue_device(
            {"hw_rescue_bus": "usb"}), ("disk", "usb"))
        self.assertEqual(driver_mod.rescue_device(
            {"hw_rescue_device": "cdrom"}), ("cdrom", "ide"))
        self.assertEqual(driver_mod.rescue_device(
            {"hw_rescue_device": "disk"}), ("disk", "virtio"))
        from twisted_compute import exception
        self.assertRaises(exception.UnsupportedRescueBus,
                          driver_mod.rescue_device,
                          {"hw_rescue_device": "cdrom",
                           "hw_rescue_bus": "virtio"})
        self.assertRaises(exception.UnsupportedRescueDevice,
                          driver_mod.rescue_device,
                          {"hw_rescue_device": "floppy"})
