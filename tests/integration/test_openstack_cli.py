"""The ``openstack`` CLI (python-openstackclient), unchanged, against a
running ``twistd -n compute-api`` (noauth, SQLite).

The CLI is pointed at the process by a clouds.yaml: ``admin_token`` auth
(noauth tokens are ``user:project``; ``admin`` is an admin), the compute
endpoint at ``/v2.1``, identity at ``/identity`` (the Keystone v3 version
document the compute port serves, which the CLI reads before commands that
may look up projects) and the image API on its own port.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid

from tests.integration.harness import (
    OPENSTACK, TwistdProcess, TwistdTestCase, run_command, wait_until)

#: seconds one CLI call may take
CLI_TIMEOUT = 60.0


def clouds_yaml(proc: TwistdProcess, cloud: str = "twisted-compute",
                token: str = "admin:admin") -> str:
    """A clouds.yaml that points the CLI at ``proc``."""
    compute = f"{proc.url('osapi_compute')}/v2.1"
    return f"""\
clouds:
  {cloud}:
    auth_type: admin_token
    auth:
      token: "{token}"
      endpoint: {compute}
    identity_api_version: "3"
    compute_endpoint_override: {compute}
    identity_endpoint_override: {proc.url('osapi_compute')}/identity
    image_endpoint_override: {proc.url('image')}
    region_name: RegionOne
"""


class OpenStackCLIMixin:
    """``self.openstack(...)``: the ``openstack`` CLI against
    ``self.proc`` with the clouds.yaml at ``self.clouds``, each call
    bounded by ``cli_timeout`` seconds."""

    cli_timeout = CLI_TIMEOUT

    def openstack(self, *args: str, parse: bool = True, check: bool = True):
        """Run ``openstack --os-cloud twisted-compute ARGS`` (with ``-f
        json`` when ``parse``); returns the parsed output (or the
        CompletedProcess when not ``parse``)."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("OS_")}
        env["OS_CLIENT_CONFIG_FILE"] = self.clouds
        env["HOME"] = self.proc.directory
        argv = [OPENSTACK, "--os-cloud", "twisted-compute", *args]
        if parse:
            argv += ["-f", "json"]
        try:
            done = run_command(argv, timeout=self.cli_timeout, env=env,
                               cwd=self.proc.directory)
        except subprocess.TimeoutExpired:
            self.fail(f"openstack {' '.join(args)} took over "
                      f"{self.cli_timeout}s")
        if check and done.returncode != 0:
            self.fail(f"openstack {' '.join(args)} exited "
                      f"{done.returncode}:\n{done.stdout}\n{done.stderr}")
        if not parse:
            return done
        return json.loads(done.stdout) if done.stdout.strip() else None

    #: How long :meth:`wait_status` waits.
    status_timeout = 30.0

    def show(self, server_id: str) -> dict | None:
        return self.openstack("server", "show", server_id)

    def _api_show(self, server_id: str) -> dict | None:
        """The server as the API answers an admin's plain GET (what
        ``server show`` prints comes from the same body): a cheap poll,
        where each ``openstack`` run costs a second of CPU.  None when
        the API cannot be asked that way (then only the CLI is polled)."""
        if not getattr(self, "_api_polls", True):
            return None
        try:
            response = self.proc.get(f"/v2.1/servers/{server_id}",
                                     token="admin:admin")
        except Exception:  # noqa: BLE001 - not a process with HTTP verbs
            response = None
        if response is None or response.code in (401, 403):
            self._api_polls = False
            return None
        if response.code == 404:
            self.fail(f"server {server_id} is gone")
        return response.json["server"] if response.code == 200 else {}

    def wait_status(self, server_id: str, status: str,
                    power_state: int | None = None) -> dict:
        """Wait until ``server show`` gives ``status`` with no task state
        (and ``power_state``) and answer what it printed; a server gone
        to ERROR (unless that is the status waited for) fails the test at
        once.  The API is polled in between, the CLI run only when the
        API says the server is there."""
        def ready(shown) -> bool:
            if shown is None:
                self.fail(f"server {server_id} is gone")
            if shown.get("status") == "ERROR" and status != "ERROR":
                self.fail(f"server {server_id} went to ERROR: {shown}")
            if shown.get("status") != status \
                    or shown.get("OS-EXT-STS:task_state"):
                return False
            return power_state is None or \
                shown.get("OS-EXT-STS:power_state") == power_state

        def reached():
            polled = self._api_show(server_id)
            if polled is not None and not ready(polled):
                return None
            shown = self.show(server_id)
            return shown if ready(shown) else None
        return wait_until(reached, self.status_timeout, interval=0.3,
                          message=f"{server_id} to be {status}")


