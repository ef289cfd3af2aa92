"""The client side of the compute agent's RPC API (topic ``compute``,
queue ``compute.<host>``), used by the compute API layer and the
conductor.

``ComputeAPIClient(rpc_client)`` wraps a :class:`twisted_compute.rpc.
RPCClient` for topic ``compute`` (or anything with the same
``prepare(server=..., version=..., timeout=...)``, ``cast(context,
method, **kwargs)`` and ``call(context, method, **kwargs)``).  Instances
may be given as :class:`~twisted_compute.objects.instance.Instance`
records or dicts; they travel as dicts.  Every method returns a Deferred:
casts fire once the message is handed over, calls with the result.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

from twisted_compute import exception
from twisted_compute.objects import Record

TOPIC = "compute"
RPC_API_VERSION = "1.0"


def _as_dict(instance) -> dict[str, Any]:
    if isinstance(instance, Record):
        return instance.to_dict()
    return dict(instance)


def _host_of(instance) -> str | None:
    if isinstance(instance, dict):
        return instance.get("host")
    return getattr(instance, "host", None)


class ComputeAPIClient:
    def __init__(self, rpc_client, version: str = RPC_API_VERSION):
        self.client = rpc_client
        self.version = version

    @classmethod
    def for_transport(cls, transport, version_cap: str | None = None
                      ) -> "ComputeAPIClient":
        from twisted_compute.rpc import RPCClient
        return cls(RPCClient(transport, TOPIC, version_cap=version_cap,
                             version=RPC_API_VERSION))

    def _prepare(self, host: str | None, timeout: float | None = None):
        if not host:
            raise exception.InstanceNotReady(instance_id="(no host)")
        return self.client.prepare(server=host, version=self.version,
                                   timeout=timeout)

    def _cast_to(self, context, instance, method: str, **kwargs):
        try:
            client = self._prepare(_host_of(instance))
        except exception.ComputeException:
            return defer.fail()
        return client.cast(context, method, instance=_as_dict(instance),
                           **kwargs)

    # --- casts ---------------------------------------------------------

    def build_and_run_instance(self, context, instance, host: str,
                               request_spec: dict | None = None,
                               filter_properties: dict | None = None,
                               alternates: list | None = None,
                               image: dict | None = None,
                               admin_password: str | None = None,
                               injected_files: list | None = None,
                               requested_networks: Any = None):
        """Ask ``host`` to build ``instance`` (its ``host`` field need not
        be set yet); ``alternates`` are the hosts to reschedule to."""
        try:
            client = self._prepare(host)
        except exception.ComputeException:
            return defer.fail()
        return client.cast(
            context, "build_and_run_instance", instance=_as_dict(instance),
            request_spec=request_spec or {},
            filter_properties=filter_properties or {},
            alternates=alternates or [], image=image or {},
            admin_password=admin_password,
            injected_files=injected_files or [],
            requested_networks=requested_networks)

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

    # --- calls ---------------------------------------------------------

    def get_console_output(self, context, instance,
                           tail_length: int | None = None):
        """Fires with the console log text of the instance's guest."""
        try:
            client = self._prepare(_host_of(instance))
        except exception.ComputeException:
            return defer.fail()
        return client.call(context, "get_console_output",
                           instance=_as_dict(instance),
                           tail_length=tail_length)
