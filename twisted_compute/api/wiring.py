"""What the API's factories share in one process: configuration, the DB
service, the policy enforcer, the compute API layer, the Keystone client."""

from __future__ import annotations

from typing import Any

import attrs

from twisted_compute.api.policy import Enforcer
from twisted_compute.config import Config
from twisted_compute.db.pool import DBService


@attrs.define
class APIServices:
    conf: Config
    reactor: Any
    db: DBService
    policy: Enforcer
    compute_api: Any = None
    keystone: Any = None
    #: The image files, for the Compute API's image proxy (DELETE).
    image_store: Any = None
    #: The loaded Compute API extensions (Twisted plugins).
    extensions: list = attrs.Factory(list)
    #: alias -> the values of the config options each extension declares.
    extension_options: dict = attrs.Factory(dict)
    #: Nova's versioned notifications of the API (``nova-api:<host>``).
    notifier: Any = None


def build(conf: Config, reactor, db: DBService,
          compute_task_api=None, transport=None,
          notifier=None) -> APIServices:
    """Wire the API's shared objects for ``conf``.

    With a bus ``transport``, new servers are handed to the conductor and
    server actions to the agents over it; without one (unit tests of the
    API alone) servers stay in BUILD and agent actions answer 501.
    """
    from twisted_compute.compute.api import ComputeAPI
    from twisted_compute.conductor.api import ComputeTaskAPI

    policy_file = conf.find_file(conf.oslo_policy.policy_file)
    policy = Enforcer.from_file(policy_file)
    from twisted_compute.notifications import NOOP, publisher_id
    services = APIServices(
        conf=conf, reactor=reactor, db=db, policy=policy,
        notifier=(notifier.prepare(publisher_id("nova-api", conf.host))
                  if notifier is not None else NOOP))
    from twisted_compute.api.image.store import ImageStore
    services.image_store = ImageStore(conf, reactor)
    compute_rpcapi = None
    if transport is not None:
        from twisted_compute.compute.rpcapi import ComputeAPIClient
        from twisted_compute.conductor.rpcapi import ConductorAPIClient
        if compute_task_api is None:
            compute_task_api = ComputeTaskAPI(conf, ConductorAPIClient(
                transport, timeout=conf.rpc_response_timeout))
        compute_rpcapi = ComputeAPIClient.for_transport(transport)
    services.compute_api = ComputeAPI(
        conf, db, compute_task_api or ComputeTaskAPI(conf),
        compute_rpcapi=compute_rpcapi, clock=reactor)
    services.compute_api.notifier = services.notifier
    from twisted_compute.api.openstack import extensions
    services.extensions = extensions.load(conf, policy)
    services.extension_options = services.extensions.options
    if conf.api.auth_strategy == "keystone":
        from twisted_compute.api.middleware.auth import KeystoneClient
        services.keystone = KeystoneClient(conf, reactor)
    return services
