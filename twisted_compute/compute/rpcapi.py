"""The client side of the compute agent's RPC API (topic ``compute``,
queue ``compute.<host>``), used by the compute API layer and the
conductor.

``ComputeAPIClient(rpc_client)`` wraps a :class:`twisted_compute.rpc.
RPCClient` for topic ``compute`` (or anything with the same
``prepare(server=..., version=..., timeout=...)``, ``cast(context,
method, **kwargs)``, ``call(context, method, **kwargs)`` and
``can_send_version(version)``).  Instances are
:class:`~twisted_compute.objects.instance.Instance` records; they travel
as dicts.  Every method returns a Deferred: casts fire once the message
is handed over, calls with the result.

Rolling upgrades: ``[upgrade_levels] compute`` caps the version this
client sends (the conductors are upgraded first, then the agents).
Under a 1.0 cap, ``build_and_run_instance`` is sent in the form a 1.0
agent reads.
"""

from __future__ import annotations

from typing import Any, Sequence

from twisted.internet import defer

from twisted_compute import exception
from twisted_compute.objects.console import ConsoleInfo
from twisted_compute.objects.instance import Instance
from twisted_compute.objects.request_spec import RequestSpec
from twisted_compute.objects.selection import Selection

TOPIC = "compute"
#: 1.0 - first version
#: 1.1 - ``build_and_run_instance`` takes ``image``,
#:       ``requested_networks``, ``alternates`` (selections) and
#:       ``attempt``; no ``request_spec`` nor ``filter_properties``, and
#:       the instance without its stored request spec: image and flavor
#:       travel once per message
#: 1.2 - ``get_console`` (a call: where a guest's console is)
#: 1.3 - ``get_instance_diagnostics`` (call), ``external_instance_event``
#:       and ``cache_images`` (casts)
#: 1.4 - the move steps (calls): ``prep_resize``, ``resize_instance``,
#:       ``finish_resize``, ``confirm_resize``, ``confirm_resize_dest``,
#:       ``revert_resize``, ``finish_revert_resize``, ``live_migration``
#: 1.5 - ``snapshot_instance``, ``backup_instance``, ``shelve_instance``,
#:       ``shelve_offload_instance``, ``unshelve_instance`` (casts)
#: 1.6 - a server's life on its host: ``rebuild_instance``,
#:       ``rescue_instance``, ``unrescue_instance``,
#:       ``soft_delete_instance``, ``restore_instance``,
#:       ``trigger_crash_dump`` (casts), ``set_admin_password`` (call)
#: 1.7 - evacuation and live-migration control: the move step
#:       ``evacuate_spawn`` (call), ``live_migration_force_complete`` and
#:       ``live_migration_abort`` (casts to the source)
RPC_API_VERSION = "1.7"
#: The move steps (:mod:`twisted_compute.compute.move`), all calls.
MOVE_STEPS = ("prep_resize", "resize_instance", "finish_resize",
              "confirm_resize", "confirm_resize_dest", "revert_resize",
              "finish_revert_resize", "live_migration", "evacuate_spawn")
#: What ``build_and_run_instance`` is sent as (its 1.1 form).
BUILD_VERSION = "1.1"
#: The version of each method newer than 1.0 but build_and_run_instance.
NEW_METHODS = {"get_console": "1.2",
               "get_instance_diagnostics": "1.3",
               "external_instance_event": "1.3",
               "cache_images": "1.3",
               **{step: "1.4" for step in MOVE_STEPS},
               "snapshot_instance": "1.5",
               "backup_instance": "1.5",
               "shelve_instance": "1.5",
               "shelve_offload_instance": "1.5",
               "unshelve_instance": "1.5",
               "rebuild_instance": "1.6", "rescue_instance": "1.6",
               "unrescue_instance": "1.6", "soft_delete_instance": "1.6",
               "restore_instance": "1.6", "trigger_crash_dump": "1.6",
               "set_admin_password": "1.6",
               "evacuate_spawn": "1.7",
               "live_migration_force_complete": "1.7",
               "live_migration_abort": "1.7"}
