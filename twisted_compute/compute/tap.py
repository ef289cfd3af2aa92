"""``twistd compute-agent``: the agent of one hypervisor host."""

from twisted_compute.tap import Options, load_config  # noqa: F401


def makeService(options):
    from twisted.internet import reactor

    from twisted_compute.roles import agent_process
    return agent_process(load_config(options), reactor)
