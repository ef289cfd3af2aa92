"""``ServerViews`` on its own: what one builder renders for many servers."""

from __future__ import annotations

import datetime
import hashlib

from twisted.trial.unittest import SynchronousTestCase

from twisted_compute.api.openstack.api_version import APIVersion
from twisted_compute.api.openstack.compute.views import servers as views
from twisted_compute.objects.instance import Instance


class _Request:
    link_prefix = "http://localhost:8774/v2.1"
    bookmark_root = ()
    prepath = [b"v2.1"]

    def __init__(self, version: str):
        self.api_version = APIVersion(version)


def _instance(index: int, project: str, host: str | None) -> Instance:
    return Instance(
        id=index, uuid=f"00000000-0000-0000-0000-{index:012d}",
        user_id="u", project_id=project, vm_state="active", host=host,
        image_ref="img", created_at=datetime.datetime(2026, 1, 2, 3, 4, 5))


class HostIdTests(SynchronousTestCase):
    def test_one_builder_hashes_each_project_and_host(self):
        builder = views.ServerViews(
            _Request("2.1"), is_admin=False, extended_attributes=False,
            host_status=False, flavor_extra_specs=False)
        instances = [_instance(1, "p1", "h1"), _instance(2, "p2", "h1"),
                     _instance(3, "p1", "h2"), _instance(4, "p1", "h1"),
                     _instance(5, "p1", None), _instance(6, "p2", "h1")]
        shown = [builder.show(i)["hostId"] for i in instances]

        def expected(project, host):
            return hashlib.sha224((project + host).encode()).hexdigest()

        self.assertEqual(shown, [
            expected("p1", "h1"), expected("p2", "h1"), expected("p1", "h2"),
            expected("p1", "h1"), "", expected("p2", "h1")])
        self.assertEqual(len(set(shown)), 4)
        self.assertEqual(shown, [views.host_id(i) for i in instances])
