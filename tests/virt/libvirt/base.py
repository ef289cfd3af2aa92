"""Fixtures of the libvirt driver tests: the driver on libvirt's own
``test:///default`` hypervisor (in memory, shipped with libvirt), with
its libvirt calls run synchronously so that tests are
``SynchronousTestCase``\\ s.

Skip rule: without the libvirt-python package these tests skip, unless
``TWISTED_COMPUTE_DEMAND`` names ``libvirt`` (or ``all``).
"""

from __future__ import annotations

import queue
import shutil
import tempfile
import threading
import time
import uuid as uuidlib

from tests.base import SyncReactor, SyncThreadPool, require_service
from twisted_compute import config
from twisted_compute.objects import vm_states
from twisted_compute.objects.instance import Instance


def have_libvirt() -> bool:
    try:
        import libvirt
    except ImportError:
        return False
    return libvirt is not None


def require_libvirt() -> None:
    require_service("libvirt", host="test:///default",
                    check=have_libvirt)


def have_qemu_img() -> bool:
    return shutil.which("qemu-img") is not None


def require_qemu_img() -> None:
    require_service("qemu-img", host="PATH", check=have_qemu_img)


class ThreadAwareReactor(SyncReactor):
    """A Clock whose ``callFromThread`` runs at once on the test's thread
    (the synchronous pool's results) and queues calls from other threads
    (libvirt's event loop) until :meth:`drain`."""

    def __init__(self):
        super().__init__()
        self._main = threading.get_ident()
        self._queue: queue.Queue = queue.Queue()

    def callFromThread(self, f, *args, **kwargs):
        if threading.get_ident() == self._main:
            f(*args, **kwargs)
        else:
            self._queue.put((f, args, kwargs))

    def drain(self) -> int:
        count = 0
        while True:
            try:
                f, args, kwargs = self._queue.get_nowait()
            except queue.Empty:
                return count
            f(*args, **kwargs)
            count += 1

    def drain_until(self, predicate, timeout: float = 5.0) -> bool:
        """Run queued calls until ``predicate()`` holds (libvirt's events
        come from its own thread, a few milliseconds later)."""
        deadline = time.monotonic() + timeout
        while True:
            self.drain()
            if predicate():
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)


_ids = iter(range(0x7000_0000, 0x7fff_ffff))


def make_instance(**kw) -> Instance:
    values = dict(id=next(_ids), uuid=str(uuidlib.uuid4()), user_id="u",
                  project_id="p", vm_state=vm_states.BUILDING, vcpus=1,
                  memory_mb=128, root_gb=1, display_name="vm")
    values.update(kw)
    return Instance(**values)


def libvirt_conf(state_path: str | None = None, **libvirt_options):
    options = {"virt_type": "test"}
    options.update(libvirt_options)
    return config.load().with_overrides(
        DEFAULT={"state_path": state_path or tempfile.mkdtemp()},
        libvirt=options)


class LibvirtFixture:
    """Mixin for SynchronousTestCase: ``self.driver`` on test:///default
    with a synchronous pool, guests destroyed after the test."""

    host_name = "lvhost"

    def setUpDriver(self, **kw):
        require_libvirt()
        import libvirt
        from twisted_compute.virt.libvirt.driver import LibvirtDriver
        self.libvirt = libvirt
        self.state_path = tempfile.mkdtemp(prefix="tc-libvirt-")
        self.addCleanup(shutil.rmtree, self.state_path, True)
        self.conf = libvirt_conf(self.state_path)
        self.reactor = ThreadAwareReactor()
        self.driver = LibvirtDriver(self.conf, self.reactor,
                                    host=self.host_name,
                                    pool=SyncThreadPool(), **kw)
        self.spawned: list[Instance] = []
        self.addCleanup(self._destroy_all)
        # A connection of the test's own, to see what libvirt really has.
        self.conn = libvirt.open("test:///default")
        self.addCleanup(self.conn.close)

    def _destroy_all(self):
        for instance in self.spawned:
            self.driver.destroy(None, instance, [])
        self.reactor.drain()
        self.driver.cleanup()

    def spawn(self, instance=None, image=None, driver=None):
        instance = instance or make_instance()
        self.spawned.append(instance)
        d = (driver or self.driver).spawn(None, instance, image or {}, [],
                                          None, [], None)
        return instance, d

    def domain(self, instance):
        """The domain libvirt has for ``instance`` (None if none)."""
        try:
            return self.conn.lookupByUUIDString(instance.uuid)
        except self.libvirt.libvirtError:
            return None
