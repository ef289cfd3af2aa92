"""Moves on the libvirt driver: two agents (two hosts, two
``images_path``) sharing libvirt's ``test:///default`` hypervisor, as
two agents share one libvirtd on one machine; the qcow2 work against
real files with ``qemu-img``; live migration against a stand-in domain
that records ``migrateToURI3`` and reports job statistics."""

from __future__ import annotations

import os
import shutil
import tempfile
import xml.etree.ElementTree as ET

import attrs
from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.base import SyncThreadPool
from tests.virt.libvirt.base import (
    LibvirtFixture, ThreadAwareReactor, libvirt_conf, make_instance,
    require_libvirt, require_qemu_img)
from twisted_compute import exception
from twisted_compute.virt import power_state
from twisted_compute.virt.libvirt import config as vconfig
from twisted_compute.virt.libvirt import migration as vmigration

NS = vconfig.NAMESPACE


def flavor_of(instance, **kw):
    values = {"id": 7, "vcpus": instance.vcpus,
              "memory_mb": instance.memory_mb, "root_gb": instance.root_gb,
              "ephemeral_gb": 0}
    values.update(kw)
    return values


def resized(instance, flavor):
    return attrs.evolve(instance, vcpus=flavor["vcpus"],
                        memory_mb=flavor["memory_mb"],
                        root_gb=flavor["root_gb"])


class DomainXMLTests(SynchronousTestCase):

    XML = f"""<domain type='qemu' xmlns:tc='{NS}'>
      <name>instance-00000001</name><uuid>u</uuid>
      <metadata><tc:instance><tc:host>a</tc:host></tc:instance></metadata>
      <memory unit='KiB'>131072</memory>
      <currentMemory unit='KiB'>131072</currentMemory><vcpu>1</vcpu>
      <os><type>hvm</type><kernel>/a/i/u/kernel</kernel>
          <initrd>/a/i/u/ramdisk</initrd></os>
      <devices>
        <disk type='file' device='disk'><source file='/a/i/u/disk'/>
          <backingStore type='file'><source file='/a/i/_base/x'/>
          </backingStore><target dev='vda'/></disk>
        <serial type='file'><source path='/a/i/u/console.log'/></serial>
        <disk type='file' device='cdrom'>
          <source file='/a/i/u2/other'/></disk>
      </devices></domain>"""

    def test_paths_flavor_and_host_move(self):
        moved = ET.fromstring(vmigration.moved_domain_xml(
            self.XML, "/a/i/u", "/b/i/u", host="b", memory_mb=256, vcpus=2))
        self.assertEqual(moved.findtext("os/kernel"), "/b/i/u/kernel")
        self.assertEqual(moved.findtext("os/initrd"), "/b/i/u/ramdisk")
        disk, cdrom = moved.findall("devices/disk")
        self.assertEqual(disk.find("source").get("file"), "/b/i/u/disk")
        self.assertIsNone(disk.find("backingStore"))
        # a path that only starts with the same letters stays
        self.assertEqual(cdrom.find("source").get("file"), "/a/i/u2/other")
        self.assertEqual(moved.find("devices/serial/source").get("path"),
                         "/b/i/u/console.log")
        self.assertEqual(moved.findtext("memory"), str(256 * 1024))
        self.assertEqual(moved.findtext("currentMemory"), str(256 * 1024))
        self.assertEqual(moved.findtext("vcpu"), "2")
        text = ET.tostring(moved, encoding="unicode")
        self.assertEqual(vmigration.domain_host(text), "b")
        self.assertEqual(vmigration.domain_memory_vcpus(text), (256, 2))

    def test_writable_disks(self):
        self.assertEqual(vmigration.writable_disks(self.XML), ["vda"])
        xml = """<domain><devices>
          <disk device='disk'><target dev='vda'/></disk>
          <disk device='disk'><target dev='vdb'/></disk>
          <disk device='disk'><readonly/><target dev='vdc'/></disk>
          <disk device='cdrom'><target dev='hdc'/></disk>
          </devices></domain>"""
        self.assertEqual(vmigration.writable_disks(xml), ["vda", "vdb"])

    def test_host_added_when_missing(self):
        xml = "<domain><name>n</name><memory>1024</memory></domain>"
        self.assertEqual(vmigration.domain_host(
            vmigration.moved_domain_xml(xml, "/x", "/y", host="h")), "h")


