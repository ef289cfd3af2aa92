"""``twistd compute-api``: the API process (the database, the bus, then
the listeners)."""

from __future__ import annotations

from twisted_compute.api.listeners import add_api_listeners
from twisted_compute.process import (
    RoleProcess, TransportService, add_notifier, lag_monitor, make_db,
    make_transport)
from twisted_compute.tap import Options, load_config  # noqa: F401


class APIProcess(RoleProcess):
    """The compute-api role: DB first, then the bus, then the listeners."""


def api_process(conf, reactor) -> APIProcess:
    top = APIProcess()
    lag_monitor(conf, reactor, "api").setServiceParent(top)
    db = make_db(conf, reactor)
    db.setServiceParent(top)
    transport = make_transport(conf, reactor)
    TransportService(transport).setServiceParent(top)
    notifier = add_notifier(conf, reactor, top, transport)
    return add_api_listeners(conf, reactor, top, db, transport,
                             notifier=notifier)


def makeService(options):
    from twisted.internet import reactor

    return api_process(load_config(options), reactor)
