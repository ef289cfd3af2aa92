"""``twistd compute-conductor``: the conductor process (the database,
the bus, the conductor's RPC service)."""

from __future__ import annotations

from twisted_compute.compute.rpcapi import ComputeAPIClient
from twisted_compute.conductor.manager import ConductorManager
from twisted_compute.conductor.rpcapi import TOPIC
from twisted_compute.notifications import publisher_id
from twisted_compute.objects.service import CONDUCTOR_BINARY
from twisted_compute.process import (
    RoleProcess, TransportService, add_notifier, db_heartbeat, lag_monitor,
    make_db, make_transport)
from twisted_compute.rpc.client import RPCClient
from twisted_compute.rpc_service import RPCRoleService
from twisted_compute.scheduler.rpcapi import SchedulerAPIClient
from twisted_compute.tap import Options, load_config  # noqa: F401


def conductor_role(conf, reactor, transport, db,
                   notifier=None) -> RPCRoleService:
    scheduler = SchedulerAPIClient(
        RPCClient(transport, "scheduler", timeout=conf.long_rpc_timeout),
        conf)
    compute = ComputeAPIClient.for_transport(
        transport, conf.upgrade_levels.compute)
    # The conductor finishes work under way: its DB work goes first.
    manager = ConductorManager(conf, db.prioritized(), scheduler, compute,
                               reactor, host=conf.host)
    publisher = None
    if notifier is not None:
        publisher = manager.notifier = notifier.prepare(
            publisher_id(CONDUCTOR_BINARY, conf.host))
    return RPCRoleService(
        conf, reactor, transport, TOPIC, conf.host, CONDUCTOR_BINARY,
        [manager],
        periodic=[("check_build_timeouts", manager.check_build_timeouts,
                   conf.build_timeout_check_interval),
                  ("confirm_resizes", manager.confirm_resizes,
                   conf.resize_confirm_check_interval),
                  ("audit_usage", manager.audit_usage,
                   conf.usage_audit_interval),
                  ("reap_stuck_moves", manager.reap_stuck_moves,
                   conf.stuck_move_check_interval),
                  ("check_lifecycle_timeouts",
                   manager.check_lifecycle_timeouts,
                   conf.build_timeout_check_interval)],
        heartbeat=db_heartbeat(db, conf.host, CONDUCTOR_BINARY, TOPIC),
        notifier=publisher)


def conductor_process(conf, reactor) -> RoleProcess:
    top = RoleProcess()
    db = make_db(conf, reactor)
    db.setServiceParent(top)
    transport = make_transport(conf, reactor)
    TransportService(transport).setServiceParent(top)
    notifier = add_notifier(conf, reactor, top, transport)
    conductor_role(conf, reactor, transport, db,
                   notifier).setServiceParent(top)
    lag_monitor(conf, reactor, "conductor").setServiceParent(top)
    return top


def makeService(options):
    from twisted.internet import reactor

    return conductor_process(load_config(options), reactor)
