"""``[DEFAULT]`` options of every role process: its periodic tasks and
the reactor lag monitor (:mod:`twisted_compute.rpc_service`,
:mod:`twisted_compute.process`)."""

from __future__ import annotations

from twisted_compute.conf.opts import OptGroups, float_opt, int_opt

SERVICE_OPTS = [
    int_opt("periodic_fuzzy_delay", 60,
            "Seconds; the first run of each periodic task is delayed by a "
            "random amount up to this", min=0),
    float_opt("periodic_task_stop_timeout", 10.0,
              "Seconds stopping a service waits for a periodic task under "
              "way before it cancels the task and stops anyway", min=0),
    float_opt("reactor_lag_interval", 0.5,
              "Seconds between the probes that measure reactor lag",
              min=0.01),
    float_opt("reactor_lag_report_interval", 60.0,
              "Seconds between the log lines that give the worst reactor "
              "lag seen since the last one", min=0.1),
]


def list_opts() -> OptGroups:
    return [("DEFAULT", SERVICE_OPTS)]
