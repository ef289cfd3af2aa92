"""``twistd compute-agent``: the agent of one hypervisor host (the bus
and the agent's RPC service; no database, the conductor is its only way
to it)."""

from __future__ import annotations

from twisted.internet import defer

from twisted_compute import exception
from twisted_compute.compute.manager import ComputeManager
from twisted_compute.conductor.rpcapi import ConductorAPIClient
from twisted_compute.context import get_admin_context
from twisted_compute.log import Logger
from twisted_compute.notifications import publisher_id
from twisted_compute.objects.service import COMPUTE_BINARY
from twisted_compute.process import (
    RoleProcess, TransportService, add_notifier, lag_monitor,
    make_transport)
from twisted_compute.rpc_service import RPCRoleService
from twisted_compute.tap import Options, load_config  # noqa: F401
from twisted_compute.virt.driver import load_driver

log = Logger()


def agent_hosts(conf) -> list[str]:
    """The hosts of the agents of one process: ``[DEFAULT] host``, or
    with the fake driver and ``fake_agents = N`` above 1, N hosts
    ``<host>-fake-1`` ... ``<host>-fake-N`` (none for 0)."""
    count = conf.fake_agents if conf.compute_driver == "fake" else 1
    if count <= 1:
        return [conf.host] if count == 1 else []
    return [f"{conf.host}-fake-{i}" for i in range(1, count + 1)]


def agent_role(conf, reactor, transport, host: str | None = None,
               driver=None, report: bool = True,
               notifier=None) -> RPCRoleService:
    """A compute agent for ``host``: no database, the conductor is its
    only way to it.  With ``report`` false the agent sends no heartbeat
    and no periodic resource report or power sync of its own (a
    :class:`~twisted_compute.compute.fleet.FleetReporter` sends them for
    all the agents of the process).  ``notifier`` (the process's
    :class:`~twisted_compute.notifications.Notifier`) gets the agent's
    notifications, as ``nova-compute:<host>``."""
    host = host or conf.host
    if driver is None:
        try:
            driver = load_driver(conf, reactor, host=host)
        except exception.ComputeException as exc:
            raise SystemExit(f"twisted-compute: [DEFAULT] compute_driver: "
                             f"{exc.format_message()}") from None
        check_host = getattr(driver, "check_host", None)
        if check_host is not None:
            # Before the reactor runs: one line saying what to do, and no
            # agent that would only fail its builds.
            try:
                check_host()
            except Exception as exc:  # noqa: BLE001 - one line, then exit
                raise SystemExit(f"twisted-compute: {exc}") from None
    conductor = ConductorAPIClient(transport,
                                   timeout=conf.rpc_response_timeout)
    manager = ComputeManager(conf, host, driver, conductor, reactor)
    publisher = None
    if notifier is not None:
        publisher = manager.notifier = notifier.prepare(
            publisher_id(COMPUTE_BINARY, host))
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
    if report:
        periodic.append(("update_available_resource",
                         manager.update_available_resource,
                         conf.update_resources_interval))
    if getattr(driver, "age_images", None) and \
            conf.image_cache_manager_interval > 0:
        periodic.append(("age_images", driver.age_images,
                         conf.image_cache_manager_interval))
    if conf.shelved_offload_time > 0:
        periodic.append(("offload_shelved_instances",
                         lambda: manager._periodic(
                             manager.offload_shelved_instances, None),
                         conf.shelved_poll_interval))
    if conf.reclaim_instance_interval > 0:
        # As Nova: the reclaim runs at most once a minute.
        periodic.append(("reclaim_queued_deletes",
                         manager.reclaim_queued_deletes,
                         min(60, conf.reclaim_instance_interval)))
    if report:
        # A fleet's power sync is the FleetReporter's (one RPC for all).
        periodic.append(("sync_power_states", manager.sync_power_states,
                         conf.sync_power_state_interval))
    role = RPCRoleService(
        conf, reactor, transport, topic, host, COMPUTE_BINARY, [manager],
        periodic=periodic,
        heartbeat=heartbeat if report else None, on_start=on_start,
        notifier=publisher)
    role.manager = manager
    return role


def agent_services(conf, reactor, transport,
                   hosts: list[str] | None = None, notifier=None) -> list:
    """The services of the agents of ``hosts`` (default
    :func:`agent_hosts`): one agent alone reports by itself; several
    report together, one RPC per interval, through a
    :class:`~twisted_compute.compute.fleet.FleetReporter` (last in the
    list)."""
    hosts = agent_hosts(conf) if hosts is None else hosts
    if len(hosts) <= 1:
        return [agent_role(conf, reactor, transport, host=host,
                           notifier=notifier)
                for host in hosts]
    from twisted_compute.compute.fleet import FleetReporter
    roles = [agent_role(conf, reactor, transport, host=host, report=False,
                        notifier=notifier)
             for host in hosts]
    conductor = ConductorAPIClient(transport,
                                   timeout=conf.rpc_response_timeout)
    return roles + [FleetReporter(conf, reactor, conductor,
                                  [role.manager for role in roles])]


def agent_process(conf, reactor) -> RoleProcess:
    top = RoleProcess()
    transport = make_transport(conf, reactor)
    TransportService(transport).setServiceParent(top)
    notifier = add_notifier(conf, reactor, top, transport)
    for agent in agent_services(conf, reactor, transport,
                                notifier=notifier):
        agent.setServiceParent(top)
    lag_monitor(conf, reactor, "agent").setServiceParent(top)
    return top


def makeService(options):
    from twisted.internet import reactor

    return agent_process(load_config(options), reactor)
