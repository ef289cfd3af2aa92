"""Console auth tokens: ``def thd(conn)`` queries and
:class:`ConsoleAuthTokensComponent`.

A token is random (a UUID 4, as Nova's) and handed to the client once;
the table keeps only its SHA-256, so a copy of the database lets nobody
into a console.  A token is valid until its ``expires`` (Unix seconds),
however often it is used, as Nova's.  Times are passed in by the caller
(its injected clock).
"""

from __future__ import annotations

import hashlib
import uuid as uuidlib

import sqlalchemy as sa
from twisted.internet.defer import Deferred

from twisted_compute import exception
from twisted_compute.db import models as m
from twisted_compute.db.base import DBComponent
from twisted_compute.objects.console import ConsoleAuthToken, ConsoleInfo

_t = m.console_auth_tokens


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _record(row) -> ConsoleAuthToken:
    return ConsoleAuthToken(
        id=row.id, instance_uuid=row.instance_uuid,
        console_type=row.console_type, host=row.host, port=row.port,
        internal_access_path=row.internal_access_path,
        tls_port=row.tls_port, expires=row.expires)


def create(conn, instance_uuid: str, info: ConsoleInfo, expires: int,
           token: str) -> ConsoleAuthToken:
    pk = conn.execute(_t.insert().values(
        token_hash=token_hash(token), console_type=info.console_type,
        host=info.host, port=int(info.port), tls_port=info.tls_port,
        internal_access_path=info.internal_access_path,
        instance_uuid=instance_uuid, expires=int(expires),
    )).inserted_primary_key[0]
    return _record(conn.execute(sa.select(_t).where(_t.c.id == pk)).one())


def validate(conn, token: str, now: float) -> ConsoleAuthToken:
    """The token's row; ``InvalidToken`` for an unknown or expired one."""
    row = conn.execute(sa.select(_t).where(
        _t.c.token_hash == token_hash(token))).first()
    if row is None or row.expires <= now:
        raise exception.InvalidToken(token="***")
    return _record(row)


def delete_for_instance(conn, instance_uuid: str) -> int:
    """Drop every token of the instance (it was deleted, moved, shelved
    or rescued: where its consoles were is no longer true).  Callable
    inside another table's transaction."""
    return conn.execute(_t.delete().where(
        _t.c.instance_uuid == instance_uuid)).rowcount


def purge_expired(conn, now: float) -> int:
    return conn.execute(_t.delete().where(_t.c.expires <= now)).rowcount


# --- the component ----------------------------------------------------------

class ConsoleAuthTokensComponent(DBComponent):
    """Console auth tokens."""

    def create(self, instance_uuid: str, info: ConsoleInfo, ttl: int,
               now: float) -> Deferred[tuple[str, ConsoleAuthToken]]:
        """A new token for ``info``, valid ``ttl`` seconds from ``now``;
        fires with ``(token, record)`` (the only time the token is
        seen)."""
        token = str(uuidlib.uuid4())
        d = self._write(create, instance_uuid, info, int(now) + int(ttl),
                        token)
        d.addCallback(lambda record: (token, record))
        return d

    def validate(self, token: str, now: float) -> Deferred[ConsoleAuthToken]:
        return self._read(validate, token, now)

    def delete_for_instance(self, instance_uuid: str) -> Deferred[int]:
        return self._write(delete_for_instance, instance_uuid)

    def purge_expired(self, now: float) -> Deferred[int]:
        return self._write(purge_expired, now)
