"""``[glance]``: the image API, as the image service serves it and as the
compute agents download from it."""

from __future__ import annotations

from twisted_compute.conf.opts import (
    OptGroups, float_opt, int_opt, str_opt)

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
    float_opt("image_response_timeout", 60.0,
              "Seconds the compute agent waits for the image API to answer "
              "a GET (the response headers)", min=1),
    float_opt("image_download_deadline", 3600.0,
              "Seconds a whole image download may take before it is "
              "abandoned", min=1),
]


def list_opts() -> OptGroups:
    return [("glance", GLANCE_OPTS)]
