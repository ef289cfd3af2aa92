"""Key pair bodies."""

from __future__ import annotations

from twisted_compute.api.openstack import common
from twisted_compute.objects.keypair import Keypair


def _base(request, keypair: Keypair) -> dict:
    body = {"name": keypair.name, "public_key": keypair.public_key,
            "fingerprint": keypair.fingerprint}
    if common.is_at_least(request, "2.2"):
        body["type"] = keypair.type
    return body


def listed(request, keypair: Keypair) -> dict:
    return {"keypair": _base(request, keypair)}


def created(request, keypair: Keypair, private_key: str | None) -> dict:
    body = _base(request, keypair)
    body["user_id"] = keypair.user_id
    if private_key is not None:
        body["private_key"] = private_key
    return body


def show(request, keypair: Keypair) -> dict:
    body = _base(request, keypair)
    body.update({
        "user_id": keypair.user_id, "id": keypair.id, "deleted": False,
        "created_at": common.isotime_usec(keypair.created_at),
        "updated_at": common.isotime_usec(keypair.updated_at),
        "deleted_at": None,
    })
    return body
