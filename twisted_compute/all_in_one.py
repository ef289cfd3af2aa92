"""``twistd compute-all``: every role in one process, on embedded defaults.

With no config file at all it keeps its state (SQLite database, images)
under ``./state``, migrates the database by itself, uses the in-process
bus and noauth, runs a conductor, a scheduler, ``fake_agents`` compute
agents on the fake driver and the console proxy, and serves the APIs.  A config file may change
any of that (``transport_url = rabbit://...`` makes it join a distributed
deployment, ``compute_driver = libvirt`` a real hypervisor).
"""

from __future__ import annotations

import os

from twisted.application import service
from twisted.logger import Logger

from twisted_compute import clouds_yaml
from twisted_compute.tap import Options as _BaseOptions, load_config


class Options(_BaseOptions):
    pass


#: The flavors a fresh all-in-one starts with (id, name, MiB, vCPUs, GB).
DEFAULT_FLAVORS = (
    ("1", "m1.tiny", 512, 1, 1),
    ("2", "m1.small", 2048, 1, 20),
    ("3", "m1.medium", 4096, 2, 40),
    ("4", "m1.large", 8192, 4, 80),
    ("5", "m1.xlarge", 16384, 8, 160),
)

#: The name of the image a fresh all-in-one registers.
DEFAULT_IMAGE_NAME = "cirros-like-tiny"


def embedded_defaults(conf):
    """``conf`` with the all-in-one's defaults for what no file set."""
    defaults = {}
    if ("DEFAULT", "state_path") not in conf.sources:
        defaults["state_path"] = os.path.abspath("state")
    if ("DEFAULT", "periodic_fuzzy_delay") not in conf.sources:
        defaults["periodic_fuzzy_delay"] = 0
    if ("DEFAULT", "report_interval") not in conf.sources:
        defaults["report_interval"] = 5
    if ("DEFAULT", "allow_resize_to_same_host") not in conf.sources and \
            len(agent_hosts(conf)) == 1:
        # One agent: a resize or migration has nowhere else to go.
        defaults["allow_resize_to_same_host"] = True
    if defaults:
        conf = conf.with_overrides(DEFAULT=defaults)
    if ("api", "auth_strategy") not in conf.sources:
        conf = conf.with_overrides(api={"auth_strategy": "noauth"})
    return conf


def agent_hosts(conf) -> list[str]:
    """See :func:`twisted_compute.compute.tap.agent_hosts`."""
    from twisted_compute.compute.tap import agent_hosts as hosts
    return hosts(conf)


def makeService(options):
    from twisted.internet import reactor

    from twisted_compute.api.listeners import add_api_listeners
    from twisted_compute.compute.tap import agent_services
    from twisted_compute.conductor.tap import conductor_role
    from twisted_compute.console.tap import console_proxy_role
    from twisted_compute.process import (
        RoleProcess, TransportService, add_notifier, lag_monitor, make_db,
        make_transport)
    from twisted_compute.scheduler.tap import scheduler_role

    conf = embedded_defaults(load_config(options))
    top = RoleProcess()
    db = make_db(conf, reactor, auto_migrate=True)
    db.setServiceParent(top)
    seed_defaults(conf, db.engine)
    transport = make_transport(conf, reactor)
    TransportService(transport).setServiceParent(top)
    notifier = add_notifier(conf, reactor, top, transport)
    top.notifier = notifier
    conductor_role(conf, reactor, transport, db,
                   notifier).setServiceParent(top)
    scheduler_role(conf, reactor, transport, db,
                   notifier).setServiceParent(top)
    for agent in agent_services(conf, reactor, transport,
                                notifier=notifier):
        agent.setServiceParent(top)
    console_proxy_role(conf, reactor, db).setServiceParent(top)
    lag_monitor(conf, reactor, "all-in-one").setServiceParent(top)
    top = add_api_listeners(conf, reactor, top, db, transport,
                            notifier=notifier)
    CloudsYamlNotice(conf, clouds_yaml.write(conf)).setServiceParent(top)
    return top


class CloudsYamlNotice(service.Service):
    """Logs, once the process runs, where the clouds.yaml that
    :func:`makeService` wrote is and the line that points the CLI at it."""

    log = Logger()

    def __init__(self, conf, path: str):
        self.conf = conf
        self.path = path

    def startService(self):
        super().startService()
        self.log.info("clouds.yaml for the openstack CLI written; use: "
                      "{line}", line=clouds_yaml.export_line(self.conf,
                                                             self.path))


def seed_defaults(conf, engine) -> None:
    """Give an empty database the default flavors and, when no image
    exists, a small default image (before the reactor runs, so blocking
    is fine here)."""
    import sqlalchemy as sa

    from twisted_compute.db import flavors, models

    with engine.connect() as conn:
        with conn.begin():
            if not flavors.count(conn):
                for flavorid, name, ram, vcpus, disk in DEFAULT_FLAVORS:
                    flavors.create(conn, {
                        "flavorid": flavorid, "name": name,
                        "memory_mb": ram, "vcpus": vcpus, "root_gb": disk,
                        "is_public": True})
            has_image = conn.execute(sa.select(sa.func.count()).select_from(
                models.images)).scalar_one()
    if not has_image:
        from twisted_compute.api.image import store
        path = os.path.join(conf.state_path, "default-image.img")
        os.makedirs(conf.state_path, exist_ok=True)
        with open(path, "wb") as handle:
            # A tiny raw disk: the fake driver boots anything; a real
            # guest image can be imported with compute-manage image import.
            handle.write(b"\0" * 1024 * 1024)
        store.import_file(conf, path, name=DEFAULT_IMAGE_NAME,
                          disk_format="raw", container_format="bare",
                          visibility="public", owner=None, properties={})
        os.unlink(path)
