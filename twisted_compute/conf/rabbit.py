"""``[oslo_messaging_rabbit]``: the AMQP transport (RabbitMQ)."""

from __future__ import annotations

from twisted_compute.conf.opts import (
    OptGroups, bool_opt, float_opt, int_opt, str_opt)

DEFAULT_AMQP_SPEC = (
    "/usr/share/amqp/specs/0-9-1-rabbit/amqp0-9-1.stripped.extended.xml")
"""Where Debian's ``amqp-specs`` package puts RabbitMQ's 0-9-1 spec."""

RABBIT_OPTS = [
    int_opt("heartbeat_timeout_threshold", 60,
            "Seconds without any frame from the broker after which the "
            "connection is considered dead (0 disables AMQP heartbeats)",
            min=0),
    int_opt("rabbit_qos_prefetch_count", 10,
            "Unacknowledged messages the broker may push to one consumer "
            "connection (basic.qos); 0 means no limit", min=0),
    str_opt("amqp_spec_path", DEFAULT_AMQP_SPEC,
            "The AMQP 0-9-1 spec XML txamqp loads (Debian package "
            "amqp-specs)"),
    float_opt("rabbit_retry_interval", 0.2,
              "Seconds before the first reconnection attempt", min=0.01),
    float_opt("rabbit_retry_backoff", 2.0,
              "Factor by which the reconnection delay grows on each "
              "failure", min=1.0),
    float_opt("rabbit_interval_max", 3.0,
              "Longest delay between reconnection attempts, in seconds",
              min=0.1),
    float_opt("rabbit_connect_timeout", 10.0,
              "Seconds for the TCP connect plus the AMQP handshake",
              min=0.1),
    int_opt("rabbit_transient_queues_ttl", 1800,
            "Seconds an unused reply or fanout queue survives its process "
            "(x-expires)", min=1),
    bool_opt("amqp_durable_queues", True,
             "Whether topic queues and exchanges survive a broker restart"),
    bool_opt("rabbit_quorum_queue", False,
             "Declare the topic queues (conductor, scheduler, "
             "compute.<host>) as quorum queues, replicated over the "
             "cluster's nodes: they survive the loss of a minority of "
             "them.  Implies durable topic queues.  Reply and fanout "
             "queues stay classic and transient, and are declared again "
             "on whichever node a process reconnects to.  An existing "
             "classic queue of the same name must be deleted first"),
    int_opt("rabbit_quorum_delivery_limit", 0,
            "With quorum queues, how many times a message is delivered "
            "before the broker drops it (x-delivery-limit); 0 means no "
            "limit", min=0),
]


def list_opts() -> OptGroups:
    return [("oslo_messaging_rabbit", RABBIT_OPTS)]