class OpenStackCLITests(OpenStackCLIMixin, TwistdTestCase):

    shared = {"apis": ("osapi_compute", "image"),
              "options": {"quota": {"instances": 7, "cores": 13,
                                    "ram": 4096, "key_pairs": 11}}}

    def setUp(self):
        super().setUp()
        self.clouds = os.path.join(self.proc.directory, "clouds.yaml")
        if not os.path.exists(self.clouds):
            with open(self.clouds, "w", encoding="utf-8") as handle:
                handle.write(clouds_yaml(self.proc))

    def make_flavor(self) -> dict:
        name = "cli-" + uuid.uuid4().hex[:8]
        return self.openstack("flavor", "create", "--ram", "64", "--disk",
                              "1", "--vcpus", "1", name)

    def make_image(self) -> dict:
        path = os.path.join(self.proc.directory, "small.img")
        with open(path, "wb") as handle:
            handle.write(b"twisted-compute test image\n" * 40)
        name = "cli-" + uuid.uuid4().hex[:8]
        return self.openstack("image", "create", "--file", path,
                              "--disk-format", "raw", "--container-format",
                              "bare", "--public", name)

    def test_flavor_create_and_list(self):
        flavor = self.make_flavor()
        self.assertEqual(flavor["ram"], 64)
        self.assertEqual(flavor["vcpus"], 1)
        listed = self.openstack("flavor", "list")
        self.assertIn(flavor["id"], [row["ID"] for row in listed])
        row = [r for r in listed if r["ID"] == flavor["id"]][0]
        self.assertEqual(row["Name"], flavor["name"])

    def test_keypair_lifecycle(self):
        name = "cli-" + uuid.uuid4().hex[:8]
        # Without -f json, create prints the private key.
        done = self.openstack("keypair", "create", name, parse=False)
        self.assertIn("PRIVATE KEY", done.stdout)
        listed = self.openstack("keypair", "list")
        self.assertIn(name, [row["Name"] for row in listed])
        shown = self.openstack("keypair", "show", name)
        self.assertEqual(shown["name"], name)
        self.assertTrue(shown["fingerprint"])
        self.openstack("keypair", "delete", name, parse=False)
        listed = self.openstack("keypair", "list")
        self.assertNotIn(name, [row["Name"] for row in listed or []])
        gone = self.openstack("keypair", "show", name, check=False,
                              parse=False)
        self.assertNotEqual(gone.returncode, 0)

    def test_image_create_and_list(self):
        image = self.make_image()
        self.assertEqual(image["disk_format"], "raw")
        self.assertEqual(image["status"], "active")
        listed = self.openstack("image", "list")
        self.assertIn(image["id"], [row["ID"] for row in listed])

    def test_limits_show_absolute(self):
        # The limits come from the process's [quota] options.
        limits = self.openstack("limits", "show", "--absolute")
        values = {row["Name"]: row["Value"] for row in limits}
        self.assertEqual(values["max_total_instances"], 7)
        self.assertEqual(values["max_total_cores"], 13)
        self.assertEqual(values["max_total_ram_size"], 4096)
        self.assertEqual(values["max_total_keypairs"], 11)
        self.assertIn("total_instances_used", values)

    def test_server_lifecycle(self):
        # "--auto-network" sends networks "auto" (no Neutron needed);
        # "--network auto" would look a network named "auto" up in Neutron.
        flavor = self.make_flavor()
        image = self.make_image()
        name = "cli-" + uuid.uuid4().hex[:8]
        server = self.openstack("server", "create", "--flavor", flavor["id"],
                                "--image", image["id"], "--auto-network",
                                name)
        self.assertEqual(server["name"], name)
        self.assertEqual(server["status"], "BUILD")
        listed = self.openstack("server", "list")
        self.assertIn(server["id"], [row["ID"] for row in listed])
        shown = self.openstack("server", "show", server["id"])
        self.assertEqual(shown["id"], server["id"])
        self.assertEqual(shown["name"], name)
        self.openstack("server", "delete", server["id"], parse=False)

        def gone():
            rows = self.openstack("server", "list") or []
            return server["id"] not in [row["ID"] for row in rows]
        wait_until(gone, 30, interval=0.5, message="the server to go")

    # --- admin commands: project lookups (answered by /identity under
    # noauth), aggregates, hypervisors ------------------------------------

    def insert_compute_host(self) -> tuple[str, str]:
        """A compute service and its compute node, written to the
        process's database as an agent would; returns (host, node)."""
        import sqlalchemy as sa

        from tests.api.infra_rows import insert_compute_node, insert_service
        host = "cli-cmp-" + uuid.uuid4().hex[:8]
        node = host + ".example"
        engine = sa.create_engine(self.proc.db_url)
        try:
            with engine.begin() as conn:
                service = insert_service(conn, host=host)
                insert_compute_node(conn, service, host=host, hostname=node)
        finally:
            engine.dispose()
        return host, node

    def test_quota_of_named_project(self):
        project = "cli-proj-" + uuid.uuid4().hex[:8]
        other = "cli-proj-" + uuid.uuid4().hex[:8]
        self.openstack("quota", "set", "--instances", "5", "--cores", "9",
                       project, parse=False)

        def limits(name):
            # --compute: with no network endpoint configured the CLI
            # would otherwise ask the compute endpoint for Neutron quotas.
            rows = self.openstack("quota", "show", "--compute", name)
            return {row["Resource"]: row["Limit"] for row in rows}
        mine = limits(project)
        self.assertEqual((mine["instances"], mine["cores"]), (5, 9))
        # Defaults (the process's [quota] options) for anyone else.
        theirs = limits(other)
        self.assertEqual((theirs["instances"], theirs["cores"]), (7, 13))

    def test_flavor_access_for_named_project(self):
        flavor = self.openstack("flavor", "create", "--private", "--ram",
                                "64", "--disk", "1", "--vcpus", "1",
                                "cli-" + uuid.uuid4().hex[:8])
        project = "cli-proj-" + uuid.uuid4().hex[:8]
        self.openstack("flavor", "set", "--project", project, flavor["id"],
                       parse=False)
        shown = self.openstack("flavor", "show", flavor["id"])
        self.assertEqual(shown["access_project_ids"], [project])

    def test_aggregate_lifecycle(self):
        host, _node = self.insert_compute_host()
        name = "cli-agg-" + uuid.uuid4().hex[:8]
        zone = "cli-az-" + uuid.uuid4().hex[:8]
        created = self.openstack("aggregate", "create", "--zone", zone, name)
        self.assertEqual((created["name"], created["availability_zone"]),
                         (name, zone))
        listed = self.openstack("aggregate", "list")
        self.assertIn(name, [row["Name"] for row in listed])
        self.openstack("aggregate", "add", "host", name, host)
        self.openstack("aggregate", "set", "--property", "ssd=true", name,
                       parse=False)
        shown = self.openstack("aggregate", "show", name)
        self.assertEqual(shown["hosts"], [host])
        self.assertEqual(shown["availability_zone"], zone)
        self.assertEqual(shown["properties"].get("ssd"), "true")
        # The host's zone is the aggregate's, as the services list says.
        services = self.openstack("compute", "service", "list", "--host",
                                  host)
        self.assertEqual([row["Zone"] for row in services], [zone])
        # Adding it again is refused; a non-compute host is unknown.
        again = self.openstack("aggregate", "add", "host", name, host,
                               parse=False, check=False)
        self.assertNotEqual(again.returncode, 0)
        unknown = self.openstack("aggregate", "add", "host", name,
                                 "no-such-host", parse=False, check=False)
        self.assertNotEqual(unknown.returncode, 0)
        # Not empty: delete is refused until the host is removed.
        refused = self.openstack("aggregate", "delete", name, parse=False,
                                 check=False)
        self.assertNotEqual(refused.returncode, 0)
        self.openstack("aggregate", "remove", "host", name, host)
        self.openstack("aggregate", "delete", name, parse=False)
        listed = self.openstack("aggregate", "list") or []
        self.assertNotIn(name, [row["Name"] for row in listed])

    def test_hypervisor_list_and_show(self):
        host, node = self.insert_compute_host()
        listed = self.openstack("hypervisor", "list")
        rows = [r for r in listed if r["Hypervisor Hostname"] == node]
        self.assertEqual(len(rows), 1, listed)
        self.assertEqual(rows[0]["State"], "up")
        shown = self.openstack("hypervisor", "show", node)
        self.assertEqual(shown["hypervisor_hostname"], node)
        self.assertEqual(shown["service_host"], host)
        # The CLI speaks 2.88 to hypervisors: no capacity fields since.
        self.assertNotIn("vcpus", shown)


