"""Soak: create/delete churn at a steady rate in a distributed deployment
while faults are injected, then what is left behind.

The deployment (through the integration-test harness,
:class:`tests.integration.harness.Deployment`): one ``compute-api``, two
``compute-conductor``, two ``compute-scheduler`` and ``--agents`` (3)
``compute-agent`` processes on the fake driver, on a PostgreSQL server
of the soak's own (:mod:`tests.integration.harness.private_pg`: the
soak restarts it, and the system server is shared) and on RabbitMQ:
the three-node cluster of ``tools/rabbit-cluster`` (``--broker
cluster``, the default; quorum topic queues) or the system node
(``--broker system``: the broker fault is then left out, since the
system node is shared).

Churn: one ``POST /v2.1/servers`` every ``1 / --rate`` seconds (1/s),
each server deleted ``--lifetime`` (5) seconds after it is seen ACTIVE
(a poller lists every server once a second); a server in ERROR is
deleted too.  Every ``--fault-every`` (120) seconds a fault, in
rotation:

* ``conductor``: ``kill -9`` of the oldest conductor, and a replacement
  started;
* ``broker``: ``rabbitmqctl stop`` of the node leading the ``conductor``
  queue, started again ``--broker-down`` (20) seconds later;
* ``database``: PostgreSQL stopped (fast), started again ``--db-down``
  (5) seconds later.

After ``--minutes`` (10) the creates stop, the last servers are deleted
(``--drain`` seconds at most) and it prints: servers lost (accepted but
never ACTIVE, or never gone after their delete) or left in a transitional
state; each process's open file descriptors and RSS in the first and the
last minute; the database rows left behind; the queue depths.

    .venv/bin/python bench/soak.py [--minutes 10] [--rate 1]
        [--broker cluster|system] [--agents 3] [--faults conductor,broker,database]

Run as root (the private PostgreSQL runs as ``postgres``; the cluster's
nodes as ``rabbitmq``).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from tests.integration.harness import (  # noqa: E402
    ADMIN, VERSION, Deployment, api_flavor, api_image, api_servers,
    descendants_of, kill_process)
from tests.integration.harness import private_pg  # noqa: E402
from tests.integration.harness import rabbit_cluster  # noqa: E402

OPTIONS = {
    "DEFAULT": {"report_interval": 5, "service_down_time": 60,
                "update_resources_interval": 30,
                "build_timeout_check_interval": 10,
                "instance_build_timeout": 300,
                "rpc_response_timeout": 20,
                "boot_handoff_timeout": 8},
    "fake_driver": {"vcpus": 512, "spawn_delay": 0.2},
    "quota": {"instances": -1, "cores": -1, "ram": -1},
    "oslo_messaging_rabbit": {"rabbit_retry_interval": 0.1,
                              "rabbit_interval_max": 1.0,
                              "heartbeat_timeout_threshold": 15},
}

#: Statuses a server rests in; anything else (or a task state) is a
#: transition.
RESTING = ("ACTIVE", "ERROR", "SHUTOFF")


def percentile(values, fraction):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


class Server:
    __slots__ = ("id", "posted", "accepted", "active", "errored",
                 "delete_sent", "gone", "status", "task_state", "fault",
                 "delete_tries")

    def __init__(self, server_id: str, posted: float, accepted: float):
        self.id = server_id
        self.posted = posted
        self.accepted = accepted
        self.active = self.errored = None
        self.delete_sent = self.gone = None
        self.status = "BUILD"
        self.task_state = None
        self.fault = None
        self.delete_tries = 0


class Churn:
    """The creates (one thread, steady rate), the poller and the deletes
    (another thread)."""

    def __init__(self, api, flavor: str, image: str, rate: float,
                 lifetime: float, started: float):
        self.api, self.flavor, self.image = api, flavor, image
        self.interval = 1.0 / rate
        self.lifetime = lifetime
        self.t0 = started
        self.lock = threading.Lock()
        self.servers: dict[str, Server] = {}
        #: (seconds since the start, code or exception, seconds taken)
        self.refused: list[tuple[float, str, float]] = []
        self.post_seconds: list[float] = []
        self.creating = True
        self.polling = True
        self.poll_failures = 0
        self.threads = [threading.Thread(target=self._create, daemon=True),
                        threading.Thread(target=self._poll, daemon=True)]

    def start(self) -> "Churn":
        for thread in self.threads:
            thread.start()
        return self

    def _create(self) -> None:
        index = 0
        next_at = time.monotonic()
        while self.creating:
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            next_at += self.interval
            index += 1
            posted = time.monotonic()
            body = {"server": {"name": f"soak-{index}",
                               "flavorRef": self.flavor,
                               "imageRef": self.image, "networks": "auto"}}
            try:
                response = self.api.post("/v2.1/servers", body, token=ADMIN,
                                         version=VERSION, timeout=30)
            except Exception as exc:  # noqa: BLE001 - counted
                with self.lock:
                    self.refused.append((posted - self.t0,
                                         type(exc).__name__,
                                         time.monotonic() - posted))
                continue
            now = time.monotonic()
            with self.lock:
                self.post_seconds.append(now - posted)
                if response.code == 202:
                    server_id = response.json["server"]["id"]
                    self.servers[server_id] = Server(server_id, posted, now)
                else:
                    self.refused.append((posted - self.t0,
                                         str(response.code), now - posted))
            if time.monotonic() > next_at + 5 * self.interval:
                next_at = time.monotonic()  # do not burst to catch up

    def _poll(self) -> None:
        while self.polling:
            started = time.monotonic()
            try:
                listed = api_servers(self.api, timeout=10)
            except Exception:  # noqa: BLE001 - the API may be down
                self.poll_failures += 1
                time.sleep(1.0)
                continue
            now = time.monotonic()
            with self.lock:
                mine = list(self.servers.values())
            for server in mine:
                shown = listed.get(server.id)
                if shown is None:
                    if server.delete_sent is not None and server.gone is None:
                        server.gone = now
                    continue
                server.status = shown["status"]
                server.task_state = shown.get("OS-EXT-STS:task_state")
                if server.status == "ACTIVE" and server.active is None:
                    server.active = now
                if server.status == "ERROR" and server.errored is None:
                    server.errored = now
                    server.fault = (shown.get("fault") or {}).get("message")
            for server in mine:
                if server.gone is not None:
                    continue
                ready = (server.active is not None and
                         now - server.active >= self.lifetime) or \
                    server.errored is not None or not self.creating and \
                    server.status in RESTING
                resend = server.delete_sent is not None and \
                    now - server.delete_sent > 30
                if ready and (server.delete_sent is None or resend):
                    self._delete(server)
            time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))

    def _delete(self, server: Server) -> None:
        server.delete_tries += 1
        try:
            response = self.api.delete(f"/v2.1/servers/{server.id}",
                                       token=ADMIN, version=VERSION,
                                       timeout=30)
        except Exception:  # noqa: BLE001 - tried again later
            return
        if response.code in (202, 204):
            if server.delete_sent is None:
                server.delete_sent = time.monotonic()
            else:
                server.delete_sent = time.monotonic() - 0.001
        elif response.code == 404:
            server.delete_sent = server.delete_sent or time.monotonic()
            server.gone = time.monotonic()

    def outstanding(self) -> list[Server]:
        with self.lock:
            return [s for s in self.servers.values() if s.gone is None]


class Sampler:
    """Open fds and RSS of every process of the deployment (and its
    children), every ``interval`` seconds, by process."""

    def __init__(self, deployment: Deployment, started: float,
                 interval: float = 10.0):
        self.deployment = deployment
        self.t0 = started
        self.interval = interval
        #: label -> [(seconds since start, fds, rss KiB)]
        self.samples: dict[str, list[tuple[float, int, int]]] = {}
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "Sampler":
        self.thread.start()
        return self

    @staticmethod
    def _label(proc) -> str:
        return f"{proc.role} {proc.host.rsplit('-', 1)[0]}"

    @staticmethod
    def _measure(pid: int) -> tuple[int, int]:
        fds = rss = 0
        for one in [pid] + descendants_of(pid):
            try:
                fds += len(os.listdir(f"/proc/{one}/fd"))
                with open(f"/proc/{one}/status", encoding="ascii") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            rss += int(line.split()[1])
            except (OSError, ValueError):
                continue
        return fds, rss

    def sample(self) -> None:
        now = time.monotonic() - self.t0
        for proc in list(self.deployment.processes):
            if not proc.running():
                continue
            fds, rss = self._measure(proc.process.pid)
            if fds:
                self.samples.setdefault(self._label(proc), []).append(
                    (now, fds, rss))

    def _run(self) -> None:
        while self.running:
            self.sample()
            time.sleep(self.interval)


class Faults:
    """The faults, in rotation; each recorded with its timings."""

    def __init__(self, deployment: Deployment, pg, cluster, kinds, t0,
                 broker_down: float, db_down: float):
        self.deployment = deployment
        self.pg = pg
        self.cluster = cluster
        self.kinds = list(kinds)
        self.t0 = t0
        self.broker_down = broker_down
        self.db_down = db_down
        self.done: list[str] = []
        self.replacements = 0

    def inject(self, number: int) -> None:
        kind = self.kinds[number % len(self.kinds)]
        at = time.monotonic() - self.t0
        try:
            text = getattr(self, "_" + kind)()
        except Exception as exc:  # noqa: BLE001 - reported
            text = f"FAILED to inject: {exc!r}"
        line = f"{at:6.0f} s  {kind}: {text}"
        print("  fault " + line, flush=True)
        self.done.append(line)

    def _conductor(self) -> str:
        victim = [p for p in self.deployment.by_role("compute-conductor")
                  if p.running()][0]
        kill_process(victim)
        self.replacements += 1
        started = time.monotonic()
        fresh = self.deployment.start("compute-conductor",
                                      f"cond{2 + self.replacements}",
                                      timeout=60)
        return (f"kill -9 of {victim.host}; {fresh.host} ready in "
                f"{time.monotonic() - started:.1f} s")

    def _broker(self) -> str:
        vhost = self.deployment.vhost.name
        node = self.cluster.leader_of(vhost, "conductor")
        stopped = time.monotonic()
        node.stop()
        took = time.monotonic() - stopped
        time.sleep(self.broker_down)
        node.start()
        new = self.cluster.leader_of(vhost, "conductor")
        return (f"stopped {node.name} (leader of the conductor queue) in "
                f"{took:.1f} s, started again after {self.broker_down:.0f} "
                f"s; conductor queue leader now {new.name}")

    def _database(self) -> str:
        stopped = time.monotonic()
        self.pg.stop()
        time.sleep(self.db_down)
        self.pg.start()
        return (f"PostgreSQL stopped and started again, down "
                f"{time.monotonic() - stopped:.1f} s")


def db_rows(url: str) -> dict[str, int]:
    """Rows left in the tables that churn writes."""
    import sqlalchemy as sa
    from twisted_compute.db import models as m
    engine = sa.create_engine(url)
    counts = {}
    try:
        with engine.connect() as conn:
            i = m.instances
            counts["instances not deleted"] = conn.execute(
                sa.select(sa.func.count()).select_from(i).where(
                    i.c.deleted == 0)).scalar()
            counts["instances soft-deleted"] = conn.execute(
                sa.select(sa.func.count()).select_from(i).where(
                    i.c.deleted != 0)).scalar()
            for table in (m.instance_actions, m.instance_actions_events,
                          m.instance_faults, m.instance_metadata, m.tags,
                          m.migrations, m.instance_external_events,
                          m.console_auth_tokens, m.server_group_members):
                counts[table.name] = conn.execute(
                    sa.select(sa.func.count()).select_from(table)).scalar()
            live = conn.execute(sa.select(i.c.vm_state, i.c.task_state,
                                          sa.func.count())
                                .where(i.c.deleted == 0)
                                .group_by(i.c.vm_state, i.c.task_state)
                                ).all()
            for vm_state, task_state, count in live:
                counts[f"  not deleted: {vm_state}/{task_state}"] = count
    finally:
        engine.dispose()
    return counts


def queue_depths(deployment: Deployment) -> dict[str, int]:
    return deployment.vhost.list_queues()


def summarize(samples, t_end: float) -> list[str]:
    lines = []
    for label in sorted(samples):
        values = samples[label]
        first = [v for v in values if v[0] - values[0][0] <= 60]
        last = [v for v in values if v[0] >= values[-1][0] - 60]

        def text(part):
            fds = [v[1] for v in part]
            rss = [v[2] / 1024 for v in part]
            return (f"fds {min(fds)}-{max(fds)}, RSS "
                    f"{min(rss):.0f}-{max(rss):.0f} MiB")
        span = f"{values[0][0]:.0f}-{values[-1][0]:.0f} s"
        lines.append(f"  {label:28} ({span}) first minute: {text(first)}; "
                     f"last minute: {text(last)}")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=1.0,
                        help="creates per second")
    parser.add_argument("--lifetime", type=float, default=5.0,
                        help="seconds a server stays ACTIVE before its "
                             "delete")
    parser.add_argument("--fault-every", type=float, default=120.0)
    parser.add_argument("--faults", default="conductor,broker,database")
    parser.add_argument("--broker", choices=("cluster", "system"),
                        default="cluster")
    parser.add_argument("--broker-down", type=float, default=20.0)
    parser.add_argument("--db-down", type=float, default=5.0)
    parser.add_argument("--agents", type=int, default=3)
    parser.add_argument("--drain", type=float, default=180.0)
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    command = " ".join(shlex.quote(a) for a in
                       [".venv/bin/python", "bench/soak.py"] + argv)
    print("command: " + command, flush=True)
    kinds = [k.strip() for k in args.faults.split(",") if k.strip()]
    if args.broker == "system" and "broker" in kinds:
        kinds.remove("broker")
        print("broker fault left out: the system RabbitMQ is shared "
              "(--broker cluster stops a node of the cluster instead)")
    reason = private_pg.available()
    if reason is not None:
        raise SystemExit(f"soak: {reason}")
    cluster = None
    if args.broker == "cluster":
        reason = rabbit_cluster.available()
        if reason is not None:
            raise SystemExit(f"soak: {reason}")
        cluster = rabbit_cluster.shared_cluster()
    pg = private_pg.PrivatePostgres().start()
    options = {k: dict(v) for k, v in OPTIONS.items()}
    deployment = Deployment(
        options=options, database=pg.url, sync_database=True,
        transport="rabbit-cluster" if cluster else "rabbit")
    churn = sampler = None
    try:
        started = time.monotonic()
        api = deployment.start_cluster(conductors=2, schedulers=2,
                                       agents=args.agents, timeout=120)
        deployment.wait_services_up(timeout=90)
        deployment.wait_nodes(args.agents, timeout=90)
        flavor = api_flavor(api, vcpus=1, ram=64, disk=1)
        image = api_image(api)
        print(f"deployment up in {time.monotonic() - started:.1f} s "
              f"(broker: {args.broker}, PostgreSQL on port {pg.port})",
              flush=True)
        t0 = time.monotonic()
        sampler = Sampler(deployment, t0).start()
        churn = Churn(api, flavor, image, args.rate, args.lifetime,
                      t0).start()
        faults = Faults(deployment, pg, cluster, kinds, t0,
                        args.broker_down, args.db_down)
        end = t0 + args.minutes * 60
        number = 0
        next_fault = t0 + args.fault_every
        while time.monotonic() < end:
            if kinds and time.monotonic() >= next_fault:
                faults.inject(number)
                number += 1
                next_fault += args.fault_every
            else:
                time.sleep(min(1.0, max(0.0, end - time.monotonic())))
        churn.creating = False
        churn.threads[0].join(60)
        churn_end = time.monotonic()
        drain_end = churn_end + args.drain
        while churn.outstanding() and time.monotonic() < drain_end:
            time.sleep(1.0)
        drained = time.monotonic() - churn_end
        churn.polling = False
        churn.threads[1].join(30)
        sampler.sample()
        sampler.running = False
        rows = db_rows(pg.url)
        queues = queue_depths(deployment)
        report(args, churn, faults, sampler, rows, queues, churn_end - t0,
               drained, deployment, command)
    finally:
        if sampler is not None:
            sampler.running = False
        if churn is not None:
            churn.creating = churn.polling = False
        try:
            deployment.cleanup()
        finally:
            pg.destroy()
    return 0


def report(args, churn: Churn, faults: Faults, sampler: Sampler, rows,
           queues, seconds: float, drained: float, deployment,
           command: str) -> None:
    servers = list(churn.servers.values())
    accepted = len(servers)
    completed = [s for s in servers if s.gone is not None]
    active_ever = [s for s in servers if s.active is not None]
    errored = [s for s in servers if s.errored is not None]
    never_active = [s for s in servers if s.active is None]
    left = [s for s in servers if s.gone is None]
    transitional = [s for s in left if s.status not in RESTING
                    or s.task_state]
    to_active = [s.active - s.posted for s in active_ever]
    to_gone = [s.gone - s.delete_sent for s in completed
               if s.delete_sent is not None]
    print(f"\nsoak: {seconds / 60:.1f} minutes of churn at {args.rate:g} "
          f"create/s ({args.agents} agents, 2 conductors, 2 schedulers, "
          f"broker {args.broker}), drained in {drained:.0f} s")
    print(f"  POSTs: {accepted} accepted, {len(churn.refused)} refused "
          f"({summary_codes(churn.refused)}); POST answer p50 "
          f"{percentile(churn.post_seconds, 0.5) * 1000:.0f} ms, p95 "
          f"{percentile(churn.post_seconds, 0.95) * 1000:.0f} ms")
    print(f"  POST to ACTIVE (seen, 1 s polls) p50 "
          f"{percentile(to_active, 0.5):.1f} s, p95 "
          f"{percentile(to_active, 0.95):.1f} s, max "
          f"{max(to_active or [float('nan')]):.1f} s; DELETE to gone p50 "
          f"{percentile(to_gone, 0.5):.1f} s, p95 "
          f"{percentile(to_gone, 0.95):.1f} s")
    print(f"  servers: {len(active_ever)} reached ACTIVE, {len(errored)} "
          f"ERROR, {len(completed)} deleted; lost (accepted, never ACTIVE) "
          f"{len(never_active)}; left at the end {len(left)}, of them in a "
          f"transitional state {len(transitional)}")
    for server in (never_active + left)[:10]:
        print(f"    {server.id}: {server.status}/{server.task_state} "
              f"fault {server.fault!r} deletes sent {server.delete_tries}")
    faults_seen = {}
    for server in errored:
        faults_seen[server.fault] = faults_seen.get(server.fault, 0) + 1
    for fault, count in sorted(faults_seen.items(), key=lambda kv: -kv[1]):
        print(f"    ERROR x{count}: {fault}")
    print(f"  faults ({len(faults.done)}, every {args.fault_every:.0f} s):")
    for line in faults.done:
        print(f"    {line}")
    windows = refused_windows(churn.refused)
    if windows:
        print("  refused POSTs by time: " + ", ".join(windows))
    print(f"  poller: {churn.poll_failures} failed listings")
    print("  processes (open fds and RSS, first and last minute of each):")
    for line in summarize(sampler.samples, seconds):
        print(line)
    print("  database rows left behind:")
    for name, count in rows.items():
        print(f"    {name:34} {count}")
    kinds: dict[str, list[int]] = {}
    for name, depth in queues.items():
        kind = name.split(".")[0].split("_")[0]
        kind += " (per host)" if "." in name else (
            "_fanout" if "_fanout_" in name else "")
        kinds.setdefault(kind, []).append(depth or 0)
    print(f"  queue depths: {len(queues)} queues, "
          f"{sum(d or 0 for d in queues.values())} messages in all")
    for kind, depths in sorted(kinds.items()):
        print(f"    {kind:28} {len(depths):3} queue(s), messages "
              f"{sum(depths)} (deepest {max(depths)})")
    for name, depth in sorted(queues.items()):
        if depth:
            print(f"    not empty: {name} {depth}")
    print(f"  processes alive at the end: "
          f"{sum(p.running() for p in deployment.processes)} of "
          f"{len(deployment.processes)} started (killed ones included)")
    print("reproduce: " + command)


def summary_codes(refused) -> str:
    counts: dict[str, int] = {}
    for _, code, _ in refused:
        counts[code] = counts.get(code, 0) + 1
    return ", ".join(f"{c} x{n}" for c, n in sorted(counts.items())) or "none"


def refused_windows(refused) -> list[str]:
    """Refusals grouped into windows (a gap of 10 s ends one)."""
    windows = []
    for at, code, took in sorted(refused):
        if windows and at - windows[-1][1] <= 10:
            windows[-1][1] = at
            windows[-1][2] += 1
            windows[-1][3] = max(windows[-1][3], took)
        else:
            windows.append([at, at, 1, took])
    return [f"{a:.0f}-{b:.0f} s: {n} (slowest answer {t:.1f} s)"
            for a, b, n, t in windows]


if __name__ == "__main__":
    sys.exit(main())
