"""The compute API layer: what the API controllers call to create,
change and delete servers.  It writes the DB, enforces quotas and
instance states, records instance actions, and hands work to the
conductor (``compute_task_api``) or to the agents over RPC
(``compute_rpcapi``).  It never calls the virt layer.

What it hands on:

* ``compute_task_api.schedule_and_build_instances(context,
  boot_request)``: a :class:`~twisted_compute.objects.boot_request.
  BootRequest`: the new instances (records in BUILD / scheduling), their
  request spec, the admin password and the injected files (those two are
  never stored).
* ``compute_rpcapi`` (None without a bus): ``stop_instance``,
  ``start_instance``, ``reboot_instance``, ``pause_instance``,
  ``unpause_instance``, ``suspend_instance``, ``resume_instance``,
  ``terminate_instance``, ``get_console_output``, each taking
  ``(context, instance, **kwargs)`` and returning a value or a Deferred.
  Without it, actions that need an agent answer 501 *before* anything is
  written, so no server is left with a task_state nobody will clear.
"""

from __future__ import annotations

import re
import time
import string
from typing import Any, Callable

import attrs
from twisted.internet.defer import maybeDeferred

from twisted_compute import exception, ids
from twisted_compute.compute.api_snapshots import SnapshotAPIMixin
from twisted_compute.log import Logger
from twisted_compute.notifications import NOOP, Publisher
from twisted_compute.objects import vm_states
from twisted_compute.compute.lifecycle_api import LifecycleAPIMixin
from twisted_compute.objects.boot_request import BootRequest
from twisted_compute.objects.instance import Instance
from twisted_compute.objects.request_spec import RequestSpec

#: Characters of generated admin passwords (no look-alikes).
_PASSWORD_CHARS = "".join(c for c in string.ascii_letters + string.digits
                          if c not in "lI1O0o")


def generate_password(length: int = 12) -> str:
    return ids.secret_string(_PASSWORD_CHARS, length)


def generate_reservation_id() -> str:
    alphabet = string.ascii_lowercase + string.digits
    return "r-" + ids.unique_string(alphabet, 8)


class _LazyUUIDs:
    """``uuids[i]``: a new uuid per index, made on first use (a request
    for many servers makes only as many as the quotas let in)."""

    def __init__(self):
        self._made: dict[int, str] = {}

    def __getitem__(self, index: int) -> str:
        if index not in self._made:
            self._made[index] = ids.uuid4_str()
        return self._made[index]


def _ref_id(ref) -> str:
    """The id at the end of a flavor or image reference (an id or a
    link)."""
    return str(ref).rstrip("/").rsplit("/", 1)[-1]


def sanitize_hostname(name: str, default: str) -> str:
    """A DNS label from a display name (Nova's rules: spaces, dots and
    underscores become dashes, other non-word characters go, lower case,
    at most 63 characters)."""
    text = name.encode("latin-1", "ignore").decode("latin-1")[:63]
    text = re.sub(r"[ _.]", "-", text)
    text = re.sub(r"[^\w.-]+", "", text).lower().strip(".-")
    return text or default[:63]


def check_state(action: str, vm_state=None, task_state=(None,)
                ) -> Callable[[Instance], None]:
    """Like Nova's ``check_instance_state``: a check raising 409 when the
    instance is not in one of ``vm_state`` / ``task_state`` (None: any)."""
    def check(instance: Instance) -> None:
        if vm_state is not None and instance.vm_state not in vm_state:
            raise exception.InstanceInvalidState(
                action=action, instance_uuid=instance.uuid,
                attr="vm_state", state=instance.vm_state)
        if task_state is not None and instance.task_state not in task_state:
            raise exception.InstanceInvalidState(
                action=action, instance_uuid=instance.uuid,
                attr="task_state", state=instance.task_state)
    return check


def check_lock(context) -> Callable[[Instance], None]:
    """Locked instances refuse non-admins (409)."""
    def check(instance: Instance) -> None:
        if instance.locked and not context.is_admin:
            raise exception.InstanceIsLocked(instance_uuid=instance.uuid)
    return check


def _both(*checks) -> Callable[[Instance], None]:
    def check(instance: Instance) -> None:
        for one in checks:
            if one is not None:
                one(instance)
    return check


#: Server actions that need an agent: action -> (policy-free description
#: of what is allowed, new task_state, instance action name, rpc method).
POWER_ACTIONS: dict[str, dict[str, Any]] = {
    "stop": {"vm_state": (vm_states.ACTIVE, vm_states.ERROR),
             "task_state": vm_states.POWERING_OFF,
             "rpc": "stop_instance"},
    "start": {"vm_state": (vm_states.STOPPED,),
              "task_state": vm_states.POWERING_ON,
              "rpc": "start_instance"},
    "pause": {"vm_state": (vm_states.ACTIVE,),
              "task_state": vm_states.PAUSING, "rpc": "pause_instance"},
    "unpause": {"vm_state": (vm_states.PAUSED,),
                "task_state": vm_states.UNPAUSING,
                "rpc": "unpause_instance"},
    "suspend": {"vm_state": (vm_states.ACTIVE,),
                "task_state": vm_states.SUSPENDING,
                "rpc": "suspend_instance"},
    "resume": {"vm_state": (vm_states.SUSPENDED,),
               "task_state": vm_states.RESUMING,
               "rpc": "resume_instance"},
}

