"""Faults of the distributed control plane, each on separate ``twistd``
processes over the real RabbitMQ (a vhost of the test's own) and
PostgreSQL:

* a compute agent killed with SIGKILL is shown down within
  ``service_down_time`` and gets no new builds;
* RabbitMQ stopped and started while 20 builds are in flight: every
  server still ends ACTIVE, no process exits, RPC works again within 5 s;
* an agent whose every spawn fails: the builds are rescheduled to the
  others and all end ACTIVE, with the failed attempts in the actions;
* the only conductor killed mid-build and another started: no server
  stays in BUILD past ``instance_build_timeout``.
"""

from __future__ import annotations

import datetime
import time

from tests.integration.harness import (
    DeploymentTestCase, alive, api_actions, api_boot, api_flavor,
    api_hypervisors, api_image, api_servers, api_services,
    api_wait_servers, ensure_rabbitmq_running, kill_process, rabbit_reachable,
    rabbitmqctl, wait_until)

REPORT_INTERVAL = 1
SERVICE_DOWN_TIME = 5

#: the options every process of a deployment shares
OPTIONS = {
    "DEFAULT": {"report_interval": REPORT_INTERVAL,
                "service_down_time": SERVICE_DOWN_TIME,
                "update_resources_interval": 1,
                "build_timeout_check_interval": 2,
                "instance_build_timeout": 180},
    "quota": {"instances": -1, "cores": -1, "ram": -1},
}


def options(**sections) -> dict:
    """:data:`OPTIONS` with ``sections`` merged in."""
    merged = {name: dict(values) for name, values in OPTIONS.items()}
    for name, values in sections.items():
        merged.setdefault(name, {}).update(values)
    return merged


def parse_time(value: str) -> datetime.datetime:
    """An API timestamp (naive or with an offset) as aware UTC."""
    parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed


def hosts_of(servers: dict[str, dict]) -> dict[str, int]:
    per_host: dict[str, int] = {}
    for server in servers.values():
        host = server.get("OS-EXT-SRV-ATTR:host")
        per_host[host] = per_host.get(host, 0) + 1
    return per_host


