"""Snapshots of libvirt guests: the root disk (``<instance dir>/disk``, a
qcow2 overlay of a cached image) flattened onto its backing file into one
standalone qcow2, which the agent streams into the image API.

Two ways, as Nova's libvirt driver has:

* **live** (a running guest on QEMU, ``[libvirt] live_snapshot``): an
  external disk-only snapshot (``snapshotCreateXML`` with
  ``DISK_ONLY | NO_METADATA | ATOMIC``) sends the guest's writes to a new
  overlay, so the old disk is still and read-only; ``qemu-img convert``
  copies it while the guest runs; an active block commit of the overlay
  (``blockCommit ... ACTIVE | SHALLOW``, then a pivot) puts the writes
  back into the disk and the overlay is removed.  If the snapshot cannot
  be taken, the cold way is used.
* **cold** (otherwise): a running or paused guest is suspended to disk
  (``managedSave``), the disk is converted, and the guest is started again
  from its saved state (``create``), paused again if it was paused.

Either way the guest is back as it was before the upload starts, and
whatever fails (the copy, a timeout, the cancel of the caller's Deferred)
it is resumed and the work files are removed.

**Quiesce** (live only, as Nova's): the guest's file systems are frozen
through the QEMU guest agent (``fsFreeze``) for the instant of the
external snapshot and thawed (``fsThaw``) right after it, whatever
happened.  It needs ``virt_type`` kvm or qemu and the image property
``hw_qemu_guest_agent=yes``; when it cannot be done (no agent, the agent
not answering) the snapshot goes on without it, unless the image has
``os_require_quiesce=yes``: then the snapshot fails with Nova's error
(QemuGuestAgentNotEnabled, InstanceQuiesceNotSupported or
InstanceQuiesceFailed).  A cold snapshot suspends the whole guest and
needs no quiesce.
"""

from __future__ import annotations

import os
import shutil
import xml.etree.ElementTree as ET
from typing import Any

from twisted.internet import defer, task

from twisted_compute import exception
from twisted_compute.log import Logger
from twisted_compute.objects import vm_states
from twisted_compute.virt.libvirt import imagecache

try:
    import libvirt
except ImportError:  # pragma: no cover - the driver checks at start
    libvirt = None

log = Logger()

#: Seconds between looks at a block commit's progress.
COMMIT_POLL = 0.2


def _other_disks(xml: str, root_target: str) -> list[str]:
    """Target devices of the domain's disks other than the root one (they
    are left out of the external snapshot)."""
    tree = ET.fromstring(xml)
    targets = []
    for disk in tree.findall("devices/disk"):
        target = disk.find("target")
        if target is not None and target.get("dev") != root_target:
            targets.append(target.get("dev"))
    return targets


def snapshot_xml(name: str, overlay: str, others: list[str],
                 root_target: str = "vda") -> str:
    disks = [f"<disk name='{root_target}' snapshot='external'>"
             f"<source file='{overlay}'/></disk>"]
    disks += [f"<disk name='{dev}' snapshot='no'/>" for dev in others]
    return (f"<domainsnapshot><name>{name}</name><disks>{''.join(disks)}"
            f"</disks></domainsnapshot>")


def _yes(value) -> bool:
    return str(value or "").strip().lower() in ("yes", "true", "1", "on")


def quiesce_wanted(instance) -> tuple[bool, bool]:
    """(has the guest agent, requires quiesce) from the instance's image
    properties (``hw_qemu_guest_agent``, ``os_require_quiesce``)."""
    sysmeta = instance.system_metadata or {}
    return (_yes(sysmeta.get("image_hw_qemu_guest_agent")),
            _yes(sysmeta.get("image_os_require_quiesce")))


def _make_work_dir(path: str) -> None:
    os.makedirs(path, exist_ok=True)
    for directory in (os.path.dirname(path), path):
        os.chmod(directory, 0o755)


