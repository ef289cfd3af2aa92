"""A plain AMQP 0-9-1 client (txamqp alone, none of twisted-compute's
code), run as a program by the tests, to see what the processes publish:

    python amqp_watch.py bind  URL EXCHANGE QUEUE ROUTING_KEY
        declare the topic EXCHANGE (durable) and QUEUE, bind them;
    python amqp_watch.py drain URL QUEUE
        take every message waiting in QUEUE and print one JSON line each:
        {"routing_key": ..., "exchange": ..., "body": "<body as text>"}.

URL is ``amqp://user:password@host:port/vhost``.  Exits 0 when done.
"""

from __future__ import annotations

import json
import sys
import warnings
from urllib.parse import unquote, urlsplit

warnings.filterwarnings("ignore", category=DeprecationWarning)

SPEC = "/usr/share/amqp/specs/0-9-1-rabbit/amqp0-9-1.stripped.extended.xml"


async def main(reactor, argv):
    from twisted.internet.endpoints import (
        TCP4ClientEndpoint, connectProtocol)
    from txamqp import spec
    from txamqp.client import TwistedDelegate
    from txamqp.protocol import AMQClient

    mode, url = argv[0], urlsplit(argv[1])
    client = AMQClient(TwistedDelegate(), unquote(url.path[1:]) or "/",
                       spec.load(SPEC))
    await connectProtocol(TCP4ClientEndpoint(
        reactor, url.hostname, url.port or 5672, timeout=10), client)
    await client.authenticate(unquote(url.username or "guest"),
                              unquote(url.password or "guest"))
    channel = await client.channel(1)
    await channel.channel_open()
    if mode == "bind":
        exchange, queue, key = argv[2:5]
        await channel.exchange_declare(exchange=exchange, type="topic",
                                       durable=True)
        await channel.queue_declare(queue=queue, durable=False,
                                    auto_delete=False, exclusive=False)
        await channel.queue_bind(queue=queue, exchange=exchange,
                                 routing_key=key)
    elif mode == "drain":
        while True:
            reply = await channel.basic_get(queue=argv[2], no_ack=True)
            if reply.method.name != "get-ok":
                break
            body = reply.content.body
            print(json.dumps({
                "routing_key": reply.routing_key,
                "exchange": reply.exchange,
                "body": body.decode("utf-8") if isinstance(body, bytes)
                else body}), flush=True)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    await channel.channel_close()
    client.transport.loseConnection()


if __name__ == "__main__":
    from twisted.internet import defer, task
    task.react(lambda reactor, argv: defer.ensureDeferred(
        main(reactor, argv)), (sys.argv[1:],))