@attrs.define
class Options:
    live_migration_uri: str = ""
    live_migration_scheme: str = "tcp"
    host_live_migration_uris: str = ""
    host_live_migration_addrs: str = ""
    live_migration_bandwidth: int = 0
    live_migration_tunnelled: bool = False
    live_migration_permit_post_copy: bool = False
    live_migration_permit_auto_converge: bool = False
    live_migration_completion_timeout: int = 800


class LiveMigrationOptionsTests(SynchronousTestCase):

    def setUp(self):
        require_libvirt()
        import libvirt
        self.libvirt = libvirt

    def test_uri(self):
        uri = vmigration.live_migration_uri
        self.assertEqual(uri(Options(), "h2"), "qemu+tcp://h2/system")
        self.assertEqual(uri(Options(live_migration_scheme="ssh"), "h2"),
                         "qemu+ssh://h2/system")
        self.assertEqual(uri(Options(live_migration_uri="qemu+tls://%s/"
                                     "system"), "h2"), "qemu+tls://h2/system")
        self.assertEqual(uri(Options(host_live_migration_uris=(
            "h2=qemu+tcp://127.0.0.1:16510/system, h3=x")), "h2"),
            "qemu+tcp://127.0.0.1:16510/system")

    def test_host_map_refuses_junk(self):
        self.assertRaises(ValueError, vmigration.parse_host_map, "a=b,c")

    def test_flags(self):
        lv = self.libvirt
        base = (lv.VIR_MIGRATE_LIVE | lv.VIR_MIGRATE_PEER2PEER
                | lv.VIR_MIGRATE_PERSIST_DEST | lv.VIR_MIGRATE_UNDEFINE_SOURCE)
        flags = vmigration.live_migration_flags
        self.assertEqual(flags(lv, Options(), False), base)
        self.assertEqual(flags(lv, Options(), True),
                         base | lv.VIR_MIGRATE_NON_SHARED_INC)
        self.assertEqual(
            flags(lv, Options(live_migration_tunnelled=True,
                              live_migration_permit_post_copy=True), False),
            base | lv.VIR_MIGRATE_TUNNELLED | lv.VIR_MIGRATE_POSTCOPY)
        self.assertEqual(
            flags(lv, Options(live_migration_permit_auto_converge=True),
                  False), base | lv.VIR_MIGRATE_AUTO_CONVERGE)

    def test_params(self):
        lv = self.libvirt
        params = vmigration.live_migration_params(
            lv, Options(live_migration_bandwidth=50,
                        host_live_migration_addrs="h2=192.0.2.7"),
            "h2", "<domain/>", ["vda"])
        self.assertEqual(params, {
            lv.VIR_MIGRATE_PARAM_DEST_XML: "<domain/>",
            lv.VIR_MIGRATE_PARAM_PERSIST_XML: "<domain/>",
            lv.VIR_MIGRATE_PARAM_BANDWIDTH: 50,
            lv.VIR_MIGRATE_PARAM_URI: "tcp://192.0.2.7",
            lv.VIR_MIGRATE_PARAM_MIGRATE_DISKS: ["vda"]})
        self.assertEqual(vmigration.live_migration_params(
            lv, Options(), "h2", "<d/>", []),
            {lv.VIR_MIGRATE_PARAM_DEST_XML: "<d/>",
             lv.VIR_MIGRATE_PARAM_PERSIST_XML: "<d/>"})

    def test_completion_deadline_is_per_gib(self):
        deadline = vmigration.completion_deadline
        self.assertEqual(deadline(Options(), 256 * 2 ** 20, 0), 800.0)
        self.assertEqual(deadline(Options(), 2 * 2 ** 30, 2 ** 30), 2400.0)
        self.assertIsNone(deadline(
            Options(live_migration_completion_timeout=0), 2 ** 30, 0))

    def test_copy_commands(self):
        files = ["/i/u_resize/disk", "/i/u_resize/disk.info"]
        self.assertEqual(vmigration.copy_commands("local", "h", files, "/d"),
                         [])
        mkdir, scp = vmigration.copy_commands("ssh", "h", files, "/d/u")
        self.assertEqual(mkdir[-4:], ["h", "mkdir", "-p", "/d/u"])
        self.assertEqual(scp[0], "scp")
        self.assertEqual(scp[-3:], [*files, "h:/d/u/"])
        _, rsync = vmigration.copy_commands("rsync", "h", files, "/d/u")
        self.assertEqual(rsync[:3], ["rsync", "-a", "--sparse"])
        self.assertEqual(rsync[-1], "h:/d/u/")


