"""The image API: the subset of Glance v2 that the OpenStack clients and
the compute side use, with image data in files under
``<state_path>/images`` (:mod:`.store`)."""

from __future__ import annotations

from twisted.web.resource import IResource


def versions_factory(global_conf, **local_conf) -> IResource:
    """``paste.app_factory`` of ``/`` and ``/versions``."""
    from twisted_compute.api.image.versions import versions_resource
    return versions_resource(global_conf["services"].conf)


def app_factory(global_conf, **local_conf) -> IResource:
    """``paste.app_factory`` of ``/v2``.  ``global_conf`` may carry an
    ``image_threadpool`` for the store's file IO (tests pass a
    synchronous one)."""
    from twisted_compute.api.image.images import ImagesController
    from twisted_compute.api.image.store import ImageStore
    services = global_conf["services"]
    store = ImageStore(services.conf, services.reactor,
                       threadpool=global_conf.get("image_threadpool"))
    return ImagesController(services, store).resource()
