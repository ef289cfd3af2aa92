"""The message bus: one transport interface, two transports (``local``
in-process, ``amqp`` on RabbitMQ), and versioned RPC on top.

    transport = transport_for(conf, reactor)
    await transport.start()
    client = RPCClient(transport, "conductor", version_cap="1.0")
    result = await client.prepare(timeout=10).call(ctx, "ping", n=1)
    server = RPCServer(transport, "conductor", conf.host, [manager])
    await server.start()
"""

from twisted_compute.rpc.client import RPCClient
from twisted_compute.rpc.errors import (
    MalformedMessage, NoSuchMethod, RemoteError, RPCVersionCapError,
    UnsupportedVersion)
from twisted_compute.rpc.server import RPCServer
from twisted_compute.rpc.transport import (
    ITransport, RejectMessage, RequeueMessage, Target, TransportURL,
    transport_for)

__all__ = [
    "ITransport", "MalformedMessage", "NoSuchMethod", "RPCClient",
    "RPCServer", "RPCVersionCapError", "RejectMessage", "RemoteError",
    "RequeueMessage",
    "Target", "TransportURL", "UnsupportedVersion", "transport_for",
]
