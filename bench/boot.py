"""Benchmark of the control plane: N servers booted over M fake agents.

For each deployment asked for, starts real ``twistd`` processes through
the integration-test harness, waits until every fake agent is up and has
reported its node, boots a few warm-up servers, then boots N servers with
``POST /v2.1/servers`` from C concurrent clients (one thread and one
keep-alive connection each) and prints:

* servers/s: N divided by the time from the first POST to the moment the
  last server was seen ACTIVE;
* POST answer latency p50 (and p95);
* POST-to-ACTIVE p50/p95, measured two ways: ``seen``, when the poller
  first saw the server ACTIVE (one ``GET /servers/detail?changes-since=``
  every ``--poll`` seconds, default 0.05: the figure carries up to one
  interval of polling delay), and ``launched``, the server's own
  ``OS-SRV-USG:launched_at`` (microseconds, written by the agent when the
  guest runs) minus the client's wall clock at the POST (same machine,
  same clock);
* control-plane CPU seconds per boot: user+sys CPU of every twistd process
  of the deployment (and its children) from /proc/<pid>/stat, after minus
  before the run, divided by N (the poller's own GETs are included: they
  are requests the API serves).  For the distributed deployment the same
  figure is printed a second time with the broker and the database
  server included, as Nova's figure includes them: RabbitMQ (its Erlang
  VM ``beam.smp`` and its helper processes) and PostgreSQL (the
  postmaster, its background processes and every backend; ``mariadbd``
  for a MariaDB database), from their /proc/<pid>/stat as well.  They
  are whole-machine servers, shared with anything else running; a
  backend that ended during the run is not counted.

Deployments (``--modes``, comma-separated):

* ``all``: ``twistd -n compute-all`` on the in-process bus and SQLite,
  ``[DEFAULT] fake_agents = M``;
* ``dist``: the distributed roles on RabbitMQ and a fresh PostgreSQL
  database: one ``compute-api``, ``--conductors`` conductors,
  ``--schedulers`` schedulers and M ``compute-agent`` processes, each with
  its own ``host``, one ``control_exchange`` for the run;
* ``scale``: ``compute-all`` with ``fake_agents = --scale-agents``
  (1,000), and the scheduler's own per-request figure (its log line
  "placed n instance(s) among H hosts in X ms").  ``bench/scheduler.py``
  times the scheduler alone on 1,000 hosts without the rest.

``--profile DIR`` runs the compute-all process under cProfile (twistd's
``--profile``) and writes ``DIR/compute-all.prof`` plus the top functions.

    .venv/bin/python bench/boot.py [--servers 50] [--clients 10]
        [--agents 3] [--modes all,dist,scale] [--conductors 2]
        [--schedulers 2] [--scale-agents 1000] [--poll 0.05]
        [--profile DIR]

Reference (real Nova 34, fake driver, 3 computes, MariaDB, RabbitMQ, same
2-core machine): 50 servers from 10 clients at 2.1 servers/s, POST answers
in 1.8 s (p50), POST-to-ACTIVE p50 10.8 s, p95 16.4 s, about 0.8
CPU-seconds per boot.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from tests import base  # noqa: E402
from tests.integration.harness import (  # noqa: E402
    LOOPBACK, TwistdProcess, db_sync, descendants_of)

PROJECT_TOKEN = "bench:bench"
ADMIN_TOKEN = "admin:admin"
VERSION = "2.79"
CLK_TCK = os.sysconf("SC_CLK_TCK")
TIMEOUT = 300.0

REFERENCE = ("Nova 34 reference (fake driver, 3 computes, MariaDB, "
             "RabbitMQ, same machine): 2.1 servers/s, POST p50 1800 ms, "
             "POST-to-ACTIVE p50 10800 ms / p95 16400 ms, 0.8 CPU-s/boot")
AIMS = ("aims: 40 servers/s; POST-to-ACTIVE p50 < 100 ms (compute-all), "
        "< 250 ms (distributed); < 0.04 CPU-s/boot; < 20 ms scheduling "
        "per request at 1,000 hosts")


# --- processes ------------------------------------------------------------

class BenchProcess(TwistdProcess):
    """A harness process with extra ``twistd`` options (``--profile``)."""

    def __init__(self, *args, twistd_args=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.twistd_args = list(twistd_args)

    def argv(self):
        argv = super().argv()
        return argv[:2] + self.twistd_args + argv[2:]


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


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read()
    except OSError:
        return b""


def rabbitmq_pids() -> list[int]:
    """RabbitMQ's processes: the Erlang VM running the ``rabbit``
    application, its children (``erl_child_setup``, ``inet_gethost``) and
    the Erlang port mapper."""
    found = []
    for pid in pids_named("beam.smp"):
        if b"rabbit" in _cmdline(pid):
            found.append(pid)
            found.extend(descendants_of(pid))
    return found + pids_named("epmd")


def postgresql_pids() -> list[int]:
    """The PostgreSQL server: postmaster, background processes, backends
    (their command name stays ``postgres``)."""
    return pids_named("postgres", "postmaster")


def mariadb_pids() -> list[int]:
    return pids_named("mariadbd", "mysqld")


#: the servers of a deployment besides ours, by the name printed
SERVERS = {"RabbitMQ": rabbitmq_pids, "PostgreSQL": postgresql_pids,
           "MariaDB": mariadb_pids}


def database_server(url: str) -> str:
    """The name in :data:`SERVERS` of the server behind a database URL."""
    if url.startswith(("mysql", "mariadb")):
        return "MariaDB"
    return "PostgreSQL"


def pids_named(*names: str) -> list[int]:
    """Processes whose command name is one of ``names``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm", encoding="ascii",
                      errors="replace") as handle:
                if handle.read().strip() in names:
                    found.append(int(entry))
        except OSError:
            pass
    return found


