"""The scheduler's client side: what the conductor calls.

    client = SchedulerAPIClient(RPCClient(transport, "scheduler"), conf)
    selections = await client.select_destinations(ctx, spec, uuids)

``select_destinations`` is a ``call`` with ``[DEFAULT] long_rpc_timeout``
(placing a large request may take a while); it takes a
:class:`~twisted_compute.objects.request_spec.RequestSpec` and fires with
one :class:`~twisted_compute.objects.selection.Selection` per instance
(decoded here from the host dicts that
``SchedulerManager.select_destinations`` answers with, see
:mod:`twisted_compute.scheduler.manager`); its errors (``NoValidHost``
re-raised typed) are the scheduler's.
"""

from __future__ import annotations

from twisted.internet import defer

from twisted_compute.objects.request_spec import RequestSpec
from twisted_compute.objects.selection import Selection

TOPIC = "scheduler"
RPC_API_VERSION = "1.0"

#: ``[DEFAULT] long_rpc_timeout``'s default, for a client built without
#: a configuration.
DEFAULT_LONG_RPC_TIMEOUT = 1800.0


def _selections(answer: list[list[dict]]) -> list[Selection]:
    return [Selection.from_hosts(hosts) for hosts in answer]


class SchedulerAPIClient:
    """Wraps an :class:`~twisted_compute.rpc.RPCClient` on the
    ``scheduler`` topic."""

    def __init__(self, rpc_client, conf=None,
                 long_rpc_timeout: float | None = None):
        self.client = rpc_client
        if long_rpc_timeout is None:
            long_rpc_timeout = (conf.long_rpc_timeout if conf is not None
                                else DEFAULT_LONG_RPC_TIMEOUT)
        self.long_rpc_timeout = float(long_rpc_timeout)

    def select_destinations(self, context, request_spec: RequestSpec,
                            instance_uuids: list[str],
                            return_alternates: bool = True
                            ) -> defer.Deferred:
        """Deferred firing with one :class:`Selection` per instance (the
        chosen host, its alternates in it)."""
        prepared = self.client.prepare(version=RPC_API_VERSION,
                                       timeout=self.long_rpc_timeout)
        d = prepared.call(context, "select_destinations",
                          request_spec=request_spec.to_dict(),
                          instance_uuids=list(instance_uuids),
                          return_alternates=return_alternates)
        return d.addCallback(_selections)

    def refresh_host_states(self, context) -> defer.Deferred:
        """Fanout cast: every scheduler reads the compute nodes again on
        its next request (after a service is disabled, for instance)."""
        prepared = self.client.prepare(version=RPC_API_VERSION,
                                       fanout=True)
        return prepared.cast(context, "refresh_host_states")
