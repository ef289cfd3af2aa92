"""``twistd compute-scheduler``: the scheduler process (the database,
the bus, the scheduler's RPC service)."""

from __future__ import annotations

from twisted_compute.notifications import publisher_id
from twisted_compute.objects.service import SCHEDULER_BINARY
from twisted_compute.process import (
    RoleProcess, TransportService, add_notifier, db_heartbeat, lag_monitor,
    make_db, make_transport)
from twisted_compute.rpc_service import RPCRoleService
from twisted_compute.scheduler.manager import SchedulerManager
from twisted_compute.tap import Options, load_config  # noqa: F401


def scheduler_role(conf, reactor, transport, db,
                   notifier=None) -> RPCRoleService:
    """The scheduler; ``notifier`` gets its ``service.update``
    notifications."""
    manager = SchedulerManager(conf, db.prioritized(), reactor)
    return RPCRoleService(
        conf, reactor, transport, "scheduler", conf.host, SCHEDULER_BINARY,
        [manager],
        heartbeat=db_heartbeat(db, conf.host, SCHEDULER_BINARY,
                               "scheduler"),
        notifier=(notifier.prepare(publisher_id(SCHEDULER_BINARY,
                                                conf.host))
                  if notifier is not None else None))


def scheduler_process(conf, reactor) -> RoleProcess:
    top = RoleProcess()
    db = make_db(conf, reactor)
    db.setServiceParent(top)
    transport = make_transport(conf, reactor)
    TransportService(transport).setServiceParent(top)
    notifier = add_notifier(conf, reactor, top, transport)
    scheduler_role(conf, reactor, transport, db,
                   notifier).setServiceParent(top)
    lag_monitor(conf, reactor, "scheduler").setServiceParent(top)
    return top


def makeService(options):
    from twisted.internet import reactor

    return scheduler_process(load_config(options), reactor)