#: What every method but ``build_and_run_instance`` is sent as.
BASE_VERSION = "1.0"
#: Instance fields left out of a build message (the agent does not use
#: the stored request spec; the image travels as ``image``).
_NOT_SENT = frozenset({"request_spec"})


def parse_version_cap(value: str | None) -> str | None:
    """The RPC version cap an ``[upgrade_levels]`` value means: None
    (the newest this code speaks) for "" or "auto", else the value."""
    value = (value or "").strip()
    if value in ("", "auto"):
        return None
    return value


class ComputeAPIClient:
    def __init__(self, rpc_client, version: str = BASE_VERSION):
        self.client = rpc_client
        self.version = version

    @classmethod
    def for_transport(cls, transport, version_cap: str | None = None
                      ) -> "ComputeAPIClient":
        """A client on ``transport``; ``version_cap`` is an
        ``[upgrade_levels] compute`` value ("", "auto" or a version)."""
        from twisted_compute.rpc import RPCClient
        return cls(RPCClient(transport, TOPIC,
                             version_cap=parse_version_cap(version_cap),
                             version=BASE_VERSION))

    def _prepare(self, host: str | None, timeout: float | None = None,
                 version: str | None = None):
        if not host:
            raise exception.InstanceNotReady(instance_id="(no host)")
        return self.client.prepare(server=host,
                                   version=version or self.version,
                                   timeout=timeout)

    def _cast_to(self, context, instance: Instance, method: str, **kwargs):
        try:
            client = self._prepare(instance.host)
        except exception.ComputeException:
            return defer.fail()
        return client.cast(context, method, instance=instance.to_dict(),
                           **kwargs)

    # --- casts ---------------------------------------------------------

    def build_and_run_instance(self, context, instance: Instance, host: str,
                               request_spec: RequestSpec,
                               alternates: Sequence[Selection] = (),
                               attempt: int = 1,
                               admin_password: str | None = None,
                               injected_files: Sequence[Any] = ()):
        """Ask ``host`` to build ``instance`` (its ``host`` field need not
        be set yet) with the image and networks of ``request_spec``;
        ``alternates`` are the hosts to reschedule to; ``attempt`` counts
        this host (1 for the first)."""
        if self.client.can_send_version(BUILD_VERSION):
            version = BUILD_VERSION
            kwargs = dict(
                instance=instance.to_dict(exclude=_NOT_SENT),
                image=request_spec.image,
                requested_networks=request_spec.requested_networks,
                alternates=[a.to_dict() for a in alternates],
                attempt=attempt, admin_password=admin_password,
                injected_files=list(injected_files))
        else:
            version = BASE_VERSION
            kwargs = self._build_message_1_0(
                instance, request_spec, alternates, attempt,
                admin_password, injected_files)
        try:
            client = self._prepare(host, version=version)
        except exception.ComputeException:
            return defer.fail()
        return client.cast(context, "build_and_run_instance", **kwargs)

    @staticmethod
    def _build_message_1_0(instance: Instance, request_spec: RequestSpec,
                           alternates: Sequence[Selection], attempt: int,
                           admin_password, injected_files
                           ) -> dict[str, Any]:
        """``build_and_run_instance`` as a 1.0 agent reads it: the attempt
        inside the request spec (the agent sends that spec back with
        ``build_failed``), the image and networks beside it too."""
        spec = request_spec.to_dict()
        spec["_attempt"] = attempt
        return dict(
            instance=instance.to_dict(), request_spec=spec,
            filter_properties={"retry": {"num_attempts": attempt}},
            alternates=[a.to_dict() for a in alternates],
            image=request_spec.image or {}, admin_password=admin_password,
            injected_files=list(injected_files),
            requested_networks=request_spec.requested_networks)

    def terminate_instance(self, context, instance, bdms=None):
        return self._cast_to(context, instance, "terminate_instance",
                             bdms=bdms or [])

    def stop_instance(self, context, instance, clean_shutdown: bool = True):
        return self._cast_to(context, instance, "stop_instance",
                             clean_shutdown=clean_shutdown)

    def start_instance(self, context, instance):
        return self._cast_to(context, instance, "start_instance")

    def reboot_instance(self, context, instance, reboot_type: str = "SOFT"):
        return self._cast_to(context, instance, "reboot_instance",
                             reboot_type=reboot_type)

    def pause_instance(self, context, instance):
        return self._cast_to(context, instance, "pause_instance")

    def unpause_instance(self, context, instance):
        return self._cast_to(context, instance, "unpause_instance")

    def suspend_instance(self, context, instance):
        return self._cast_to(context, instance, "suspend_instance")

    def resume_instance(self, context, instance):
        return self._cast_to(context, instance, "resume_instance")

    def _new_method(self, host: str | None, method: str):
        """A client prepared at ``method``'s version (AgentTooOld when the
        ``[upgrade_levels] compute`` cap is older)."""
        version = NEW_METHODS[method]
        if not self.client.can_send_version(version):
            raise exception.ComputeAgentTooOld(method=method,
                                               version=version)
        return self._prepare(host, version=version)

    def _send_new(self, context, host: str | None, method: str,
                  call: bool = False, **kwargs):
        """Cast (or ``call``) ``method`` to ``host`` at its version; a
        failed Deferred when the cap is older or no client can be made."""
        try:
            client = self._new_method(host, method)
        except exception.ComputeException:
            return defer.fail()
        send = client.call if call else client.cast
        return send(context, method, **kwargs)

    def external_instance_event(self, context, host: str,
                                events: Sequence[dict]):
        """Hand external events (``name``, ``server_uuid``, ``status``,
        ``tag``) of instances on ``host`` to its agent."""
        return self._send_new(context, host, "external_instance_event",
                              events=[dict(e) for e in events])

    def cache_images(self, context, host: str, image_ids: Sequence[str]):
        """Ask ``host``'s agent to pre-cache images."""
        return self._send_new(context, host, "cache_images",
                              image_ids=list(image_ids))

    # --- images of servers (1.5) --------------------------------------

    def _cast_new(self, context, instance: Instance, method: str,
                  host: str | None = None, **kwargs):
        return self._send_new(context, host or instance.host, method,
                              instance=instance.to_dict(), **kwargs)

    def snapshot_instance(self, context, instance, image_id: str):
        """Copy the guest's disk into the queued image ``image_id``."""
        return self._cast_new(context, instance, "snapshot_instance",
                              image_id=image_id)

    def backup_instance(self, context, instance, image_id: str,
                        backup_type: str, rotation: int):
        """A snapshot into ``image_id``, then the backups of
        ``backup_type`` beyond ``rotation`` deleted, oldest first."""
        return self._cast_new(context, instance, "backup_instance",
                              image_id=image_id, backup_type=backup_type,
                              rotation=rotation)

    def shelve_instance(self, context, instance, image_id: str,
                        clean_shutdown: bool = True):
        return self._cast_new(context, instance, "shelve_instance",
                              image_id=image_id,
                              clean_shutdown=clean_shutdown)

    def shelve_offload_instance(self, context, instance,
                                clean_shutdown: bool = True):
        return self._cast_new(context, instance, "shelve_offload_instance",
                              clean_shutdown=clean_shutdown)

    def unshelve_instance(self, context, instance, image_id=None,
                          host: str | None = None, node: str | None = None,
                          image: dict | None = None):
        """Start a SHELVED guest again (no ``host``), or boot a
        SHELVED_OFFLOADED one on ``host`` from ``image`` (the shelved
        image's boot metadata)."""
        return self._cast_new(context, instance, "unshelve_instance",
                              host=host, node=node, image=image)

    # --- a server's life on its host (1.6) ----------------------------

    def rebuild_instance(self, context, instance, image=None,
                         admin_password=None, injected_files=(),
                         preserve_ephemeral=False, orig_image_ref=None):
        return self._cast_new(context, instance, "rebuild_instance",
                              image=image, admin_password=admin_password,
                              injected_files=list(injected_files or ()),
                              preserve_ephemeral=bool(preserve_ephemeral),
                              orig_image_ref=orig_image_ref)

    def rescue_instance(self, context, instance, rescue_password=None,
                        rescue_image=None):
        return self._cast_new(context, instance, "rescue_instance",
                              rescue_password=rescue_password,
                              rescue_image=rescue_image)

    def unrescue_instance(self, context, instance):
        return self._cast_new(context, instance, "unrescue_instance")

    def soft_delete_instance(self, context, instance):
        return self._cast_new(context, instance, "soft_delete_instance")

    def restore_instance(self, context, instance):
        return self._cast_new(context, instance, "restore_instance")

    def trigger_crash_dump(self, context, instance):
        return self._cast_new(context, instance, "trigger_crash_dump")

    def live_migration_force_complete(self, context, instance,
                                      migration_id: int):
        """To the migration's source (the instance's host while it
        live-migrates): finish the copy now."""
        return self._cast_new(context, instance,
                              "live_migration_force_complete",
                              migration_id=migration_id)

    def live_migration_abort(self, context, instance, migration_id: int):
        """To the source: cancel the copy; the conductor rolls back."""
        return self._cast_new(context, instance, "live_migration_abort",
                              migration_id=migration_id)

    def set_admin_password(self, context, instance, new_pass):
        """A call: fires once the guest agent took the password (409
        when the guest has no agent)."""
        return self._send_new(context, instance.host, "set_admin_password",
                              call=True, instance=instance.to_dict(),
                              new_pass=new_pass)

    # --- calls ---------------------------------------------------------

    def get_instance_diagnostics(self, context, instance):
        """Fires with the guest's diagnostics (a Diagnostics record)."""
        from twisted_compute.objects.diagnostics import Diagnostics
        d = self._send_new(context, instance.host,
                           "get_instance_diagnostics", call=True,
                           instance=instance.to_dict())
        return d.addCallback(Diagnostics.from_dict)

    def get_console_output(self, context, instance,
                           tail_length: int | None = None):
        """Fires with the console log text of the instance's guest."""
        try:
            client = self._prepare(instance.host)
        except exception.ComputeException:
            return defer.fail()
        return client.call(context, "get_console_output",
                           instance=instance.to_dict(),
                           tail_length=tail_length)

    def get_console(self, context, instance, console_type: str):
        """Fires with the :class:`~twisted_compute.objects.console.
        ConsoleInfo` of the guest's ``console_type`` console (sent as
        1.2; an agent older than that cannot answer: 501)."""
        if not self.client.can_send_version("1.2"):
            return defer.fail(exception.ConsoleNotSupported(
                console_type=console_type,
                driver="capped RPC version of the"))
        try:
            client = self._prepare(instance.host, version="1.2")
        except exception.ComputeException:
            return defer.fail()
        d = client.call(context, "get_console", instance=instance.to_dict(),
                        console_type=console_type)
        d.addCallback(ConsoleInfo.from_dict)
        return d

    # --- move steps (calls with a timeout) ------------------------------

    def move_step(self, context, step: str, host: str, instance,
                  timeout: float, **kwargs):
        """Call move step ``step`` (one of :data:`MOVE_STEPS`) on
        ``host``; fails with the step's error, or a timeout after
        ``timeout`` seconds."""
        if step not in MOVE_STEPS:
            return defer.fail(ValueError(f"not a move step: {step}"))
        try:
            version = NEW_METHODS[step]
            if not self.client.can_send_version(version):
                raise exception.MigrationError(
                    reason=f"the compute RPC version cap is below "
                           f"{version} (moves)")
            client = self._prepare(host, timeout=timeout, version=version)
        except exception.ComputeException:
            return defer.fail()
        return client.call(context, step, instance=instance.to_dict(
            exclude=_NOT_SENT), **kwargs)

