"""The notifier on its own: the oslo.messaging envelope, drivers and
formats, the sink each transport_url gives, the bounded queue of
notifications a missing broker leaves behind, and the options."""

from __future__ import annotations

import json
import os
import tempfile

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase

from twisted_compute import config, tap
from twisted_compute.context import RequestContext
from twisted_compute.notifications import (
    MemorySink, Notifier, NotifierService, TransportSink, make_notifier)
from twisted_compute.rpc.transport import Target

CTX = RequestContext(user_id="u1", project_id="p1", request_id="req-1")
PAYLOAD = {"nova_object.name": "X", "nova_object.namespace": "nova",
           "nova_object.version": "1.0", "nova_object.data": {"a": 1}}


def quiet(notifier: Notifier) -> list[dict]:
    """Keep ``notifier``'s log events in a list (returned)."""
    events: list[dict] = []
    notifier.log = Logger(observer=events.append)
    return events


class FlakySink:
    """A sink whose publishes wait until told, or fail while ``down``."""

    synchronous = False

    def __init__(self):
        self.down = False
        self.hold = False
        self.sent: list[tuple[str, dict]] = []
        self.waiting: list[defer.Deferred] = []
        self.started = self.stopped = False

    def publish(self, routing_key, body):
        if self.down:
            return defer.fail(ConnectionError("broker away"))
        if self.hold:
            d = defer.Deferred()
            d.addCallback(lambda _: self.sent.append((routing_key, body)))
            self.waiting.append(d)
            return d
        self.sent.append((routing_key, body))
        return defer.succeed(None)

    def release(self):
        waiting, self.waiting = self.waiting, []
        for d in waiting:
            d.callback(None)

    def start(self):
        self.started = True
        return defer.succeed(None)

    def stop(self):
        self.stopped = True
        return defer.succeed(None)

    def event_types(self):
        return [json.loads(body["oslo.message"])["event_type"]
                for _, body in self.sent]


def conf_with(**sections):
    conf = config.load()
    return conf.with_overrides(**sections)


class EnvelopeTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1_700_000_000.25)
        self.sink = MemorySink()
        self.notifier = Notifier(self.clock, self.sink,
                                 drivers=["messagingv2"])

    def test_messagingv2_envelope(self):
        self.notifier.notify(CTX, "nova-compute:hv1",
                             "instance.power_off.start", PAYLOAD)
        [published] = self.sink.published
        self.assertEqual(published.routing_key,
                         "versioned_notifications.info")
        self.assertEqual(set(published.body),
                         {"oslo.version", "oslo.message"})
        self.assertEqual(published.body["oslo.version"], "2.0")
        self.assertIsInstance(published.body["oslo.message"], str)
        message = json.loads(published.body["oslo.message"])
        self.assertEqual(message["publisher_id"], "nova-compute:hv1")
        self.assertEqual(message["event_type"], "instance.power_off.start")
        self.assertEqual(message["priority"], "INFO")
        self.assertEqual(message["payload"], PAYLOAD)
        self.assertEqual(message["timestamp"], "2023-11-14 22:13:20.250000")
        self.assertEqual(len(message["message_id"]), 36)
        # the request context, as oslo.messaging packs it
        self.assertEqual(message["_context_request_id"], "req-1")
        self.assertEqual(message["_context_user_id"], "u1")
        self.assertEqual(message["_context_project_id"], "p1")
        self.assertIn("_unique_id", message)

    def test_error_priority_goes_to_the_error_key(self):
        self.notifier.notify(CTX, "nova-compute:hv1",
                             "instance.create.error", PAYLOAD,
                             priority="ERROR")
        [published] = self.sink.published
        self.assertEqual(published.routing_key,
                         "versioned_notifications.error")
        self.assertEqual(published.message["priority"], "ERROR")

    def test_each_topic_gets_one(self):
        notifier = Notifier(self.clock, self.sink, drivers=["messagingv2"],
                            topics=["versioned_notifications", "audit"])
        notifier.notify(CTX, "nova-api:api1", "service.update", PAYLOAD)
        self.assertEqual([p.routing_key for p in self.sink.published],
                         ["versioned_notifications.info", "audit.info"])

    def test_messaging_driver_sends_the_bare_message(self):
        notifier = Notifier(self.clock, self.sink, drivers=["messaging"])
        notifier.notify(CTX, "nova-api:api1", "service.update", PAYLOAD)
        [published] = self.sink.published
        self.assertNotIn("oslo.message", published.body)
        self.assertEqual(published.body["event_type"], "service.update")

    def test_log_driver_logs_and_sends_nothing(self):
        notifier = Notifier(self.clock, None, drivers=["log"])
        events = quiet(notifier)
        notifier.notify(CTX, "nova-api:api1", "service.update", PAYLOAD)
        [event] = events
        self.assertEqual(event["event_type"], "service.update")
        self.assertEqual(json.loads(event["message"])["payload"], PAYLOAD)

    def test_a_payload_that_fails_to_build_is_logged_not_raised(self):
        publisher = self.notifier.prepare("nova-compute:hv1")
        events = []
        publisher.log = Logger(observer=events.append)

        def broken():
            raise KeyError("no such field")

        publisher.notify(CTX, "instance.update", broken)
        self.assertEqual(list(self.sink.published), [])
        self.assertEqual(len(events), 1)
        self.assertIn("log_failure", events[0])

    def test_a_message_that_is_not_json_is_logged_not_raised(self):
        events = quiet(self.notifier)
        self.notifier.notify(CTX, "nova-api:api1", "service.update",
                             {"bad": object()})
        self.assertEqual(list(self.sink.published), [])
        self.assertEqual(len(events), 1)


