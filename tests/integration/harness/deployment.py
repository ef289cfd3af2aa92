"""Deployments for the integration tests: several role processes on one
database and one bus, and the compute API they serve, over plain HTTP."""

from __future__ import annotations

import http.client
import os
import re
import shutil
import tempfile
import time
from typing import Any, Iterable

from tests import base
from tests.integration.harness.processes import wait_until
from tests.integration.harness.rabbitmq import RABBIT_PORT, RabbitVhost
from tests.integration.harness.twistd import (
    ROLE_READY, START_TIMEOUT, TwistdProcess, TwistdTestCase, _write_ini,
    db_sync, migrated_sqlite_file)


class Deployment:
    """Several role processes sharing one config base: the same database
    (a migrated PostgreSQL database by default, dropped at cleanup), the
    same bus (a RabbitMQ vhost of their own and a unique
    ``control_exchange``) and the same ``options``, each with its own
    ``[DEFAULT] host`` (suffixed with this deployment's run id, so hosts
    are unique across runs) and its own directory, log and ports.

    ``database``: ``"postgresql"``, ``"sqlite"`` (one migrated file for
    all) or a URL (migrated here with ``sync_database``); ``transport``:
    ``"rabbit"``, ``"rabbit-cluster"`` (a vhost on the three-node cluster
    of :mod:`.rabbit_cluster`, quorum topic queues, each process's
    ``transport_url`` naming the three nodes from a different first one)
    or ``"local"`` (only meaningful for a single ``compute-all``).
    """

    def __init__(self, options: dict[str, dict[str, Any]] | None = None,
                 database: str = "postgresql", transport: str = "rabbit",
                 register=None, sync_database: bool = False):
        self.run_id = os.urandom(3).hex()
        self.options = options or {}
        self.database = database
        self.transport = transport
        self.exchange = f"tc_it_{self.run_id}"
        self.directory = tempfile.mkdtemp(prefix="tc-it-deploy-")
        self.db_url: str | None = None
        self._pg_url: str | None = None
        self.vhost: RabbitVhost | None = None
        self.processes: list[TwistdProcess] = []
        self._register = register
        self._prepared = False
        self._sync_database = sync_database
        self._cluster_cleanups: list = []

    def host_name(self, name: str) -> str:
        return f"{name}-{self.run_id}"

    def prepare(self) -> "Deployment":
        if self._prepared:
            return self
        self._prepared = True
        if self.transport == "rabbit":
            base.require_service("rabbitmq", port=RABBIT_PORT)
            self.vhost = RabbitVhost(
                f"tc_it_{os.getpid()}_{self.run_id}").create()
        elif self.transport == "rabbit-cluster":
            from tests.integration.harness.rabbit_cluster import (
                ClusterVhost, require_cluster)
            # The cluster to this deployment alone, across processes,
            # until its cleanup: the tests stop and kill nodes.
            self.vhost = ClusterVhost(
                require_cluster(add_cleanup=self._cluster_cleanups.append),
                f"tc_it_{os.getpid()}_{self.run_id}").create()
        if self.database == "postgresql":
            self._pg_url = self.db_url = base.postgresql_url()
        elif self.database == "sqlite":
            path = os.path.join(self.directory, "compute.sqlite")
            migrated_sqlite_file(path)
            self.db_url = "sqlite:///" + path
        else:
            self.db_url = self.database
        if self.database == "postgresql" or self._sync_database:
            conf = os.path.join(self.directory, "manage.conf")
            _write_ini(conf, {"DEFAULT": {"state_path": self.directory},
                              "database": {"connection": self.db_url}})
            db_sync(conf)
        return self

    def base_options(self) -> dict[str, dict[str, Any]]:
        sections: dict[str, dict[str, Any]] = {
            "DEFAULT": {"control_exchange": self.exchange,
                        "transport_url": (self.vhost.url if self.vhost
                                          else "local://"),
                        "periodic_fuzzy_delay": 0}}
        if self.transport == "rabbit-cluster":
            sections["oslo_messaging_rabbit"] = {"rabbit_quorum_queue": True}
        for section, values in self.options.items():
            sections.setdefault(section, {}).update(values)
        return sections

    def add(self, role: str, name: str, options: dict | None = None,
            apis: Iterable[str] = ("osapi_compute", "image")
            ) -> TwistdProcess:
        """A process of ``role`` for host ``name`` (suffixed), not started."""
        self.prepare()
        host = self.host_name(name)
        sections = self.base_options()
        sections["DEFAULT"]["host"] = host
        if self.transport == "rabbit-cluster":
            sections["DEFAULT"]["transport_url"] = self.vhost.url_for(
                len(self.processes))
        for section, values in (options or {}).items():
            sections.setdefault(section, {}).update(values)
        pattern = ROLE_READY.get(role)
        proc = TwistdProcess(
            role=role, apis=apis if role in ("compute-api", "compute-all")
            else (), options=sections, database=self.db_url,
            ready_pattern=(pattern.format(host=re.escape(host))
                           if pattern else None))
        proc.host = host
        self.processes.append(proc)
        if self._register is not None:
            self._register(proc)
        return proc

    def start(self, role: str, name: str, options: dict | None = None,
              wait: bool = True, timeout: float = START_TIMEOUT,
              **kwargs) -> TwistdProcess:
        """:meth:`add`, then start it (and wait until it is ready)."""
        proc = self.add(role, name, options, **kwargs)
        proc.start(wait=wait, timeout=timeout)
        return proc

    def start_many(self, specs: Iterable[tuple], timeout: float = 60.0
                   ) -> list[TwistdProcess]:
        """Start several processes at once (``(role, name)`` or ``(role,
        name, options)`` each), then wait until each is ready."""
        started = []
        for spec in specs:
            role, name = spec[0], spec[1]
            options = spec[2] if len(spec) > 2 else None
            proc = self.add(role, name, options)
            proc.start(wait=False)
            started.append(proc)
        deadline = time.monotonic() + timeout
        for proc in started:
            proc.wait_ready(max(1.0, deadline - time.monotonic()))
        return started

    def start_cluster(self, conductors: int = 1, schedulers: int = 1,
                      agents: int = 1,
                      agent_options: dict[int, dict] | None = None,
                      api_options: dict | None = None,
                      timeout: float = 60.0) -> TwistdProcess:
        """``conductors`` conductors (hosts ``cond1``...), ``schedulers``
        schedulers (``sched1``...), ``agents`` agents (``agent1``...;
        ``agent_options[i]`` for agent ``i``, from 1) and one compute-api
        (``api``), started together; returns the API process once every
        process is ready."""
        agent_options = agent_options or {}
        specs: list[tuple] = []
        specs += [("compute-conductor", f"cond{i}")
                  for i in range(1, conductors + 1)]
        specs += [("compute-scheduler", f"sched{i}")
                  for i in range(1, schedulers + 1)]
        specs += [("compute-agent", f"agent{i}", agent_options.get(i))
                  for i in range(1, agents + 1)]
        specs.append(("compute-api", "api", api_options))
        self.start_many(specs, timeout=timeout)
        return self.api

    def wait_services_up(self, timeout: float = 60.0) -> list[dict]:
        """Until every conductor, scheduler and agent of this deployment
        that runs is listed up by os-services; returns the services."""
        expected = {(p.host, {"compute-conductor": "nova-conductor",
                              "compute-scheduler": "nova-scheduler",
                              "compute-agent": "nova-compute"}[p.role])
                    for p in self.processes if p.running()
                    and p.role in ROLE_READY}

        def up():
            services = api_services(self.api)
            found = {(s["host"], s["binary"]) for s in services
                     if s["state"] == "up" and s["status"] == "enabled"}
            return expected <= found and services
        return wait_until(up, timeout, interval=0.3,
                          message=f"services {sorted(expected)} up")

    def wait_nodes(self, count: int, timeout: float = 60.0) -> list[dict]:
        """Until ``count`` hypervisors are reported."""
        def nodes():
            found = api_hypervisors(self.api)
            return len(found) >= count and found
        return wait_until(nodes, timeout, interval=0.3,
                          message=f"{count} hypervisors")

    def agent(self, name: str) -> TwistdProcess:
        """The agent process of host ``name`` (unsuffixed)."""
        host = self.host_name(name)
        return [p for p in self.processes if p.role == "compute-agent"
                and p.host == host][0]

    def by_role(self, role: str) -> list[TwistdProcess]:
        return [p for p in self.processes if p.role == role]

    @property
    def api(self) -> TwistdProcess:
        return self.by_role("compute-api")[0]

    def cleanup(self) -> None:
        try:
            for proc in reversed(self.processes):
                proc.cleanup()
        finally:
            try:
                if self.vhost is not None:
                    self.vhost.delete()
            finally:
                if self._pg_url is not None:
                    url, self._pg_url = self._pg_url, None
                    base.drop_postgresql(url)
                shutil.rmtree(self.directory, ignore_errors=True)
                while self._cluster_cleanups:
                    self._cluster_cleanups.pop()()


