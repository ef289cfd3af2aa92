"""Moves on the libvirt driver: resize, cold migration and live
migration (the driver half of :mod:`twisted_compute.compute.move`).
See :mod:`.migration` for the layout of the files and the XML.

Every libvirt call runs in the driver's pool, file work too; ``qemu-img``,
``scp``, ``rsync`` and ``ssh`` are child processes with a deadline.
"""

from __future__ import annotations

import json
import os
import shutil

from twisted.internet import defer, task

from twisted_compute import exception
from twisted_compute.virt import process
from twisted_compute.virt.libvirt import imagecache
from twisted_compute.virt.libvirt import migration as vmigration
from twisted_compute.virt.libvirt.host import domain_power_state, libvirt

GiB = imagecache.GiB

#: Files of an instance directory that move with it (``disk.info`` says
#: which cached images it uses; the console log keeps its history).
MOVED_FILES = ("disk", "disk.local", "disk.config", "disk.info", "kernel",
               "ramdisk",
               "console.log", vmigration.DOMAIN_XML)


class LibvirtMovesMixin:
    """The move calls of :class:`~.driver.LibvirtDriver`."""

    # --- where other hosts keep their files ----------------------------

    def images_path_of(self, host: str) -> str:
        """``images_path`` of ``host`` (``[libvirt] host_images_paths``;
        this host's own when it is not named)."""
        if host == self.host:
            return self.images_path
        paths = vmigration.parse_host_map(
            self.conf.libvirt.host_images_paths)
        return paths.get(host, self.images_path).replace(
            "$state_path", self.conf.state_path)

    def _transport(self, dest: str) -> str:
        if dest == self.host:
            return "local"
        return self.conf.libvirt.remote_filesystem_transport

    async def _copy_files(self, dest: str, files: list[str],
                          dest_dir: str) -> None:
        transport = self._transport(dest)
        timeout = self.conf.libvirt.disk_copy_timeout
        if transport == "local":
            await self._thread(_copy_local, files, dest_dir)
            return
        for command in vmigration.copy_commands(transport, dest, files,
                                                dest_dir):
            binary = shutil.which(command[0])
            if binary is None:
                raise exception.MigrationError(
                    reason=f"{command[0]} is not installed ([libvirt] "
                           f"remote_filesystem_transport = {transport})")
            out, err, code = await process.run(
                self.reactor, binary, command[1:], timeout=timeout)
            if code != 0:
                raise exception.MigrationError(
                    reason=f"{' '.join(command[:2])} ... exited with {code}:"
                           f" {err.decode('utf-8', 'replace').strip()}")

    # --- cold: source ----------------------------------------------------

    def migrate_disk_and_power_off(self, context, instance, dest: str,
                                   flavor, network_info=None,
                                   block_device_info=None, timeout=0,
                                   retry_interval=0):
        """Stop the guest, keep its XML, move its directory aside to
        ``<uuid>_resize`` and copy its files to ``dest``'s
        ``images_path``.  A smaller root disk is refused (the API refuses
        it first)."""
        return defer.ensureDeferred(self._migrate_disk_and_power_off(
            instance, dest, flavor or {}, timeout))

    async def _migrate_disk_and_power_off(self, instance, dest, flavor,
                                          timeout) -> None:
        uuid = instance.uuid
        new_root = int(flavor.get("root_gb") or 0)
        if new_root and instance.root_gb and new_root < instance.root_gb:
            raise exception.MigrationError(
                reason=f"the root disk cannot shrink ({instance.root_gb} "
                       f"GiB to {new_root} GiB)")
        await self.power_off(instance, timeout)
        directory = self.instance_dir(uuid)
        resize_dir = directory + vmigration.RESIZE_SUFFIX
        dest_dir = os.path.join(self.images_path_of(dest), uuid)

        def set_aside(conn):
            guest = self._lookup(conn, uuid)
            xml = guest.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
            if not os.path.exists(resize_dir):
                os.rename(directory, resize_dir)
            with open(os.path.join(resize_dir, vmigration.DOMAIN_XML), "w",
                      encoding="utf-8") as handle:
                handle.write(xml)
            with open(os.path.join(resize_dir, vmigration.MARKER), "w",
                      encoding="utf-8") as handle:
                json.dump({"source_host": self.host,
                           "source_dir": directory}, handle)
            return [os.path.join(resize_dir, name)
                    for name in (*MOVED_FILES, vmigration.MARKER)
                    if os.path.exists(os.path.join(resize_dir, name))]

        d = self._run(set_aside)
        d.addErrback(self._wrap, "migrate", uuid)
        files = await d
        await self._copy_files(dest, files, dest_dir)
        self.log.info("instance {uuid}: disk copied to {dest}:{path}",
                      uuid=uuid, dest=dest, path=dest_dir)

    # --- cold: destination -----------------------------------------------

    def finish_migration(self, context, migration, instance, disk_info=None,
                         network_info=None, image_meta=None,
                         resize_instance=True, block_device_info=None,
                         power_on=True):
        """Destination: the copied overlay onto this host's image cache,
        the root disk grown to the flavor's, the domain defined with the
        new memory and vCPUs (and this host in its metadata), started
        when ``power_on``.  After a live migration the guest already
        runs here: only checked."""
        migration = migration or {}
        if migration.get("migration_type") == "live-migration":
            return self._check_arrived(instance)
        return defer.ensureDeferred(self._finish_migration(
            instance, bool(power_on)))

    def _check_arrived(self, instance):
        uuid = instance.uuid

        def check(conn):
            guest = self._lookup(conn, uuid)
            if not self._ours(guest):
                raise exception.MigrationError(
                    reason=f"domain {uuid} on {self.uri} is not this "
                           f"host's ({self.host})")
            return domain_power_state(guest)

        d = self._run(check)
        d.addErrback(self._wrap, "finish live migration of", uuid)
        return d.addCallback(lambda _: None)

    async def _finish_migration(self, instance, power_on: bool) -> None:
        uuid = instance.uuid
        directory = self.instance_dir(uuid)

        def read():
            try:
                with open(os.path.join(directory, vmigration.MARKER),
                          encoding="utf-8") as handle:
                    marker = json.load(handle)
                with open(os.path.join(directory, vmigration.DOMAIN_XML),
                          encoding="utf-8") as handle:
                    xml = handle.read()
            except (OSError, ValueError) as exc:
                raise exception.MigrationError(
                    reason=f"no copy of instance {uuid} in {directory}: "
                           f"{exc}") from None
            try:
                with open(os.path.join(directory, "disk.info"),
                          encoding="utf-8") as handle:
                    used = json.load(handle)
            except (OSError, ValueError):
                used = {}
            return marker, xml, used, os.path.exists(
                os.path.join(directory, "disk"))

        marker, xml, used, has_disk = await self._thread(read)
        disk = os.path.join(directory, "disk")
        if has_disk:
            await self._rebase_and_grow(instance, disk, used)
        new_xml = vmigration.moved_domain_xml(
            xml, marker["source_dir"], directory, host=self.host,
            memory_mb=max(1, instance.memory_mb),
            vcpus=max(1, instance.vcpus))
        from twisted_compute.virt.libvirt.dhcp import mac_address
        mac = mac_address(uuid)

        def define(conn):
            try:
                self.dhcp.reserve(conn, self.network, mac, uuid)
            except (exception.ComputeException, libvirt.libvirtError) as e:
                self.log.warn("instance {uuid}: no DHCP reservation on "
                              "{network}: {error}", uuid=uuid,
                              network=self.network, error=e)
            guest = conn.defineXML(new_xml)
            if power_on and not guest.isActive():
                guest.create()

        d = self._run(define)
        d.addErrback(self._wrap, "finish migration of", uuid)
        await d
        self.log.info("instance {uuid} moved here: {vcpus} vCPUs, "
                      "{memory} MB, {root} GB root disk", uuid=uuid,
                      vcpus=instance.vcpus, memory=instance.memory_mb,
                      root=instance.root_gb)

    async def _rebase_and_grow(self, instance, disk: str, used) -> None:
        timeout = self.qemu_img_timeout
        info = await imagecache.image_info(self.reactor, disk, "qcow2",
                                           timeout=timeout)
        backing = info.get("full-backing-filename") or \
            info.get("backing-filename")
        image_id = used.get("image")
        if backing and image_id:
            image = await self.image_cache.get_image(image_id)
            base = await self.image_cache.fetch(image)
            if os.path.realpath(backing) != os.path.realpath(base):
                fmt = imagecache.qemu_format(image.get("disk_format"))
                await imagecache.run_qemu_img(
                    self.reactor, "rebase", "-u", "-F", fmt, "-b", base,
                    "-f", "qcow2", disk, timeout=timeout)
        wanted = int(instance.root_gb or 0) * GiB
        if wanted > int(info.get("virtual-size") or 0):
            await imagecache.run_qemu_img(
                self.reactor, "resize", "-f", "qcow2", disk, str(wanted),
                timeout=timeout)

    # --- confirm and revert -----------------------------------------------

    def confirm_migration(self, context, migration, instance,
                          network_info=None):
        """Source: delete ``<uuid>_resize``; undefine the old domain
        unless it is now the destination's (a libvirtd shared by both
        hosts, or a resize on this host)."""
        uuid = instance.uuid
        resize_dir = self.instance_dir(uuid) + vmigration.RESIZE_SUFFIX

        def cleanup(conn):
            try:
                guest = conn.lookupByUUIDString(uuid)
            except libvirt.libvirtError as error:
                if error.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                    raise
                guest = None
            if guest is not None and self._ours(guest) and \
                    (migration or {}).get("dest_compute") != self.host:
                if guest.isActive():
                    guest.destroy()
                guest.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE)
            shutil.rmtree(resize_dir, ignore_errors=True)

        d = self._run(cleanup)
        d.addErrback(self._wrap, "confirm migration of", uuid)
        return d

    def revert_migration(self, context, instance, migration=None):
        """Destination: throw the copy away (its domain, when this host
        defined it, and its directory, when it is a copy)."""
        uuid = instance.uuid
        directory = self.instance_dir(uuid)
        migration = migration or {}

        def undo(conn):
            is_copy = _is_copy_of(directory, migration.get("source_compute"),
                                  self.host)
            try:
                guest = conn.lookupByUUIDString(uuid)
            except libvirt.libvirtError as error:
                if error.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                    raise
                guest = None
            if guest is not None and is_copy and self._ours(guest):
                if guest.isActive():
                    guest.destroy()
                if migration.get("source_compute") != self.host or \
                        os.path.exists(directory + vmigration.RESIZE_SUFFIX):
                    guest.undefineFlags(
                        libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE)
            if is_copy:
                shutil.rmtree(directory, ignore_errors=True)

        d = self._run(undo)
        d.addErrback(self._wrap, "revert migration of", uuid)
        return d

    def finish_revert_migration(self, context, instance, network_info=None,
                                migration=None, block_device_info=None,
                                power_on=True):
        """Source: ``<uuid>_resize`` back in place, the old domain
        defined again (old flavor, this host), started when
        ``power_on``."""
        uuid = instance.uuid
        directory = self.instance_dir(uuid)
        resize_dir = directory + vmigration.RESIZE_SUFFIX

        def restore(conn):
            xml = None
            if os.path.isdir(resize_dir):
                saved = os.path.join(resize_dir, vmigration.DOMAIN_XML)
                if os.path.exists(saved):
                    with open(saved, encoding="utf-8") as handle:
                        xml = handle.read()
                if os.path.exists(os.path.join(directory,
                                               vmigration.MARKER)):
                    shutil.rmtree(directory, ignore_errors=True)
                if not os.path.exists(directory):
                    os.rename(resize_dir, directory)
                for name in (vmigration.DOMAIN_XML, vmigration.MARKER):
                    _remove(os.path.join(directory, name))
            if xml is not None:
                guest = conn.defineXML(xml)
            else:
                guest = self._lookup(conn, uuid)
            if power_on and not guest.isActive():
                guest.create()

        d = self._run(restore)
        d.addErrback(self._wrap, "revert migration of", uuid)
        return d

    # --- live migration (source) --------------------------------------------

    #: The agent passes ``progress`` to :meth:`live_migration`.
    reports_live_migration_progress = True

    def live_migration(self, context, instance, dest: str,
                       migrate_data=None, progress=None):
        """``virDomainMigrateToURI3`` to ``dest`` (peer to peer, the
        domain persisted there and undefined here), with the
        ``live_migration_*`` options; block migration
        (``VIR_MIGRATE_NON_SHARED_INC``) when ``block_migration``.  The
        progress counters are read every
        ``live_migration_progress_interval`` (:meth:`live_migration_progress`)
        and given to ``progress`` (a callable taking the counters) as
        they change, and answered at the end.  An abort
        (:meth:`live_migration_abort`, or the timeout action) fails it
        with LiveMigrationAborted."""
        return defer.ensureDeferred(self._live_migration(
            instance, dest, dict(migrate_data or {}), progress))

    def live_migration_progress(self, instance) -> dict[str, int] | None:
        """The running live migration's counters (bytes), or None."""
        running = self._live_migrations.get(instance.uuid)
        return running.progress.to_dict() if running else None

    def live_migration_force_complete(self, instance):
        """Post-copy when permitted, else pause the guest so that the
        copy converges."""
        return self._job_action(instance, force=True)

    def live_migration_abort(self, instance):
        return self._job_action(instance, force=False)

    def _job_action(self, instance, force: bool):
        uuid = instance.uuid
        if uuid not in self._live_migrations:
            return defer.fail(exception.MigrationError(
                reason=f"no live migration of {uuid} runs on {self.host}"))
        post_copy = self.conf.libvirt.live_migration_permit_post_copy

        running = self._live_migrations[uuid]

        def act(conn):
            guest = self._lookup(conn, uuid)
            if not force:
                running.aborted = True
                guest.abortJob()
            elif post_copy:
                guest.migrateStartPostCopy(0)
            else:
                guest.suspend()

        d = self._run(act)
        d.addErrback(self._wrap, "force complete" if force else "abort",
                     uuid)
        return d

    async def _live_migration(self, instance, dest, migrate_data,
                              progress=None):
        options = self.conf.libvirt
        uuid = instance.uuid
        block = bool(migrate_data.get("block_migration"))
        directory = self.instance_dir(uuid)
        dest_dir = os.path.join(self.images_path_of(dest), uuid)
        if dest_dir != directory and not block:
            # Another instances path is another disk: only a block
            # migration gets it there.
            self.log.info("instance {uuid}: {dest} keeps its instances "
                          "in {path}: block migration", uuid=uuid,
                          dest=dest, path=dest_dir)
            block = True
        shared = dest_dir == directory and not block
        uri = vmigration.live_migration_uri(options, dest)

        def source_xml(conn):
            guest = self._lookup(conn, uuid)
            if not guest.isActive():
                raise exception.MigrationPreCheckError(
                    reason=f"instance {uuid} is not running")
            return guest.XMLDesc(libvirt.VIR_DOMAIN_XML_MIGRATABLE)

        d = self._run(source_xml)
        d.addErrback(self._wrap, "live-migrate", uuid)
        xml = await d
        if not shared:
            # The destination's directory: the files QEMU opens there
            # (kernel, initrd, config drive, the overlay for the block
            # copy to fill in), with its backing image.
            await self._prepare_live_dest(dest, directory, dest_dir, block)
        dest_xml = vmigration.moved_domain_xml(xml, directory, dest_dir,
                                               host=dest)
        flags = vmigration.live_migration_flags(libvirt, options, block)
        params = vmigration.live_migration_params(
            libvirt, options, dest, dest_xml,
            vmigration.writable_disks(xml) if block else [])
        running = _LiveMigration(progress=vmigration.Progress(
            memory_total=int(instance.memory_mb or 0) * 1024 * 1024),
            report=progress)
        self._live_migrations[uuid] = running
        running.report_now()

        def migrate(conn):
            guest = self._lookup(conn, uuid)
            guest.migrateToURI3(uri, params, flags)

        self.log.info("instance {uuid}: live migration to {dest} ({uri}, "
                      "flags {flags:#x})", uuid=uuid, dest=dest, uri=uri,
                      flags=flags)
        started = self.reactor.seconds()
        job = self._run(migrate)
        job.addBoth(running.finished)
        try:
            await self._watch(uuid, running, started)
            result = await job
            if isinstance(result, Exception):
                raise result
        except libvirt.libvirtError as error:
            aborted = getattr(exception, "LiveMigrationAborted", None)
            if running.aborted and aborted is not None:
                raise aborted(instance_uuid=uuid) from None
            raise exception.MigrationError(
                reason=f"live migration of {uuid} to {dest} failed: "
                       f"{error.get_error_message() or error}") from None
        finally:
            self._live_migrations.pop(uuid, None)
        running.progress.completed()
        if not shared:
            # Kept aside until the conductor confirms (and deletes it).
            await self._thread(_set_aside, directory,
                               directory + vmigration.RESIZE_SUFFIX)
        self.log.info("instance {uuid}: live-migrated to {dest} in "
                      "{seconds:.1f} s", uuid=uuid, dest=dest,
                      seconds=self.reactor.seconds() - started)
        return running.progress.to_dict()

    async def _prepare_live_dest(self, dest, directory, dest_dir,
                                 block) -> None:
        uuid = os.path.basename(directory)
        staging = os.path.join(self.images_path, f"_migrating-{uuid}")

        def listing():
            os.makedirs(staging, exist_ok=True)
            marker = os.path.join(staging, vmigration.MARKER)
            with open(marker, "w", encoding="utf-8") as handle:
                json.dump({"source_host": self.host,
                           "source_dir": directory}, handle)
            return [marker] + [
                os.path.join(directory, name) for name in MOVED_FILES
                if name != vmigration.DOMAIN_XML and
                (block or name != "disk") and
                os.path.exists(os.path.join(directory, name))]

        files = await self._thread(listing)
        try:
            await self._copy_files(dest, files, dest_dir)
        finally:
            await self._thread(shutil.rmtree, staging, True)
        if block and self._transport(dest) == "local":
            await self.adopt_backing(
                os.path.join(dest_dir, "disk"),
                os.path.join(self.images_path_of(dest), "_base"))

    async def adopt_backing(self, disk: str, base_dir: str) -> None:
        """Give the copied overlay ``disk`` a backing file in the image
        cache ``base_dir`` (the destination's, on this machine): the
        cached image copied there unless it is, then ``qemu-img rebase
        -u``, so that the moved guest does not depend on this host's
        cache (which ages images no guest here uses)."""
        if not await self._thread(os.path.exists, disk):
            return
        timeout = self.qemu_img_timeout
        info = await imagecache.image_info(self.reactor, disk, "qcow2",
                                           timeout=timeout)
        backing = info.get("full-backing-filename") or \
            info.get("backing-filename")
        if not backing:
            return
        target = os.path.join(base_dir, os.path.basename(backing))
        if os.path.realpath(target) == os.path.realpath(backing):
            return
        await self._thread(_copy_once, backing, target)
        fmt = info.get("backing-filename-format") or "raw"
        await imagecache.run_qemu_img(
            self.reactor, "rebase", "-u", "-F", fmt, "-b", target,
            "-f", "qcow2", disk, timeout=timeout)

    async def _watch(self, uuid, running, started) -> None:
        """Poll the job's counters until it ends; the downtime set once
        the job runs; the timeout action after the completion
        deadline."""
        options = self.conf.libvirt
        interval = options.live_migration_progress_interval
        downtime_set = False
        acted = False
        while not running.done:
            await task.deferLater(self.reactor, interval, lambda: None)
            if running.done:
                break

            def poll(conn):
                guest = self._lookup(conn, uuid)
                stats = guest.jobStats(0)
                if stats.get("type", 0) in (0, None):
                    return stats, False
                if not downtime_set:
                    guest.migrateSetMaxDowntime(
                        options.live_migration_downtime, 0)
                return stats, True

            try:
                stats, active = await self._run(poll)
            except (libvirt.libvirtError, exception.InstanceNotFound):
                continue  # the domain left this host: the job ends
            running.progress.update(stats)
            running.report_now()
            downtime_set = downtime_set or active
            deadline = vmigration.completion_deadline(
                options, running.progress.memory_total,
                running.progress.disk_total)
            if active and not acted and deadline is not None and \
                    self.reactor.seconds() - started > deadline:
                acted = True
                action = options.live_migration_timeout_action
                self.log.warn("instance {uuid}: live migration past its "
                              "completion timeout ({deadline:.0f} s): "
                              "{action}", uuid=uuid, deadline=deadline,
                              action=action)
                try:
                    await self._job_action(
                        _Ref(uuid), force=action == "force_complete")
                except exception.ComputeException:
                    pass