class TwoHostsTests(LibvirtFixture, SynchronousTestCase):
    """Hosts ``lvhost`` and ``lvhost2``, each its own agent and
    ``images_path``, on one hypervisor."""

    def setUp(self):
        self.setUpDriver()
        from twisted_compute.virt.libvirt.driver import LibvirtDriver
        self.path_b = tempfile.mkdtemp(prefix="tc-libvirt-b-")
        self.addCleanup(shutil.rmtree, self.path_b, True)
        self.images_b = os.path.join(self.path_b, "instances")
        shared = {"remote_filesystem_transport": "local"}
        self.driver.conf = libvirt_conf(
            self.state_path, host_images_paths=f"lvhost2={self.images_b}",
            **shared)
        self.conf_b = libvirt_conf(
            self.path_b,
            host_images_paths=f"lvhost={self.driver.images_path}", **shared)
        self.driver_b = LibvirtDriver(self.conf_b, self.reactor,
                                      host="lvhost2", pool=SyncThreadPool())
        self.addCleanup(self.driver_b.cleanup)
        self.successResultOf(self.driver.init_host("lvhost"))
        self.successResultOf(self.driver_b.init_host("lvhost2"))

    def boot(self, **kw):
        instance, d = self.spawn(make_instance(**kw))
        self.successResultOf(d)
        with open(self.driver.console_path(instance.uuid), "w") as handle:
            handle.write("written before the move\n")
        return instance

    def uuids(self, driver):
        return self.successResultOf(driver.list_instance_uuids())

    def xml(self, instance):
        return self.domain(instance).XMLDesc(0)

    def migrate(self, instance, flavor, source, dest, dest_host):
        migration = {"source_compute": source.host,
                     "dest_compute": dest_host, "migration_type": "resize"}
        self.successResultOf(source.migrate_disk_and_power_off(
            None, instance, dest_host, flavor))
        self.successResultOf(dest.finish_migration(
            None, migration, resized(instance, flavor)))
        return migration

    def test_each_agent_sees_only_its_own_domains(self):
        mine = self.boot()
        theirs, d = self.spawn(make_instance(), driver=self.driver_b)
        self.successResultOf(d)
        self.assertIn(mine.uuid, self.uuids(self.driver))
        self.assertNotIn(theirs.uuid, self.uuids(self.driver))
        self.assertIn(theirs.uuid, self.uuids(self.driver_b))
        self.assertNotIn(mine.uuid, self.uuids(self.driver_b))
        self.driver_b.destroy(None, theirs, [])

    def test_two_deployments_with_the_same_database_id(self):
        """Two deployments number their instances from 1: the domains
        still have names of their own, and each is found by its uuid."""
        first = self.boot(id=1)
        second, d = self.spawn(make_instance(id=1), driver=self.driver_b)
        self.successResultOf(d)
        self.assertNotEqual(self.domain(first).name(),
                            self.domain(second).name())
        self.assertEqual(self.successResultOf(
            self.driver_b.get_info(second)).state, power_state.RUNNING)
        self.successResultOf(self.driver_b.power_off(second))
        self.assertTrue(self.domain(first).isActive())
        self.driver_b.destroy(None, second, [])

    def test_cold_migration_and_resize_then_confirm(self):
        instance = self.boot(memory_mb=128, vcpus=1)
        flavor = flavor_of(instance, memory_mb=256, vcpus=2, root_gb=2)
        source_dir = self.driver.instance_dir(instance.uuid)
        migration = self.migrate(instance, flavor, self.driver,
                                 self.driver_b, "lvhost2")
        dest_dir = self.driver_b.instance_dir(instance.uuid)
        self.assertTrue(os.path.isdir(source_dir + "_resize"))
        self.assertFalse(os.path.exists(source_dir))
        xml = self.xml(instance)
        root = ET.fromstring(xml)
        self.assertEqual(vmigration.domain_host(xml), "lvhost2")
        self.assertEqual(vmigration.domain_memory_vcpus(xml), (256, 2))
        self.assertEqual(root.find("devices/serial/source").get("path"),
                         os.path.join(dest_dir, "console.log"))
        self.assertTrue(self.domain(instance).isActive())
        self.assertEqual(self.uuids(self.driver_b), [instance.uuid])
        self.assertNotIn(instance.uuid, self.uuids(self.driver))
        with open(os.path.join(dest_dir, "console.log")) as handle:
            self.assertIn("written before the move", handle.read())

        self.successResultOf(self.driver.confirm_migration(
            None, migration, instance))
        self.assertFalse(os.path.exists(source_dir + "_resize"))
        # the domain is the destination's: left alone by the source
        self.assertTrue(self.domain(instance).isActive())
        self.assertEqual(vmigration.domain_host(self.xml(instance)),
                         "lvhost2")
        self.driver_b.destroy(None, instance, [])
        self.assertIsNone(self.domain(instance))

    def test_revert_goes_back_to_the_source_with_the_old_flavor(self):
        instance = self.boot(memory_mb=128, vcpus=1)
        flavor = flavor_of(instance, memory_mb=512, vcpus=3)
        source_dir = self.driver.instance_dir(instance.uuid)
        migration = self.migrate(instance, flavor, self.driver,
                                 self.driver_b, "lvhost2")
        self.successResultOf(self.driver_b.revert_migration(
            None, instance, migration))
        self.assertFalse(os.path.exists(
            self.driver_b.instance_dir(instance.uuid)))
        self.successResultOf(self.driver.finish_revert_migration(
            None, instance, migration=migration))
        xml = self.xml(instance)
        self.assertEqual(vmigration.domain_host(xml), "lvhost")
        self.assertEqual(vmigration.domain_memory_vcpus(xml), (128, 1))
        self.assertTrue(self.domain(instance).isActive())
        self.assertTrue(os.path.isdir(source_dir))
        self.assertFalse(os.path.exists(source_dir + "_resize"))
        self.assertEqual(sorted(os.listdir(source_dir)),
                         ["console.log", "disk.info"])
        self.assertIn(instance.uuid, self.uuids(self.driver))

    def test_resize_on_the_same_host_confirm_and_revert(self):
        instance = self.boot(memory_mb=128, vcpus=1)
        directory = self.driver.instance_dir(instance.uuid)
        bigger = flavor_of(instance, memory_mb=256, vcpus=2)
        migration = self.migrate(instance, bigger, self.driver, self.driver,
                                 "lvhost")
        self.assertEqual(vmigration.domain_memory_vcpus(self.xml(instance)),
                         (256, 2))
        self.successResultOf(self.driver.confirm_migration(
            None, migration, instance))
        self.assertTrue(self.domain(instance).isActive())
        self.assertFalse(os.path.exists(directory + "_resize"))
        instance = resized(instance, bigger)

        biggest = flavor_of(instance, memory_mb=1024, vcpus=4)
        migration = self.migrate(instance, biggest, self.driver,
                                 self.driver, "lvhost")
        self.assertEqual(vmigration.domain_memory_vcpus(self.xml(instance)),
                         (1024, 4))
        self.successResultOf(self.driver.revert_migration(
            None, instance, migration))
        self.successResultOf(self.driver.finish_revert_migration(
            None, instance, migration=migration))
        self.assertEqual(vmigration.domain_memory_vcpus(self.xml(instance)),
                         (256, 2))
        self.assertTrue(self.domain(instance).isActive())
        self.assertTrue(os.path.isdir(directory))

    def test_rollback_before_the_copy_keeps_the_source(self):
        """A resize to the same host whose copy never started: the
        revert throws nothing of the source's away."""
        instance = self.boot()
        migration = {"source_compute": "lvhost", "dest_compute": "lvhost"}
        self.successResultOf(self.driver.revert_migration(
            None, instance, migration))
        self.successResultOf(self.driver.finish_revert_migration(
            None, instance, migration=migration))
        self.assertTrue(self.domain(instance).isActive())
        self.assertTrue(os.path.isdir(
            self.driver.instance_dir(instance.uuid)))

    def test_stopped_server_stays_stopped(self):
        instance = self.boot()
        self.successResultOf(self.driver.power_off(instance))
        flavor = flavor_of(instance, memory_mb=256)
        self.successResultOf(self.driver.migrate_disk_and_power_off(
            None, instance, "lvhost2", flavor))
        self.successResultOf(self.driver_b.finish_migration(
            None, {"source_compute": "lvhost", "dest_compute": "lvhost2"},
            resized(instance, flavor), power_on=False))
        self.assertFalse(self.domain(instance).isActive())
        self.driver_b.destroy(None, instance, [])

    def test_a_smaller_root_disk_is_refused(self):
        instance = self.boot(root_gb=2)
        self.failureResultOf(self.driver.migrate_disk_and_power_off(
            None, instance, "lvhost2", flavor_of(instance, root_gb=1)),
            exception.MigrationError)
        self.assertTrue(self.domain(instance).isActive())

    def test_finish_without_a_copy_fails(self):
        instance = make_instance()
        self.failureResultOf(self.driver_b.finish_migration(
            None, {}, instance), exception.MigrationError)


