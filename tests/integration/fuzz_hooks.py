"""schemathesis hooks of :mod:`tests.integration.test_fuzz` (loaded by
``SCHEMATHESIS_HOOKS=tests.integration.fuzz_hooks``): a check that no
answer carries a Python traceback."""

from __future__ import annotations

import json

import schemathesis

#: What a leaked traceback looks like in an answer body.
TRACEBACK_MARKERS = (b"Traceback (most recent call last)",
                     b'File "/', b"twisted.python.failure")


@schemathesis.check
def no_traceback(ctx, response, case):
    """No answer body shows a traceback (the fault wrapper logs it and
    answers a generic message)."""
    body = response.content or b""
    for marker in TRACEBACK_MARKERS:
        if marker in body:
            raise AssertionError(
                f"traceback text ({marker.decode()!r}) in the answer of "
                f"{case.method} {case.formatted_path}: {body[:300]!r}")


@schemathesis.serializer("application/openstack-images-v2.1-json-patch",
                         "application/openstack-images-v2.0-json-patch")
def json_patch(ctx, value):
    """The image API's JSON patch bodies are JSON (the media type names
    the patch dialect)."""
    if isinstance(value, bytes):
        return {"data": value}
    return {"data": json.dumps(value).encode()}
