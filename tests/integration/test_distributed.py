"""The control plane distributed over separate ``twistd`` processes on the
real RabbitMQ and PostgreSQL: one compute-api, two conductors, two
schedulers and three compute agents (fake driver), sharing one database
and one bus (a RabbitMQ vhost and ``control_exchange`` of the test's
own), each with its own ``host``.

60 servers of one vCPU each are booted by ten concurrent clients onto
three hosts of 24 vCPUs (``cpu_allocation_ratio = 1.0``): more than two
hosts hold, so all three must be used, and none may go over its 24.
"""

from __future__ import annotations

import os
import queue
import re
import threading
import time

from tests.integration.harness import (
    ADMIN, OPENSTACK, VERSION, DeploymentTestCase, api_boot, api_flavor,
    api_hypervisors, api_image, api_wait_servers, run_command, wait_until)
from tests.integration.test_openstack_cli import clouds_yaml

SERVERS = 60
CLIENTS = 10
HOST_VCPUS = 24
AGENTS = 3

#: the options every process of the deployment shares
OPTIONS = {
    "DEFAULT": {"report_interval": 2, "service_down_time": 20,
                "update_resources_interval": 2,
                "cpu_allocation_ratio": 1.0,
                "build_timeout_check_interval": 5,
                "instance_build_timeout": 300},
    "fake_driver": {"vcpus": HOST_VCPUS},
    "quota": {"instances": -1, "cores": -1, "ram": -1},
}


def openstack(proc, *args: str, timeout: float = 90.0) -> str:
    """``openstack --os-cloud twisted-compute ARGS`` against ``proc``;
    returns stdout (AssertionError with the output when it fails)."""
    clouds = os.path.join(proc.directory, "clouds.yaml")
    if not os.path.exists(clouds):
        with open(clouds, "w", encoding="utf-8") as handle:
            handle.write(clouds_yaml(proc))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env["OS_CLIENT_CONFIG_FILE"] = clouds
    env["HOME"] = proc.directory
    done = run_command([OPENSTACK, "--os-cloud", "twisted-compute", *args],
                       timeout=timeout, env=env, cwd=proc.directory)
    if done.returncode != 0:
        raise AssertionError(f"openstack {' '.join(args)} exited "
                             f"{done.returncode}:\n{done.stdout}\n"
                             f"{done.stderr}")
    return done.stdout


