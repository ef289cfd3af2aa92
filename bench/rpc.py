"""RPC benchmark: call latency (p50/p99) and cast throughput.

Over the local (in-process) transport and over RabbitMQ (txamqp), with a
server and a client each on its own transport (for AMQP: each its own
connection, as two processes would have).  Prints figures; asserts
nothing.

    .venv/bin/python bench/rpc.py [--calls 1000] [--casts 5000]
        [--concurrency 10] [--url rabbit://guest:guest@127.0.0.1:5672/]
        [--only local|amqp]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid

from twisted.internet import defer, task
from twisted.logger import Logger

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

from twisted_compute.context import RequestContext  # noqa: E402
from twisted_compute.rpc import RPCClient, RPCServer  # noqa: E402
from twisted_compute.rpc.transport import (  # noqa: E402
    DEFAULT_AMQP_SPEC, TransportURL)


class Endpoint:
    target_version = "1.0"

    def __init__(self):
        self.casts = 0
        self.done: defer.Deferred | None = None
        self.expected = 0

    def ping(self, context, n):
        return n

    def note(self, context, n):
        self.casts += 1
        if self.done is not None and self.casts >= self.expected:
            done, self.done = self.done, None
            done.callback(None)


def percentile(sorted_values, fraction):
    index = min(len(sorted_values) - 1,
                int(round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


async def run_one(reactor, name, make_transport, args):
    server_transport = make_transport()
    client_transport = make_transport()
    await server_transport.start()
    await client_transport.start()
    topic = "bench_" + uuid.uuid4().hex[:8]
    endpoint = Endpoint()
    server = RPCServer(server_transport, topic, "b1", [endpoint])
    server.log = Logger(observer=lambda e: None)  # no per-call log lines
    await server.start()
    client = RPCClient(client_transport, topic, timeout=30)
    ctx = RequestContext(user_id="bench", project_id="bench")
    try:
        for n in range(50):  # warm up
            await client.call(ctx, "ping", n=n)

        latencies = []
        for n in range(args.calls):
            started = time.perf_counter()
            await client.call(ctx, "ping", n=n)
            latencies.append((time.perf_counter() - started) * 1000)
        latencies.sort()

        # concurrent calls: `concurrency` callers in a loop
        started = time.perf_counter()
        per_worker = args.calls // args.concurrency

        async def caller():
            for n in range(per_worker):
                await client.call(ctx, "ping", n=n)

        await defer.gatherResults([defer.ensureDeferred(caller())
                                   for _ in range(args.concurrency)])
        concurrent_rate = (per_worker * args.concurrency
                           / (time.perf_counter() - started))

        # casts: publish all (each confirmed), time until all handled
        endpoint.expected = endpoint.casts + args.casts
        endpoint.done = defer.Deferred()
        started = time.perf_counter()
        window = []
        for n in range(args.casts):
            window.append(client.cast(ctx, "note", n=n))
            if len(window) >= 200:
                await defer.gatherResults(window)
                window = []
        await defer.gatherResults(window)
        confirmed = time.perf_counter() - started
        await endpoint.done
        handled = time.perf_counter() - started
        print(f"{name:6s} call p50 {percentile(latencies, 0.5):7.3f} ms  "
              f"p99 {percentile(latencies, 0.99):7.3f} ms  "
              f"({args.calls} sequential calls)")
        print(f"{name:6s} calls/s with {args.concurrency} concurrent "
              f"callers: {concurrent_rate:8.0f}")
        print(f"{name:6s} casts/s: {args.casts / handled:8.0f} handled "
              f"({args.casts / confirmed:.0f}/s confirmed by the sender; "
              f"{args.casts} casts)")
    finally:
        await server.stop()
        await client_transport.stop()
        await server_transport.stop()
        if hasattr(server_transport, "declared_queues"):
            from tests.rpc.amqp_cleanup import delete_declared
            await delete_declared(server_transport)
            await delete_declared(client_transport)


async def main(reactor, argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--casts", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--url",
                        default="rabbit://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--only", choices=("local", "amqp"))
    args = parser.parse_args(argv)
    print("command: .venv/bin/python bench/rpc.py " + " ".join(argv))
    if args.only in (None, "local"):
        from twisted_compute.rpc.local import LocalBroker, LocalTransport
        broker = LocalBroker()
        await run_one(reactor, "local",
                      lambda: LocalTransport(reactor, broker), args)
    if args.only in (None, "amqp"):
        from twisted_compute.rpc.amqp import AMQPTransport
        url = TransportURL.parse(args.url)
        exchange = "bench_" + uuid.uuid4().hex[:8]
        await run_one(reactor, "amqp",
                      lambda: AMQPTransport(reactor, url, DEFAULT_AMQP_SPEC,
                                            exchange=exchange), args)


if __name__ == "__main__":
    task.react(lambda reactor: defer.ensureDeferred(
        main(reactor, sys.argv[1:])))
