"""The virt driver seam: what the compute agent asks of a hypervisor.

Every method returns a Deferred (a driver may also be written with
``async def`` methods wrapped by ``ensureDeferred``); nothing a driver
does may block the reactor: a libvirt driver runs its libvirt calls in
its own thread pool, ``qemu-img`` with ``spawnProcess``.

Instances are :class:`twisted_compute.objects.instance.Instance` records.
Errors a driver raises are domain exceptions
(:mod:`twisted_compute.exception`): ``InstanceNotFound`` for a guest it
does not have, ``InstancePowerStateTransitionError`` for an action the
guest's power state does not allow, ``InstanceSpawnFailure`` when a guest
could not be created, ``NotImplementedYet`` for what it cannot do.
"""

from __future__ import annotations

import os
import time

import attrs
from zope.interface import Attribute, Interface

from twisted_compute import exception
from twisted_compute.virt import power_state

#: ``reboot_type`` values of :meth:`IComputeDriver.reboot`.
SOFT = "SOFT"
HARD = "HARD"
REBOOT_TYPES = (SOFT, HARD)


@attrs.frozen
class InstanceInfo:
    """What the hypervisor says about one guest."""

    state: int = attrs.field(
        validator=attrs.validators.in_(power_state.ALL_STATES))
    internal_id: str | None = None


#: What a driver supports, in Nova's names, as today's drivers have it.
#: A driver's ``capabilities`` is :func:`driver_capabilities` with what it
#: does differently.
CAPABILITIES = {
    "has_imagecache": False,
    "supports_evacuate": False,
    "supports_migrate_to_same_host": False,
    "supports_attach_interface": False,
    "supports_device_tagging": False,
    "supports_multiattach": False,
    "supports_trusted_certs": False,
    "supports_image_type_raw": True,
    "supports_image_type_qcow2": True,
}


def driver_capabilities(**differences: bool) -> dict[str, bool]:
    """:data:`CAPABILITIES` with ``differences`` (known names only)."""
    unknown = set(differences) - set(CAPABILITIES)
    if unknown:
        raise ValueError("unknown driver capabilities: "
                         + ", ".join(sorted(unknown)))
    return {**CAPABILITIES, **differences}


class IComputeDriver(Interface):
    """A hypervisor, seen from one compute agent host."""

    capabilities = Attribute(
        "dict of what the driver supports, Nova's names: "
        "has_imagecache, supports_evacuate, supports_attach_interface, "
        "supports_device_tagging, supports_multiattach, ... (the keys of "
        "CAPABILITIES, built by driver_capabilities)")

    def init_host(host):
        """Prepare the driver for serving ``host`` (connect to the
        hypervisor, check it).  Fires with None."""

    def get_available_nodes():
        """Fires with the list of hypervisor node names this host
        reports (one for every driver we have)."""

    def get_available_resource(nodename):
        """Fires with the node's resources: a dict with ``vcpus``,
        ``memory_mb``, ``local_gb`` (totals), ``vcpus_used``,
        ``memory_mb_used``, ``local_gb_used`` (what the hypervisor sees
        used), ``hypervisor_type`` (str), ``hypervisor_version`` (int),
        ``hypervisor_hostname`` (the node name), ``cpu_info`` (JSON text)
        and ``running_vms`` (int)."""

    def list_instance_uuids():
        """Fires with the uuids of every guest the hypervisor has."""

    def spawn(context, instance, image_meta, injected_files, admin_password,
              network_info, block_device_info):
        """Create and start the guest of ``instance``; fires with None once
        it runs.  Cancelling the Deferred aborts the build (the guest may
        be left defined: the caller destroys it)."""

    def destroy(context, instance, network_info, block_device_info=None):
        """Stop and remove the guest; a guest the hypervisor does not have
        is not an error."""

    def reboot(context, instance, network_info, reboot_type):
        """Reboot the guest: ``SOFT`` (ask the guest OS; it must be
        running) or ``HARD`` (power cycle, from any state)."""

    def power_off(instance, timeout=0, retry_interval=0):
        """Stop the guest (``timeout`` seconds for a clean shutdown, 0 for
        none)."""

    def power_on(context, instance, network_info):
        """Start a stopped guest."""

    def pause(instance):
        """Pause a running guest (kept in memory)."""

    def unpause(instance):
        """Resume a paused guest."""

    def suspend(context, instance):
        """Suspend the guest to disk."""

    def resume(context, instance, network_info):
        """Resume a suspended guest."""

    def get_info(instance):
        """Fires with the guest's :class:`InstanceInfo`; fails with
        ``InstanceNotFound`` when the hypervisor does not have it."""

    def get_console_output(context, instance):
        """Fires with the guest's console log (bytes)."""

    def get_console(context, instance, console_type):
        """Fires with the :class:`~twisted_compute.objects.console.
        ConsoleInfo` of the guest's ``console_type`` console (``novnc``,
        ``serial``, ...): where the console proxy connects.  Fails with
        ``ConsoleTypeUnavailable`` when the guest has no such device,
        ``ConsoleNotSupported`` when the driver has no such console,
        ``InstanceNotFound`` for a guest it does not have."""

    def snapshot(context, instance, image_id, update_task_state, upload):
        """Copy the guest's disk into the queued image ``image_id``:
        ``update_task_state(task_state, expected_state)`` (a Deferred)
        for ``image_pending_upload`` once the copy is taken and
        ``image_uploading`` before the upload; ``upload(source,
        disk_format, container_format="bare")`` (a Deferred; ``source``
        bytes or a file's path) streams it into the image API.  A
        cancelled Deferred must leave the guest as it found it."""


