"""``twistd -n compute-all`` (every role in one process, the local bus,
SQLite, the fake driver) driven by the ``openstack`` CLI and by raw HTTP:
servers really boot, and every lifecycle action reaches its status.

The config file only sets ports, ``state_path``, a unique host name and
short intervals; everything else is compute-all's embedded defaults
(default flavors, a default image).
"""

from __future__ import annotations

import os
import re
import subprocess
import time
import uuid

from tests.integration.harness import (
    OPENSTACK, TwistdTestCase, api_boot, api_hypervisors, api_services,
    api_wait_servers, wait_until)
from tests.integration.test_openstack_cli import OpenStackCLIMixin

#: seconds one CLI call may take (the machine is shared and slow)
CLI_TIMEOUT = 90.0
#: seconds a status change may take to show
STATUS_TIMEOUT = 30.0

#: the flavor and image compute-all seeds into a fresh database
FLAVOR = "m1.tiny"
IMAGE = "cirros-like-tiny"

#: power states as ``-f json`` prints them (the numbers; the table
#: format names them Running, Shutdown, ...)
RUNNING, PAUSED, SHUTDOWN, SUSPENDED = 1, 3, 4, 7


def short_intervals(host: str, **default) -> dict:
    options = {"DEFAULT": {"host": host, "report_interval": 1,
                           "periodic_fuzzy_delay": 0,
                           "update_resources_interval": 1,
                           "build_timeout_check_interval": 2}}
    options["DEFAULT"].update(default)
    return options


