"""What every role's twistd plugin shares: options and config loading."""

from __future__ import annotations

import sys

from twisted.python import usage

from twisted_compute import config
from twisted_compute.log import set_debug


class Options(usage.Options):
    """``--config-file`` (repeatable; later files win)."""

    def __init__(self):
        super().__init__()
        self["config_files"] = []

    def opt_config_file(self, path):
        """An ini file of options (repeatable; a later file wins)."""
        self["config_files"].append(path)

    opt_c = opt_config_file


def load_config(options, overrides=None) -> config.Config:
    """The configuration, or exit with a message naming option and file."""
    try:
        conf = config.load(options["config_files"], overrides=overrides)
    except config.ConfigError as exc:
        raise SystemExit(f"twisted-compute: {exc}") from None
    prepare_process(conf)
    return conf


#: Seconds a thread may hold the GIL while another waits (CPython's
#: default is 5 ms).  The reactor thread gives the GIL up at every system
#: call (a socket send, a log write) and then waits for the DB thread to
#: hand it back; 1 ms bounds that wait.  Measured with compute-all: 200
#: boots from 10 clients in 3.5-4.2 s instead of 4.2-5.3 s, and less CPU.
SWITCH_INTERVAL = 0.001


def prepare_process(conf) -> None:
    """Process-wide settings of a role: the log level and the GIL switch
    interval."""
    set_debug(conf.debug)
    sys.setswitchinterval(SWITCH_INTERVAL)

