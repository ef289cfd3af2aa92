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
    set_debug(conf.debug)
    return conf


def not_yet(role: str):
    """For roles that come with a later issue: refuse to start clearly."""
    sys.stderr.write(
        f"twisted-compute: the {role} role is not implemented yet (it "
        f"comes with the control-plane work); nothing was started.\n")
    raise SystemExit(2)
