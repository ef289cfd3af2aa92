"""How an image looks on the wire (Glance v2)."""

from __future__ import annotations

from typing import Any

from twisted_compute.api.openstack.common import isotime
from twisted_compute.objects.image import Image


def image(record: Image) -> dict[str, Any]:
    """The image body: base attributes (null when unknown, as Glance
    shows them), links, and extra properties as top-level keys."""
    body: dict[str, Any] = dict(record.properties)
    body.update({
        "id": record.id,
        "name": record.name,
        "status": record.status,
        "visibility": record.visibility,
        "protected": record.protected,
        "os_hidden": record.os_hidden,
        "owner": record.owner,
        "disk_format": record.disk_format,
        "container_format": record.container_format,
        "size": record.size,
        "virtual_size": record.virtual_size,
        "checksum": record.checksum,
        "os_hash_algo": record.os_hash_algo,
        "os_hash_value": record.os_hash_value,
        "min_disk": record.min_disk,
        "min_ram": record.min_ram,
        "created_at": isotime(record.created_at),
        "updated_at": isotime(record.updated_at),
        "tags": list(record.tags),
        "self": f"/v2/images/{record.id}",
        "file": f"/v2/images/{record.id}/file",
        "schema": "/v2/schemas/image",
    })
    return body
