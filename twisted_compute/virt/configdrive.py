"""Config drives: the metadata of an instance as an ISO 9660 volume
labelled ``config-2``, in the layout cloud-init's ConfigDrive datasource
reads (``openstack/<version>/meta_data.json``, ``user_data``,
``vendor_data.json``, ``network_data.json``, ``vendor_data2.json``,
``openstack/content/NNNN``, ``ec2/<version>/meta-data.json`` and
``user-data``).

Nothing here blocks the reactor: the file tree is written (and removed)
in a thread pool, and the image is made by ``genisoimage`` (or
``mkisofs``, or ``xorriso -as mkisofs``; ``[DEFAULT] mkisofs_cmd``) run
through ``reactor.spawnProcess``.  The image is written beside its final
name and renamed into place, so a half-built drive is never attached.
"""

from __future__ import annotations

import base64
import binascii
import os
import shutil
import tempfile
from typing import Any, Iterable, Mapping, Sequence

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.threads import deferToThreadPool
from twisted.python.procutils import which

from twisted_compute import exception
from twisted_compute.log import Logger
from twisted_compute.metadata.base import InstanceMetadata, load_vendor_data
from twisted_compute.virt import process

log = Logger()

VOLUME_LABEL = "config-2"
PUBLISHER = "twisted-compute"
SUPPORTED_FORMATS = ("iso9660",)

#: Seconds the ISO tool may run before it is killed, unless the caller
#: says otherwise (``[DEFAULT] mkisofs_timeout``).
MKISOFS_TIMEOUT = 60.0


