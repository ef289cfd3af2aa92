"""Images: the bits a server boots from, and what is known about them."""

from __future__ import annotations

import datetime
from typing import Any

import attrs

from twisted_compute.objects import Record

#: Columns of ``images`` that the API shows as top-level attributes (the
#: rest of what it shows comes from ``properties``).
BASE_ATTRIBUTES = (
    "id", "name", "status", "visibility", "owner", "disk_format",
    "container_format", "size", "virtual_size", "checksum", "os_hash_algo",
    "os_hash_value", "min_disk", "min_ram", "protected", "os_hidden",
    "created_at", "updated_at", "tags")


@attrs.frozen
class Image(Record):
    id: str
    status: str
    visibility: str
    name: str | None = None
    owner: str | None = None
    disk_format: str | None = None
    container_format: str | None = None
    size: int | None = None
    virtual_size: int | None = None
    checksum: str | None = None
    os_hash_algo: str | None = None
    os_hash_value: str | None = None
    min_disk: int = 0
    min_ram: int = 0
    protected: bool = False
    os_hidden: bool = False
    properties: dict[str, Any] = attrs.field(factory=dict)
    tags: list[str] = attrs.field(factory=list)
    #: Where the bits are, relative to the image store directory.
    location: str | None = None
    created_at: datetime.datetime | None = None
    updated_at: datetime.datetime | None = None

    def visible_to(self, project_id: str | None, is_admin: bool) -> bool:
        """Whether a caller of ``project_id`` may see this image at all:
        public and community images are everyone's; private and shared
        ones only their owner's (and an admin's)."""
        if is_admin or self.visibility in ("public", "community"):
            return True
        return self.owner is not None and self.owner == project_id
