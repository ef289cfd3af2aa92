"""Child processes of the agent (``qemu-img``, ``genisoimage``) with a
deadline: ``spawnProcess``, never ``subprocess``, and a child that runs
past its deadline is killed and reported as
:class:`~twisted_compute.exception.ProcessTimedOut`."""

from __future__ import annotations

import os

from twisted.internet import defer, error, protocol

from twisted_compute import exception

#: Seconds a killed child gets to be reaped before we stop waiting for it.
REAP_GRACE = 5.0


class _Collector(protocol.ProcessProtocol):
    def __init__(self, finished: defer.Deferred):
        self.finished = finished
        self.out: list[bytes] = []
        self.err: list[bytes] = []

    def outReceived(self, data: bytes) -> None:
        self.out.append(data)

    def errReceived(self, data: bytes) -> None:
        self.err.append(data)

    def processEnded(self, reason) -> None:
        code = getattr(reason.value, "exitCode", None)
        if code is None:  # killed by a signal
            code = -(getattr(reason.value, "signal", None) or 1)
        if not self.finished.called:
            self.finished.callback(code)


def run(reactor, executable: str, args, *, timeout: float,
        env: dict | None = None, path: str | None = None
        ) -> defer.Deferred:
    """Run ``executable args`` with no stdin; fires with ``(stdout, stderr,
    exit code)`` (a negative code for a signal), or fails with
    :class:`ProcessTimedOut` once ``timeout`` seconds passed (the child
    is sent SIGKILL first)."""
    return defer.ensureDeferred(_run(reactor, executable, list(args),
                                     timeout, env, path))


async def _run(reactor, executable, args, timeout, env, path):
    ended: defer.Deferred = defer.Deferred()
    collector = _Collector(ended)
    transport = reactor.spawnProcess(
        collector, executable, [executable, *args],
        env=env if env is not None else dict(os.environ), path=path)
    transport.closeStdin()
    timed_out = False

    def kill():
        nonlocal timed_out
        timed_out = True
        try:
            transport.signalProcess("KILL")
        except error.ProcessExitedAlready:
            pass
        # Do not wait for ever for a child that does not go away (a
        # process in uninterruptible sleep on a hung file system).
        def give_up():
            if not ended.called:
                ended.callback(None)

        reap = reactor.callLater(REAP_GRACE, give_up)

        def reaped(result):
            if reap.active():
                reap.cancel()
            return result

        ended.addBoth(reaped)

    deadline = reactor.callLater(timeout, kill)
    code = await ended
    if deadline.active():
        deadline.cancel()
    if timed_out:
        raise exception.ProcessTimedOut(
            command=" ".join([os.path.basename(executable), *args[:2]]),
            timeout=timeout)
    return b"".join(collector.out), b"".join(collector.err), code
