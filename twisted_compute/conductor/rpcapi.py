"""The client side of the conductor's RPC API (topic ``conductor``).

Used by the API (``schedule_and_build_instances``, a cast) and by the
agents, for which the conductor is the only way to the database.
"""

from __future__ import annotations

from typing import Sequence

from twisted_compute.objects import _encode
from twisted_compute.objects.boot_request import BootRequest
from twisted_compute.objects.instance import Instance
from twisted_compute.objects.selection import Selection
from twisted_compute.rpc.client import RPCClient

TOPIC = "conductor"
#: The newest conductor RPC API this client speaks (see
#: :attr:`twisted_compute.conductor.manager.ConductorManager.
#: RPC_API_VERSION`).
RPC_API_VERSION = "1.8"


def _instance_or_none(values) -> Instance | None:
    return None if values is None else Instance.from_dict(values)


def _instances(values) -> list[Instance]:
    return [Instance.from_dict(v) for v in values]


class ConductorAPIClient:
    """Methods mirror :class:`twisted_compute.conductor.manager.
    ConductorManager`; each returns a Deferred."""

    def __init__(self, transport, timeout: float | None = None):
        self.client = RPCClient(transport, TOPIC,
                                version_cap=RPC_API_VERSION,
                                timeout=timeout)

    # --- builds -------------------------------------------------------

    def schedule_and_build_instances(self, context,
                                     boot_request: BootRequest):
        return self.client.prepare(version="1.2").cast(
            context, "schedule_and_build_instances",
            boot_request=boot_request.to_dict())

    def build_failed(self, context, instance: Instance,
                     alternates: Sequence[Selection], reason: str,
                     attempt: int, image: dict | None,
                     requested_networks=None):
        """The build of ``instance`` (attempt ``attempt``) failed on this
        host: the conductor reschedules it to ``alternates[0]`` with the
        same image and networks, or puts it in ERROR."""
        return self.client.prepare(version="1.2").cast(
            context, "build_failed", instance=instance.to_dict(),
            alternates=[a.to_dict() for a in alternates], reason=reason,
            attempt=attempt, image=image,
            requested_networks=requested_networks)

    # --- moves (1.4) ---------------------------------------------------

    def migrate_server(self, context, instance_uuid: str,
                       flavor: dict | None = None, host: str | None = None):
        """Resize to ``flavor`` (a snapshot) or cold-migrate (None)."""
        return self.client.prepare(version="1.4").cast(
            context, "migrate_server", instance_uuid=instance_uuid,
            flavor=flavor, host=host)

    def live_migrate_instance(self, context, instance_uuid: str,
                              host: str | None = None,
                              block_migration: bool = False,
                              force: bool = False):
        return self.client.prepare(version="1.4").cast(
            context, "live_migrate_instance", instance_uuid=instance_uuid,
            host=host, block_migration=block_migration, force=force)

    def confirm_resize(self, context, migration_id: int):
        return self.client.prepare(version="1.4").cast(
            context, "confirm_resize", migration_id=migration_id)

    def revert_resize(self, context, migration_id: int):
        return self.client.prepare(version="1.4").cast(
            context, "revert_resize", migration_id=migration_id)

    # --- evacuation and live-migration progress (1.8) ------------------

    def evacuate_instance(self, context, instance_uuid: str,
                          host: str | None = None, force: bool = False,
                          admin_password: str | None = None,
                          on_shared_storage: bool | None = None,
                          target_state: str | None = None):
        """Rebuild ``instance_uuid`` (its host down) on ``host`` or where
        the scheduler says (a cast)."""
        return self.client.prepare(version="1.8").cast(
            context, "evacuate_instance", instance_uuid=instance_uuid,
            host=host, force=force, admin_password=admin_password,
            on_shared_storage=on_shared_storage, target_state=target_state)

    def evacuations_from_host(self, context, host: str):
        """The evacuations from ``host`` its agent must clean up (migration
        dicts: id, instance_uuid, dest_compute, status)."""
        return self.client.prepare(version="1.8").call(
            context, "evacuations_from_host", host=host)

    def evacuation_cleaned(self, context, migration_id: int):
        """The source destroyed its guest: the migration is completed."""
        return self.client.prepare(version="1.8").call(
            context, "evacuation_cleaned", migration_id=migration_id)

    def migration_progress(self, context, migration_id: int,
                           counters: dict):
        """A running live migration's memory and disk counters."""
        return self.client.prepare(version="1.8").call(
            context, "migration_progress", migration_id=migration_id,
            counters=counters)

    def unshelve_instance(self, context, instance: Instance,
                          host: str | None = None):
        """Schedule a shelved-offloaded instance again (1.5)."""
        return self.client.prepare(version="1.5").cast(
            context, "unshelve_instance", instance=instance.to_dict(),
            host=host)

    def rebuild_instance(self, context, instance: Instance,
                         orig_image_ref: str | None, image: dict | None,
                         admin_password: str | None, injected_files=(),
                         preserve_ephemeral: bool = False):
        """1.6: rebuild ``instance`` (already in task_state rebuilding,
        its new image written) on its host."""
        return self.client.prepare(version="1.6").cast(
            context, "rebuild_instance", instance=instance.to_dict(),
            orig_image_ref=orig_image_ref, image=image,
            admin_password=admin_password,
            injected_files=list(injected_files or ()),
            preserve_ephemeral=bool(preserve_ephemeral))

    # --- the agents' DB proxy -----------------------------------------

    def instance_update(self, context, instance_uuid, updates,
                        expected_task_state=None, expected_host=None,
                        fetch=True, event=None):
        """Fires with the instance as written (a record), or None with
        ``fetch=False``.  ``expected_host``, ``fetch=False`` and ``event``
        need a 1.1 conductor."""
        kwargs = dict(instance_uuid=instance_uuid, updates=_encode(updates),
                      expected_task_state=expected_task_state)
        if expected_host is None and fetch and event is None:
            d = self.client.call(context, "instance_update", **kwargs)
        else:
            d = self.client.prepare(version="1.1").call(
                context, "instance_update", expected_host=expected_host,
                fetch=fetch, event=event, **kwargs)
        return d.addCallback(_instance_or_none)

    def instances_on_host(self, context, host):
        """Fires with the instances on ``host`` (records)."""
        return self.client.call(context, "instances_on_host",
                                host=host).addCallback(_instances)

    def compute_node_update(self, context, values):
        return self.client.call(context, "compute_node_update",
                                values=values)

    def service_heartbeat(self, context, host, binary, topic):
        return self.client.call(context, "service_heartbeat", host=host,
                                binary=binary, topic=topic)

    # --- the batched reports of many agents (1.7) ---------------------

    def service_heartbeats(self, context, hosts, binary, topic):
        """One heartbeat for every host of ``hosts``."""
        return self.client.prepare(version="1.7").call(
            context, "service_heartbeats", hosts=list(hosts), binary=binary,
            topic=topic)

    def compute_nodes_update(self, context, nodes):
        """The resource reports (``compute_node_update`` values) of many
        nodes."""
        return self.client.prepare(version="1.7").call(
            context, "compute_nodes_update", nodes=list(nodes))

    def instances_on_hosts(self, context, hosts):
        """Fires with ``{host: [Instance, ...]}``."""
        return self.client.prepare(version="1.7").call(
            context, "instances_on_hosts", hosts=list(hosts)).addCallback(
            lambda found: {host: _instances(values)
                           for host, values in found.items()})

    def action_event_start(self, context, instance_uuid, request_id, event,
                           host):
        return self.client.call(
            context, "action_event_start", instance_uuid=instance_uuid,
            request_id=request_id, event=event, host=host)

    def action_event_finish(self, context, instance_uuid, request_id, event,
                            host, result, traceback=None, details=None):
        """``details`` (1.3): a failed event's fault message."""
        if details is None:
            return self.client.call(
                context, "action_event_finish", instance_uuid=instance_uuid,
                request_id=request_id, event=event, host=host,
                result=result, traceback=traceback)
        return self.client.prepare(version="1.3").call(
            context, "action_event_finish", instance_uuid=instance_uuid,
            request_id=request_id, event=event, host=host, result=result,
            traceback=traceback, details=details)

    def instance_fault_create(self, context, instance_uuid, code, message,
                              details, host):
        return self.client.call(
            context, "instance_fault_create", instance_uuid=instance_uuid,
            code=code, message=message, details=details, host=host)

    def instance_destroyed(self, context, instance_uuid):
        return self.client.call(context, "instance_destroyed",
                                instance_uuid=instance_uuid)