class Snapshotter:
    """One driver's snapshots: ``driver`` gives the instance directories,
    the libvirt pool and ``qemu-img``'s timeout."""

    def __init__(self, driver, reactor, live: bool = True):
        self.driver = driver
        self.reactor = reactor
        self.live = live
        #: How the last snapshot was taken ("live" or "cold"), and whether
        #: its guest was quiesced, for tests.
        self.last_method: str | None = None
        self.last_quiesced = False

    def snapshot(self, context, instance, image_id, update_task_state,
                 upload) -> defer.Deferred:
        return defer.ensureDeferred(self._snapshot(
            instance, image_id, update_task_state, upload))

    async def _snapshot(self, instance, image_id, update_task_state,
                        upload) -> None:
        driver = self.driver
        uuid = instance.uuid
        directory = driver.instance_dir(uuid)
        disk = os.path.join(directory, "disk")
        work = os.path.join(driver.images_path, "snapshots", image_id)
        # QEMU (its own user) opens the live snapshot's overlay here.
        await driver._thread(_make_work_dir, work)
        target = os.path.join(work, "snapshot.qcow2")
        self.last_quiesced = False
        try:
            state = await driver._run(
                lambda conn: driver._lookup(conn, uuid).state()[0])
            running = state == libvirt.VIR_DOMAIN_RUNNING
            taken = False
            if running and self.live and driver.virt_type != "test":
                taken = await self._live(uuid, disk, work, target,
                                         instance)
            if not taken:
                await self._cold(uuid, disk, target, state)
            await update_task_state(vm_states.IMAGE_PENDING_UPLOAD,
                                    vm_states.IMAGE_SNAPSHOT)
            await update_task_state(vm_states.IMAGE_UPLOADING,
                                    vm_states.IMAGE_PENDING_UPLOAD)
            await upload(target, "qcow2", "bare")
        finally:
            await driver._thread(shutil.rmtree, work, True)

    async def _convert(self, disk: str, target: str) -> None:
        # -U: the guest's QEMU holds the file (read-only, while live).
        await imagecache.run_qemu_img(
            self.reactor, "convert", "-U", "-f", "qcow2", "-O", "qcow2",
            disk, target, timeout=self.driver.qemu_img_timeout)

    # --- cold ------------------------------------------------------------

    async def _cold(self, uuid: str, disk: str, target: str,
                    state: int) -> None:
        driver = self.driver
        saved = state in (libvirt.VIR_DOMAIN_RUNNING,
                          libvirt.VIR_DOMAIN_PAUSED)
        if saved:
            await driver._run(
                lambda conn: driver._lookup(conn, uuid).managedSave(0))
        self.last_method = "cold"
        try:
            await self._convert(disk, target)
        finally:
            if saved:
                # The copy failed or not, the guest comes back.
                await defer.ensureDeferred(self._restore(uuid, state))

    async def _restore(self, uuid: str, state: int) -> None:
        driver = self.driver

        def start(conn):
            domain = driver._lookup(conn, uuid)
            if not domain.isActive():
                # From the managed save: QEMU restores the saved state.
                domain.create()
            if state == libvirt.VIR_DOMAIN_PAUSED and \
                    domain.state()[0] == libvirt.VIR_DOMAIN_RUNNING:
                domain.suspend()
        try:
            await driver._run(start)
        except Exception:
            log.failure("could not restart the guest {uuid} after its "
                        "snapshot", uuid=uuid)
            raise

    # --- live ------------------------------------------------------------

    async def _live(self, uuid: str, disk: str, work: str,
                    target: str, instance=None) -> bool:
        """The live way; False (nothing changed) when QEMU or libvirt
        cannot take the external snapshot.  The guest's file systems are
        frozen around the external snapshot when it can be (see the
        module's docstring)."""
        driver = self.driver
        overlay = os.path.join(work, "overlay.qcow2")
        flags = (libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY
                 | libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA
                 | libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC)

        def take(conn):
            domain = driver._lookup(conn, uuid)
            others = _other_disks(domain.XMLDesc(0), "vda")
            domain.snapshotCreateXML(
                snapshot_xml(f"snap-{os.path.basename(work)}", overlay,
                             others), flags)
        freeze_tried = False
        if instance is not None:
            freeze_tried = await self._quiesce(instance)
        try:
            await driver._run(take)
        except Exception as exc:  # noqa: BLE001 - fall back to cold
            log.info("live snapshot of {uuid} not possible ({error}); "
                     "taking a cold one", uuid=uuid, error=exc)
            return False
        finally:
            if freeze_tried:
                await self._thaw(uuid)
        self.last_method = "live"
        try:
            await self._convert(disk, target)
        finally:
            await self._commit(uuid)
        return True

    # --- quiesce ---------------------------------------------------------

    async def _quiesce(self, instance) -> bool:
        """Freeze the guest's file systems if it can be done; whether a
        freeze was tried (then :meth:`_thaw` must run, even when it
        failed half-way).  Raises Nova's error when it cannot be done and
        the image requires it."""
        has_agent, required = quiesce_wanted(instance)
        uuid = instance.uuid
        tried = False
        try:
            if self.driver.virt_type not in ("kvm", "qemu"):
                raise exception.InstanceQuiesceNotSupported(
                    instance_id=uuid)
            if not has_agent:
                raise exception.QemuGuestAgentNotEnabled()
            tried = True
            try:
                await self.driver._run(
                    lambda conn: self.driver._lookup(conn, uuid).fsFreeze())
            except libvirt.libvirtError as error:
                raise exception.InstanceQuiesceFailed(
                    reason=f"Error from libvirt while quiescing {uuid}: "
                    f"[Error Code {error.get_error_code()}] "
                    f"{error.get_error_message()}") from None
        except exception.ComputeException as error:
            if required:
                log.error("quiescing {uuid} failed and its image requires "
                          "it (os_require_quiesce): {reason}", uuid=uuid,
                          reason=error.format_message())
                if tried:
                    await self._thaw(uuid)
                raise
            log.info("skipping quiescing {uuid}: {reason}", uuid=uuid,
                     reason=error.format_message())
            return tried
        self.last_quiesced = True
        log.info("file systems of {uuid} frozen for the snapshot",
                 uuid=uuid)
        return True

    async def _thaw(self, uuid: str) -> None:
        """Thaw the guest's file systems; a failure is logged, never
        raised (the snapshot's own outcome stands)."""
        try:
            await self.driver._run(
                lambda conn: self.driver._lookup(conn, uuid).fsThaw())
        except Exception as error:  # noqa: BLE001 - logged, not raised
            log.warn("thawing the file systems of {uuid} failed: {error}",
                     uuid=uuid, error=error)

    async def _commit(self, uuid: str) -> None:
        """Merge the overlay back into the disk and pivot to it; runs even
        when the copy failed or was cancelled (not cancellable itself)."""
        driver = self.driver
        flags = (libvirt.VIR_DOMAIN_BLOCK_COMMIT_ACTIVE
                 | libvirt.VIR_DOMAIN_BLOCK_COMMIT_SHALLOW)
        await driver._run(lambda conn: driver._lookup(conn, uuid)
                          .blockCommit("vda", None, None, 0, flags))

        def progress(conn) -> dict[str, Any]:
            return driver._lookup(conn, uuid).blockJobInfo("vda", 0)

        for _ in range(int(max(1.0, driver.qemu_img_timeout)
                           / COMMIT_POLL)):
            info = await driver._run(progress)
            if info and info.get("end", 0) and \
                    info.get("cur") == info.get("end"):
                break
            await task.deferLater(self.reactor, COMMIT_POLL, lambda: None)
        await driver._run(lambda conn: driver._lookup(conn, uuid)
                          .blockJobAbort(
                              "vda",
                              libvirt.VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT))
        log.info("live snapshot of {uuid}: overlay committed", uuid=uuid)