class DriverAndFormatTests(SynchronousTestCase):
    """What :func:`make_notifier` builds for each configuration."""

    def make(self, fmt="versioned", driver=("messagingv2",), url="",
             rpc_url="local://", transport=None):
        conf = conf_with(
            DEFAULT={"transport_url": rpc_url},
            notifications={"notification_format": fmt},
            oslo_messaging_notifications={"driver": list(driver),
                                          "transport_url": url})
        return make_notifier(conf, Clock(), transport)

    def test_defaults_emit_nothing(self):
        # As Nova and oslo.messaging: unversioned format, no driver.
        notifier = make_notifier(config.load(), Clock())
        self.assertFalse(notifier.enabled)
        notifier.notify(CTX, "nova-api:a", "service.update", PAYLOAD)
        self.assertEqual(list(notifier.pending), [])

    def test_noop_emits_nothing(self):
        notifier = self.make(driver=["noop"])
        self.assertFalse(notifier.enabled)
        self.assertIsNone(notifier.sink)
        publisher = notifier.prepare("nova-compute:hv1")
        built = []
        publisher.notify(CTX, "instance.update",
                         lambda: built.append(1) or PAYLOAD)
        self.assertEqual(built, [])  # not even built

    def test_unversioned_and_none_emit_nothing(self):
        for fmt in ("unversioned", "none"):
            self.assertFalse(self.make(fmt=fmt).enabled, fmt)

    def test_versioned_and_both_emit(self):
        for fmt in ("versioned", "both"):
            self.assertTrue(self.make(fmt=fmt).enabled, fmt)

    def test_local_bus_is_the_in_process_sink(self):
        notifier = self.make()
        self.assertIsInstance(notifier.sink, MemorySink)
        notifier.notify(CTX, "nova-api:a", "service.update", PAYLOAD)
        self.assertEqual(notifier.sink.event_types(), ["service.update"])

    def test_the_rpc_broker_is_reused(self):
        url = "rabbit://guest:guest@127.0.0.1:5672/"

        class Transport:
            exchange = "nova"

        rpc = Transport()
        notifier = self.make(rpc_url=url, transport=rpc)
        self.assertIsInstance(notifier.sink, TransportSink)
        self.assertIs(notifier.sink.transport, rpc)
        self.assertFalse(notifier.sink.owned)

    def test_a_broker_of_its_own(self):
        notifier = self.make(url="rabbit://guest:guest@127.0.0.1:5999/n")
        self.assertIsInstance(notifier.sink, TransportSink)
        self.assertTrue(notifier.sink.owned)
        self.assertEqual(notifier.sink.transport.url.hosts[0].port, 5999)
        self.assertEqual(notifier.sink.transport.url.virtual_host, "n")

    def test_a_bad_url_stops_the_process_naming_the_option(self):
        with self.assertRaises(SystemExit) as caught:
            self.make(url="kafka://somewhere")
        self.assertIn("[oslo_messaging_notifications] transport_url",
                      str(caught.exception))

    def test_a_bad_driver_name_stops_the_process_naming_the_option(self):
        with tempfile.NamedTemporaryFile("w", suffix=".conf",
                                         delete=False) as handle:
            handle.write("[oslo_messaging_notifications]\n"
                         "driver = messagingv3\n")
        self.addCleanup(os.unlink, handle.name)
        with self.assertRaises(config.ConfigError) as caught:
            config.load([handle.name])
        self.assertIn("[oslo_messaging_notifications] driver",
                      str(caught.exception))
        with self.assertRaises(SystemExit) as stopped:
            tap.load_config({"config_files": [handle.name]})
        self.assertIn("[oslo_messaging_notifications] driver",
                      str(stopped.exception))
        self.assertIn("messagingv3", str(stopped.exception))

    def test_a_bad_format_is_refused(self):
        with tempfile.NamedTemporaryFile("w", suffix=".conf",
                                         delete=False) as handle:
            handle.write("[notifications]\nnotification_format = json\n")
        self.addCleanup(os.unlink, handle.name)
        with self.assertRaises(config.ConfigError) as caught:
            config.load([handle.name])
        self.assertIn("[notifications] notification_format",
                      str(caught.exception))


