"""Refuse request bodies over ``max_request_body_size`` with a 413."""

from __future__ import annotations

from twisted_compute.api import faults
from twisted_compute.api.middleware import Middleware, render_child


class RequestBodySizeLimiter(Middleware):
    def render(self, request):
        limit = int(self.options.get("max_request_body_size") or
                    self.conf.max_request_body_size)
        declared = request.getHeader(b"content-length")
        size = None
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                return faults.write_fault(request, 400,
                                          "Invalid Content-Length")
        if size is None and request.content is not None:
            # Chunked body: Twisted has buffered it; measure it.
            position = request.content.tell()
            request.content.seek(0, 2)
            size = request.content.tell()
            request.content.seek(position)
        if size is not None and size > limit:
            return faults.write_fault(request, 413, "Request is too large.")
        return render_child(self.wrapped, request)
