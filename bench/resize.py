"""20 concurrent resizes on the fake driver: time until every server is
in VERIFY_RESIZE, and until every resize is confirmed.

    .venv/bin/python bench/resize.py   # --servers 20 --agents 4

Starts ``twistd -n compute-all`` (SQLite, the local bus, ``--agents``
fake agents, quotas unlimited) through the integration-test harness,
boots ``--servers`` m1.tiny servers and waits for them, then sends one
``resize`` to m1.small per server at once (threads, one HTTP request
each) and polls ``/servers/detail`` until all are VERIFY_RESIZE; then
one ``confirmResize`` each, and polls until all are ACTIVE with
m1.small.  Prints both times, the per-request API latency, and the
command line.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

from tests.integration.harness import (  # noqa: E402
    TwistdProcess, api_boot, api_servers, api_wait_servers)

ADMIN = "admin:admin"


def wait_all(proc, ids, status, timeout, check=lambda s: True) -> float:
    start = time.monotonic()
    while True:
        servers = api_servers(proc)
        mine = [servers.get(i) for i in ids]
        errors = [s["id"] for s in mine if s and s["status"] == "ERROR"]
        if errors:
            raise SystemExit(f"servers in ERROR: {errors}")
        if all(s and s["status"] == status
               and not s.get("OS-EXT-STS:task_state") and check(s)
               for s in mine):
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise SystemExit(f"not all {status} after {timeout}s")
        time.sleep(0.1)


def fan_out(proc, ids, body) -> list[float]:
    latencies: list[float] = []
    lock = threading.Lock()

    def one(server_id):
        began = time.monotonic()
        response = proc.post(f"/v2.1/servers/{server_id}/action", body,
                             token=ADMIN, version="2.79", timeout=60)
        assert response.code in (202, 204), response
        with lock:
            latencies.append(time.monotonic() - began)

    threads = [threading.Thread(target=one, args=(i,)) for i in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(latencies)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=20)
    parser.add_argument("--agents", type=int, default=4)
    args = parser.parse_args()
    options = {"DEFAULT": {"fake_agents": args.agents, "report_interval": 1,
                           "periodic_fuzzy_delay": 0,
                           "update_resources_interval": 1},
               "quota": {"instances": -1, "cores": -1, "ram": -1},
               "scheduler": {"host_state_refresh_interval": 0}}
    proc = TwistdProcess(role="compute-all",
                         apis=("osapi_compute", "image"), options=options)
    proc.start()
    try:
        images = proc.get("/v2/images", api="image").json["images"]
        image = [i["id"] for i in images if i["name"] ==
                 "cirros-like-tiny"][0]
        ids = api_boot(proc, "1", image, count=args.servers)
        api_wait_servers(proc, ids, 120)
        began = time.monotonic()
        resize_latency = fan_out(proc, ids, {"resize": {"flavorRef": "2"}})
        wait_all(proc, ids, "VERIFY_RESIZE", 300)
        to_verify = time.monotonic() - began  # the requests included
        began = time.monotonic()
        confirm_latency = fan_out(proc, ids, {"confirmResize": None})
        wait_all(proc, ids, "ACTIVE", 300,
                 lambda s: s["flavor"].get("original_name") == "m1.small"
                 if "original_name" in s["flavor"] else True)
        to_confirmed = time.monotonic() - began
    finally:
        proc.stop()
    n = args.servers
    print(f"{n} concurrent resizes on {args.agents} fake agents "
          f"(compute-all, SQLite, local bus):")
    print(f"  all VERIFY_RESIZE after {to_verify:.2f} s "
          f"(resize API p50 {resize_latency[n // 2] * 1000:.0f} ms, "
          f"max {resize_latency[-1] * 1000:.0f} ms)")
    print(f"  all confirmed (ACTIVE) after {to_confirmed:.2f} s more "
          f"(confirm API p50 {confirm_latency[n // 2] * 1000:.0f} ms)")
    print("  command: " + " ".join(shlex.quote(a) for a in sys.argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
