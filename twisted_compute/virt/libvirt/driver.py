"""The libvirt virt driver: ``compute_driver = libvirt``.

Guests are libvirt domains on ``[libvirt] connection_uri`` (``kvm`` and
``qemu`` on ``qemu:///system``; ``virt_type = test`` uses libvirt's own
``test:///default`` hypervisor, which keeps domains in memory: the same
code paths, without disks or processes behind them).

Each instance has a directory ``<images_path>/<uuid>`` with ``disk`` (a
qcow2 overlay of the cached image), ``console.log`` (the serial
console), ``disk.config`` (the config drive, when there is one),
``disk.local`` (the flavor's ephemeral disk, when it has one),
``kernel`` / ``ramdisk`` (direct kernel boot) and ``disk.info`` (which
cached images it uses, for the image cache's ageing).

Networking: each guest gets one virtio NIC on the libvirt network
``[libvirt] network`` with a MAC derived from its uuid, and its fixed IP
is reserved in the network's DHCP section before it boots
(:mod:`twisted_compute.virt.libvirt.dhcp`).
:meth:`LibvirtDriver.get_instance_addresses` gives the ``addresses`` the
agent records on the instance.

Every libvirt call runs in the ``libvirt`` thread pool of
:class:`~twisted_compute.virt.libvirt.host.Host`; file system work in the
same pool; ``qemu-img`` as a child process.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
import xml.etree.ElementTree as ET
from typing import Any, Callable

from twisted.internet import defer, task
from twisted.internet.threads import deferToThreadPool
from zope.interface import implementer

from twisted_compute import exception
from twisted_compute.log import Logger
from twisted_compute.objects.console import ConsoleInfo
from twisted_compute.virt import driver as virt_driver
from twisted_compute.virt import power_state
from twisted_compute.virt.driver import HARD, REBOOT_TYPES, \
    IComputeDriver, InstanceInfo, driver_capabilities
from twisted_compute.virt.libvirt import config as vconfig
from twisted_compute.virt.libvirt import imagecache
from twisted_compute.virt.libvirt.moves import LibvirtMovesMixin
from twisted_compute.virt.libvirt.snapshot import Snapshotter
from twisted_compute.virt.libvirt.dhcp import DHCPReservations, mac_address
from twisted_compute.virt.libvirt.host import Host, domain_power_state, \
    libvirt

#: Most bytes of console log returned (as Nova's MAX_CONSOLE_BYTES).
MAX_CONSOLE_BYTES = 100 * 1024

VIR_ERR_NO_DOMAIN = 42

#: The flavor's ephemeral disk in the instance directory (Nova's name).
EPHEMERAL_DISK = "disk.local"



def _not_found(error) -> bool:
    return libvirt is not None and isinstance(error, libvirt.libvirtError) \
        and error.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN


@implementer(IComputeDriver)
class LibvirtDriver(LibvirtMovesMixin):
    log = Logger()

    capabilities = driver_capabilities(has_imagecache=True,
                                       supports_migrate_to_same_host=True)

    def __init__(self, conf, reactor, host: str | None = None, *,
                 http=None, pool=None):
        if libvirt is None:
            raise exception.VirtDriverNotAvailable(
                driver="libvirt", reason="the libvirt-python package is not "
                "installed (pip install 'twisted-compute[libvirt]')")
        self.conf = conf
        self.reactor = reactor
        self.host = host or conf.host
        options = conf.libvirt
        self.virt_type = options.virt_type
        uri = options.connection_uri
        if self.virt_type == "test" and not uri.startswith("test:"):
            uri = "test:///default"
        self.uri = uri
        #: A libvirtd on this host (no host in the URI): its /proc is ours.
        self._local = "://" in uri and uri.split("://", 1)[1].startswith("/")
        self.images_path = options.images_path.replace(
            "$state_path", conf.state_path)
        self.network = options.network
        cpu_mode = options.cpu_mode or (
            "host-model" if self.virt_type == "kvm" else "none")
        self.cpu = vconfig.CPU(mode=cpu_mode,
                               model=options.cpu_model or None)
        self.soft_reboot_wait = options.wait_soft_reboot_seconds
        self.kernel_cmdline = options.default_kernel_cmdline
        self._host = Host(self.uri, reactor, pool=pool,
                          max_threads=options.max_threads)
        self.image_cache = imagecache.ImageCache(
            os.path.join(self.images_path, "_base"), self._image_api(),
            conf.glance.auth_token or None,
            reactor, self._host.pool, http=http,
            response_timeout=conf.glance.image_response_timeout,
            deadline=conf.glance.image_download_deadline)
        self.qemu_img_timeout = conf.libvirt.qemu_img_timeout
        self.snapshots = Snapshotter(self, reactor,
                                     live=options.live_snapshot)
        self.dhcp = DHCPReservations()
        #: Serial console ports handed to guests being built (the live
        #: domains' ports are read from libvirt at each allocation).
        self._serial_ports_reserved: dict[str, int] = {}
        #: Live migrations running from this host, by instance uuid.
        self._live_migrations: dict[str, Any] = {}

    # --- helpers -------------------------------------------------------

    def _image_api(self) -> str:
        servers = self.conf.glance.api_servers
        if servers:
            return servers.split(",")[0].strip()
        listen = self.conf.image_listen
        if listen in ("0.0.0.0", "::", ""):
            listen = "127.0.0.1"
        if ":" in listen:
            listen = f"[{listen}]"
        return f"http://{listen}:{self.conf.image_listen_port}"

    @property
    def nodename(self) -> str:
        return self.host

    def _run(self, func: Callable[..., Any], *args, **kwargs):
        """``func(conn, *args)`` in the libvirt pool."""
        return self._host.run(func, *args, **kwargs)

    def _thread(self, func: Callable[..., Any], *args):
        """Blocking file system work, in the same pool."""
        self._host.start()
        return deferToThreadPool(self.reactor, self._host.pool, func, *args)

    def instance_dir(self, instance_uuid: str) -> str:
        return os.path.join(self.images_path, instance_uuid)

    def console_path(self, instance_uuid: str) -> str:
        return os.path.join(self.instance_dir(instance_uuid), "console.log")

    def _domain_name(self, instance) -> str:
        """The libvirt name of a new domain: ``instance_name_template``
        (a number from the database id) with the uuid appended unless the
        template already names it, so that two deployments sharing one
        libvirtd never define two domains of the same name.  Domains are
        found by uuid, never by name."""
        name = instance.instance_name(self.conf.instance_name_template)
        if instance.uuid and instance.uuid not in name:
            name = f"{name}-{instance.uuid}"
        return name

    @staticmethod
    def _lookup(conn, instance_uuid: str):
        try:
            return conn.lookupByUUIDString(instance_uuid)
        except libvirt.libvirtError as error:
            if _not_found(error):
                raise exception.InstanceNotFound(
                    instance_id=instance_uuid) from None
            raise

    def _ours(self, domain) -> bool:
        """Whether ``domain`` is a guest of this host (its metadata names
        it), so that other domains of the hypervisor are left alone."""
        try:
            text = domain.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT,
                                   vconfig.NAMESPACE, 0)
        except libvirt.libvirtError:
            return False
        try:
            element = ET.fromstring(text)
        except ET.ParseError:
            return False
        host = element.find("{%s}host" % vconfig.NAMESPACE)
        if host is None:
            host = element.find("host")
        return host is not None and host.text == self.host

    def check_host(self) -> None:
        """The start checks (:mod:`.checks`), blocking, on a connection of
        their own: call before the reactor runs.  Raises
        :class:`~.checks.StartCheckFailed` saying what to do."""
        from twisted_compute.virt.libvirt import checks
        from twisted_compute.virt.libvirt.host import _quiet_error_handler
        # errors come back as exceptions, not printed on stderr as well
        libvirt.registerErrorHandler(_quiet_error_handler, None)
        try:
            conn = libvirt.open(self.uri)
        except libvirt.libvirtError as error:
            raise checks.StartCheckFailed(
                f"[libvirt] connection_uri {self.uri}: cannot connect "
                f"({error.get_error_message()}); is libvirtd running "
                f"(systemctl start libvirtd)?") from None
        try:
            checks.run_checks(conn, uri=self.uri, network=self.network,
                              images_path=self.images_path,
                              virt_type=self.virt_type,
                              libvirt_module=libvirt)
        finally:
            conn.close()

    # --- IComputeDriver: host ------------------------------------------

    def init_host(self, host):
        self.host = host or self.host

        def check(conn):
            os.makedirs(self.images_path, mode=0o755, exist_ok=True)
            return conn.getVersion()

        return self._run(check).addCallback(lambda _: None)

    def get_available_nodes(self):
        return defer.succeed([self.nodename])

    def get_available_resource(self, nodename):
        if nodename != self.nodename:
            return defer.fail(exception.HypervisorNotFound(
                hypervisor_id=nodename))
        return self._run(self._resources)

    def _resources(self, conn) -> dict[str, Any]:
        info = conn.getInfo()
        memory_mb = int(info[1])
        vcpus = int(info[2])
        free_mb = int(conn.getFreeMemory() // (1024 * 1024))
        vcpus_used = 0
        running = 0
        for domain in conn.listAllDomains(
                libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
            # Another agent's guests on a shared libvirtd are its own.
            if self._ours(domain):
                vcpus_used += domain.info()[3]
                running += 1
        os.makedirs(self.images_path, mode=0o755, exist_ok=True)
        stat = os.statvfs(self.images_path)
        total_gb = stat.f_frsize * stat.f_blocks // imagecache.GiB
        free_gb = stat.f_frsize * stat.f_bavail // imagecache.GiB
        return {
            "vcpus": vcpus,
            "memory_mb": memory_mb,
            "local_gb": total_gb,
            "vcpus_used": vcpus_used,
            "memory_mb_used": max(0, memory_mb - free_mb),
            "local_gb_used": max(0, total_gb - free_gb),
            "hypervisor_type": ("QEMU" if self.virt_type in ("kvm", "qemu")
                                else conn.getType()),
            "hypervisor_version": int(conn.getVersion()),
            "hypervisor_hostname": self.nodename,
            "cpu_info": json.dumps(self._cpu_info(conn, info),
                                   sort_keys=True),
            "running_vms": running,
            # libvirt has no uptime call: the host's own /proc, as this
            # agent runs next to its libvirtd (qemu:///system).
            "uptime": (virt_driver.host_uptime(time.time())
                       if self._local else None),
        }

    @staticmethod
    def _cpu_info(conn, info) -> dict[str, Any]:
        result = {"arch": info[0], "model": "", "vendor": "",
                  "topology": {"sockets": int(info[5]),
                               "cores": int(info[6]),
                               "threads": int(info[7])},
                  "features": []}
        try:
            cpu = ET.fromstring(conn.getCapabilities()).find("host/cpu")
        except (libvirt.libvirtError, ET.ParseError):
            return result
        if cpu is not None:
            result["arch"] = cpu.findtext("arch") or result["arch"]
            result["model"] = cpu.findtext("model") or ""
            result["vendor"] = cpu.findtext("vendor") or ""
            result["features"] = sorted(
                f.get("name") for f in cpu.findall("feature")
                if f.get("name"))
        return result

    def list_instance_uuids(self):
        def uuids(conn):
            return sorted(d.UUIDString() for d in conn.listAllDomains(0)
                          if self._ours(d))
        return self._run(uuids)

    # --- events --------------------------------------------------------

    def register_event_listener(self, callback) -> None:
        """Optional driver hook: call ``callback(instance_uuid,
        power_state)`` on the reactor when libvirt reports that a guest
        started, stopped, crashed, was paused or suspended.  The event
        loop starts with the first libvirt call."""
        self._host.add_listener(callback)

    # --- spawn ---------------------------------------------------------

    def spawn(self, context, instance, image_meta, injected_files,
              admin_password, network_info, block_device_info):
        return defer.ensureDeferred(self._spawn(
            context, instance, image_meta or {}, injected_files or [],
            admin_password))

    async def _spawn(self, context, instance, image_meta, injected_files,
                     admin_password, preserve_ephemeral: bool = False
                     ) -> None:
        uuid = instance.uuid

        def check_new(conn):
            try:
                conn.lookupByUUIDString(uuid)
            except libvirt.libvirtError as error:
                if _not_found(error):
                    return
                raise
            raise exception.InstanceExists(name=uuid)

        await self._run(check_new)
        directory = self.instance_dir(uuid)
        await self._thread(_prepare_dir, directory,
                           self.console_path(uuid))
        disks: list[vconfig.Disk] = []
        boot = vconfig.OS(
            arch=None if self.virt_type == "test" else platform.machine())
        used_images: dict[str, str] = {}
        try:
            if image_meta.get("id"):
                boot = await self._prepare_disks(instance, image_meta,
                                                 directory, disks, boot,
                                                 used_images)
            if instance.ephemeral_gb:
                disks.append(await self._ephemeral_disk(
                    instance, directory, preserve_ephemeral))
            await self._thread(_write_json,
                               os.path.join(directory, "disk.info"),
                               used_images)
            drive = await self._config_drive(context, instance, image_meta,
                                             injected_files, admin_password,
                                             directory)
            if drive is not None:
                disks.append(vconfig.Disk(
                    source_path=drive, target_dev="hdc", target_bus="ide",
                    device="cdrom", driver_type="raw", cache=None))
            mac = mac_address(uuid)
            await self._run(self.dhcp.reserve, self.network, mac, uuid)
            serial_tcp = None
            if self.conf.serial_console.enabled:
                serial_tcp = await self._allocate_serial_port(uuid)
        except exception.ComputeException:
            self._serial_ports_reserved.pop(uuid, None)
            raise
        except defer.CancelledError:
            self._serial_ports_reserved.pop(uuid, None)
            raise
        except Exception as exc:
            self._serial_ports_reserved.pop(uuid, None)
            raise exception.InstanceSpawnFailure(
                instance_uuid=uuid, reason=str(exc)) from exc
        domain = vconfig.Domain(
            virt_type=self.virt_type, name=self._domain_name(instance),
            uuid=uuid, memory_mb=max(1, instance.memory_mb),
            vcpus=max(1, instance.vcpus), os=boot,
            cpu=None if self.virt_type == "test" else self.cpu,
            sysinfo=vconfig.Sysinfo(serial=uuid, uuid=uuid,
                                    version="twisted-compute"),
            disks=disks,
            interfaces=[vconfig.Interface(network=self.network, mac=mac)],
            serials=[vconfig.SerialLog(self.console_path(uuid),
                                       tcp=serial_tcp)],
            graphics=(vconfig.VNCGraphics(self.conf.vnc.server_listen)
                      if self.conf.vnc.enabled and self.virt_type != "test"
                      else None),
            metadata={"host": self.host, "display_name":
                      instance.display_name or "",
                      "project_id": instance.project_id or ""},
            guest_agent=wants_guest_agent(image_meta))
        xml = vconfig.render(domain)

        def define_and_start(conn):
            guest = conn.defineXML(xml)
            try:
                guest.create()
            except libvirt.libvirtError as error:
                # Left defined: the agent destroys what a failed build
                # leaves behind.
                raise exception.InstanceSpawnFailure(
                    instance_uuid=uuid, reason=str(error)) from None

        try:
            await self._run(define_and_start)
        except libvirt.libvirtError as error:
            raise exception.InstanceSpawnFailure(
                instance_uuid=uuid, reason=str(error)) from None
        finally:
            # Defined (or failed): libvirt's XML now says which port the
            # guest has.
            self._serial_ports_reserved.pop(uuid, None)
        self.log.info("instance {uuid} started as domain {name} on {uri}",
                      uuid=uuid, name=domain.name, uri=self.uri)

    async def _prepare_disks(self, instance, image_meta, directory,
                             disks, boot, used_images) -> vconfig.OS:
        base = await self.image_cache.fetch(image_meta)
        used_images["image"] = image_meta["id"]
        fmt = imagecache.qemu_format(image_meta.get("disk_format"))
        root = os.path.join(directory, "disk")
        await imagecache.create_overlay(self.reactor, base, fmt, root,
                                        instance.root_gb or None,
                                        timeout=self.qemu_img_timeout)
        disks.append(vconfig.Disk(source_path=root, target_dev="vda"))
        properties = image_meta.get("properties") or {}
        kernel_id = properties.get("kernel_id") or instance.kernel_id
        ramdisk_id = properties.get("ramdisk_id") or instance.ramdisk_id
        if not kernel_id:
            return boot
        kernel = await self._fetch_by_id(kernel_id)
        used_images["kernel"] = kernel_id
        kernel_path = os.path.join(directory, "kernel")
        await self._thread(shutil.copyfile, kernel, kernel_path)
        ramdisk_path = None
        if ramdisk_id:
            ramdisk = await self._fetch_by_id(ramdisk_id)
            used_images["ramdisk"] = ramdisk_id
            ramdisk_path = os.path.join(directory, "ramdisk")
            await self._thread(shutil.copyfile, ramdisk, ramdisk_path)
        cmdline = properties.get("os_command_line") or self.kernel_cmdline
        return vconfig.OS(arch=boot.arch, kernel=kernel_path,
                          initrd=ramdisk_path, cmdline=cmdline)

    async def _ephemeral_disk(self, instance, directory: str,
                              keep: bool) -> vconfig.Disk:
        """The flavor's ephemeral disk, ``disk.local`` as ``vdb``: a blank
        qcow2 of ``ephemeral_gb`` GiB (unformatted: the guest formats it),
        or the one already there when ``keep`` (a rebuild with
        ``preserve_ephemeral``)."""
        path = os.path.join(directory, EPHEMERAL_DISK)
        if not (keep and await self._thread(os.path.exists, path)):
            await imagecache.run_qemu_img(
                self.reactor, "create", "-f", "qcow2", path,
                f"{int(instance.ephemeral_gb)}G",
                timeout=self.qemu_img_timeout)
        return vconfig.Disk(source_path=path, target_dev="vdb")

    async def _fetch_by_id(self, image_id: str) -> str:
        image = await self.image_cache.get_image(image_id)
        return await self.image_cache.fetch(image)

    def _wants_config_drive(self, instance) -> bool:
        return self.conf.force_config_drive or str(
            instance.config_drive or "").lower() in ("true", "1", "yes", "on")

    async def _config_drive(self, context, instance, image_meta,
                            injected_files, admin_password,
                            directory) -> str | None:
        """The config drive of ``instance`` when it wants one, built by
        :mod:`twisted_compute.virt.configdrive`."""
        if not self._wants_config_drive(instance):
            return None
        from twisted_compute.virt import configdrive
        path = os.path.join(directory, "disk.config")
        await configdrive.make_drive_for_instance(
            self.conf, self.reactor, instance, path,
            network_info=self._network_info(instance),
            injected_files=injected_files, admin_password=admin_password,
            threadpool=self._host.pool)
        return path

    def _network_info(self, instance) -> list[dict[str, Any]]:
        return [{"id": f"{self.network}-{instance.uuid}",
                 "network": self.network,
                 "mac": mac_address(instance.uuid)}]

    # --- networking ----------------------------------------------------

    def get_instance_addresses(self, instance):
        """Optional driver hook: fires with the instance's ``addresses``
        (``{network: [{"addr", "version", "OS-EXT-IPS:type",
        "OS-EXT-IPS-MAC:mac_addr"}]}``), empty when it has none."""
        mac = mac_address(instance.uuid)

        def addresses(conn):
            ip = self.dhcp.reserved(conn, self.network, mac)
            if ip is None:
                return {}
            return {self.network: [{
                "addr": ip, "version": 4, "OS-EXT-IPS:type": "fixed",
                "OS-EXT-IPS-MAC:mac_addr": mac}]}

        return self._run(addresses)

    # --- destroy -------------------------------------------------------

    def destroy(self, context, instance, network_info,
                block_device_info=None):
        uuid = instance.uuid
        mac = mac_address(uuid)

        def remove(conn):
            try:
                guest = conn.lookupByUUIDString(uuid)
            except libvirt.libvirtError as error:
                if not _not_found(error):
                    raise
            else:
                if guest.isActive():
                    guest.destroy()
                flags = libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                try:
                    guest.undefineFlags(flags)
                except libvirt.libvirtError as error:
                    if not _not_found(error):
                        raise
            self.dhcp.release(conn, self.network, mac)
            shutil.rmtree(self.instance_dir(uuid), ignore_errors=True)

        d = self._run(remove)
        d.addErrback(self._wrap, "destroy", uuid)
        return d

    async def _allocate_serial_port(self, uuid: str) -> tuple[str, int]:
        """``(address, port)`` for the guest's TCP serial console: the
        lowest port of ``[serial_console] port_range`` that no defined
        domain and no guest being built has, and that can be bound on
        ``proxyclient_address`` now (something else may hold it)."""
        address = self.conf.serial_console.proxyclient_address
        low, high = parse_port_range(self.conf.serial_console.port_range)

        def taken(conn):
            ports = set()
            for domain in conn.listAllDomains(0):
                try:
                    xml = domain.XMLDesc(0)
                except libvirt.libvirtError:
                    continue
                ports |= serial_ports(xml)
            return ports

        used = await self._run(taken)
        used |= set(self._serial_ports_reserved.values())
        candidates = [p for p in range(low, high + 1) if p not in used]
        port = await self._thread(_first_bindable, address, candidates)
        if port is None:
            raise exception.ConsolePortRangeExhausted(
                port_range=f"{low}:{high}", instance_uuid=uuid)
        self._serial_ports_reserved[uuid] = port
        return address, port

    @staticmethod
    def _wrap(failure, action: str, uuid: str):
        if libvirt is not None and failure.check(libvirt.libvirtError):
            raise exception.HypervisorError(
                action=action, instance_uuid=uuid,
                reason=failure.getErrorMessage())
        return failure

    # --- power actions -------------------------------------------------

    def _transition(self, instance, action: str, allowed,
                    act: Callable[[Any], Any]):
        """Check the guest's power state against ``allowed`` and do
        ``act(domain)``, in one trip to the pool."""
        uuid = instance.uuid

        def run(conn):
            guest = self._lookup(conn, uuid)
            state = domain_power_state(guest)
            if state not in allowed:
                raise exception.InstancePowerStateTransitionError(
                    action=action, instance_uuid=uuid,
                    power_state=power_state.name(state))
            act(guest)

        d = self._run(run)
        d.addErrback(self._wrap, action, uuid)
        return d

    def reboot(self, context, instance, network_info, reboot_type):
        if reboot_type not in REBOOT_TYPES:
            return defer.fail(exception.InvalidInput(
                reason=f"reboot_type must be SOFT or HARD, not "
                       f"{reboot_type!r}"))
        if reboot_type == HARD:
            return self._hard_reboot(instance)
        return defer.ensureDeferred(self._soft_reboot(instance))

    def _hard_reboot(self, instance):
        def cycle(guest):
            if guest.isActive():
                guest.destroy()
            if guest.hasManagedSaveImage(0):
                guest.managedSaveRemove(0)
            guest.create()

        return self._transition(instance, "hard reboot",
                                power_state.ALL_STATES, cycle)

    async def _soft_reboot(self, instance) -> None:
        """As Nova: ask the guest to shut down, wait for it, start it
        again; a guest that does not shut down in time is hard
        rebooted."""
        await self._transition(instance, "soft reboot",
                               (power_state.RUNNING,),
                               lambda guest: guest.shutdown())
        if await self._wait_for_shutdown(instance, self.soft_reboot_wait):
            await self._transition(instance, "soft reboot",
                                   (power_state.SHUTDOWN,),
                                   lambda guest: guest.create())
            return
        self.log.info("instance {uuid} did not shut down within {wait} s: "
                      "hard reboot", uuid=instance.uuid,
                      wait=self.soft_reboot_wait)
        await self._hard_reboot(instance)

    async def _wait_for_shutdown(self, instance, timeout: float) -> bool:
        deadline = self.reactor.seconds() + timeout
        while True:
            state = (await self.get_info(instance)).state
            if state in (power_state.SHUTDOWN, power_state.CRASHED):
                return True
            if self.reactor.seconds() >= deadline:
                return False
            await task.deferLater(self.reactor, min(
                1.0, max(0.0, deadline - self.reactor.seconds())),
                lambda: None)

    def power_off(self, instance, timeout=0, retry_interval=0):
        return defer.ensureDeferred(self._power_off(instance, timeout))

    async def _power_off(self, instance, timeout) -> None:
        info = await self.get_info(instance)
        if info.state == power_state.SHUTDOWN:
            return  # already off
        if timeout and info.state == power_state.RUNNING:
            await self._transition(instance, "power off",
                                   (power_state.RUNNING,),
                                   lambda guest: guest.shutdown())
            if await self._wait_for_shutdown(instance, timeout):
                return

        def stop(guest):
            if guest.isActive():
                guest.destroy()
            if guest.hasManagedSaveImage(0):
                guest.managedSaveRemove(0)

        await self._transition(
            instance, "power off",
            (power_state.RUNNING, power_state.PAUSED, power_state.SUSPENDED,
             power_state.CRASHED, power_state.SHUTDOWN), stop)

    def power_on(self, context, instance, network_info):
        return self._transition(
            instance, "power on", (power_state.SHUTDOWN, power_state.CRASHED),
            lambda guest: guest.create())

    def pause(self, instance):
        return self._transition(instance, "pause", (power_state.RUNNING,),
                                lambda guest: guest.suspend())

    def unpause(self, instance):
        return self._transition(instance, "unpause", (power_state.PAUSED,),
                                lambda guest: guest.resume())

    def suspend(self, context, instance):
        return self._transition(
            instance, "suspend", (power_state.RUNNING, power_state.PAUSED),
            lambda guest: guest.managedSave(0))

    def resume(self, context, instance, network_info):
        return self._transition(instance, "resume",
                                (power_state.SUSPENDED,),
                                lambda guest: guest.create())

    # --- info ----------------------------------------------------------

    def get_info(self, instance):
        uuid = instance.uuid

        def info(conn):
            guest = self._lookup(conn, uuid)
            internal = guest.ID()
            return InstanceInfo(
                state=domain_power_state(guest),
                internal_id=str(internal) if internal >= 0 else guest.name())

        d = self._run(info)
        d.addErrback(self._wrap, "get info of", uuid)
        return d

    def get_console_output(self, context, instance):
        uuid = instance.uuid
        path = self.console_path(uuid)

        def tail(conn):
            try:
                with open(path, "rb") as handle:
                    handle.seek(0, os.SEEK_END)
                    size = handle.tell()
                    handle.seek(max(0, size - MAX_CONSOLE_BYTES))
                    return handle.read()
            except FileNotFoundError:
                self._lookup(conn, uuid)  # InstanceNotFound if gone
                return b""

        return self._run(tail)

    def get_console(self, context, instance, console_type):
        """Where the guest's VNC server or TCP serial port is, read from
        the live domain XML (the VNC port is chosen by libvirt at
        start)."""
        uuid = instance.uuid
        if console_type not in ("novnc", "serial"):
            return defer.fail(exception.ConsoleNotSupported(
                console_type=console_type, driver="libvirt"))

        def find(conn):
            domain = self._lookup(conn, uuid)
            return console_address(self.conf, domain.XMLDesc(0),
                                   console_type, uuid)

        return self._run(find)

    def snapshot(self, context, instance, image_id, update_task_state,
                 upload):
        """See :mod:`twisted_compute.virt.libvirt.snapshot`."""
        return self.snapshots.snapshot(context, instance, image_id,
                                       update_task_state, upload)

    @property
    def io_pool(self):
        """The pool the agent reads snapshot files in (this driver's)."""
        self._host.start()
        return self._host.pool

    # --- a server's life on its host -----------------------------------

    def rebuild(self, context, instance, image_meta, injected_files,
                admin_password, preserve_ephemeral=False):
        """Destroy the domain and its disks, keep its fixed IP (the DHCP
        reservation of its MAC) and its console log, and spawn it again
        from ``image_meta``: a new overlay, the same uuid, name and MAC,
        a new config drive with the new image and user data.  With
        ``preserve_ephemeral`` the ephemeral disk (``disk.local``) stays
        as it is; only the root disk is made again."""
        return defer.ensureDeferred(self._rebuild(
            context, instance, image_meta or {}, injected_files or [],
            admin_password, bool(preserve_ephemeral)))

    async def _rebuild(self, context, instance, image_meta, injected_files,
                       admin_password, preserve_ephemeral: bool) -> None:
        uuid = instance.uuid
        directory = self.instance_dir(uuid)

        def undefine(conn):
            try:
                guest = conn.lookupByUUIDString(uuid)
            except libvirt.libvirtError as error:
                if not _not_found(error):
                    raise
                return
            if guest.isActive():
                guest.destroy()
            try:
                guest.undefineFlags(
                    libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE)
            except libvirt.libvirtError as error:
                if not _not_found(error):
                    raise

        try:
            await self._run(undefine)
        except libvirt.libvirtError as error:
            raise exception.HypervisorError(
                action="rebuild", instance_uuid=uuid,
                reason=error.get_error_message()) from None
        await self._thread(_remove_disks, directory,
                           (EPHEMERAL_DISK,) if preserve_ephemeral else ())
        await self._spawn(context, instance, image_meta, injected_files,
                          admin_password, preserve_ephemeral)

    def rescue(self, context, instance, image_meta, rescue_password):
        """Boot the rescue image (a new overlay, ``disk.rescue``) with the
        server's own disk attached; the domain's XML is kept in
        ``unrescue.xml`` for :meth:`unrescue`.

        ``image_meta`` empty: ``[libvirt] rescue_image_id``, else the
        server's own (base) image, as Nova's.  An image with
        ``hw_rescue_device`` / ``hw_rescue_bus`` gets a stable device
        rescue: every disk of the server stays where it is and the rescue
        disk is attached last, on that bus, booting first (boot order 1);
        otherwise the legacy one: the rescue disk is ``vda`` and the
        server's root disk ``vdb`` (its other disks left out).  A server
        with a config drive gets a rescue config drive
        (``disk.config.rescue``, with the rescue password)."""
        return defer.ensureDeferred(self._rescue(
            context, instance, image_meta or {}, rescue_password))

    async def _rescue(self, context, instance, image_meta,
                      rescue_password) -> None:
        uuid = instance.uuid
        directory = self.instance_dir(uuid)
        rescue_disk = os.path.join(directory, "disk.rescue")
        saved = os.path.join(directory, "unrescue.xml")
        sysmeta = instance.system_metadata or {}
        if not image_meta.get("id"):
            image_id = (self.conf.libvirt.rescue_image_id
                        or sysmeta.get("image_base_image_ref")
                        or instance.image_ref)
            if not image_id:
                raise exception.InstanceNotRescuable(
                    instance_uuid=uuid, reason="no rescue image")
            image_meta = await self.image_cache.get_image(image_id)
        properties = image_meta.get("properties") or {}
        stable = rescue_device(properties)
        base = await self.image_cache.fetch(image_meta)
        fmt = imagecache.qemu_format(image_meta.get("disk_format"))
        await self._thread(_remove_file, rescue_disk)
        await imagecache.create_overlay(
            self.reactor, base, fmt, rescue_disk,
            None if stable else (instance.root_gb or None),
            timeout=self.qemu_img_timeout)
        kernel = initrd = cmdline = None
        kernel_id = properties.get("kernel_id") or \
            self.conf.libvirt.rescue_kernel_id
        ramdisk_id = properties.get("ramdisk_id") or \
            self.conf.libvirt.rescue_ramdisk_id
        if kernel_id:
            kernel = os.path.join(directory, "kernel.rescue")
            await self._thread(shutil.copyfile,
                               await self._fetch_by_id(kernel_id), kernel)
            cmdline = properties.get("os_command_line") or \
                self.kernel_cmdline
            if ramdisk_id:
                initrd = os.path.join(directory, "ramdisk.rescue")
                await self._thread(shutil.copyfile, await self._fetch_by_id(
                    ramdisk_id), initrd)
        drive = None
        if self._wants_config_drive(instance):
            from twisted_compute.virt import configdrive
            drive = os.path.join(directory, "disk.config.rescue")
            await configdrive.make_drive_for_instance(
                self.conf, self.reactor, instance, drive,
                network_info=self._network_info(instance),
                injected_files=[], admin_password=rescue_password,
                threadpool=self._host.pool)

        def swap(conn):
            guest = self._lookup(conn, uuid)
            xml = guest.XMLDesc(0)
            if not os.path.exists(saved):
                with open(saved, "w", encoding="utf-8") as handle:
                    handle.write(xml)
            else:
                with open(saved, encoding="utf-8") as handle:
                    xml = handle.read()
            if stable is not None:
                rescue_xml = stable_rescue_domain_xml(
                    xml, rescue_disk, *stable, kernel, initrd, cmdline)
            else:
                rescue_xml = rescue_domain_xml(xml, rescue_disk, kernel,
                                               initrd, cmdline)
            if drive is not None:
                rescue_xml = _swap_config_drive(rescue_xml, drive)
            if guest.isActive():
                guest.destroy()
            conn.defineXML(rescue_xml).create()

        d = self._run(swap)
        d.addErrback(self._wrap, "rescue", uuid)
        await d

    def unrescue(self, context, instance):
        uuid = instance.uuid
        directory = self.instance_dir(uuid)
        saved = os.path.join(directory, "unrescue.xml")

        def restore(conn):
            guest = self._lookup(conn, uuid)
            try:
                with open(saved, encoding="utf-8") as handle:
                    xml = handle.read()
            except FileNotFoundError:
                raise exception.InstanceInvalidState(
                    action="unrescue", instance_uuid=uuid,
                    attr="domain", state="not rescued") from None
            if guest.isActive():
                guest.destroy()
            conn.defineXML(xml).create()
            os.remove(saved)
            for name in ("disk.rescue", "kernel.rescue", "ramdisk.rescue",
                         "disk.config.rescue"):
                _remove_file(os.path.join(directory, name))

        d = self._run(restore)
        d.addErrback(self._wrap, "unrescue", uuid)
        return d

    def inject_nmi(self, instance):
        """An NMI to the guest (``virDomainInjectNMI``)."""
        uuid = instance.uuid

        def nmi(conn):
            guest = self._lookup(conn, uuid)
            if not guest.isActive():
                raise exception.InstanceNotReady(instance_id=uuid)
            try:
                guest.injectNMI(0)
            except libvirt.libvirtError as error:
                if error.get_error_code() == libvirt.VIR_ERR_NO_SUPPORT:
                    raise exception.NMINotSupported() from None
                raise

        d = self._run(nmi)
        d.addErrback(self._wrap, "trigger_crash_dump", uuid)
        return d

    def set_admin_password(self, instance, new_pass):
        """Through the QEMU guest agent (``virDomainSetUserPassword``):
        only a guest whose domain has the agent's channel (its image's
        ``hw_qemu_guest_agent=yes``); the user is the image's
        ``os_admin_user``, else root (Administrator on Windows)."""
        uuid = instance.uuid
        sysmeta = instance.system_metadata or {}
        user = sysmeta.get("image_os_admin_user") or (
            "Administrator" if sysmeta.get("image_os_type") == "windows"
            else "root")

        def set_password(conn):
            guest = self._lookup(conn, uuid)
            if not has_guest_agent(guest.XMLDesc(0)):
                raise exception.InstanceAgentNotEnabled(instance_uuid=uuid)
            guest.setUserPassword(user, new_pass, 0)

        d = self._run(set_password)
        d.addErrback(self._wrap, "set_admin_password", uuid)
        return d

    def events_to_wait_for(self, instance) -> list[str]:
        """A new guest waits for its NIC's ``network-vif-plugged`` (when
        ``vif_plugging_timeout`` is above 0)."""
        return ["network-vif-plugged"]

    def get_instance_numa_topology(self, instance):
        """Fires with the guest's NUMA topology from its domain XML (see
        :mod:`.numa`), or None when it has no NUMA cells."""
        from twisted_compute.virt.libvirt.numa import numa_topology_from_xml

        def read(conn):
            domain = self._lookup(conn, instance.uuid)
            return numa_topology_from_xml(domain.XMLDesc(0))

        return self._run(read)

    def get_instance_diagnostics(self, instance):
        """Fires with the guest's :class:`~twisted_compute.objects.
        diagnostics.Diagnostics`: libvirt's domain info, per-vCPU times,
        block stats of each disk, interface stats of each NIC and memory
        stats, all read in the libvirt pool."""
        return self._run(self._diagnostics, instance.uuid)

    def _diagnostics(self, conn, instance_uuid: str):
        from twisted_compute.objects import diagnostics as diag
        domain = self._lookup(conn, instance_uuid)
        state = domain_power_state(domain)
        _state, max_kib, current_kib, vcpu_count, cpu_ns = domain.info()
        tree = ET.fromstring(domain.XMLDesc(0))

        def optional(read, default):
            try:
                return read()
            except libvirt.libvirtError:
                return default

        vcpus = optional(lambda: domain.vcpus()[0], [])
        if vcpus:
            cpus = tuple(diag.CpuDiagnostics(id=int(n), time=int(t))
                         for n, _s, t, _c in vcpus)
        else:
            cpus = tuple(diag.CpuDiagnostics(id=n) for n in
                         range(int(vcpu_count)))
        disks = []
        for disk in tree.findall("devices/disk"):
            target = disk.find("target")
            dev = target.get("dev") if target is not None else None
            if not dev:
                continue
            stats = optional(lambda: domain.blockStats(dev), None)
            if stats is None:
                disks.append(diag.DiskDiagnostics(name=dev))
                continue
            rd_req, rd_bytes, wr_req, wr_bytes, errors = stats
            disks.append(diag.DiskDiagnostics(
                name=dev, read_bytes=int(rd_bytes),
                read_requests=int(rd_req), write_bytes=int(wr_bytes),
                write_requests=int(wr_req), errors_count=int(errors)))
        nics = []
        for interface in tree.findall("devices/interface"):
            target = interface.find("target")
            mac = interface.find("mac")
            dev = target.get("dev") if target is not None else None
            mac_address = mac.get("address") if mac is not None else None
            stats = optional(lambda: domain.interfaceStats(dev), None) \
                if dev else None
            if stats is None:
                nics.append(diag.NicDiagnostics(
                    name=dev or "", mac_address=mac_address))
                continue
            (rx_bytes, rx_packets, rx_errors, rx_drop, tx_bytes,
             tx_packets, tx_errors, tx_drop) = stats
            nics.append(diag.NicDiagnostics(
                name=dev, mac_address=mac_address,
                rx_octets=int(rx_bytes), rx_errors=int(rx_errors),
                rx_drop=int(rx_drop), rx_packets=int(rx_packets),
                tx_octets=int(tx_bytes), tx_errors=int(tx_errors),
                tx_drop=int(tx_drop), tx_packets=int(tx_packets)))
        memory_stats = {str(k): int(v) for k, v in optional(
            domain.memoryStats, {}).items()}
        memory_stats.setdefault("maximum", int(max_kib))
        return diag.Diagnostics(
            state=power_state.name(state), driver="libvirt",
            hypervisor=self.virt_type, hypervisor_os="linux",
            cpu_details=cpus, disk_details=tuple(disks),
            nic_details=tuple(nics), memory_maximum=int(max_kib) // 1024,
            memory_used=int(current_kib) // 1024,
            memory_stats=memory_stats)

    # --- image cache ---------------------------------------------------

    async def cache_image(self, context, image_id: str) -> str:
        """Pre-cache an image (``POST /os-aggregates/{id}/images``): fetch
        it into the image cache unless it is there; ``"existing"``,
        ``"cached"`` or ``"error"`` (logged), as Nova reports them."""
        exists = await self._thread(os.path.exists,
                                    self.image_cache.path(image_id))
        if exists:
            return "existing"
        try:
            await self._fetch_by_id(image_id)
        except Exception as exc:  # noqa: BLE001 - reported per image
            self.log.warn("pre-caching image {image_id} failed: {error}",
                          image_id=image_id, error=exc)
            return "error"
        return "cached"

    def age_images(self):
        """Periodic (for the agent to schedule every
        ``image_cache_manager_interval``): remove cached images that no
        instance directory uses and that have been unused for
        ``remove_unused_original_minimum_age_seconds``.  Fires with the
        removed image ids."""
        min_age = self.conf.remove_unused_original_minimum_age_seconds
        d = self._thread(_images_in_use, self.images_path)
        d.addCallback(lambda in_use: self.image_cache.age(in_use, min_age))
        return d

    def cleanup(self) -> None:
        """Close the connection and stop the thread pool (tests; the
        agent's reactor shutdown does it too)."""
        self._host.stop()


# --- file system helpers (pool threads) ------------------------------------

def wants_guest_agent(image_meta) -> bool:
    """Whether the image asks for the QEMU guest agent's channel."""
    props = (image_meta or {}).get("properties") or {}
    return str(props.get("hw_qemu_guest_agent", "")).lower() in (
        "yes", "true", "1", "on")


def has_guest_agent(xml: str) -> bool:
    root = ET.fromstring(xml)
    return any(target.get("name") == vconfig.GUEST_AGENT_CHANNEL
               for target in root.findall("devices/channel/target"))


#: The target device prefix of each rescue bus.
_BUS_PREFIX = {"virtio": "vd", "scsi": "sd", "sata": "sd", "usb": "sd",
               "ide": "hd"}


def rescue_device(properties) -> tuple[str, str] | None:
    """``(device, bus)`` of a stable device rescue when the image has
    ``hw_rescue_device`` or ``hw_rescue_bus`` (as Nova, either is
    enough: the device defaults to ``disk``, the bus to ``virtio`` for a
    disk and ``ide`` for a cdrom), None for a legacy rescue."""
    properties = properties or {}
    if "hw_rescue_device" not in properties and \
            "hw_rescue_bus" not in properties:
        return None
    device = properties.get("hw_rescue_device") or "disk"
    if device not in ("disk", "cdrom"):
        raise exception.UnsupportedRescueDevice(device=device)
    bus = properties.get("hw_rescue_bus") or (
        "ide" if device == "cdrom" else "virtio")
    if bus not in _BUS_PREFIX or (device == "cdrom" and bus == "virtio"):
        raise exception.UnsupportedRescueBus(bus=bus, virt="libvirt")
    return device, bus


def _set_kernel(root: ET.Element, kernel: str | None, initrd: str | None,
                cmdline: str | None) -> None:
    """Direct kernel boot of ``kernel`` (``cmdline`` None: the domain's
    own), or none when ``kernel`` is None."""
    os_element = root.find("os")
    if os_element is None:
        return
    old_cmdline = os_element.findtext("cmdline")
    for tag in ("kernel", "initrd", "cmdline"):
        for child in os_element.findall(tag):
            os_element.remove(child)
    if kernel is None:
        return
    for tag, value in (("kernel", kernel), ("initrd", initrd),
                       ("cmdline", cmdline or old_cmdline)):
        if value is not None:
            ET.SubElement(os_element, tag).text = value


def rescue_domain_xml(xml: str, rescue_disk: str | None,
                      kernel: str | None = None,
                      initrd: str | None = None,
                      cmdline: str | None = None) -> str:
    """The legacy rescue of the domain of ``xml``: ``rescue_disk`` as
    ``vda``, its own root disk second (``vdb``), its other disks (the
    ephemeral one) left out, as Nova's; a direct kernel boot of
    ``kernel`` / ``initrd`` with ``cmdline`` (None: the domain's) when
    the rescue image has them, none otherwise."""
    root = ET.fromstring(xml)
    devices = root.find("devices")
    disks = [d for d in devices.findall("disk")
             if d.get("device") == "disk"]
    original = None
    for disk in disks:
        target = disk.find("target")
        if target is not None and target.get("dev") == "vda":
            original = disk
    if original is not None and rescue_disk is not None:
        import copy
        for disk in disks:
            if disk is not original:
                devices.remove(disk)
        second = copy.deepcopy(original)
        second.find("target").set("dev", "vdb")
        for tag in ("address", "alias", "boot"):
            for child in second.findall(tag):
                second.remove(child)
        original.find("source").set("file", rescue_disk)
        for child in original.findall("backingStore"):
            original.remove(child)
        for child in second.findall("backingStore"):
            second.remove(child)
        devices.insert(list(devices).index(original) + 1, second)
    _set_kernel(root, kernel, initrd, cmdline)
    return ET.tostring(root, encoding="unicode")


def stable_rescue_domain_xml(xml: str, rescue_disk: str, device: str,
                             bus: str, kernel: str | None = None,
                             initrd: str | None = None,
                             cmdline: str | None = None) -> str:
    """The stable device rescue of the domain of ``xml``: its disks as
    they are, ``rescue_disk`` attached after them as a ``device`` on
    ``bus`` (the first free target name of the bus) with boot order 1,
    the root disk order 2 (no ``<os><boot>``: libvirt takes one or the
    other)."""
    root = ET.fromstring(xml)
    devices = root.find("devices")
    used = {target.get("dev")
            for target in devices.findall("disk/target")}
    prefix = _BUS_PREFIX[bus]
    dev = next(prefix + letter for letter in "abcdefghijklmnopqrstuvwxyz"
               if prefix + letter not in used)
    for disk in devices.findall("disk"):
        for child in disk.findall("boot"):
            disk.remove(child)
        for child in disk.findall("backingStore"):
            disk.remove(child)
        target = disk.find("target")
        if target is not None and target.get("dev") == "vda":
            ET.SubElement(disk, "boot", order="2")
    rescue = ET.Element("disk", type="file", device=device)
    ET.SubElement(rescue, "driver", name="qemu", type="qcow2")
    ET.SubElement(rescue, "source", file=rescue_disk)
    ET.SubElement(rescue, "target", dev=dev, bus=bus)
    if device == "cdrom":
        ET.SubElement(rescue, "readonly")
    ET.SubElement(rescue, "boot", order="1")
    last_disk = devices.findall("disk")[-1] if devices.findall("disk") \
        else None
    position = (list(devices).index(last_disk) + 1) if last_disk is not None \
        else 0
    devices.insert(position, rescue)
    os_element = root.find("os")
    if os_element is not None:
        for child in os_element.findall("boot"):
            os_element.remove(child)
    _set_kernel(root, kernel, initrd, cmdline)
    return ET.tostring(root, encoding="unicode")


def _swap_config_drive(xml: str, drive: str) -> str:
    """``xml`` with its config drive (the cdrom of ``disk.config``)
    reading ``drive`` instead."""
    root = ET.fromstring(xml)
    for disk in root.findall("devices/disk"):
        source = disk.find("source")
        if disk.get("device") == "cdrom" and source is not None and \
                os.path.basename(source.get("file") or "") == "disk.config":
            source.set("file", drive)
    return ET.tostring(root, encoding="unicode")


def _remove_file(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _remove_disks(directory: str, keep: tuple[str, ...] = ()) -> None:
    """The disks of a guest being rebuilt (its console log stays, and
    the files named in ``keep``)."""
    for name in ("disk", EPHEMERAL_DISK, "disk.config", "disk.info",
                 "kernel", "ramdisk", "disk.rescue", "unrescue.xml",
                 "kernel.rescue", "ramdisk.rescue", "disk.config.rescue"):
        if name not in keep:
            _remove_file(os.path.join(directory, name))


def _prepare_dir(directory: str, console: str) -> None:
    os.makedirs(directory, mode=0o755, exist_ok=True)
    # Created by us, so that it exists (and is ours to read) even before
    # the hypervisor writes to it.
    with open(console, "ab"):
        pass


def _write_json(path: str, value) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(value, handle)


def _images_in_use(images_path: str) -> set[str]:
    in_use: set[str] = set()
    try:
        names = os.listdir(images_path)
    except FileNotFoundError:
        return in_use
    for name in names:
        if name.startswith("_"):
            continue
        try:
            with open(os.path.join(images_path, name, "disk.info"),
                      encoding="utf-8") as handle:
                in_use.update(v for v in json.load(handle).values() if v)
        except (OSError, ValueError, AttributeError):
            continue
    return in_use


__all__ = ["LibvirtDriver", "mac_address"]


def console_address(conf, xml: str, console_type: str, instance_uuid: str
                    ) -> ConsoleInfo:
    """The :class:`ConsoleInfo` of a live domain's VNC graphics device
    (``novnc``; the proxy connects to ``[vnc]
    server_proxyclient_address``) or TCP serial port (``serial``, bound
    to ``[serial_console] proxyclient_address``).  A guest without the
    device, or not running (port -1), has no such console."""
    root = ET.fromstring(xml)
    if console_type == "novnc":
        for graphics in root.findall("./devices/graphics"):
            if graphics.get("type") == "vnc":
                port = int(graphics.get("port") or -1)
                if port > 0:
                    return ConsoleInfo(
                        console_type=console_type,
                        host=conf.vnc.server_proxyclient_address, port=port)
    else:
        for serial in root.findall("./devices/serial"):
            if serial.get("type") != "tcp":
                continue
            source = serial.find("source")
            if source is not None and source.get("mode") == "bind":
                return ConsoleInfo(
                    console_type=console_type, host=source.get("host"),
                    port=int(source.get("service")))
    raise exception.ConsoleTypeUnavailable(console_type=console_type)


def parse_port_range(text: str) -> tuple[int, int]:
    """``MIN:MAX`` of ``[serial_console] port_range``."""
    try:
        low, high = (int(part) for part in text.split(":"))
    except ValueError:
        raise exception.InvalidInput(
            reason=f"[serial_console] port_range {text!r} is not "
                   f"MIN:MAX") from None
    if not 0 < low <= high < 65536:
        raise exception.InvalidInput(
            reason=f"[serial_console] port_range {text!r} is not a range "
                   f"of ports")
    return low, high


def serial_ports(xml: str) -> set[int]:
    """The TCP ports of a domain's serial devices."""
    ports = set()
    for serial in ET.fromstring(xml).findall("./devices/serial"):
        source = serial.find("source")
        if serial.get("type") == "tcp" and source is not None and \
                (source.get("service") or "").isdigit():
            ports.add(int(source.get("service")))
    return ports


def _first_bindable(address: str, ports) -> int | None:
    import socket
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((address, port))
            except OSError:
                continue
            return port
    return None