# Optional hooks a driver may have (the agent looks for them with
# getattr; the fake driver has only the diagnostics):
#
# ``register_event_listener(callback)``
#     Call ``callback(instance_uuid, power_state)`` on the reactor when
#     the hypervisor reports that a guest changed power state by itself
#     (shut down, crashed...); the agent then syncs that instance at once.
# ``get_instance_addresses(instance)``
#     Fires with the instance's ``addresses`` dict (network name -> list
#     of ``{"addr", "version", "OS-EXT-IPS:type",
#     "OS-EXT-IPS-MAC:mac_addr"}``), recorded by the agent after spawn.
# ``age_images()``
#     Periodic: remove unused cached images (drivers with an image cache).
# ``get_instance_numa_topology(instance)``
#     Fires with the guest's NUMA topology (``{"nodes": [...],
#     "pagesize_kb"}``, the shape of GET /servers/{id}/topology) or None;
#     recorded by the agent after spawn.
# ``cache_image(context, image_id)``
#     Fetch an image into the host's image cache ahead of builds; fires
#     with ``"cached"``, ``"existing"`` or ``"error"``.
# ``events_to_wait_for(instance)``
#     The external events (names) a new guest of ``instance`` waits for
#     after spawn (``network-vif-plugged``); the agent waits up to
#     ``vif_plugging_timeout`` seconds when that is above 0.
# ``get_instance_diagnostics(instance)``
#     Fires with the guest's
#     :class:`~twisted_compute.objects.diagnostics.Diagnostics` (the
#     agent answers 501 without it).
# ``rebuild(context, instance, image_meta, injected_files, admin_password, preserve_ephemeral=False)``
#     Reinstall the guest from ``image_meta`` keeping its identity (uuid,
#     MAC, fixed IP); without it the agent destroys and spawns again.
# ``rescue(context, instance, image_meta, rescue_password)`` / ``unrescue(context, instance)``
#     Boot ``image_meta`` with the guest's own disk as its second disk /
#     boot its own disk again (the agent refuses rescue without them).
# ``inject_nmi(instance)``
#     An NMI to the guest (trigger_crash_dump); ``NMINotSupported``.
# ``set_admin_password(instance, new_pass)``
#     Through the guest agent; ``InstanceAgentNotEnabled`` when the guest
#     has none (the agent answers 501 without the hook).

#: ``compute_driver`` values and where each driver lives.
DRIVERS = {
    "fake": "twisted_compute.virt.fake.FakeDriver",
    "libvirt": "twisted_compute.virt.libvirt.driver.LibvirtDriver",
}


def format_uptime(now: float, seconds: float, users: int | None = None,
                  load: tuple[float, float, float] | None = None) -> str:
    """An ``uptime`` line as procps prints it (what Nova's hypervisors
    show, and what the ``openstack`` CLI parses): the time of day (UTC)
    at ``now`` (epoch seconds), how long the host has been up
    (``seconds``), the users logged in and the load averages when
    known."""
    clock = time.strftime("%H:%M:%S", time.gmtime(now))
    minutes = int(seconds) // 60
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    up = f"{days} day{'s' if days != 1 else ''}, " if days else ""
    up += f"{hours:2d}:{minutes:02d}" if hours else f"{minutes} min"
    line = f" {clock} up {up}"
    if users is not None:
        line += f",  {users} user{'s' if users != 1 else ''}"
    if load is not None:
        line += ",  load average: " + ", ".join(f"{v:.2f}" for v in load)
    return line


#: utmp records (glibc, x86_64 and aarch64): 384 bytes, ``ut_type`` first.
_UTMP_RECORD = 384
_USER_PROCESS = 7


def _logged_in_users(utmp: str) -> int | None:
    try:
        with open(utmp, "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    count = 0
    for offset in range(0, len(data) - _UTMP_RECORD + 1, _UTMP_RECORD):
        if int.from_bytes(data[offset:offset + 2], "little") == \
                _USER_PROCESS:
            count += 1
    return count


def host_uptime(now: float, proc: str = "/proc",
                utmp: str = "/var/run/utmp") -> str | None:
    """The local host's uptime line from ``/proc/uptime``,
    ``/proc/loadavg`` and the users of ``utmp`` (None where the uptime
    cannot be read).  Blocking: call it from a driver's thread pool."""
    try:
        with open(os.path.join(proc, "uptime")) as handle:
            seconds = float(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    load = None
    try:
        with open(os.path.join(proc, "loadavg")) as handle:
            fields = handle.read().split()
        load = (float(fields[0]), float(fields[1]), float(fields[2]))
    except (OSError, ValueError, IndexError):
        pass
    return format_uptime(now, seconds, _logged_in_users(utmp) or 0, load)


def load_driver(conf, reactor, host: str | None = None) -> IComputeDriver:
    """The virt driver ``conf.compute_driver`` names, for ``host``
    (default ``conf.host``), using ``reactor`` for time and threads.

    Raises :class:`~twisted_compute.exception.VirtDriverNotAvailable` for
    a driver that does not exist (yet)."""
    name = conf.compute_driver
    host = host or conf.host
    if name == "fake":
        from twisted_compute.virt.fake import FakeDriver
        return FakeDriver(conf, reactor, host=host)
    if name == "libvirt":
        # LibvirtDriver raises VirtDriverNotAvailable itself when the
        # libvirt-python package is missing.
        from twisted_compute.virt.libvirt import driver as libvirt_driver
        return libvirt_driver.LibvirtDriver(conf, reactor, host=host)
    raise exception.VirtDriverNotAvailable(
        driver=name, reason="unknown driver; compute_driver is one of "
                            + ", ".join(sorted(DRIVERS)))
