"""``twistd compute-api``: the API process."""

from __future__ import annotations

from twisted_compute.tap import Options, load_config  # noqa: F401


def makeService(options):
    from twisted.internet import reactor

    from twisted_compute.api.service import make_api_service

    conf = load_config(options)
    return make_api_service(conf, reactor)