_REBOOT_TASK_STATES = (
    None, vm_states.REBOOTING, vm_states.REBOOT_PENDING,
    vm_states.REBOOT_STARTED, vm_states.REBOOTING_HARD,
    vm_states.RESUMING, vm_states.UNPAUSING, vm_states.PAUSING,
    vm_states.SUSPENDING)

#: Task states of metadata changes, tags (Nova's lists).
METADATA_VM_STATES = (vm_states.ACTIVE, vm_states.PAUSED,
                      vm_states.SUSPENDED, vm_states.STOPPED)
TAG_VM_STATES = METADATA_VM_STATES + (vm_states.SHELVED,
                                      vm_states.SHELVED_OFFLOADED)


# --- moves ------------------------------------------------------------------

#: vm_states a resize or cold migration may start from (Nova's).
MOVE_VM_STATES = (vm_states.ACTIVE, vm_states.STOPPED)


class MoveAPIMixin:
    """Resize, cold migration, confirm and revert (of :class:`ComputeAPI`):
    state and lock checks (409), the resize's quota growth, the action,
    then a cast to the conductor."""

    async def resize(self, context, uuid: str, flavor_ref: str | None,
                     host: str | None = None) -> Instance:
        """Resize to ``flavor_ref``, or with None cold-migrate (to
        ``host`` when given)."""
        instance = await self.get(context, uuid)
        checks = _both(check_lock(context),
                       check_state("resize" if flavor_ref else "migrate",
                                   MOVE_VM_STATES, (None,)))
        checks(instance)
        if not instance.host:
            raise exception.InstanceNotReady(instance_id=uuid)
        new_flavor = None
        deltas: dict[str, int] = {}
        if flavor_ref is not None:
            try:
                flavor = await self.db.flavors.get_by_flavorid(
                    _ref_id(flavor_ref),
                    None if context.is_admin else context.project_id)
            except exception.NotFound:
                raise exception.Invalid(
                    reason=f"Unable to find flavor {flavor_ref}")
            old = instance.flavor or {}
            if str(flavor.flavorid) == str(old.get("flavorid")):
                raise exception.CannotResizeToSameFlavor()
            if flavor.disabled:
                raise exception.Invalid(reason="Flavor is disabled")
            if int(flavor.root_gb or 0) < int(instance.root_gb or 0) \
                    and int(flavor.root_gb or 0) != 0:
                raise exception.CannotResizeDisk(
                    reason=f"the new flavor's root disk ({flavor.root_gb} "
                           f"GB) is smaller than the server's "
                           f"({instance.root_gb} GB)")
            new_flavor = flavor.snapshot()
            deltas = {"cores": flavor.vcpus - int(instance.vcpus or 0),
                      "ram": flavor.memory_mb - int(instance.memory_mb or 0)}
        action = "resize" if flavor_ref is not None else "migrate"
        migrate = getattr(self.compute_task_api, "migrate_server", None)
        if migrate is None:
            raise exception.ServerActionNotSupported(
                action=action, reason="there is no conductor in this "
                                      "deployment")
        instance = await self.db.migrations.transition_with_quota(
            self.conf, uuid, project_id=self._scope(context), check=checks,
            values={"task_state": vm_states.RESIZE_PREP}, action=action,
            action_values=self._action_values(context), deltas=deltas)
        try:
            await maybeDeferred(migrate, context, uuid, flavor=new_flavor,
                                host=host)
        except Exception:
            await self._transition(
                context, uuid, project_id=None, check=None,
                values={"task_state": None})
            raise
        return instance

    async def live_migrate(self, context, uuid: str, host: str | None,
                           block_migration, force: bool) -> Instance:
        """``os-migrateLive``: an ACTIVE or PAUSED server with no task."""
        instance = await self.get(context, uuid)
        checks = _both(check_lock(context),
                       check_state("live-migration",
                                   (vm_states.ACTIVE, vm_states.PAUSED),
                                   (None,)))
        checks(instance)
        if not instance.host:
            raise exception.InstanceNotReady(instance_id=uuid)
        cast = getattr(self.compute_task_api, "live_migrate_instance", None)
        if cast is None:
            raise exception.ServerActionNotSupported(
                action="os-migrateLive", reason="there is no conductor in "
                                                "this deployment")
        if block_migration == "auto":
            block_migration = False  # no shared storage to detect: none
        instance = await self._transition(
            context, uuid, project_id=self._scope(context), check=checks,
            values={"task_state": vm_states.MIGRATING},
            action="live-migration",
            action_values=self._action_values(context))
        try:
            await maybeDeferred(cast, context, uuid, host=host,
                                block_migration=bool(block_migration),
                                force=bool(force))
        except Exception:
            await self._transition(
                context, uuid, project_id=None, check=None,
                values={"task_state": None})
            raise
        return instance

    async def confirm_resize(self, context, uuid: str) -> None:
        await self._settle(context, uuid, "confirmResize", None,
                           "confirming", "confirm_resize")

    async def revert_resize(self, context, uuid: str) -> None:
        await self._settle(context, uuid, "revertResize",
                           vm_states.RESIZE_REVERTING, "reverting",
                           "revert_resize")

    async def _settle(self, context, uuid, action, task_state, status,
                      method) -> None:
        instance = await self.get(context, uuid)
        checks = _both(check_lock(context),
                       check_state(action, (vm_states.RESIZED,), (None,)))
        checks(instance)
        try:
            migration = await self.db.migrations.begin_settle(
                uuid, project_id=self._scope(context), check=checks,
                values={"task_state": task_state}, action=action,
                action_values=self._action_values(context), status=status)
        except exception.MigrationNotFound:
            raise exception.Invalid(
                reason=f"Instance has not been resized: no migration of "
                       f"{uuid} waits for a {action}")
        await getattr(self.compute_task_api, method)(context, migration.id)

    async def get_migrations(self, filters, limit=None, marker=None):
        return await self.db.migrations.get_all(filters, limit, marker)

    async def live_migration_force_complete(self, context, instance,
                                            migration) -> None:
        """Nova's rules: the server in task_state migrating (409), a live
        migration (400) that is running (409); then a cast to the source,
        whose driver finishes the copy now."""
        self._check_live_running(instance, migration, "force_complete",
                                 ("running",))
        cast = getattr(self.compute_rpcapi, "live_migration_force_complete",
                       None)
        if cast is None:
            raise exception.ComputeAgentUnavailable(
                action="force_complete")
        await maybeDeferred(cast, context, instance, migration.id)

    async def live_migration_abort(self, context, instance, migration,
                                   allowed=("running",)) -> None:
        """Abort (2.24; ``allowed`` adds queued and preparing from 2.65):
        a running copy is cancelled by its source's driver (the
        conductor then rolls back and sets "cancelled"); one not yet
        running is marked cancelled here and the conductor rolls back
        before the copy starts."""
        self._check_live_running(instance, migration, "abort", allowed)
        if migration.status in ("queued", "preparing", "accepted"):
            if await self.db.migrations.set_status_if(
                    migration.id, "cancelled",
                    ("queued", "preparing", "accepted")):
                return
            migration = await self.db.migrations.get(migration.id)
            if migration.status != "running":
                raise exception.InvalidMigrationState(
                    migration_id=migration.id, instance_uuid=instance.uuid,
                    state=migration.status, method="abort")
        cast = getattr(self.compute_rpcapi, "live_migration_abort", None)
        if cast is None:
            raise exception.ComputeAgentUnavailable(action="abort")
        await maybeDeferred(cast, context, instance, migration.id)

    # --- evacuation ---------------------------------------------------

    async def evacuate(self, context, uuid: str, host: str | None,
                       admin_password: str | None, force: bool = False,
                       on_shared_storage: bool | None = None,
                       target_state: str | None = None):
        """Nova's evacuate: ``host`` must be a compute host (404) other
        than the server's (400), the server's own compute service must be
        down (forced down or its heartbeat stale: 400 "still in use"),
        the server ACTIVE, STOPPED or ERROR with no task (409); then the
        migration (type evacuation, accepted) and task_state rebuilding,
        and a cast to the conductor."""
        instance = await self.get(context, uuid)
        checks = _both(check_lock(context), check_state(
            "evacuate", (vm_states.ACTIVE, vm_states.STOPPED,
                         vm_states.ERROR), (None,)))
        if host is not None:
            try:
                await self.db.services.get_by_host_binary(
                    self.conf, host, "nova-compute")
            except exception.NotFound:
                raise exception.ComputeHostNotFound(host=host)
        if instance.host == host:
            raise exception.Invalid(
                reason="The target host can't be the same one.")
        checks(instance)
        if not instance.host:
            raise exception.InstanceNotReady(instance_id=uuid)
        statuses = await self.db.services.host_statuses(
            [instance.host], self.conf.service_down_time)
        if statuses.get(instance.host) in ("UP", "MAINTENANCE"):
            raise exception.ComputeServiceInUse(host=instance.host)
        cast = getattr(self.compute_task_api, "evacuate_instance", None)
        if cast is None:
            raise exception.ServerActionNotSupported(
                action="evacuate", reason="there is no conductor in this "
                                          "deployment")
        migration = await self.db.migrations.begin_evacuate(
            uuid, project_id=self._scope(context), check=checks,
            action_values=self._action_values(context))
        try:
            await maybeDeferred(cast, context, uuid, host=host,
                                force=bool(force),
                                admin_password=admin_password,
                                on_shared_storage=on_shared_storage,
                                target_state=target_state)
        except Exception:
            await self.db.migrations.set_status(
                migration.id, "error", {"task_state": None},
                clear_context=True)
            raise
        return migration

    @staticmethod
    def _check_live_running(instance, migration, method,
                            allowed=("running",)) -> None:
        if instance.task_state != vm_states.MIGRATING:
            raise exception.InstanceInvalidState(
                action=method, instance_uuid=instance.uuid,
                attr="task_state", state=instance.task_state)
        if migration.migration_type != "live-migration":
            raise exception.Invalid(
                reason=f"Migration {migration.id} for instance "
                       f"{instance.uuid} is not a live migration")
        if migration.status not in allowed:
            raise exception.InvalidMigrationState(
                migration_id=migration.id, instance_uuid=instance.uuid,
                state=migration.status, method=method)

    async def get_server_migration(self, context, uuid, migration_id):
        migration = await self.db.migrations.get(int(migration_id))
        if migration.instance_uuid != uuid:
            raise exception.MigrationNotFoundForInstance(
                migration_id=migration_id, instance_id=uuid)
        return migration


