"""``twistd compute-scheduler``."""

from twisted_compute.tap import Options, load_config  # noqa: F401


def makeService(options):
    from twisted.internet import reactor

    from twisted_compute.roles import scheduler_process
    return scheduler_process(load_config(options), reactor)
