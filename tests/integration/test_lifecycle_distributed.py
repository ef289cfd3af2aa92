"""A server's life on one host in the distributed deployment, through the
unchanged ``openstack`` CLI: one ``compute-api`` (compute and image APIs),
a conductor, a scheduler and two fake agents on RabbitMQ and PostgreSQL,
with deferred delete on and shelved servers kept on their host until
offloaded.  Snapshots and backups (rotation), rebuild, shelve / offload /
unshelve, rescue / unrescue, soft delete / restore / forced delete, crash
dumps and passwords each cross the bus between the processes.

One deployment serves every test of the class (started by the first,
stopped after the last), to keep the suite short."""

from __future__ import annotations

import atexit
import os
import time
import uuid

from tests.integration.harness import (
    ADMIN, DeploymentTestCase, api_flavor, wait_until)
from tests.integration.harness.deployment import Deployment
from tests.integration.test_openstack_cli import (
    OpenStackCLIMixin, clouds_yaml)

#: power states in ``server show``
RUNNING, SHUTDOWN = 1, 4
#: seconds a status change may take to show
STATUS_TIMEOUT = 30.0

OPTIONS = {
    "DEFAULT": {"report_interval": 1, "update_resources_interval": 1,
                "service_down_time": 20,
                "reclaim_instance_interval": 3600,
                # shelve keeps the server on its host; --offload moves it
                "shelved_offload_time": -1},
    "scheduler": {"host_state_refresh_interval": 0},
    "quota": {"instances": -1, "cores": -1, "ram": -1},
}

#: the one deployment of each test class, by class
_SHARED: dict[type, dict] = {}


def _cleanup_all() -> None:
    for entry in list(_SHARED.values()):
        entry["deployment"].cleanup()
    _SHARED.clear()


atexit.register(_cleanup_all)


def start_deployment() -> Deployment:
    deployment = Deployment(options=OPTIONS)
    try:
        api = deployment.add("compute-api", "api")
        api.prepare()  # its ports: the agents upload to its image API
        agents = {"glance": {"api_servers": api.url("image")}}
        procs = [api] + [deployment.add(role, name, options)
                         for role, name, options in (
                             ("compute-conductor", "cond1", None),
                             ("compute-scheduler", "sched1", None),
                             ("compute-agent", "agent1", agents),
                             ("compute-agent", "agent2", agents))]
        for proc in procs:
            proc.start(wait=False)
        deadline = time.monotonic() + 60
        for proc in procs:
            proc.wait_ready(max(1.0, deadline - time.monotonic()))
        deployment.wait_services_up()
        deployment.wait_nodes(2)
    except BaseException:
        deployment.cleanup()
        raise
    return deployment


