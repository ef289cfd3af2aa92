"""Per-call CPU of the database layer's hot calls during a boot.

Creates a migrated SQLite file (in a temporary directory) with a flavor,
an image, a compute service and node and 100 servers, then runs each hot
``def thd(conn)`` query of a boot many times on one connection, each call
in its own transaction (committed, as the DB pool does), and prints the
process time per call (user+sys CPU of this process: SQLAlchemy building
statements and cache keys, the driver, SQLite, making records), the median
of ``--repeat`` rounds of ``--calls`` calls each.

    .venv/bin/python bench/db_calls.py [--calls 300] [--repeat 5]
        [--only guarded_update,event_start]
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import sqlalchemy as sa  # noqa: E402

from tests.base import make_conf, migrated_sqlite  # noqa: E402
from twisted_compute.db import actions  # noqa: E402
from twisted_compute.db import flavors  # noqa: E402
from twisted_compute.db import images  # noqa: E402
from twisted_compute.db import instances  # noqa: E402
from twisted_compute.db import quotas  # noqa: E402
from twisted_compute.db import services  # noqa: E402

PROJECT = "bench"


def _base() -> dict:
    return {
        "user_id": "u", "project_id": PROJECT, "vm_state": "building",
        "task_state": "scheduling", "memory_mb": 512, "vcpus": 1,
        "root_gb": 1, "flavor": {"flavorid": "f1"}, "addresses": {},
        "security_groups": [{"name": "default"}], "system_metadata": {},
        "request_spec": {"x": 1}, "image_ref": "img-1",
        "instance_type_id": 1,
    }


def _create(conn, conf, count: int = 1, request_id: str = "req"):
    return instances.create_for_boot(
        conn, conf, flavorid="f1", image_id="img-1", scope=PROJECT,
        zone=None, prepare=lambda flavor, image, zones: _base(),
        project_id=PROJECT, user_id="u", min_count=count, max_count=count,
        metadata={"k": "v"}, tags=["t1"], key_name=None, group_uuid=None,
        uuids=[str(uuid.uuid4()) for _ in range(count)],
        hostnames=lambda i: f"s-{i}", names=lambda i: f"s-{i}",
        action={"request_id": request_id, "user_id": "u",
                "project_id": PROJECT})


class Bench:
    def __init__(self, engine, conf):
        self.engine = engine
        self.conf = conf
        with engine.begin() as conn:
            flavors.create(conn, {"flavorid": "f1", "name": "tiny",
                                  "memory_mb": 512, "vcpus": 1,
                                  "root_gb": 1})
            images.create(conn, {"id": "img-1", "name": "cirros",
                                 "status": "active",
                                 "visibility": "private", "owner": PROJECT})
            services.heartbeat(conn, "h1", "compute-agent", "compute")
            services.compute_node_update(conn, self._node())
            self.servers = _create(conn, conf, 100)
        self.uuids = [s.uuid for s in self.servers]
        self.n = 0

    @staticmethod
    def _node() -> dict:
        return {"host": "h1", "hypervisor_hostname": "h1", "vcpus": 8,
                "memory_mb": 16384, "local_gb": 100, "vcpus_used": 1,
                "memory_mb_used": 512, "local_gb_used": 1,
                "running_vms": 1, "hypervisor_type": "fake",
                "hypervisor_version": 1, "cpu_info": "{}"}

    def _next(self) -> str:
        self.n += 1
        return self.uuids[self.n % len(self.uuids)]

    # --- the calls: each returns a function of conn

    def guarded_update(self):
        uuid_ = self._next()
        return lambda conn: instances.guarded_update(
            conn, uuid_, {"task_state": "spawning", "power_state": 0},
            expected_task_state=["scheduling", "spawning", None],
            expected_vm_state=["building"], fetch=False)

    def guarded_update_fetch(self):
        uuid_ = self._next()
        return lambda conn: instances.guarded_update(
            conn, uuid_, {"task_state": "spawning"},
            expected_task_state=["scheduling", "spawning", None])

    def event_start(self):
        uuid_ = self._next()
        return lambda conn: actions.action_event_start(
            conn, uuid_, "req", "compute__do_build_and_run_instance", "h1")

    def event_finish(self):
        uuid_ = self._next()
        return lambda conn: actions.action_event_finish(
            conn, uuid_, "req", "compute__do_build_and_run_instance", "h1",
            "Success")

    def events_done(self):
        uuids = [self._next() for _ in range(3)]
        now = datetime.datetime.now(datetime.timezone.utc).replace(
            tzinfo=None)
        return lambda conn: actions.action_events_done(
            conn, uuids, "req", "conductor_schedule_and_build_instances",
            "c1", now, "Success")

    def create_for_boot(self):
        return lambda conn: _create(conn, self.conf, 1)

    def get_by_flavorid(self):
        return lambda conn: flavors.get_by_flavorid(conn, "f1", PROJECT)

    def image_get(self):
        return lambda conn: images.get(conn, "img-1", PROJECT)

    def get_limits(self):
        return lambda conn: quotas.get_limits(conn, self.conf, PROJECT, "u")

    def count_instances(self):
        return lambda conn: quotas.count_instances(conn, PROJECT)

    def place_all(self):
        uuids = [self._next() for _ in range(3)]
        now = datetime.datetime.now(datetime.timezone.utc).replace(
            tzinfo=None)
        return lambda conn: instances.place_all(
            conn, {u: {"host": "h1", "node": "h1"} for u in uuids}, "req",
            "conductor_schedule_and_build_instances", "c1", now)

    def build_states(self):
        uuids = [self._next() for _ in range(3)]
        return lambda conn: instances.build_states(conn, uuids)

    def heartbeat(self):
        return lambda conn: services.heartbeat(conn, "h1", "compute-agent",
                                               "compute")

    def compute_node_update(self):
        return lambda conn: services.compute_node_update(conn, self._node())

    def get(self):
        uuid_ = self._next()
        return lambda conn: instances.get(conn, uuid_)

    def get_all_100(self):
        return lambda conn: instances.get_all(
            conn, {"project_id": PROJECT, "deleted": False}, limit=100)

    def records_100(self):
        # Only the making of 100 Instance records from rows.
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(*instances._LIST_COLUMNS).where(
                instances.I.c.project_id == PROJECT).limit(100)).all()
        keys = instances._keys(rows[0])
        return lambda conn: [instances._record(r, {}, [], None, keys)
                             for r in rows]


CALLS = ("guarded_update", "guarded_update_fetch", "event_start",
         "event_finish", "events_done", "create_for_boot",
         "get_by_flavorid", "image_get", "get_limits", "count_instances",
         "place_all", "build_states", "heartbeat", "compute_node_update",
         "get", "get_all_100", "records_100")


def measure(bench: Bench, name: str, calls: int) -> float:
    """Process time per call (ms) of ``calls`` calls of ``name``, each in
    its own committed transaction."""
    make = getattr(bench, name)
    work = [make() for _ in range(calls)]
    engine = bench.engine
    with engine.connect() as conn:
        start = time.process_time()
        for thd in work:
            with conn.begin():
                thd(conn)
        return (time.process_time() - start) * 1000 / calls


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", default="",
                        help="comma-separated subset of: " + ", ".join(CALLS))
    args = parser.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or list(CALLS)
    directory = tempfile.mkdtemp(prefix="db-calls-")
    url = migrated_sqlite(directory)
    engine = sa.create_engine(url)
    # Large limits rather than unlimited ones: the boot counts the usage.
    conf = make_conf(directory, quota={"instances": 10 ** 6,
                                       "cores": 10 ** 6, "ram": 10 ** 9})
    bench = Bench(engine, conf)
    print("command: " + " ".join([os.path.relpath(sys.executable, ROOT),
                                  "bench/db_calls.py"] + (argv or
                                                          sys.argv[1:])))
    print(f"SQLAlchemy {sa.__version__}, SQLite file, {args.calls} calls "
          f"x {args.repeat} rounds, median ms of process time per call")
    total = 0.0
    for name in names:
        measure(bench, name, min(args.calls, 30))  # warm the caches
        figures = [measure(bench, name, args.calls)
                   for _ in range(args.repeat)]
        median = statistics.median(figures)
        total += median
        print(f"  {name:22s} {median:7.3f} ms   "
              f"(min {min(figures):.3f}, max {max(figures):.3f})")
    print(f"  {'sum':22s} {total:7.3f} ms")
    engine.dispose()


if __name__ == "__main__":
    main()
