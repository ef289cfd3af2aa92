"""``[notifications]`` and ``[oslo_messaging_notifications]``: Nova's
versioned notifications (:mod:`twisted_compute.notifications`)."""

from __future__ import annotations

from twisted_compute.conf.opts import OptGroups, int_opt, list_opt, str_opt

#: The names ``[oslo_messaging_notifications] driver`` may hold, as
#: oslo.messaging's: ``messagingv2`` (the 2.0 envelope), ``messaging``
#: (the bare 1.0 message), ``log`` (one log line each) and ``noop``.
NOTIFICATION_DRIVERS = ("messagingv2", "messaging", "log", "noop")

NOTIFICATIONS_OPTS = [
    str_opt("notification_format", "unversioned",
            "Which notifications are emitted, as Nova: versioned, "
            "unversioned, both or none.  Only the versioned ones are "
            "built here: versioned and both emit them; unversioned (Nova's "
            "default, the legacy format) and none emit nothing",
            choices=("versioned", "unversioned", "both", "none")),
    list_opt("versioned_notifications_topics", ["versioned_notifications"],
             "Topics versioned notifications are sent to; each goes out "
             "with routing key <topic>.<priority> (e.g. "
             "versioned_notifications.info)"),
    int_opt("notification_queue_size", 10000,
            "(twisted-compute) Notifications a process holds while the "
            "notification broker is away; past that the oldest are "
            "dropped, with a warning in the log", min=1),
]

OSLO_NOTIFICATIONS_OPTS = [
    list_opt("driver", [],
             "Drivers notifications are sent with: messagingv2, messaging, "
             "log or noop (as oslo.messaging; none given means no "
             "notifications)", choices=NOTIFICATION_DRIVERS),
    str_opt("transport_url", "",
            "Message bus URL of the notifications (rabbit://..., or "
            "local:// for the process's own in-memory sink); empty means "
            "[DEFAULT] transport_url", secret=True),
    list_opt("topics", ["notifications"],
             "Topics of the legacy (unversioned) notifications, which "
             "twisted-compute does not emit"),
]


def list_opts() -> OptGroups:
    return [("notifications", NOTIFICATIONS_OPTS),
            ("oslo_messaging_notifications", OSLO_NOTIFICATIONS_OPTS)]