# --- the compute API of a deployment, over plain HTTP -----------------------

#: the microversion the control-plane tests speak
VERSION = "2.79"
ADMIN = "admin:admin"


def api_flavor(proc: TwistdProcess, vcpus: int = 1, ram: int = 64,
               disk: int = 1, name: str | None = None) -> str:
    """A new public flavor (as admin); returns its id."""
    response = proc.post("/v2.1/flavors", {"flavor": {
        "name": name or "it-" + os.urandom(4).hex(), "ram": ram,
        "vcpus": vcpus, "disk": disk}}, token=ADMIN)
    assert response.code == 200, response
    return response.json["flavor"]["id"]


def api_image(proc: TwistdProcess) -> str:
    """A small public image through the image API; returns its id."""
    response = proc.post("/v2/images", {
        "name": "it-" + os.urandom(4).hex(), "disk_format": "raw",
        "container_format": "bare", "visibility": "public"},
        api="image", token=ADMIN)
    assert response.code == 201, response
    image_id = response.json["id"]
    response = proc.put(f"/v2/images/{image_id}/file", api="image",
                        token=ADMIN, raw=b"\0" * 1024,
                        headers={"Content-Type": "application/octet-stream"})
    assert response.code == 204, response
    return image_id


def api_boot(proc: TwistdProcess, flavor: str, image: str, count: int = 1,
             name: str | None = None, token: str = ADMIN,
             timeout: float = 30.0) -> list[str]:
    """POST /v2.1/servers (``min_count = max_count = count``, networks
    auto, ``return_reservation_id`` when several); returns the new
    servers' ids (listed by reservation id for a multi-create)."""
    name = name or "it-" + os.urandom(4).hex()
    server = {"name": name, "flavorRef": flavor, "imageRef": image,
              "networks": "auto"}
    if count > 1:
        server.update(min_count=count, max_count=count,
                      return_reservation_id=True)
    response = proc.post("/v2.1/servers", {"server": server}, token=token,
                         version=VERSION, timeout=timeout)
    assert response.code == 202, response
    if count == 1:
        return [response.json["server"]["id"]]
    reservation = response.json["reservation_id"]
    listed = proc.get(f"/v2.1/servers?reservation_id={reservation}"
                      f"&all_tenants=1", token=ADMIN, version=VERSION,
                      timeout=timeout)
    assert listed.code == 200, listed
    ids = [s["id"] for s in listed.json["servers"]]
    assert len(ids) == count, (count, listed)
    return ids


