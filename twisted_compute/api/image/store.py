"""The image store: image data as files under ``<state_path>/images``.

An upload is copied in chunks to ``<id>.part`` while its MD5 (Glance's
``checksum``) and SHA-512 (``os_hash_value``) are computed, then renamed
to ``<id>``; the row's ``location`` is that name, relative to the store.
In the API this file IO runs in the store's own thread pool
(:class:`ImageStore`), never on the reactor; :func:`import_file` is the
synchronous path of ``compute-manage image import``.
"""

from __future__ import annotations

import hashlib
import os
import struct
import uuid
from typing import Any, BinaryIO, Callable

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from twisted_compute import exception
from twisted_compute.log import Logger

CHUNK_SIZE = 64 * 1024
HASH_ALGO = "sha512"

DISK_FORMATS = ("ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2",
                "vdi", "iso", "ploop")
CONTAINER_FORMATS = ("ami", "ari", "aki", "bare", "ovf", "ova", "docker",
                     "compressed")

_QCOW2_MAGIC = b"QFI\xfb"


def image_dir(conf) -> str:
    """The directory image data lives in."""
    return os.path.join(conf.state_path, "images")


@attrs.frozen
class StoredData:
    """What storing an image's data found out about it."""

    location: str
    size: int
    checksum: str
    os_hash_algo: str
    os_hash_value: str
    #: The size of the disk the data describes, when the format says it
    #: (qcow2 header) or it is the data itself (raw, iso); else None.
    virtual_size: int | None = None


def _virtual_size(first_chunk: bytes, size: int,
                  disk_format: str | None) -> int | None:
    if first_chunk[:4] == _QCOW2_MAGIC and len(first_chunk) >= 32:
        return struct.unpack(">Q", first_chunk[24:32])[0]
    if disk_format in ("raw", "iso"):
        return size
    return None


def _path(directory: str, location: str) -> str:
    # Locations are names we chose (an image id); refuse anything else.
    if not location or os.path.basename(location) != location or \
            location.startswith("."):
        raise exception.ImageDataNotFound(image_id=location)
    return os.path.join(directory, location)


def write_data(source: BinaryIO, directory: str, image_id: str,
               size_cap: int, disk_format: str | None = None,
               chunk_size: int = CHUNK_SIZE) -> StoredData:
    """Copy ``source`` to the store as image ``image_id``, hashing it.

    Blocking: call it in a thread.  More than ``size_cap`` bytes raise
    :class:`ImageSizeLimitExceeded`; nothing is left behind on failure.
    """
    os.makedirs(directory, exist_ok=True)
    final = _path(directory, image_id)
    partial = final + ".part"
    md5 = hashlib.md5(usedforsecurity=False)
    sha = hashlib.new(HASH_ALGO)
    size = 0
    first = b""
    try:
        with open(partial, "wb") as out:
            while True:
                chunk = source.read(chunk_size)
                if not chunk:
                    break
                size += len(chunk)
                if size > size_cap:
                    raise exception.ImageSizeLimitExceeded(cap=size_cap)
                if len(first) < 32:
                    first += chunk[:32]
                md5.update(chunk)
                sha.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, final)
    except BaseException:
        try:
            os.unlink(partial)
        except FileNotFoundError:
            pass
        raise
    return StoredData(location=image_id, size=size,
                      checksum=md5.hexdigest(), os_hash_algo=HASH_ALGO,
                      os_hash_value=sha.hexdigest(),
                      virtual_size=_virtual_size(first, size, disk_format))


def delete_data(directory: str, location: str | None) -> bool:
    """Remove stored data; False when there was none."""
    if not location:
        return False
    try:
        os.unlink(_path(directory, location))
    except FileNotFoundError:
        return False
    return True


