"""The compute API layer's part of a server's life on its host: rebuild,
rescue / unrescue, deferred (soft) delete with restore and forceDelete,
crash dumps and admin passwords (mixed into
:class:`~twisted_compute.compute.api.ComputeAPI`).

Each action checks the lock and Nova's vm_state / task_state rules (409),
records an instance action, sets the task state and hands the work on:
rebuild to the conductor (which asks the scheduler whether the host still
fits a new image), the others straight to the server's agent.  Without a
bus they answer 501 before anything is written.
"""

from __future__ import annotations

import datetime
import time
from typing import Any

from twisted.internet.defer import maybeDeferred

from twisted_compute import exception
from twisted_compute.objects import vm_states
from twisted_compute.objects.instance import Instance

#: Nova's rules (``check_instance_state``) of each action.
REBUILD_VM_STATES = (vm_states.ACTIVE, vm_states.STOPPED, vm_states.ERROR)
RESCUE_VM_STATES = (vm_states.ACTIVE, vm_states.STOPPED, vm_states.ERROR)
CRASH_DUMP_VM_STATES = (vm_states.ACTIVE, vm_states.ERROR)
PASSWORD_VM_STATES = (vm_states.ACTIVE,)

#: The instance columns a rebuild body may change, by the key the
#: controller hands over.
_REBUILD_COLUMNS = {
    "name": "display_name", "access_ip_v4": "access_ip_v4",
    "access_ip_v6": "access_ip_v6", "user_data": "user_data",
    "description": "display_description", "hostname": "hostname",
}


def _ref_id(ref) -> str:
    return str(ref).rstrip("/").rsplit("/", 1)[-1]


def image_system_metadata(system_metadata: dict[str, Any],
                          image) -> dict[str, Any]:
    """``system_metadata`` with the ``image_*`` keys of ``image`` instead
    of those of the image the server had (what a rebuild changes)."""
    kept = {k: v for k, v in (system_metadata or {}).items()
            if not k.startswith("image_")}
    kept["image_base_image_ref"] = image.id
    for key in ("min_ram", "min_disk", "disk_format", "container_format"):
        kept[f"image_{key}"] = getattr(image, key)
    for key, value in image.properties.items():
        kept[f"image_{key}"] = value
    return kept


#: The rescue devices and buses of a stable device rescue (Nova's
#: ``hw_rescue_device`` and ``hw_rescue_bus`` values the libvirt driver
#: can attach a file to).
RESCUE_DEVICES = ("disk", "cdrom")
RESCUE_BUSES = ("virtio", "scsi", "sata", "ide", "usb")


def check_rescue_properties(properties: dict[str, Any]) -> None:
    """400 for a ``hw_rescue_device`` / ``hw_rescue_bus`` no driver here
    can attach."""
    device = properties.get("hw_rescue_device")
    if device is not None and device not in RESCUE_DEVICES:
        raise exception.UnsupportedRescueDevice(device=device)
    bus = properties.get("hw_rescue_bus")
    if bus is not None and bus not in RESCUE_BUSES:
        raise exception.UnsupportedRescueBus(bus=bus, virt="libvirt")


