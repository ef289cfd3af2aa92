"""The metadata API (port 8775): what a guest's cloud-init asks at boot.

The paths and documents are built by :mod:`twisted_compute.metadata`;
:mod:`.handler` finds the calling instance and answers.
"""

from __future__ import annotations

from twisted.web.resource import IResource


def app_factory(global_conf, **local_conf) -> IResource:
    """``paste.app_factory`` of ``[app:metaapp]``.  ``global_conf`` may
    carry a ``metadata_clock`` (tests drive the cache with a ``Clock``);
    the reactor is the clock otherwise."""
    from twisted_compute.api.metadata.handler import MetadataResource
    return MetadataResource(global_conf["services"],
                            clock=global_conf.get("metadata_clock"))
