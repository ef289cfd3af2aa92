"""``[glance]``: the image API, as the image service serves it and as the
compute agents download from it."""

from __future__ import annotations

from twisted_compute.conf.opts import OptGroups, int_opt, str_opt

GLANCE_OPTS = [
    str_opt("api_servers", "",
            "Image API base URL the compute side uses; empty: this "
            "process's own image API"),
    int_opt("image_size_cap", 1099511627776,
            "Largest image upload accepted, in bytes", min=0),
    str_opt("auth_token", "admin:admin",
            "X-Auth-Token the compute agent sends to the image API to "
            "download images (with auth_strategy = noauth, 'admin:admin'; "
            "with keystone, a service token)", secret=True),
]


def list_opts() -> OptGroups:
    return [("glance", GLANCE_OPTS)]
