"""Config drives: built with the real ISO tool, read back with isoinfo."""

from __future__ import annotations

import base64
import json
import os

from twisted.internet import reactor
from twisted.internet.utils import getProcessOutputAndValue
from twisted.python.procutils import which
from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestCase

from tests.base import demanded, make_conf
from tests.metadata import rows
from twisted_compute import exception
from twisted_compute.metadata.base import (
    OPENSTACK_VERSIONS, InstanceMetadata)
from twisted_compute.virt import configdrive


def instance(**extra):
    values = {
        "id": 42, "uuid": "6c9f0a4e-1b7d-4c55-9e43-0d2b9f7a8e11",
        "display_name": "web", "hostname": "web", "project_id": "p1",
        "launch_index": 0, "reservation_id": "r-1", "key_name": "alice",
        "key_data": rows.SSH_KEY,
        "user_data": base64.b64encode(rows.USER_DATA).decode(),
        "metadata": {"role": "web"}, "availability_zone": "az1",
        "addresses": rows.addresses("10.0.0.5"),
        "flavor": {"name": "m1.tiny"},
        "system_metadata": {"password": "guest-posted-secret"},
    }
    values.update(extra)
    return values


class LayoutTests(SynchronousTestCase):
    """What goes on a drive, without building one."""

    def files(self, **kw):
        return dict(InstanceMetadata(instance(), **kw).config_drive_files())

    def test_layout(self):
        files = self.files()
        for version in OPENSTACK_VERSIONS + ("latest",):
            self.assertIn(f"openstack/{version}/meta_data.json", files)
            self.assertEqual(files[f"openstack/{version}/user_data"],
                             rows.USER_DATA)
        self.assertIn("openstack/latest/network_data.json", files)
        self.assertIn("openstack/latest/vendor_data2.json", files)
        self.assertNotIn("openstack/2012-08-10/vendor_data.json", files)
        self.assertEqual(sorted(p for p in files if p.startswith("ec2/")), [
            "ec2/2009-04-04/meta-data.json", "ec2/2009-04-04/user-data",
            "ec2/latest/meta-data.json", "ec2/latest/user-data"])
        # The guest-posted password lives only behind the API.
        self.assertFalse([p for p in files if p.endswith("password")])
        self.assertNotIn(b"guest-posted-secret", b"".join(files.values()))

    def test_ec2_meta_data_json(self):
        md = json.loads(self.files()["ec2/latest/meta-data.json"])
        self.assertEqual(md["instance-id"], "i-0000002a")
        self.assertEqual(md["public-keys"],
                         {"0": {"openssh-key": rows.SSH_KEY}})
        self.assertEqual(md["local-ipv4"], "10.0.0.5")

    def test_injected_files_and_admin_pass(self):
        metadata = InstanceMetadata(
            instance(), files=[("/etc/motd", b"hi")],
            extra_md={"admin_pass": "pw"})
        files = dict(metadata.config_drive_files())
        self.assertEqual(files["openstack/content/0000"], b"hi")
        md = json.loads(files["openstack/latest/meta_data.json"])
        self.assertEqual(md["files"], [{"path": "/etc/motd",
                                        "content_path": "/content/0000"}])
        self.assertEqual(md["admin_pass"], "pw")

    def test_personality_files(self):
        self.assertEqual(configdrive._injected_files([
            {"path": "/a", "contents": base64.b64encode(b"x").decode()},
            ("/b", "y")]), [("/a", b"x"), ("/b", b"y")])

    def test_plugged_interfaces_before_addresses(self):
        metadata = InstanceMetadata(
            instance(addresses={}), network_info=[
                {"id": "default-1", "network": "default",
                 "mac": "52:54:00:AA:BB:CC"}])
        nd = json.loads(dict(metadata.config_drive_files())[
            "openstack/latest/network_data.json"])
        self.assertEqual(nd["links"][0]["ethernet_mac_address"],
                         "52:54:00:aa:bb:cc")
        self.assertEqual(nd["networks"][0]["type"], "ipv4_dhcp")
        self.assertEqual(nd["networks"][0]["network_id"], "default")


