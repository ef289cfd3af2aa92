"""``[quota]``: the default limits of projects and users."""

from __future__ import annotations

from twisted_compute.conf.opts import OptGroups, int_opt

QUOTA_OPTS = [
    int_opt("instances", 10, "Servers per project (-1: unlimited)",
            min=-1),
    int_opt("cores", 20, "vCPUs per project (-1: unlimited)", min=-1),
    int_opt("ram", 51200, "MiB of RAM per project (-1: unlimited)",
            min=-1),
    int_opt("metadata_items", 128, "Metadata items per server", min=-1),
    int_opt("key_pairs", 100, "Key pairs per user", min=-1),
    int_opt("server_groups", 10, "Server groups per project", min=-1),
    int_opt("server_group_members", 10, "Servers per server group",
            min=-1),
    int_opt("injected_files", 5, "Injected files per server", min=-1),
    int_opt("injected_file_content_bytes", 10240,
            "Bytes per injected file", min=-1),
    int_opt("injected_file_path_length", 255,
            "Characters per injected file path", min=-1),
]


def list_opts() -> OptGroups:
    return [("quota", QUOTA_OPTS)]
