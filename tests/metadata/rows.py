"""Instance rows as the metadata tests need them: addresses, a key pair,
user data and server metadata."""

from __future__ import annotations

import base64
import uuid as uuidlib
from typing import Any

import sqlalchemy as sa

from twisted_compute.db import models as m

SSH_KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHt8vqkHs0Hk2l3N5nY9dl1T"
           "aY0kqW2k0c3qz2Q8bq1x alice@example")
USER_DATA = b"#cloud-config\nruncmd:\n - echo hello\n\x00\xff binary"


def addresses(fixed: str, mac: str = "fa:16:3e:00:00:01",
              floating: str | None = None, network: str = "private",
              **extra) -> dict[str, Any]:
    entries = [{"addr": fixed, "version": 4, "OS-EXT-IPS:type": "fixed",
                "OS-EXT-IPS-MAC:mac_addr": mac, **extra}]
    if floating:
        entries.append({"addr": floating, "version": 4,
                        "OS-EXT-IPS:type": "floating",
                        "OS-EXT-IPS-MAC:mac_addr": mac})
    return {network: entries}


def insert_instance(conn, *, project_id: str = "p1", user_id: str = "u1",
                    name: str = "web", hostname: str | None = None,
                    fixed_ip: str | None = "10.0.0.5",
                    key_name: str | None = "alice",
                    key_data: str | None = SSH_KEY,
                    key_type: str | None = "ssh",
                    user_data: bytes | None = USER_DATA,
                    metadata: dict[str, str] | None = None,
                    deleted: bool = False, **extra) -> dict[str, Any]:
    """Insert an instance (and its key pair and metadata rows); return
    its values with ``id``."""
    values = dict(
        uuid=str(uuidlib.uuid4()), user_id=user_id, project_id=project_id,
        display_name=name, hostname=hostname or name, host="host1",
        node="node1", vm_state="active", vcpus=1, memory_mb=512,
        root_gb=1, ephemeral_gb=0,
        flavor={"name": "m1.tiny", "flavorid": "1", "swap": 0,
                "ephemeral_gb": 0},
        addresses=addresses(fixed_ip) if fixed_ip else {},
        security_groups=[{"name": "default"}],
        system_metadata={"image_base_image_ref": "img"},
        request_spec={}, key_name=key_name, key_data=key_data,
        user_data=(base64.b64encode(user_data).decode()
                   if user_data is not None else None),
        availability_zone="az1", launch_index=0, reservation_id="r-abc123",
        image_ref="4a2b6a0e-0000-4000-8000-000000000001")
    values.update(extra)
    pk = conn.execute(m.instances.insert().values(
        **values)).inserted_primary_key[0]
    if deleted:
        conn.execute(m.instances.update().where(
            m.instances.c.id == pk).values(deleted=pk))
    for key, value in (metadata or {}).items():
        conn.execute(m.instance_metadata.insert().values(
            instance_uuid=values["uuid"], key=key, value=value))
    k = m.key_pairs
    if key_name and key_data and key_type and conn.execute(
            sa.select(k.c.id).where(k.c.user_id == user_id,
                                    k.c.name == key_name)).first() is None:
        conn.execute(m.key_pairs.insert().values(
            name=key_name, user_id=user_id, fingerprint="fp",
            public_key=key_data, type=key_type))
    return {"id": pk, **values}
