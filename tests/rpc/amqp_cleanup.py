"""Clean-up for tests and benchmarks on the real RabbitMQ: delete what an
:class:`~twisted_compute.rpc.amqp.AMQPTransport` declared."""

from __future__ import annotations

from twisted.internet.protocol import ClientCreator
from txamqp.client import TwistedDelegate
from txamqp.protocol import AMQClient


async def delete_declared(transport) -> None:
    """Delete every queue and exchange ``transport`` declared, on a
    short-lived connection of its own."""
    if not (transport.declared_queues or transport.declared_exchanges):
        return
    for broker in transport.url.hosts:
        creator = ClientCreator(
            transport.reactor, AMQClient, delegate=TwistedDelegate(),
            vhost=transport.url.virtual_host, spec=transport.spec,
            clock=transport.reactor)
        try:
            client = await creator.connectTCP(broker.host, broker.port,
                                              timeout=5)
        except Exception:
            continue
        await _delete_with(transport, client, broker)
        return


async def _delete_with(transport, client, broker) -> None:
    try:
        await client.authenticate(broker.user, broker.password)
        channel = await client.channel(1)
        await channel.channel_open()
        for name in sorted(transport.declared_queues):
            await channel.queue_delete(queue=name)
        for name in sorted(transport.declared_exchanges):
            await channel.exchange_delete(exchange=name)
        await client.close(within=1)
    finally:
        client.transport.loseConnection()
