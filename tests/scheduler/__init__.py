"""Scheduler tests.

The configuration's modules that register options are imported first, in
the configuration's own order, so that importing these tests does not
change the order of the sample file's sections."""

from twisted_compute import config

config.import_option_modules()
