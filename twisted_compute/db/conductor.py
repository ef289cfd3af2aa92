"""The queries behind the conductor: the agents' DB proxy (instance
updates guarded by the expected task state, compute node reports, service
heartbeats, action events) and the build timeout."""

from __future__ import annotations

import datetime
import uuid as uuidlib
from typing import Any, Sequence

import sqlalchemy as sa

from twisted_compute import exception
from twisted_compute.db import instances as instances_db
from twisted_compute.db import models as m
from twisted_compute.objects import vm_states
from twisted_compute.objects.instance import Instance
from twisted_compute.objects.service import COMPUTE_BINARY

I = m.instances  # noqa: E741

#: Instance columns an agent may write through the conductor.
WRITABLE = frozenset({
    "vm_state", "task_state", "power_state", "host", "node", "launched_on",
    "launched_at", "terminated_at", "progress", "addresses",
    "system_metadata", "locked", "hostname", "availability_zone",
})


def instance_update(conn, uuid: str, updates: dict[str, Any],
                    expected_task_state: Sequence[str | None] | None = None,
                    expected_vm_state: Sequence[str] | None = None,
                    expected_host: str | None = None,
                    fetch: bool = True,
                    event: dict[str, Any] | None = None
                    ) -> Instance | None:
    """Write ``updates`` to a live instance, only while its task state is
    one of ``expected_task_state`` (when given), its vm state one of
    ``expected_vm_state`` (when given) and its host ``expected_host``
    (when given: a build request that went stale, because the instance
    was rescheduled elsewhere meanwhile, must not take the instance).
    Returns the instance as written, or None without ``fetch`` (which
    saves the four queries of reading it back).

    ``event`` (``request_id``, ``event``, ``host``, and ``result`` /
    ``traceback`` to finish one) records the start or the end of an
    instance action event in the same transaction: an agent's step and its
    event in one round trip, and no event when the update is refused.

    Raises :class:`InstanceNotFound` when it is gone (deleted), and
    :class:`UnexpectedDeletingTaskStateError` when someone asked for its
    deletion meanwhile, :class:`UnexpectedTaskStateError` otherwise.
    """
    bad = set(updates) - WRITABLE
    if bad:
        raise exception.InvalidInput(
            reason=f"instance fields not writable over RPC: {sorted(bad)}")
    values = dict(updates)
    values["updated_at"] = m.utcnow()
    query = I.update().where(I.c.uuid == uuid, I.c.deleted == 0)
    if expected_task_state is not None:
        expected = list(expected_task_state)
        clauses = [I.c.task_state.in_([s for s in expected
                                       if s is not None])]
        if None in expected:
            clauses.append(I.c.task_state.is_(None))
        query = query.where(sa.or_(*clauses))
    if expected_vm_state is not None:
        query = query.where(I.c.vm_state.in_(list(expected_vm_state)))
    if expected_host is not None:
        query = query.where(I.c.host == expected_host)
    if conn.execute(query.values(**values)).rowcount == 0:
        row = conn.execute(sa.select(
                I.c.task_state, I.c.vm_state, I.c.host).where(
            I.c.uuid == uuid, I.c.deleted == 0)).first()
        if row is None:
            raise exception.InstanceNotFound(instance_id=uuid)
        if row.task_state == vm_states.DELETING:
            raise exception.UnexpectedDeletingTaskStateError(
                instance_uuid=uuid, expected=expected_task_state,
                actual=row.task_state)
        if expected_host is not None and row.host != expected_host:
            raise exception.UnexpectedTaskStateError(
                instance_uuid=uuid, expected=expected_task_state,
                actual=f"{row.task_state} on host {row.host}")
        raise exception.UnexpectedTaskStateError(
            instance_uuid=uuid, expected=expected_task_state,
            actual=row.task_state)
    if event is not None:
        if event.get("result") is None:
            action_event_start(conn, uuid, event["request_id"],
                               event["event"], event.get("host"))
        else:
            action_event_finish(conn, uuid, event["request_id"],
                                event["event"], event.get("host"),
                                event["result"], event.get("traceback"))
    if not fetch:
        return None
    return instances_db.get(conn, uuid)


def build_states(conn, uuids: Sequence[str]
                 ) -> dict[str, tuple[str, str | None, str | None]]:
    """``{uuid: (vm_state, task_state, host)}`` of the live instances
    among ``uuids`` (deleted ones are missing)."""
    if not uuids:
        return {}
    rows = conn.execute(sa.select(
        I.c.uuid, I.c.vm_state, I.c.task_state, I.c.host).where(
        I.c.uuid.in_(list(uuids)), I.c.deleted == 0)).all()
    return {r.uuid: (r.vm_state, r.task_state, r.host) for r in rows}


