"""A tiny real guest for the libvirt tests, built from Debian packages.

Debian's cloud kernel (``linux-image-cloud-amd64``) builds virtio, the
IDE CD-ROM and ISO 9660 as modules, so the initramfs carries them and
its ``/init`` (busybox) insmods them in the order ``modprobe
--show-depends`` gives, then prints what the guest sees: the SMBIOS
product name and serial (the instance uuid), and the config drive's
``meta_data.json`` when a CD-ROM labelled ``config-2`` is there.  Then
it brings ``eth0`` up with DHCP (``udhcpc``; ``guest-ip: ADDRESS``) and,
when the kernel command line has ``tc_metadata=HOST:PORT``, fetches the
metadata API there as cloud-init would (see :data:`METADATA_FETCHES`);
then it prints :data:`DONE` and waits.  Every network step is bounded
(``timeout``), so a broken network delays :data:`DONE` by seconds, never
for good.

HTTP is busybox ``nc`` with a hand-written HTTP/1.0 request: the
``wget`` applet of Debian's busybox-static dies with SIGSEGV before it
sends anything.

Needs: ``apt-get download`` (network, root), ``dpkg-deb``, ``depmod`` and
``modprobe`` (kmod), and busybox (busybox-static).  The result is cached
in ``/var/tmp/twisted-compute-test-guest/<key>``, where the key is a hash
of what goes into the guest (``/init``, the DHCP script, the module list
and the busybox binary), so a changed guest is rebuilt.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import io
import os
import shutil
import subprocess
import tempfile
import time

CACHE = os.environ.get("TWISTED_COMPUTE_GUEST_CACHE",
                       "/var/tmp/twisted-compute-test-guest")
MODULES = ("virtio_pci", "virtio_blk", "virtio_net", "isofs", "ata_piix",
           "sr_mod", "cdrom")
DONE = "TWISTED-COMPUTE-GUEST-READY"
#: What the guest prints on its serial console while it waits for a line.
SERIAL_MARKER = "TWISTED-COMPUTE-SERIAL-MARKER"
#: What it prints before each line typed into its console.
SERIAL_ECHO = "guest-echo: "
#: seconds after which another guest's cache entry is removed
STALE_AFTER = 7 * 24 * 3600.0

#: ``(marker, path)``: what the guest fetches from ``tc_metadata``; the
#: console shows ``MARKER-status: <HTTP status line>``, then
#: ``MARKER-begin``, the body, ``MARKER-end``.
METADATA_FETCHES = (
    ("metadata-openstack", "/openstack/latest/meta_data.json"),
    ("metadata-ec2-instance-id", "/latest/meta-data/instance-id"),
)

#: Called by ``udhcpc`` with ``$1`` = deconfig / bound / renew / ...
#: and the lease in ``$interface``, ``$ip``, ``$subnet``, ``$router``.
UDHCPC_SCRIPT = """#!/bin/busybox sh
case "$1" in
    deconfig)
        ifconfig "$interface" 0.0.0.0 up
        ;;
    bound|renew)
        ifconfig "$interface" "$ip" netmask "${subnet:-255.255.255.0}" up
        for gateway in $router; do
            route add default gw "$gateway" dev "$interface"
            break
        done
        echo "guest-ip: $ip"
        echo "guest-router: $router"
        ;;