def api_servers(proc: TwistdProcess, timeout: float = 30.0
                ) -> dict[str, dict]:
    """Every server (all projects, details, as admin) by id."""
    found: dict[str, dict] = {}
    marker = None
    while True:
        path = "/v2.1/servers/detail?all_tenants=1&limit=1000"
        if marker:
            path += f"&marker={marker}"
        response = proc.get(path, token=ADMIN, version=VERSION,
                            timeout=timeout)
        assert response.code == 200, response
        page = response.json["servers"]
        found.update((s["id"], s) for s in page)
        if len(page) < 1000:
            return found
        marker = page[-1]["id"]


def api_wait_servers(proc: TwistdProcess, ids: Iterable[str],
                     timeout: float, done=("ACTIVE", "ERROR"),
                     interval: float = 0.5) -> dict[str, dict]:
    """Poll until every server of ``ids`` has a status in ``done`` (and
    no task state); returns them by id (AssertionError naming the
    stragglers after ``timeout``)."""
    ids = list(ids)
    deadline = time.monotonic() + timeout
    while True:
        try:
            servers = api_servers(proc)
        except (OSError, http.client.HTTPException):
            servers = {}
        mine = {i: servers.get(i) for i in ids}
        waiting = [i for i, s in mine.items() if s is None
                   or s["status"] not in done
                   or s.get("OS-EXT-STS:task_state")]
        if not waiting:
            return mine
        if time.monotonic() > deadline:
            sample = {i: (mine[i] or {}).get("status") for i in waiting[:5]}
            raise AssertionError(
                f"{len(waiting)} of {len(ids)} servers not in {done} after "
                f"{timeout}s, e.g. {sample}")
        time.sleep(interval)


def api_services(proc: TwistdProcess) -> list[dict]:
    response = proc.get("/v2.1/os-services", token=ADMIN, version=VERSION)
    assert response.code == 200, response
    return response.json["services"]


def api_hypervisors(proc: TwistdProcess) -> list[dict]:
    """``os-hypervisors/detail`` at 2.27 (the last microversion that
    shows vcpus and vcpus_used)."""
    response = proc.get("/v2.1/os-hypervisors/detail", token=ADMIN,
                        version="2.27")
    assert response.code == 200, response
    return response.json["hypervisors"]


def api_actions(proc: TwistdProcess, server_id: str) -> list[dict]:
    """The server's instance actions, each with its events."""
    response = proc.get(f"/v2.1/servers/{server_id}/os-instance-actions",
                        token=ADMIN, version=VERSION)
    assert response.code == 200, response
    actions = []
    for action in response.json["instanceActions"]:
        shown = proc.get(f"/v2.1/servers/{server_id}/os-instance-actions/"
                         f"{action['request_id']}", token=ADMIN,
                         version=VERSION)
        assert shown.code == 200, shown
        actions.append(shown.json["instanceAction"])
    return actions


class DeploymentTestCase(TwistdTestCase):
    """A :class:`TwistdTestCase` with :meth:`deployment`."""

    def deployment(self, **kwargs) -> Deployment:
        """A :class:`Deployment` for this test: its processes' logs are
        shown when the test fails, and everything is stopped and removed
        at cleanup."""
        deployment = Deployment(register=self._processes.append, **kwargs)
        self.addCleanup(deployment.cleanup)
        return deployment
