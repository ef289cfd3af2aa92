"""The behaviour every transport must show, as a mixin.

A concrete test case provides ``make_transport()`` (a started transport on
the shared bus/broker of the test, cleaned up afterwards), ``send_raw(key,
body)`` (put undecodable bytes on a queue, as a broken peer would) and
``short_timeout`` (seconds).  Everything here runs on the real reactor.
"""

from __future__ import annotations

import uuid

from twisted.internet import defer, reactor, task
from twisted.logger import Logger

from twisted_compute import exception
from twisted_compute.context import RequestContext
from twisted_compute.rpc import (
    ITransport, NoSuchMethod, RemoteError, RPCClient, RPCServer,
    UnsupportedVersion)
from twisted_compute.rpc.errors import MalformedMessage
from twisted_compute.rpc.transport import Target


class Manager:
    """An RPC endpoint recording what it was asked."""

    target_version = "1.3"

    def __init__(self, name: str):
        self.name = name
        self.casts: list = []
        self.calls: list = []
        self.db_tries: dict = {}
        self.db_done: list = []

    def echo(self, context, value):
        self.calls.append(value)
        return {"server": self.name, "value": value,
                "request_id": context.request_id,
                "user_id": context.user_id, "project_id": context.project_id}

    async def async_echo(self, context, value, delay=0.0):
        await task.deferLater(reactor, delay, lambda: None)
        self.calls.append(value)
        return {"server": self.name, "value": value}

    def note(self, context, value):
        self.casts.append((value, context.request_id))

    def flaky_db(self, context, value):
        """The database is away for the first two tries."""
        self.db_tries[value] = self.db_tries.get(value, 0) + 1
        if self.db_tries[value] < 3:
            raise exception.DBUnavailable(reason="restarting")
        self.db_done.append(value)
        return {"value": value, "tries": self.db_tries[value]}

    def never(self, context):
        return defer.Deferred()  # never answers

    def lose_instance(self, context, instance_id):
        raise exception.InstanceNotFound(instance_id=instance_id)

    def no_host(self, context):
        raise exception.NoValidHost(reason="all hosts are full")

    def explode(self, context):
        raise KeyError("boom")

    def bad_result(self, context):
        return {"not json": object()}

    def _private(self, context):
        return "secret"


async def wait_until(predicate, timeout=5.0, step=0.01):
    """Poll ``predicate`` on the reactor until true or ``timeout``."""
    waited = 0.0
    while not predicate():
        if waited >= timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        await task.deferLater(reactor, step, lambda: None)
        waited += step


class BusHelpers:
    """Mixed into a trial ``TestCase`` with make_transport/send_raw."""

    short_timeout = 0.3
    call_timeout = 10

    def setUp(self):
        super().setUp()
        self.topic = "t" + uuid.uuid4().hex[:10]
        self.ctx = RequestContext(user_id="u1", project_id="p1")

    async def serve(self, name: str, transport=None) -> Manager:
        transport = transport or await self.make_transport()
        manager = Manager(name)
        server = RPCServer(transport, self.topic, name, [manager])
        server.events = []
        server.log = Logger(observer=server.events.append)
        await server.start()
        self.addCleanup(lambda: defer.ensureDeferred(server.stop()))
        manager.server = server
        return manager

    async def client(self, transport=None, **kw) -> RPCClient:
        transport = transport or await self.make_transport()
        kw.setdefault("timeout", self.call_timeout)
        return RPCClient(transport, self.topic, **kw)


