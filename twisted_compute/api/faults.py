"""Nova-style fault bodies, and the one place exceptions become responses.

``{"itemNotFound": {"code": 404, "message": "..."}}``: the fault name
follows the status.  A 5xx from an unexpected exception shows a generic
message; the traceback goes to the log, never to the client.
"""

from __future__ import annotations

import json

from twisted.python.failure import Failure
from twisted.web.error import UnsupportedMethod
from werkzeug.exceptions import HTTPException

from twisted_compute import exception
from twisted_compute.log import Logger

log = Logger()

FAULT_NAMES = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
    429: "overLimit",
    501: "notImplemented",
    503: "serviceUnavailable",
}


def fault_body(code: int, message: str) -> bytes:
    name = FAULT_NAMES.get(code, "computeFault")
    return json.dumps({name: {"code": code, "message": message}}).encode()


def write_fault(request, code: int, message: str,
                headers: dict[str, str] | None = None) -> bytes:
    """Set status and headers of a fault on ``request``; return the body."""
    request.setResponseCode(code)
    request.setHeader(b"content-type", b"application/json")
    for name, value in (headers or {}).items():
        request.setHeader(name.encode(), value.encode())
    if code == 401:
        request.setHeader(b"www-authenticate", getattr(
            request, "www_authenticate", b"Keystone uri=\"\""))
    return fault_body(code, message)


def describe(error: BaseException) -> tuple[int, str]:
    """The status and client-safe message for ``error``."""
    if isinstance(error, exception.ComputeException):
        code = error.code
        if code >= 500 and not error.safe:
            return code, ("Unexpected API Error. Please report this at "
                          "your cloud's operator and attach the request id.")
        return code, error.format_message()
    if isinstance(error, UnsupportedMethod):
        return 405, "The method specified is not allowed for this resource."
    if isinstance(error, HTTPException):
        code = error.code or 500
        if code == 404:
            return 404, "The resource could not be found."
        if code == 405:
            return 405, "The method specified is not allowed for this resource."
        return code, error.description or error.name
    return 500, ("Unexpected API Error. Please report this at your cloud's "
                 "operator and attach the request id.")


def render_failure(request, failure: Failure) -> bytes:
    """Turn ``failure`` into a fault on ``request`` and return the body.

    Unexpected errors (5xx not raised on purpose) are logged with their
    traceback and the request id.
    """
    error = failure.value
    code, message = describe(error)
    if code >= 500 and not (isinstance(error, exception.ComputeException)
                            and error.safe):
        log.failure("Unexpected error handling {method} {uri} "
                    "(request {request_id})", failure,
                    method=request.method.decode(errors="replace"),
                    uri=request.uri.decode(errors="replace"),
                    request_id=getattr(request, "request_id", "-"))
    headers = {}
    if isinstance(error, HTTPException) and code == 405:
        valid = getattr(error, "valid_methods", None)
        if valid:
            headers["Allow"] = ", ".join(valid)
    return write_fault(request, code, message, headers)
