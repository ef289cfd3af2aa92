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
    # --- moves (resize, cold and live migration) ---------------------
    str_opt("remote_filesystem_transport", "ssh",
            "How a cold migration copies an instance's files to another "
            "host: ssh (scp), rsync (over ssh) or local (a copy on this "
            "machine: the destination's images_path is local here, e.g. "
            "two agents on one machine, or a shared mount).  A resize on "
            "the same host always copies locally",
            choices=("ssh", "rsync", "local")),
    str_opt("host_images_paths", "",
            "images_path of other hosts, as host=path pairs separated by "
            "commas; a host not named has this host's images_path (Nova "
            "assumes the same instances_path everywhere)"),
    float_opt("disk_copy_timeout", 3600.0,
              "Seconds the copy of an instance's files to another host "
              "may take (each scp/rsync/copy)", min=1),
    str_opt("live_migration_uri", "",
            "Deprecated in Nova, kept as Nova has it: the libvirt URI of "
            "the destination, %s replaced by its host name; empty: "
            "qemu+<live_migration_scheme>://%s/system"),
    str_opt("live_migration_scheme", "tcp",
            "Transport of the libvirt connection to the destination "
            "(tcp, ssh, tls) when live_migration_uri is empty"),
    str_opt("host_live_migration_addrs", "",
            "Where other hosts take a live migration's data, as "
            "host=address pairs separated by commas (Nova's "
            "live_migration_inbound_addr of each destination, which Nova "
            "reads from the destination; here it is configuration); a "
            "host not named: libvirt's choice (its host name)"),
    str_opt("host_live_migration_uris", "",
            "libvirt URIs of other hosts for live migration, as host=uri "
            "pairs separated by commas (overrides live_migration_uri; "
            "e.g. a second libvirtd on this machine)"),
    int_opt("live_migration_bandwidth", 0,
            "Most MiB/s a live migration may use; 0: no limit", min=0),
    int_opt("live_migration_downtime", 500,
            "Most milliseconds the guest may be paused at the end of a "
            "live migration", min=100),
    int_opt("live_migration_completion_timeout", 800,
            "Seconds per GiB of memory and disk to copy after which a "
            "live migration gets live_migration_timeout_action; 0: never",
            min=0),
    str_opt("live_migration_timeout_action", "abort",
            "What happens at the completion timeout: abort the migration, "
            "or force_complete it (post-copy when permitted, else the "
            "guest is paused until the copy is done)",
            choices=("abort", "force_complete")),
    bool_opt("live_migration_permit_post_copy", False,
             "Allow post-copy live migration (VIR_MIGRATE_POSTCOPY), used "
             "by force_complete and the timeout action"),
    bool_opt("live_migration_permit_auto_converge", False,
             "Allow QEMU to throttle the guest's vCPUs so that the "
             "migration converges (VIR_MIGRATE_AUTO_CONVERGE)"),
    bool_opt("live_migration_tunnelled", False,
             "Tunnel the migration data through the libvirt connection "
             "(VIR_MIGRATE_TUNNELLED) instead of a direct QEMU stream"),
    float_opt("live_migration_progress_interval", 0.5,
              "Seconds between two reads of a live migration's progress "
              "(virDomainGetJobStats)", min=0.05),
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