def instances_on_host(conn, host: str) -> list[Instance]:
    rows = conn.execute(sa.select(I).where(
        I.c.host == host, I.c.deleted == 0)).all()
    return instances_db._records(conn, rows)


def compute_node_update(conn, values: dict[str, Any]) -> int:
    """Insert or update the node (host, hypervisor_hostname); return its
    id.  ``values`` are the ``compute_nodes`` columns an agent reports."""
    columns = {c.name for c in m.compute_nodes.columns} - {
        "id", "uuid", "created_at", "updated_at", "deleted", "service_id"}
    data = {k: v for k, v in values.items() if k in columns}
    host, node = data["host"], data["hypervisor_hostname"]
    now = m.utcnow()
    service = conn.execute(sa.select(m.services.c.id).where(
        m.services.c.host == host,
        m.services.c.binary == COMPUTE_BINARY)).first()
    if service is not None:
        data["service_id"] = service.id
    cn = m.compute_nodes
    row = conn.execute(sa.select(cn.c.id).where(
        cn.c.host == host, cn.c.hypervisor_hostname == node,
        cn.c.deleted == 0)).first()
    if row is None:
        data.setdefault("cpu_info", "{}")
        return conn.execute(cn.insert().values(
            uuid=str(uuidlib.uuid4()), created_at=now, updated_at=now,
            deleted=0, **data)).inserted_primary_key[0]
    conn.execute(cn.update().where(cn.c.id == row.id).values(
        updated_at=now, **data))
    return row.id


def service_heartbeat(conn, host: str, binary: str, topic: str,
                      version: int = 0) -> dict[str, Any]:
    """Record that ``binary`` on ``host`` is alive (creating its row the
    first time); return the row (the caller learns ``disabled``)."""
    s = m.services
    now = m.utcnow()
    row = conn.execute(sa.select(s).where(
        s.c.host == host, s.c.binary == binary)).first()
    if row is None:
        try:
            with conn.begin_nested():
                conn.execute(s.insert().values(
                    uuid=str(uuidlib.uuid4()), host=host, binary=binary,
                    topic=topic, report_count=1, last_seen_up=now,
                    created_at=now, updated_at=now, version=version,
                    disabled=False, forced_down=False))
        except sa.exc.IntegrityError:
            pass  # created concurrently: update below
        else:
            row = conn.execute(sa.select(s).where(
                s.c.host == host, s.c.binary == binary)).one()
            return dict(row._mapping)
    conn.execute(s.update().where(s.c.host == host, s.c.binary == binary)
                 .values(report_count=s.c.report_count + 1,
                         last_seen_up=now, updated_at=now, topic=topic))
    row = conn.execute(sa.select(s).where(
        s.c.host == host, s.c.binary == binary)).one()
    return dict(row._mapping)


def _action_id(conn, instance_uuid: str, request_id: str) -> int | None:
    a = m.instance_actions
    row = conn.execute(sa.select(a.c.id).where(
        a.c.instance_uuid == instance_uuid, a.c.request_id == request_id)
        .order_by(a.c.id.desc())).first()
    return None if row is None else row.id


def action_event_start(conn, instance_uuid: str, request_id: str,
                       event: str, host: str | None) -> None:
    action_id = _action_id(conn, instance_uuid, request_id)
    if action_id is None:
        return  # an action started outside the API: nothing to attach to
    instances_db.record_event(conn, action_id, event, host=host)


def action_event_finish(conn, instance_uuid: str, request_id: str,
                        event: str, host: str | None, result: str,
                        traceback: str | None = None) -> None:
    action_id = _action_id(conn, instance_uuid, request_id)
    if action_id is None:
        return
    e = m.instance_actions_events
    now = m.utcnow()
    row = conn.execute(sa.select(e.c.id).where(
        e.c.action_id == action_id, e.c.event == event,
        e.c.finish_time.is_(None)).order_by(e.c.id.desc())).first()
    if row is None:
        instances_db.record_event(conn, action_id, event, host=host,
                                  result=result, traceback=traceback,
                                  finish=True)
    else:
        conn.execute(e.update().where(e.c.id == row.id).values(
            finish_time=now, result=result, traceback=traceback))
    a = m.instance_actions
    if result.lower() == "error":
        conn.execute(a.update().where(a.c.id == action_id).values(
            message="Error", updated_at=now))
    else:
        conn.execute(a.update().where(a.c.id == action_id).values(
            updated_at=now))


