"""RabbitMQ for the integration tests: ``rabbitmqctl``, bringing the
broker back after a test stopped it, and a virtual host per test."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

from tests import base
from tests.integration.harness.processes import (
    LOOPBACK, run_command, wait_until)

RABBITMQCTL = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
RABBIT_PORT = 5672


def rabbitmqctl(*args: str, timeout: float = 60.0
                ) -> subprocess.CompletedProcess:
    """``rabbitmqctl ARGS`` to its end (bounded)."""
    return run_command([RABBITMQCTL, *args], timeout=timeout)


def rabbit_reachable(port: int = RABBIT_PORT) -> bool:
    return base.reachable(LOOPBACK, port, timeout=1.0)


def ensure_rabbitmq_running(timeout: float = 90.0) -> None:
    """Bring RabbitMQ back when a test stopped it: ``start_app`` (the
    node still runs after ``stop_app``), else start the server; waits
    (bounded) until the AMQP port answers.  AssertionError otherwise."""
    if rabbit_reachable():
        return
    deadline = time.monotonic() + timeout
    done = rabbitmqctl("start_app", timeout=timeout)
    if done.returncode != 0:
        # The node itself is down (``rabbitmqctl stop``): start it.
        subprocess.run(["rabbitmq-server", "-detached"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=30, check=False)
        while time.monotonic() < deadline:
            if rabbitmqctl("await_startup", timeout=30).returncode == 0:
                break
            time.sleep(1)
    wait_until(rabbit_reachable, max(1.0, deadline - time.monotonic()),
               interval=0.2, message="RabbitMQ's AMQP port")


class RabbitVhost:
    """A RabbitMQ virtual host of its own for one test (``guest`` may use
    it), deleted with every queue and exchange in it at :meth:`delete`:
    runs never see each other's (durable) queues, and a killed run leaves
    nothing another run could consume."""

    def __init__(self, name: str | None = None,
                 user: str = "guest", password: str = "guest",
                 port: int = RABBIT_PORT):
        self.name = name or f"tc_it_{os.getpid()}_{os.urandom(4).hex()}"
        self.user, self.password, self.port = user, password, port
        self.created = False

    def create(self) -> "RabbitVhost":
        base.require_service("rabbitmq", port=self.port)
        for args in (("add_vhost", self.name),
                     ("set_permissions", "-p", self.name, self.user,
                      ".*", ".*", ".*")):
            done = rabbitmqctl(*args)
            if done.returncode != 0:
                raise AssertionError(f"rabbitmqctl {' '.join(args)} failed:"
                                     f"\n{done.stdout}\n{done.stderr}")
            self.created = True
        return self

    @property
    def url(self) -> str:
        return (f"rabbit://{self.user}:{self.password}@{LOOPBACK}:"
                f"{self.port}/{self.name}")

    def list_queues(self) -> dict[str, int]:
        """``{queue: messages}`` of this vhost (for assertions)."""
        done = rabbitmqctl("list_queues", "-q", "-p", self.name, "name",
                           "messages")
        queues = {}
        for line in done.stdout.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit():
                queues[parts[0]] = int(parts[1])
        return queues

    def delete(self) -> None:
        if self.created:
            ensure_rabbitmq_running()
            rabbitmqctl("delete_vhost", self.name)
            self.created = False