class OpenStackCLIAllInOneTests(OpenStackCLIMixin, TwistdTestCase):
    """The commands a new user runs first, against ``compute-all`` (a
    fake agent, the local bus), at the highest microversion the CLI
    negotiates with a server that serves 2.104."""

    cli_timeout = 90.0
    host = "cli-aio-" + uuid.uuid4().hex[:6]
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

    def test_versions_advertise_2104(self):
        response = self.proc.get("/v2.1", token=None)
        self.assertEqual(response.json["version"]["version"], "2.104")

    def test_first_commands(self):
        flavors = self.openstack("flavor", "list")
        self.assertIn("m1.tiny", [row["Name"] for row in flavors])
        name = "cli-" + uuid.uuid4().hex[:8]
        done = self.openstack("keypair", "create", name, parse=False)
        self.assertIn("PRIVATE KEY", done.stdout)
        self.assertIn(name, [row["Name"] for row in
                             self.openstack("keypair", "list")])
        server = self.openstack(
            "server", "create", "--flavor", "m1.tiny", "--image",
            "cirros-like-tiny", "--auto-network", "--key-name", name,
            "--wait", "cli-" + uuid.uuid4().hex[:8])
        self.assertEqual(server["status"], "ACTIVE", server)
        self.assertIn(server["id"], [row["ID"] for row in
                                     self.openstack("server", "list")])
        shown = self.openstack("server", "show", server["id"])
        self.assertEqual(shown["status"], "ACTIVE")
        # Booted without a zone: placed in the host's (the default).
        self.assertEqual(shown["OS-EXT-AZ:availability_zone"], "nova")
        # What 2.96 and 2.98 add, at 2.104 over plain HTTP.
        raw = self.proc.get(f"/v2.1/servers/{server['id']}",
                            token="admin:admin", version="2.104").json[
            "server"]
        self.assertIsNone(raw["pinned_availability_zone"])
        self.assertEqual(raw["OS-EXT-AZ:availability_zone"], "nova")
        self.assertIn("disk_format", raw["image"]["properties"])
        self.openstack("server", "delete", "--wait", server["id"],
                       parse=False)
        self.openstack("keypair", "delete", name, parse=False)

    def test_hypervisor_list_and_show_with_uptime(self):
        listed = self.openstack("hypervisor", "list")
        rows = [r for r in listed if r["Hypervisor Hostname"] == self.host]
        self.assertEqual(len(rows), 1, listed)

        def reported():
            body = self.proc.get("/v2.1/os-hypervisors/detail",
                                 version="2.88").json["hypervisors"]
            mine = [h for h in body
                    if h["hypervisor_hostname"] == self.host]
            return mine[0] if mine and mine[0]["uptime"] else None
        raw = wait_until(reported, 30, interval=1,
                         message="the agent to report its uptime")
        self.assertRegex(raw["uptime"],
                         r"^ \d\d:\d\d:\d\d up .*, +\d+ users?, +load average")
        shown = self.openstack("hypervisor", "show", self.host)
        self.assertEqual(shown["service_host"], self.host)
        # The CLI splits the line into host_time, uptime, users, load.
        self.assertTrue(shown.get("uptime"), shown)
        self.assertNotIn("vcpus", shown)