def _need(tool: str) -> str:
    found = which(tool)
    if found:
        return found[0]
    if demanded(tool) or demanded("genisoimage"):
        raise AssertionError(f"{tool} is not installed, and "
                             "TWISTED_COMPUTE_DEMAND demands it")
    raise SkipTest(f"{tool} is not installed (Debian package genisoimage)")


class BuildTests(TestCase):
    """A real drive through reactor.spawnProcess (trial's reactor)."""

    def setUp(self):
        self.isoinfo = _need("isoinfo")
        _need("genisoimage")
        self.directory = os.path.abspath(self.mktemp())
        os.makedirs(self.directory)
        self.path = os.path.join(self.directory, "disk.config")

    async def isoinfo_out(self, *args: str) -> bytes:
        out, err, code = await getProcessOutputAndValue(
            self.isoinfo, ["-i", self.path, *args], env=dict(os.environ),
            reactor=reactor)
        self.assertEqual(code, 0, err)
        return out

    async def test_build_and_read_back(self):
        metadata = InstanceMetadata(instance(), random_bytes=lambda n:
                                    b"\x01" * n)
        result = await configdrive.make_drive(metadata, self.path, reactor)
        self.assertEqual(result, self.path)
        header = (await self.isoinfo_out("-d")).decode()
        self.assertIn("Volume id: config-2", header)
        listing = (await self.isoinfo_out("-R", "-f")).decode().split()
        for name in ("/openstack/latest/meta_data.json",
                     "/openstack/latest/user_data",
                     "/openstack/2012-08-10/meta_data.json",
                     "/openstack/latest/network_data.json",
                     "/openstack/latest/vendor_data.json",
                     "/openstack/latest/vendor_data2.json",
                     "/ec2/latest/meta-data.json"):
            self.assertIn(name, listing)
        files = dict(metadata.config_drive_files())
        on_drive = await self.isoinfo_out(
            "-R", "-x", "/openstack/latest/meta_data.json")
        self.assertEqual(on_drive, files["openstack/latest/meta_data.json"])
        self.assertEqual(json.loads(on_drive)["uuid"], instance()["uuid"])
        self.assertEqual(await self.isoinfo_out(
            "-R", "-x", "/openstack/latest/user_data"), rows.USER_DATA)
        ec2 = json.loads(await self.isoinfo_out(
            "-R", "-x", "/ec2/latest/meta-data.json"))
        self.assertEqual(ec2["hostname"], "web.novalocal")
        # Only the drive is left beside it: no tree, no partial image.
        self.assertEqual(os.listdir(self.directory), ["disk.config"])

    async def test_for_instance_with_conf(self):
        conf = make_conf(self.directory, api={"dhcp_domain": ""})
        await configdrive.make_drive_for_instance(
            conf, reactor, instance(), self.path,
            network_info=[{"id": "n1", "network": "default",
                           "mac": "52:54:00:00:00:01"}],
            injected_files=[{"path": "/etc/motd", "contents":
                             base64.b64encode(b"hello").decode()}],
            admin_password="pw")
        md = json.loads(await self.isoinfo_out(
            "-R", "-x", "/openstack/latest/meta_data.json"))
        self.assertEqual(md["hostname"], "web")
        self.assertEqual(md["admin_pass"], "pw")
        self.assertEqual(await self.isoinfo_out(
            "-R", "-x", "/openstack/content/0000"), b"hello")

    async def test_missing_tool_fails_cleanly(self):
        metadata = InstanceMetadata(instance())
        with self.assertRaises(exception.ConfigDriveError) as caught:
            await configdrive.make_drive(metadata, self.path, reactor,
                                         mkisofs_cmd="no-such-mkisofs")
        self.assertIn("no-such-mkisofs", str(caught.exception))
        self.assertEqual(os.listdir(self.directory), [])

    async def test_tool_failure_fails_cleanly(self):
        metadata = InstanceMetadata(instance())
        with self.assertRaises(exception.ConfigDriveError) as caught:
            await configdrive.make_drive(metadata, self.path, reactor,
                                         mkisofs_cmd="/bin/false")
        self.assertIn("exited with 1", str(caught.exception))
        self.assertEqual(os.listdir(self.directory), [])
