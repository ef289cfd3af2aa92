"""The pieces of a role process (twisted_compute.rpc_service): periodic tasks
that never hold up a stop, and their start jitter."""

from __future__ import annotations

import random
import types

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from twisted_compute import rpc_service as service


class PeriodicTaskStopTests(SynchronousTestCase):

    def test_a_hung_task_does_not_block_the_stop(self):
        clock = Clock()
        cancelled = []
        hung = defer.Deferred(lambda d: cancelled.append(d))
        periodic = service.PeriodicTask("hung", lambda: hung, 60, clock,
                                        stop_timeout=10)
        periodic.start()
        stopped = periodic.stop()
        clock.advance(9.9)
        self.assertNoResult(stopped)
        self.assertEqual(cancelled, [])
        clock.advance(0.1)
        self.assertIsNone(self.successResultOf(stopped))
        self.assertEqual(cancelled, [hung])
        # The cancellation is not reported as a failure of the task.
        self.assertEqual(self.flushLoggedErrors(), [])
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_a_task_that_finishes_in_time_is_waited_for(self):
        clock = Clock()
        running = defer.Deferred()
        periodic = service.PeriodicTask("slow", lambda: running, 60, clock,
                                        stop_timeout=10)
        periodic.start()
        stopped = periodic.stop()
        clock.advance(5)
        self.assertNoResult(stopped)
        running.callback("done")
        self.assertIsNone(self.successResultOf(stopped))
        self.assertEqual(clock.getDelayedCalls(), [])  # no timer left

    def test_an_idle_task_stops_at_once(self):
        clock = Clock()
        periodic = service.PeriodicTask("idle", lambda: None, 60, clock)
        periodic.start()
        self.assertIsNone(self.successResultOf(periodic.stop()))


class RoleServiceTests(SynchronousTestCase):

    def conf(self, **kw):
        values = dict(periodic_fuzzy_delay=60, report_interval=10,
                      periodic_task_stop_timeout=10)
        values.update(kw)
        return types.SimpleNamespace(**values)

    def role(self, conf, **kw):
        return service.RPCRoleService(
            conf, Clock(), transport=None, topic="t", host="h",
            binary="compute-test", endpoints=[],
            periodic=[("a", lambda: None, 30), ("b", lambda: None, 30)],
            **kw)

    def test_start_jitter_comes_from_the_given_source(self):
        draws = iter([0.25, 0.5])
        role = self.role(self.conf(), random=lambda: next(draws))
        self.assertEqual([t.initial_delay for t in role.tasks], [15.0, 30.0])
        seeded = [self.role(self.conf(), random=random.Random(3).random)
                  for _ in range(2)]
        self.assertEqual([t.initial_delay for t in seeded[0].tasks],
                         [t.initial_delay for t in seeded[1].tasks])

    def test_no_jitter_without_fuzzy_delay(self):
        role = self.role(self.conf(periodic_fuzzy_delay=0),
                         random=lambda: 0.9)
        self.assertEqual([t.initial_delay for t in role.tasks], [0.0, 0.0])

    def test_the_stop_bound_reaches_every_task(self):
        role = self.role(self.conf(periodic_task_stop_timeout=3),
                         heartbeat=lambda: None)
        self.assertEqual([t.stop_timeout for t in role.tasks], [3, 3, 3])


class ServiceUpdateTests(SynchronousTestCase):
    """``service.update`` after the first heartbeat that answers, not
    after a later one that shows a new status (the API that changed it
    told it: one notification per change, as Nova)."""

    def test_first_heartbeat_only(self):
        from twisted_compute.notifications import MemorySink, Notifier

        clock = Clock()
        sink = MemorySink()
        publisher = Notifier(clock, sink, drivers=["messagingv2"]).prepare(
            "nova-compute:h")
        rows = iter([
            None,  # a failed beat tells nothing
            {"id": 1, "host": "h", "binary": "nova-compute",
             "disabled": False, "forced_down": False, "report_count": 1},
            {"id": 1, "host": "h", "binary": "nova-compute",
             "disabled": False, "forced_down": False, "report_count": 2},
            {"id": 1, "host": "h", "binary": "nova-compute",
             "disabled": True, "disabled_reason": "maint",
             "forced_down": False, "report_count": 3},
            None])  # a failed beat tells nothing
        role = service.RPCRoleService(
            RoleServiceTests().conf(periodic_fuzzy_delay=0), clock,
            transport=None, topic="compute", host="h",
            binary="nova-compute", endpoints=[],
            heartbeat=lambda: defer.succeed(next(rows)), notifier=publisher)
        [beat] = [t for t in role.tasks if t.name == "heartbeat"]
        for _ in range(5):
            self.successResultOf(defer.maybeDeferred(beat.func))
        messages = sink.messages()
        self.assertEqual([m["event_type"] for m in messages],
                         ["service.update"])
        self.assertEqual(messages[0]["publisher_id"], "nova-compute:h")
        data = [m["payload"]["nova_object.data"] for m in messages]
        self.assertEqual([(d["disabled"], d["disabled_reason"],
                           d["report_count"], d["topic"]) for d in data],
                         [(False, None, 1, "compute")])