class _TakenMeanwhile(Exception):
    """A conductor took an instance the API was about to withdraw."""


class ComputeAPI(MoveAPIMixin, SnapshotAPIMixin, LifecycleAPIMixin):
    log = Logger()
    #: Nova's versioned notifications of the API (``nova-api:<host>``).
    notifier: Publisher = NOOP

    def __init__(self, conf, db_service, compute_task_api,
                 compute_rpcapi=None, clock=None):
        self.conf = conf
        self.db = db_service
        self.compute_task_api = compute_task_api
        #: Time for console token expiry (the reactor, or a Clock).
        self.clock = clock
        #: The agents' RPC client; None without a bus (the API's unit
        #: tests).
        self.compute_rpcapi = compute_rpcapi

    # --- helpers ------------------------------------------------------

    async def _transition(self, context, uuid: str, **kwargs: Any
                          ) -> Instance:
        """:meth:`db.instances.transition`, then Nova's
        ``instance.update`` when it changed the vm or task state."""
        if not self.notifier.enabled:
            return await self.db.instances.transition(uuid, **kwargs)
        values = kwargs["values"]
        before: list[Instance] = []

        def recording(current: Instance) -> dict[str, Any]:
            # Run in the DB thread, in the transaction: the instance as
            # it was just before the write.
            before.append(current)
            return values(current) if callable(values) else values

        kwargs["values"] = recording
        instance = await self.db.instances.transition(uuid, **kwargs)
        if before:
            self.notifier.instance_update(context, before[-1], instance)
        return instance

    @staticmethod
    def _scope(context) -> str | None:
        """The project a caller is confined to (None: admin, any)."""
        return None if context.is_admin else context.project_id

    @staticmethod
    def _action_values(context) -> dict[str, Any]:
        return {"request_id": context.request_id,
                "user_id": context.user_id,
                "project_id": context.project_id}

    def _rpc(self, action: str):
        if self.compute_rpcapi is None:
            raise exception.ComputeAgentUnavailable(action=action)
        return self.compute_rpcapi

    # --- reads --------------------------------------------------------

    async def get(self, context, uuid: str,
                  read_deleted: bool = False) -> Instance:
        """The instance, if the caller may see it (404 otherwise)."""
        return await self.db.instances.get(uuid, self._scope(context),
                                           read_deleted)

    async def get_all(self, context, filters: dict[str, Any],
                      sort_keys=("created_at",), sort_dirs=("desc",),
                      limit: int | None = None,
                      marker: str | None = None,
                      with_spec: bool = False) -> list[Instance]:
        return await self.db.instances.get_all(
            filters, sort_keys, sort_dirs, limit, marker,
            with_spec=with_spec)

    async def server_groups_of(self, uuid: str) -> list[str]:
        return await self.db.server_groups.uuids_of_instance(uuid)

    async def host_statuses(self, hosts) -> dict[str, str]:
        return await self.db.services.host_statuses(
            hosts, self.conf.service_down_time)

    # --- create -------------------------------------------------------

    async def create(self, context, server: dict[str, Any],
                     reservation_id: str | None = None
                     ) -> tuple[list[Instance], str, str]:
        """Create servers from ``server``, a validated, normalised
        ``POST /servers`` body (see :mod:`twisted_compute.api.openstack.
        compute.server_create`), and hand them to the conductor as one
        :class:`BootRequest`; returns (instances, reservation_id,
        admin password).  Quotas (instances, cores, ram, metadata_items,
        server_group_members) are checked in the transaction that inserts
        the rows.  ``reservation_id``: one the caller made beforehand
        (EC2's ClientToken claims it before the rows exist)."""
        reservation_id = reservation_id or generate_reservation_id()
        admin_pass = server.get("admin_pass") or generate_password()
        max_count = server["max_count"]
        # Made as the rows are: quotas may let far fewer than max_count in.
        uuids = _LazyUUIDs()
        name = server["name"]
        multiple = max_count > 1

        def names(index: int) -> str:
            return f"{name}-{index + 1}" if multiple else name

        def hostnames(index: int) -> str:
            if server.get("hostname"):
                return server["hostname"]  # 2.90: as asked for
            return sanitize_hostname(names(index),
                                     f"server-{uuids[index]}")

        scope = self._scope(context)
        conf = self.conf

        zone = server.get("availability_zone")
        image_ref = server.get("image_ref")

        def prepare(flavor, image, zones):
            # In the transaction that creates the rows.
            self._check_flavor(flavor)
            self._check_image(image, image_ref, flavor)
            if zone:
                if zone not in zones:
                    raise exception.InvalidAvailabilityZone()
                chosen = zone
            else:
                chosen = conf.default_schedule_zone or None
            spec = self._request_spec(server, flavor, image, chosen)
            return self._base_values(context, server, flavor, image,
                                     chosen, reservation_id, spec)

        instances = await self.db.instances.create(
            conf, flavorid=_ref_id(server["flavor_ref"]),
            image_id=_ref_id(image_ref) if image_ref else None,
            scope=scope, zone=zone, prepare=prepare,
            project_id=context.project_id, user_id=context.user_id,
            min_count=server["min_count"], max_count=max_count,
            metadata=server.get("metadata") or {},
            tags=server.get("tags") or [],
            key_name=server.get("key_name"),
            group_uuid=(server.get("scheduler_hints") or {}).get("group"),
            uuids=uuids, hostnames=hostnames, names=names,
            action=self._action_values(context))
        # The spec stored with the instances (the group added), and how
        # many instances this request made.
        request_spec = attrs.evolve(
            RequestSpec.from_dict(instances[0].request_spec),
            num_instances=len(instances),
            instance_uuids=tuple(i.uuid for i in instances))
        boot_request = BootRequest(
            instances=tuple(instances), request_spec=request_spec,
            admin_password=admin_pass,
            injected_files=tuple(server.get("personality") or ()))
        try:
            handed = maybeDeferred(
                self.compute_task_api.schedule_and_build_instances,
                context, boot_request)
            if self.clock is not None:
                handed.addTimeout(conf.boot_handoff_timeout, self.clock)
            await handed
        except Exception as error:  # noqa: BLE001 - every error ends here
            self.log.warn("handing {n} instance(s) of {reservation} to "
                          "the conductor failed: {error!r}",
                          n=len(instances), reservation=reservation_id,
                          error=error)
            await self._withdraw(instances, reservation_id)
        return instances, reservation_id, admin_pass

    async def _withdraw(self, instances: list[Instance],
                        reservation_id: str) -> None:
        """The bus did not take a new boot in time: delete its instances
        that no conductor touched yet and answer 503.  A conductor that
        gets the boot later skips deleted instances; one that already
        took them builds them, and the client gets its ids."""
        def untouched(instance: Instance) -> None:
            if (instance.vm_state != vm_states.BUILDING
                    or instance.task_state != vm_states.SCHEDULING
                    or instance.host):
                raise _TakenMeanwhile()
        withdrawn = 0
        for instance in instances:
            try:
                await self.db.instances.soft_delete(
                    instance.uuid, project_id=None, check=untouched)
                withdrawn += 1
            except (_TakenMeanwhile, exception.InstanceNotFound):
                pass
        if withdrawn < len(instances):
            self.log.info("{n} instance(s) of {reservation} reached a "
                          "conductor after all", reservation=reservation_id,
                          n=len(instances) - withdrawn)
            return
        raise exception.ServiceUnavailable(
            reason="the message bus did not accept the new server(s) "
                   "within [DEFAULT] boot_handoff_timeout = "
                   f"{self.conf.boot_handoff_timeout} s; nothing was "
                   "created, try again later")

    @staticmethod
    def _check_flavor(flavor) -> None:
        """``flavor``: the one asked for, None when missing or hidden."""
        if flavor is None or flavor.disabled:
            raise exception.InvalidFlavorRef()

    @staticmethod
    def _check_image(image, image_ref: str | None, flavor) -> None:
        """``image``: the one ``image_ref`` names, None when missing or
        hidden (or none asked for)."""
        if not image_ref:
            return
        image_id = _ref_id(image_ref)
        if image is None:
            raise exception.ImageNotFoundForBoot(image_id=image_id)
        if image.status != "active":
            raise exception.ImageNotActive(image_id=image_id)
        if image.min_ram and flavor.memory_mb < image.min_ram:
            raise exception.FlavorMemoryTooSmall()
        if flavor.root_gb and image.min_disk and \
                flavor.root_gb < image.min_disk:
            raise exception.FlavorDiskTooSmall()
        if flavor.root_gb and image.size and \
                image.size > flavor.root_gb * 1024 ** 3:
            raise exception.FlavorDiskTooSmall()

    @staticmethod
    def _request_spec(request, flavor, image, zone) -> dict[str, Any]:
        """What the scheduler needs; stored with the instance (no
        secrets)."""
        return {
            "flavor": flavor.snapshot(),
            # What the scheduler filters on and the agent downloads by
            # (so the conductor need not read the image again).
            "image": None if image is None else {
                "id": image.id, "name": image.name, "status": image.status,
                "min_ram": image.min_ram,
                "min_disk": image.min_disk, "size": image.size,
                "disk_format": image.disk_format,
                "container_format": image.container_format,
                "checksum": image.checksum,
                "os_hash_algo": image.os_hash_algo,
                "os_hash_value": image.os_hash_value,
                "properties": dict(image.properties)},
            "availability_zone": zone,
            "force_hosts": request.get("force_host"),
            "force_nodes": request.get("force_node"),
            "requested_destination": request.get("requested_destination"),
            "requested_networks": request.get("networks"),
            "security_groups": [g["name"] for g in
                                request.get("security_groups", [])],
            "scheduler_hints": request.get("scheduler_hints") or {},
            "block_device_mapping": request.get("block_device_mapping")
            or [],
            "config_drive": bool(request.get("config_drive")),
        }

    def _base_values(self, context, request, flavor, image, zone,
                     reservation_id, spec) -> dict[str, Any]:
        system_metadata: dict[str, Any] = {
            "disk_config": request.get("disk_config") or "MANUAL",
            "owner_user_name": context.user_name,
            "owner_project_name": context.project_name,
            "boot_roles": ",".join(context.roles),
        }
        if image is not None:
            system_metadata["image_base_image_ref"] = image.id
            for key in ("min_ram", "min_disk", "disk_format",
                        "container_format"):
                system_metadata[f"image_{key}"] = getattr(image, key)
            for key, value in image.properties.items():
                system_metadata[f"image_{key}"] = value
        if request.get("trusted_image_certificates") is not None:
            system_metadata["trusted_image_certificates"] = list(
                request["trusted_image_certificates"])
        return {
            "user_id": context.user_id,
            "project_id": context.project_id,
            "display_description": request.get("description"),
            "availability_zone": zone,
            "image_ref": image.id if image is not None else "",
            "kernel_id": (image.properties.get("kernel_id")
                          if image is not None else None),
            "ramdisk_id": (image.properties.get("ramdisk_id")
                           if image is not None else None),
            "vm_state": vm_states.BUILDING,
            "task_state": vm_states.SCHEDULING,
            "power_state": vm_states.NOSTATE,
            "instance_type_id": flavor.id,
            "memory_mb": flavor.memory_mb,
            "vcpus": flavor.vcpus,
            "root_gb": flavor.root_gb,
            "ephemeral_gb": flavor.ephemeral_gb,
            "flavor": flavor.snapshot(),
            "user_data": request.get("user_data"),
            "config_drive": "True" if request.get("config_drive") else "",
            "reservation_id": reservation_id,
            "access_ip_v4": request.get("access_ip_v4"),
            "access_ip_v6": request.get("access_ip_v6"),
            "addresses": {},
            "security_groups": list(request.get("security_groups") or []),
            "system_metadata": system_metadata,
            "request_spec": spec,
            "locked": False,
            "progress": 0,
        }

    # --- update, delete -----------------------------------------------

    async def update(self, context, uuid: str,
                     values: dict[str, Any]) -> Instance:
        """Change display fields (name, description, access IPs, and the
        hostname from 2.90: the controller passes it only then)."""
        scope = self._scope(context)
        return await self.db.instances.update(uuid, values, scope)

    async def set_pinned_zone(self, context, uuid: str,
                              zone: str | None) -> Instance:
        """2.104: unpin (``zone`` None) or re-pin to the zone the server
        is in (see :func:`twisted_compute.db.instances.set_pinned_zone`)."""
        return await self.db.instances.set_pinned_zone(
            uuid, zone, self._scope(context))

    async def delete(self, context, uuid: str) -> None:
        """``DELETE``: a soft delete when ``reclaim_instance_interval`` is
        set (:meth:`soft_delete`), else :meth:`hard_delete`."""
        if self.deferred_delete_enabled() and \
                await self.soft_delete(context, uuid):
            return
        await self.hard_delete(context, uuid)

    async def hard_delete(self, context, uuid: str) -> None:
        """Delete a server: locally when no agent holds it (no host yet,
        or no compute RPC layer), else mark it ``deleting`` and ask its
        agent to terminate it."""
        scope = self._scope(context)
        lock = check_lock(context)
        instance = await self.get(context, uuid)
        lock(instance)
        if instance.host and self.compute_rpcapi is not None:
            if instance.task_state == vm_states.DELETING:
                return
            instance = await self._transition(
                context, uuid, project_id=scope, check=lock,
                values={"task_state": vm_states.DELETING},
                action="delete", action_values=self._action_values(context))
            try:
                await maybeDeferred(self.compute_rpcapi.terminate_instance,
                                    context, instance, bdms=[])
                return
            except Exception:
                # The agent never got it (the bus refused the cast): delete
                # here, as Nova does when the compute service is down.
                self.log.failure("terminate_instance cast for {uuid} "
                                 "failed; deleting locally", uuid=uuid)
        # As Nova: a server no agent holds is deleted by the API, which
        # sends its delete notifications.
        self.notifier.instance_action(context, instance, "delete", "start")
        await self.db.instances.soft_delete(
            uuid, project_id=scope, check=lock,
            action_values=self._action_values(context))
        self.notifier.instance_action(
            context, attrs.evolve(instance, vm_state=vm_states.DELETED,
                                  task_state=None),
            "delete", "end")

    # --- actions done in the DB ---------------------------------------

    async def lock(self, context, uuid: str,
                   reason: str | None = None) -> Instance:
        scope = self._scope(context)

        def values(instance):
            is_owner = instance.project_id == context.project_id
            return {"locked": True,
                    "locked_by": "owner" if is_owner else "admin",
                    "locked_reason": reason}

        def check(instance):
            if instance.locked and \
                    instance.project_id == context.project_id:
                raise _AlreadyLocked(instance)

        try:
            return await self._transition(
                context, uuid, project_id=scope, check=check,
                values=values, action="lock",
                action_values=self._action_values(context))
        except _AlreadyLocked as already:
            return already.instance

    @staticmethod
    def is_expected_locked_by(context, instance: Instance) -> bool:
        """Whether the lock was taken by the kind of caller ``context``
        is (the owner, or an admin of another project)."""
        is_owner = instance.project_id == context.project_id
        expected = "owner" if is_owner else "admin"
        return instance.locked_by == expected

    async def unlock(self, context, uuid: str) -> Instance:
        return await self._transition(
            context, uuid, project_id=self._scope(context),
            check=None,
            values={"locked": False, "locked_by": None,
                    "locked_reason": None},
            action="unlock", action_values=self._action_values(context))

    async def reset_state(self, context, uuid: str, state: str) -> Instance:
        """Admin: force vm_state (active or error), clearing the task."""
        return await self._transition(
            context, uuid, project_id=None, check=None,
            values={"vm_state": state, "task_state": None},
            action="resetState", action_values=self._action_values(context))

    # --- actions that need an agent -----------------------------------

    async def _cast(self, context, uuid: str, action: str,
                    check: Callable[[Instance], None], task_state: str,
                    rpc_method: str, **rpc_kwargs) -> Instance:
        """Check lock and state, refuse (501) without an agent layer, then
        set the task state, record the action and cast to the agent."""
        scope = self._scope(context)
        checks = _both(check_lock(context), check)
        instance = await self.get(context, uuid)
        checks(instance)
        rpcapi = self._rpc(action)
        if not instance.host:
            raise exception.InstanceNotReady(instance_id=uuid)
        instance = await self._transition(
            context, uuid, project_id=scope, check=checks,
            values={"task_state": task_state}, action=action,
            action_values=self._action_values(context))
        try:
            await maybeDeferred(getattr(rpcapi, rpc_method), context,
                                instance, **rpc_kwargs)
        except Exception:
            # Nothing will clear the task: undo it, then report.
            await self._transition(
                context, uuid, project_id=None, check=None,
                values={"task_state": None})
            raise
        return instance

    async def power_action(self, context, uuid: str, action: str
                           ) -> Instance:
        """``stop``, ``start``, ``pause``, ``unpause``, ``suspend``,
        ``resume``."""
        spec = POWER_ACTIONS[action]
        return await self._cast(
            context, uuid, action, check_state(action, spec["vm_state"]),
            spec["task_state"], spec["rpc"])

    async def reboot(self, context, uuid: str, hard: bool) -> Instance:
        allowed = set(vm_states.ALLOW_SOFT_REBOOT +
                      vm_states.ALLOW_HARD_REBOOT)
        outer = check_state("reboot", allowed, _REBOOT_TASK_STATES)

        def check(instance: Instance) -> None:
            outer(instance)
            if not hard:
                if instance.vm_state not in vm_states.ALLOW_SOFT_REBOOT:
                    raise exception.InstanceInvalidState(
                        action="reboot", instance_uuid=instance.uuid,
                        attr="vm_state", state=instance.vm_state)
                if instance.task_state is not None:
                    raise exception.InstanceInvalidState(
                        action="reboot", instance_uuid=instance.uuid,
                        attr="task_state", state=instance.task_state)
            elif instance.task_state in (vm_states.REBOOTING_HARD,
                                         vm_states.REBOOT_PENDING_HARD,
                                         vm_states.REBOOT_STARTED_HARD):
                raise exception.InstanceInvalidState(
                    action="reboot", instance_uuid=instance.uuid,
                    attr="task_state", state=instance.task_state)

        return await self._cast(
            context, uuid, "reboot", check,
            vm_states.REBOOTING_HARD if hard else vm_states.REBOOTING,
            "reboot_instance", reboot_type="HARD" if hard else "SOFT")

    async def get_console_output(self, context, uuid: str,
                                 length: int | None) -> str:
        instance = await self.get(context, uuid)
        if not instance.host:
            raise exception.InstanceNotReady(instance_id=uuid)
        rpcapi = self._rpc("os-getConsoleOutput")
        output = await maybeDeferred(rpcapi.get_console_output, context,
                                     instance, tail_length=length)
        return output

    # --- remote consoles ----------------------------------------------

    async def get_console(self, context, uuid: str, console_type: str
                          ) -> dict[str, Any]:
        """A console of the instance: the agent says where it is, a token
        is stored for it; fires with ``{"protocol", "type", "url"}``
        (400 for an unknown or disabled type, 501 for one no driver has,
        409 when the server has no console now)."""
        from twisted_compute.compute import consoles
        protocol = consoles.check_type(self.conf, console_type)
        instance = await self.get(context, uuid)
        if not instance.host:
            raise exception.InstanceNotReady(instance_id=uuid)
        check_state(f"get_{protocol}_console", consoles.CONSOLE_VM_STATES,
                    None)(instance)
        if instance.task_state in consoles.NO_CONSOLE_TASK_STATES:
            raise exception.InstanceInvalidState(
                action=f"get_{protocol}_console", instance_uuid=uuid,
                attr="task_state", state=instance.task_state)
        rpcapi = self._rpc("remote-consoles")
        info = await maybeDeferred(rpcapi.get_console, context, instance,
                                   console_type=console_type)
        now = (self.clock.seconds() if self.clock is not None
               else time.time())
        token, _ = await self.db.console_auth_tokens.create(
            uuid, info, self.conf.consoleauth.token_ttl, now)
        return {"protocol": protocol, "type": console_type,
                "url": consoles.access_url(self.conf, console_type, token)}

    async def get_console_connect_info(self, context, token: str):
        """The stored token's record (404 for an unknown or expired
        one)."""
        now = (self.clock.seconds() if self.clock is not None
               else time.time())
        try:
            return await self.db.console_auth_tokens.validate(token, now)
        except exception.InvalidToken:
            raise exception.NotFound("Token not found") from None
    async def get_instance_diagnostics(self, context, instance: Instance):
        """The guest's diagnostics from its agent (409 while the server
        has no host; the agent answers 409 for a guest not running)."""
        if not instance.host:
            raise exception.InstanceNotReady(instance_id=instance.uuid)
        rpcapi = self._rpc("diagnostics")
        return await maybeDeferred(rpcapi.get_instance_diagnostics, context,
                                   instance)

    # --- metadata, tags, password -------------------------------------

    async def update_metadata(self, context, uuid: str,
                              metadata: dict[str, str],
                              replace: bool) -> dict[str, str]:
        check = _both(check_lock(context), check_state(
            "update_instance_metadata", METADATA_VM_STATES))
        return await self.db.instances.update_metadata(
            self.conf, uuid, metadata,
            project_id=self._scope(context), replace=replace, check=check)

    async def delete_metadata(self, context, uuid: str, key: str) -> None:
        check = _both(check_lock(context), check_state(
            "delete_instance_metadata", METADATA_VM_STATES))
        await self.db.instances.delete_metadata(
            uuid, key, project_id=self._scope(context), check=check)

    @staticmethod
    def _tag_check(action: str):
        return check_state(action, TAG_VM_STATES)

    async def set_tags(self, context, uuid: str, tags) -> list[str]:
        return await self.db.instances.set_tags(
            uuid, tags, project_id=self._scope(context),
            check=self._tag_check("update tags"))

    async def add_tag(self, context, uuid: str, tag: str) -> bool:
        return await self.db.instances.add_tag(
            uuid, tag, project_id=self._scope(context),
            check=self._tag_check("update tag"))

    async def delete_tag(self, context, uuid: str, tag: str | None
                         ) -> None:
        await self.db.instances.delete_tag(
            uuid, tag, project_id=self._scope(context),
            check=self._tag_check("delete tag" if tag is not None
                                  else "delete tags"))

    async def clear_password(self, context, uuid: str) -> None:
        await self.db.instances.set_system_metadata(
            uuid, {"password": None}, project_id=self._scope(context))

    # --- instance actions ---------------------------------------------

    async def get_actions(self, context, uuid: str, **kwargs):
        return await self.db.actions.get_all(uuid, **kwargs)

    async def get_action(self, context, uuid: str, request_id: str):
        return await self.db.actions.get(uuid, request_id)


class _AlreadyLocked(Exception):
    def __init__(self, instance):
        super().__init__("already locked")
        self.instance = instance