class _Ref:
    """The part of an instance :meth:`_job_action` reads."""

    def __init__(self, uuid: str):
        self.uuid = uuid


class _LiveMigration:
    """A running live migration: its counters, whether its job ended."""

    def __init__(self, progress: vmigration.Progress, report=None):
        self.progress = progress
        self.done = False
        #: Whether this host asked libvirt to abort the job.
        self.aborted = False
        self._report = report

    def report_now(self) -> None:
        """Give the counters to the agent's progress callable (its
        failures are its own: the migration goes on)."""
        if self._report is None:
            return
        try:
            self._report(self.progress.to_dict())
        except Exception:  # noqa: BLE001
            pass

    def finished(self, result):
        self.done = True
        if hasattr(result, "value"):  # a Failure: raised by the awaiter
            return result.value
        return result


def _is_copy_of(directory: str, source_host: str | None,
                host: str) -> bool:
    """Whether ``directory`` is a copy made by a move from
    ``source_host`` (its marker says so; on the source itself only while
    the original is set aside), and so may be thrown away."""
    try:
        with open(os.path.join(directory, vmigration.MARKER),
                  encoding="utf-8") as handle:
            marker = json.load(handle)
    except (OSError, ValueError):
        return False
    if not isinstance(marker, dict) or \
            marker.get("source_host") != source_host:
        return False
    if source_host == host:
        return os.path.isdir(directory + vmigration.RESIZE_SUFFIX)
    return True


def _copy_local(files: list[str], dest_dir: str) -> None:
    os.makedirs(dest_dir, mode=0o755, exist_ok=True)
    for path in files:
        # Not copy2: its extended attributes would carry libvirt's
        # ownership records (trusted.libvirt.security.*) of a disk in use
        # to the copy, and the destination's libvirtd would refuse it
        # ("Setting different DAC user or group ... already in use").
        target = os.path.join(dest_dir, os.path.basename(path))
        shutil.copyfile(path, target)
        shutil.copymode(path, target)


def _copy_once(source: str, target: str) -> None:
    """``source`` at ``target`` unless it is there (whole or not at all:
    a temporary name, then a rename)."""
    if os.path.exists(target):
        return
    os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
    partial = f"{target}.part-{os.getpid()}"
    shutil.copyfile(source, partial)
    shutil.copymode(source, partial)
    os.rename(partial, target)


def _set_aside(directory: str, resize_dir: str) -> None:
    if os.path.exists(resize_dir):
        shutil.rmtree(resize_dir, ignore_errors=True)
    if os.path.exists(directory):
        os.rename(directory, resize_dir)


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


__all__ = ["LibvirtMovesMixin", "MOVED_FILES"]
