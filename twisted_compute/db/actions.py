"""Instance actions, their events, and instance faults: what
``os-instance-actions`` shows and what a server's ``fault`` says.

``def thd(conn)`` queries (the instance writes of
:mod:`twisted_compute.db.instances` record their actions with them in the
same transaction) and :class:`ActionsComponent`, the way in from outside
the database layer.
"""

from __future__ import annotations

import datetime
from typing import Sequence

import sqlalchemy as sa
from twisted.internet.defer import Deferred

from twisted_compute import exception
from twisted_compute.db import models as m
from twisted_compute.db.base import DBComponent
from twisted_compute.objects.instance import (
    InstanceAction, InstanceActionEvent)


# --- writes ---------------------------------------------------------------

# Statements of the hot paths (a boot records its events through these),
# built once; every value is a parameter.
_a, _e = m.instance_actions, m.instance_actions_events
_INSERT_ACTION = _a.insert()
_INSERT_EVENT = _e.insert()
_TOUCH_ACTION = _a.update().where(_a.c.id == sa.bindparam("b_id")).values(
    updated_at=sa.bindparam("updated_at", type_=_a.c.updated_at.type))
_TOUCH_ACTION_ERROR = _a.update().where(
    _a.c.id == sa.bindparam("b_id")).values(
    message="Error",
    updated_at=sa.bindparam("updated_at", type_=_a.c.updated_at.type))
_ACTION_ID = sa.select(_a.c.id).where(
    _a.c.instance_uuid == sa.bindparam("instance_uuid"),
    _a.c.request_id == sa.bindparam("request_id")).order_by(_a.c.id.desc())
_OPEN_EVENT = sa.select(_e.c.id).where(
    _e.c.action_id == sa.bindparam("action_id"),
    _e.c.event == sa.bindparam("event"),
    _e.c.finish_time.is_(None)).order_by(_e.c.id.desc())
_FINISH_EVENT = _e.update().where(_e.c.id == sa.bindparam("b_id")).values(
    finish_time=sa.bindparam("finish_time", type_=_e.c.finish_time.type),
    result=sa.bindparam("result", type_=_e.c.result.type),
    traceback=sa.bindparam("traceback", type_=_e.c.traceback.type),
    details=sa.bindparam("details", type_=_e.c.details.type))
_ACTION_IDS = sa.select(_a.c.instance_uuid, _a.c.id).where(
    _a.c.instance_uuid.in_(sa.bindparam("uuids", expanding=True)),
    _a.c.request_id == sa.bindparam("request_id")).order_by(_a.c.id)
_TOUCH_ACTIONS = _a.update().where(
    _a.c.id.in_(sa.bindparam("b_ids", expanding=True))).values(
    updated_at=sa.bindparam("updated_at", type_=_a.c.updated_at.type))
_TOUCH_ACTIONS_ERROR = _a.update().where(
    _a.c.id.in_(sa.bindparam("b_ids", expanding=True))).values(
    message="Error",
    updated_at=sa.bindparam("updated_at", type_=_a.c.updated_at.type))


def record_action(conn, instance_uuid: str, action: str, *,
                  request_id: str, user_id: str | None,
                  project_id: str | None, message: str | None = None,
                  now: datetime.datetime | None = None) -> int:
    """Insert an instance action row; return its id."""
    now = now or m.utcnow()
    result = conn.execute(_INSERT_ACTION, {
        "action": action, "instance_uuid": instance_uuid,
        "request_id": request_id, "user_id": user_id,
        "project_id": project_id, "start_time": now, "created_at": now,
        "updated_at": now, "message": message})
    return result.inserted_primary_key[0]


def record_event(conn, action_id: int, event: str, *,
                 result: str | None = None, host: str | None = None,
                 traceback: str | None = None, finish: bool = False,
                 details: str | None = None) -> None:
    now = m.utcnow()
    conn.execute(_INSERT_EVENT, {
        "action_id": action_id, "event": event, "start_time": now,
        "finish_time": now if finish else None, "result": result,
        "host": host, "traceback": traceback, "details": details})
    conn.execute(_TOUCH_ACTION, {"b_id": action_id, "updated_at": now})


def add_fault(conn, instance_uuid: str, code: int, message: str,
              details: str | None = None, host: str | None = None) -> None:
    conn.execute(m.instance_faults.insert().values(
        instance_uuid=instance_uuid, code=code, message=message[:255],
        details=details, host=host, created_at=m.utcnow()))


def _action_id(conn, instance_uuid: str, request_id: str) -> int | None:
    row = conn.execute(_ACTION_ID, {"instance_uuid": instance_uuid,
                                    "request_id": request_id}).first()
    return None if row is None else row.id


def action_event_start(conn, instance_uuid: str, request_id: str,
                       event: str, host: str | None) -> None:
    action_id = _action_id(conn, instance_uuid, request_id)
    if action_id is None:
        return  # an action started outside the API: nothing to attach to
    record_event(conn, action_id, event, host=host)


def action_event_finish(conn, instance_uuid: str, request_id: str,
                        event: str, host: str | None, result: str,
                        traceback: str | None = None,
                        details: str | None = None) -> None:
    """End ``event``; a failed one keeps ``details``, the fault message
    that users see from 2.84."""
    action_id = _action_id(conn, instance_uuid, request_id)
    if action_id is None:
        return
    now = m.utcnow()
    row = conn.execute(_OPEN_EVENT, {"action_id": action_id,
                                     "event": event}).first()
    if row is None:
        record_event(conn, action_id, event, host=host,
                     result=result, traceback=traceback, finish=True,
                     details=details)
    else:
        conn.execute(_FINISH_EVENT, {
            "b_id": row.id, "finish_time": now, "result": result,
            "traceback": traceback, "details": details})
    conn.execute(_TOUCH_ACTION_ERROR if result.lower() == "error"
                 else _TOUCH_ACTION, {"b_id": action_id, "updated_at": now})


