"""``[DEFAULT]`` options of snapshots, backups and shelving: how long a
snapshot may take, what a snapshot does not inherit from its server's
image, and when shelved servers leave their host."""

from __future__ import annotations

from twisted_compute.conf.opts import OptGroups, int_opt, list_opt

SNAPSHOT_OPTS = [
    int_opt("snapshot_timeout", 3600,
            "Seconds a snapshot (createImage, createBackup, shelve) may "
            "take on the agent, from the start of the disk copy to the "
            "end of the upload, before it is abandoned: the guest is "
            "resumed, the image deleted and a fault recorded", min=1),
    list_opt("non_inheritable_image_properties", ["cache_in_nova",
                                                  "bittorrent"],
             "Image properties of a server's image that its snapshots do "
             "not carry over (beside the signature and encryption key "
             "properties, which never are)"),
    int_opt("shelved_offload_time", 0,
            "Seconds a shelved server keeps its host before it is "
            "offloaded: 0 offloads at once, -1 never (only "
            "shelveOffload does)", min=-1),
    int_opt("shelved_poll_interval", 3600,
            "Seconds between an agent's checks for shelved servers due "
            "for offloading (when shelved_offload_time > 0)", min=1),
]


def list_opts() -> OptGroups:
    return [("DEFAULT", SNAPSHOT_OPTS)]
