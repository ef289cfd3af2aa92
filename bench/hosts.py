"""Benchmark of 1,000 hosts: what an idle fleet of fake agents costs.

Modes (``--modes``, comma-separated):

* ``all``: ``twistd -n compute-all`` with ``[DEFAULT] fake_agents = N``
  (in-process bus, SQLite).  Waits until every agent's service is up
  and its node reported, lets it settle for ``--settle`` seconds, then
  measures the process's user+sys CPU (``/proc/<pid>/stat``) over
  ``--seconds`` seconds and prints it as CPU-s and as a share of one
  core.
* ``dist``: the distributed roles on RabbitMQ and a fresh PostgreSQL
  database: one ``compute-api``, one ``compute-conductor``, one
  ``compute-scheduler`` and one ``compute-agent`` with ``fake_agents =
  N``.  Prints the CPU of each process over the same window, the
  conductor's and PostgreSQL's CPU per report interval
  (``report_interval``, heartbeats) and per resource interval
  (``update_resources_interval``), and RabbitMQ's (whole-machine servers:
  shared with anything else running on them).

    .venv/bin/python bench/hosts.py [--agents 1000] [--seconds 30]
        [--settle 10] [--requests 20] [--modes all,dist] [--report-interval 5]
        [--resources-interval 60] [--url amqp://guest:guest@127.0.0.1:5672/]
        [--set section.name=value ...]

Then it times ``--requests`` ``GET /v2.1/os-hypervisors/detail`` (all
N hypervisors; microversion 2.79) from one keep-alive client.

Aim (issue 13): the idle compute-all with 1,000 fake agents under 5% of
one core.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bench.boot import (  # noqa: E402
    ADMIN_TOKEN, COMMON_OPTIONS, Client, Deployment, SERVERS, merged,
    percentile)
from tests import base  # noqa: E402
from tests.integration.harness import TwistdProcess, db_sync  # noqa: E402


def wait_fleet(deployment: Deployment, agents: int, timeout: float) -> float:
    """Seconds until ``agents`` compute services are up and as many nodes
    reported (SystemExit when not within ``timeout``)."""
    admin = Client(deployment.api.ports["osapi_compute"], ADMIN_TOKEN)
    start = time.monotonic()
    try:
        while True:
            status, body = admin.request(
                "GET", "/v2.1/os-services?binary=nova-compute")
            up = [s for s in (body or {}).get("services", [])
                  if s.get("state") == "up"] if status == 200 else []
            status, body = admin.request("GET", "/v2.1/os-hypervisors")
            nodes = (body or {}).get("hypervisors", []) \
                if status == 200 else []
            if len(up) >= agents and len(nodes) >= agents:
                return time.monotonic() - start
            if time.monotonic() - start > timeout:
                raise SystemExit(
                    f"bench: {len(up)} of {agents} agents up, {len(nodes)} "
                    f"nodes after {timeout:.0f} s\n" + "\n".join(
                        p.describe() for p in deployment.processes))
            time.sleep(1.0)
    finally:
        admin.close()


def options(args) -> dict:
    extra: dict = {}
    for item in args.set:
        key, _, value = item.partition("=")
        section, _, name = key.rpartition(".")
        extra.setdefault(section or "DEFAULT", {})[name] = value
    return merged(COMMON_OPTIONS, {"DEFAULT": {
        "fake_agents": args.agents,
        "report_interval": args.report_interval,
        "update_resources_interval": args.resources_interval,
        "periodic_fuzzy_delay": 0}}, extra)


def start_all(args) -> Deployment:
    proc = TwistdProcess(role="compute-all", apis=("osapi_compute",),
                         options=options(args))
    deployment = Deployment("compute-all", [proc])
    try:
        proc.start(timeout=max(60.0, args.agents * 0.1))
    except BaseException:
        deployment.cleanup()
        raise
    return deployment


def start_dist(args) -> Deployment:
    db_url = base.postgresql_url()
    exchange = "bench_hosts_" + uuid.uuid4().hex[:8]
    shared = {"transport_url": args.url, "control_exchange": exchange}

    def make(role, host, apis=()):
        opts = options(args)
        opts["DEFAULT"].update(shared, host=host)
        if role != "compute-agent":
            opts["DEFAULT"]["fake_agents"] = 1
        return TwistdProcess(role=role, apis=apis, database=db_url,
                             ready_pattern=None if apis else
                             r"serving topic", options=opts)

    api = make("compute-api", "bench-api", apis=("osapi_compute",))
    processes = [api, make("compute-conductor", "bench-conductor"),
                 make("compute-scheduler", "bench-scheduler"),
                 make("compute-agent", "bench-fleet")]
    deployment = Deployment("distributed", processes,
                            infra=("RabbitMQ", "PostgreSQL"))
    deployment.extra_cleanup.append(lambda: base.drop_postgresql(db_url))
    try:
        api.prepare()
        db_sync(api.config_file)
        for proc in processes:
            proc.start(wait=False)
        for proc in processes:
            proc.wait_ready(max(60.0, args.agents * 0.1))
    except BaseException:
        deployment.cleanup()
        raise
    return deployment


def measure(deployment: Deployment, seconds: float) -> dict:
    """CPU seconds per role (and per infra server) over ``seconds``."""
    roles = deployment.role_of()
    before = deployment.cpu()
    infra_before = deployment.infra_cpu()
    start = time.monotonic()
    time.sleep(seconds)
    wall = time.monotonic() - start
    after = deployment.cpu()
    infra_after = deployment.infra_cpu()
    by_role: dict[str, float] = {}
    for pid, value in after.items():
        role = roles.get(pid, "?")
        by_role[role] = by_role.get(role, 0.0) + value - before.get(pid, 0.0)
    for name, values in infra_after.items():
        old = infra_before.get(name, {})
        by_role[name] = sum(v - old.get(pid, v) for pid, v in values.items())
    return {"wall": wall, "cpu": by_role}


def time_hypervisors(deployment: Deployment, requests: int
                     ) -> tuple[list[float], int]:
    """Milliseconds of each of ``requests`` GET /os-hypervisors/detail
    (after one warm-up), and how many hypervisors the answer listed."""
    admin = Client(deployment.api.ports["osapi_compute"], ADMIN_TOKEN)
    path = "/v2.1/os-hypervisors/detail"
    try:
        status, body = admin.request("GET", path)
        if status != 200:
            raise SystemExit(f"bench: {path} answered {status}: {body}")
        count = len(body["hypervisors"])
        times = []
        for _ in range(requests):
            started = time.perf_counter()
            status, body = admin.request("GET", path)
            times.append((time.perf_counter() - started) * 1000)
    finally:
        admin.close()
    return times, count


def run_mode(mode: str, args) -> None:
    start = start_all if mode == "all" else start_dist
    t0 = time.monotonic()
    deployment = start(args)
    try:
        up = wait_fleet(deployment, args.agents,
                        timeout=max(120.0, args.agents * 0.3))
        print(f"[{deployment.name}] {args.agents} fake agents up and "
              f"reported {time.monotonic() - t0:.1f} s after start "
              f"({up:.1f} s after the API answered)")
        time.sleep(args.settle)
        result = measure(deployment, args.seconds)
        listing = time_hypervisors(deployment, args.requests)
    finally:
        deployment.cleanup()
    wall = result["wall"]
    print(f"[{deployment.name}] idle, {wall:.1f} s measured "
          f"(report_interval {args.report_interval} s, "
          f"update_resources_interval {args.resources_interval} s):")
    ours = 0.0
    for role, value in sorted(result["cpu"].items()):
        share = 100.0 * value / wall
        extra = ""
        if role in ("compute-conductor", "PostgreSQL", "compute-all"):
            per_report = value * args.report_interval / wall
            extra = (f"; {per_report * 1000:.0f} ms CPU per report "
                     f"interval ({args.report_interval} s)")
        if role not in SERVERS:
            ours += value
        print(f"  {role:20} {value:6.2f} CPU-s  {share:5.1f}% of a "
              f"core{extra}")
    print(f"  {'our processes':20} {ours:6.2f} CPU-s  "
          f"{100.0 * ours / wall:5.1f}% of a core (aim: under 5%)")
    times, count = listing
    p95 = percentile(times, 0.95)
    print(f"[{deployment.name}] GET /v2.1/os-hypervisors/detail with "
          f"{count} hypervisors, {len(times)} requests: p50 "
          f"{percentile(times, 0.5):.0f} ms, p95 {p95:.0f} ms "
          f"({'meets' if p95 < 200 else 'misses'} the 200 ms aim)")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--settle", type=float, default=10.0)
    parser.add_argument("--requests", type=int, default=20,
                        help="GET /os-hypervisors/detail requests timed")
    parser.add_argument("--modes", default="all")
    parser.add_argument("--report-interval", type=int, default=5)
    parser.add_argument("--resources-interval", type=int, default=60)
    parser.add_argument("--set", action="append", default=[],
                        metavar="SECTION.NAME=VALUE",
                        help="a config option for every process")
    parser.add_argument("--url", default=os.environ.get(
        "TC_TEST_RABBIT_URL", "amqp://guest:guest@127.0.0.1:5672/"))
    args = parser.parse_args(argv)
    print("command: " + " ".join(shlex.quote(a) for a in
                                 [sys.executable, "bench/hosts.py"]
                                 + (argv or sys.argv[1:])))
    for mode in args.modes.split(","):
        run_mode(mode.strip(), args)


if __name__ == "__main__":
    main()