class Deployment:
    """The twistd processes of one deployment, the API process first."""

    def __init__(self, name: str, processes: list[TwistdProcess],
                 infra: tuple[str, ...] = ()):
        """``infra``: names in :data:`SERVERS` of the broker and database
        servers the deployment uses (none for compute-all)."""
        self.name = name
        self.processes = processes
        self.api = processes[0]
        self.infra = infra
        self.extra_cleanup = []

    def pids(self) -> list[int]:
        pids = []
        for proc in self.processes:
            if proc.process is not None and proc.running():
                pids.append(proc.process.pid)
                pids.extend(descendants_of(proc.process.pid))
        return pids

    def cpu(self) -> dict[int, float]:
        return {pid: cpu_seconds(pid) for pid in self.pids()}

    def role_of(self) -> dict[int, str]:
        roles = {}
        for proc in self.processes:
            if proc.process is not None:
                roles[proc.process.pid] = proc.role
                for child in descendants_of(proc.process.pid):
                    roles[child] = proc.role
        return roles

    def infra_cpu(self) -> dict[str, dict[int, float]]:
        """``{server: {pid: CPU seconds}}`` of the broker and database."""
        return {name: {pid: cpu_seconds(pid) for pid in SERVERS[name]()}
                for name in self.infra}

    def log_text(self) -> str:
        return "\n".join(proc.log_text() for proc in self.processes)

    def cleanup(self):
        for proc in reversed(self.processes):
            try:
                proc.cleanup()
            except Exception as exc:  # noqa: BLE001 - keep cleaning
                print(f"bench: cleanup of {proc.role}: {exc}",
                      file=sys.stderr)
        for func in self.extra_cleanup:
            func()


COMMON_OPTIONS = {
    "quota": {"instances": -1, "cores": -1, "ram": -1},
}


def merged(*option_sets):
    """``{section: {name: value}}`` dicts merged, later ones winning."""
    result: dict = {}
    for options in option_sets:
        for section, values in options.items():
            result.setdefault(section, {}).update(values)
    return result


#: ``--set section.name=value`` options, for every process
EXTRA_OPTIONS: dict = {}


