"""What a notification costs the action that sends it.

    .venv/bin/python bench/notifications.py   # --count 20000

Builds ``--count`` ``instance.power_off.end`` notifications of one
instance (a full ``InstanceActionPayload`` with its flavor and
addresses) through the agent's publisher, and prints the CPU time per
notification of: the noop notifier (nothing is built), the in-process
sink (built, enveloped, kept), and queueing for an AMQP sink (built,
enveloped and queued; the publish itself runs later in the drain loop,
not in the caller), plus the command to reproduce the figures.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time

from twisted.internet import defer
from twisted.internet.task import Clock

from twisted_compute.context import RequestContext
from twisted_compute.notifications import MemorySink, Notifier
from twisted_compute.objects.instance import Instance


class HeldSink:
    """An AMQP-like sink that never confirms (the caller's cost only)."""

    synchronous = False

    def publish(self, routing_key, body):
        return defer.Deferred()

    def start(self):
        return defer.succeed(None)

    def stop(self):
        return defer.succeed(None)


def instance() -> Instance:
    now = datetime.datetime(2026, 12, 2, 12, 0, 0)
    return Instance(
        id=1, uuid="6f1c9d3e-0000-4000-8000-000000000001", user_id="u",
        project_id="p", vm_state="stopped", power_state=4,
        display_name="bench", host="hv1", node="hv1", image_ref="img",
        flavor={"flavorid": "1", "name": "m1.tiny", "memory_mb": 512,
                "vcpus": 1, "root_gb": 1, "extra_specs": {}},
        addresses={"private": [{"addr": "10.0.0.3", "version": 4,
                                "OS-EXT-IPS-MAC:mac_addr":
                                "fa:16:3e:00:00:01"}]},
        created_at=now, launched_at=now, metadata={"k": "v"})


def measure(notifier: Notifier, count: int) -> float:
    """CPU seconds per notification sent through ``notifier``."""
    publisher = notifier.prepare("nova-compute:hv1")
    ctx = RequestContext(user_id="u", project_id="p")
    record = instance()
    started = time.process_time()
    for _ in range(count):
        publisher.instance_action(ctx, record, "power_off", "end")
    return (time.process_time() - started) / count


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=20000)
    args = parser.parse_args(argv)
    clock = Clock()
    cases = [
        ("noop", Notifier.noop(clock)),
        ("in-process sink", Notifier(clock, MemorySink(args.count),
                                     drivers=["messagingv2"])),
        ("queued for AMQP", Notifier(clock, HeldSink(),
                                     drivers=["messagingv2"],
                                     queue_size=args.count)),
    ]
    for name, notifier in cases:
        per = measure(notifier, args.count)
        print(f"{name:16s} {per * 1e6:8.1f} us CPU per notification "
              f"({args.count} notifications)")
    print(f"reproduce: .venv/bin/python bench/notifications.py "
          f"--count {args.count}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
