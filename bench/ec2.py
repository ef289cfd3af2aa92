"""Benchmark of the EC2 API: ``DescribeInstances`` with 100 instances,
beside ``GET /v2.1/servers/detail`` on the same data.

Starts ``twistd -n compute-api`` (SQLite, noauth, ``ec2`` and
``osapi_compute``), creates 100 servers in project ``bench`` (through the
API, as ``bench/api.py`` does), makes an EC2 access key for that project
with ``compute-manage ec2-credentials create``, then drives each request
with C concurrent keep-alive clients for N seconds (a threaded Python
client in its own process) and prints requests/s and p50/p99 latency.

The EC2 request is signed once (SigV4, by botocore) and the same signed
request is sent again and again: the figure is the server's work
(signature check, query, XML), not the client's signing.

    .venv/bin/python bench/ec2.py [--seconds 10] [--clients 10]
        [--servers 100]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bench.api import PROJECT_TOKEN, seed_in_db, seed_through_api  # noqa
from tests.integration.harness import (  # noqa: E402
    COMPUTE_MANAGE, TwistdProcess, run_command)

_CLIENT = r"""
import http.client, json, sys, threading, time
host, port, spec, clients, seconds = sys.argv[1:6]
spec = json.loads(spec)
port, clients, seconds = int(port), int(clients), float(seconds)
body = spec["body"].encode() if spec["body"] is not None else None
latencies, bad = [], [0]
lock = threading.Lock()
deadline = time.monotonic() + seconds
def client():
    conn = http.client.HTTPConnection(host, port, timeout=30)
    mine, nbad = [], 0
    while time.monotonic() < deadline:
        start = time.perf_counter()
        conn.request(spec["method"], spec["path"], body=body,
                     headers=spec["headers"])
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
print(json.dumps({"latencies": latencies,
                  "elapsed": time.monotonic() - began, "bad": bad[0]}))
"""


def drive(port: int, spec: dict, clients: int, seconds: float) -> dict:
    argv = [sys.executable, "-c", _CLIENT, "127.0.0.1", str(port),
            json.dumps(spec), str(clients), str(seconds)]
    done = subprocess.run(argv, stdout=subprocess.PIPE, text=True,
                          timeout=seconds + 120, check=True)
    data = json.loads(done.stdout)
    latencies = sorted(data["latencies"])
    if not latencies:
        raise SystemExit("bench: no request completed")
    quantiles = statistics.quantiles(latencies, n=100)
    return {"rps": len(latencies) / data["elapsed"],
            "p50": quantiles[49] * 1000, "p99": quantiles[98] * 1000,
            "requests": len(latencies), "non_2xx": data["bad"]}


def signed_describe(proc: TwistdProcess, access: str, secret: str) -> dict:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    host = f"127.0.0.1:{proc.ports['ec2']}"
    body = "Action=DescribeInstances&Version=2016-11-15"
    request = AWSRequest(method="POST", url=f"http://{host}/", data=body,
                         headers={"Content-Type": "application/x-www-form-"
                                  "urlencoded; charset=utf-8",
                                  "Host": host})
    SigV4Auth(Credentials(access, secret), "ec2", "nova").add_auth(request)
    return {"method": "POST", "path": "/", "body": body,
            "headers": dict(request.headers.items())}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--servers", type=int, default=100)
    args = parser.parse_args(argv)
    proc = TwistdProcess(
        apis=("ec2", "osapi_compute", "image"),
        options={"quota": {"instances": -1, "cores": -1, "ram": -1}})
    try:
        proc.start()
        if not seed_through_api(proc, args.servers):
            seed_in_db(proc, args.servers)
        done = run_command([COMPUTE_MANAGE, "--config-file",
                            proc.config_file, "ec2-credentials", "create",
                            "--user", "bench", "--project", "bench"])
        if done.returncode != 0:
            raise SystemExit(f"bench: compute-manage: {done.stderr}")
        fields = dict(line.split(" ", 1) for line in
                      done.stdout.splitlines())
        ec2 = signed_describe(proc, fields["access"], fields["secret"])
        check = proc.request("POST", "/", api="ec2", token=None,
                             raw=ec2["body"].encode(),
                             headers=ec2["headers"])
        listed = check.body.count(b"<instanceId>")
        if check.code != 200 or listed != args.servers:
            raise SystemExit(f"bench: DescribeInstances lists {listed} "
                             f"instances ({check.code}), not "
                             f"{args.servers}")
        nova = {"method": "GET", "path": "/v2.1/servers/detail",
                "body": None, "headers": {"X-Auth-Token": PROJECT_TOKEN,
                                          "Accept": "application/json"}}
        print(f"{args.servers} instances, {args.clients} clients, "
              f"{args.seconds} s, {os.cpu_count()} CPUs")
        for name, api, spec in (
                ("EC2 DescribeInstances", "ec2", ec2),
                ("GET /v2.1/servers/detail", "osapi_compute", nova)):
            drive(proc.ports[api], spec, args.clients, 1)  # warm up
            result = drive(proc.ports[api], spec, args.clients,
                           args.seconds)
            print(f"{name}: {result['rps']:.1f} req/s, p50 "
                  f"{result['p50']:.2f} ms, p99 {result['p99']:.2f} ms "
                  f"({result['requests']} requests, {result['non_2xx']} "
                  "non-2xx)")
    finally:
        proc.cleanup()
    print(f"reproduce: .venv/bin/python bench/ec2.py --seconds "
          f"{args.seconds} --clients {args.clients} --servers "
          f"{args.servers}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
