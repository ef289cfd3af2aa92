"""Key pairs: ``def thd(conn)`` queries and :class:`KeypairsComponent`,
which runs them in the DB pool.  Key pairs belong to a user; a user never
sees another user's."""

from __future__ import annotations

import sqlalchemy as sa
from twisted.internet.defer import Deferred

from twisted_compute import exception
from twisted_compute.db import models as m
from twisted_compute.db import quotas
from twisted_compute.db.base import DBComponent
from twisted_compute.objects.keypair import Keypair

_kp = m.key_pairs


def _record(row) -> Keypair:
    return Keypair(id=row.id, name=row.name, user_id=row.user_id,
                   fingerprint=row.fingerprint, public_key=row.public_key,
                   type=row.type, created_at=row.created_at,
                   updated_at=row.updated_at)


def get(conn, user_id: str, name: str) -> Keypair:
    row = conn.execute(sa.select(_kp).where(
        _kp.c.user_id == user_id, _kp.c.name == name)).first()
    if row is None:
        raise exception.KeypairNotFound(name=name, user_id=user_id)
    return _record(row)


def get_all(conn, user_id: str, limit: int | None = None,
            marker: str | None = None) -> list[Keypair]:
    """A user's key pairs by name, paginated by ``marker`` (a name)."""
    query = sa.select(_kp).where(_kp.c.user_id == user_id).order_by(
        _kp.c.name, _kp.c.id)
    if marker is not None:
        exists = conn.execute(sa.select(_kp.c.id).where(
            _kp.c.user_id == user_id, _kp.c.name == marker)).first()
        if exists is None:
            raise exception.InvalidMarker(marker=marker)
        query = query.where(_kp.c.name > marker)
    if limit is not None:
        query = query.limit(limit)
    return [_record(r) for r in conn.execute(query)]


def count(conn, user_id: str) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(
        _kp).where(_kp.c.user_id == user_id)).scalar_one())


def create(conn, conf, project_id: str, user_id: str, name: str,
           public_key: str, fingerprint: str, key_type: str) -> Keypair:
    """Insert a key pair; 403 over the user's ``key_pairs`` quota, 409
    when the user has one of that name."""
    quotas.lock_project(conn, project_id)
    limit = quotas.get_limits(conn, conf, project_id, user_id)["key_pairs"]
    if limit >= 0 and count(conn, user_id) + 1 > limit:
        raise exception.KeypairLimitExceeded()
    taken = conn.execute(sa.select(_kp.c.id).where(
        _kp.c.user_id == user_id, _kp.c.name == name)).first()
    if taken is not None:
        raise exception.KeyPairExists(key_name=name)
    pk = conn.execute(_kp.insert().values(
        name=name, user_id=user_id, public_key=public_key,
        fingerprint=fingerprint, type=key_type)).inserted_primary_key[0]
    return _record(conn.execute(sa.select(_kp).where(_kp.c.id == pk)).one())


def destroy(conn, user_id: str, name: str) -> None:
    deleted = conn.execute(_kp.delete().where(
        _kp.c.user_id == user_id, _kp.c.name == name))
    if deleted.rowcount == 0:
        raise exception.KeypairNotFound(name=name, user_id=user_id)


# --- the component ----------------------------------------------------------

class KeypairsComponent(DBComponent):
    """Users' key pairs."""

    def get(self, user_id: str, name: str) -> Deferred[Keypair]:
        return self._read(get, user_id, name)

    def get_all(self, user_id: str, limit: int | None = None,
                marker: str | None = None) -> Deferred[list[Keypair]]:
        return self._read(get_all, user_id, limit, marker)

    def create(self, conf, project_id: str, user_id: str, name: str,
               public_key: str, fingerprint: str, key_type: str
               ) -> Deferred[Keypair]:
        return self._write(create, conf, project_id, user_id, name,
                           public_key, fingerprint, key_type)

    def destroy(self, user_id: str, name: str) -> Deferred[None]:
        return self._write(destroy, user_id, name)
