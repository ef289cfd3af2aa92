"""Middleware: ``IResource`` wrappers composed by the pipeline ini.

A middleware is a leaf resource that does its work on the request, then
traverses and renders the rest of the tree below the resource it wraps
(:func:`render_child`).  It may answer early (a fault, a CORS preflight)
or defer the rest until an asynchronous check is done
(:meth:`Middleware.render_later`).
"""

from __future__ import annotations

from twisted.python.components import proxyForInterface
from twisted.python.failure import Failure
from twisted.web.resource import IResource, getChildForRequest
from twisted.web.server import NOT_DONE_YET

from twisted_compute.api import faults


def render_child(resource: IResource, request) -> bytes | int:
    """Traverse what is left of the path below ``resource``; render it."""
    return getChildForRequest(resource, request).render(request)


class Middleware(proxyForInterface(IResource, "wrapped")):  # type: ignore
    """Base of all middleware: wraps one resource."""

    isLeaf = True

    def __init__(self, wrapped: IResource, conf=None, **options):
        super().__init__(wrapped)
        self.conf = conf
        self.options = options

    @classmethod
    def factory(cls, global_conf, **local_conf):
        """``paste.filter_factory`` entry point."""
        def _filter(app):
            return cls(app, conf=global_conf.get("conf"),
                       services=global_conf.get("services"), **local_conf)
        return _filter

    def render(self, request):
        return render_child(self.wrapped, request)

    def render_later(self, request, deferred):
        """Render the child once ``deferred`` fires; a failure becomes a
        fault.  Returns NOT_DONE_YET for ``render`` to return."""

        def _go(_):
            if request._disconnected:
                return
            request.render(getChildForRequest(self.wrapped, request))

        def _fail(failure: Failure):
            if request._disconnected:
                return
            body = faults.render_failure(request, failure)
            request.write(body)
            request.finish()

        deferred.addCallback(_go).addErrback(_fail)
        return NOT_DONE_YET
