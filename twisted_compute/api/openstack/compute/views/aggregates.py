"""Host aggregate bodies."""

from __future__ import annotations

from twisted_compute.api.openstack import common
from twisted_compute.objects.aggregate import Aggregate


def show(request, aggregate: Aggregate, members: bool = True) -> dict:
    """An aggregate; ``members=False`` leaves out ``hosts`` and
    ``metadata`` (the create response)."""
    body = {
        "id": aggregate.id,
        "name": aggregate.name,
        "availability_zone": aggregate.availability_zone,
        "created_at": common.isotime_usec(aggregate.created_at),
        "updated_at": common.isotime_usec(aggregate.updated_at),
        "deleted": False,
        "deleted_at": None,
    }
    if members:
        body["hosts"] = list(aggregate.hosts)
        body["metadata"] = dict(aggregate.metadata)
    if common.is_at_least(request, "2.41"):
        body["uuid"] = aggregate.uuid
    return body