esac
exit 0
"""

INIT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /tmp
for module in $(cat /modules.list); do insmod /lib/modules/$module; done
echo "guest-product: $(cat /sys/class/dmi/id/product_name)"
echo "guest-uuid: $(cat /sys/class/dmi/id/product_serial)"
echo "guest-memtotal-kb: $(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"
echo "guest-vcpus: $(grep -c '^processor' /proc/cpuinfo)"
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
# The disk marker: the first 64 bytes of /dev/vda.  A disk without one
# gets tc_disk_marker= of the command line (written once, so a guest
# booted from a snapshot shows its origin's); the console shows it.
disk_marker=
for arg in $(cat /proc/cmdline); do
    case "$arg" in tc_disk_marker=*) disk_marker="${arg#tc_disk_marker=}" ;; esac
done
for try in 1 2 3 4 5; do
    [ -b /dev/vda ] && break
    sleep 1
done
if [ -b /dev/vda ]; then
    found=$(dd if=/dev/vda bs=64 count=1 2>/dev/null | tr -dc 'A-Za-z0-9:_-')
    case "$found" in
        TCMARK:*) ;;
        *)  if [ -n "$disk_marker" ]; then
                printf 'TCMARK:%s' "$disk_marker" | \
                    dd of=/dev/vda bs=64 count=1 conv=sync,notrunc 2>/dev/null
                sync
                found="TCMARK:$disk_marker"
                echo "guest-disk-written: $found"
            fi ;;
    esac
    echo "guest-disk: $found"
fi
metadata=
for arg in $(cat /proc/cmdline); do
    case "$arg" in tc_metadata=*) metadata="${arg#tc_metadata=}" ;; esac
done
ip link set lo up
for try in 1 2 3 4 5; do
    [ -e /sys/class/net/eth0 ] && break
    sleep 1
done
ip link set eth0 up
if timeout 15 udhcpc -i eth0 -s /udhcpc.script -n -q -f -t 4 -T 2; then
    echo "guest-network: up"
else
    echo "guest-network: no DHCP lease"
fi
# fetch MARKER PATH: GET PATH from $metadata (HOST:PORT), bounded.  The
# request's side of the pipe stays open until nc is done: at the end of
# its input nc half-closes the connection, which the server takes for a
# hang-up, so an answer that is not immediate would be lost.
fetch() {
    rm -f /tmp/nc.done
    {
        printf 'GET %s HTTP/1.0\\r\\nHost: 169.254.169.254\\r\\n\\r\\n' "$2"
        ticks=0
        while [ ! -e /tmp/nc.done ] && [ $ticks -lt 100 ]; do
            usleep 100000
            ticks=$((ticks + 1))
        done
    } | {
        timeout 8 nc -w 4 "${metadata%:*}" "${metadata##*:}" \\
            > /tmp/response 2> /tmp/response.err
        echo $? > /tmp/nc.done
    }
    status=$(cat /tmp/nc.done)
    tr -d '\\r' < /tmp/response > /tmp/response.txt
    echo "$1-status: $(head -n 1 /tmp/response.txt)"
    [ "$status" = 0 ] || echo "$1-error: exit $status at" \\
        "$(cut -d ' ' -f 1 /proc/uptime)s: $(cat /tmp/response.err)"
    echo "$1-begin"
    sed '1,/^$/d' /tmp/response.txt
    echo
    echo "$1-end"
}
if [ -n "$metadata" ]; then
@FETCHES@
fi
echo "@DONE@"
# The interactive serial console: a marker every 2 s until a line is
# typed, and every line typed answered.
while true; do
    if read -t 2 -r line; then
        echo "@ECHO@$line"
    else
        echo "@MARKER@"
    fi
done
""".replace("@FETCHES@", "\n".join(
    f"    fetch {marker} {path}" for marker, path in METADATA_FETCHES)) \
    .replace("@DONE@", DONE).replace("@MARKER@", SERIAL_MARKER) \
    .replace("@ECHO@", SERIAL_ECHO)


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


def cache_key(busybox: str) -> str:
    """A hash of what goes into the guest: a change to any of it names a
    new cache entry, so the guest is rebuilt."""
    digest = hashlib.sha256()
    for part in (INIT, UDHCPC_SCRIPT, "\0".join(MODULES)):
        digest.update(part.encode() + b"\0")
    with open(busybox, "rb") as handle:
        digest.update(handle.read())
    return digest.hexdigest()[:16]


def build() -> tuple[str, str]:
    """Paths of the kernel and the initramfs (built once, cached)."""
    busybox = shutil.which("busybox")
    if busybox is None:
        raise GuestUnavailable("busybox is not installed (busybox-static)")
    entry = os.path.join(CACHE, cache_key(busybox))
    kernel = os.path.join(entry, "vmlinuz")
    initrd = os.path.join(entry, "initrd.gz")
    if os.path.exists(kernel) and os.path.exists(initrd):
        try:
            os.utime(entry)  # in use: not stale (_forget_other_builds)
        except OSError:
            pass
        return kernel, initrd
    for tool in ("apt-get", "apt-cache", "dpkg-deb", "depmod", "modprobe"):
        if shutil.which(tool) is None and not os.path.exists(
                f"/usr/sbin/{tool}") and not os.path.exists(f"/sbin/{tool}"):
            raise GuestUnavailable(f"{tool} is not installed")
    os.makedirs(CACHE, exist_ok=True)
    os.chmod(CACHE, 0o755)
    work = tempfile.mkdtemp(prefix="tc-guest-")
    staging = None
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
        entries.append(("udhcpc.script", 0o100755, UDHCPC_SCRIPT.encode()))
        names = []
        for path in ordered:
            name = os.path.basename(path)
            names.append(name)
            with open(path, "rb") as handle:
                entries.append((f"lib/modules/{name}", 0o100644,
                                handle.read()))
        entries.append(("modules.list", 0o100644,
                        ("\n".join(names) + "\n").encode()))
        # Built beside the entry, then renamed into place: a concurrent
        # build of the same key either wins the rename or finds it done.
        staging = tempfile.mkdtemp(prefix=".building-", dir=CACHE)
        os.chmod(staging, 0o755)
        shutil.copyfile(os.path.join(root, "boot", f"vmlinuz-{version}"),
                        os.path.join(staging, "vmlinuz"))
        with gzip.open(os.path.join(staging, "initrd.gz"), "wb") as handle:
            handle.write(_newc(entries))
        try:
            os.rename(staging, entry)
            staging = None
        except OSError:
            if not os.path.exists(initrd):
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    _forget_other_builds(keep=entry)
    return kernel, initrd


def _forget_other_builds(keep: str) -> None:
    """Remove the cache entries of other guests (and the files of the
    older, unkeyed layout) unused for :data:`STALE_AFTER` seconds:
    another checkout may still be using a recent one."""
    stale = time.time() - STALE_AFTER
    for name in os.listdir(CACHE):
        path = os.path.join(CACHE, name)
        if path == keep:
            continue
        try:
            if os.stat(path).st_mtime > stale:
                continue
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            elif name in ("vmlinuz", "initrd.gz") or name.endswith(".tmp"):
                os.remove(path)
        except OSError:
            pass
