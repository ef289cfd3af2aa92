"""Benchmark of the compute API process: ``GET /v2.1/servers/detail``.

Starts ``twistd -n compute-api`` (SQLite, noauth) with
``osapi_compute_workers`` = 1, then 2; creates 100 servers in one project
(through the API; straight into the database when the server API does not
answer yet); then drives ``GET /v2.1/servers/detail`` with 10 concurrent
clients on persistent connections for N seconds and prints requests/s and
p50/p99 latency for each.

The load generator is ``wrk`` (``apt-get install -y wrk``) when installed,
otherwise a Python client in a separate process (one thread and one
keep-alive connection per client), so it does not share the server's
interpreter.  On a small machine the load generator competes with the
server for CPU either way; wrk costs least.

    .venv/bin/python bench/api.py [--seconds 10] [--clients 10]
        [--servers 100] [--workers 1,2] [--client wrk|python]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from tests.integration.harness import (  # noqa: E402
    TwistdProcess, descendants_of)

CLK_TCK = os.sysconf("SC_CLK_TCK")

PROJECT_TOKEN = "bench:bench"
PATH = "/v2.1/servers/detail"


# --- seeding --------------------------------------------------------------

def _check(response, *codes):
    if response.code not in codes:
        raise SystemExit(f"bench: unexpected answer {response!r}")
    return response


def seed_through_api(proc: TwistdProcess, count: int) -> bool:
    """Create ``count`` servers with POST /v2.1/servers; False when the
    server API is not there."""
    flavor = _check(proc.post("/v2.1/flavors", {"flavor": {
        "name": "bench", "ram": 64, "vcpus": 1, "disk": 1}}), 200)
    flavor_id = flavor.json["flavor"]["id"]
    image = _check(proc.post("/v2/images", {
        "name": "bench", "disk_format": "raw", "container_format": "bare",
        "visibility": "public"}, api="image"), 201, 404, 501)
    if image.code != 201:
        return False
    image_id = image.json["id"]
    _check(proc.put(f"/v2/images/{image_id}/file", api="image",
                    raw=b"\0" * 4096,
                    headers={"Content-Type": "application/octet-stream"}),
           204)
    for index in range(count):
        response = proc.post("/v2.1/servers", {"server": {
            "name": f"bench-{index}", "flavorRef": flavor_id,
            "imageRef": image_id, "networks": "auto"}},
            token=PROJECT_TOKEN, version="2.79")
        if index == 0 and response.code in (404, 405, 501):
            return False
        _check(response, 202)
    return True


def seed_in_db(proc: TwistdProcess, count: int) -> None:
    """Insert ``count`` BUILD servers straight into the database."""
    import sqlalchemy as sa

    from twisted_compute.db import models

    engine = sa.create_engine(proc.db_url)
    flavor = {"flavorid": "bench", "name": "bench", "memory_mb": 64,
              "vcpus": 1, "root_gb": 1, "ephemeral_gb": 0, "swap": 0,
              "extra_specs": {}}
    rows = []
    for index in range(count):
        rows.append({
            "uuid": str(uuid.uuid4()), "created_at": sa.func.now(),
            "deleted": 0, "user_id": "bench", "project_id": "bench",
            "display_name": f"bench-{index}", "hostname": f"bench-{index}",
            "availability_zone": "nova", "image_ref": str(uuid.uuid4()),
            "vm_state": "building", "task_state": "scheduling",
            "power_state": 0, "memory_mb": 64, "vcpus": 1, "root_gb": 1,
            "ephemeral_gb": 0, "flavor": flavor, "config_drive": "",
            "reservation_id": "r-bench", "launch_index": 0,
            "locked": False, "progress": 0, "addresses": {},
            "security_groups": [{"name": "default"}],
            "system_metadata": {}, "request_spec": {}})
    with engine.begin() as conn:
        for row in rows:
            conn.execute(models.instances.insert().values(**row))
    engine.dispose()


# --- CPU ------------------------------------------------------------------

def cpu_seconds(pid: int) -> float:
    """user+sys CPU seconds of ``pid`` (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii",
                  errors="replace") as handle:
            data = handle.read()
    except OSError:
        return 0.0
    fields = data[data.rindex(")") + 2:].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def server_cpu(proc: TwistdProcess) -> dict[int, float]:
    """CPU seconds of the twistd process and its workers, by pid."""
    pids = [proc.pid] + descendants_of(proc.pid)
    return {pid: cpu_seconds(pid) for pid in pids}


# --- load -----------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk_command(url: str, clients: int, seconds: int) -> list[str]:
    return ["wrk", "-t1", f"-c{clients}", f"-d{seconds}s", "--latency",
            "-H", f"X-Auth-Token: {PROJECT_TOKEN}",
            "-H", "Accept: application/json", url]


def run_wrk(url: str, clients: int, seconds: int) -> dict:
    argv = wrk_command(url, clients, seconds)
    done = subprocess.run(argv, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True,
                          timeout=seconds + 60, check=False)
    out = done.stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    total = re.search(r"(\d+) requests in", out)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    if not (rps and p50 and p99 and total):
        raise SystemExit(f"bench: cannot read wrk's output:\n{out}")
    return {"rps": float(rps.group(1)), "p50": _ms(p50.group(1)),
            "p99": _ms(p99.group(1)), "requests": int(total.group(1)),
            "non_2xx": int(bad.group(1)) if bad else 0,
            "socket_errors": errors.group(1) if errors else "",
            "command": " ".join(a if " " not in a else repr(a)
                                for a in argv)}