def action_events_done(conn, instance_uuids: Sequence[str], request_id: str,
                       event: str, host: str | None,
                       started: datetime.datetime, result: str,
                       traceback: str | None = None) -> None:
    """Record a whole event (start and end at once) in the actions of
    ``request_id`` of several instances: for steps too short to be worth
    showing in progress (the conductor's scheduling)."""
    a = m.instance_actions
    ids = {row.instance_uuid: row.id for row in conn.execute(
        sa.select(a.c.instance_uuid, a.c.id).where(
            a.c.instance_uuid.in_(list(instance_uuids)),
            a.c.request_id == request_id).order_by(a.c.id))}
    if not ids:
        return
    now = m.utcnow()
    conn.execute(m.instance_actions_events.insert(), [
        dict(action_id=action_id, event=event, start_time=started,
             finish_time=now, result=result, host=host,
             traceback=traceback) for action_id in ids.values()])
    values: dict[str, Any] = {"updated_at": now}
    if result.lower() == "error":
        values["message"] = "Error"
    conn.execute(a.update().where(a.c.id.in_(list(ids.values())))
                 .values(**values))


def place_instance(conn, uuid: str, values: dict[str, Any]) -> bool:
    """Write an instance's placement while it is still building and
    unplaced-or-scheduling; False when it was deleted meanwhile."""
    try:
        instance_update(conn, uuid, values,
                        expected_task_state=[vm_states.SCHEDULING, None],
                        expected_vm_state=[vm_states.BUILDING], fetch=False)
    except (exception.InstanceNotFound, exception.UnexpectedTaskStateError):
        return False
    return True


def place_instances(conn, placements: dict[str, dict[str, Any]],
                    request_id: str, event: str, host: str | None,
                    started: datetime.datetime) -> set[str]:
    """Write each instance's placement (``{uuid: values}``) while it is
    still building and unplaced-or-scheduling, and record the scheduling
    ``event`` of those placed; the uuids placed (the others were deleted
    meanwhile)."""
    placed = {uuid for uuid, values in placements.items()
              if place_instance(conn, uuid, values)}
    if placed:
        action_events_done(conn, sorted(placed), request_id, event, host,
                           started, "Success")
    return placed


def fail_scheduling(conn, uuids: Sequence[str], code: int, message: str,
                    request_id: str, event: str, host: str | None,
                    started: datetime.datetime) -> None:
    """No host for ``uuids``: ERROR with a fault, and the scheduling
    event ends in error."""
    for uuid in uuids:
        set_error(conn, uuid, code, message, None, None)
    action_events_done(conn, uuids, request_id, event, host, started,
                       "Error")


def finish_action(conn, instance_uuid: str, request_id: str) -> None:
    a = m.instance_actions
    conn.execute(a.update().where(
        a.c.instance_uuid == instance_uuid, a.c.request_id == request_id,
        a.c.finish_time.is_(None)).values(finish_time=m.utcnow()))


def set_error(conn, uuid: str, code: int, message: str,
              details: str | None = None, host: str | None = None,
              only_if_building: bool = False) -> bool:
    """Put a live instance in ERROR with a fault; False if it is gone (or,
    with ``only_if_building``, no longer building)."""
    query = I.update().where(I.c.uuid == uuid, I.c.deleted == 0)
    if only_if_building:
        query = query.where(I.c.vm_state == vm_states.BUILDING)
    updated = conn.execute(query.values(
        vm_state=vm_states.ERROR, task_state=None,
        updated_at=m.utcnow()))
    if updated.rowcount == 0:
        return False
    instances_db.add_fault(conn, uuid, code, message, details, host)
    return True


def building_too_long(conn, older_than: datetime.datetime,
                      limit: int = 500) -> list[tuple[str, str | None]]:
    """(uuid, host) of live instances still building since before
    ``older_than``."""
    rows = conn.execute(sa.select(I.c.uuid, I.c.host).where(
        I.c.deleted == 0, I.c.vm_state == vm_states.BUILDING,
        I.c.created_at < older_than).limit(limit)).all()
    return [(r.uuid, r.host) for r in rows]


def image_meta(conn, image_id: str | None) -> dict[str, Any] | None:
    """What an agent needs to know of an image to boot it."""
    if not image_id:
        return None
    row = conn.execute(sa.select(m.images).where(
        m.images.c.id == image_id)).first()
    if row is None:
        return None
    return {"id": row.id, "name": row.name, "status": row.status,
            "disk_format": row.disk_format,
            "container_format": row.container_format, "size": row.size,
            "checksum": row.checksum, "os_hash_algo": row.os_hash_algo,
            "os_hash_value": row.os_hash_value, "min_disk": row.min_disk,
            "min_ram": row.min_ram, "properties": dict(row.properties or {})}