def write_tree(metadata: InstanceMetadata, directory: str) -> int:
    """Write the drive's files under ``directory`` (blocking: run it in a
    thread); return how many were written."""
    count = 0
    for relative, data in metadata.config_drive_files():
        target = os.path.join(directory, *relative.split("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as handle:
            handle.write(data)
        count += 1
    return count


def _command(mkisofs_cmd: str, output: str, tree: str
             ) -> tuple[str, list[str]]:
    """The executable and its arguments (blocking: looks along PATH)."""
    name = os.path.basename(mkisofs_cmd)
    if os.path.isabs(mkisofs_cmd):
        executable = mkisofs_cmd if os.access(mkisofs_cmd, os.X_OK) \
            else None
    else:
        found = which(mkisofs_cmd)
        executable = found[0] if found else None
    if executable is None:
        raise FileNotFoundError(
            f"{mkisofs_cmd} not found (install the genisoimage package, "
            f"or set [DEFAULT] mkisofs_cmd)")
    options = ["-o", output, "-allow-lowercase", "-allow-multidot", "-l",
               "-publisher", PUBLISHER, "-quiet", "-J", "-r",
               "-V", VOLUME_LABEL]
    if name.startswith("xorriso"):
        return executable, ["-as", "mkisofs", *options, tree]
    return executable, ["-ldots", *options, tree]


def _finish(tree: str, partial: str, path: str, ok: bool) -> None:
    shutil.rmtree(tree, ignore_errors=True)
    if ok:
        os.replace(partial, path)
    else:
        try:
            os.unlink(partial)
        except FileNotFoundError:
            pass


def make_drive(instance_metadata: InstanceMetadata, path: str, reactor,
               *, mkisofs_cmd: str = "genisoimage",
               threadpool=None,
               timeout: float = MKISOFS_TIMEOUT) -> Deferred:
    """Build the config drive of ``instance_metadata`` at ``path``.

    Fires with ``path`` once the image is complete, or fails with
    :class:`~twisted_compute.exception.ConfigDriveError`.  File work runs
    in ``threadpool`` (the reactor's by default), the ISO tool through
    ``reactor.spawnProcess``, killed when it runs longer than ``timeout``
    seconds.
    """
    return ensureDeferred(_make_drive(instance_metadata, path, reactor,
                                      mkisofs_cmd, threadpool, timeout))


async def _make_drive(metadata: InstanceMetadata, path: str, reactor,
                      mkisofs_cmd: str, threadpool, timeout: float) -> str:
    pool = threadpool if threadpool is not None else \
        reactor.getThreadPool()
    uuid = metadata.uuid

    def in_thread(f, *args):
        return deferToThreadPool(reactor, pool, f, *args)

    directory = os.path.dirname(os.path.abspath(path))
    partial = path + ".part"

    def prepare() -> tuple[str, str, list[str]]:
        tree = tempfile.mkdtemp(prefix=".configdrive-", dir=directory)
        try:
            write_tree(metadata, tree)
            executable, args = _command(mkisofs_cmd, partial, tree)
        except BaseException:
            shutil.rmtree(tree, ignore_errors=True)
            raise
        return tree, executable, args

    try:
        tree, executable, args = await in_thread(prepare)
    except OSError as exc:
        raise exception.ConfigDriveError(
            instance_uuid=uuid, reason=str(exc)) from exc
    ok = False
    try:
        try:
            out, err, code = await process.run(
                reactor, executable, args, timeout=timeout,
                env=dict(os.environ))
        except exception.ProcessTimedOut as exc:
            raise exception.ConfigDriveError(
                instance_uuid=uuid, reason=str(exc)) from None
        if code != 0:
            text = (err or out).decode("utf-8", "replace").strip()
            raise exception.ConfigDriveError(
                instance_uuid=uuid,
                reason=f"{os.path.basename(executable)} exited with "
                       f"{code}: {text[-500:]}")
        ok = True
    finally:
        await in_thread(_finish, tree, partial, path, ok)
    log.info("config drive of instance {uuid} written to {path}",
             uuid=uuid, path=path)
    return path


def _injected_files(files: Iterable[Any] | None
                    ) -> list[tuple[str, bytes]]:
    """Injected files as ``(path, bytes)``: from ``(path, bytes|str)``
    pairs or the API's personality ``{"path", "contents": base64}``."""
    result = []
    for item in files or ():
        if isinstance(item, Mapping):
            target, contents = item.get("path"), item.get("contents", "")
            try:
                data = base64.b64decode(contents or "", validate=False)
            except (binascii.Error, ValueError):
                data = str(contents).encode()
        else:
            target, data = item
            if isinstance(data, str):
                data = data.encode()
        if target:
            result.append((str(target), bytes(data)))
    return result


def make_drive_for_instance(conf, reactor, instance, path: str, *,
                            network_info: Sequence[Mapping[str, Any]] = (),
                            injected_files: Iterable[Any] | None = None,
                            admin_password: str | None = None,
                            threadpool=None) -> Deferred:
    """What the compute agent calls: the config drive of ``instance`` (an
    ``Instance`` record or its dict) at ``path``, configured by ``conf``
    (``[api] dhcp_domain`` and ``vendordata_jsonfile_path``, ``[DEFAULT]
    default_availability_zone``, ``config_drive_format``,
    ``mkisofs_cmd``).  ``admin_password``, when given, is written as
    ``admin_pass`` in ``meta_data.json``, as Nova does on config drives
    (never in the metadata API)."""
    fmt = conf.config_drive_format
    if fmt not in SUPPORTED_FORMATS:
        from twisted.internet.defer import fail
        return fail(exception.ConfigDriveError(
            instance_uuid=getattr(instance, "uuid", None),
            reason=f"config drive format {fmt} is not supported"))
    pool = threadpool if threadpool is not None else \
        reactor.getThreadPool()

    async def build() -> str:
        vendor_data = await deferToThreadPool(
            reactor, pool, load_vendor_data,
            conf.api.vendordata_jsonfile_path)
        metadata = InstanceMetadata(
            instance, vendor_data=vendor_data,
            dhcp_domain=conf.api.dhcp_domain,
            default_availability_zone=conf.default_availability_zone,
            files=_injected_files(injected_files),
            network_info=network_info,
            extra_md={"admin_pass": admin_password} if admin_password
            else None)
        return await make_drive(metadata, path, reactor,
                                mkisofs_cmd=conf.mkisofs_cmd,
                                threadpool=pool,
                                timeout=conf.mkisofs_timeout)

    return ensureDeferred(build())
