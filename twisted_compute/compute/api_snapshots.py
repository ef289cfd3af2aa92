"""The compute API layer's snapshots, backups and shelving
(:class:`SnapshotAPIMixin`, part of :class:`~twisted_compute.compute.api.
ComputeAPI`).

A snapshot's image is created here, ``queued``, with the properties Nova
gives it; the agent then copies the disk and uploads it to the image API
(``saving``, then ``active``), or deletes the image when it fails.
Shelving snapshots the server as ``<name>-shelved`` and remembers that
image in the system metadata (``shelved_image_id``, ``shelved_at``,
``shelved_host``) until unshelve boots from it and deletes it.
"""

from __future__ import annotations

import datetime
import uuid as uuidlib
from typing import Any

from twisted.internet.defer import maybeDeferred

from twisted_compute import exception
from twisted_compute.objects import vm_states
from twisted_compute.objects.instance import Instance

#: Image properties a snapshot never inherits (Nova's fixed list; the
#: ``[DEFAULT] non_inheritable_image_properties`` option adds to it).
NON_INHERITABLE_IMAGE_PROPERTIES = frozenset({
    "cinder_encryption_key_id", "cinder_encryption_key_deletion_policy",
    "img_signature", "img_signature_hash_method", "img_signature_key_type",
    "img_signature_certificate_uuid"})
#: System metadata ``image_*`` keys that are image attributes, not
#: properties.
_IMAGE_ATTRIBUTES = ("min_ram", "min_disk", "disk_format",
                     "container_format")
#: ``image_*`` keys too large to carry (Nova skips them too).
_SKIPPED = ("mappings", "block_device_mapping", "img_mappings",
            "img_block_device_mapping")

#: Nova's state rules.
SNAPSHOT_VM_STATES = (vm_states.ACTIVE, vm_states.STOPPED,
                      vm_states.PAUSED, vm_states.SUSPENDED)
BACKUP_VM_STATES = (vm_states.ACTIVE, vm_states.STOPPED)
SHELVE_VM_STATES = SNAPSHOT_VM_STATES
UNSHELVE_VM_STATES = (vm_states.SHELVED, vm_states.SHELVED_OFFLOADED)


def snapshot_image_values(conf, context, instance: Instance, name: str,
                          image_type: str,
                          extra_properties: dict[str, Any] | None = None
                          ) -> dict[str, Any]:
    """The ``images`` row of a new snapshot (or backup) of ``instance``,
    ``queued``: the server's image attributes and properties from its
    system metadata, less those that are not inherited, with
    ``image_type``, ``instance_uuid``, ``user_id`` and ``base_image_ref``;
    ``extra_properties`` (the request's ``metadata``) win."""
    attributes: dict[str, Any] = {}
    properties: dict[str, Any] = {}
    for key, value in (instance.system_metadata or {}).items():
        if not key.startswith("image_") or value is None:
            continue
        key = key[len("image_"):]
        if key in _SKIPPED:
            continue
        if key in _IMAGE_ATTRIBUTES:
            attributes[key] = value
        else:
            properties[key] = value
    dropped = NON_INHERITABLE_IMAGE_PROPERTIES | set(
        conf.non_inheritable_image_properties)
    for key in list(properties):
        if key in dropped or key.startswith("os_glance"):
            del properties[key]
    visibility = "private"
    extra = dict(extra_properties or {})
    if context.project_id != instance.project_id:
        # An admin's snapshot of someone else's server: the server's
        # project owns it.
        visibility = "shared"
        extra["instance_owner"] = instance.project_id
    properties.update({"instance_uuid": instance.uuid,
                       "user_id": str(context.user_id),
                       "image_type": image_type})
    if instance.image_ref:
        properties["base_image_ref"] = instance.image_ref
    properties.update(extra)
    root_gb = int((instance.flavor or {}).get("root_gb")
                  or instance.root_gb or 0)
    values = {
        "id": str(uuidlib.uuid4()),
        "name": name,
        "status": "queued",
        "visibility": visibility,
        "owner": instance.project_id,
        "min_ram": int(attributes.get("min_ram") or 0),
        "min_disk": max(int(attributes.get("min_disk") or 0), root_gb),
        "protected": False,
        "os_hidden": False,
        "tags": [],
        "properties": {k: (v if isinstance(v, str) else str(v))
                       for k, v in properties.items()},
    }
    if image_type != "snapshot":
        # A backup keeps the formats; a snapshot's are the driver's.
        for key in ("disk_format", "container_format"):
            if attributes.get(key):
                values[key] = attributes[key]
    return values


