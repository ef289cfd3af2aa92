"""``[libvirt]``: the libvirt driver's hypervisor, guests and thread
pool (:mod:`twisted_compute.virt.libvirt.driver`)."""

from __future__ import annotations

from twisted_compute.conf.opts import (
    OptGroups, bool_opt, float_opt, int_opt, str_opt)

#: The guest CPU modes of libvirt's ``<cpu mode=...>``.
CPU_MODES = ("host-model", "host-passthrough", "custom", "none")

LIBVIRT_OPTS = [
    str_opt("connection_uri", "qemu:///system",
            "libvirt connection URI (with virt_type = test, "
            "test:///default unless this names another test:// URI)"),
    str_opt("cpu_mode", "",
            "Guest CPU: host-model, host-passthrough, custom (with "
            "cpu_model) or none; empty: host-model for kvm, none otherwise",
            choices=("",) + CPU_MODES),
    str_opt("cpu_model", "", "CPU model when cpu_mode = custom"),
    str_opt("default_kernel_cmdline",
            "root=/dev/vda console=tty0 console=ttyS0",
            "Kernel command line for direct kernel boot when the image has "
            "no os_command_line property"),
    str_opt("images_path", "$state_path/instances",
            "Directory of instance disks and console logs; cached images "
            "are in its _base subdirectory ($state_path is replaced)"),
    int_opt("max_threads", 4,
            "Threads of the pool that runs libvirt calls", min=1, max=64),
    str_opt("network", "default",
            "libvirt network the guests' NICs are on"),
    str_opt("virt_type", "kvm",
            "Domain type: kvm, qemu (software emulation) or test (libvirt's "
            "own in-memory test hypervisor)",
            choices=("kvm", "qemu", "test")),
    int_opt("wait_soft_reboot_seconds", 120,
            "Seconds a soft reboot waits for the guest to shut down before "
            "it becomes a hard reboot", min=0),
    float_opt("qemu_img_timeout", 600.0,
              "Seconds a qemu-img run (image info, overlay creation) may "
              "take before it is killed and the build fails", min=1),
    bool_opt("live_snapshot", True,
             "Snapshot running QEMU guests live (an external disk-only "
             "snapshot, the copy, then a block commit); false: always "
             "cold (the guest suspended to disk during the copy)"),
    str_opt("rescue_image_id", "",
            "Image a rescue boots when the request names none "
            "(rescue_image_ref); empty: the server's own image (Nova's "
            "option)"),
    str_opt("rescue_kernel_id", "",
            "Kernel image a rescue boots directly when the rescue image "
            "names none (its kernel_id property); empty: the server's "
            "own kernel, if any"),
    str_opt("rescue_ramdisk_id", "",
            "Ramdisk image of a rescue when the rescue image names none "
            "(its ramdisk_id property); empty: the server's own, if any"),
]


def list_opts() -> OptGroups:
    return [("libvirt", LIBVIRT_OPTS)]