def action_events_done(conn, instance_uuids: Sequence[str], request_id: str,
                       event: str, host: str | None,
                       started: datetime.datetime, result: str,
                       traceback: str | None = None,
                       details: str | None = None) -> None:
    """Record a whole event (start and end at once) in the actions of
    ``request_id`` of several instances: for steps too short to be worth
    showing in progress (the conductor's scheduling)."""
    ids = {row.instance_uuid: row.id for row in conn.execute(
        _ACTION_IDS, {"uuids": list(instance_uuids),
                      "request_id": request_id})}
    if not ids:
        return
    now = m.utcnow()
    conn.execute(_INSERT_EVENT, [
        dict(action_id=action_id, event=event, start_time=started,
             finish_time=now, result=result, host=host,
             traceback=traceback, details=details)
        for action_id in ids.values()])
    conn.execute(_TOUCH_ACTIONS_ERROR if result.lower() == "error"
                 else _TOUCH_ACTIONS,
                 {"b_ids": list(ids.values()), "updated_at": now})


# --- reads ----------------------------------------------------------------

def _action(row, events=()) -> InstanceAction:
    return InstanceAction(
        id=row.id, action=row.action, instance_uuid=row.instance_uuid,
        request_id=row.request_id, user_id=row.user_id,
        project_id=row.project_id, start_time=row.start_time,
        finish_time=row.finish_time, message=row.message,
        created_at=row.created_at, updated_at=row.updated_at,
        events=list(events))


def get_actions(conn, uuid: str, *, limit: int | None = None,
                marker: str | None = None,
                changes_since: datetime.datetime | None = None,
                changes_before: datetime.datetime | None = None
                ) -> list[InstanceAction]:
    """Actions of an instance, newest first; ``marker`` is a request
    id."""
    a = m.instance_actions
    query = sa.select(a).where(a.c.instance_uuid == uuid)
    updated = sa.func.coalesce(a.c.updated_at, a.c.created_at)
    if changes_since is not None:
        query = query.where(updated >= changes_since)
    if changes_before is not None:
        query = query.where(updated <= changes_before)
    if marker is not None:
        mrow = conn.execute(sa.select(a).where(
            a.c.instance_uuid == uuid, a.c.request_id == marker)).first()
        if mrow is None:
            raise exception.InvalidMarker(marker=marker)
        query = query.where(sa.or_(
            a.c.created_at < mrow.created_at,
            sa.and_(a.c.created_at == mrow.created_at, a.c.id < mrow.id)))
    query = query.order_by(a.c.created_at.desc(), a.c.id.desc())
    if limit is not None:
        query = query.limit(limit)
    return [_action(r) for r in conn.execute(query)]


def get_action(conn, uuid: str, request_id: str) -> InstanceAction:
    """The action of ``request_id`` on ``uuid``, with its events."""
    a, e = m.instance_actions, m.instance_actions_events
    row = conn.execute(sa.select(a).where(
        a.c.instance_uuid == uuid, a.c.request_id == request_id).order_by(
        a.c.created_at.desc(), a.c.id.desc())).first()
    if row is None:
        raise exception.InstanceActionNotFound(request_id=request_id,
                                               instance_uuid=uuid)
    events = [InstanceActionEvent(
        id=r.id, action_id=r.action_id, event=r.event,
        start_time=r.start_time, finish_time=r.finish_time,
        result=r.result, traceback=r.traceback, host=r.host,
        details=r.details)
        for r in conn.execute(sa.select(e).where(
            e.c.action_id == row.id).order_by(e.c.start_time.desc(),
                                             e.c.id.desc()))]
    return _action(row, events)


class ActionsComponent(DBComponent):
    """Instance actions, events and faults."""

    def get_all(self, instance_uuid: str, *, limit: int | None = None,
                marker: str | None = None,
                changes_since: datetime.datetime | None = None,
                changes_before: datetime.datetime | None = None
                ) -> Deferred[list[InstanceAction]]:
        """See :func:`get_actions`."""
        return self._read(get_actions, instance_uuid, limit=limit,
                          marker=marker, changes_since=changes_since,
                          changes_before=changes_before)

    def get(self, instance_uuid: str, request_id: str
            ) -> Deferred[InstanceAction]:
        """See :func:`get_action`."""
        return self._read(get_action, instance_uuid, request_id)

    def event_start(self, instance_uuid: str, request_id: str, event: str,
                    host: str | None) -> Deferred[None]:
        return self._write(action_event_start, instance_uuid, request_id,
                           event, host)

    def event_finish(self, instance_uuid: str, request_id: str, event: str,
                     host: str | None, result: str,
                     traceback: str | None = None,
                     details: str | None = None) -> Deferred[None]:
        return self._write(action_event_finish, instance_uuid, request_id,
                           event, host, result, traceback, details)

    def add_fault(self, instance_uuid: str, code: int, message: str,
                  details: str | None = None, host: str | None = None
                  ) -> Deferred[None]:
        return self._write(add_fault, instance_uuid, code, message,
                           details, host)