class SnapshotAPIMixin:
    """createImage, createBackup, shelve, shelveOffload, unshelve."""

    def _check_image_metadata(self, metadata: dict[str, Any]) -> None:
        limit = self.conf.quota.metadata_items
        if 0 <= limit < len(metadata):
            raise exception.MetadataLimitExceeded(allowed=limit)

    async def _start_snapshot(self, context, uuid: str, action: str,
                              states, task_state: str, image_values,
                              rpc_method: str, lock: bool = False,
                              system_metadata=None, **rpc_kwargs):
        """Check state, create the queued image, set the task and cast;
        the image is deleted again when the state changed meanwhile or
        the cast failed.  Returns (instance, image id)."""
        from twisted_compute.compute.api import _both, check_lock, \
            check_state
        scope = self._scope(context)
        checks = _both(check_lock(context) if lock else None,
                       check_state(action, states))
        instance = await self.get(context, uuid)
        checks(instance)
        rpcapi = self._rpc(action)
        if not instance.host:
            raise exception.InstanceNotReady(instance_id=uuid)
        values = image_values(instance)
        image = await self.db.images.create(values)

        def new_values(current: Instance) -> dict[str, Any]:
            update: dict[str, Any] = {"task_state": task_state}
            if system_metadata is not None:
                sysmeta = dict(current.system_metadata or {})
                sysmeta.update(system_metadata(image.id))
                update["system_metadata"] = sysmeta
            return update

        try:
            instance = await self._transition(
                context, uuid, project_id=scope, check=checks,
                values=new_values, action=action, action_values=self._action_values(context))
        except Exception:
            await self._drop_image(image.id)
            raise
        try:
            await maybeDeferred(getattr(rpcapi, rpc_method), context,
                                instance, image_id=image.id, **rpc_kwargs)
        except Exception:
            await self._transition(
                context, uuid, project_id=None, check=None,
                values={"task_state": None})
            await self._drop_image(image.id)
            raise
        return instance, image.id

    async def _drop_image(self, image_id: str) -> None:
        try:
            await self.db.images.destroy(image_id)
        except exception.ImageNotFound:
            pass

    async def snapshot(self, context, uuid: str, name: str,
                       metadata: dict[str, Any] | None = None) -> str:
        """createImage: fires with the new image's id."""
        metadata = dict(metadata or {})
        self._check_image_metadata(metadata)
        _, image_id = await self._start_snapshot(
            context, uuid, "createImage", SNAPSHOT_VM_STATES,
            vm_states.IMAGE_SNAPSHOT,
            lambda instance: snapshot_image_values(
                self.conf, context, instance, name, "snapshot", metadata),
            "snapshot_instance")
        return image_id

    async def backup(self, context, uuid: str, name: str, backup_type: str,
                     rotation: int,
                     metadata: dict[str, Any] | None = None) -> str:
        """createBackup: fires with the new image's id; the agent deletes
        the oldest backups of this type beyond ``rotation``."""
        metadata = dict(metadata or {})
        self._check_image_metadata(metadata)
        extra = dict(metadata, backup_type=backup_type)
        _, image_id = await self._start_snapshot(
            context, uuid, "createBackup", BACKUP_VM_STATES,
            vm_states.IMAGE_BACKUP,
            lambda instance: snapshot_image_values(
                self.conf, context, instance, name, "backup", extra),
            "backup_instance", backup_type=backup_type, rotation=rotation)
        return image_id

    # --- shelve -------------------------------------------------------

    def _now_iso(self) -> str:
        seconds = (self.clock.seconds() if self.clock is not None
                   else datetime.datetime.now(
                       datetime.timezone.utc).timestamp())
        return datetime.datetime.fromtimestamp(
            seconds, datetime.timezone.utc).replace(
                tzinfo=None).isoformat()

    async def shelve(self, context, uuid: str,
                     clean_shutdown: bool = True) -> str:
        """shelve: snapshot ``<name>-shelved``, then the agent stops the
        guest (SHELVED) and, with ``shelved_offload_time`` 0, offloads
        it.  Fires with the shelved image's id."""
        now = self._now_iso()

        def values(instance: Instance) -> dict[str, Any]:
            return snapshot_image_values(
                self.conf, context, instance,
                f"{instance.display_name}-shelved", "snapshot")

        def sysmeta(image_id: str) -> dict[str, Any]:
            return {"shelved_image_id": image_id, "shelved_at": now}

        instance, image_id = await self._start_snapshot(
            context, uuid, "shelve", SHELVE_VM_STATES, vm_states.SHELVING,
            values, "shelve_instance", lock=True, system_metadata=sysmeta,
            clean_shutdown=clean_shutdown)
        return image_id

    async def shelve_offload(self, context, uuid: str,
                             clean_shutdown: bool = True) -> Instance:
        from twisted_compute.compute.api import check_state
        return await self._cast(
            context, uuid, "shelveOffload",
            check_state("shelveOffload", (vm_states.SHELVED,)),
            vm_states.SHELVING_OFFLOADING, "shelve_offload_instance",
            clean_shutdown=clean_shutdown)

    async def unshelve(self, context, uuid: str, zone: Any = ...,
                       host: str | None = None) -> Instance:
        """unshelve: a SHELVED server is started on its host again; a
        SHELVED_OFFLOADED one is scheduled again (``zone``: a new
        availability zone, None to unpin (2.91), ``...`` to keep it;
        ``host``: a host asked for by an admin (2.91)), checked against
        the cores and RAM quota it gave back, and booted from its shelved
        image."""
        from twisted_compute.compute.api import _both, check_lock, \
            check_state
        scope = self._scope(context)
        checks = _both(check_lock(context),
                       check_state("unshelve", UNSHELVE_VM_STATES))
        instance = await self.get(context, uuid)
        checks(instance)
        offloaded = instance.vm_state == vm_states.SHELVED_OFFLOADED
        if not offloaded and (zone is not ... or host is not None):
            raise exception.Conflict(
                f"The server {uuid} is not shelved offloaded: an "
                f"availability zone or host cannot be given")
        if offloaded:
            task_api = self.compute_task_api
            if task_api is None or not hasattr(task_api,
                                                "unshelve_instance"):
                raise exception.ComputeAgentUnavailable(action="unshelve")
        else:
            rpcapi = self._rpc("unshelve")
            if not instance.host:
                raise exception.InstanceNotReady(instance_id=uuid)

        values: dict[str, Any] = {"task_state": vm_states.UNSHELVING}
        if zone is not ...:
            values["availability_zone"] = zone
        if offloaded:
            instance = await self.db.instances.unshelve(
                self.conf, uuid, project_id=scope, check=checks,
                values=values, zone=zone if zone is not ... else None,
                host=host, action_values=self._action_values(context))
        else:
            instance = await self._transition(
                context, uuid, project_id=scope, check=checks, values=values,
                action="unshelve",
                action_values=self._action_values(context))
        try:
            if offloaded:
                await maybeDeferred(
                    self.compute_task_api.unshelve_instance, context,
                    instance, host=host)
            else:
                await maybeDeferred(rpcapi.unshelve_instance, context,
                                    instance, image_id=None)
        except Exception:
            await self._transition(
                context, uuid, project_id=None, check=None,
                values={"task_state": None})
            raise
        return instance
