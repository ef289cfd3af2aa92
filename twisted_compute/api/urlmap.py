"""The ``urlmap`` composite: dispatch by path prefix (longest first)."""

from __future__ import annotations

from twisted.web.resource import IResource, getChildForRequest

from twisted_compute.api import faults
from twisted.web.resource import Resource


class URLMap(Resource):
    """Maps path prefixes (``/``, ``/v2.1``) to applications.

    The matched prefix moves from ``postpath`` to ``prepath``, so that
    links built below it include it.
    """

    isLeaf = True

    def __init__(self, mapping: dict[str, IResource]):
        super().__init__()
        entries = []
        for prefix, app in mapping.items():
            # "/v2.1/+" (Nova's form) matches only paths *below* /v2.1,
            # leaving "/v2.1" itself to a "/v2.1" entry.
            needs_more = prefix.rstrip("/").endswith("/+")
            path = prefix.rstrip("/")
            if needs_more:
                path = path[:-2]
            entries.append((tuple(p for p in path.strip("/").split("/")
                                  if p), needs_more, app))
        # Longest first; at equal length the "/+" entry first.
        self._mapping = sorted(entries,
                               key=lambda item: (-len(item[0]), not item[1]))

    def render(self, request):
        segments = [s.decode("utf-8", "replace") for s in request.postpath]
        # A trailing slash leaves an empty last segment: ignore it.
        while segments and segments[-1] == "":
            segments.pop()
        for prefix, needs_more, app in self._mapping:
            if tuple(segments[:len(prefix)]) == prefix:
                if needs_more and len(segments) == len(prefix):
                    continue
                if not prefix and segments:
                    continue  # "/" only matches the root itself
                taken = request.postpath[:len(prefix)]
                request.prepath.extend(taken)
                del request.postpath[:len(prefix)]
                return getChildForRequest(app, request).render(request)
        return faults.write_fault(request, 404,
                                  "The resource could not be found.")


def urlmap_factory(loader, global_conf, **local_conf) -> IResource:
    mapping = {}
    for prefix, target in local_conf.items():
        if not prefix.startswith("/"):
            continue
        mapping[prefix] = loader.load_app(target.strip())
    return URLMap(mapping)