class TransportSinkTests(SynchronousTestCase):
    def test_a_cast_to_the_routing_key_bounded_in_time(self):
        casts = []

        class Transport:
            def cast(self, target, message, timeout=None):
                casts.append((target, message, timeout))
                return defer.succeed(None)

        sink = TransportSink(Transport(), timeout=7)
        self.successResultOf(sink.publish("versioned_notifications.info",
                                          {"oslo.version": "2.0"}))
        self.assertEqual(casts, [(Target("versioned_notifications.info"),
                                  {"oslo.version": "2.0"}, 7)])


class QueueTests(SynchronousTestCase):
    """Publishing never holds up the caller; a broker away fills a bounded
    queue that drops its oldest."""

    def setUp(self):
        self.clock = Clock()
        self.sink = FlakySink()
        self.notifier = Notifier(self.clock, self.sink,
                                 drivers=["messagingv2"], queue_size=3,
                                 retry_delay=1.0, batch=2)
        self.events = quiet(self.notifier)
        self.successResultOf(self.notifier.start())
        self.assertTrue(self.sink.started)

    def send(self, *names):
        for name in names:
            self.notifier.notify(CTX, "nova-compute:hv1", name, PAYLOAD)

    def test_published_in_order_after_the_caller_returned(self):
        self.send("a", "b", "c")
        # notify() returned before anything was published
        self.assertEqual(self.sink.sent, [])
        self.clock.advance(0)
        self.assertEqual(self.sink.event_types(), ["a", "b", "c"])
        self.assertEqual((self.notifier.sent, len(self.notifier.pending)),
                         (3, 0))

    def test_a_publish_that_hangs_does_not_hold_up_notify(self):
        self.sink.hold = True
        self.send("a")
        self.clock.advance(0)
        self.send("b", "c")  # returns at once, queued behind "a"
        self.assertEqual(len(self.notifier.pending), 2)
        self.sink.release()
        self.clock.advance(0)
        self.sink.release()
        self.assertEqual(self.sink.event_types(), ["a", "b", "c"])

    def test_broker_away_drops_the_oldest_with_a_warning(self):
        self.sink.down = True
        self.send("a", "b")
        self.clock.advance(0)  # tried, failed, back in the queue
        self.assertEqual(self.sink.sent, [])
        self.send("c", "d", "e")
        self.assertEqual(self.notifier.dropped, 2)
        self.assertEqual(
            [json.loads(p.body["oslo.message"])["event_type"]
             for p in self.notifier.pending], ["c", "d", "e"])
        warnings = [e for e in self.events
                    if "dropped" in e.get("log_format", "")]
        self.assertEqual(len(warnings), 1)  # rate limited
        self.assertEqual(warnings[0]["count"], 1)
        # the broker comes back: the queue drains, in order
        self.sink.down = False
        self.clock.advance(1.0)
        self.clock.advance(0)
        self.assertEqual(self.sink.event_types(), ["c", "d", "e"])
        self.assertEqual(len(self.notifier.pending), 0)

    def test_stop_is_bounded_and_stops_the_sink(self):
        self.sink.hold = True
        self.send("a")
        self.clock.advance(0)
        stopped = self.notifier.stop()
        self.assertNoResult(stopped)
        self.clock.advance(self.notifier.stop_timeout)
        self.successResultOf(stopped)
        self.assertTrue(self.sink.stopped)

    def test_the_service_runs_the_notifier(self):
        notifier = Notifier(self.clock, FlakySink(), drivers=["messagingv2"])
        service = NotifierService(notifier)
        service.startService()
        self.assertTrue(notifier.sink.started)
        notifier.notify(CTX, "nova-api:a", "service.update", PAYLOAD)
        self.clock.advance(0)
        self.assertEqual(notifier.sink.event_types(), ["service.update"])
        self.successResultOf(service.stopService())
        self.assertTrue(notifier.sink.stopped)