class AllInOneCLITests(OpenStackCLIMixin, TwistdTestCase):
    """The ``openstack`` CLI, unchanged, against ``compute-all``."""

    cli_timeout = CLI_TIMEOUT

    host = "aio-" + uuid.uuid4().hex[:6]
    shared = {"role": "compute-all", "apis": ("osapi_compute", "image"),
              "options": short_intervals(host)}

    def setUp(self):
        super().setUp()
        # compute-all wrote it into its state directory: the CLI of every
        # test here runs on that file, unchanged.
        self.clouds = os.path.join(self.proc.directory, "clouds.yaml")

    def test_clouds_yaml_written_and_announced(self):
        self.assertTrue(os.path.exists(self.clouds))
        line = (f"export OS_CLIENT_CONFIG_FILE={self.clouds} "
                f"OS_CLOUD=twisted-compute")
        self.proc.wait_for_log(re.escape(line))
        done = subprocess.run(
            ["sh", "-c", line + " && exec \"$0\" flavor list -f value -c "
             "Name", OPENSTACK], capture_output=True, text=True,
            timeout=self.cli_timeout, cwd=self.proc.directory,
            env={"PATH": os.environ.get("PATH", ""),
                 "HOME": self.proc.directory})
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn(FLAVOR, done.stdout.split())
        # The file's password auth gets a noauth token scoped to the
        # project admin: commands that need the caller's project work.
        quota = self.openstack("quota", "show")
        self.assertIn("instances", {row["Resource"] for row in quota})
        self.assertEqual(self.openstack("token", "issue")["project_id"],
                         "admin")

    def create(self, *extra: str) -> dict:
        name = "aio-" + uuid.uuid4().hex[:8]
        return self.openstack("server", "create", "--flavor", FLAVOR,
                              "--image", IMAGE, "--auto-network", *extra,
                              "--wait", name)

    def test_server_lifecycle(self):
        server = self.create()
        self.assertEqual(server["status"], "ACTIVE", server)
        server_id = server["id"]
        shown = self.show(server_id)
        self.assertEqual(shown["status"], "ACTIVE")
        self.assertEqual(shown["OS-EXT-STS:power_state"], RUNNING)
        self.assertEqual(shown["OS-EXT-SRV-ATTR:host"], self.host)

        self.openstack("server", "stop", server_id, parse=False)
        self.wait_status(server_id, "SHUTOFF", SHUTDOWN)
        self.openstack("server", "start", server_id, parse=False)
        self.wait_status(server_id, "ACTIVE", RUNNING)
        self.openstack("server", "reboot", "--soft", "--wait", server_id,
                       parse=False)
        self.wait_status(server_id, "ACTIVE", RUNNING)
        self.openstack("server", "reboot", "--hard", "--wait", server_id,
                       parse=False)
        self.wait_status(server_id, "ACTIVE", RUNNING)
        self.openstack("server", "pause", server_id, parse=False)
        self.wait_status(server_id, "PAUSED", PAUSED)
        self.openstack("server", "unpause", server_id, parse=False)
        self.wait_status(server_id, "ACTIVE", RUNNING)
        self.openstack("server", "suspend", server_id, parse=False)
        self.wait_status(server_id, "SUSPENDED", SUSPENDED)
        self.openstack("server", "resume", server_id, parse=False)
        self.wait_status(server_id, "ACTIVE", RUNNING)

        # Every action was recorded, with its events, in order.
        events = self.openstack("server", "event", "list", server_id)
        actions = [row["Action"] for row in events]
        for action in ("create", "stop", "start", "reboot", "pause",
                       "unpause", "suspend", "resume"):
            self.assertIn(action, actions, events)
        self.assertEqual(actions.count("reboot"), 2, events)
        create = [row for row in events if row["Action"] == "create"][0]
        detail = self.openstack("server", "event", "show", server_id,
                                create["Request ID"])
        self.assertEqual(detail["action"], "create")
        self.assertTrue(detail["events"], detail)
        self.assertTrue(all(event["result"] == "Success"
                            for event in detail["events"]), detail)

        # The fake guest's console names the instance.
        log = self.openstack("console", "log", "show", server_id,
                             parse=False)
        self.assertIn(server_id, log.stdout)

        self.openstack("server", "delete", "--wait", server_id, parse=False)
        listed = self.openstack("server", "list") or []
        self.assertNotIn(server_id, [row["ID"] for row in listed])
        gone = self.openstack("server", "show", server_id, parse=False,
                              check=False)
        self.assertNotEqual(gone.returncode, 0)

    def test_diagnostics_and_external_events(self):
        """Through the agent over the in-process bus: the CLI's
        ``server show --diagnostics``, and an external event recorded
        and delivered."""
        server = self.create()
        diagnostics = self.openstack("server", "show", "--diagnostics",
                                     server["id"])
        self.assertEqual(diagnostics["driver"], "fake")
        self.assertEqual(diagnostics["state"], "running")
        response = self.proc.post("/v2.1/os-server-external-events", {
            "events": [{"name": "network-vif-plugged",
                        "server_uuid": server["id"], "tag": "p1"},
                       {"name": "network-changed",
                        "server_uuid": str(uuid.uuid4())}]})
        self.assertEqual(response.code, 207, response)
        self.assertEqual([e["code"] for e in response.json["events"]],
                         [200, 404])
        self.openstack("server", "delete", "--wait", server["id"],
                       parse=False)

    def test_multi_create(self):
        name = "aio-multi-" + uuid.uuid4().hex[:6]
        first = self.openstack("server", "create", "--flavor", FLAVOR,
                               "--image", IMAGE, "--auto-network", "--min",
                               "3", "--max", "3", "--wait", name)
        self.assertEqual(first["status"], "ACTIVE", first)

        def three_active():
            rows = self.openstack("server", "list", "--name",
                                  f"^{name}") or []
            if len(rows) == 3 and all(r["Status"] == "ACTIVE"
                                      for r in rows):
                return rows
            return None
        rows = wait_until(three_active, STATUS_TIMEOUT, interval=0.5,
                          message="three ACTIVE servers")
        self.assertEqual(sorted(r["Name"] for r in rows),
                         [f"{name}-{i}" for i in (1, 2, 3)])
        self.assertIn(first["id"], [r["ID"] for r in rows])
        self.openstack("server", "delete", "--wait",
                       *[r["ID"] for r in rows], parse=False)

    def test_service_list(self):
        def all_up():
            rows = self.openstack("compute", "service", "list",
                                  "--host", self.host)
            binaries = {r["Binary"]: r for r in rows}
            if set(binaries) == {"nova-conductor", "nova-scheduler",
                                 "nova-compute"} \
                    and all(r["State"] == "up" and r["Status"] == "enabled"
                            for r in rows):
                return binaries
            return None
        binaries = wait_until(all_up, STATUS_TIMEOUT, interval=0.5,
                              message="conductor, scheduler, compute up")
        self.assertEqual(binaries["nova-compute"]["Zone"], "nova")
        self.assertEqual(binaries["nova-conductor"]["Zone"], "internal")

    def test_hypervisor_list(self):
        listed = self.openstack("hypervisor", "list")
        rows = [r for r in listed if r["Hypervisor Hostname"] == self.host]
        self.assertEqual(len(rows), 1, listed)
        self.assertEqual(rows[0]["State"], "up")
        self.assertEqual(rows[0]["Hypervisor Type"], "fake")
        shown = self.openstack("hypervisor", "show", self.host)
        self.assertEqual(shown["service_host"], self.host)


