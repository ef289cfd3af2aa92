"""The RFB security negotiation between noVNC and a guest's VNC server."""

from __future__ import annotations

import struct

from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase

from twisted_compute.console import rfb


class NegotiationTests(SynchronousTestCase):
    def setUp(self):
        self.tenant, self.compute = rfb.Reader(), rfb.Reader()
        self.to_tenant, self.to_compute = [], []
        self.d = defer.ensureDeferred(rfb.negotiate(
            self.tenant, self.to_tenant.append, self.compute,
            self.to_compute.append, ["none"]))

    def test_none_with_both_sides(self):
        self.compute.feed(b"RFB 003.008\n")
        self.assertEqual(self.to_tenant, [b"RFB 003.008\n"])
        self.tenant.feed(b"RFB 003.008\n")
        self.assertEqual(self.to_compute, [b"RFB 003.008\n"])
        self.compute.feed(b"\x02\x02\x01")  # VNC auth and None
        self.assertEqual(self.to_tenant[-1], b"\x01\x01")
        self.tenant.feed(b"\x01")
        self.assertEqual(self.to_compute[-1], b"\x01")
        self.assertNoResult(self.d)
        self.compute.feed(struct.pack("!I", 0) + b"SERVERINIT")
        self.assertEqual(self.to_tenant[-1], b"\x00\x00\x00\x00")
        self.successResultOf(self.d)
        # what came after is relayed by the caller
        self.assertEqual(self.compute.rest(), b"SERVERINIT")

    def test_server_without_none_is_refused_and_the_tenant_told(self):
        self.compute.feed(b"RFB 003.008\n")
        self.tenant.feed(b"RFB 003.008\n")
        self.compute.feed(b"\x01\x02")  # VNC authentication only
        self.tenant.feed(b"\x01")
        self.failureResultOf(self.d, rfb.NegotiationFailed)
        failure = self.to_tenant[-1]
        self.assertEqual(failure[:4], b"\x00\x00\x00\x01")
        self.assertIn(b"Unable to negotiate security", failure)
        self.assertNotIn(b"\x02", self.to_compute[-1:])

    def test_old_or_bogus_versions_refused(self):
        self.compute.feed(b"RFB 003.003\n")
        self.failureResultOf(self.d, rfb.NegotiationFailed)

    def test_too_much_data_during_negotiation(self):
        self.compute.feed(b"x" * 11)
        self.compute.feed(b"y" * (rfb.MAX_PENDING + 1))
        self.failureResultOf(self.d, rfb.NegotiationFailed)