class BusBehaviour(BusHelpers):
    """The tests every transport passes."""

    # --- the tests ---------------------------------------------------------

    async def test_provides_interface(self):
        from zope.interface.verify import verifyObject
        self.assertTrue(verifyObject(ITransport, await self.make_transport()))

    async def test_a_lost_database_requeues_the_message(self):
        """A handler that meets a lost database has its message given
        back to the queue, not answered with an error (nor dropped, for
        a cast): it is handled once the database is back."""
        manager = await self.serve("s1")
        manager.server.requeue_delay = 0.05
        client = await self.client()
        result = await client.call(self.ctx, "flaky_db", value=3)
        self.assertEqual(result, {"value": 3, "tries": 3})
        await client.cast(self.ctx, "flaky_db", value=4)
        await wait_until(lambda: manager.db_done == [3, 4])
        self.assertEqual(manager.db_tries, {3: 3, 4: 3})

    async def test_call_returns_the_reply(self):
        await self.serve("s1")
        client = await self.client()
        result = await client.call(self.ctx, "echo", value=[1, "two"])
        self.assertEqual(result["value"], [1, "two"])
        self.assertEqual(result["server"], "s1")

    async def test_context_travels(self):
        await self.serve("s1")
        client = await self.client()
        result = await client.call(self.ctx, "echo", value=1)
        self.assertEqual(result["request_id"], self.ctx.request_id)
        self.assertEqual((result["user_id"], result["project_id"]),
                         ("u1", "p1"))

    async def test_request_id_in_the_server_log(self):
        manager = await self.serve("s1")
        client = await self.client()
        await client.call(self.ctx, "echo", value=1)
        await client.cast(self.ctx, "note", value=2)
        await wait_until(lambda: manager.casts)
        from twisted.logger import formatEvent
        lines = [formatEvent(e) for e in manager.server.events]
        handled = [line for line in lines if " handled in " in line]
        self.assertEqual(len(handled), 2, lines)
        for line in handled:
            self.assertIn(self.ctx.request_id, line)

    async def test_async_endpoint(self):
        await self.serve("s1")
        client = await self.client()
        result = await client.call(self.ctx, "async_echo", value="x",
                                   delay=0.01)
        self.assertEqual(result, {"server": "s1", "value": "x"})

    async def test_cast_is_delivered(self):
        manager = await self.serve("s1")
        client = await self.client()
        self.assertIsNone(await client.cast(self.ctx, "note", value="hi"))
        await wait_until(lambda: manager.casts)
        self.assertEqual(manager.casts, [("hi", self.ctx.request_id)])

    async def test_fanout_reaches_every_server(self):
        managers = [await self.serve(f"s{i}") for i in range(3)]
        client = (await self.client()).prepare(fanout=True)
        await client.cast(self.ctx, "note", value="all")
        await wait_until(lambda: all(m.casts for m in managers))
        await task.deferLater(reactor, 0.1, lambda: None)
        for manager in managers:
            self.assertEqual(manager.casts, [("all", self.ctx.request_id)])

    async def test_fanout_cannot_be_a_call(self):
        client = (await self.client()).prepare(fanout=True)
        with self.assertRaises(ValueError):
            await client.call(self.ctx, "echo", value=1)

    async def test_work_is_shared(self):
        first = await self.serve("s1")
        second = await self.serve("s2")
        client = await self.client()
        for n in range(20):
            await client.cast(self.ctx, "note", value=n)
        await wait_until(lambda: len(first.casts) + len(second.casts) == 20)
        self.assertTrue(first.casts and second.casts,
                        (first.casts, second.casts))
        values = sorted(v for v, _ in first.casts + second.casts)
        self.assertEqual(values, list(range(20)))  # each exactly once
        servers = {(await client.call(self.ctx, "echo", value=n))["server"]
                   for n in range(6)}
        self.assertEqual(servers, {"s1", "s2"})

    async def test_server_targeted(self):
        await self.serve("s1")
        await self.serve("s2")
        client = (await self.client()).prepare(server="s2")
        for n in range(4):
            result = await client.call(self.ctx, "echo", value=n)
            self.assertEqual(result["server"], "s2")

    async def test_call_times_out(self):
        await self.serve("s1")
        client = (await self.client()).prepare(timeout=self.short_timeout)
        with self.assertRaises(exception.MessagingTimeout) as caught:
            await client.call(self.ctx, "never")
        self.assertIn("never", str(caught.exception))

    async def test_call_without_server_times_out(self):
        client = (await self.client()).prepare(timeout=self.short_timeout)
        with self.assertRaises(exception.MessagingTimeout):
            await client.call(self.ctx, "echo", value=1)

    async def test_domain_exceptions_come_back_typed(self):
        await self.serve("s1")
        client = await self.client()
        with self.assertRaises(exception.InstanceNotFound) as caught:
            await client.call(self.ctx, "lose_instance", instance_id="i-9")
        self.assertEqual(str(caught.exception),
                         "Instance i-9 could not be found.")
        self.assertEqual(caught.exception.kwargs, {"instance_id": "i-9"})
        self.assertEqual(caught.exception.code, 404)
        with self.assertRaises(exception.NoValidHost) as caught:
            await client.call(self.ctx, "no_host")
        self.assertIn("all hosts are full", str(caught.exception))

    async def test_other_exceptions_come_back_as_remote_error(self):
        await self.serve("s1")
        client = await self.client()
        with self.assertRaises(RemoteError) as caught:
            await client.call(self.ctx, "explode")
        self.assertEqual(caught.exception.exc_type, "KeyError")
        self.assertIn("boom", caught.exception.value)
        with self.assertRaises(RemoteError) as caught:
            await client.call(self.ctx, "bad_result")
        self.assertEqual(caught.exception.exc_type, "TypeError")
        # and the server keeps serving
        self.assertEqual(
            (await client.call(self.ctx, "echo", value=3))["value"], 3)

    async def test_version_refused(self):
        await self.serve("s1")
        client = await self.client()
        for version in ("1.4", "2.0", "0.9"):
            with self.assertRaises(UnsupportedVersion) as caught:
                await client.prepare(version=version).call(
                    self.ctx, "echo", value=1)
            self.assertIn(version, str(caught.exception))
        for version in ("1.0", "1.3"):
            result = await client.prepare(version=version).call(
                self.ctx, "echo", value=version)
            self.assertEqual(result["value"], version)

    async def test_unknown_method(self):
        await self.serve("s1")
        client = await self.client()
        for method in ("no_such_thing", "_private", "__init__"):
            with self.assertRaises(NoSuchMethod) as caught:
                await client.call(self.ctx, method)
            self.assertIn(method, str(caught.exception))

    async def test_arguments_must_be_json(self):
        client = await self.client()
        with self.assertRaises(TypeError):
            await client.call(self.ctx, "echo", value=object())
        with self.assertRaises(TypeError):
            await client.cast(self.ctx, "note", value={1, 2})

    async def test_malformed_messages_are_rejected(self):
        manager = await self.serve("s1")
        transport = await self.make_transport()
        await self.send_raw(transport, self.topic, b"\xff not json")
        await self.send_raw(transport, self.topic, b"[1, 2]")
        # A JSON object that is no envelope: the caller hears why.
        reply = await transport.call(Target(self.topic), {"args": {}},
                                     self.call_timeout)
        self.assertEqual(reply["failure"]["class"],
                         MalformedMessage.__name__)
        await transport.cast(Target(self.topic), {"method": "note",
                                                  "args": "nope"})
        client = await self.client(transport)
        await client.cast(self.ctx, "note", value="after")
        await wait_until(lambda: manager.casts)
        self.assertEqual(manager.casts, [("after", self.ctx.request_id)])
        self.assertEqual(
            (await client.call(self.ctx, "echo", value=1))["value"], 1)
        self.assertEqual(self.rejected_count(manager), 4)

    def rejected_count(self, manager) -> int:
        from twisted.logger import formatEvent
        own = [e for e in manager.server.events
               if "malformed" in formatEvent(e)]
        return len(own) + self.transport_rejections()
