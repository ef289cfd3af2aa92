"""The HTTP server side of every API listener: Twisted's ``Site`` with a
channel that answers an over-long request line or header line with a
fault body instead of dropping the connection without a word."""

from __future__ import annotations

from twisted.web import http
from twisted.web.server import Site

from twisted_compute.api import faults

#: Nova's default for ``[wsgi] max_header_line`` (and the line limit of
#: its EC2 server): 16 KiB.
DEFAULT_MAX_LINE = 16384


class LimitedHTTPChannel(http.HTTPChannel):
    """An ``HTTPChannel`` whose line limit is the site's ``max_line``.

    A request line longer than that gets 414, a header line 431, each
    with a Nova fault body, and the connection is closed (the rest of the
    request cannot be framed)."""

    def connectionMade(self):
        limit = getattr(self.factory, "max_line", DEFAULT_MAX_LINE)
        self.MAX_LENGTH = limit
        # The request line and every header together: room for a request
        # line at the limit plus Twisted's own header allowance.
        self.totalHeadersSize = limit + http.HTTPChannel.totalHeadersSize
        super().connectionMade()

    def lineLengthExceeded(self, line):
        # Before the request line has been parsed, the channel is still
        # waiting for it (Twisted keeps that state in a private flag).
        if getattr(self, "_HTTPChannel__first_line", 1):
            code, reason, what = 414, b"Request-URI Too Long", "request line"
        else:
            code, reason, what = (431, b"Request Header Fields Too Large",
                                  "header line")
        body = faults.fault_body(
            code, f"The {what} is longer than {self.MAX_LENGTH} bytes.")
        self.transport.write(
            b"HTTP/1.1 %d %s\r\n" % (code, reason)
            + b"Content-Type: application/json\r\n"
            + b"Content-Length: %d\r\n" % len(body)
            + b"Connection: close\r\n\r\n" + body)
        self.loseConnection()


class ComputeSite(Site):
    """``Site`` with :class:`LimitedHTTPChannel`."""

    protocol = LimitedHTTPChannel

    def __init__(self, resource, max_line: int = DEFAULT_MAX_LINE, **kw):
        super().__init__(resource, **kw)
        self.max_line = max_line
