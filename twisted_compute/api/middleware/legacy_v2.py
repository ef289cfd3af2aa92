"""Nova's legacy v2 compatible API (``/v2``): the v2.1 code at
microversion 2.1, as Nova's ``LegacyV2CompatibleWrapper`` serves it.

* the microversion headers of a request are ignored (always 2.1), and
  none is echoed in the answer (the router leaves them out, and ``Vary``
  with them);
* a request body's unknown properties are dropped instead of refused
  (:data:`twisted_compute.api.openstack.common.LEGACY_V2`, which the
  schema check reads), as the v2 API tolerated them.

It sits right before the application (after authentication, which may
finish later), so that the flag is set while the controller runs.
"""

from __future__ import annotations

from twisted_compute.api.middleware import Middleware, render_child
from twisted_compute.api.openstack.common import LEGACY_V2

VERSION_HEADERS = (b"openstack-api-version", b"x-openstack-nova-api-version")


class LegacyV2CompatibleWrapper(Middleware):
    def render(self, request):
        request.legacy_v2 = True
        for name in VERSION_HEADERS:
            request.requestHeaders.removeHeader(name)
        # The controller's coroutine starts in this call, with a copy of
        # this context: the flag follows it past its awaits.
        token = LEGACY_V2.set(True)
        try:
            return render_child(self.wrapped, request)
        finally:
            LEGACY_V2.reset(token)
