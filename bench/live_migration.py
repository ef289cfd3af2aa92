"""Benchmark: how long a live migration of the tiny test guest takes
between the system libvirtd and the second libvirtd of
``tools/second-libvirtd``, with the flags and parameters the libvirt
driver uses (:mod:`twisted_compute.virt.libvirt.migration`).

Defines a diskless guest (the kernel and initramfs of
``tests/virt/libvirt/guest.py``, ``--memory`` MiB) on
``qemu:///system``, waits ``--settle`` seconds for it to boot, then
``migrateToURI3`` to the second libvirtd (peer to peer, data to
127.0.0.1, ``--bandwidth`` MiB/s, 0: no limit), reading ``jobStats``
every 0.2 s; prints the seconds and the memory bytes processed, for
``--runs`` guests one after the other, and the command that reproduces
the run.  The guest is
destroyed at the end.  As root (starts the second libvirtd when it is
not running, and stops it again).

    .venv/bin/python bench/live_migration.py [--memory 128] [--runs 3]
        [--bandwidth 0] [--settle 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

TOOL = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))), "tools", "second-libvirtd")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--memory", type=int, default=128)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--bandwidth", type=int, default=0)
    parser.add_argument("--settle", type=float, default=3.0)
    args = parser.parse_args()
    try:
        import libvirt
        from tests.virt.libvirt import guest
        kernel, initrd = guest.build()
    except Exception as exc:  # noqa: BLE001 - said and exit 2
        print(f"cannot run: {exc}", file=sys.stderr)
        return 2
    from twisted_compute.virt.libvirt import migration as vmigration
    # errors come back as exceptions, not printed on stderr as well
    libvirt.registerErrorHandler(lambda *args: None, None)
    started_here = subprocess.run([TOOL, "status"],
                                  capture_output=True).returncode != 0
    if started_here and subprocess.run([TOOL, "start"]).returncode != 0:
        print("tools/second-libvirtd start failed", file=sys.stderr)
        return 2
    dest_uri = subprocess.run([TOOL, "uri"], capture_output=True,
                              text=True).stdout.strip()
    directory = tempfile.mkdtemp(prefix="tc-bench-live-")
    os.chmod(directory, 0o755)
    for path in (kernel, initrd):
        shutil.copy(path, directory)

    class Options:
        live_migration_tunnelled = False
        live_migration_permit_post_copy = False
        live_migration_permit_auto_converge = False
        live_migration_bandwidth = args.bandwidth
        host_live_migration_addrs = "dest=127.0.0.1"

    name = "tc-bench-live-" + uuid.uuid4().hex[:8]
    xml = f"""<domain type='qemu'><name>{name}</name>
      <memory unit='MiB'>{args.memory}</memory><vcpu>1</vcpu>
      <os><type arch='x86_64'>hvm</type>
      <kernel>{directory}/{os.path.basename(kernel)}</kernel>
      <initrd>{directory}/{os.path.basename(initrd)}</initrd>
      <cmdline>console=ttyS0 quiet</cmdline></os>
      <devices><serial type='pty'/></devices></domain>"""
    source = libvirt.open("qemu:///system")
    dest = libvirt.open(dest_uri)
    try:
        for run in range(args.runs):
            guest_domain = source.defineXML(xml)
            guest_domain.create()
            time.sleep(args.settle)
            params = vmigration.live_migration_params(
                libvirt, Options, "dest", guest_domain.XMLDesc(
                    libvirt.VIR_DOMAIN_XML_MIGRATABLE), [])
            flags = vmigration.live_migration_flags(libvirt, Options, False)
            seen = {}
            done = threading.Event()

            def watch(dom=guest_domain):
                while not done.wait(0.2):
                    try:
                        stats = dom.jobStats(0)
                    except libvirt.libvirtError:
                        continue
                    if stats.get("memory_processed"):
                        seen.update(stats)

            watcher = threading.Thread(target=watch)
            watcher.start()
            begin = time.monotonic()
            try:
                guest_domain.migrateToURI3(dest_uri, params, flags)
            finally:
                seconds = time.monotonic() - begin
                done.set()
                watcher.join()
            print(f"run {run + 1}: {args.memory} MiB guest migrated in "
                  f"{seconds:.2f} s, {seen.get('memory_processed', 0)} "
                  f"memory bytes processed (last read)")
            moved = dest.lookupByName(name)
            moved.destroy()
            moved.undefine()
    finally:
        for conn in (source, dest):
            try:
                dom = conn.lookupByName(name)
                if dom.isActive():
                    dom.destroy()
                dom.undefine()
            except libvirt.libvirtError:
                pass
            conn.close()
        shutil.rmtree(directory, ignore_errors=True)
        if started_here:
            subprocess.run([TOOL, "stop"])
    print("reproduce: .venv/bin/python bench/live_migration.py "
          f"--memory {args.memory} --runs {args.runs} "
          f"--bandwidth {args.bandwidth} --settle {args.settle}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
