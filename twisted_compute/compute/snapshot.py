"""The agent's snapshots, backups and shelving (:class:`SnapshotMixin`,
part of :class:`~twisted_compute.compute.manager.ComputeManager`).

A snapshot runs the driver's ``snapshot(context, instance, image_id,
update_task_state, upload)``: the driver copies the disk, calling
``update_task_state(task_state, expected_state)`` for
``image_pending_upload`` and ``image_uploading`` (the agent maps them to
the ``shelving_*`` states of a shelve) and ``upload(source, disk_format,
container_format="bare")`` (bytes, or the path of a file) to stream the
copy into the image API.  The whole snapshot has ``[DEFAULT]
snapshot_timeout`` seconds; on any failure or timeout the driver's
Deferred is cancelled (the driver resumes the guest), the image is
deleted, a fault is recorded and the task cleared.
"""

from __future__ import annotations

import datetime
from typing import Any

from twisted.internet import defer
from twisted.python.failure import Failure

from twisted_compute import exception
from twisted_compute.compute.common import bus_time, message
from twisted_compute.objects import vm_states
from twisted_compute.objects.instance import Instance
from twisted_compute.virt import power_state

_SHELVING_STATES = {
    vm_states.IMAGE_PENDING_UPLOAD: vm_states.SHELVING_IMAGE_PENDING_UPLOAD,
    vm_states.IMAGE_UPLOADING: vm_states.SHELVING_IMAGE_UPLOADING,
}