class FaultTests(DeploymentTestCase):

    def cluster(self, agents: int = 2, conductors: int = 1,
                agent_options=None, **sections):
        """A deployment of ``conductors`` conductors, one scheduler,
        ``agents`` agents and an API, up and reported; returns it, the
        API process, a 1-vCPU flavor and an image."""
        deployment = self.deployment(options=options(**sections))
        api = deployment.start_cluster(conductors=conductors, schedulers=1,
                                       agents=agents,
                                       agent_options=agent_options)
        deployment.wait_services_up()
        deployment.wait_nodes(agents)
        return deployment, api, api_flavor(api), api_image(api)

    def assertAllAlive(self, deployment, but=()):
        for proc in deployment.processes:
            if proc in but:
                continue
            self.assertTrue(proc.running(), f"{proc.role} {proc.host} "
                            f"exited\n{proc.describe()}")

    # --- an agent killed ---------------------------------------------------

    def test_killed_agent_shown_down_and_skipped(self):
        deployment, api, flavor, image = self.cluster(agents=3)
        victim = deployment.agent("agent3")
        kill_process(victim)
        killed = time.monotonic()
        self.assertFalse(alive(victim.pid))

        def victim_down():
            states = {s["host"]: s["state"] for s in api_services(api)
                      if s["binary"] == "nova-compute"}
            return states[victim.host] == "down" and states
        states = wait_until(victim_down, SERVICE_DOWN_TIME + 10,
                            interval=0.2, message="the dead agent down")
        shown_down = time.monotonic() - killed
        # Down once its last heartbeat (before the kill) is older than
        # service_down_time; the margin covers polling on a busy machine.
        self.assertLessEqual(shown_down, SERVICE_DOWN_TIME + 2.0, states)
        self.assertEqual(sorted(h for h, s in states.items() if s == "up"),
                         sorted(deployment.host_name(a)
                                for a in ("agent1", "agent2")), states)
        nodes = {h["hypervisor_hostname"]: h for h in api_hypervisors(api)}
        self.assertEqual(nodes[victim.host]["state"], "down")

        # New builds go to the live agents only, and all succeed.
        ids = api_boot(api, flavor, image, count=4)
        ids += [api_boot(api, flavor, image)[0] for _ in range(4)]
        servers = api_wait_servers(api, ids, timeout=60)
        self.assertEqual({s["status"] for s in servers.values()},
                         {"ACTIVE"}, servers)
        per_host = hosts_of(servers)
        self.assertNotIn(victim.host, per_host)
        self.assertEqual(set(per_host), {deployment.host_name("agent1"),
                                         deployment.host_name("agent2")})
        self.assertAllAlive(deployment, but=(victim,))
        print(f"\nkilled agent shown down after {shown_down:.1f} s "
              f"(service_down_time {SERVICE_DOWN_TIME} s)")

    # --- the broker restarted ----------------------------------------------

    def test_rabbitmq_restart_with_builds_in_flight(self):
        # The reconnection backoff doubles from rabbit_retry_interval
        # (0.2 s) up to rabbit_interval_max: after an outage of D seconds
        # the next attempt can come up to about D seconds after the
        # broker's return (at most rabbit_interval_max, 3 s by default).
        # 2 s bounds it whatever this machine makes of stop_app/start_app.
        # No heartbeat can land while the broker is away: a
        # service_down_time longer than the outage keeps the agents "up"
        # through it, as in a real deployment (60 s by default), so that
        # the boot after the return tests the bus, not down detection.
        deployment, api, flavor, image = self.cluster(
            agents=2, fake_driver={"spawn_delay": 2},
            oslo_messaging_rabbit={"rabbit_interval_max": 2},
            DEFAULT={"service_down_time": 30})
        # Whatever happens below, the broker runs again afterwards (this
        # cleanup runs before the deployment's).
        self.addCleanup(ensure_rabbitmq_running)
        ids = api_boot(api, flavor, image, count=10)
        ids += api_boot(api, flavor, image, count=10)
        stopped = time.monotonic()
        done = rabbitmqctl("stop_app", timeout=60)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertFalse(rabbit_reachable())
        building = [s for i, s in api_servers(api).items() if i in ids
                    and s["status"] == "BUILD"]
        # If every build were done already the test would prove nothing.
        self.assertTrue(building, "no build was in flight when the broker "
                        "stopped: raise spawn_delay")
        time.sleep(2)
        done = rabbitmqctl("start_app", timeout=60)
        self.assertEqual(done.returncode, 0, done.stderr)
        wait_until(rabbit_reachable, 30, interval=0.05,
                   message="RabbitMQ's port")
        back = time.monotonic()
        back_wall = datetime.datetime.now(datetime.timezone.utc)

        # RPC works again: a new boot is scheduled (API -cast-> conductor
        # -call-> scheduler, reply -> conductor) and every agent's
        # heartbeat (a call to the conductor) lands after the return.
        new = api_boot(api, flavor, image, timeout=30)
        seen: dict[str, float] = {}

        def rpc_works():
            if "heartbeats" not in seen and all(
                    s["updated_at"] and
                    parse_time(s["updated_at"]) > back_wall
                    for s in api_services(api)
                    if s["binary"] == "nova-compute"):
                seen["heartbeats"] = time.monotonic() - back
            if "scheduled" not in seen and api_servers(api)[new[0]].get(
                    "OS-EXT-SRV-ATTR:host"):
                seen["scheduled"] = time.monotonic() - back
            return len(seen) == 2
        wait_until(rpc_works, 60, interval=0.1,
                   message="heartbeats and a scheduled boot after the "
                           "broker's return")

        servers = api_wait_servers(api, ids + new, timeout=120)
        self.assertEqual({s["status"] for s in servers.values()},
                         {"ACTIVE"}, {i: (s["status"], s.get("fault"))
                                      for i, s in servers.items()
                                      if s["status"] != "ACTIVE"})
        self.assertAllAlive(deployment)
        for proc in deployment.processes:
            self.assertRegex(proc.log_text(), r"connected to AMQP broker .*"
                             r"\(connection [2-9]", proc.describe())
        print(f"\nRabbitMQ down {back - stopped:.1f} s with "
              f"{len(building)} of 20 builds in flight; after its return: "
              f"agents' heartbeats through the bus in "
              f"{seen['heartbeats']:.2f} s, a new boot scheduled in "
              f"{seen['scheduled']:.2f} s; all 21 ACTIVE")
        self.assertLess(seen["heartbeats"], 5.0)
        self.assertLess(seen["scheduled"], 5.0)

    # --- an agent that fails every spawn ---------------------------------

    def test_failing_agent_builds_rescheduled(self):
        deployment, api, flavor, image = self.cluster(
            agents=3, agent_options={1: {"fake_driver": {"fail_spawn": True}}})
        bad = deployment.host_name("agent1")
        # One server per request: each gets the other hosts as alternates.
        # (A multi-create that claims every host gets no alternates, as
        # in Nova: claimed hosts are never an instance's alternates.)
        ids = [api_boot(api, flavor, image)[0] for _ in range(9)]
        servers = api_wait_servers(api, ids, timeout=90)
        self.assertEqual({s["status"] for s in servers.values()},
                         {"ACTIVE"}, {i: (s["status"], s.get("fault"))
                                      for i, s in servers.items()})
        per_host = hosts_of(servers)
        self.assertNotIn(bad, per_host)
        # The failing agent was tried (equal hosts: the scheduler spreads
        # the first attempts over all three).
        rescheduled = 0
        for server_id in ids:
            create = [a for a in api_actions(api, server_id)
                      if a["action"] == "create"]
            self.assertEqual(len(create), 1, create)
            events = create[0]["events"]
            failed = [e for e in events if e["result"] == "Error"]
            if failed:
                rescheduled += 1
                self.assertEqual({e["host"] for e in failed}, {bad}, events)
                self.assertTrue(any(e["result"] == "Success"
                                    and e["host"] != bad for e in events),
                                events)
        self.assertGreaterEqual(rescheduled, 1)
        deployment.agent("agent1").wait_for_log(
            r"build of \S+ failed on \S+: .*injected failure",
            count=rescheduled)
        self.assertAllAlive(deployment)
        print(f"\n{rescheduled} of {len(ids)} builds failed on the failing "
              f"agent and were rescheduled; per host {per_host}")

    # --- the conductor killed mid-build --------------------------------

    def test_killed_conductor_no_build_stays(self):
        build_timeout, check_interval = 10, 2
        deployment, api, flavor, image = self.cluster(
            agents=2, fake_driver={"spawn_delay": 4},
            DEFAULT={"instance_build_timeout": build_timeout,
                     "build_timeout_check_interval": check_interval})
        conductor = deployment.by_role("compute-conductor")[0]
        ids = []
        for _ in range(3):
            ids += api_boot(api, flavor, image, count=2)

        # Kill it once a build reached an agent, while others still wait.
        def some_placed():
            mine = [s for i, s in api_servers(api).items() if i in ids]
            return any(s.get("OS-EXT-SRV-ATTR:host") for s in mine)
        wait_until(some_placed, 30, interval=0.05,
                   message="a build placed on an agent")
        posted = time.monotonic()
        kill_process(conductor)
        at_kill = {i: s["status"] for i, s in api_servers(api).items()
                   if i in ids}
        self.assertIn("BUILD", at_kill.values(), at_kill)
        time.sleep(2)
        deployment.start("compute-conductor", "cond2")

        deadline = posted + build_timeout + check_interval + 15

        def none_building():
            mine = {i: s for i, s in api_servers(api).items() if i in ids}
            return len(mine) == len(ids) and all(
                s["status"] != "BUILD" for s in mine.values()) and mine
        servers = wait_until(none_building,
                             max(1.0, deadline - time.monotonic()),
                             interval=0.5,
                             message="no server in BUILD after the build "
                                     "timeout")
        for server_id, server in servers.items():
            self.assertIn(server["status"], ("ACTIVE", "ERROR"), server)
            if server["status"] == "ERROR":
                self.assertTrue(server.get("fault", {}).get("message"),
                                server)
        self.assertAllAlive(deployment, but=(conductor,))
        faults = [s["fault"]["message"] for s in servers.values()
                  if s["status"] == "ERROR"]
        print(f"\nconductor killed mid-build (states then: "
              f"{sorted(at_kill.values())}); after a new conductor: "
              f"{sorted(s['status'] for s in servers.values())} "
              f"{faults or ''}")

    def test_killed_conductor_and_agent_builds_time_out(self):
        # The conductor and one agent die mid-build; only a conductor
        # comes back.  The dead agent's builds are lost (it had taken
        # them off its queue) and the live agent's spawns take longer
        # than the build timeout: the new conductor's build timeout puts
        # them all in ERROR with a fault; none is left in BUILD, and a
        # spawn that completes after the timeout does not bring its
        # server back to ACTIVE.
        build_timeout, check_interval, spawn_delay = 10, 2, 18
        deployment, api, flavor, image = self.cluster(
            agents=2, fake_driver={"spawn_delay": spawn_delay},
            DEFAULT={"instance_build_timeout": build_timeout,
                     "build_timeout_check_interval": check_interval})
        conductor = deployment.by_role("compute-conductor")[0]
        dead_agent = deployment.agent("agent2")
        live_agent = deployment.agent("agent1")
        posted = time.monotonic()
        ids = api_boot(api, flavor, image, count=4)

        def all_placed():
            mine = [s for i, s in api_servers(api).items() if i in ids]
            return len(mine) == len(ids) and all(
                s.get("OS-EXT-SRV-ATTR:host") for s in mine) and mine
        placed = wait_until(all_placed, 30, interval=0.05,
                            message="the builds placed on the agents")
        self.assertEqual({s["OS-EXT-SRV-ATTR:host"] for s in placed},
                         {dead_agent.host, live_agent.host})
        dead_agent.wait_for_log(r"build_and_run_instance v[\d.]+ handled",
                                count=2)
        kill_process(conductor)
        kill_process(dead_agent)
        deployment.start("compute-conductor", "cond2")

        def none_building():
            mine = {i: s for i, s in api_servers(api).items() if i in ids}
            return len(mine) == len(ids) and all(
                s["status"] != "BUILD" for s in mine.values()) and mine
        deadline = posted + build_timeout + check_interval + 15
        servers = wait_until(none_building,
                             max(1.0, deadline - time.monotonic()),
                             interval=0.5, message="no server in BUILD")
        ended = time.monotonic() - posted
        for server in servers.values():
            self.assertEqual(server["status"], "ERROR", server)
            self.assertIn("timed out", server["fault"]["message"], server)
        # Not before the timeout either.
        self.assertGreaterEqual(ended, build_timeout - 1)
        # The live agent's spawns end after the timeout: the servers stay
        # in ERROR.
        on_live = sum(1 for s in placed
                      if s["OS-EXT-SRV-ATTR:host"] == live_agent.host)
        live_agent.wait_for_log(r"build of \S+ failed on \S+: Conflict "
                                r"updating instance", count=on_live,
                                timeout=spawn_delay + 15)
        time.sleep(2)
        after = {i: s for i, s in api_servers(api).items() if i in ids}
        self.assertEqual({s["status"] for s in after.values()}, {"ERROR"},
                         {i: (s["status"], s.get("OS-EXT-STS:task_state"))
                          for i, s in after.items()})

        self.assertAllAlive(deployment, but=(conductor, dead_agent))
        print(f"\nconductor and agent killed mid-build: all {len(ids)} "
              f"builds in ERROR by the build timeout after {ended:.1f} s "
              f"(instance_build_timeout {build_timeout} s)")
