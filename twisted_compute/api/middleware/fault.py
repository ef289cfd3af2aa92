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


def nul_in_url(request) -> bool:
    """Whether a path segment, or a query name or value, holds a NUL
    character once percent-decoded: no resource or filter could name it,
    and PostgreSQL refuses it in any text."""
    if any(b"\x00" in segment for segment in request.postpath):
        return True
    return any(b"\x00" in name or any(b"\x00" in v for v in values)
               for name, values in (request.args or {}).items())


#: The fault of a URL :func:`nul_in_url` refuses.
NUL_IN_URL = "Malformed request URL: a NUL character in the path or query."


class FaultWrapper(Middleware):
    def render(self, request):
        request.processingFailed = partial(_processing_failed, request)
        if _undecodable(request):
            return faults.write_fault(
                request, 400, "Malformed request URL: the path is not "
                "UTF-8 once percent-decoded.")
        if nul_in_url(request):
            return faults.write_fault(request, 400, NUL_IN_URL)
        try:
            return render_child(self.wrapped, request)
        except Exception:
            return faults.render_failure(request, Failure())