class SnapshotMixin:
    """Needs ``self.images`` (an :class:`~twisted_compute.compute.
    image_client.ImageClient`)."""

    # --- the snapshot itself ------------------------------------------

    async def _snapshot(self, context, instance: Instance, image_id: str,
                        first_state: str, shelving: bool = False) -> str:
        """Run the driver's snapshot into ``image_id`` under the timeout;
        fires with the task_state it left (uploading) or raises, the
        image deleted."""
        uuid = instance.uuid
        current = [first_state]

        def update_task_state(task_state, expected_state=None):
            if shelving:
                task_state = _SHELVING_STATES.get(task_state, task_state)
            expected = [current[0]]
            d = defer.ensureDeferred(self._update(
                context, uuid, {"task_state": task_state},
                expected_task_state=expected))
            d.addCallback(lambda _: current.__setitem__(0, task_state))
            return d

        def upload(source, disk_format, container_format="bare"):
            return defer.ensureDeferred(self.images.upload(
                image_id, source, disk_format, container_format))

        timeout = self.conf.snapshot_timeout
        timed_out = []
        running = defer.maybeDeferred(
            self.driver.snapshot, context, instance, image_id,
            update_task_state, upload)

        def expire():
            timed_out.append(True)
            running.cancel()

        timer = self.reactor.callLater(timeout, expire)
        try:
            await running
        except BaseException as exc:
            await self._drop_image(image_id)
            if timed_out:
                raise exception.SnapshotTimeout(
                    instance_uuid=uuid, image_id=image_id,
                    timeout=timeout) from None
            if isinstance(exc, defer.CancelledError):
                raise
            raise
        finally:
            if timer.active():
                timer.cancel()
        return current[0]

    async def _drop_image(self, image_id: str) -> None:
        try:
            await self.images.delete(image_id)
        except Exception:
            self.log.failure("could not delete image {image_id} of a "
                             "failed snapshot", image_id=image_id)

    async def _snapshot_failed(self, context, uuid: str, event: str,
                               exc: BaseException, failure: Failure,
                               values: dict[str, Any] | None = None
                               ) -> None:
        self.log.warn("[{request_id}] {event} of {uuid} failed: {error}",
                      request_id=context.request_id, event=event,
                      uuid=uuid, error=message(exc))
        await self._event_finish(context, uuid, event, failure)
        await self._fault(context, uuid, exc, failure.getTraceback())
        try:
            await self._update(context, uuid,
                               dict(values or {}, task_state=None))
        except exception.InstanceNotFound:
            pass

    async def _snapshot_action(self, context, instance, image_id: str,
                               event: str, first_state: str,
                               after=None) -> None:
        instance = Instance.from_dict(instance)
        uuid = instance.uuid
        await self._event_start(context, uuid, event)
        # As Nova: a backup is notified as a snapshot.
        payload = {"name": "InstanceActionSnapshotPayload",
                   "snapshot_image_id": image_id}
        self._notify(context, instance, "snapshot", "start", **payload)
        try:
            left = await self._snapshot(context, instance, image_id,
                                        first_state)
            if after is not None:
                await after(instance)
            done = await self._update(context, uuid, {"task_state": None},
                                      expected_task_state=[left],
                                      instance=instance)
        except Exception as exc:
            await self._snapshot_failed(context, uuid, event, exc,
                                        Failure())
            return
        await self._event_finish(context, uuid, event)
        self._notify(context, done, "snapshot", "end", **payload)

    def snapshot_instance(self, context, instance, image_id, **kwargs):
        """Cast (1.4): createImage."""
        return defer.ensureDeferred(self._snapshot_action(
            context, instance, image_id, "compute_snapshot_instance",
            vm_states.IMAGE_SNAPSHOT))

    def backup_instance(self, context, instance, image_id, backup_type,
                        rotation, **kwargs):
        """Cast (1.4): createBackup, then the rotation."""
        async def rotate(record: Instance) -> None:
            await self._rotate_backups(record, backup_type, int(rotation))

        return defer.ensureDeferred(self._snapshot_action(
            context, instance, image_id, "compute_backup_instance",
            vm_states.IMAGE_BACKUP, after=rotate))

    async def _rotate_backups(self, instance: Instance, backup_type: str,
                              rotation: int) -> list[str]:
        """Delete the backups of ``instance`` of ``backup_type`` beyond
        the ``rotation`` newest; returns the ids deleted, oldest first."""
        images = await self.images.list(
            instance_uuid=instance.uuid, image_type="backup",
            backup_type=backup_type, sort_key="created_at",
            sort_dir="desc", limit="1000")
        excess = images[rotation:]
        deleted = []
        for image in reversed(excess):
            self.log.info("rotating out backup {image_id} of {uuid} "
                          "({backup_type}, rotation {rotation})",
                          image_id=image["id"], uuid=instance.uuid,
                          backup_type=backup_type, rotation=rotation)
            await self.images.delete(image["id"])
            deleted.append(image["id"])
        return deleted

    # --- shelve -------------------------------------------------------

    def shelve_instance(self, context, instance, image_id,
                        clean_shutdown=True, **kwargs):
        """Cast (1.4): stop the guest, snapshot it into ``image_id``,
        SHELVED; offloaded at once with ``shelved_offload_time`` 0."""
        return defer.ensureDeferred(self._shelve(
            context, Instance.from_dict(instance), image_id))

    async def _shelve(self, context, instance: Instance,
                      image_id: str) -> None:
        uuid = instance.uuid
        event = "compute_shelve_instance"
        await self._event_start(context, uuid, event)
        self._notify(context, instance, "shelve", "start")
        try:
            if await self._power_state(instance) in (
                    power_state.RUNNING, power_state.PAUSED,
                    power_state.SUSPENDED):
                if await self._power_state(instance) != \
                        power_state.RUNNING:
                    # Paused or suspended guests stop from running.
                    await self._timed(defer.ensureDeferred(
                        self._wake(context, instance)), "shelve", uuid)
                await self._timed(defer.maybeDeferred(
                    self.driver.power_off, instance), "shelve", uuid)
            left = await self._snapshot(context, instance, image_id,
                                        vm_states.SHELVING, shelving=True)
            sysmeta = dict(instance.system_metadata or {},
                           shelved_image_id=image_id,
                           shelved_host=self.host)
            state = await self._power_state(instance)
            shelved = await self._update(context, uuid, {
                "vm_state": vm_states.SHELVED, "task_state": None,
                "power_state": state, "system_metadata": sysmeta},
                expected_task_state=[left], instance=instance)
        except Exception as exc:
            state = await self._power_state(instance)
            await self._snapshot_failed(context, uuid, event, exc,
                                        Failure(), {"power_state": state})
            return
        await self._event_finish(context, uuid, event)
        self._notify(context, shelved, "shelve", "end")
        if self.conf.shelved_offload_time == 0:
            instance = Instance.from_dict(dict(
                instance.to_dict(), vm_state=vm_states.SHELVED,
                task_state=vm_states.SHELVING_OFFLOADING,
                system_metadata=sysmeta))
            await self._update(context, uuid, {
                "task_state": vm_states.SHELVING_OFFLOADING},
                expected_task_state=[None])
            await self._offload(context, instance)

    async def _wake(self, context, instance: Instance) -> None:
        state = await self._power_state(instance)
        if state == power_state.PAUSED:
            await self.driver.unpause(instance)
        elif state == power_state.SUSPENDED:
            await self.driver.resume(context, instance, [])

    def shelve_offload_instance(self, context, instance,
                                clean_shutdown=True, **kwargs):
        """Cast (1.4): shelveOffload: the guest leaves this host."""
        return defer.ensureDeferred(self._offload(
            context, Instance.from_dict(instance)))

    async def _offload(self, context, instance: Instance) -> None:
        uuid = instance.uuid
        event = "compute_shelve_offload_instance"
        await self._event_start(context, uuid, event)
        self._notify(context, instance, "shelve_offload", "start")
        try:
            await self._timed(defer.maybeDeferred(
                self.driver.destroy, context, instance, [], None),
                "shelve_offload", uuid)
            offloaded = await self._update(context, uuid, {
                "vm_state": vm_states.SHELVED_OFFLOADED,
                "task_state": None, "power_state": power_state.NOSTATE,
                "host": None, "node": None},
                expected_task_state=[vm_states.SHELVING_OFFLOADING],
                instance=instance)
        except Exception as exc:
            await self._snapshot_failed(context, uuid, event, exc,
                                        Failure())
            return
        self.tracker.drop(uuid)
        await self._event_finish(context, uuid, event)
        self._notify(context, offloaded, "shelve_offload", "end")

    async def offload_shelved_instances(self, context) -> int:
        """Periodic (``shelved_offload_time`` > 0): offload this host's
        servers shelved for longer than that."""
        wait = self.conf.shelved_offload_time
        if wait <= 0:
            return 0
        now = self.now()
        count = 0
        for instance in await self.conductor.instances_on_host(context,
                                                               self.host):
            if isinstance(instance, dict):
                instance = Instance.from_dict(instance)
            if instance.vm_state != vm_states.SHELVED or \
                    instance.task_state is not None:
                continue
            shelved_at = (instance.system_metadata or {}).get("shelved_at")
            if not shelved_at:
                continue
            try:
                when = datetime.datetime.fromisoformat(str(shelved_at))
            except ValueError:
                continue
            if (now - when).total_seconds() < wait:
                continue
            try:
                await self._update(context, instance.uuid, {
                    "task_state": vm_states.SHELVING_OFFLOADING},
                    expected_task_state=[None])
            except exception.ComputeException:
                continue
            await self._offload(context, instance)
            count += 1
        return count

    # --- unshelve -----------------------------------------------------

    def unshelve_instance(self, context, instance, host=None, node=None,
                          image=None, **kwargs):
        """Cast (1.4): start a SHELVED guest again, or boot a
        SHELVED_OFFLOADED one here from its shelved image; then delete
        that image."""
        return defer.ensureDeferred(self._unshelve(
            context, Instance.from_dict(instance), image))

    async def _unshelve(self, context, instance: Instance,
                        image: dict | None) -> None:
        uuid = instance.uuid
        event = "compute_unshelve_instance"
        await self._event_start(context, uuid, event)
        self._notify(context, instance, "unshelve", "start")
        sysmeta = dict(instance.system_metadata or {})
        image_id = sysmeta.get("shelved_image_id")
        offloaded = instance.vm_state == vm_states.SHELVED_OFFLOADED
        claimed = False
        try:
            if offloaded:
                if self.tracker.resources is None:
                    await self.tracker.refresh()
                instance = Instance.from_dict(dict(
                    instance.to_dict(), host=self.host,
                    node=self.nodename))
                self.tracker.claim(instance)
                claimed = True
                meta = dict(image or {"id": image_id})
                # The boot has the snapshot timeout, as the snapshot had.
                spawning = defer.maybeDeferred(
                    self.driver.spawn, context, instance, meta, [], None,
                    [], None)
                spawning.addTimeout(self.conf.snapshot_timeout,
                                    self.reactor)
                try:
                    await spawning
                except defer.TimeoutError:
                    raise exception.InstanceSpawnFailure(
                        instance_uuid=uuid, reason=(
                            f"the unshelve boot did not finish within "
                            f"{self.conf.snapshot_timeout} seconds")
                    ) from None
            else:
                await self._timed(defer.maybeDeferred(
                    self.driver.power_on, context, instance, []),
                    "unshelve", uuid)
            for key in ("shelved_image_id", "shelved_at", "shelved_host"):
                sysmeta.pop(key, None)
            state = await self._power_state(instance)
            values: dict[str, Any] = {
                "vm_state": vm_states.ACTIVE, "task_state": None,
                "power_state": state, "system_metadata": sysmeta}
            if offloaded:
                values.update(host=self.host, node=self.nodename,
                              launched_at=bus_time(self.now()))
            unshelved = await self._update(
                context, uuid, values,
                expected_task_state=[vm_states.UNSHELVING],
                instance=instance)
        except Exception as exc:
            failure = Failure()
            if claimed:
                self.tracker.drop(uuid)
                await self._destroy_quietly(context, instance)
            values = {}
            if offloaded:
                values = {"vm_state": vm_states.SHELVED_OFFLOADED,
                          "host": None, "node": None}
            await self._snapshot_failed(context, uuid, event, exc, failure,
                                        values)
            return
        if image_id:
            await self._drop_image(image_id)
        await self._event_finish(context, uuid, event)
        self._notify(context, unshelved, "unshelve", "end")
