"""Key pairs: a user's SSH public keys (or x509 certificates)."""

from __future__ import annotations

import datetime

import attrs

from twisted_compute.objects import Record

KEYPAIR_TYPE_SSH = "ssh"
KEYPAIR_TYPE_X509 = "x509"


@attrs.frozen
class Keypair(Record):
    id: int
    name: str
    user_id: str
    fingerprint: str
    public_key: str
    type: str = KEYPAIR_TYPE_SSH
    created_at: datetime.datetime | None = None
    updated_at: datetime.datetime | None = None