class OpenStackCLIWalkTests(OpenStackCLIMixin, TwistdTestCase):
    """The ``openstack`` commands a user runs on a server's life, each at
    the microversion the CLI negotiates (openstacksdk picks the highest
    both sides know: up to 2.104 here), against ``compute-all``."""

    cli_timeout = 90.0
    host = "cli-walk-" + uuid.uuid4().hex[:6]
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

    status_timeout = 60.0

    def test_server_commands(self):
        name = "walk-" + uuid.uuid4().hex[:8]
        server = self.openstack(
            "server", "create", "--flavor", "m1.tiny", "--image",
            "cirros-like-tiny", "--auto-network", "--wait", name)
        sid = server["id"]
        self.assertEqual(server["status"], "ACTIVE", server)
        long = self.openstack("server", "list", "--long")
        self.assertIn(sid, [row["ID"] for row in long])
        self.assertIn(sid, [row["ID"] for row in self.openstack(
            "server", "list", "--status", "ACTIVE", "--flavor", "m1.tiny",
            "--name", "walk-")])

        # set / unset: name, property, description, tag, hostname
        renamed = name + "-b"
        self.openstack("server", "set", "--name", renamed, "--property",
                       "color=blue", "--description", "walked", "--tag",
                       "t1", "--hostname", "walkhost", sid, parse=False)
        shown = self.openstack("server", "show", sid)
        self.assertEqual(shown["name"], renamed)
        self.assertEqual(shown["description"], "walked")
        self.assertIn("color", str(shown["properties"]))
        self.assertIn("t1", str(shown["tags"]))
        self.assertEqual(shown["OS-EXT-SRV-ATTR:hostname"], "walkhost")
        self.openstack("server", "unset", "--property", "color", "--tag",
                       "t1", sid, parse=False)
        shown = self.openstack("server", "show", sid)
        self.assertNotIn("color", str(shown["properties"]))
        self.assertNotIn("t1", str(shown["tags"]))

        # power and lifecycle actions
        for command, status in (("stop", "SHUTOFF"), ("start", "ACTIVE"),
                                ("pause", "PAUSED"), ("unpause", "ACTIVE"),
                                ("suspend", "SUSPENDED"),
                                ("resume", "ACTIVE")):
            self.openstack("server", command, sid, parse=False)
            self.wait_status(sid, status)
        self.openstack("server", "lock", "--reason", "walk", sid,
                       parse=False)
        self.assertTrue(self.openstack("server", "show", sid)["locked"])
        self.openstack("server", "unlock", sid, parse=False)
        self.openstack("server", "reboot", "--wait", sid, parse=False)
        self.openstack("server", "reboot", "--hard", "--wait", sid,
                       parse=False)

        events = self.openstack("server", "event", "list", sid)
        actions = {row["Action"] for row in events}
        for action in ("create", "stop", "start", "pause", "reboot"):
            self.assertIn(action, actions)
        one = events[0]
        shown_event = self.openstack("server", "event", "show", sid,
                                     one["Request ID"])
        self.assertEqual(shown_event["request_id"], one["Request ID"])

        log = self.openstack("console", "log", "show", sid, parse=False)
        self.assertEqual(log.returncode, 0)
        url = self.openstack("console", "url", "show", "--novnc", sid)
        self.assertIn("vnc_auto.html", url["url"])
        diagnostics = self.openstack("server", "show", "--diagnostics",
                                     sid)
        self.assertEqual(diagnostics["driver"], "fake")
        self.assertEqual(self.openstack("server", "volume", "list", sid),
                         [])
        self.assertEqual(self.openstack("server", "share", "list", sid),
                         [])
        self.openstack("server", "delete", "--wait", sid, parse=False)
        self.assertNotIn(sid, [row["ID"] for row in self.openstack(
            "server", "list")])

    def test_project_and_admin_commands(self):
        group = self.openstack("server", "group", "create", "--policy",
                               "anti-affinity", "walk-group")
        self.assertIn(group["id"], [row["ID"] for row in self.openstack(
            "server", "group", "list")])
        self.assertEqual(self.openstack("server", "group", "show",
                                        group["id"])["policy"],
                         "anti-affinity")
        self.openstack("server", "group", "delete", group["id"],
                       parse=False)

        zones = self.openstack("availability", "zone", "list", "--compute")
        self.assertIn("nova", [row["Zone Name"] for row in zones])
        services = self.openstack("compute", "service", "list")
        mine = [row for row in services if row["Host"] == self.host]
        self.assertTrue(mine, services)
        self.openstack("compute", "service", "set", "--disable",
                       "--disable-reason", "walk", self.host,
                       "nova-compute", parse=False)
        disabled = [row for row in self.openstack("compute", "service",
                                                  "list")
                    if row["Host"] == self.host
                    and row["Binary"] == "nova-compute"]
        self.assertEqual(disabled[0]["Status"], "disabled")
        self.openstack("compute", "service", "set", "--enable", self.host,
                       "nova-compute", parse=False)

        self.openstack("flavor", "set", "--property",
                       "hw:cpu_policy=shared", "m1.tiny", parse=False)
        self.assertIn("hw:cpu_policy", str(self.openstack(
            "flavor", "show", "m1.tiny")["properties"]))
        self.openstack("flavor", "unset", "--property", "hw:cpu_policy",
                       "m1.tiny", parse=False)

        key = "walk-" + uuid.uuid4().hex[:8]
        self.openstack("keypair", "create", key, parse=False)
        self.assertEqual(self.openstack("keypair", "show", key)["name"],
                         key)
        self.openstack("keypair", "delete", key, parse=False)

        aggregate = self.openstack("aggregate", "create", "--zone",
                                   "walk-zone", "walk-agg")
        self.openstack("aggregate", "add", "host", "walk-agg", self.host,
                       parse=False)
        self.openstack("aggregate", "cache", "image", "walk-agg",
                       "cirros-like-tiny", parse=False)
        self.assertIn(self.host, str(self.openstack(
            "aggregate", "show", "walk-agg")["hosts"]))
        self.openstack("aggregate", "remove", "host", "walk-agg",
                       self.host, parse=False)
        self.openstack("aggregate", "delete", str(aggregate["id"]),
                       parse=False)

        limits = self.openstack("limits", "show", "--absolute")
        self.assertIn("max_total_instances",
                      [row["Name"] for row in limits])
        hypervisors = self.openstack("hypervisor", "list")
        self.assertIn(self.host, [row["Hypervisor Hostname"]
                                  for row in hypervisors])
        gone = self.openstack("compute", "agent", "list", parse=False,
                              check=False)
        self.assertNotEqual(gone.returncode, 0)
        self.assertIn("410", gone.stderr + gone.stdout)
