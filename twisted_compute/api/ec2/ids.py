"""EC2 identifiers: ``i-`` plus eight hex digits of the instance's
database id (the metadata API's), ``ami-``/``aki-``/``ari-`` plus a
stable 32-bit checksum of the image uuid (the metadata API's too)."""

from __future__ import annotations

import re
import zlib

from twisted_compute.api.ec2.faults import Ec2Error
from twisted_compute.metadata.base import ec2_id

_INSTANCE = re.compile(r"^i-([0-9a-f]{8,17})$")
_IMAGE = re.compile(r"^(ami|aki|ari)-([0-9a-f]{8})$")


def instance_id(instance) -> str:
    return ec2_id("i", instance.id)


def parse_instance_id(text: str) -> int:
    match = _INSTANCE.match(text or "")
    if not match:
        raise Ec2Error("InvalidInstanceID.Malformed",
                       f"Invalid id: \"{text}\"")
    return int(match.group(1), 16)


def image_prefix(disk_format: str | None) -> str:
    return {"aki": "aki", "ari": "ari"}.get(disk_format or "", "ami")


def image_id(uuid: str | None, disk_format: str | None = None) -> str | None:
    if not uuid:
        return None
    return ec2_id(image_prefix(disk_format), uuid)


def image_checksum(text: str) -> int:
    """The checksum in an ``ami-`` id (InvalidAMIID.Malformed)."""
    match = _IMAGE.match(text or "")
    if not match:
        raise Ec2Error("InvalidAMIID.Malformed",
                       f"Invalid id: \"{text}\" (expecting \"ami-...\")")
    return int(match.group(2), 16)


def checksum_of(uuid: str) -> int:
    return zlib.crc32(str(uuid).encode()) & 0xffffffff


def group_id(project_id: str) -> str:
    """The default security group's id in a project."""
    return f"sg-{checksum_of('default/' + (project_id or '')):08x}"