class QemuImgTests(TestCase):
    """The copied overlay onto the destination's cache, grown: real
    ``qemu-img`` on real files."""

    def setUp(self):
        require_libvirt()
        require_qemu_img()
        from twisted.internet import reactor
        from twisted_compute.virt.libvirt.driver import LibvirtDriver
        from twisted_compute.virt.libvirt import imagecache
        self.imagecache = imagecache
        self.reactor = reactor
        self.path = tempfile.mkdtemp(prefix="tc-libvirt-qemu-img-")
        self.addCleanup(shutil.rmtree, self.path, True)
        self.driver = LibvirtDriver(libvirt_conf(self.path), reactor,
                                    host="h", pool=SyncThreadPool())
        self.addCleanup(self.driver.cleanup)

    @defer.inlineCallbacks
    def test_rebase_onto_this_cache_and_grow(self):
        run = self.imagecache.run_qemu_img
        source_base = os.path.join(self.path, "elsewhere", "base")
        os.makedirs(os.path.dirname(source_base))
        yield defer.ensureDeferred(run(self.reactor, "create", "-f", "qcow2",
                                       source_base, "64M"))
        my_base = os.path.join(self.path, "instances", "_base", "img")
        os.makedirs(os.path.dirname(my_base))
        shutil.copyfile(source_base, my_base)
        disk = os.path.join(self.path, "disk")
        yield defer.ensureDeferred(self.imagecache.create_overlay(
            self.reactor, source_base, "qcow2", disk, None))

        class Cache:
            def get_image(self, image_id):
                return defer.succeed({"id": image_id,
                                      "disk_format": "qcow2"})

            def fetch(self, image):
                return defer.succeed(my_base)

        self.driver.image_cache = Cache()
        yield defer.ensureDeferred(self.driver._rebase_and_grow(
            make_instance(root_gb=1), disk, {"image": "img"}))
        info = yield defer.ensureDeferred(self.imagecache.image_info(
            self.reactor, disk, "qcow2"))
        self.assertEqual(info["backing-filename"], my_base)
        self.assertEqual(info["virtual-size"], 1024 ** 3)


    @defer.inlineCallbacks
    def test_adopt_backing_copies_the_base_to_the_other_cache(self):
        run = self.imagecache.run_qemu_img
        base = os.path.join(self.path, "a", "_base", "img")
        os.makedirs(os.path.dirname(base))
        yield defer.ensureDeferred(run(self.reactor, "create", "-f", "raw",
                                       base, "8M"))
        disk = os.path.join(self.path, "b", "uuid", "disk")
        os.makedirs(os.path.dirname(disk))
        yield defer.ensureDeferred(self.imagecache.create_overlay(
            self.reactor, base, "raw", disk, None))
        other = os.path.join(self.path, "b", "_base")
        yield defer.ensureDeferred(self.driver.adopt_backing(disk, other))
        info = yield defer.ensureDeferred(self.imagecache.image_info(
            self.reactor, disk, "qcow2"))
        self.assertEqual(info["backing-filename"],
                         os.path.join(other, "img"))
        self.assertEqual(info["backing-filename-format"], "raw")
        self.assertEqual(os.listdir(other), ["img"])


