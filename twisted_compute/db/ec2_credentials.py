"""EC2 access keys (the noauth strategy's) and RunInstances client
tokens: ``def thd(conn)`` queries and :class:`Ec2CredentialsComponent`.

A secret leaves this module only in :func:`create`'s answer (shown once)
and in :func:`secret_for`, which the signature check alone calls."""

from __future__ import annotations

import secrets
import string

import attrs
import sqlalchemy as sa
from twisted.internet.defer import Deferred

from twisted_compute import exception
from twisted_compute.db import models as m
from twisted_compute.db.base import DBComponent

_cred = m.ec2_credentials
_tokens = m.ec2_client_tokens


@attrs.frozen
class Ec2Credential:
    access: str
    user_id: str
    project_id: str
    #: Only set in what :func:`create` returns.
    secret: str | None = attrs.field(default=None, repr=False)


class Ec2CredentialNotFound(exception.NotFound):
    msg_fmt = "EC2 access key %(access)s could not be found."


def _record(row, with_secret: bool = False) -> Ec2Credential:
    return Ec2Credential(access=row.access, user_id=row.user_id,
                         project_id=row.project_id,
                         secret=row.secret if with_secret else None)


def create(conn, user_id: str, project_id: str) -> Ec2Credential:
    """A new access key (20 upper-case letters and digits, as AWS's) and
    secret (40 characters)."""
    access = "".join(secrets.choice(string.ascii_uppercase + string.digits)
                     for _ in range(20))
    secret = secrets.token_urlsafe(30)[:40]
    conn.execute(_cred.insert().values(
        access=access, secret=secret, user_id=user_id,
        project_id=project_id))
    return Ec2Credential(access=access, user_id=user_id,
                         project_id=project_id, secret=secret)


def get_all(conn, user_id: str | None = None,
            project_id: str | None = None) -> list[Ec2Credential]:
    query = sa.select(_cred).order_by(_cred.c.id)
    if user_id is not None:
        query = query.where(_cred.c.user_id == user_id)
    if project_id is not None:
        query = query.where(_cred.c.project_id == project_id)
    return [_record(r) for r in conn.execute(query)]


def secret_for(conn, access: str) -> Ec2Credential | None:
    """The credential with its secret, None when unknown."""
    row = conn.execute(sa.select(_cred).where(
        _cred.c.access == access)).first()
    return None if row is None else _record(row, with_secret=True)


def delete(conn, access: str, user_id: str | None = None,
           project_id: str | None = None) -> None:
    query = _cred.delete().where(_cred.c.access == access)
    if user_id is not None:
        query = query.where(_cred.c.user_id == user_id)
    if project_id is not None:
        query = query.where(_cred.c.project_id == project_id)
    if conn.execute(query).rowcount == 0:
        raise Ec2CredentialNotFound(access=access)


def reservation_for_token(conn, project_id: str, client_token: str
                          ) -> str | None:
    row = conn.execute(sa.select(_tokens.c.reservation_id).where(
        _tokens.c.project_id == project_id,
        _tokens.c.client_token == client_token)).first()
    return None if row is None else row.reservation_id


def claim_token(conn, project_id: str, client_token: str,
                reservation_id: str) -> tuple[str, bool]:
    """Take ``client_token`` for ``reservation_id`` before its instances
    are made: ``(reservation_id, True)``; when the token is already taken
    (an earlier or a concurrent RunInstances, in this process or another:
    the unique constraint on project and token decides),
    ``(the reservation that holds it, False)``."""
    try:
        with conn.begin_nested():
            conn.execute(_tokens.insert().values(
                project_id=project_id, client_token=client_token,
                reservation_id=reservation_id, created_at=m.utcnow()))
    except sa.exc.IntegrityError:
        held = reservation_for_token(conn, project_id, client_token)
        if held is None:  # released in between: a retry may claim it
            raise
        return held, False
    return reservation_id, True


def release_token(conn, project_id: str, client_token: str,
                  reservation_id: str) -> None:
    """Give the token back when its RunInstances made nothing."""
    conn.execute(_tokens.delete().where(
        _tokens.c.project_id == project_id,
        _tokens.c.client_token == client_token,
        _tokens.c.reservation_id == reservation_id))


class Ec2CredentialsComponent(DBComponent):
    """EC2 access keys and client tokens."""

    def create(self, user_id: str, project_id: str
               ) -> Deferred[Ec2Credential]:
        return self._write(create, user_id, project_id)

    def get_all(self, user_id: str | None = None,
                project_id: str | None = None
                ) -> Deferred[list[Ec2Credential]]:
        return self._read(get_all, user_id, project_id)

    def secret_for(self, access: str) -> Deferred[Ec2Credential | None]:
        return self._read(secret_for, access)

    def delete(self, access: str, user_id: str | None = None,
               project_id: str | None = None) -> Deferred[None]:
        return self._write(delete, access, user_id, project_id)

    def reservation_for_token(self, project_id: str, client_token: str
                              ) -> Deferred[str | None]:
        return self._read(reservation_for_token, project_id, client_token)

    def claim_token(self, project_id: str, client_token: str,
                    reservation_id: str) -> Deferred[tuple[str, bool]]:
        return self._write(claim_token, project_id, client_token,
                           reservation_id)

    def release_token(self, project_id: str, client_token: str,
                      reservation_id: str) -> Deferred[None]:
        return self._write(release_token, project_id, client_token,
                           reservation_id)