def start_all_in_one(agents: int, profile_dir: str | None = None,
                     name: str = "compute-all") -> Deployment:
    twistd_args = []
    if profile_dir:
        os.makedirs(profile_dir, exist_ok=True)
        twistd_args = [f"--profile={os.path.join(profile_dir, name)}.prof",
                       "--profiler=cprofile", "--savestats"]
    proc = BenchProcess(
        role="compute-all", apis=("osapi_compute", "image"),
        twistd_args=twistd_args,
        options=merged(COMMON_OPTIONS, {"DEFAULT": {"fake_agents": agents}},
                       EXTRA_OPTIONS))
    deployment = Deployment(name, [proc])
    try:
        proc.start(timeout=max(60.0, agents * 0.1))
    except BaseException:
        deployment.cleanup()
        raise
    return deployment


def start_distributed(agents: int, conductors: int, schedulers: int,
                      url: str) -> Deployment:
    db_url = base.postgresql_url()
    exchange = "bench_boot_" + uuid.uuid4().hex[:8]
    shared = {"transport_url": url, "control_exchange": exchange}

    def make(role, host, apis=()):
        return TwistdProcess(
            role=role, apis=apis, database=db_url,
            ready_pattern=None if apis else r"serving topic",
            options=merged(COMMON_OPTIONS,
                           {"DEFAULT": dict(shared, host=host)},
                           EXTRA_OPTIONS))

    api = make("compute-api", "bench-api", apis=("osapi_compute", "image"))
    processes = [api]
    processes += [make("compute-conductor", f"bench-conductor-{i}")
                  for i in range(1, conductors + 1)]
    processes += [make("compute-scheduler", f"bench-scheduler-{i}")
                  for i in range(1, schedulers + 1)]
    processes += [make("compute-agent", f"bench-compute-{i}")
                  for i in range(1, agents + 1)]
    deployment = Deployment("distributed", processes,
                            infra=("RabbitMQ", database_server(db_url)))
    deployment.extra_cleanup.append(lambda: base.drop_postgresql(db_url))
    try:
        api.prepare()
        db_sync(api.config_file)
        for proc in processes:
            proc.start(wait=False)
        for proc in processes:
            proc.wait_ready(60.0)
    except BaseException:
        deployment.cleanup()
        raise
    return deployment


# --- HTTP -----------------------------------------------------------------