class ImageStore:
    """The image directory, with its blocking file IO in a thread pool
    of its own (``image-io``), started on first use and stopped when the
    reactor shuts down.  Tests inject a synchronous pool."""

    log = Logger()

    def __init__(self, conf, reactor, threadpool=None, max_threads: int = 4):
        self.conf = conf
        self.directory = image_dir(conf)
        self.size_cap = conf.glance.image_size_cap
        self._reactor = reactor
        self._threadpool = threadpool
        self._max_threads = max_threads

    def _pool(self):
        if self._threadpool is None:
            pool = ThreadPool(minthreads=0, maxthreads=self._max_threads,
                              name="image-io")
            pool.start()
            self._reactor.addSystemEventTrigger(
                "during", "shutdown", pool.stop)
            self._threadpool = pool
        return self._threadpool

    def _run(self, func: Callable[..., Any], *args, **kwargs) -> Deferred:
        return deferToThreadPool(self._reactor, self._pool(), func,
                                 *args, **kwargs)

    def store(self, image_id: str, source: BinaryIO,
              disk_format: str | None = None) -> Deferred:
        """Fires with the :class:`StoredData` of ``source``'s bytes."""
        return self._run(write_data, source, self.directory, image_id,
                         self.size_cap, disk_format)

    def delete(self, location: str | None) -> Deferred:
        return self._run(delete_data, self.directory, location)

    def open(self, location: str) -> Deferred:
        """Fires with the data opened for reading (binary)."""
        path = _path(self.directory, location)
        return self._run(open, path, "rb")

    def read(self, handle: BinaryIO, size: int = CHUNK_SIZE) -> Deferred:
        """Fires with the next ``size`` bytes of ``handle`` (b"" at the
        end)."""
        return self._run(handle.read, size)


def import_file(conf, path: str, name: str | None = None,
                disk_format: str | None = "qcow2",
                container_format: str | None = "bare",
                visibility: str = "shared", owner: str | None = None,
                properties: dict[str, str] | None = None,
                image_id: str | None = None) -> dict[str, Any]:
    """Add the file at ``path`` as an active image (synchronous: for
    ``compute-manage``, not for the reactor).  Returns the image's
    attributes as a dict (``id``, ``name``, ``size``, ``checksum``...)."""
    from twisted_compute.db import images as db
    from twisted_compute.db import migration
    from twisted_compute.db.pool import make_engine

    if visibility not in ("public", "private", "shared", "community"):
        raise exception.InvalidInput(
            reason=f"Invalid visibility {visibility!r}")
    if disk_format is not None and disk_format not in DISK_FORMATS:
        raise exception.InvalidInput(
            reason=f"Invalid disk format {disk_format!r}")
    if container_format is not None and \
            container_format not in CONTAINER_FORMATS:
        raise exception.InvalidInput(
            reason=f"Invalid container format {container_format!r}")
    if image_id is None:
        image_id = str(uuid.uuid4())
    else:
        try:
            image_id = str(uuid.UUID(image_id))
        except ValueError:
            raise exception.InvalidInput(
                reason=f"Image id {image_id!r} is not a UUID") from None
    engine = make_engine(conf.database_url, pool_size=1)
    try:
        migration.check(engine)
        with engine.connect() as conn:
            with conn.begin():
                try:
                    db.get(conn, image_id)
                except exception.ImageNotFound:
                    pass
                else:
                    raise exception.ImageExists(image_id=image_id)
        directory = image_dir(conf)
        with open(path, "rb") as source:
            data = write_data(source, directory, image_id,
                              conf.glance.image_size_cap, disk_format)
        values = {
            "id": image_id, "name": name, "status": "active",
            "visibility": visibility, "owner": owner,
            "disk_format": disk_format,
            "container_format": container_format,
            "size": data.size, "virtual_size": data.virtual_size,
            "checksum": data.checksum, "os_hash_algo": data.os_hash_algo,
            "os_hash_value": data.os_hash_value, "min_disk": 0,
            "min_ram": 0, "protected": False, "os_hidden": False,
            "properties": dict(properties or {}), "tags": [],
            "location": data.location,
        }
        try:
            with engine.connect() as conn:
                with conn.begin():
                    image = db.create(conn, values)
        except BaseException:
            delete_data(directory, data.location)
            raise
    finally:
        engine.dispose()
    from twisted_compute.api.image import views
    return views.image(image)