_PY_CLIENT = r"""
import http.client, json, sys, threading, time
host, port, path, token, clients, seconds = sys.argv[1:7]
port, clients, seconds = int(port), int(clients), float(seconds)
latencies, bad = [], [0]
lock = threading.Lock()
deadline = time.monotonic() + seconds
def client():
    conn = http.client.HTTPConnection(host, port, timeout=30)
    mine, nbad = [], 0
    while time.monotonic() < deadline:
        start = time.perf_counter()
        conn.request("GET", path, headers={"X-Auth-Token": token,
                                           "Accept": "application/json"})
        response = conn.getresponse()
        response.read()
        mine.append(time.perf_counter() - start)
        if response.status != 200:
            nbad += 1
    with lock:
        latencies.extend(mine)
        bad[0] += nbad
threads = [threading.Thread(target=client) for _ in range(clients)]
began = time.monotonic()
for t in threads: t.start()
for t in threads: t.join()
elapsed = time.monotonic() - began
print(json.dumps({"latencies": latencies, "elapsed": elapsed,
                  "bad": bad[0]}))
"""


def run_python(host: str, port: int, clients: int, seconds: int) -> dict:
    argv = [sys.executable, "-c", _PY_CLIENT, host, str(port), PATH,
            PROJECT_TOKEN, str(clients), str(seconds)]
    done = subprocess.run(argv, stdout=subprocess.PIPE, text=True,
                          timeout=seconds + 60, check=True)
    data = json.loads(done.stdout)
    latencies = sorted(data["latencies"])
    if not latencies:
        raise SystemExit("bench: no request completed")
    quantiles = statistics.quantiles(latencies, n=100)
    return {"rps": len(latencies) / data["elapsed"],
            "p50": quantiles[49] * 1000, "p99": quantiles[98] * 1000,
            "requests": len(latencies), "non_2xx": data["bad"],
            "socket_errors": "",
            "command": f"{sys.executable} -c <bench/api.py _PY_CLIENT> "
                       f"{host} {port} {PATH} {PROJECT_TOKEN} {clients} "
                       f"{seconds}"}


# --- one run --------------------------------------------------------------

def bench(workers: int, args) -> dict:
    proc = TwistdProcess(
        apis=("osapi_compute", "image"),
        workers={"osapi_compute": workers},
        options={"quota": {"instances": -1, "cores": -1, "ram": -1}})
    try:
        proc.start()
        if workers > 1:
            proc.wait_for_log(r"worker \d serving osapi_compute",
                              count=workers, timeout=30)
        seeded = "api" if seed_through_api(proc, args.servers) else None
        if seeded is None:
            seed_in_db(proc, args.servers)
            seeded = "db"
        check = proc.get(PATH, token=PROJECT_TOKEN)
        if check.code != 200:
            raise SystemExit(f"bench: GET {PATH} answers {check!r}")
        listed = len(check.json.get("servers", [])) if \
            PATH.startswith("/v2.1/servers") else args.servers
        if listed != args.servers:
            raise SystemExit(f"bench: {PATH} lists {listed} servers, "
                             f"not {args.servers}")
        url = proc.url() + PATH
        # Warm up the workers' caches and connections.
        if args.client == "wrk":
            run_wrk(url, args.clients, 1)
            before = server_cpu(proc)
            result = run_wrk(url, args.clients, args.seconds)
        else:
            run_python("127.0.0.1", proc.ports["osapi_compute"],
                       args.clients, 1)
            before = server_cpu(proc)
            result = run_python("127.0.0.1", proc.ports["osapi_compute"],
                                args.clients, args.seconds)
        after = server_cpu(proc)
        cpu = sum(after[pid] - before.get(pid, 0.0) for pid in after)
        result.update(workers=workers, seeded=seeded, body=len(check.body),
                      cpu_ms=1000 * cpu / max(result["requests"], 1))
        return result
    finally:
        proc.cleanup()


def main(argv=None) -> int:
    global PATH
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--servers", type=int, default=100)
    parser.add_argument("--workers", default="1,2",
                        help="comma-separated worker counts to run")
    parser.add_argument("--path", default=PATH,
                        help="what to GET (default %(default)s)")
    parser.add_argument("--client", choices=("wrk", "python"),
                        default="wrk" if shutil.which("wrk") else "python")
    args = parser.parse_args(argv)
    PATH = args.path
    print(f"GET {PATH}: {args.servers} servers, {args.clients} clients, "
          f"{args.seconds} s, load from {args.client}, "
          f"{os.cpu_count()} CPUs")
    results = []
    for workers in [int(w) for w in args.workers.split(",")]:
        result = bench(workers, args)
        results.append(result)
        print(f"workers={workers}: {result['rps']:.1f} req/s, "
              f"p50 {result['p50']:.2f} ms, p99 {result['p99']:.2f} ms, "
              f"{result['cpu_ms']:.2f} CPU-ms per request "
              f"({result['requests']} requests, {result['non_2xx']} "
              f"non-2xx{', socket errors ' + result['socket_errors'] if result['socket_errors'] else ''}; "
              f"servers seeded via {result['seeded']}; "
              f"{result['body']} bytes per answer)")
        print(f"  load: {result['command']}")
    print("reproduce: .venv/bin/python bench/api.py --seconds "
          f"{args.seconds} --clients {args.clients} --servers "
          f"{args.servers} --workers {args.workers} --client {args.client}"
          + (f" --path {PATH}" if PATH != "/v2.1/servers/detail" else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