def concurrent_boots(api, flavor: str, image: str, total: int,
                     clients: int) -> tuple[list[str], list[float]]:
    """``total`` single-server POSTs from ``clients`` threads at once;
    returns the ids and each POST's latency (AssertionError naming the
    first failure)."""
    todo: queue.Queue = queue.Queue()
    for index in range(total):
        todo.put(index)
    ids: list[str] = []
    latencies: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def client():
        while True:
            try:
                index = todo.get_nowait()
            except queue.Empty:
                return
            started = time.monotonic()
            try:
                new = api_boot(api, flavor, image, name=f"dist-{index}",
                               timeout=60)
            except BaseException as exc:  # noqa: BLE001 - reported below
                with lock:
                    errors.append(exc)
                return
            with lock:
                ids.extend(new)
                latencies.append(time.monotonic() - started)

    threads = [threading.Thread(target=client, daemon=True)
               for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    if errors:
        raise AssertionError(f"{len(errors)} boot request(s) failed, the "
                             f"first: {errors[0]!r}")
    assert not any(t.is_alive() for t in threads), "a client hung"
    return ids, latencies


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class DistributedTests(DeploymentTestCase):

    def test_sixty_servers_over_three_hosts(self):
        deployment = self.deployment(options=OPTIONS)
        started = time.monotonic()
        api = deployment.start_cluster(conductors=2, schedulers=2,
                                       agents=AGENTS)
        deployment.wait_services_up()
        deployment.wait_nodes(AGENTS)
        ready = time.monotonic() - started
        flavor = api_flavor(api, vcpus=1, ram=512, disk=1)
        image = api_image(api)

        started = time.monotonic()
        ids, latencies = concurrent_boots(api, flavor, image, SERVERS,
                                          CLIENTS)
        posted = time.monotonic() - started
        self.assertEqual(len(set(ids)), SERVERS)
        servers = api_wait_servers(api, ids, timeout=240)
        elapsed = time.monotonic() - started
        statuses = {s["status"] for s in servers.values()}
        self.assertEqual(statuses, {"ACTIVE"}, {
            i: (s["status"], s.get("fault")) for i, s in servers.items()
            if s["status"] != "ACTIVE"})

        per_host: dict[str, int] = {}
        for server in servers.values():
            host = server["OS-EXT-SRV-ATTR:host"]
            per_host[host] = per_host.get(host, 0) + 1
        agents = {p.host for p in deployment.by_role("compute-agent")}
        self.assertEqual(set(per_host), agents, per_host)
        for host, count in per_host.items():
            self.assertLessEqual(count, HOST_VCPUS, per_host)

        # The agents' own reports agree, and no node is over its vCPUs.
        def reported():
            nodes = {h["hypervisor_hostname"]: h
                     for h in api_hypervisors(api)}
            if sum(n["running_vms"] for n in nodes.values()) != SERVERS:
                return None
            return nodes
        nodes = wait_until(reported, 30, interval=0.5,
                           message="the hypervisors to report 60 VMs")
        for host, node in nodes.items():
            self.assertEqual(node["vcpus"], HOST_VCPUS)
            self.assertLessEqual(node["vcpus_used"], node["vcpus"] * 1.0,
                                 node)
            self.assertEqual(node["vcpus_used"], per_host[host], node)
            self.assertEqual(node["running_vms"], per_host[host], node)

        # Both conductors and both schedulers took part in the work.
        for role in ("compute-conductor", "compute-scheduler"):
            for proc in deployment.by_role(role):
                pattern = (r"schedule_and_build_instances v[\d.]+ handled"
                           if role == "compute-conductor"
                           else r"select_destinations v[\d.]+ handled")
                self.assertRegex(proc.log_text(), pattern, proc.describe())

        # The CLI sees every service up.
        output = openstack(api, "compute", "service", "list", "-f",
                           "value", "-c", "Binary", "-c", "Host", "-c",
                           "State", "-c", "Status")
        rows = [line.split() for line in output.splitlines()
                if line.strip()]
        counts: dict[str, int] = {}
        for binary, host, status, state in rows:
            self.assertEqual((status, state), ("enabled", "up"), rows)
            counts[binary] = counts.get(binary, 0) + 1
        self.assertEqual(counts, {"nova-conductor": 2, "nova-scheduler": 2,
                                  "nova-compute": 3}, rows)

        print(f"\ndistributed (1 api, 2 conductors, 2 schedulers, 3 agents;"
              f" PostgreSQL, RabbitMQ): ready in {ready:.1f} s; "
              f"{SERVERS} servers from {CLIENTS} clients: POSTs done in "
              f"{posted:.2f} s (p50 {percentile(latencies, 0.5) * 1e3:.0f}"
              f" ms, p95 {percentile(latencies, 0.95) * 1e3:.0f} ms), all "
              f"ACTIVE in {elapsed:.2f} s ({SERVERS / elapsed:.1f} "
              f"servers/s); per host {sorted(per_host.values())}")

    def test_request_id_in_every_log(self):
        # The request id of one boot shows up in the logs of the
        # conductor and scheduler that handled it and of the agent.  (The
        # API process's log does not name request ids: its access log
        # lines carry none.)
        deployment = self.deployment(options=OPTIONS)
        api = deployment.start_cluster(conductors=1, schedulers=1,
                                       agents=1)
        deployment.wait_services_up()
        deployment.wait_nodes(1)
        flavor = api_flavor(api)
        image = api_image(api)
        response = api.post("/v2.1/servers", {"server": {
            "name": "traced", "flavorRef": flavor, "imageRef": image,
            "networks": "auto"}}, token=ADMIN, version=VERSION)
        self.assertEqual(response.code, 202, response)
        request_id = response.header("x-openstack-request-id")
        self.assertTrue(re.match(r"req-[0-9a-f-]{36}$", request_id or ""),
                        response.headers)
        server_id = response.json["server"]["id"]
        api_wait_servers(api, [server_id], timeout=60, done=("ACTIVE",))
        for proc in deployment.processes:
            if proc.role == "compute-api":
                continue
            proc.wait_for_log(re.escape(request_id), timeout=10)