class LifecycleAPIMixin:
    """Uses the ComputeAPI's ``conf``, ``db``, ``compute_task_api``,
    ``_scope``, ``_action_values``, ``_rpc``, ``get``, ``_cast`` and
    ``_check_image``."""

    # --- rebuild ------------------------------------------------------

    async def rebuild(self, context, uuid: str, image_href: str,
                      admin_pass: str, fields: dict[str, Any]) -> Instance:
        """Reinstall the server from ``image_href``, keeping its uuid,
        fixed IP and host.  ``fields`` holds what the body changes, each
        only when given: ``name``, ``metadata`` (replaces), ``access_ip_v4``
        / ``v6``, ``disk_config``, ``user_data`` (2.57), ``key_name``
        (2.54; None unsets), ``description`` (2.19),
        ``trusted_image_certificates`` (2.63), ``hostname`` (2.90),
        ``personality`` (before 2.57) and ``preserve_ephemeral``."""
        from twisted_compute.compute.api import (
            _both, check_lock, check_state)
        scope = self._scope(context)
        checks = _both(check_lock(context),
                       check_state("rebuild", REBUILD_VM_STATES))
        instance = await self.get(context, uuid)
        checks(instance)
        self._rpc("rebuild")
        if not instance.host:
            raise exception.InstanceNotReady(instance_id=uuid)
        image_id = _ref_id(image_href)
        try:
            image = await self.db.images.get(image_id, scope)
        except exception.ImageNotFound:
            raise exception.ImageNotFoundForBoot(image_id=image_id) \
                from None
        flavor = _FlavorSizes(instance)
        self._check_image(image, image_id, flavor)
        key = None
        if fields.get("key_name"):
            try:
                key = await self.db.keypairs.get(instance.user_id,
                                                 fields["key_name"])
            except exception.NotFound:
                raise exception.Invalid(
                    f"Invalid key_name provided: key pair "
                    f"{fields['key_name']} not found") from None
        if "metadata" in fields:
            limit = (await self.db.quotas.get_limits(
                self.conf, instance.project_id)).get("metadata_items", -1)
            if limit >= 0 and len(fields["metadata"]) > limit:
                raise exception.MetadataLimitExceeded(allowed=limit)
        orig_image_ref = instance.image_ref

        def values(current: Instance) -> dict[str, Any]:
            new = {"task_state": vm_states.REBUILDING, "image_ref": image.id,
                   "kernel_id": image.properties.get("kernel_id"),
                   "ramdisk_id": image.properties.get("ramdisk_id"),
                   "progress": 0}
            for key_, column in _REBUILD_COLUMNS.items():
                if key_ in fields:
                    new[column] = fields[key_]
            sysmeta = image_system_metadata(current.system_metadata, image)
            if fields.get("disk_config"):
                sysmeta["disk_config"] = fields["disk_config"]
            if "trusted_image_certificates" in fields:
                certs = fields["trusted_image_certificates"]
                if certs:
                    sysmeta["trusted_image_certificates"] = list(certs)
                else:
                    sysmeta.pop("trusted_image_certificates", None)
            new["system_metadata"] = sysmeta
            if "key_name" in fields:
                new["key_name"] = key.name if key is not None else None
                new["key_data"] = key.public_key if key is not None \
                    else None
            return new

        instance = await self._transition(
            context, uuid, project_id=scope, check=checks, values=values,
            action="rebuild", action_values=self._action_values(context))
        if "metadata" in fields:
            await self.db.instances.update_metadata(
                self.conf, uuid, fields["metadata"], project_id=None,
                replace=True)
            instance = await self.get(context, uuid)
        image_meta = await self.db.images.boot_meta(image.id)
        try:
            await maybeDeferred(
                self.compute_task_api.rebuild_instance, context, instance,
                orig_image_ref=orig_image_ref, image=image_meta,
                admin_password=admin_pass,
                injected_files=list(fields.get("personality") or ()),
                preserve_ephemeral=bool(fields.get("preserve_ephemeral")))
        except Exception:
            await self._transition(
                context, uuid, project_id=None, check=None,
                values={"task_state": None})
            raise
        return instance

    # --- rescue -------------------------------------------------------

    async def rescue(self, context, uuid: str, rescue_image_ref: str | None,
                     admin_pass: str) -> Instance:
        """Boot the rescue image with the server's disk attached; the
        server goes to RESCUE.  ``rescue_image_ref`` names the image
        (400 UnsupportedRescueImage when it cannot be found or is a
        volume snapshot, as Nova); without it the agent picks, as Nova's:
        ``[libvirt] rescue_image_id``, else the server's own image.  An
        image with ``hw_rescue_device`` / ``hw_rescue_bus`` gets a stable
        device rescue (2.87: the server's disks stay where they are, the
        rescue disk is attached last and boots first)."""
        from twisted_compute.compute.api import (
            _both, check_lock, check_state)
        instance = await self.get(context, uuid)
        # lock and state first (409), as Nova's decorators, then the image
        _both(check_lock(context),
              check_state("rescue", RESCUE_VM_STATES))(instance)
        sysmeta = instance.system_metadata or {}
        image_meta = None
        if rescue_image_ref:
            try:
                await self.db.images.get(rescue_image_ref,
                                         self._scope(context))
            except exception.ImageNotFound:
                raise exception.UnsupportedRescueImage(
                    image=rescue_image_ref) from None
            image_meta = await self.db.images.boot_meta(rescue_image_ref)
            properties = image_meta.get("properties") or {}
            if properties.get("img_block_device_mapping"):
                # a volume snapshot: there are no volumes to boot it from
                raise exception.UnsupportedRescueImage(
                    image=rescue_image_ref)
        else:
            if not (instance.image_ref
                    or sysmeta.get("image_base_image_ref")):
                raise exception.InstanceNotRescuable(
                    instance_uuid=uuid, reason="it has no image to rescue "
                    "it with; name one with rescue_image_ref")
            properties = {key[len("image_"):]: value
                          for key, value in sysmeta.items()
                          if key.startswith("image_hw_rescue_")}
        check_rescue_properties(properties)
        return await self._cast(
            context, uuid, "rescue", check_state("rescue", RESCUE_VM_STATES),
            vm_states.RESCUING, "rescue_instance",
            rescue_password=admin_pass, rescue_image=image_meta)

    async def unrescue(self, context, uuid: str) -> Instance:
        from twisted_compute.compute.api import check_state
        return await self._cast(
            context, uuid, "unrescue",
            check_state("unrescue", (vm_states.RESCUED,)),
            vm_states.UNRESCUING, "unrescue_instance")

    # --- crash dump, password -----------------------------------------

    async def trigger_crash_dump(self, context, uuid: str) -> Instance:
        """An NMI to the guest (2.17); no task state, as Nova."""
        from twisted_compute.compute.api import (
            _both, check_lock, check_state)
        checks = _both(check_lock(context), check_state(
            "trigger_crash_dump", CRASH_DUMP_VM_STATES))
        instance = await self.get(context, uuid)
        checks(instance)
        rpcapi = self._rpc("trigger_crash_dump")
        if not instance.host:
            raise exception.InstanceNotReady(instance_id=uuid)
        instance = await self._transition(
            context, uuid, project_id=self._scope(context), check=checks,
            values={}, action="trigger_crash_dump",
            action_values=self._action_values(context))
        await maybeDeferred(rpcapi.trigger_crash_dump, context, instance)
        return instance

    async def set_admin_password(self, context, uuid: str,
                                 password: str) -> None:
        """Set the guest's admin password through its agent (a call: the
        answer says whether it worked; 409 when the image has no guest
        agent, as Nova)."""
        from twisted_compute.compute.api import check_state
        await self._cast(
            context, uuid, "changePassword",
            check_state("set_admin_password", PASSWORD_VM_STATES),
            vm_states.UPDATING_PASSWORD, "set_admin_password",
            new_pass=password)

    def _utcnow(self) -> datetime.datetime:
        """Naive UTC now, from the injected clock when there is one."""
        now = self.clock.seconds() if self.clock is not None \
            else time.time()
        return datetime.datetime.fromtimestamp(
            now, datetime.timezone.utc).replace(tzinfo=None)

    # --- deferred delete ----------------------------------------------

    def deferred_delete_enabled(self) -> bool:
        return self.conf.reclaim_instance_interval > 0

    async def soft_delete(self, context, uuid: str) -> bool:
        """DELETE with ``reclaim_instance_interval`` set: the server is
        powered off and stays SOFT_DELETED until restored or reclaimed.
        False when the server cannot be soft deleted (no host yet: it is
        deleted at once, as Nova does)."""
        from twisted_compute.compute.api import _both, check_lock
        instance = await self.get(context, uuid)
        lock = check_lock(context)
        lock(instance)
        if not instance.host or self.compute_rpcapi is None:
            return False
        if instance.vm_state == vm_states.SOFT_DELETED or \
                instance.task_state == vm_states.SOFT_DELETING:
            return True

        def check(current: Instance) -> None:
            if current.task_state is not None:
                raise exception.InstanceInvalidState(
                    action="soft_delete", instance_uuid=uuid,
                    attr="task_state", state=current.task_state)

        instance = await self._transition(
            context, uuid, project_id=self._scope(context),
            check=_both(lock, check),
            values={"task_state": vm_states.SOFT_DELETING,
                    "deleted_at": self._utcnow()},
            action="delete", action_values=self._action_values(context))
        try:
            await maybeDeferred(self.compute_rpcapi.soft_delete_instance,
                                context, instance)
        except Exception:
            await self._transition(
                context, uuid, project_id=None, check=None,
                values={"task_state": None, "deleted_at": None})
            raise
        return True

    async def restore(self, context, uuid: str) -> Instance:
        """Bring a SOFT_DELETED server back.  No quota check: a
        soft-deleted server still counts (its host holds its resources
        until the reclaim, as Nova's placement-based counting sees it)."""
        from twisted_compute.compute.api import (
            _both, check_lock, check_state)
        checks = _both(check_lock(context),
                       check_state("restore", (vm_states.SOFT_DELETED,)))
        instance = await self.get(context, uuid)
        checks(instance)
        if not instance.host or self.compute_rpcapi is None:
            return await self._transition(
                context, uuid, project_id=self._scope(context), check=checks,
                values={"vm_state": vm_states.ACTIVE, "task_state": None,
                        "deleted_at": None},
                action="restore",
                action_values=self._action_values(context))
        instance = await self._transition(
            context, uuid, project_id=self._scope(context), check=checks,
            values={"task_state": vm_states.RESTORING, "deleted_at": None},
            action="restore", action_values=self._action_values(context))
        try:
            await maybeDeferred(self.compute_rpcapi.restore_instance,
                                context, instance)
        except Exception:
            await self._transition(
                context, uuid, project_id=None, check=None,
                values={"task_state": None})
            raise
        return instance

    async def force_delete(self, context, uuid: str) -> None:
        """Delete now, whatever ``reclaim_instance_interval`` says (any
        vm_state; no task may run, as Nova)."""
        from twisted_compute.compute.api import check_lock
        instance = await self.get(context, uuid)
        check_lock(context)(instance)
        if instance.task_state not in (None, vm_states.DELETING):
            raise exception.InstanceInvalidState(
                action="force_delete", instance_uuid=uuid,
                attr="task_state", state=instance.task_state)
        await self.hard_delete(context, uuid)


class _FlavorSizes:
    """The instance's flavor sizes, as ``_check_image`` reads a flavor."""

    def __init__(self, instance: Instance):
        self.memory_mb = instance.memory_mb
        self.root_gb = instance.root_gb