# --- live migration against a stand-in ---------------------------------------

class StandInDomain:
    """A running domain whose ``migrateToURI3`` is recorded and whose job
    statistics advance each time they are read."""

    def __init__(self, libvirt, uuid, xml):
        self.libvirt = libvirt
        self.uuid = uuid
        self.xml = xml
        self.calls: list[tuple] = []
        self.stats_reads = 0
        self.migrating = False
        self.active = True

    def UUIDString(self):
        return self.uuid

    def isActive(self):
        return self.active

    def XMLDesc(self, flags=0):
        self.calls.append(("XMLDesc", flags))
        return self.xml

    def migrateToURI3(self, uri, params, flags):
        self.calls.append(("migrateToURI3", uri, params, flags))
        self.migrating = True

    def jobStats(self, flags=0):
        self.stats_reads += 1
        if not self.migrating:
            return {"type": 0}
        total = 128 * 2 ** 20
        done = min(total, self.stats_reads * 32 * 2 ** 20)
        return {"type": self.libvirt.VIR_DOMAIN_JOB_UNBOUNDED,
                "memory_total": total, "memory_processed": done,
                "memory_remaining": total - done, "disk_total": 0,
                "disk_processed": 0, "disk_remaining": 0}

    def migrateSetMaxDowntime(self, ms, flags=0):
        self.calls.append(("migrateSetMaxDowntime", ms))

    def abortJob(self):
        self.calls.append(("abortJob",))

    def suspend(self):
        self.calls.append(("suspend",))

    def destroy(self):
        self.calls.append(("destroy",))
        self.active = False

    def undefineFlags(self, flags):
        self.calls.append(("undefineFlags", flags))

    host = "lvhost"

    def metadata(self, *args):
        return (f"<instance xmlns='{NS}'><host>{self.host}</host>"
                f"</instance>")


