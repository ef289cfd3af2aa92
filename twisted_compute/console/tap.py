"""``twistd compute-console-proxy``: the console proxy process (the
database for tokens, the noVNC listener on ``[vnc] novncproxy_host``:
``novncproxy_port`` serving the noVNC web client too, the serial
listener on ``[serial_console] serialproxy_host``:``serialproxy_port``,
and the purge of expired tokens)."""

from __future__ import annotations

from twisted.application import internet, service
from twisted.internet import endpoints, task
from twisted.web.server import Site

from twisted_compute.log import Logger
from twisted_compute.process import RoleProcess, lag_monitor, make_db
from twisted_compute.tap import Options, load_config  # noqa: F401

log = Logger()


def _endpoint(reactor, host: str, port: int):
    return endpoints.TCP4ServerEndpoint(reactor, port, interface=host)


class TokenPurge(service.Service):
    """Deletes expired console tokens every ``interval`` seconds."""

    name = "console-token-purge"

    def __init__(self, db, clock, interval: float):
        self.db = db
        self.clock = clock
        self.interval = interval
        self._loop = None

    def purge(self):
        d = self.db.console_auth_tokens.purge_expired(self.clock.seconds())
        d.addCallback(lambda count: count and log.info(
            "purged {count} expired console tokens", count=count))
        d.addErrback(lambda f: log.failure("console token purge failed", f))
        return d

    def startService(self):
        super().startService()
        if self.interval > 0:
            self._loop = task.LoopingCall(self.purge)
            self._loop.clock = self.clock
            self._loop.start(self.interval, now=True)

    def stopService(self):
        super().stopService()
        if self._loop is not None and self._loop.running:
            self._loop.stop()


def console_proxy_role(conf, reactor, db) -> service.MultiService:
    """The listeners and the token purge, on ``db``."""
    from twisted_compute.console.proxy import ConsoleProxyFactory, NoVNCRoot

    role = service.MultiService()
    role.setName("console-proxy")
    if conf.vnc.enabled:
        factory = ConsoleProxyFactory(conf, reactor, db, ["novnc"])
        site = Site(NoVNCRoot(factory, conf.vnc.novnc_path))
        internet.StreamServerEndpointService(
            _endpoint(reactor, conf.vnc.novncproxy_host,
                      conf.vnc.novncproxy_port), site
        ).setServiceParent(role)
        role.novnc_factory = factory
    if conf.serial_console.enabled:
        factory = ConsoleProxyFactory(conf, reactor, db, ["serial"])
        internet.StreamServerEndpointService(
            _endpoint(reactor, conf.serial_console.serialproxy_host,
                      conf.serial_console.serialproxy_port), factory
        ).setServiceParent(role)
        role.serial_factory = factory
    TokenPurge(db, reactor, conf.console.purge_interval).setServiceParent(
        role)
    return role


def console_proxy_process(conf, reactor) -> RoleProcess:
    top = RoleProcess()
    db = make_db(conf, reactor)
    db.setServiceParent(top)
    console_proxy_role(conf, reactor, db).setServiceParent(top)
    lag_monitor(conf, reactor, "console-proxy").setServiceParent(top)
    return top


def makeService(options):
    from twisted.internet import reactor

    return console_proxy_process(load_config(options), reactor)
