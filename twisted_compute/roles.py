"""How each role process is assembled from its parts.

Every ``twistd`` plugin (and ``compute-all``, which holds them all) builds
its ``MultiService`` here, in start order: the database first (roles that
have one), then the bus transport, then the RPC roles, then the API
listeners.  ``MultiService`` stops its children in reverse order.
"""

from __future__ import annotations

from twisted.application import service
from twisted.internet import defer

from twisted_compute import config, exception
from twisted_compute.context import get_admin_context
from twisted_compute.db import migration
from twisted_compute.db.pool import DBService
from twisted_compute.log import Logger
from twisted_compute.service import (
    ReactorLagMonitor, RPCRoleService, TransportService)

log = Logger()

config.register("DEFAULT", [
    config.Opt("update_resources_interval", "int", 60,
               "Seconds between an agent's resource reports", min=1),
    config.Opt("sync_power_state_interval", "int", 600,
               "Seconds between an agent's power state syncs", min=1),
    config.Opt("fake_agents", "int", 1,
               "compute-all: how many fake compute agents to run in the "
               "process (hosts <host>-fake-1 ...; 1 means one agent named "
               "<host>)", min=0, max=5000),
])

CONDUCTOR_BINARY = "nova-conductor"
SCHEDULER_BINARY = "nova-scheduler"
COMPUTE_BINARY = "nova-compute"


def make_db(conf, reactor, auto_migrate: bool = False) -> DBService:
    """The DB service, refusing an unmigrated database (SystemExit naming
    the command that fixes it)."""
    db = DBService(conf.database_url, reactor,
                   pool_size=conf.database.max_pool_size,
                   recycle=conf.database.connection_recycle_time,
                   query_timeout=conf.database.query_timeout)
    try:
        if auto_migrate:
            migration.upgrade(db.engine)
        migration.check(db.engine)
    except Exception as exc:  # noqa: BLE001 - reported, then exit
        message = getattr(exc, "message", None) or str(exc)
        raise SystemExit(f"twisted-compute: {message}") from None
    return db


def make_transport(conf, reactor):
    from twisted_compute.rpc.transport import transport_for
    try:
        return transport_for(conf, reactor)
    except exception.ComputeException as exc:
        raise SystemExit(f"twisted-compute: [DEFAULT] transport_url: "
                         f"{exc.format_message()}") from None
    except ValueError as exc:
        raise SystemExit(
            f"twisted-compute: [DEFAULT] transport_url: {exc}") from None


def _db_heartbeat(db, host: str, binary: str, topic: str):
    def beat():
        return db.services.heartbeat(host, binary, topic)
    return beat


def conductor_role(conf, reactor, transport, db) -> RPCRoleService:
    from twisted_compute.compute.rpcapi import ComputeAPIClient
    from twisted_compute.conductor.manager import ConductorManager
    from twisted_compute.conductor.rpcapi import TOPIC
    from twisted_compute.rpc.client import RPCClient
    from twisted_compute.scheduler.rpcapi import SchedulerAPIClient

    scheduler = SchedulerAPIClient(
        RPCClient(transport, "scheduler", timeout=conf.long_rpc_timeout),
        conf)
    compute = ComputeAPIClient.for_transport(transport)
    # The conductor finishes work under way: its DB work goes first.
    manager = ConductorManager(conf, db.prioritized(), scheduler, compute,
                               reactor, host=conf.host)
    return RPCRoleService(
        conf, reactor, transport, TOPIC, conf.host, CONDUCTOR_BINARY,
        [manager],
        periodic=[("check_build_timeouts", manager.check_build_timeouts,
                   conf.build_timeout_check_interval)],
        heartbeat=_db_heartbeat(db, conf.host, CONDUCTOR_BINARY, TOPIC))


def scheduler_role(conf, reactor, transport, db) -> RPCRoleService:
    from twisted_compute.scheduler.manager import SchedulerManager

    manager = SchedulerManager(conf, db.prioritized(), reactor)
    return RPCRoleService(
        conf, reactor, transport, "scheduler", conf.host, SCHEDULER_BINARY,
        [manager],
        heartbeat=_db_heartbeat(db, conf.host, SCHEDULER_BINARY,
                                "scheduler"))


def agent_role(conf, reactor, transport, host: str | None = None,
               driver=None) -> RPCRoleService:
    """A compute agent for ``host``: no database, the conductor is its
    only way to it."""
    from twisted_compute.compute.manager import ComputeManager
    from twisted_compute.conductor.rpcapi import ConductorAPIClient
    from twisted_compute.virt.driver import load_driver

    host = host or conf.host
    if driver is None:
        try:
            driver = load_driver(conf, reactor, host=host)
        except exception.ComputeException as exc:
            raise SystemExit(f"twisted-compute: [DEFAULT] compute_driver: "
                             f"{exc.format_message()}") from None
    conductor = ConductorAPIClient(transport,
                                   timeout=conf.rpc_response_timeout)
    manager = ComputeManager(conf, host, driver, conductor, reactor)
    topic = "compute"
    context = get_admin_context()

    def heartbeat():
        return conductor.service_heartbeat(context, host, COMPUTE_BINARY,
                                           topic)

    def on_start():
        # Reconcile with the hypervisor and report resources before
        # taking work; if the conductor is not reachable yet, the
        # periodic tasks catch up.
        d = defer.maybeDeferred(manager.init_host, context)
        d.addErrback(lambda f: log.failure(
            "init_host of {host} failed; periodic tasks will retry", f,
            host=host))
        return d

    periodic = []
    if getattr(driver, "age_images", None) and \
            conf.image_cache_manager_interval > 0:
        periodic.append(("age_images", driver.age_images,
                         conf.image_cache_manager_interval))
    role = RPCRoleService(
        conf, reactor, transport, topic, host, COMPUTE_BINARY, [manager],
        periodic=periodic + [
            ("update_available_resource", manager.update_available_resource,
             conf.update_resources_interval),
            ("sync_power_states", manager.sync_power_states,
             conf.sync_power_state_interval),
        ],
        heartbeat=heartbeat, on_start=on_start)
    role.manager = manager
    return role


def lag_monitor(conf, reactor, role: str) -> ReactorLagMonitor:
    return ReactorLagMonitor(reactor, role,
                             interval=conf.reactor_lag_interval,
                             report_every=conf.reactor_lag_report_interval)


class RoleProcess(service.MultiService):
    """The top service of a role process."""


def conductor_process(conf, reactor) -> RoleProcess:
    top = RoleProcess()
    db = make_db(conf, reactor)
    db.setServiceParent(top)
    transport = make_transport(conf, reactor)
    TransportService(transport).setServiceParent(top)
    conductor_role(conf, reactor, transport, db).setServiceParent(top)
    lag_monitor(conf, reactor, "conductor").setServiceParent(top)
    return top


def scheduler_process(conf, reactor) -> RoleProcess:
    top = RoleProcess()
    db = make_db(conf, reactor)
    db.setServiceParent(top)
    transport = make_transport(conf, reactor)
    TransportService(transport).setServiceParent(top)
    scheduler_role(conf, reactor, transport, db).setServiceParent(top)
    lag_monitor(conf, reactor, "scheduler").setServiceParent(top)
    return top


def agent_process(conf, reactor) -> RoleProcess:
    top = RoleProcess()
    transport = make_transport(conf, reactor)
    TransportService(transport).setServiceParent(top)
    agent_role(conf, reactor, transport).setServiceParent(top)
    lag_monitor(conf, reactor, "agent").setServiceParent(top)
    return top
