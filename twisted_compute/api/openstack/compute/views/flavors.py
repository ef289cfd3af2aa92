"""Flavor bodies."""

from __future__ import annotations

from twisted_compute.api.openstack import common
from twisted_compute.objects.flavor import Flavor


def basic(request, flavor: Flavor) -> dict:
    body = {"id": flavor.flavorid, "name": flavor.name,
            "links": common.links(request, "flavors", flavor.flavorid)}
    if common.is_at_least(request, "2.55"):
        body["description"] = flavor.description
    return body


def detail(request, flavor: Flavor, include_extra_specs: bool) -> dict:
    body = basic(request, flavor)
    swap = flavor.swap
    if not swap and not common.is_at_least(request, "2.75"):
        swap = ""
    body.update({
        "ram": flavor.memory_mb,
        "disk": flavor.root_gb,
        "swap": swap,
        "vcpus": flavor.vcpus,
        "OS-FLV-EXT-DATA:ephemeral": flavor.ephemeral_gb,
        "os-flavor-access:is_public": flavor.is_public,
    })
    if not common.is_at_least(request, "2.102"):
        # removed at 2.102
        body["OS-FLV-DISABLED:disabled"] = flavor.disabled
        body["rxtx_factor"] = flavor.rxtx_factor
    if include_extra_specs and common.is_at_least(request, "2.61"):
        body["extra_specs"] = dict(flavor.extra_specs)
    return body
