"""KeystoneClient's errors: whatever goes wrong with Keystone, the client
sees a 503 ServiceUnavailable with a reason, and the operator a log line."""

from __future__ import annotations

import types

from twisted.internet import defer
from twisted.logger import Logger, formatEvent
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.http_headers import Headers

from twisted_compute import config, exception
from twisted_compute.api.middleware.auth import KeystoneClient


class FakeResponse:
    def __init__(self, code, body=b"{}", headers=None):
        self.code = code
        self._body = body
        self.headers = Headers(headers or {})

    def content(self):
        return defer.succeed(self._body)


class FakeHTTP:
    def __init__(self, post=None, get=None):
        self._post, self._get = post, get

    def post(self, url, **kwargs):
        return defer.maybeDeferred(self._post)

    def get(self, url, **kwargs):
        return defer.maybeDeferred(self._get)


def service_token():
    return FakeResponse(201, b'{"token": {}}', {b"x-subject-token": [b"s"]})


class KeystoneErrorTests(SynchronousTestCase):

    def client(self, http):
        client = KeystoneClient(config.load(), types.SimpleNamespace(),
                                http=http, clock=lambda: 1000.0)
        self.events = []
        client.log = Logger(observer=self.events.append)
        return client

    def validate(self, client):
        failure = self.failureResultOf(
            defer.ensureDeferred(client.validate("user-token")),
            exception.ServiceUnavailable)
        return failure.getErrorMessage(), [formatEvent(e)
                                           for e in self.events]

    def test_keystone_unreachable(self):
        def refuse():
            raise ConnectionRefusedError("connection refused")
        message, logged = self.validate(self.client(FakeHTTP(post=refuse)))
        self.assertIn("identity service unreachable", message)
        self.assertEqual(len(logged), 1)
        self.assertIn("Cannot reach Keystone", logged[0])
        self.assertIn("connection refused", logged[0])

    def test_keystone_unreachable_while_validating(self):
        def refuse():
            raise ConnectionRefusedError("gone")
        message, logged = self.validate(self.client(FakeHTTP(
            post=service_token, get=refuse)))
        self.assertIn("identity service unreachable", message)
        self.assertIn("Cannot reach Keystone", logged[0])

    def test_service_credentials_refused(self):
        message, logged = self.validate(self.client(FakeHTTP(
            post=lambda: FakeResponse(401))))
        self.assertIn("refused our service credentials", message)
        self.assertIn("[keystone_authtoken]", logged[0])
        self.assertIn("401", logged[0])

    def test_keystone_error_is_not_cached(self):
        answers = [FakeResponse(500), FakeResponse(404)]
        client = self.client(FakeHTTP(post=service_token,
                                      get=lambda: answers.pop(0)))
        message, logged = self.validate(client)
        self.assertIn("identity service error", message)
        self.assertIn("Keystone answered 500", logged[0])
        # Asked again: the next answer (a bad token) is what counts.
        self.assertIsNone(self.successResultOf(
            defer.ensureDeferred(client.validate("user-token"))))
