"""The fault wrapper: whatever goes wrong below it, the client gets a
Nova-style fault body and never a traceback."""

from __future__ import annotations

from functools import partial

from twisted.python.failure import Failure

from twisted_compute.api import faults
from twisted_compute.api.middleware import Middleware, render_child


def _processing_failed(request, failure: Failure):
    # Replaces twisted.web's Request.processingFailed, which would write
    # an HTML traceback when the site shows tracebacks.
    if request.finished or request._disconnected:
        return None
    if request.startedWriting:
        # Too late for a fault body: cut the response.
        faults.log.failure("Error after the response started", failure)
        request.loseConnection()
        return None
    body = faults.render_failure(request, failure)
    request.setHeader(b"content-length", str(len(body)).encode())
    request.write(body)
    request.finish()
    return None


def _undecodable(request) -> bool:
    """Whether the path has a segment that is not UTF-8 once unquoted
    (``/servers/%ff%fe``): no resource could name it."""
    try:
        for segment in request.postpath:
            segment.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


class FaultWrapper(Middleware):
    def render(self, request):
        request.processingFailed = partial(_processing_failed, request)
        if _undecodable(request):
            return faults.write_fault(
                request, 400, "Malformed request URL: the path is not "
                "UTF-8 once percent-decoded.")
        try:
            return render_child(self.wrapped, request)
        except Exception:
            return faults.render_failure(request, Failure())
