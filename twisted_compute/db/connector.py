"""The database by table: one component per table (or group of tables).

``db.instances.get(uuid)``, ``db.flavors.get_by_flavorid(...)`` and so on
each run their query in the DB thread pool and return a Deferred.
:class:`~twisted_compute.db.pool.DBService` is a connector (its work
runs at normal priority); :meth:`~twisted_compute.db.pool.DBService.
prioritized` gives one whose work goes first.
"""

from __future__ import annotations

from twisted_compute.db.actions import ActionsComponent
from twisted_compute.db.aggregates import AggregatesComponent
from twisted_compute.db.console_auth_tokens import \
    ConsoleAuthTokensComponent
from twisted_compute.db.external_events import ExternalEventsComponent
from twisted_compute.db.ec2_credentials import Ec2CredentialsComponent
from twisted_compute.db.flavors import FlavorsComponent
from twisted_compute.db.images import ImagesComponent
from twisted_compute.db.instances import InstancesComponent
from twisted_compute.db.keypairs import KeypairsComponent
from twisted_compute.db.migrations import MigrationsComponent
from twisted_compute.db.quotas import QuotasComponent
from twisted_compute.db.server_groups import ServerGroupsComponent
from twisted_compute.db.services import ServicesComponent


class DBConnector:
    """The components, each running its queries through ``db`` (what has
    ``run(thd, *args, readonly=..., priority=..., **kwargs)``) at
    ``priority``."""

    def _attach_components(self, db, priority: int) -> None:
        #: Instances, their metadata, tags and password.
        self.instances = InstancesComponent(db, priority)
        #: Instance actions, their events, and instance faults.
        self.actions = ActionsComponent(db, priority)
        #: Flavors, extra specs, flavor access.
        self.flavors = FlavorsComponent(db, priority)
        self.images = ImagesComponent(db, priority)
        self.keypairs = KeypairsComponent(db, priority)
        self.server_groups = ServerGroupsComponent(db, priority)
        self.quotas = QuotasComponent(db, priority)
        self.aggregates = AggregatesComponent(db, priority)
        #: Services and compute nodes.
        self.services = ServicesComponent(db, priority)
        #: Console auth tokens (their hashes).
        self.console_auth_tokens = ConsoleAuthTokensComponent(db, priority)
        #: External events the instances received.
        self.external_events = ExternalEventsComponent(db, priority)
        #: EC2 access keys (noauth) and RunInstances client tokens.
        self.ec2_credentials = Ec2CredentialsComponent(db, priority)
        #: Migrations (moves) and the instances' migration contexts.
        self.migrations = MigrationsComponent(db, priority)
