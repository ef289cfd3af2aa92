"""Request ids: every response carries ``x-compute-request-id`` and
``X-OpenStack-Request-ID``; a valid incoming ``X-OpenStack-Request-ID``
becomes the global request id (it ties calls across services)."""

from __future__ import annotations

import re
import time


from twisted_compute.api.middleware import Middleware, render_child
from twisted_compute.context import generate_request_id
from twisted_compute.log import Logger

_GLOBAL_ID = re.compile(
    r"^req-[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}$")


class RequestId(Middleware):
    log = Logger()

    #: the header name a service announces its id in
    compat_header = b"x-compute-request-id"

    def render(self, request):
        request_id = generate_request_id()
        request.request_id = request_id
        incoming = request.getHeader(b"x-openstack-request-id")
        if incoming and _GLOBAL_ID.match(incoming.decode("ascii", "replace")):
            request.global_request_id = incoming.decode("ascii")
        else:
            request.global_request_id = None
        header = self.options.get("compat_header")
        if header:
            request.setHeader(header.encode(), request_id.encode())
        elif self.compat_header:
            request.setHeader(self.compat_header, request_id.encode())
        request.setHeader(b"x-openstack-request-id", request_id.encode())
        started = time.monotonic()
        request.notifyFinish().addBoth(self._log_request, request, started)
        return render_child(self.wrapped, request)

    def _log_request(self, result, request, started):
        # One line per request, with its id, as Nova's request log: the
        # id then leads to the conductor, scheduler and agent log lines.
        version = getattr(request, "api_version", None)
        self.log.info(
            "[{request_id}] {client} \"{method} {uri}\" status: {code} "
            "len: {length} microversion: {version} time: {elapsed:.4f}",
            request_id=request.request_id,
            client=getattr(request.getClientAddress(), "host", "-"),
            method=request.method.decode("latin-1"),
            uri=request.uri.decode("latin-1"), code=request.code,
            length=request.sentLength, version=version or "-",
            elapsed=time.monotonic() - started)
