"""Moves with the ``openstack`` CLI, unchanged, against ``compute-all``
with two fake agents: resize (confirm and revert), cold migration, the
migration list, evacuation, and a live migration shown, aborted and
forced to complete."""

from __future__ import annotations

import os
import uuid

from tests.integration.harness import TwistdTestCase, wait_until
from tests.integration.test_all_in_one import (
    CLI_TIMEOUT, FLAVOR, IMAGE, STATUS_TIMEOUT, short_intervals)
from tests.integration.test_openstack_cli import OpenStackCLIMixin

HOST = "mv-" + uuid.uuid4().hex[:6]


class MoveCLITests(OpenStackCLIMixin, TwistdTestCase):
    cli_timeout = CLI_TIMEOUT
    agents = [f"{HOST}-fake-{i}" for i in (1, 2)]
    shared = {"role": "compute-all", "apis": ("osapi_compute", "image"),
              "options": short_intervals(HOST, fake_agents=2)}
    shared["options"]["scheduler"] = {"host_state_refresh_interval": 0}
    # A live migration runs long enough to be seen, aborted and forced.
    shared["options"]["fake_driver"] = {"live_migration_delay": 20}

    def setUp(self):
        super().setUp()
        self.clouds = os.path.join(self.proc.directory, "clouds.yaml")

    def create(self):
        def both_up():
            rows = self.openstack("compute", "service", "list") or []
            return len([r for r in rows if r["Binary"] == "nova-compute"
                        and r["State"] == "up"]) == 2
        wait_until(both_up, STATUS_TIMEOUT, interval=0.5,
                   message="two computes up")
        server = self.openstack(
            "server", "create", "--flavor", FLAVOR, "--image", IMAGE,
            "--auto-network", "--wait", "mv-" + uuid.uuid4().hex[:8])
        self.assertEqual(server["status"], "ACTIVE", server)
        return server["id"]

    def test_resize_confirm_and_revert(self):
        server_id = self.create()
        source = self.show(server_id)["OS-EXT-SRV-ATTR:host"]
        self.openstack("server", "resize", "--flavor", "m1.small", "--wait",
                       server_id, parse=False)
        shown = self.wait_status(server_id, "VERIFY_RESIZE")
        self.assertEqual(shown["flavor"].split(" ")[0]
                         if isinstance(shown["flavor"], str)
                         else shown["flavor"]["name"], "m1.small")
        self.assertNotEqual(shown["OS-EXT-SRV-ATTR:host"], source)
        self.openstack("server", "resize", "confirm", server_id, parse=False)
        shown = self.wait_status(server_id, "ACTIVE")
        self.assertIn("m1.small", str(shown["flavor"]))
        moved_to = shown["OS-EXT-SRV-ATTR:host"]
        # Resize again, then revert: back on the host, with m1.small.
        self.openstack("server", "resize", "--flavor", "m1.medium", "--wait",
                       server_id, parse=False)
        self.wait_status(server_id, "VERIFY_RESIZE")
        self.openstack("server", "resize", "revert", server_id, parse=False)
        shown = self.wait_status(server_id, "ACTIVE")
        self.assertIn("m1.small", str(shown["flavor"]))
        self.assertEqual(shown["OS-EXT-SRV-ATTR:host"], moved_to)
        listed = self.openstack("--os-compute-api-version", "2.80",
                                "server", "migration", "list", "--server",
                                server_id)
        self.assertEqual(sorted(row["Status"] for row in listed),
                         ["confirmed", "reverted"])
        self.assertEqual({row["Type"] for row in listed}, {"resize"})

    def test_cold_migrate(self):
        server_id = self.create()
        source = self.show(server_id)["OS-EXT-SRV-ATTR:host"]
        self.openstack("server", "migrate", "--wait", server_id,
                       parse=False)
        shown = self.wait_status(server_id, "VERIFY_RESIZE")
        self.assertNotEqual(shown["OS-EXT-SRV-ATTR:host"], source)
        self.openstack("server", "resize", "confirm", server_id, parse=False)
        self.wait_status(server_id, "ACTIVE")
        listed = self.openstack("--os-compute-api-version", "2.80",
                                "server", "migration", "list", "--server",
                                server_id, "--type", "cold-migration")
        self.assertEqual([row["Status"] for row in listed], ["confirmed"])

    def test_evacuate(self):
        server_id = self.create()
        source = self.show(server_id)["OS-EXT-SRV-ATTR:host"]
        [other] = [a for a in self.agents if a != source]
        self.openstack("--os-compute-api-version", "2.11", "compute",
                       "service", "set", "--down", source, "nova-compute",
                       parse=False)
        try:
            self.openstack("--os-compute-api-version", "2.29", "server",
                           "evacuate", "--host", other, server_id,
                           parse=False)
            shown = self.wait_status(server_id, "ACTIVE")
        finally:
            self.openstack("--os-compute-api-version", "2.11", "compute",
                           "service", "set", "--up", source, "nova-compute",
                           parse=False)
        self.assertEqual(shown["OS-EXT-SRV-ATTR:host"], other)
        listed = self.openstack("--os-compute-api-version", "2.80",
                                "server", "migration", "list", "--server",
                                server_id)
        self.assertEqual([(row["Type"], row["Status"]) for row in listed],
                         [("evacuation", "done")])

    def running_live_migration(self, server_id, host):
        self.openstack("server", "migrate", "--live-migration", "--host",
                       host, server_id, parse=False)

        def running():
            rows = self.openstack("--os-compute-api-version", "2.80",
                                  "server", "migration", "list", "--server",
                                  server_id, "--type", "live-migration")
            return [r for r in rows or [] if r["Status"] == "running"]
        [row] = wait_until(running, STATUS_TIMEOUT, interval=0.3,
                           message="a running live migration")
        return row["Id"], row["UUID"]

    def test_live_migration_abort_and_force_complete(self):
        server_id = self.create()
        source = self.show(server_id)["OS-EXT-SRV-ATTR:host"]
        [other] = [a for a in self.agents if a != source]
        migration_id, migration_uuid = self.running_live_migration(
            server_id, other)
        # By uuid (2.59): this openstackclient's show by id swaps the
        # server and the migration in the URL.
        shown = self.openstack("--os-compute-api-version", "2.59", "server",
                               "migration", "show", server_id,
                               migration_uuid)
        self.assertEqual(shown["Status"], "running")
        self.assertEqual(shown["Memory Total Bytes"], 512 * 1024 * 1024)
        self.assertLess(shown["Memory Processed Bytes"], 512 * 1024 * 1024)
        self.openstack("--os-compute-api-version", "2.24", "server",
                       "migration", "abort", server_id, str(migration_id),
                       parse=False)
        shown = self.wait_status(server_id, "ACTIVE")
        self.assertEqual(shown["OS-EXT-SRV-ATTR:host"], source)
        # Again, forced to complete this time.
        migration_id, _ = self.running_live_migration(server_id, other)
        self.openstack("--os-compute-api-version", "2.22", "server",
                       "migration", "force", "complete", server_id,
                       str(migration_id), parse=False)
        shown = self.wait_status(server_id, "ACTIVE")
        self.assertEqual(shown["OS-EXT-SRV-ATTR:host"], other)
        listed = self.openstack("--os-compute-api-version", "2.80",
                                "server", "migration", "list", "--server",
                                server_id, "--type", "live-migration")
        self.assertEqual(sorted(row["Status"] for row in listed),
                         ["cancelled", "completed"])
