"""The API listeners' HTTP channel: over-long lines get a fault body."""

from __future__ import annotations

import json

from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource

from twisted_compute.api.http import ComputeSite


class Hello(Resource):
    isLeaf = True

    def render_GET(self, request):
        return b"hello"


class LineLimitTests(SynchronousTestCase):
    def connect(self, max_line=16384):
        site = ComputeSite(Hello(), max_line=max_line)
        protocol = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
        transport = StringTransport()
        protocol.makeConnection(transport)
        self.addCleanup(protocol.connectionLost, None)
        return protocol, transport

    def response(self, transport):
        head, _, body = transport.value().partition(b"\r\n\r\n")
        return head.split(b"\r\n"), body

    def test_long_request_line_gets_414(self):
        protocol, transport = self.connect()
        protocol.dataReceived(b"GET /" + b"a" * 16384 + b" HTTP/1.1\r\n")
        head, body = self.response(transport)
        self.assertEqual(head[0], b"HTTP/1.1 414 Request-URI Too Long")
        self.assertIn(b"Content-Type: application/json", head)
        fault = json.loads(body)["computeFault"]
        self.assertEqual(fault["code"], 414)
        self.assertIn("16384 bytes", fault["message"])
        self.assertTrue(transport.disconnecting)

    def test_long_header_line_gets_431(self):
        protocol, transport = self.connect()
        protocol.dataReceived(b"GET / HTTP/1.1\r\nX-Big: " + b"b" * 17000
                              + b"\r\n")
        head, body = self.response(transport)
        self.assertEqual(head[0],
                         b"HTTP/1.1 431 Request Header Fields Too Large")
        self.assertEqual(json.loads(body)["computeFault"]["code"], 431)

    def test_limit_is_configurable(self):
        protocol, transport = self.connect(max_line=2048)
        protocol.dataReceived(b"GET /" + b"a" * 3000 + b" HTTP/1.1\r\n")
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 414 "))

    def test_request_line_under_the_limit_is_served(self):
        # Just under the limit, with headers: neither the line limit nor
        # the total header allowance refuses it.
        protocol, transport = self.connect()
        path = b"/" + b"a" * 16000
        protocol.dataReceived(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n"
                              b"X-Pad: " + b"p" * 2000 + b"\r\n\r\n")
        head, body = self.response(transport)
        self.assertEqual(head[0], b"HTTP/1.1 200 OK")
        self.assertEqual(body, b"hello")
