"""``[DEFAULT] debug``: debug events are dropped unless it is on."""

from __future__ import annotations

import os
import tempfile

from twisted.logger import LogLevel
from twisted.trial.unittest import SynchronousTestCase

from twisted_compute import log as log_mod
from twisted_compute import tap


class DebugOptionTests(SynchronousTestCase):

    def setUp(self):
        self.addCleanup(log_mod.set_debug, log_mod.debug_enabled())
        self.events = []
        self.log = log_mod.Logger(observer=self.events.append)

    def levels(self):
        return [e["log_level"] for e in self.events]

    def load(self, text: str):
        with tempfile.NamedTemporaryFile("w", suffix=".conf",
                                         delete=False) as f:
            f.write(text)
        self.addCleanup(os.unlink, f.name)
        return tap.load_config({"config_files": [f.name]})

    def test_debug_off_by_default_in_a_role(self):
        self.load("[DEFAULT]\n")
        self.log.debug("hidden {x}", x=1)
        self.log.emit(LogLevel.debug, "hidden too")
        self.log.info("shown")
        self.log.warn("shown")
        self.assertEqual(self.levels(), [LogLevel.info, LogLevel.warn])

    def test_debug_on(self):
        self.load("[DEFAULT]\ndebug = true\n")
        self.log.debug("shown {x}", x=1)
        self.assertEqual(self.levels(), [LogLevel.debug])
        self.assertEqual(self.events[0]["x"], 1)
