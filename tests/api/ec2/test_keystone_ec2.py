"""The keystone strategy's EC2 check: what goes to ``POST /v3/ec2tokens``
and what its answers become."""

from __future__ import annotations

import json
import types

from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.http_headers import Headers

from twisted_compute import config, exception
from twisted_compute.api.ec2 import auth
from twisted_compute.api.ec2.faults import Ec2Error
from twisted_compute.api.middleware.auth import KeystoneClient

TOKEN = {"token": {"roles": [{"name": "member"}],
                   "project": {"id": "p1", "name": "demo"},
                   "user": {"id": "u1", "name": "carol"}}}


class Response:
    def __init__(self, code, body, headers=None):
        self.code, self._body = code, json.dumps(body).encode()
        self.headers = Headers(headers or {})

    def content(self):
        return defer.succeed(self._body)


class FakeHTTP:
    def __init__(self, answers):
        self.answers = list(answers)
        self.posts = []

    def post(self, url, **kwargs):
        self.posts.append((url, kwargs))
        return defer.succeed(self.answers.pop(0))


def service_token():
    return Response(201, {"token": {}}, {b"x-subject-token": [b"svc"]})


REQ = auth.Ec2Request(
    method="POST", raw_path="/", query=(),
    headers=(("Host", "h:8773"), ("X-Amz-Date", "20261202T000000Z"),
             ("Authorization", "AWS4-HMAC-SHA256 ...")),
    body=b"Action=DescribeRegions", params={"Action": "DescribeRegions"})
CLAIM = auth.Claim(version=4, access="AK", signature="sig")


class Ec2TokensTests(SynchronousTestCase):
    def client(self, answers):
        self.http = FakeHTTP(answers)
        conf = config.load()
        keystone = KeystoneClient(conf, types.SimpleNamespace(),
                                  http=self.http, clock=lambda: 1000.0)
        return auth.Ec2TokenClient(conf, keystone)

    def test_accepted_signature_gives_the_identity(self):
        client = self.client([service_token(), Response(
            200, TOKEN, {b"x-subject-token": [b"user-token"]})])
        identity = self.successResultOf(defer.ensureDeferred(
            client.authenticate(REQ, CLAIM)))
        self.assertEqual((identity["user_id"], identity["project_id"],
                          identity["roles"], identity["auth_token"]),
                         ("u1", "p1", ("member",), "user-token"))
        url, kwargs = self.http.posts[-1]
        self.assertTrue(url.endswith("/ec2tokens"))
        self.assertEqual(kwargs["headers"], {"X-Auth-Token": "svc"})
        sent = kwargs["json"]["credentials"]
        self.assertEqual((sent["access"], sent["signature"], sent["host"],
                          sent["verb"], sent["path"]),
                         ("AK", "sig", "h:8773", "POST", "/"))
        self.assertEqual(sent["headers"]["X-Amz-Date"], "20261202T000000Z")
        import hashlib
        self.assertEqual(sent["body_hash"], hashlib.sha256(
            b"Action=DescribeRegions").hexdigest())

    def test_refused_signature_is_auth_failure(self):
        client = self.client([service_token(), Response(401, {
            "error": {"message": "no"}})])
        failure = self.failureResultOf(defer.ensureDeferred(
            client.authenticate(REQ, CLAIM)), Ec2Error)
        self.assertEqual(failure.value.code, "AuthFailure")

    def test_cached_service_token_is_renewed_once_on_401(self):
        client = self.client([service_token(), Response(
            200, TOKEN), Response(401, {}), service_token(),
            Response(200, TOKEN)])
        self.successResultOf(defer.ensureDeferred(
            client.authenticate(REQ, CLAIM)))
        self.successResultOf(defer.ensureDeferred(
            client.authenticate(REQ, CLAIM)))
        self.assertEqual(len(self.http.posts), 5)

    def test_keystone_error_is_unavailable(self):
        client = self.client([service_token(), Response(500, {})])
        self.failureResultOf(defer.ensureDeferred(
            client.authenticate(REQ, CLAIM)), exception.ServiceUnavailable)
