"""Snapshots, backups and shelving with the unchanged ``openstack`` CLI
against ``compute-all`` (a fake agent, the local bus, the image API of
the same process): ``server image create --wait``, booting from the
snapshot, ``server backup create`` with rotation, ``server shelve
[--offload]`` and ``server unshelve --wait``."""

from __future__ import annotations

import os
import uuid

from tests.integration.harness import TwistdTestCase, wait_until
from tests.integration.test_openstack_cli import (
    OpenStackCLIMixin, clouds_yaml)


class SnapshotCLITests(OpenStackCLIMixin, TwistdTestCase):

    cli_timeout = 90.0
    host = "cli-snap-" + uuid.uuid4().hex[:6]
    shared = {"role": "compute-all", "apis": ("osapi_compute", "image"),
              "options": {"DEFAULT": {
                  "host": host, "report_interval": 1,
                  "periodic_fuzzy_delay": 0,
                  "update_resources_interval": 1}}}

    def setUp(self):
        super().setUp()
        self.clouds = os.path.join(self.proc.directory, "clouds.yaml")
        if not os.path.exists(self.clouds):
            with open(self.clouds, "w", encoding="utf-8") as handle:
                handle.write(clouds_yaml(self.proc))

    def boot(self, image: str = "cirros-like-tiny") -> dict:
        server = self.openstack(
            "server", "create", "--flavor", "m1.tiny", "--image", image,
            "--auto-network", "--wait", "cli-" + uuid.uuid4().hex[:8])
        self.assertEqual(server["status"], "ACTIVE", server)
        self.addCleanup(self.openstack, "server", "delete", "--wait",
                        server["id"], parse=False, check=False)
        return server

    def test_image_create_and_boot_from_it(self):
        server = self.boot()
        name = "snap-" + uuid.uuid4().hex[:6]
        image = self.openstack("server", "image", "create", "--wait",
                               "--name", name, server["id"])
        self.addCleanup(self.openstack, "image", "delete", image["id"],
                        parse=False, check=False)
        self.assertEqual(image["status"], "active", image)
        shown = self.openstack("image", "show", image["id"])
        properties = shown["properties"]
        self.assertEqual(properties["image_type"], "snapshot")
        self.assertEqual(properties["instance_uuid"], server["id"])
        self.assertEqual(self.openstack("server", "show",
                                        server["id"])["status"], "ACTIVE")
        actions = self.openstack("server", "event", "list", server["id"])
        self.assertIn("createImage", [a["Action"] for a in actions])
        second = self.boot(image["id"])
        self.assertEqual(second["status"], "ACTIVE")

    def test_backup_rotation(self):
        server = self.boot()
        made = []
        for n in range(3):
            backup = self.openstack(
                "server", "backup", "create", "--name", f"bk-{n}",
                "--type", "daily", "--rotate", "2", "--wait", server["id"])
            made.append(backup["id"])
        self.addCleanup(lambda: [self.openstack(
            "image", "delete", i, parse=False, check=False) for i in made])
        listed = {row["ID"] for row in self.openstack("image", "list")}
        self.assertNotIn(made[0], listed)
        self.assertIn(made[1], listed)
        self.assertIn(made[2], listed)
        shown = self.openstack("image", "show", made[2])
        self.assertEqual(shown["properties"]["image_type"], "backup")
        self.assertEqual(shown["properties"]["backup_type"], "daily")

    def test_shelve_offload_unshelve(self):
        server = self.boot()
        self.openstack("server", "shelve", "--wait", server["id"],
                       parse=False)
        # shelved_offload_time 0 (the default): offloaded at once
        shown = wait_until(
            lambda: (lambda s: s if s["status"] == "SHELVED_OFFLOADED"
                     else None)(self.openstack("server", "show",
                                               server["id"])),
            30, interval=1, message="the server to be offloaded")
        self.assertFalse(shown.get("OS-EXT-SRV-ATTR:host"), shown)
        images = [row for row in self.openstack("image", "list")
                  if row["Name"] == f"{server['name']}-shelved"]
        self.assertEqual(len(images), 1, images)
        self.openstack("server", "unshelve", "--wait", server["id"],
                       parse=False)
        shown = self.openstack("server", "show", server["id"])
        self.assertEqual(shown["status"], "ACTIVE")
        self.assertEqual(shown["id"], server["id"])
        self.assertEqual(shown["OS-EXT-SRV-ATTR:host"], self.host)
        listed = {row["ID"] for row in self.openstack("image", "list")}
        self.assertNotIn(images[0]["ID"], listed)
        # shelve --offload of a server that stays shelved first
        self.openstack("server", "shelve", "--offload", "--wait",
                       server["id"], parse=False)
        self.assertEqual(self.openstack("server", "show", server["id"])[
            "status"], "SHELVED_OFFLOADED")
        self.openstack("server", "unshelve", "--wait", server["id"],
                       parse=False)
        self.assertEqual(self.openstack("server", "show", server["id"])[
            "status"], "ACTIVE")