AIO5_HOST = "aio5-" + uuid.uuid4().hex[:6]


class AllInOneHTTPTests(TwistdTestCase):
    """Raw HTTP against ``compute-all`` with five fake agents."""

    host = AIO5_HOST
    agents = [f"{AIO5_HOST}-fake-{i}" for i in range(1, 6)]
    shared = {"role": "compute-all", "apis": ("osapi_compute", "image"),
              "options": short_intervals(host, fake_agents=5)}
    # Read the compute nodes on every request: the test waits for the
    # five agents' first reports before it boots.
    shared["options"]["scheduler"] = {"host_state_refresh_interval": 0}

    def image_id(self) -> str:
        response = self.proc.get("/v2/images", api="image")
        self.assertEqual(response.code, 200, response)
        return [i["id"] for i in response.json["images"]
                if i["name"] == IMAGE][0]

    def wait_agents(self):
        """Until the five agents are up and have reported their nodes."""
        def computes_up():
            rows = [s for s in api_services(self.proc)
                    if s["binary"] == "nova-compute"]
            hosts = sorted(s["host"] for s in rows if s["state"] == "up")
            return hosts == sorted(self.agents) and rows
        wait_until(computes_up, STATUS_TIMEOUT, interval=0.3,
                   message="five computes up")

        def nodes():
            return {h["hypervisor_hostname"]
                    for h in api_hypervisors(self.proc)} == set(self.agents)
        wait_until(nodes, STATUS_TIMEOUT, interval=0.3,
                   message="five hypervisors")

    def test_services_of_five_agents(self):
        self.wait_agents()
        hypervisors = api_hypervisors(self.proc)
        self.assertEqual(sorted(h["hypervisor_hostname"]
                                for h in hypervisors), sorted(self.agents))
        self.assertTrue(all(h["state"] == "up" and h["status"] == "enabled"
                            for h in hypervisors), hypervisors)

    def test_servers_spread_over_hosts(self):
        self.wait_agents()
        image = self.image_id()
        started = time.monotonic()
        ids = api_boot(self.proc, "1", image, count=10)
        servers = api_wait_servers(self.proc, ids, STATUS_TIMEOUT)
        elapsed = time.monotonic() - started
        self.assertEqual({s["status"] for s in servers.values()},
                         {"ACTIVE"}, servers)
        per_host: dict[str, int] = {}
        for server in servers.values():
            host = server["OS-EXT-SRV-ATTR:host"]
            per_host[host] = per_host.get(host, 0) + 1
        # The scheduler's claims spread a burst over every host (the
        # weighers prefer the emptiest host, equal hosts get 2 each).
        self.assertEqual(set(per_host), set(self.agents), per_host)
        self.assertEqual(sorted(per_host.values()), [2] * 5, per_host)
        print(f"\ncompute-all, 5 fake agents: 10 servers ACTIVE in "
              f"{elapsed:.2f} s")
        # The agents' reports catch up with what they run.
        def reported():
            hypervisors = {h["hypervisor_hostname"]: h
                           for h in api_hypervisors(self.proc)}
            return all(hypervisors[h]["running_vms"] == per_host[h]
                       for h in self.agents) and hypervisors
        hypervisors = wait_until(reported, STATUS_TIMEOUT, interval=0.5,
                                 message="hypervisors to report the VMs")
        for host in self.agents:
            self.assertEqual(hypervisors[host]["vcpus_used"], per_host[host])
        for server_id in ids:
            response = self.proc.delete(f"/v2.1/servers/{server_id}")
            self.assertEqual(response.code, 204, response)
