"""Flavors: the size of a server."""

from __future__ import annotations

import datetime
from typing import Any

import attrs

from twisted_compute.objects import Record


@attrs.frozen
class Flavor(Record):
    id: int
    flavorid: str
    name: str
    memory_mb: int
    vcpus: int
    root_gb: int
    ephemeral_gb: int = 0
    swap: int = 0
    rxtx_factor: float = 1.0
    vcpu_weight: int | None = None
    disabled: bool = False
    is_public: bool = True
    description: str | None = None
    extra_specs: dict[str, str] = attrs.field(factory=dict)
    created_at: datetime.datetime | None = None
    updated_at: datetime.datetime | None = None

    def snapshot(self) -> dict[str, Any]:
        """The copy an instance keeps of the flavor it was created with."""
        return {
            "id": self.id, "flavorid": self.flavorid, "name": self.name,
            "memory_mb": self.memory_mb, "vcpus": self.vcpus,
            "root_gb": self.root_gb, "ephemeral_gb": self.ephemeral_gb,
            "swap": self.swap, "rxtx_factor": self.rxtx_factor,
            "vcpu_weight": self.vcpu_weight, "is_public": self.is_public,
            "disabled": self.disabled, "description": self.description,
            "extra_specs": dict(self.extra_specs),
        }
