"""Run real processes of twisted-compute and talk to them.

* :mod:`.processes`: the programs of this virtualenv, free ports, the
  process tree, bounded polling, commands run to their end;
* :mod:`.http`: plain HTTP (and a self-signed certificate for TLS);
* :mod:`.twistd`: one ``twistd ROLE`` process (:class:`TwistdProcess`)
  and the test case that runs them (:class:`TwistdTestCase`);
* :mod:`.rabbitmq`: ``rabbitmqctl`` and a RabbitMQ vhost per test;
* :mod:`.rabbit_cluster`: three RabbitMQ nodes joined into a cluster
  beside the system node (``tools/rabbit-cluster``), a vhost on it;
* :mod:`.private_pg`: a PostgreSQL server of a test's own, for tests
  that restart the database;
* :mod:`.deployment`: several roles on one database and one bus
  (:class:`Deployment`) and their compute API (``api_*``).

The names the tests use are importable from here.
"""

from tests.integration.harness.deployment import (
    ADMIN, VERSION, Deployment, DeploymentTestCase, api_actions, api_boot,
    api_flavor, api_hypervisors, api_image, api_servers, api_services,
    api_wait_servers)
from tests.integration.harness.http import (
    Response, http_request, make_self_signed)
from tests.integration.harness.processes import (
    BIN, COMPUTE_MANAGE, LOOPBACK, OPENSTACK, TWISTD, alive, children_of,
    descendants_of, free_port, is_zombie, ppid_of, run_command, wait_until)
from tests.integration.harness.rabbitmq import (
    RABBIT_PORT, RABBITMQCTL, RabbitVhost, ensure_rabbitmq_running,
    rabbit_reachable, rabbitmqctl)
from tests.integration.harness.twistd import (
    ROLE_READY, START_TIMEOUT, STOP_TIMEOUT, TwistdProcess, TwistdTestCase,
    db_sync, kill_process, migrated_sqlite_file)

__all__ = [
    "ADMIN", "BIN", "COMPUTE_MANAGE", "Deployment", "DeploymentTestCase",
    "LOOPBACK", "OPENSTACK", "RABBITMQCTL", "RABBIT_PORT", "ROLE_READY",
    "RabbitVhost", "Response", "START_TIMEOUT", "STOP_TIMEOUT", "TWISTD",
    "TwistdProcess", "TwistdTestCase", "VERSION", "alive", "api_actions",
    "api_boot", "api_flavor", "api_hypervisors", "api_image", "api_servers",
    "api_services", "api_wait_servers", "children_of", "db_sync",
    "descendants_of", "ensure_rabbitmq_running", "free_port",
    "http_request", "is_zombie", "kill_process", "make_self_signed",
    "migrated_sqlite_file", "ppid_of", "rabbit_reachable", "rabbitmqctl",
    "run_command", "wait_until",
]
