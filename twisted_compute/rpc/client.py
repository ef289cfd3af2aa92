"""The caller's side of RPC: ``RPCClient(transport, "conductor", ...)``.

``client.prepare(version="1.2", server=host, timeout=...)`` returns a
client bound to those; ``call`` waits for the result (or raises the remote
exception, typed), ``cast`` returns once the message is handed over.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

from twisted_compute.context import RequestContext
from twisted_compute.log import Logger
from twisted_compute.rpc import errors
from twisted_compute.rpc.transport import ITransport, Target


def make_envelope(context, method: str, args: dict,
                  version: str) -> dict[str, Any]:
    if isinstance(context, RequestContext):
        context = context.to_dict()
    return {"method": method, "args": args, "version": version,
            "context": context or {}}


class RPCClient:
    log = Logger()

    def __init__(self, transport: ITransport, topic: str,
                 version_cap: str | None = None, version: str = "1.0",
                 server: str | None = None, timeout: float | None = None,
                 fanout: bool = False):
        self.transport = transport
        self.topic = topic
        self.version_cap = version_cap
        self.version = version
        self.server = server
        self.timeout = timeout
        self.fanout = fanout
        if version_cap is not None and not self.can_send_version(version):
            raise errors.RPCVersionCapError(version=version,
                                            version_cap=version_cap)

    def prepare(self, version: str | None = None, server: str | None = None,
                timeout: float | None = None,
                fanout: bool | None = None) -> "RPCClient":
        """A copy of this client with some of its defaults replaced."""
        return RPCClient(
            self.transport, self.topic, version_cap=self.version_cap,
            version=self.version if version is None else version,
            server=self.server if server is None else server,
            timeout=self.timeout if timeout is None else timeout,
            fanout=self.fanout if fanout is None else fanout)

    def can_send_version(self, version: str) -> bool:
        """Whether ``version`` is within the cap (same major, minor not
        above the cap's)."""
        if self.version_cap is None:
            return True
        return errors.version_is_compatible(self.version_cap, version)

    @property
    def target(self) -> Target:
        return Target(self.topic, self.server)

    def call(self, context, method: str, **kwargs) -> defer.Deferred:
        """Deferred firing with the remote method's result; fails with the
        remote exception (typed), or MessagingTimeout."""
        if self.fanout:
            return defer.fail(ValueError("a fanout message cannot be a call"))
        message = make_envelope(context, method, kwargs, self.version)
        d = self.transport.call(self.target, message, self.timeout)
        return d.addCallback(self._unwrap, method)

    def cast(self, context, method: str, **kwargs) -> defer.Deferred:
        """Deferred firing (with None) once the message is handed over."""
        message = make_envelope(context, method, kwargs, self.version)
        if self.fanout:
            d = self.transport.fanout_cast(self.topic, message, self.timeout)
        else:
            d = self.transport.cast(self.target, message, self.timeout)
        return d.addCallback(lambda _: None)

    @staticmethod
    def _unwrap(reply: Any, method: str) -> Any:
        if not isinstance(reply, dict):
            raise errors.RemoteError(exc_type="MalformedReply",
                                     value=f"{method}: {reply!r}")
        if "failure" in reply:
            raise errors.deserialize_exception(reply["failure"])
        return reply.get("result")
