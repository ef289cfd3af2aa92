"""A server's life on one host through the ``openstack`` CLI, unchanged,
against ``compute-all`` (fake driver) with deferred delete on:
rebuild, rescue / unrescue, crash dump, password, soft delete, restore
and forced delete."""

from __future__ import annotations

import os
import uuid

from tests.integration.harness import TwistdTestCase, wait_until
from tests.integration.test_all_in_one import (
    CLI_TIMEOUT, FLAVOR, IMAGE, RUNNING, SHUTDOWN, STATUS_TIMEOUT,
    short_intervals)
from tests.integration.test_openstack_cli import OpenStackCLIMixin


class LifecycleCLITests(OpenStackCLIMixin, TwistdTestCase):
    cli_timeout = CLI_TIMEOUT

    host = "life-" + uuid.uuid4().hex[:6]
    shared = {"role": "compute-all", "apis": ("osapi_compute", "image"),
              "options": short_intervals(host,
                                         reclaim_instance_interval=3600)}

    def setUp(self):
        super().setUp()
        self.clouds = os.path.join(self.proc.directory, "clouds.yaml")

    def create(self) -> dict:
        return self.openstack("server", "create", "--flavor", FLAVOR,
                              "--image", IMAGE, "--auto-network", "--wait",
                              "life-" + uuid.uuid4().hex[:8])

    def new_image(self, *properties: str) -> dict:
        path = os.path.join(self.proc.directory, "img.raw")
        with open(path, "wb") as handle:
            handle.write(b"\0" * 4096)
        args = ["image", "create", "--file", path, "--disk-format", "raw",
                "--container-format", "bare", "--public"]
        for prop in properties:
            args += ["--property", prop]
        return self.openstack(*args, "life-img-" + uuid.uuid4().hex[:6])

    def test_rebuild_rescue_dump_password(self):
        server = self.create()
        server_id = server["id"]
        before = self.show(server_id)
        image = self.new_image("hw_qemu_guest_agent=yes")

        # no guest agent in the default image: Nova's 409
        refused = self.openstack("server", "set", "--password", "s3cret",
                                 server_id, parse=False, check=False)
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("hw_qemu_guest_agent", refused.stderr)

        self.openstack("server", "rebuild", "--image", image["id"],
                       "--wait", server_id, parse=False)
        shown = self.wait_status(server_id, "ACTIVE", RUNNING)
        self.assertEqual(shown["id"], server_id)
        self.assertIn(image["id"], str(shown["image"]))
        self.assertEqual(shown["addresses"], before["addresses"])
        self.assertEqual(shown["OS-EXT-SRV-ATTR:host"], self.host)
        log = self.openstack("console", "log", "show", server_id,
                             parse=False).stdout
        self.assertIn(f"from image {image['id']}", log)

        # the new image has the agent
        self.openstack("server", "set", "--password", "s3cret", server_id,
                       parse=False)

        self.openstack("server", "rescue", "--image", image["id"],
                       server_id, parse=False)
        self.wait_status(server_id, "RESCUE", RUNNING)
        self.openstack("server", "unrescue", server_id, parse=False)
        self.wait_status(server_id, "ACTIVE", RUNNING)

        self.openstack("--os-compute-api-version", "2.17", "server", "dump",
                       "create", server_id, parse=False)
        log = wait_until(lambda: (lambda text: text if "NMI received" in
                                  text else None)(self.openstack(
                                      "console", "log", "show", server_id,
                                      parse=False).stdout),
                         timeout=STATUS_TIMEOUT, message="the NMI")
        self.assertIn("NMI received", log)

        actions = [row["Action"] for row in
                   self.openstack("server", "event", "list", server_id)]
        for action in ("rebuild", "rescue", "unrescue", "changePassword",
                       "trigger_crash_dump"):
            self.assertIn(action, actions)

        self.openstack("server", "delete", "--force", server_id,
                       parse=False)
        wait_until(lambda: self.openstack("server", "show", server_id,
                                          parse=False, check=False
                                          ).returncode != 0,
                   timeout=STATUS_TIMEOUT, message="forced delete")

    def test_soft_delete_and_restore(self):
        server = self.create()
        server_id = server["id"]
        self.openstack("server", "delete", server_id, parse=False)
        self.wait_status(server_id, "SOFT_DELETED", SHUTDOWN)
        self.openstack("server", "restore", server_id, parse=False)
        self.wait_status(server_id, "ACTIVE", RUNNING)
        self.openstack("server", "delete", "--force", "--wait", server_id,
                       parse=False)
        gone = self.openstack("server", "show", server_id, parse=False,
                              check=False)
        self.assertNotEqual(gone.returncode, 0)