class StandInConnection:
    def __init__(self, domain):
        self.domain = domain

    def lookupByUUIDString(self, uuid):
        return self.domain


class StandInHost:
    """The driver's :class:`~.host.Host`: calls run on the test's thread,
    but the migration itself runs until :meth:`finish`."""

    def __init__(self, conn):
        self.conn = conn
        self.pool = SyncThreadPool()
        self.migration: defer.Deferred | None = None

    def start(self):
        pass

    def stop(self):
        pass

    def run(self, func, *args, **kwargs):
        try:
            result = func(self.conn, *args, **kwargs)
        except Exception:
            return defer.fail()
        if func.__name__ == "migrate":
            self.migration = defer.Deferred()
            return self.migration
        return defer.succeed(result)

    def finish(self, error=None):
        self.conn.domain.migrating = False
        if error is None:
            # on the destination now (libvirt keeps no source domain
            # after VIR_MIGRATE_UNDEFINE_SOURCE; the stand-in does, with
            # the destination's metadata)
            self.conn.domain.host = "hostb"
        if error is None:
            self.migration.callback(None)
        else:
            self.migration.errback(error)


class LiveMigrationTests(SynchronousTestCase):

    def setUp(self):
        require_libvirt()
        import libvirt
        from twisted_compute.virt.libvirt.driver import LibvirtDriver
        self.libvirt = libvirt
        self.path = tempfile.mkdtemp(prefix="tc-libvirt-live-")
        self.addCleanup(shutil.rmtree, self.path, True)
        self.images_b = os.path.join(self.path, "b")
        self.reactor = ThreadAwareReactor()
        self.conf = libvirt_conf(
            self.path, remote_filesystem_transport="local",
            host_images_paths=f"hostb={self.images_b}",
            host_live_migration_uris="hostb=qemu+tcp://127.0.0.1:16510/system",
            host_live_migration_addrs="hostb=127.0.0.1",
            live_migration_bandwidth=40, live_migration_downtime=300,
            live_migration_completion_timeout=2,
            live_migration_progress_interval=1.0)
        self.driver = LibvirtDriver(self.conf, self.reactor, host="lvhost",
                                    pool=SyncThreadPool())
        self.instance = make_instance(memory_mb=128)
        directory = self.driver.instance_dir(self.instance.uuid)
        os.makedirs(directory)
        for name in ("disk", "console.log", "kernel", "disk.info"):
            with open(os.path.join(directory, name), "w") as handle:
                handle.write(name)
        xml = f"""<domain type='qemu'><name>n</name>
          <uuid>{self.instance.uuid}</uuid>
          <metadata><tc:instance xmlns:tc='{NS}'><tc:host>lvhost</tc:host>
          </tc:instance></metadata><memory>131072</memory>
          <os><kernel>{directory}/kernel</kernel></os><devices>
          <disk type='file'><source file='{directory}/disk'/>
          <target dev='vda'/></disk></devices></domain>"""
        self.domain = StandInDomain(libvirt, self.instance.uuid, xml)
        self.host = StandInHost(StandInConnection(self.domain))
        self.driver._host = self.host
        self.directory = directory
        #: the overlays given a backing file in the destination's cache
        #: (the qemu-img part is QemuImgTests')
        self.adopted = []

        async def adopt(disk, base_dir):
            self.adopted.append((disk, base_dir))

        self.driver.adopt_backing = adopt

    def start(self, **migrate_data):
        #: the counters given to the agent's progress callable
        self.reported = []
        return self.driver.live_migration(None, self.instance, "hostb",
                                          migrate_data,
                                          progress=self.reported.append)

    def test_migrate_to_uri3_with_the_options_and_progress(self):
        lv = self.libvirt
        d = self.start(block_migration=False)
        self.assertNoResult(d)
        [call] = [c for c in self.domain.calls if c[0] == "migrateToURI3"]
        _, uri, params, flags = call
        self.assertEqual(uri, "qemu+tcp://127.0.0.1:16510/system")
        # another instances path: a block migration of vda
        self.assertTrue(flags & lv.VIR_MIGRATE_NON_SHARED_INC)
        self.assertTrue(flags & lv.VIR_MIGRATE_LIVE)
        self.assertEqual(params[lv.VIR_MIGRATE_PARAM_BANDWIDTH], 40)
        self.assertEqual(params[lv.VIR_MIGRATE_PARAM_URI], "tcp://127.0.0.1")
        self.assertEqual(params[lv.VIR_MIGRATE_PARAM_MIGRATE_DISKS], ["vda"])
        dest_dir = os.path.join(self.images_b, self.instance.uuid)
        dest_xml = ET.fromstring(params[lv.VIR_MIGRATE_PARAM_DEST_XML])
        self.assertEqual(dest_xml.find("devices/disk/source").get("file"),
                         os.path.join(dest_dir, "disk"))
        self.assertEqual(vmigration.domain_host(
            params[lv.VIR_MIGRATE_PARAM_DEST_XML]), "hostb")
        # the destination's directory is there before QEMU opens it
        self.assertEqual(sorted(os.listdir(dest_dir)),
                         ["console.log", "disk", "disk.info", "kernel",
                          vmigration.MARKER])
        self.assertEqual(self.adopted, [(os.path.join(dest_dir, "disk"),
                                         os.path.join(self.images_b,
                                                      "_base"))])
        # progress as the job goes on; the downtime set once
        self.reactor.advance(1.0)
        first = self.driver.live_migration_progress(self.instance)
        self.assertEqual(first["memory_total"], 128 * 2 ** 20)
        self.assertGreater(first["memory_remaining"], 0)
        self.reactor.advance(1.0)
        second = self.driver.live_migration_progress(self.instance)
        self.assertGreater(second["memory_processed"],
                           first["memory_processed"])
        # each read went to the agent too, the first before the copy
        self.assertEqual(self.reported[0]["memory_processed"], 0)
        self.assertEqual(self.reported[-1], second)
        self.assertEqual(len(self.reported), 3)
        self.assertEqual([c for c in self.domain.calls
                          if c[0] == "migrateSetMaxDowntime"],
                         [("migrateSetMaxDowntime", 300)])
        self.host.finish()
        self.reactor.advance(1.0)
        counters = self.successResultOf(d)
        self.assertEqual(counters["memory_remaining"], 0)
        self.assertEqual(counters["memory_processed"], 128 * 2 ** 20)
        self.assertIsNone(self.driver.live_migration_progress(self.instance))
        # the source's files wait for the confirm
        self.assertFalse(os.path.exists(self.directory))
        self.assertTrue(os.path.isdir(self.directory + "_resize"))
        self.successResultOf(self.driver.confirm_migration(
            None, {"dest_compute": "hostb"}, self.instance))
        self.assertFalse(os.path.exists(self.directory + "_resize"))
        # the domain (the destination's) is left alone
        self.assertNotIn(("destroy",), self.domain.calls)

    def test_completion_timeout_aborts(self):
        d = self.start()
        for _ in range(4):
            self.reactor.advance(1.0)
        self.assertIn(("abortJob",), self.domain.calls)
        self.host.finish(self.libvirt.libvirtError("operation aborted"))
        self.reactor.advance(1.0)
        self.failureResultOf(d, getattr(exception, "LiveMigrationAborted",
                                        exception.MigrationError))
        # a failed migration leaves the source's files where they are
        self.assertTrue(os.path.isdir(self.directory))

    def test_a_failed_job_is_a_migration_error(self):
        d = self.start()
        self.host.finish(self.libvirt.libvirtError("connection refused"))
        self.reactor.advance(1.0)
        failure = self.failureResultOf(d, exception.MigrationError)
        self.assertIn("connection refused", str(failure.value))

    def test_force_complete_pauses_without_post_copy(self):
        d = self.start()
        self.successResultOf(self.driver.live_migration_force_complete(
            self.instance))
        self.assertIn(("suspend",), self.domain.calls)
        self.host.finish()
        self.reactor.advance(1.0)
        self.successResultOf(d)
        self.failureResultOf(self.driver.live_migration_abort(self.instance),
                             exception.MigrationError)

    def test_shared_instances_path_is_no_block_migration(self):
        lv = self.libvirt
        self.driver.conf = libvirt_conf(
            self.path, host_live_migration_uris="hostb=qemu+tcp://h/system")
        d = self.start()
        [call] = [c for c in self.domain.calls if c[0] == "migrateToURI3"]
        self.assertFalse(call[3] & lv.VIR_MIGRATE_NON_SHARED_INC)
        self.host.finish()
        self.reactor.advance(1.0)
        self.successResultOf(d)
        # shared: nothing to set aside
        self.assertTrue(os.path.isdir(self.directory))
