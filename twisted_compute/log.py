"""The project's :class:`Logger`: Twisted's, minus debug events unless
``[DEFAULT] debug`` is on.

Twisted's logger hands every event to every observer and twistd's file
observer writes them all; the level filter belongs before the event is
built, so that a process not debugging pays nothing for its debug
lines.  Each role calls :func:`set_debug` with its configuration at
start; until then (unit tests, tools) everything is emitted.
"""

from __future__ import annotations

from twisted.logger import LogLevel
from twisted.logger import Logger as _TwistedLogger

_state = {"debug": True}


def set_debug(enabled: bool) -> None:
    """Emit debug events (True) or drop them (False), process-wide."""
    _state["debug"] = bool(enabled)


def debug_enabled() -> bool:
    return _state["debug"]


class Logger(_TwistedLogger):
    """A :class:`twisted.logger.Logger` that drops debug events while
    debugging is off."""

    def emit(self, level, format=None, **kwargs):
        if level is LogLevel.debug and not _state["debug"]:
            return
        super().emit(level, format, **kwargs)