class Client:
    """One keep-alive connection to the compute API."""

    def __init__(self, port: int, token: str = PROJECT_TOKEN):
        self.port = port
        self.token = token
        self.conn = http.client.HTTPConnection(LOOPBACK, port, timeout=60)

    def request(self, method, path, body=None, api_prefix=""):
        headers = {"Accept": "application/json", "X-Auth-Token": self.token,
                   "OpenStack-API-Version": f"compute {VERSION}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=data, headers=headers)
                response = self.conn.getresponse()
                payload = response.read()
                break
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(
                    LOOPBACK, self.port, timeout=60)
                if attempt == 2:
                    raise
        return response.status, (json.loads(payload) if payload else None)

    def close(self):
        self.conn.close()


def check(status, body, *codes):
    if status not in codes:
        raise SystemExit(f"bench: unexpected answer {status}: "
                         f"{json.dumps(body)[:500]}")
    return body


def setup_boot(deployment: Deployment, agents: int) -> tuple[str, str]:
    """Wait for the agents, make a flavor and an image; (flavor, image)."""
    api = deployment.api
    admin = Client(api.ports["osapi_compute"], ADMIN_TOKEN)
    deadline = time.monotonic() + max(120.0, agents * 0.2)
    while True:
        status, body = admin.request(
            "GET", "/v2.1/os-services?binary=nova-compute")
        up = [s for s in (body or {}).get("services", [])
              if s.get("state") == "up"] if status == 200 else []
        status, body = admin.request("GET", "/v2.1/os-hypervisors")
        nodes = (body or {}).get("hypervisors", []) if status == 200 else []
        if len(up) >= agents and len(nodes) >= agents:
            break
        if time.monotonic() > deadline:
            raise SystemExit(
                f"bench: {len(up)} of {agents} agents up, {len(nodes)} "
                f"nodes reported after the deadline\n"
                + "\n".join(p.describe() for p in deployment.processes))
        time.sleep(0.5)
    flavor = check(*admin.request("POST", "/v2.1/flavors", {"flavor": {
        "name": "bench-boot", "ram": 64, "vcpus": 1, "disk": 1}}), 200)
    image_client = http.client.HTTPConnection(LOOPBACK, api.ports["image"],
                                              timeout=60)
    headers = {"X-Auth-Token": ADMIN_TOKEN,
               "Content-Type": "application/json"}
    image_client.request("POST", "/v2/images", body=json.dumps({
        "name": "bench-boot", "disk_format": "raw",
        "container_format": "bare", "visibility": "public"}),
        headers=headers)
    response = image_client.getresponse()
    image = json.loads(response.read())
    if response.status != 201:
        raise SystemExit(f"bench: cannot create an image: {image}")
    image_client.request("PUT", f"/v2/images/{image['id']}/file",
                         body=b"\0" * 4096, headers=dict(
                             headers, **{"Content-Type":
                                         "application/octet-stream"}))
    response = image_client.getresponse()
    response.read()
    if response.status != 204:
        raise SystemExit(f"bench: image upload answered {response.status}")
    image_client.close()
    admin.close()
    return flavor["flavor"]["id"], image["id"]


# --- one run --------------------------------------------------------------

def _utc_iso(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(
        seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_usec(text: str | None) -> float | None:
    if not text:
        return None
    value = datetime.datetime.strptime(text[:26], "%Y-%m-%dT%H:%M:%S.%f")
    return value.replace(tzinfo=datetime.timezone.utc).timestamp()


def percentile(values, fraction):
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1,
                int(round(fraction * (len(ordered) - 1))))
    return ordered[index]


def boot(deployment: Deployment, flavor: str, image: str, servers: int,
         clients: int, poll: float, prefix: str,
         spy_dir: str | None = None, wait_active: bool = False) -> dict:
    """Boot ``servers`` servers from ``clients`` threads; figures."""
    port = deployment.api.ports["osapi_compute"]
    lock = threading.Lock()
    todo = list(range(servers))
    posted: dict[str, dict] = {}  # id -> {t0 (monotonic), wall0, answer}
    errors: list[str] = []
    active: dict[str, float] = {}  # id -> monotonic first seen ACTIVE
    failed: dict[str, str] = {}
    launched: dict[str, float] = {}  # id -> launched_at (epoch)
    done = threading.Event()
    polls = [0]

    def client():
        conn = Client(port)
        try:
            while True:
                with lock:
                    if not todo:
                        return
                    index = todo.pop(0)
                wall0 = time.time()
                t0 = time.monotonic()
                status, body = conn.request("POST", "/v2.1/servers", {
                    "server": {"name": f"{prefix}-{index}",
                               "flavorRef": flavor, "imageRef": image,
                               "networks": "none"}})
                t1 = time.monotonic()
                if status != 202:
                    with lock:
                        errors.append(f"{status} {json.dumps(body)[:300]}")
                    continue
                sid = body["server"]["id"]
                with lock:
                    posted[sid] = {"t0": t0, "wall0": wall0,
                                   "answer": t1 - t0}
                if wait_active:
                    deadline = time.monotonic() + 60
                    while sid not in active and sid not in failed \
                            and time.monotonic() < deadline:
                        time.sleep(0.005)
        finally:
            conn.close()

    def poller():
        conn = Client(port)
        since = time.time() - 2.0
        try:
            while not done.is_set():
                began_wall = time.time()
                status, body = conn.request(
                    "GET", "/v2.1/servers/detail?changes-since="
                    + _utc_iso(since))
                seen = time.monotonic()
                polls[0] += 1
                if status == 200:
                    # the next window overlaps this one by half a second, so a
                    # change committed while this GET ran is not missed
                    since = began_wall - 0.5
                    with lock:
                        for server in body.get("servers", []):
                            sid = server["id"]
                            if not server["name"].startswith(prefix + "-"):
                                continue  # a warm-up server
                            if server["status"] == "ACTIVE" \
                                    and sid not in active:
                                active[sid] = seen
                                stamp = _parse_usec(server.get(
                                    "OS-SRV-USG:launched_at"))
                                if stamp is not None:
                                    launched[sid] = stamp
                            elif server["status"] == "ERROR":
                                failed[sid] = (server.get("fault") or {}
                                               ).get("message", "")
                        finished = len(active) + len(failed)
                        if not todo and len(posted) + len(errors) \
                                >= servers and finished >= len(posted):
                            done.set()
                wait = poll - (time.time() - began_wall)
                if wait > 0:
                    done.wait(wait)
        finally:
            conn.close()

    spies = start_spies(deployment, spy_dir)
    cpu_before = deployment.cpu()
    infra_before = deployment.infra_cpu()
    started = time.monotonic()
    poll_thread = threading.Thread(target=poller, daemon=True)
    threads = [threading.Thread(target=client, daemon=True)
               for _ in range(clients)]
    poll_thread.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    posted_by = time.monotonic()
    if not done.wait(TIMEOUT):
        print(f"bench: timed out: {len(active)} ACTIVE, {len(failed)} "
              f"ERROR of {len(posted)} posted", file=sys.stderr)
    done.set()
    poll_thread.join(10)
    cpu_after = deployment.cpu()
    infra_after = deployment.infra_cpu()
    stop_spies(spies)
    ended = max(active.values()) if active else time.monotonic()

    def delta(before, after):
        return sum(after[p] - before.get(p, 0.0) for p in after)

    answers = [p["answer"] * 1000 for p in posted.values()]
    seen = [(active[s] - p["t0"]) * 1000 for s, p in posted.items()
            if s in active]
    launch = [(launched[s] - p["wall0"]) * 1000 for s, p in posted.items()
              if s in launched]
    cpu = delta(cpu_before, cpu_after)
    by_role: dict[str, float] = {}
    for pid, role in deployment.role_of().items():
        if pid in cpu_after:
            by_role[role] = by_role.get(role, 0.0) + (
                cpu_after[pid] - cpu_before.get(pid, 0.0))
    return {
        "servers": servers, "active": len(active), "error": len(failed),
        "post_errors": errors, "fault_examples": list(failed.values())[:3],
        "elapsed": ended - started, "post_phase": posted_by - started,
        "rate": len(active) / (ended - started) if active else 0.0,
        "post_p50": percentile(answers, 0.5),
        "post_p95": percentile(answers, 0.95),
        "seen_p50": percentile(seen, 0.5), "seen_p95": percentile(seen, 0.95),
        "launch_p50": percentile(launch, 0.5),
        "launch_p95": percentile(launch, 0.95),
        "cpu": cpu, "cpu_per_boot": cpu / servers, "by_role": by_role,
        "infra_cpu": {name: delta(infra_before[name], infra_after[name])
                      for name in infra_after},
        "polls": polls[0],
    }


PY_SPY = os.path.join(os.path.dirname(os.path.abspath(sys.executable)),
                      "py-spy")


def start_spies(deployment: Deployment, spy_dir: str | None) -> list:
    """``py-spy record`` on every twistd process (all threads, idle
    frames left out), collapsed stacks in ``spy_dir``."""
    if not spy_dir:
        return []
    os.makedirs(spy_dir, exist_ok=True)
    spies = []
    for index, proc in enumerate(deployment.processes):
        out = os.path.join(spy_dir, f"{index:02d}-{proc.role}.txt")
        spies.append((out, subprocess.Popen(
            [PY_SPY, "record", "-p", str(proc.pid), "-r", "250",
             "-f", "raw", "-o", out, "--nonblocking", "--gil"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
    time.sleep(1.0)  # py-spy attaches
    return spies


def stop_spies(spies: list) -> None:
    for _, spy in spies:
        spy.send_signal(signal.SIGINT)
    for _, spy in spies:
        try:
            spy.wait(20)
        except subprocess.TimeoutExpired:
            spy.kill()
    for out, _ in spies:
        if os.path.exists(out):
            print(f"  py-spy: {out}")
            summarize_spy(out)


def summarize_spy(path: str, top: int = 15) -> None:
    """Print the functions with the most samples, own and inclusive."""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            stack, _, count = line.rstrip().rpartition(" ")
            if not count.isdigit():
                continue
            samples = int(count)
            total += samples
            frames = stack.split(";")
            own[frames[-1]] = own.get(frames[-1], 0) + samples
            for frame in set(frames):
                inclusive[frame] = inclusive.get(frame, 0) + samples
    if not total:
        return
    print(f"    {total} samples; top own:")
    for frame, count in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
        print(f"    {100 * count / total:5.1f}%  {frame[:150]}")
    print("    top inclusive (twisted_compute):")
    ours = [(f, c) for f, c in inclusive.items() if "twisted_compute" in f]
    for frame, count in sorted(ours, key=lambda kv: -kv[1])[:top]:
        print(f"    {100 * count / total:5.1f}%  {frame[:150]}")


def scheduler_times(text: str, hosts: int) -> list[float]:
    """The scheduler's own per-request times (ms) at ``hosts`` hosts."""
    return [float(m.group(2)) for m in re.finditer(
        r"placed \d+ instance\(s\) among (\d+) hosts in ([\d.]+) ms", text)
        if int(m.group(1)) >= hosts]


def report(label: str, result: dict, command: str) -> None:
    print(f"{label}: {result['active']}/{result['servers']} ACTIVE"
          f"{', %d ERROR' % result['error'] if result['error'] else ''}"
          f"{', %d POST errors' % len(result['post_errors']) if result['post_errors'] else ''}"
          f" in {result['elapsed']:.2f} s -> {result['rate']:.1f} servers/s")
    print(f"  POST answer       p50 {result['post_p50']:8.1f} ms   "
          f"p95 {result['post_p95']:8.1f} ms")
    print(f"  POST-to-ACTIVE    p50 {result['seen_p50']:8.1f} ms   "
          f"p95 {result['seen_p95']:8.1f} ms   (seen by the poller, "
          f"{result['polls']} polls)")
    print(f"  POST-to-launched  p50 {result['launch_p50']:8.1f} ms   "
          f"p95 {result['launch_p95']:8.1f} ms   (launched_at - POST)")
    print(f"  control-plane CPU, our processes: {result['cpu']:.2f} s = "
          f"{result['cpu_per_boot']:.4f} CPU-s per boot")
    infra = result.get("infra_cpu") or {}
    if infra:
        total = result["cpu"] + sum(infra.values())
        print(f"  control-plane CPU, with broker and database: "
              f"{total:.2f} s = {total / result['servers']:.4f} CPU-s per "
              "boot (" + ", ".join(f"{name} {seconds:.2f} s" for
                                   name, seconds in infra.items()) + ")")
    if len(result["by_role"]) > 1:
        print("  CPU by role: " + ", ".join(
            f"{role} {seconds:.2f} s" for role, seconds in
            sorted(result["by_role"].items(), key=lambda kv: -kv[1])))
    for error in result["post_errors"][:3]:
        print(f"  POST error: {error}")
    for fault in result["fault_examples"]:
        print(f"  fault: {fault}")
    print(f"  reproduce: {command}")


def run_mode(mode: str, args) -> None:
    servers, clients = args.servers, args.clients
    base_cmd = [".venv/bin/python", "bench/boot.py", "--servers",
                str(servers), "--clients", str(clients), "--poll",
                str(args.poll)]
    if mode == "all":
        agents = args.agents
        deployment = start_all_in_one(agents, args.profile)
        label = f"compute-all, {agents} fake agents"
        command = base_cmd + ["--modes", "all", "--agents", str(agents)]
    elif mode == "dist":
        agents = args.agents
        deployment = start_distributed(agents, args.conductors,
                                       args.schedulers, args.url)
        label = (f"distributed (1 API, {args.conductors} conductor(s), "
                 f"{args.schedulers} scheduler(s), {agents} agents; "
                 "RabbitMQ, PostgreSQL)")
        command = base_cmd + ["--modes", "dist", "--agents", str(agents),
                              "--conductors", str(args.conductors),
                              "--schedulers", str(args.schedulers)]
    else:
        agents = args.scale_agents
        deployment = start_all_in_one(agents, args.profile,
                                      name="compute-all-scale")
        label = f"compute-all, {agents} fake agents (scale)"
        command = base_cmd + ["--modes", "scale", "--scale-agents",
                              str(agents)]
    if args.profile:
        command += ["--profile", args.profile]
    for item in args.set:
        command += ["--set", item]
    if args.wait_active:
        command += ["--wait-active"]
    try:
        flavor, image = setup_boot(deployment, agents)
        # What the deployment burns doing nothing (heartbeats, periodic
        # tasks, the lag monitor): a baseline for the per-boot figure.
        idle_before, idle_start = deployment.cpu(), time.monotonic()
        time.sleep(args.idle)
        idle_after = deployment.cpu()
        idle = sum(idle_after[p] - idle_before.get(p, 0.0)
                   for p in idle_after) / (time.monotonic() - idle_start)
        if args.warmup:
            boot(deployment, flavor, image, args.warmup,
                 min(clients, args.warmup), args.poll, "warmup")
        result = boot(deployment, flavor, image, servers, clients,
                      args.poll, "bench", spy_dir=args.py_spy,
                      wait_active=args.wait_active)
        report(label, result, " ".join(shlex.quote(a) for a in command))
        print(f"  idle control-plane CPU before the run: {idle:.3f} CPU-s/s"
              f" (measured over {args.idle:.0f} s; "
              f"{idle * result['elapsed'] / servers:.4f} CPU-s per boot of "
              "the figure above is this baseline)")
        times = scheduler_times(deployment.log_text(), agents)
        if times:
            print(f"  scheduler (its log, {len(times)} requests at "
                  f"{agents} hosts): p50 {percentile(times, 0.5):.2f} ms, "
                  f"p95 {percentile(times, 0.95):.2f} ms, max "
                  f"{max(times):.2f} ms per request")
        lags = re.findall(r"worst reactor lag in the last \d+ s: "
                          r"([\d.]+) ms", deployment.log_text())
        if lags:
            print(f"  worst reactor lag logged: {max(map(float, lags)):.1f}"
                  " ms")
    finally:
        deployment.cleanup()
    if args.profile and mode in ("all", "scale"):
        show_profile(os.path.join(args.profile, deployment.name + ".prof"))


def show_profile(path: str, top: int = 25) -> None:
    import pstats
    if not os.path.exists(path):
        print(f"  (no profile written at {path})")
        return
    print(f"  profile: {path}; top {top} by own time:")
    stats = pstats.Stats(path)
    stats.sort_stats("tottime").print_stats(top)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--servers", type=int, default=50)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--agents", type=int, default=3)
    parser.add_argument("--modes", default="all,dist,scale")
    parser.add_argument("--conductors", type=int, default=2)
    parser.add_argument("--schedulers", type=int, default=2)
    parser.add_argument("--scale-agents", type=int, default=1000)
    parser.add_argument("--poll", type=float, default=0.05,
                        help="seconds between the poller's GETs")
    parser.add_argument("--warmup", type=int, default=5,
                        help="servers booted before the measured run")
    parser.add_argument("--url",
                        default="rabbit://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--profile", default=None,
                        help="directory: profile compute-all with cProfile")
    parser.add_argument("--py-spy", default=None, metavar="DIR",
                        help="record every process with py-spy during the "
                        "measured run (collapsed stacks in DIR)")
    parser.add_argument("--idle", type=float, default=5.0,
                        help="seconds of idle CPU measured before the run")
    parser.add_argument("--wait-active", action="store_true",
                        help="each client waits for its server to be "
                        "ACTIVE before its next POST (the latency of an "
                        "unloaded control plane, with --clients 1)")
    parser.add_argument("--set", action="append", default=[],
                        metavar="SECTION.NAME=VALUE",
                        help="a config option for every process "
                        "(repeatable), e.g. database.max_pool_size=1")
    args = parser.parse_args(argv)
    for item in args.set:
        key, _, value = item.partition("=")
        section, _, name = key.rpartition(".")
        EXTRA_OPTIONS.setdefault(section or "DEFAULT", {})[name] = value
    load = open("/proc/loadavg").read().split()[:3]
    print(f"boot benchmark: {args.servers} servers, {args.clients} "
          f"clients, {os.cpu_count()} CPUs, load average "
          f"{' '.join(load)}")
    print(REFERENCE)
    print(AIMS)
    for mode in args.modes.split(","):
        run_mode(mode.strip(), args)
    load = open("/proc/loadavg").read().split()[:3]
    print(f"load average at the end: {' '.join(load)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
