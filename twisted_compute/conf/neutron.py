"""``[neutron]``: the metadata proxy's shared secret."""

from __future__ import annotations

from twisted_compute.conf.opts import OptGroups, str_opt

NEUTRON_OPTS = [
    str_opt("metadata_proxy_shared_secret", "",
            "Secret shared with the metadata proxy; when set, the metadata "
            "API identifies instances by the proxy's X-Instance-ID, "
            "X-Tenant-ID and X-Instance-ID-Signature headers", secret=True),
]


def list_opts() -> OptGroups:
    return [("neutron", NEUTRON_OPTS)]
