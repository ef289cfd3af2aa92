"""Honour ``X-Forwarded-Proto`` and ``X-Forwarded-Host`` from a TLS
terminating proxy, so that links in responses point where the client
connected (Nova's ``http_proxy_to_wsgi``)."""

from __future__ import annotations

from twisted_compute.api.middleware import Middleware, render_child


class HTTPProxyToWSGI(Middleware):
    def render(self, request):
        if self.conf is None or self.conf.wsgi.secure_proxy_ssl_header \
                or self.options.get("enable_proxy_headers_parsing") in (
                    "true", "True", "1"):
            proto = request.getHeader(b"x-forwarded-proto")
            host = request.getHeader(b"x-forwarded-host")
            if proto:
                request.forwarded_proto = proto.decode("latin-1").split(
                    ",")[0].strip()
            if host:
                request.forwarded_host = host.decode("latin-1").split(
                    ",")[0].strip()
        return render_child(self.wrapped, request)
