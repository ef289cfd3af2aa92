"""Moves through the ``openstack`` CLI against a distributed deployment:
compute-api, a conductor, a scheduler and two compute agents (fake
driver), each its own ``twistd`` process, on the system RabbitMQ and
PostgreSQL.  One deployment serves every test of the class.

resize --wait, resize confirm and revert, migrate --wait and confirm,
migrate --live-migration --host, evacuate (the source agent stopped and
its service forced down at 2.11; when it comes back it destroys what it
still had and completes the migration), and the migration list.
"""

from __future__ import annotations

import atexit
import os
import uuid

from tests.integration.harness import (
    Deployment, TwistdTestCase, api_flavor, api_image, wait_until)
from tests.integration.test_openstack_cli import (
    OpenStackCLIMixin, clouds_yaml)

#: What every process of the deployment shares: short intervals, small
#: fake delays.
OPTIONS = {
    "DEFAULT": {"report_interval": 1, "service_down_time": 10,
                "update_resources_interval": 1,
                "build_timeout_check_interval": 2,
                "move_step_timeout": 30},
    "scheduler": {"host_state_refresh_interval": 0},
    "fake_driver": {"move_step_delay": 0.1, "live_migration_delay": 0.5},
}
STATUS_TIMEOUT = 60.0

_SHARED: dict[type, dict] = {}


def _cleanup_all():
    for entry in list(_SHARED.values()):
        entry["deployment"].cleanup()
    _SHARED.clear()


atexit.register(_cleanup_all)


class MoveDistributedTests(OpenStackCLIMixin, TwistdTestCase):
    status_timeout = STATUS_TIMEOUT
    cli_timeout = 90.0

    def setUp(self):
        super().setUp()
        cls = type(self)
        entry = _SHARED.get(cls)
        if entry is None:
            deployment = Deployment(options=OPTIONS)
            entry = _SHARED[cls] = {"deployment": deployment, "ran": set()}
            try:
                deployment.start_cluster(agents=2)
                deployment.wait_services_up()
                deployment.wait_nodes(2)
                entry["flavors"] = [
                    api_flavor(deployment.api, vcpus=1, ram=64, disk=1,
                               name="dm-small-" + deployment.run_id),
                    api_flavor(deployment.api, vcpus=2, ram=128, disk=1,
                               name="dm-big-" + deployment.run_id)]
                entry["image"] = api_image(deployment.api)
            except BaseException:
                _SHARED.pop(cls, None)
                deployment.cleanup()
                raise
        self.deployment = deployment = entry["deployment"]
        self._processes.extend(deployment.processes)
        self.small, self.big = entry["flavors"]
        self.image = entry["image"]
        self.proc = deployment.api
        self.clouds = os.path.join(self.proc.directory, "clouds.yaml")
        if not os.path.exists(self.clouds):
            with open(self.clouds, "w", encoding="utf-8") as handle:
                handle.write(clouds_yaml(self.proc))
        entry["ran"].add(self._testMethodName)
        names = {n for n in dir(cls) if n.startswith("test")}
        if names <= entry["ran"]:
            self.addCleanup(lambda: _SHARED.pop(cls)["deployment"].cleanup())

    # --- helpers -------------------------------------------------------

    def create(self):
        server = self.openstack(
            "server", "create", "--flavor", self.small, "--image",
            self.image, "--auto-network", "--wait",
            "dm-" + uuid.uuid4().hex[:8])
        self.assertEqual(server["status"], "ACTIVE", server)
        return server["id"], server["OS-EXT-SRV-ATTR:host"]

    def other(self, host):
        [other] = [p.host for p in self.deployment.by_role("compute-agent")
                   if p.host != host]
        return other

    def migrations(self, server_id):
        return self.openstack("--os-compute-api-version", "2.80", "server",
                              "migration", "list", "--server", server_id)

    # --- tests ---------------------------------------------------------

    def test_resize_migrate_and_live_migrate(self):
        server_id, source = self.create()
        self.openstack("server", "resize", "--flavor", self.big, "--wait",
                       server_id, parse=False)
        shown = self.wait_status(server_id, "VERIFY_RESIZE")
        self.assertEqual(shown["OS-EXT-SRV-ATTR:host"], self.other(source))
        self.openstack("server", "resize", "confirm", server_id, parse=False)
        shown = self.wait_status(server_id, "ACTIVE")
        self.assertIn("dm-big", str(shown["flavor"]))
        here = shown["OS-EXT-SRV-ATTR:host"]
        self.openstack("server", "resize", "--flavor", self.small, "--wait",
                       server_id, parse=False)
        self.wait_status(server_id, "VERIFY_RESIZE")
        self.openstack("server", "resize", "revert", server_id, parse=False)
        shown = self.wait_status(server_id, "ACTIVE")
        self.assertEqual(shown["OS-EXT-SRV-ATTR:host"], here)
        self.assertIn("dm-big", str(shown["flavor"]))
        self.openstack("server", "migrate", "--wait", server_id,
                       parse=False)
        shown = self.wait_status(server_id, "VERIFY_RESIZE")
        self.assertEqual(shown["OS-EXT-SRV-ATTR:host"], self.other(here))
        self.openstack("server", "resize", "confirm", server_id, parse=False)
        shown = self.wait_status(server_id, "ACTIVE")
        here = shown["OS-EXT-SRV-ATTR:host"]
        self.openstack("server", "migrate", "--live-migration", "--host",
                       self.other(here), server_id, parse=False)

        def live_done():
            rows = [r for r in self.migrations(server_id)
                    if r["Type"] == "live-migration"]
            return rows and rows[0]["Status"] == "completed" and rows
        wait_until(live_done, STATUS_TIMEOUT, interval=0.5,
                   message="the live migration to complete")
        shown = self.wait_status(server_id, "ACTIVE")
        self.assertEqual(shown["OS-EXT-SRV-ATTR:host"], self.other(here))
        self.assertEqual(
            sorted((r["Type"], r["Status"])
                   for r in self.migrations(server_id)),
            [("live-migration", "completed"), ("migration", "confirmed"),
             ("resize", "confirmed"), ("resize", "reverted")])

    def test_evacuate(self):
        server_id, source = self.create()
        target = self.other(source)
        agent = [p for p in self.deployment.by_role("compute-agent")
                 if p.host == source][0]
        agent.stop()
        self.openstack("--os-compute-api-version", "2.11", "compute",
                       "service", "set", "--down", source, "nova-compute",
                       parse=False)
        try:
            self.openstack("--os-compute-api-version", "2.29", "server",
                           "evacuate", "--host", target, server_id,
                           parse=False)
            shown = self.wait_status(server_id, "ACTIVE")
            self.assertEqual(shown["OS-EXT-SRV-ATTR:host"], target)
            self.assertEqual(
                [(r["Type"], r["Status"])
                 for r in self.migrations(server_id)],
                [("evacuation", "done")])
        finally:
            self.openstack("--os-compute-api-version", "2.11", "compute",
                           "service", "set", "--up", source,
                           "nova-compute", parse=False)
            agent.start(wait=False)

        # The source's agent, back, cleans up and completes it.
        def completed():
            rows = self.migrations(server_id)
            return rows[0]["Status"] == "completed" and rows
        wait_until(completed, STATUS_TIMEOUT, interval=1.0,
                   message="the evacuation to be completed by its source")
        self.deployment.wait_services_up()
