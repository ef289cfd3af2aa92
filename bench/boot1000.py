"""Benchmark: boot 1,000 servers over 1,000 fake hosts, then delete them.

Starts ``twistd -n compute-all`` with ``[DEFAULT] fake_agents =
--agents`` (1,000; in-process bus, SQLite) through the integration-test
harness (``bench/boot.py``'s deployment and clients), waits until every
agent is up and has reported its node, then:

* boots ``--servers`` (1,000) servers with ``POST /v2.1/servers`` from
  ``--clients`` (10) concurrent clients, and waits until each is ACTIVE
  (a poller of ``GET /servers/detail?changes-since=``);
* counts the servers on each host (``OS-EXT-SRV-ATTR:host``, as admin)
  and prints the spread: hosts used, servers per host min / max / mean /
  standard deviation, and whether it is as even as the weighers make it
  (the default RAM, CPU and disk weighers with positive multipliers
  spread: on identical empty hosts no host gets a second server before
  every enabled host has one, so max - min is at most 1);
* deletes them all from the same clients and waits until none is
  listed;
* prints both phases' total time and throughput, the POST and DELETE
  answer times, and the scheduler's own time per request from its log
  (``placed n instance(s) among H hosts in X ms``).

    .venv/bin/python bench/boot1000.py [--agents 1000] [--servers 1000]
        [--clients 10]

``bench/scheduler.py`` times ``select_destinations`` alone over 1,000
hosts with the default filters and 20 aggregates (p95 per instance).
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bench.boot import (  # noqa: E402
    ADMIN_TOKEN, Client, boot, percentile, scheduler_times, setup_boot,
    start_all_in_one)

TIMEOUT = 900.0


def spread(port: int, prefix: str) -> dict[str, int]:
    """Host -> how many of the benchmark's servers it runs."""
    admin = Client(port, ADMIN_TOKEN)
    counts: dict[str, int] = {}
    marker = None
    try:
        while True:
            path = "/v2.1/servers/detail?all_tenants=1&limit=1000"
            if marker:
                path += f"&marker={marker}"
            status, body = admin.request("GET", path)
            if status != 200:
                raise SystemExit(f"bench: {path} answered {status}")
            page = body["servers"]
            for server in page:
                if server["name"].startswith(prefix + "-"):
                    host = server.get("OS-EXT-SRV-ATTR:host")
                    counts[host] = counts.get(host, 0) + 1
            if len(page) < 1000:
                return counts
            marker = page[-1]["id"]
    finally:
        admin.close()


def listed_ids(port: int) -> list[str]:
    client = Client(port)
    ids, marker = [], None
    try:
        while True:
            path = "/v2.1/servers?limit=1000"
            if marker:
                path += f"&marker={marker}"
            status, body = client.request("GET", path)
            if status != 200:
                raise SystemExit(f"bench: {path} answered {status}")
            page = body["servers"]
            ids += [s["id"] for s in page]
            if len(page) < 1000:
                return ids
            marker = page[-1]["id"]
    finally:
        client.close()


def delete_all(port: int, ids: list[str], clients: int) -> dict:
    lock = threading.Lock()
    todo = list(ids)
    answers: list[float] = []
    errors: list[str] = []

    def client():
        conn = Client(port)
        try:
            while True:
                with lock:
                    if not todo:
                        return
                    server_id = todo.pop()
                t0 = time.monotonic()
                status, body = conn.request("DELETE",
                                            f"/v2.1/servers/{server_id}")
                with lock:
                    answers.append((time.monotonic() - t0) * 1000)
                    if status not in (202, 204):
                        errors.append(f"{status} {body}")
        finally:
            conn.close()

    started = time.monotonic()
    threads = [threading.Thread(target=client, daemon=True)
               for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    sent = time.monotonic() - started
    deadline = started + TIMEOUT
    left = listed_ids(port)
    while left and time.monotonic() < deadline:
        time.sleep(0.25)
        left = listed_ids(port)
    return {"elapsed": time.monotonic() - started, "sent": sent,
            "left": len(left), "errors": errors,
            "p50": percentile(answers, 0.5), "p95": percentile(answers, 0.95)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--poll", type=float, default=0.2)
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    command = " ".join(shlex.quote(a) for a in
                       [".venv/bin/python", "bench/boot1000.py"] + argv)
    print("command: " + command, flush=True)
    started = time.monotonic()
    deployment = start_all_in_one(args.agents, name="compute-all-1000")
    try:
        flavor, image = setup_boot(deployment, args.agents)
        print(f"{args.agents} fake agents up and reported "
              f"{time.monotonic() - started:.1f} s after start", flush=True)
        port = deployment.api.ports["osapi_compute"]
        result = boot(deployment, flavor, image, args.servers, args.clients,
                      args.poll, "b1k")
        counts = spread(port, "b1k")
        ids = listed_ids(port)
        deleted = delete_all(port, ids, args.clients)
        sched = scheduler_times(deployment.log_text(), args.agents)
    finally:
        deployment.cleanup()
    print(f"\ncompute-all, {args.agents} fake agents, {args.servers} "
          f"servers from {args.clients} clients:")
    print(f"  boot: {result['active']} ACTIVE, {result['error']} ERROR, "
          f"{len(result['post_errors'])} POSTs refused, in "
          f"{result['elapsed']:.1f} s (first POST to last ACTIVE): "
          f"{result['rate']:.1f} servers/s; POST answer p50 "
          f"{result['post_p50']:.0f} ms, p95 {result['post_p95']:.0f} ms; "
          f"POST to ACTIVE (seen) p50 {result['seen_p50']:.0f} ms, p95 "
          f"{result['seen_p95']:.0f} ms")
    for example in result["fault_examples"]:
        print(f"    fault: {example}")
    values = list(counts.values())
    hosts_used = len(values)
    # Hosts with none of the servers count as 0 in the spread.
    everyone = values + [0] * max(0, args.agents - hosts_used)
    low, high = min(everyone), max(everyone)
    mean = statistics.fmean(everyone)
    stdev = statistics.pstdev(everyone)
    even = high - low <= 1 if args.servers >= args.agents else high <= 1
    print(f"  spread: {sum(values)} servers on {hosts_used} of "
          f"{args.agents} hosts; per host min {low}, max {high}, mean "
          f"{mean:.2f}, stddev {stdev:.2f} "
          f"({'even' if even else 'NOT even'} for the spreading weighers: "
          f"identical empty hosts, so max - min should be at most 1)")
    print(f"  delete: {args.servers - deleted['left']} of {len(ids)} gone "
          f"in {deleted['elapsed']:.1f} s ({len(ids) / deleted['elapsed']:.1f}"
          f" servers/s; DELETEs sent in {deleted['sent']:.1f} s, answer p50 "
          f"{deleted['p50']:.0f} ms, p95 {deleted['p95']:.0f} ms; "
          f"{len(deleted['errors'])} refused)")
    if sched:
        print(f"  scheduler (its log, {len(sched)} requests over "
              f"{args.agents} hosts): p50 {percentile(sched, 0.5):.2f} ms, "
              f"p95 {percentile(sched, 0.95):.2f} ms, max {max(sched):.2f} "
              f"ms per request (one instance each)")
    print("reproduce: " + command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
