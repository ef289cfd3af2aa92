"""The fake virt driver: guests in memory, for tests and scale runs.

Each :class:`FakeDriver` is one hypervisor host with its own guests, so
hundreds of them can live in one process (one per fake agent).  Time comes
from the injected reactor (``spawn_delay`` is a ``callLater``), failures
can be injected (``fail_spawn``, ``fail_spawn_ratio``) so that reschedules
can be tested, and the guests' power states follow the actions the way a
real hypervisor's do: an action the state does not allow (unpause of a
running guest, resume of one that is not suspended...) fails with
:class:`~twisted_compute.exception.InstancePowerStateTransitionError`.
"""

from __future__ import annotations

import json
import random as random_mod
import uuid as uuidlib

import attrs
from twisted.internet import defer, task
from zope.interface import implementer

from twisted_compute import exception
from twisted_compute.log import Logger
from twisted_compute.objects import vm_states
from twisted_compute.objects.console import ConsoleInfo
from twisted_compute.virt import driver as driver_mod
from twisted_compute.virt import fake_console, power_state
from twisted_compute.virt.driver import REBOOT_TYPES, SOFT, \
    IComputeDriver, InstanceInfo, driver_capabilities

@attrs.define
class FakeGuest:
    """One guest of the fake hypervisor."""

    uuid: str
    name: str
    internal_id: str
    state: int
    vcpus: int
    memory_mb: int
    disk_gb: int
    console: list[str] = attrs.field(factory=list)
    #: Listening ports of its in-process consoles, by console type.
    console_ports: dict = attrs.field(factory=dict)
    #: Its root disk's bytes (what a snapshot uploads).
    disk: bytearray = attrs.field(factory=bytearray)
    #: The image its root disk came from.
    image_id: str | None = None
    #: The disks it boots with, in order: image ids ("rescue:<id>" for a
    #: rescue disk, the root disk's image otherwise).
    disks: list = attrs.field(factory=list)
    #: NMIs injected (trigger_crash_dump), and the last admin password
    #: its guest agent was given.
    nmi_count: int = 0
    admin_password: str | None = None
    #: Whether its image has the QEMU guest agent (hw_qemu_guest_agent).
    guest_agent: bool = False
    #: Its ephemeral disk's bytes (None when its flavor has none); a
    #: rebuild makes a new one unless asked to preserve it.
    ephemeral: bytearray | None = None
    #: Whether the last rebuild kept the ephemeral disk.
    preserved_ephemeral: bool | None = None
    #: (device, bus) of a stable device rescue, None for a legacy one;
    #: whether the rescue had a config drive.
    rescue_device: tuple | None = None
    rescue_config_drive: bool = False