class LifecycleDistributedCLITests(OpenStackCLIMixin, DeploymentTestCase):
    cli_timeout = 60.0

    def setUp(self):
        super().setUp()
        cls = type(self)
        entry = _SHARED.get(cls)
        if entry is None:
            entry = _SHARED[cls] = {"deployment": start_deployment(),
                                    "ran": set()}
            entry["flavor"] = api_flavor(entry["deployment"].api)
        self.deployment = entry["deployment"]
        self._processes.extend(self.deployment.processes)
        dead = [p.host for p in self.deployment.processes
                if not p.running()]
        if dead:
            raise AssertionError(f"processes of the shared deployment "
                                 f"died: {dead}")
        entry["ran"].add(self._testMethodName)
        names = {name for name in dir(cls) if name.startswith("test")}
        if names <= entry["ran"]:
            self.addCleanup(lambda: _SHARED.pop(cls)["deployment"]
                            .cleanup())
        self.flavor = entry["flavor"]
        self.proc = self.deployment.api
        self.clouds = os.path.join(self.proc.directory, "clouds.yaml")
        if not os.path.exists(self.clouds):
            with open(self.clouds, "w", encoding="utf-8") as handle:
                handle.write(clouds_yaml(self.proc))
        self.agent_hosts = {p.host for p in
                            self.deployment.by_role("compute-agent")}

    # --- helpers: actions by the CLI, waits over plain HTTP ---------------

    # (the images, and what is only looked at, over plain HTTP: each CLI
    # run costs more than a second of CPU on this machine)

    def image(self, **properties: str) -> dict:
        response = self.proc.post("/v2/images", dict(
            properties, name="dist-img-" + uuid.uuid4().hex[:6],
            disk_format="raw", container_format="bare",
            visibility="public"), api="image", token=ADMIN)
        self.assertEqual(response.code, 201, response)
        image = response.json
        response = self.proc.put(
            f"/v2/images/{image['id']}/file", api="image", token=ADMIN,
            raw=b"\0" * 4096,
            headers={"Content-Type": "application/octet-stream"})
        self.assertEqual(response.code, 204, response)
        return image

    def console(self, server_id: str) -> str:
        response = self.proc.post(f"/v2.1/servers/{server_id}/action",
                                  {"os-getConsoleOutput": {}}, token=ADMIN,
                                  version="2.79")
        self.assertEqual(response.code, 200, response)
        return response.json["output"]

    def actions(self, server_id: str) -> set[str]:
        response = self.proc.get(
            f"/v2.1/servers/{server_id}/os-instance-actions", token=ADMIN,
            version="2.79")
        self.assertEqual(response.code, 200, response)
        return {a["action"] for a in response.json["instanceActions"]}

    def boot(self, image: str) -> dict:
        # (no --wait: the CLI polls every 5 s, this every 0.3 s)
        server = self.openstack(
            "server", "create", "--flavor", self.flavor, "--image", image,
            "--auto-network", "dist-" + uuid.uuid4().hex[:8])
        server = self.wait_status(server["id"], "ACTIVE", RUNNING)
        self.assertIn(server["OS-EXT-SRV-ATTR:host"], self.agent_hosts)
        return server

    def wait_image(self, image_id: str) -> dict:
        def active():
            response = self.proc.get(f"/v2/images/{image_id}", api="image",
                                     token=ADMIN)
            self.assertEqual(response.code, 200, response)
            return response.json if response.json["status"] == "active" \
                else None
        return wait_until(active, timeout=STATUS_TIMEOUT, interval=0.3,
                          message=f"image {image_id} active")

    def show(self, server_id: str) -> dict | None:
        response = self.proc.get(f"/v2.1/servers/{server_id}", token=ADMIN,
                                 version="2.79")
        if response.code == 404:
            return None
        self.assertEqual(response.code, 200, response)
        return response.json["server"]

    def image_ids(self) -> set[str]:
        response = self.proc.get("/v2/images?limit=1000", api="image",
                                 token=ADMIN)
        self.assertEqual(response.code, 200, response)
        return {image["id"] for image in response.json["images"]}

    # --- the tests --------------------------------------------------------

    def test_snapshot_backup_rotation_and_shelving(self):
        base = self.image()
        server = self.boot(base["id"])
        server_id = server["id"]

        snapshot = self.openstack("server", "image", "create", "--wait",
                                  "--name", "dist-snap", server_id)
        self.assertEqual(snapshot["status"], "active", snapshot)
        shown = self.wait_image(snapshot["id"])
        self.assertEqual(shown["image_type"], "snapshot")
        self.assertEqual(shown["instance_uuid"], server_id)

        # rotation 1, twice: the older backup is deleted
        made = []
        for n in (1, 2):
            backup = self.openstack(
                "server", "backup", "create", "--name", f"dist-bk-{n}",
                "--type", "daily", "--rotate", "1", server_id)
            self.wait_image(backup["id"])
            self.wait_status(server_id, "ACTIVE")
            made.append(backup["id"])
        images = self.image_ids()
        self.assertNotIn(made[0], images)
        self.assertIn(made[1], images)
        self.assertIn(snapshot["id"], images)  # not a backup: kept

        # a server booted from the snapshot, on either agent
        self.boot(snapshot["id"])

        # shelve keeps it on its host (shelved_offload_time -1); unshelve
        # starts it there again
        host = self.show(server_id)["OS-EXT-SRV-ATTR:host"]
        self.openstack("server", "shelve", server_id, parse=False)
        shown = self.wait_status(server_id, "SHELVED")
        self.assertEqual(shown["OS-EXT-SRV-ATTR:host"], host)
        self.assertEqual(len(self.image_ids() - images), 1)
        self.openstack("server", "unshelve", "--wait", server_id,
                       parse=False)
        shown = self.wait_status(server_id, "ACTIVE", RUNNING)
        self.assertEqual(shown["OS-EXT-SRV-ATTR:host"], host)
        self.assertEqual(self.image_ids(), images)

        # shelve --offload frees the host; unshelve schedules it again
        self.openstack("server", "shelve", "--offload", server_id,
                       parse=False)
        shown = self.wait_status(server_id, "SHELVED_OFFLOADED")
        self.assertFalse(shown.get("OS-EXT-SRV-ATTR:host"), shown)
        [shelved] = self.image_ids() - images
        self.openstack("server", "unshelve", "--wait", server_id,
                       parse=False)
        shown = self.wait_status(server_id, "ACTIVE", RUNNING)
        self.assertEqual(shown["id"], server_id)
        self.assertIn(shown["OS-EXT-SRV-ATTR:host"], self.agent_hosts)
        self.assertNotIn(shelved, self.image_ids())

    def test_rebuild_rescue_dump_and_password(self):
        plain = self.image()
        agent_image = self.image(hw_qemu_guest_agent="yes")
        server = self.boot(plain["id"])
        server_id = server["id"]
        before = self.show(server_id)

        # no guest agent in its image: Nova's 409, through the agent
        refused = self.openstack("server", "set", "--password", "s3cret",
                                 server_id, parse=False, check=False)
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("hw_qemu_guest_agent", refused.stderr)

        self.openstack("server", "rebuild", "--image", agent_image["id"],
                       "--wait", server_id, parse=False)
        shown = self.wait_status(server_id, "ACTIVE", RUNNING)
        self.assertEqual(shown["image"]["id"], agent_image["id"])
        self.assertEqual(shown["addresses"], before["addresses"])
        self.assertEqual(shown["OS-EXT-SRV-ATTR:host"],
                         before["OS-EXT-SRV-ATTR:host"])
        # the new image has the agent: the fake driver takes the password
        self.openstack("server", "set", "--password", "s3cret", server_id,
                       parse=False)

        self.openstack("server", "rescue", "--image", plain["id"],
                       server_id, parse=False)
        self.wait_status(server_id, "RESCUE", RUNNING)
        self.openstack("server", "unrescue", server_id, parse=False)
        self.wait_status(server_id, "ACTIVE", RUNNING)

        self.openstack("--os-compute-api-version", "2.17", "server", "dump",
                       "create", server_id, parse=False)

        wait_until(lambda: "NMI received" in self.console(server_id),
                   timeout=STATUS_TIMEOUT, interval=0.3, message="the NMI")
        self.assertLessEqual({"rebuild", "rescue", "unrescue",
                              "changePassword", "trigger_crash_dump"},
                             self.actions(server_id))

    def test_soft_delete_restore_and_forced_delete(self):
        server = self.boot(self.image()["id"])
        server_id = server["id"]
        in_use = self.instances_in_use()
        self.openstack("server", "delete", server_id, parse=False)
        self.wait_status(server_id, "SOFT_DELETED", SHUTDOWN)
        # it still counts in the project's usage until it is gone
        self.assertEqual(self.instances_in_use(), in_use)
        self.openstack("server", "restore", server_id, parse=False)
        self.wait_status(server_id, "ACTIVE", RUNNING)
        self.openstack("server", "delete", server_id, parse=False)
        self.wait_status(server_id, "SOFT_DELETED", SHUTDOWN)
        self.openstack("server", "delete", "--force", server_id,
                       parse=False)
        wait_until(lambda: self.show(server_id) is None,
                   timeout=STATUS_TIMEOUT, interval=0.3,
                   message="the forced delete")
        self.assertEqual(self.instances_in_use(), in_use - 1)

    def instances_in_use(self) -> int:
        usage = self.proc.get("/v2.1/os-quota-sets/admin/detail",
                              token=ADMIN, version="2.79")
        self.assertEqual(usage.code, 200, usage)
        return usage.json["quota_set"]["instances"]["in_use"]
