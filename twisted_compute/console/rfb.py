"""RFB security negotiation, as Nova's noVNC proxy does it.

The proxy stands between the browser's noVNC (the *tenant*) and the
guest's VNC server (the *compute* side).  It takes the protocol version
from the server and hands it on, negotiates a security type from ``[vnc]
auth_schemes`` with the server, and offers the tenant only None: the
token already authorised the tenant.  Once both sides are through, the
bytes are relayed unchanged (ClientInit onwards).
"""

from __future__ import annotations

import struct

from twisted.internet import defer

from twisted_compute import exception

#: RFB security types by ``[vnc] auth_schemes`` name.
SECURITY_TYPES = {"none": 1}
_VERSION = b"RFB 003.008\n"
#: Bytes either side may send ahead during the negotiation.
MAX_PENDING = 65536


class NegotiationFailed(exception.ComputeException):
    msg_fmt = "RFB security negotiation failed: %(reason)s"


class Reader:
    """Bytes from one side, read in exact amounts during negotiation."""

    def __init__(self):
        self.buffer = bytearray()
        self._want: tuple[int, defer.Deferred] | None = None

    def feed(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > MAX_PENDING:
            want, self._want = self._want, None
            if want is not None:
                want[1].errback(NegotiationFailed(reason="too much data"))
            return
        self._check()

    def read(self, count: int) -> defer.Deferred:
        d = defer.Deferred()
        self._want = (count, d)
        self._check()
        return d

    def fail(self, reason: str) -> None:
        want, self._want = self._want, None
        if want is not None:
            want[1].errback(NegotiationFailed(reason=reason))

    def _check(self) -> None:
        if self._want is None or len(self.buffer) < self._want[0]:
            return
        count, d = self._want
        self._want = None
        chunk = bytes(self.buffer[:count])
        del self.buffer[:count]
        d.callback(chunk)

    def rest(self) -> bytes:
        data = bytes(self.buffer)
        self.buffer.clear()
        return data


async def negotiate(tenant: Reader, send_tenant, compute: Reader,
                    send_compute, auth_schemes) -> None:
    """Run the negotiation; ``send_*`` write to each side.  Raises
    :class:`NegotiationFailed` (the tenant is told why, in RFB, when it
    has reached the point where it can be)."""
    version = await compute.read(12)
    if not version.startswith(b"RFB 003.") or version[-1:] != b"\n":
        raise NegotiationFailed(reason=f"not an RFB server: {version!r}")
    if version < _VERSION:
        raise NegotiationFailed(
            reason=f"the VNC server speaks {version!r}, 3.8 is needed")
    send_tenant(_VERSION)
    tenant_version = await tenant.read(12)
    if tenant_version != _VERSION:
        raise NegotiationFailed(
            reason=f"the client speaks {tenant_version!r}, 3.8 is needed")
    send_compute(_VERSION)
    count = (await compute.read(1))[0]
    if count == 0:
        length = struct.unpack("!I", await compute.read(4))[0]
        reason = (await compute.read(min(length, 1024))).decode(
            "utf-8", "replace")
        raise NegotiationFailed(reason=f"the VNC server refused: {reason}")
    offered = set(await compute.read(count))
    # The tenant is offered None only.
    send_tenant(b"\x01\x01")
    chosen = None
    for name in auth_schemes:
        kind = SECURITY_TYPES.get(name)
        if kind in offered:
            chosen = kind
            break
    tenant_choice = await tenant.read(1)
    if chosen is None or tenant_choice != b"\x01":
        reason = b"Unable to negotiate security with server"
        send_tenant(struct.pack("!I", 1) + struct.pack("!I", len(reason))
                    + reason)
        raise NegotiationFailed(
            reason=f"no common security type (server offers "
                   f"{sorted(offered)}, [vnc] auth_schemes "
                   f"{list(auth_schemes)})")
    send_compute(bytes((chosen,)))
    result = struct.unpack("!I", await compute.read(4))[0]
    if result != 0:
        reason = b"Unable to negotiate security with server"
        send_tenant(struct.pack("!II", 1, len(reason)) + reason)
        raise NegotiationFailed(reason="the VNC server refused security "
                                       "type None")
    send_tenant(struct.pack("!I", 0))
