"""Waiting for external instance events on the agent
(``network-vif-plugged``, sent by a network service through
``POST /os-server-external-events``).

Design: the API records the event and casts it to the instance's host
(compute RPC ``external_instance_event``), the same path as every action;
the agent keeps the waiters of the builds in progress in memory
(:class:`InstanceEvents`) and fires the one an event is for.  No polling
and no database on the agent: the build that waits is already in this
process, and the bus delivers the event there.  A waiter is prepared
*before* the driver creates the guest, so an event that comes back at once
is not missed; waiting is bounded by ``vif_plugging_timeout`` on the
injected clock.
"""

from __future__ import annotations

import attrs
from twisted.internet import defer

from twisted_compute import exception
from twisted_compute.log import Logger


@attrs.define
class Waiter:
    """The events one build waits for, by name; ``received`` maps each
    arrived name to its status."""

    instance_uuid: str
    names: frozenset[str]
    received: dict[str, str] = attrs.field(factory=dict)
    done: defer.Deferred = attrs.field(factory=defer.Deferred)

    def deliver(self, name: str, status: str) -> None:
        if name not in self.names or name in self.received:
            return
        self.received[name] = status
        if set(self.received) == set(self.names) and not self.done.called:
            self.done.callback(dict(self.received))


class InstanceEvents:
    log = Logger()

    def __init__(self, clock):
        self.clock = clock
        self._waiters: dict[str, Waiter] = {}

    def prepare(self, instance_uuid: str, names) -> Waiter:
        waiter = Waiter(instance_uuid, frozenset(names))
        self._waiters[instance_uuid] = waiter
        return waiter

    def clear(self, instance_uuid: str) -> None:
        self._waiters.pop(instance_uuid, None)

    def deliver(self, instance_uuid: str, name: str, status: str) -> bool:
        """Hand an event to the waiter of its instance; False when no
        build here waits for it."""
        waiter = self._waiters.get(instance_uuid)
        if waiter is None or name not in waiter.names:
            return False
        waiter.deliver(name, status)
        return True

    async def wait(self, waiter: Waiter, timeout: float,
                   fatal: bool) -> None:
        """Wait up to ``timeout`` seconds for every event of ``waiter``.
        A timeout or a ``failed`` status raises
        :class:`~twisted_compute.exception.VirtualInterfaceCreateException`
        when ``fatal``, else is logged."""
        if waiter.done.called:
            received = dict(waiter.received)
        else:
            done = waiter.done
            done.addTimeout(timeout, self.clock)
            try:
                received = await done
            except defer.TimeoutError:
                missing = sorted(waiter.names - set(waiter.received))
                self.log.warn("timed out after {timeout}s waiting for "
                              "{events} of {uuid}", timeout=timeout,
                              events=", ".join(missing),
                              uuid=waiter.instance_uuid)
                if fatal:
                    raise exception.VirtualInterfaceCreateException(
                        reason=f"timed out after {timeout:g}s waiting for "
                               f"{', '.join(missing)}") from None
                return
        failed = sorted(n for n, s in received.items() if s == "failed")
        if failed:
            self.log.warn("{uuid}: {events} failed",
                          uuid=waiter.instance_uuid,
                          events=", ".join(failed))
            if fatal:
                raise exception.VirtualInterfaceCreateException(
                    reason=f"{', '.join(failed)} came with status failed")
