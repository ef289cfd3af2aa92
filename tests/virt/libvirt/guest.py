"""A tiny real guest for the libvirt tests, built from Debian packages.

Debian's cloud kernel (``linux-image-cloud-amd64``) builds virtio, the
IDE CD-ROM and ISO 9660 as modules, so the initramfs carries them and
its ``/init`` (busybox) insmods them in the order ``modprobe
--show-depends`` gives, then prints what the guest sees: the SMBIOS
product name and serial (the instance uuid), and the config drive's
``meta_data.json`` when a CD-ROM labelled ``config-2`` is there; then it
waits.

Needs: ``apt-get download`` (network, root), ``dpkg-deb``, ``depmod`` and
``modprobe`` (kmod), and busybox (busybox-static).  The result is cached
in ``/var/tmp/twisted-compute-test-guest``.
"""

from __future__ import annotations

import glob
import gzip
import io
import os
import shutil
import subprocess
import tempfile

CACHE = os.environ.get("TWISTED_COMPUTE_GUEST_CACHE",
                       "/var/tmp/twisted-compute-test-guest")
MODULES = ("virtio_pci", "virtio_blk", "virtio_net", "isofs", "ata_piix",
           "sr_mod", "cdrom")
DONE = "TWISTED-COMPUTE-GUEST-READY"

INIT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for module in $(cat /modules.list); do insmod /lib/modules/$module; done
echo "guest-product: $(cat /sys/class/dmi/id/product_name)"
echo "guest-uuid: $(cat /sys/class/dmi/id/product_serial)"
mkdir -p /mnt/config
for try in 1 2 3 4 5; do
    [ -b /dev/sr0 ] && break
    sleep 1
done
if mount -t iso9660 -o ro /dev/sr0 /mnt/config 2>/dev/null; then
    echo "config-drive-meta-data:"
    cat /mnt/config/openstack/latest/meta_data.json
    echo
fi
echo "%s"
while true; do sleep 3600; done
""" % DONE


class GuestUnavailable(Exception):
    """The guest cannot be built here (no network, no tools)."""


def _run(*args: str, cwd: str | None = None) -> str:
    try:
        result = subprocess.run(args, cwd=cwd, check=True,
                                capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", "") or ""
        raise GuestUnavailable(f"{' '.join(args)}: {exc} {detail}") \
            from None
    return result.stdout


def _newc(entries: list[tuple[str, int, bytes]]) -> bytes:
    """A cpio archive (newc format) of ``(path, mode, data)`` entries."""
    out = io.BytesIO()

    def pad(n):
        out.write(b"\0" * ((4 - n % 4) % 4))

    for ino, (path, mode, data) in enumerate(
            entries + [("TRAILER!!!", 0, b"")], start=1):
        name = path.encode() + b"\0"
        header = "070701" + "".join(f"{v:08x}" for v in (
            ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name), 0))
        out.write(header.encode())
        out.write(name)
        pad(110 + len(name))
        out.write(data)
        pad(len(data))
    return out.getvalue()


def build() -> tuple[str, str]:
    """Paths of the kernel and the initramfs (built once, cached)."""
    kernel = os.path.join(CACHE, "vmlinuz")
    initrd = os.path.join(CACHE, "initrd.gz")
    if os.path.exists(kernel) and os.path.exists(initrd):
        return kernel, initrd
    busybox = shutil.which("busybox")
    if busybox is None:
        raise GuestUnavailable("busybox is not installed (busybox-static)")
    for tool in ("apt-get", "apt-cache", "dpkg-deb", "depmod", "modprobe"):
        if shutil.which(tool) is None and not os.path.exists(
                f"/usr/sbin/{tool}") and not os.path.exists(f"/sbin/{tool}"):
            raise GuestUnavailable(f"{tool} is not installed")
    work = tempfile.mkdtemp(prefix="tc-guest-")
    try:
        depends = _run("apt-cache", "depends", "linux-image-cloud-amd64")
        package = next((line.split()[-1] for line in depends.splitlines()
                        if "Depends:" in line and "linux-image-" in line),
                       None)
        if package is None:
            raise GuestUnavailable("no linux-image-cloud-amd64 here")
        _run("apt-get", "download", package, cwd=work)
        (deb,) = glob.glob(os.path.join(work, "*.deb"))
        root = os.path.join(work, "root")
        _run("dpkg-deb", "-x", deb, root)
        (version,) = os.listdir(os.path.join(root, "lib", "modules"))
        _run("depmod", "-b", root, version)
        ordered: list[str] = []
        for module in MODULES:
            out = _run("modprobe", "-d", root, "-S", version,
                       "--show-depends", module)
            for line in out.splitlines():
                parts = line.split()
                if parts[:1] == ["insmod"] and parts[1] not in ordered:
                    ordered.append(parts[1])
        entries = [(d, 0o40755, b"") for d in (
            "bin", "dev", "proc", "sys", "mnt", "lib", "lib/modules")]
        with open(busybox, "rb") as handle:
            entries.append(("bin/busybox", 0o100755, handle.read()))
        entries.append(("init", 0o100755, INIT.encode()))
        names = []
        for path in ordered:
            name = os.path.basename(path)
            names.append(name)
            with open(path, "rb") as handle:
                entries.append((f"lib/modules/{name}", 0o100644,
                                handle.read()))
        entries.append(("modules.list", 0o100644,
                        ("\n".join(names) + "\n").encode()))
        os.makedirs(CACHE, exist_ok=True)
        os.chmod(CACHE, 0o755)
        shutil.copyfile(os.path.join(root, "boot", f"vmlinuz-{version}"),
                        kernel + ".tmp")
        with gzip.open(initrd + ".tmp", "wb") as handle:
            handle.write(_newc(entries))
        os.replace(kernel + ".tmp", kernel)
        os.replace(initrd + ".tmp", initrd)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return kernel, initrd
