"""``twistd compute-conductor``."""

from twisted_compute.tap import Options, load_config  # noqa: F401


def makeService(options):
    from twisted.internet import reactor

    from twisted_compute.roles import conductor_process
    return conductor_process(load_config(options), reactor)
