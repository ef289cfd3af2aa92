"""``common.json_response``: the bytes every JSON answer is made of."""

from __future__ import annotations

import datetime

from twisted.trial.unittest import SynchronousTestCase
from twisted.web.test.requesthelper import DummyRequest

from twisted_compute.api.openstack import common


class JSONResponseTests(SynchronousTestCase):
    def render(self, body, status=200):
        request = DummyRequest([b""])
        data = common.json_response(request, body, status)
        return request, data

    def test_compact_ascii_in_insertion_order(self):
        body = {"servers": [{"id": "a", "name": "caf\u00e9 \u2603",
                             "metadata": {}, "progress": 0,
                             "locked": False, "key_name": None,
                             "ratio": 1.5, "z": 1, "b": [1, "x"]}]}
        request, data = self.render(body)
        self.assertEqual(
            data,
            b'{"servers":[{"id":"a","name":"caf\\u00e9 \\u2603",'
            b'"metadata":{},"progress":0,"locked":false,"key_name":null,'
            b'"ratio":1.5,"z":1,"b":[1,"x"]}]}')
        self.assertEqual(request.responseCode, 200)
        self.assertEqual(request.responseHeaders.getRawHeaders(
            b"content-type"), [b"application/json"])

    def test_datetimes_sets_and_tuples(self):
        body = {"when": datetime.datetime(2026, 1, 2, 3, 4, 5, 678),
                "tuple": ("a", "b"), "set": {"only"}}
        _, data = self.render(body)
        self.assertEqual(data, b'{"when":"2026-01-02T03:04:05Z",'
                               b'"tuple":["a","b"],"set":["only"]}')

    def test_unknown_type_is_an_error(self):
        self.assertRaises(TypeError, self.render, {"x": object()})

    def test_each_answer_is_encoded_afresh(self):
        # One encoder serves every response: nothing of one body may
        # leak into the next.
        _, first = self.render({"a": [1, 2]})
        _, second = self.render({"b": {"c": None}})
        self.assertEqual((first, second), (b'{"a":[1,2]}',
                                           b'{"b":{"c":null}}'))

    def test_no_body(self):
        request, data = self.render(None, 204)
        self.assertEqual((data, request.responseCode), (b"", 204))
        self.assertIsNone(request.responseHeaders.getRawHeaders(
            b"content-type"))
        request, data = self.render({"a": 1}, 204)
        self.assertEqual(data, b"")
