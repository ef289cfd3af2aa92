"""twisted-compute: an event-driven IaaS compute controller on Twisted."""

__version__ = "0.1.0"
