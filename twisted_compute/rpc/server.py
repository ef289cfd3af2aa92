"""The serving side of RPC: dispatch envelopes to a manager's methods.

``RPCServer(transport, "conductor", host, endpoints=[manager])`` consumes
the topic queue (shared with the other servers of the topic), its own
``<topic>.<server>`` queue and the topic's fanout.  A message's method is
called as ``endpoint.<method>(context, **args)``; it may return a value,
a Deferred or a coroutine.  An endpoint's RPC API version is its
``target_version`` (or ``RPC_API_VERSION``) attribute, ``"1.0"`` when it
has neither.  The server never crashes on a bad message: unknown methods
and versions get typed errors, malformed envelopes are rejected.
"""

from __future__ import annotations

import json
import time
from typing import Any, Sequence

from twisted.internet import defer

from twisted_compute.context import RequestContext
from twisted_compute.exception import ComputeException, DBUnavailable
from twisted_compute.log import Logger
from twisted_compute.rpc import errors
from twisted_compute.rpc.transport import (
    EncodedReply, ITransport, RejectMessage, RequeueMessage)


#: Methods called every few seconds (periodic tasks) or several times per
#: boot (the DB proxy): their successful handling is logged at debug level
#: so that the log shows the work.
QUIET_METHODS = frozenset({"service_heartbeat", "compute_node_update",
                           "service_heartbeats", "compute_nodes_update",
                           "instances_on_hosts",
                           "instances_on_host", "refresh_host_states",
                           # the agents' DB proxy: several per boot; the
                           # steps they serve log their own lines
                           "instance_update", "action_event_start",
                           "action_event_finish", "instance_fault_create",
                           "instance_destroyed"})


def endpoint_version(endpoint: Any) -> str:
    return str(getattr(endpoint, "target_version", None)
               or getattr(endpoint, "RPC_API_VERSION", None) or "1.0")


class RPCServer:
    log = Logger()

    def __init__(self, transport: ITransport, topic: str,
                 server: str | None, endpoints: Sequence[Any]):
        self.transport = transport
        self.topic = topic
        self.server = server
        self.endpoints = list(endpoints)
        self._consumers: list[Any] = []
        self.handled = 0
        #: seconds before a message that met a lost database is retried
        self.requeue_delay = 1.0

    async def start(self) -> None:
        self._consumers.append(
            await self.transport.consume(self.topic, self.dispatch))
        if self.server:
            self._consumers.append(await self.transport.consume(
                self.topic, self.dispatch, server=self.server))
        self._consumers.append(await self.transport.consume(
            self.topic, self.dispatch, fanout=True))

    async def stop(self) -> None:
        consumers, self._consumers = self._consumers, []
        for consumer in consumers:
            result = consumer.cancel()
            if isinstance(result, defer.Deferred):
                await result

    # --- dispatch ---------------------------------------------------------

    def _find(self, method: str, version: str):
        """The bound method to call, or the typed error to answer."""
        if method.startswith("_"):
            raise errors.NoSuchMethod(method=method)
        has_method = False
        for endpoint in self.endpoints:
            func = getattr(endpoint, method, None)
            if func is None or not callable(func):
                continue
            has_method = True
            if errors.version_is_compatible(endpoint_version(endpoint),
                                            version):
                return func
        if has_method:
            raise errors.UnsupportedVersion(version=version, method=method)
        raise errors.NoSuchMethod(method=method)

    @staticmethod
    def _check_envelope(message: Any) -> str | None:
        """What is wrong with an envelope, or None."""
        if not isinstance(message, dict):
            return "not a JSON object"
        if not isinstance(message.get("method"), str) or \
                not message["method"]:
            return "no method"
        if not isinstance(message.get("args", {}), dict):
            return "args is not an object"
        if not isinstance(message.get("context", {}), dict):
            return "context is not an object"
        try:
            errors.parse_version(message.get("version", "1.0"))
        except (ValueError, TypeError):
            return f"bad version {message.get('version')!r}"
        return None

    def dispatch(self, message: dict) -> defer.Deferred:
        """Handle one envelope; the Deferred fires with the reply
        (``{"result": ...}``, already encoded as an :class:`EncodedReply`,
        or ``{"failure": ...}``)."""
        problem = self._check_envelope(message)
        if problem is not None:
            self.log.error("rejected a malformed message on {topic}: "
                           "{problem}", topic=self.topic, problem=problem)
            raise RejectMessage(problem, reply={
                "failure": errors.serialize_exception(
                    errors.MalformedMessage(reason=problem))})
        return defer.ensureDeferred(self._dispatch(message))

    async def _dispatch(self, message: dict) -> dict | EncodedReply:
        started = time.monotonic()
        method = message["method"]
        version = message.get("version", "1.0")
        context = RequestContext.from_dict(message.get("context") or {})
        try:
            func = self._find(method, version)
            result = func(context, **message.get("args", {}))
            if isinstance(result, defer.Deferred) or hasattr(
                    result, "__await__"):
                result = await result
            try:
                # Encoded once, here: the transport sends these bytes.
                reply = EncodedReply(
                    json.dumps({"result": result}).encode("utf-8"))
            except (TypeError, ValueError) as exc:
                raise TypeError(
                    f"the result of {method} is not JSON: {exc}") from None
        except DBUnavailable as exc:
            # Nothing was written: the message goes back to the queue
            # (until the caller's timeout, for a call) instead of being
            # answered with an error, so a cast is not lost while the
            # database restarts.
            self.log.warn("[{request_id}] {topic}.{method}: {error}; "
                          "requeued", request_id=context.request_id,
                          topic=self.topic, method=method, error=exc)
            raise RequeueMessage(str(exc), self.requeue_delay) from exc
        except Exception as exc:
            elapsed = (time.monotonic() - started) * 1000
            if isinstance(exc, ComputeException):
                self.log.warn(
                    "[{request_id}] {topic}.{method} v{version} raised "
                    "{error_class}: {error} ({elapsed:.1f} ms)",
                    request_id=context.request_id, topic=self.topic,
                    method=method, version=version,
                    error_class=type(exc).__name__, error=exc,
                    elapsed=elapsed)
            else:
                self.log.failure(
                    "[{request_id}] {topic}.{method} v{version} failed "
                    "({elapsed:.1f} ms)", request_id=context.request_id,
                    topic=self.topic, method=method, version=version,
                    elapsed=elapsed)
            return {"failure": errors.serialize_exception(exc)}
        self.handled += 1
        log = self.log.debug if method in QUIET_METHODS else self.log.info
        log(
            "[{request_id}] {topic}.{method} v{version} handled in "
            "{elapsed:.1f} ms", request_id=context.request_id,
            topic=self.topic, method=method, version=version,
            elapsed=(time.monotonic() - started) * 1000)
        return reply