@implementer(IComputeDriver)
class FakeDriver:
    log = Logger()

    capabilities = driver_capabilities()

    hypervisor_type = "fake"
    hypervisor_version = 1000

    def __init__(self, conf, reactor, host: str | None = None, *,
                 vcpus: int | None = None, memory_mb: int | None = None,
                 local_gb: int | None = None,
                 spawn_delay: float | None = None,
                 fail_spawn: bool | None = None,
                 fail_spawn_ratio: float | None = None,
                 random: random_mod.Random | None = None):
        def pick(value, option):
            return option if value is None else value

        options = conf.fake_driver
        self.conf = conf
        self.reactor = reactor
        self.host = host or conf.host
        self.vcpus = pick(vcpus, options.vcpus)
        self.memory_mb = pick(memory_mb, options.memory_mb)
        self.local_gb = pick(local_gb, options.local_gb)
        self.spawn_delay = pick(spawn_delay, options.spawn_delay)
        self.fail_spawn = pick(fail_spawn, options.fail_spawn)
        self.fail_spawn_ratio = pick(fail_spawn_ratio,
                                     options.fail_spawn_ratio)
        self.random = random or random_mod.Random()
        self.guests: dict[str, FakeGuest] = {}
        #: Images pre-cached on this host (cache_image), in order.
        self.cached_images: list[str] = []
        self.initialized = False
        #: When the fake host "booted" (its uptime counts from here).
        self.booted_at = reactor.seconds()
        self.spawn_count = 0
        #: Move steps that fail here (injected), and how long each takes.
        self.fail_move_steps: set[str] = set(
            getattr(options, "fail_move_steps", None) or ())
        self.move_step_delay: float = float(
            getattr(options, "move_step_delay", 0.0) or 0.0)
        #: Per-step delays overriding ``move_step_delay``.
        self.move_step_delays: dict[str, float] = {}
        live = float(getattr(options, "live_migration_delay", -1.0))
        if live >= 0:
            self.move_step_delays["live_migration"] = live
        #: Step names in the order they ran here.
        self.move_steps: list[str] = []
        #: Old guests of resizes on this same host, until confirm/revert.
        self.reverting: dict[str, FakeGuest] = {}

    # --- helpers -------------------------------------------------------

    @property
    def nodename(self) -> str:
        """This host's hypervisor node name (its own, per fake host)."""
        return self.host

    def _now(self) -> float:
        return self.reactor.seconds()

    def _log(self, guest: FakeGuest, text: str) -> None:
        guest.console.append(f"[{self._now():14.6f}] {text}")

    def _guest(self, instance) -> FakeGuest:
        guest = self.guests.get(instance.uuid)
        if guest is None:
            raise exception.InstanceNotFound(instance_id=instance.uuid)
        return guest

    def _transition(self, instance, action: str, allowed, new_state: int,
                    message: str) -> FakeGuest:
        guest = self._guest(instance)
        if guest.state not in allowed:
            raise exception.InstancePowerStateTransitionError(
                action=action, instance_uuid=instance.uuid,
                power_state=power_state.name(guest.state))
        guest.state = new_state
        self._log(guest, message)
        return guest

    def set_power_state(self, uuid: str, state: int) -> None:
        """Change a guest's state behind the agent's back (a guest that
        shuts itself down or crashes), for power-sync tests."""
        guest = self.guests[uuid]
        guest.state = state
        self._log(guest, f"guest is now {power_state.name(state)}")

    # --- IComputeDriver ------------------------------------------------

    def init_host(self, host):
        self.host = host or self.host
        self.initialized = True
        return defer.succeed(None)

    def get_available_nodes(self):
        return defer.succeed([self.nodename])

    def get_available_resource(self, nodename):
        if nodename != self.nodename:
            return defer.fail(exception.HypervisorNotFound(
                hypervisor_id=nodename))
        guests = list(self.guests.values())
        return defer.succeed({
            "vcpus": self.vcpus,
            "memory_mb": self.memory_mb,
            "local_gb": self.local_gb,
            "vcpus_used": sum(g.vcpus for g in guests),
            "memory_mb_used": sum(g.memory_mb for g in guests),
            "local_gb_used": sum(g.disk_gb for g in guests),
            "hypervisor_type": self.hypervisor_type,
            "hypervisor_version": self.hypervisor_version,
            "hypervisor_hostname": self.nodename,
            "cpu_info": json.dumps({
                "arch": "x86_64", "model": "fake", "vendor": "fake",
                "topology": {"sockets": 1, "cores": self.vcpus,
                             "threads": 1},
                "features": []}, sort_keys=True),
            "running_vms": sum(1 for g in guests
                               if g.state == power_state.RUNNING),
            "uptime": driver_mod.format_uptime(
                self.reactor.seconds(),
                self.reactor.seconds() - self.booted_at, 0,
                (0.0, 0.0, 0.0)),
        })

    def list_instance_uuids(self):
        return defer.succeed(list(self.guests))

    def spawn(self, context, instance, image_meta, injected_files,
              admin_password, network_info, block_device_info):
        if instance.uuid in self.guests:
            return defer.fail(exception.InstanceExists(
                name=instance.uuid))
        self.spawn_count += 1
        guest = FakeGuest(
            uuid=instance.uuid, name=instance.instance_name(
                self.conf.instance_name_template),
            internal_id=str(uuidlib.uuid4()), state=power_state.NOSTATE,
            vcpus=instance.vcpus, memory_mb=instance.memory_mb,
            disk_gb=(instance.root_gb or 0) + (instance.ephemeral_gb or 0))
        guest.disk += (f"fake disk of image "
                       f"{(image_meta or {}).get('id')}\n").encode()
        if instance.ephemeral_gb:
            guest.ephemeral = bytearray()
        self._set_image(guest, image_meta)
        self.guests[instance.uuid] = guest
        self._log(guest, f"fake hypervisor {self.nodename}: defining "
                         f"domain {guest.name} for instance {guest.uuid}")
        fails = self.fail_spawn or (
            self.fail_spawn_ratio > 0
            and self.random.random() < self.fail_spawn_ratio)

        def finish():
            if fails:
                # A real hypervisor leaves the domain defined but not
                # running; the caller must destroy it.
                guest.state = power_state.SHUTDOWN
                self._log(guest, "domain failed to start (injected)")
                raise exception.InstanceSpawnFailure(
                    instance_uuid=instance.uuid,
                    reason=f"injected failure on fake host {self.host}")
            guest.state = power_state.RUNNING
            self._log(guest, f"booting instance {guest.uuid} "
                             f"({instance.display_name or guest.name})")
            self._log(guest, f"login: instance {guest.uuid} is up")

        if self.spawn_delay > 0:
            return task.deferLater(self.reactor, self.spawn_delay, finish)
        return defer.maybeDeferred(finish)

    def destroy(self, context, instance, network_info,
                block_device_info=None):
        guest = self.guests.pop(instance.uuid, None)
        if guest is not None:
            guest.state = power_state.NOSTATE
            self._close_consoles(guest)
        return defer.succeed(None)

    def reboot(self, context, instance, network_info, reboot_type):
        try:
            if reboot_type not in REBOOT_TYPES:
                raise exception.InvalidInput(
                    reason=f"reboot_type must be SOFT or HARD, not "
                           f"{reboot_type!r}")
            if reboot_type == SOFT:
                allowed = (power_state.RUNNING,)
            else:
                allowed = power_state.ALL_STATES
            self._transition(instance, f"{reboot_type.lower()} reboot",
                             allowed, power_state.RUNNING,
                             f"{reboot_type.lower()} reboot of instance "
                             f"{instance.uuid}")
        except Exception:
            return defer.fail()
        return defer.succeed(None)

    def _action(self, instance, action, allowed, new_state, message):
        try:
            self._transition(instance, action, allowed, new_state, message)
        except Exception:
            return defer.fail()
        return defer.succeed(None)

    def power_off(self, instance, timeout=0, retry_interval=0):
        guest = self.guests.get(instance.uuid)
        if guest is not None and guest.state == power_state.SHUTDOWN:
            return defer.succeed(None)  # already off, as libvirt's driver
        return self._action(
            instance, "power off",
            (power_state.RUNNING, power_state.PAUSED,
             power_state.SUSPENDED, power_state.CRASHED),
            power_state.SHUTDOWN, "power off: reached target Shutdown")

    def power_on(self, context, instance, network_info):
        return self._action(
            instance, "power on", (power_state.SHUTDOWN, power_state.CRASHED),
            power_state.RUNNING, f"power on: booting instance "
                                 f"{instance.uuid}")

    def pause(self, instance):
        return self._action(instance, "pause", (power_state.RUNNING,),
                            power_state.PAUSED, "guest paused")

    def unpause(self, instance):
        return self._action(instance, "unpause", (power_state.PAUSED,),
                            power_state.RUNNING, "guest unpaused")

    def suspend(self, context, instance):
        return self._action(instance, "suspend",
                            (power_state.RUNNING, power_state.PAUSED),
                            power_state.SUSPENDED, "guest suspended to disk")

    def resume(self, context, instance, network_info):
        return self._action(instance, "resume", (power_state.SUSPENDED,),
                            power_state.RUNNING, "guest resumed")

    def get_info(self, instance):
        try:
            guest = self._guest(instance)
        except Exception:
            return defer.fail()
        return defer.succeed(InstanceInfo(state=guest.state,
                                          internal_id=guest.internal_id))

    def get_console_output(self, context, instance):
        try:
            guest = self._guest(instance)
        except Exception:
            return defer.fail()
        return defer.succeed(
            ("\n".join(guest.console) + "\n").encode("utf-8"))

    def get_console(self, context, instance, console_type):
        """A console answered in process (:mod:`~twisted_compute.virt.
        fake_console`), listening on a port of 127.0.0.1 for as long as
        the guest exists."""
        try:
            guest = self._guest(instance)
            if guest.state != power_state.RUNNING and \
                    guest.state != power_state.PAUSED:
                raise exception.InstanceNotReady(instance_id=instance.uuid)
            if console_type == "novnc":
                factory = fake_console.FakeRFBFactory(guest.name)
            elif console_type == "serial":
                factory = fake_console.SerialEchoFactory(guest.uuid)
            else:
                raise exception.ConsoleNotSupported(
                    console_type=console_type, driver="fake")
            port = guest.console_ports.get(console_type)
            if port is None:
                port = self.reactor.listenTCP(0, factory,
                                              interface="127.0.0.1")
                guest.console_ports[console_type] = port
        except Exception:
            return defer.fail()
        return defer.succeed(ConsoleInfo(
            console_type=console_type, host="127.0.0.1",
            port=port.getHost().port))

    def _close_consoles(self, guest: FakeGuest) -> None:
        for port in guest.console_ports.values():
            port.stopListening()
        guest.console_ports.clear()

    #: Seconds a snapshot takes before its upload (a ``callLater``), and
    #: whether it fails there (for the agent's failure paths).
    snapshot_delay = 0.0
    fail_snapshot = False

    def snapshot(self, context, instance, image_id, update_task_state,
                 upload):
        """Uploads the guest's disk bytes as a raw image; the guest keeps
        its power state."""
        try:
            guest = self._guest(instance)
        except exception.InstanceNotFound:
            return defer.fail()

        async def run():
            await update_task_state(vm_states.IMAGE_PENDING_UPLOAD,
                                    vm_states.IMAGE_SNAPSHOT)
            data = bytes(guest.disk)
            self._log(guest, f"snapshot into image {image_id}: "
                             f"{len(data)} bytes")
            if self.snapshot_delay > 0:
                await task.deferLater(self.reactor, self.snapshot_delay,
                                      lambda: None)
            if self.fail_snapshot:
                raise exception.ImageUploadFailed(
                    image_id=image_id, reason="injected failure")
            await update_task_state(vm_states.IMAGE_UPLOADING,
                                    vm_states.IMAGE_PENDING_UPLOAD)
            await upload(data, "raw")

        return defer.ensureDeferred(run())

    # --- a server's life on its host --------------------------------------

    @staticmethod
    def _set_image(guest: FakeGuest, image_meta) -> None:
        image_meta = image_meta or {}
        guest.image_id = image_meta.get("id")
        guest.disks = [guest.image_id]
        props = image_meta.get("properties") or {}
        guest.guest_agent = str(props.get("hw_qemu_guest_agent", "")
                                ).lower() in ("yes", "true", "1", "on")

    def rebuild(self, context, instance, image_meta, injected_files,
                admin_password, preserve_ephemeral=False):
        """A new root disk from ``image_meta``, the same guest (uuid,
        internal id, consoles) booted again; its ephemeral disk is kept
        when ``preserve_ephemeral``, else a new empty one."""
        try:
            guest = self._guest(instance)
        except Exception:
            return defer.fail()
        guest.state = power_state.SHUTDOWN
        self._set_image(guest, image_meta)
        guest.disk = bytearray(f"fake disk of image {guest.image_id}\n"
                               .encode())
        guest.preserved_ephemeral = bool(preserve_ephemeral)
        if not preserve_ephemeral:
            guest.ephemeral = bytearray() if instance.ephemeral_gb else None
        guest.name = instance.instance_name(self.conf.instance_name_template)
        self._log(guest, f"rebuild: new root disk from image "
                         f"{guest.image_id}")

        def finish():
            guest.state = power_state.RUNNING
            self._log(guest, f"booting instance {guest.uuid} "
                             f"({instance.display_name or guest.name}) "
                             f"from image {guest.image_id}")
        if self.spawn_delay > 0:
            return task.deferLater(self.reactor, self.spawn_delay, finish)
        return defer.maybeDeferred(finish)

    def rescue(self, context, instance, image_meta, rescue_password):
        """Boot ``image_meta`` (empty: the server's own image) with the
        root disk attached: second (legacy), or, when the image (or the
        server's own, for the default) has ``hw_rescue_device`` /
        ``hw_rescue_bus``, last with the rescue disk booting first
        (stable device rescue, recorded in ``rescue_device``)."""
        try:
            guest = self._guest(instance)
        except Exception:
            return defer.fail()
        image_meta = image_meta or {}
        rescue_id = image_meta.get("id") or guest.image_id
        if image_meta.get("id"):
            properties = image_meta.get("properties") or {}
        else:
            properties = {key[len("image_"):]: value for key, value in
                          (instance.system_metadata or {}).items()
                          if key.startswith("image_hw_rescue_")}
        if "hw_rescue_device" in properties or \
                "hw_rescue_bus" in properties:
            device = properties.get("hw_rescue_device") or "disk"
            guest.rescue_device = (device, properties.get(
                "hw_rescue_bus") or ("ide" if device == "cdrom"
                                     else "virtio"))
            guest.disks = [guest.image_id, f"rescue:{rescue_id}"]
        else:
            guest.rescue_device = None
            guest.disks = [f"rescue:{rescue_id}", guest.image_id]
        guest.rescue_config_drive = str(instance.config_drive or "").lower() \
            in ("true", "1", "yes", "on") or self.conf.force_config_drive
        guest.state = power_state.RUNNING
        if rescue_password:
            guest.admin_password = rescue_password
        self._log(guest, f"rescue: booting image {rescue_id}, the root "
                         f"disk attached "
                         f"{'last' if guest.rescue_device else 'second'}")
        return defer.succeed(None)

    def unrescue(self, context, instance):
        try:
            guest = self._guest(instance)
        except Exception:
            return defer.fail()
        guest.disks = [guest.image_id]
        guest.state = power_state.RUNNING
        self._log(guest, "unrescue: booting the root disk again")
        return defer.succeed(None)

    def inject_nmi(self, instance):
        try:
            guest = self._guest(instance)
            if guest.state != power_state.RUNNING:
                raise exception.InstanceNotReady(instance_id=instance.uuid)
        except Exception:
            return defer.fail()
        guest.nmi_count += 1
        self._log(guest, "NMI received: kernel crash dump")
        return defer.succeed(None)

    def set_admin_password(self, instance, new_pass):
        """Through the (fake) guest agent: refused, as libvirt's, when
        the image did not ask for one."""
        try:
            guest = self._guest(instance)
            if not guest.guest_agent:
                raise exception.InstanceAgentNotEnabled(
                    instance_uuid=instance.uuid)
        except Exception:
            return defer.fail()
        guest.admin_password = new_pass
        self._log(guest, "guest agent: admin password changed")
        return defer.succeed(None)

    def cache_image(self, context, image_id: str):
        """Records the image as cached; ``"existing"`` the second time."""
        if image_id in self.cached_images:
            return defer.succeed("existing")
        self.cached_images.append(image_id)
        return defer.succeed("cached")

    def events_to_wait_for(self, instance) -> list[str]:
        """A new guest waits for its NIC's ``network-vif-plugged`` (when
        ``vif_plugging_timeout`` is above 0)."""
        return ["network-vif-plugged"]

    def get_instance_diagnostics(self, instance):
        """Diagnostics of the shape the libvirt driver gives: one vCPU
        entry per vCPU, one disk ``vda``, one NIC ``tap<uuid>`` with a
        MAC from the uuid, the flavor's memory; the counters are zero."""
        from twisted_compute.objects import diagnostics as diag
        try:
            guest = self._guest(instance)
        except Exception:
            return defer.fail()
        hexed = guest.uuid.replace("-", "")
        mac = "fa:16:3e:" + ":".join(hexed[i:i + 2] for i in (0, 2, 4))
        return defer.succeed(diag.Diagnostics(
            state=power_state.name(guest.state), driver="fake",
            hypervisor="fake", hypervisor_os="fake-os",
            cpu_details=tuple(diag.CpuDiagnostics(id=n, time=0)
                              for n in range(max(1, guest.vcpus))),
            disk_details=(diag.DiskDiagnostics(
                name="vda", read_bytes=0, read_requests=0, write_bytes=0,
                write_requests=0, errors_count=0),),
            nic_details=(diag.NicDiagnostics(
                name="tap" + hexed[:11], mac_address=mac, rx_octets=0,
                rx_errors=0, rx_drop=0, rx_packets=0, tx_octets=0,
                tx_errors=0, tx_drop=0, tx_packets=0),),
            memory_maximum=guest.memory_mb, memory_used=guest.memory_mb,
            memory_stats={"maximum": guest.memory_mb * 1024,
                          "actual": guest.memory_mb * 1024}))

    # --- moves (resize, cold migration) ----------------------------------

    def _step(self, name: str, work) -> defer.Deferred:
        """Run a move step after its delay; an injected failure raises
        :class:`~twisted_compute.exception.MigrationError`."""
        def run():
            self.move_steps.append(name)
            if name in self.fail_move_steps:
                raise exception.MigrationError(
                    reason=f"injected failure of {name} on fake host "
                           f"{self.host}")
            return work()

        delay = self.move_step_delays.get(name, self.move_step_delay)
        if delay > 0:
            return task.deferLater(self.reactor, delay, run)
        return defer.maybeDeferred(run)

    def check_move_claim(self, instance) -> defer.Deferred:
        """The destination's driver check before its claim (a hook for
        injected failures of ``prep_resize``)."""
        return self._step("prep_resize", lambda: None)

    def migrate_disk_and_power_off(self, context, instance, dest: str,
                                   flavor, network_info=None,
                                   block_device_info=None, timeout=0,
                                   retry_interval=0):
        def work():
            guest = self._guest(instance)
            guest.state = power_state.SHUTDOWN
            self._log(guest, f"powered off; disk copied to {dest}")
            return None
        return self._step("migrate_disk_and_power_off", work)

    def finish_migration(self, context, migration, instance, disk_info=None,
                         network_info=None, image_meta=None,
                         resize_instance=True, block_device_info=None,
                         power_on=True):
        def work():
            old = self.guests.get(instance.uuid)
            if old is not None:
                # A resize on this same host: the old guest is kept for a
                # revert.
                self.reverting[instance.uuid] = old
            guest = FakeGuest(
                uuid=instance.uuid, name=instance.instance_name(
                    self.conf.instance_name_template),
                internal_id=str(uuidlib.uuid4()),
                state=(power_state.RUNNING if power_on
                       else power_state.SHUTDOWN),
                vcpus=instance.vcpus, memory_mb=instance.memory_mb,
                disk_gb=(instance.root_gb or 0)
                + (instance.ephemeral_gb or 0))
            self.guests[instance.uuid] = guest
            self._log(guest, f"migration finished on {self.host}: "
                             f"{guest.vcpus} vCPUs, {guest.memory_mb} MB")
            return None
        return self._step("finish_migration", work)

    def confirm_migration(self, context, migration, instance,
                          network_info=None):
        def work():
            kept = self.reverting.pop(instance.uuid, None)
            if kept is None:
                self.guests.pop(instance.uuid, None)
            return None
        return self._step("confirm_migration", work)

    def revert_migration(self, context, instance, migration=None):
        """On the destination: throw its copy away (Nova's ``destroy`` in
        ``revert_resize``)."""
        def work():
            kept = self.reverting.pop(instance.uuid, None)
            if kept is not None:
                self.guests[instance.uuid] = kept
            elif (migration or {}).get("source_compute") != self.host:
                self.guests.pop(instance.uuid, None)
            return None
        return self._step("revert_migration", work)

    def finish_revert_migration(self, context, instance, network_info=None,
                                migration=None, block_device_info=None,
                                power_on=True):
        def work():
            guest = self._guest(instance)
            guest.state = (power_state.RUNNING if power_on
                           else power_state.SHUTDOWN)
            self._log(guest, f"revert finished on {self.host}")
            return None
        return self._step("finish_revert_migration", work)

    #: The conductor gets progress reports while a live migration runs.
    reports_live_migration_progress = True
    #: Progress reports of one live migration (its duration is the
    #: ``live_migration`` step's delay).
    live_migration_ticks = 10

    def live_migration(self, context, instance, dest: str,
                       migrate_data=None, progress=None):
        """The memory copy of a live migration (the guest keeps running
        here until the source's cleanup): it takes the step's delay, in
        :attr:`live_migration_ticks` parts, each reported to
        ``progress`` (a callable taking the counters); answers the final
        counters in bytes.  :meth:`live_migration_force_complete` ends it
        at once, :meth:`live_migration_abort` fails it with
        LiveMigrationAborted."""
        try:
            guest = self._guest(instance)
        except Exception:
            return defer.fail()
        memory = guest.memory_mb * 1024 * 1024
        disk = guest.disk_gb * 1024 ** 3 if (migrate_data or {}).get(
            "block_migration") else 0
        delay = self.move_step_delays.get("live_migration",
                                          self.move_step_delay)
        ticks = max(1, int(self.live_migration_ticks))
        state = {"tick": 0, "call": None}
        running = getattr(self, "live_migrations", None)
        if running is None:
            running = self.live_migrations = {}

        def counters(done: float) -> dict[str, int]:
            mem, dsk = int(memory * done), int(disk * done)
            return {"memory_total": memory, "memory_processed": mem,
                    "memory_remaining": memory - mem, "disk_total": disk,
                    "disk_processed": dsk, "disk_remaining": disk - dsk}

        def cancel(d):
            if state["call"] is not None and state["call"].active():
                state["call"].cancel()
            running.pop(instance.uuid, None)

        result: defer.Deferred = defer.Deferred(cancel)

        def finish():
            state["call"] = None
            running.pop(instance.uuid, None)
            self.move_steps.append("live_migration")
            if "live_migration" in self.fail_move_steps:
                result.errback(exception.MigrationError(
                    reason=f"injected failure of live_migration on fake "
                           f"host {self.host}"))
                return
            self._log(guest, f"live migration to {dest}: {memory} bytes")
            result.callback(counters(1.0))

        def tick():
            state["tick"] += 1
            if state["tick"] >= ticks:
                finish()
                return
            if progress is not None:
                progress(counters(state["tick"] / ticks))
            state["call"] = self.reactor.callLater(delay / ticks, tick)

        def force_complete():
            if state["call"] is not None and state["call"].active():
                state["call"].cancel()
            self._log(guest, "live migration forced to complete")
            finish()

        def abort():
            if state["call"] is not None and state["call"].active():
                state["call"].cancel()
            state["call"] = None
            running.pop(instance.uuid, None)
            self._log(guest, "live migration aborted")
            result.errback(exception.LiveMigrationAborted(
                instance_uuid=instance.uuid))

        running[instance.uuid] = (force_complete, abort)
        if progress is not None:
            progress(counters(0.0))
        if delay > 0:
            state["call"] = self.reactor.callLater(delay / ticks, tick)
        else:
            finish()
        return result

    def _running_live_migration(self, instance):
        running = getattr(self, "live_migrations", None) or {}
        found = running.get(instance.uuid)
        if found is None:
            raise exception.MigrationError(
                reason=f"no live migration of {instance.uuid} runs on "
                       f"fake host {self.host}")
        return found

    def live_migration_force_complete(self, instance):
        try:
            self._running_live_migration(instance)[0]()
        except Exception:
            return defer.fail()
        return defer.succeed(None)

    def live_migration_abort(self, instance):
        try:
            self._running_live_migration(instance)[1]()
        except Exception:
            return defer.fail()
        return defer.succeed(None)


__all__ = ["FakeDriver", "FakeGuest"]
