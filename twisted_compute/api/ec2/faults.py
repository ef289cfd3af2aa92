"""EC2 errors: the codes EC2 clients know, their XML form, and the fault
wrapper of the ``ec2`` pipeline (no traceback, and no Nova JSON fault,
ever reaches an EC2 client)::

    <Response><Errors><Error><Code>..</Code><Message>..</Message></Error>
    </Errors><RequestID>..</RequestID></Response>
"""

from __future__ import annotations

from functools import partial
from xml.sax.saxutils import escape

from twisted.python.failure import Failure

from twisted_compute import exception
from twisted_compute.api.middleware import Middleware, render_child
from twisted_compute.api.middleware.fault import NUL_IN_URL, nul_in_url
from twisted_compute.context import generate_request_id
from twisted_compute.log import Logger

log = Logger()


class Ec2Error(Exception):
    """An error with EC2's ``code`` (``InvalidInstanceID.NotFound``, ...)
    and HTTP ``status``."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def auth_failure() -> Ec2Error:
    # The same words whatever was wrong (unknown key, bad signature):
    # nothing tells a caller how close it came.
    return Ec2Error("AuthFailure", "AWS was not able to validate the "
                    "provided access credentials", 401)


def error_xml(code: str, message: str, request_id: str) -> bytes:
    return ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            f"<Response><Errors><Error><Code>{escape(code)}</Code>"
            f"<Message>{escape(message)}</Message></Error></Errors>"
            f"<RequestID>{escape(request_id)}</RequestID></Response>"
            ).encode("utf-8")


def from_exception(error: BaseException) -> Ec2Error:
    """The EC2 error a domain exception stands for."""
    if isinstance(error, Ec2Error):
        return error
    if isinstance(error, exception.ComputeException):
        message = error.format_message() if hasattr(
            error, "format_message") else str(error)
        for kind, code, status in _MAPPING:
            if isinstance(error, kind):
                return Ec2Error(code, message, status)
        if error.code < 500 or getattr(error, "safe", False):
            return Ec2Error("InvalidParameterValue" if error.code < 500
                            else "Unavailable", message,
                            400 if error.code < 500 else 503)
    log.failure("Unexpected error in the EC2 API", Failure(error))
    return Ec2Error("InternalError", "An internal error has occurred", 500)


_MAPPING = (
    (exception.InstanceNotFound, "InvalidInstanceID.NotFound", 400),
    (exception.KeypairNotFound, "InvalidKeyPair.NotFound", 400),
    (exception.KeyPairExists, "InvalidKeyPair.Duplicate", 400),
    (exception.InvalidKeypair, "InvalidKeyPair.Format", 400),
    (exception.ImageNotFoundForBoot, "InvalidAMIID.NotFound", 400),
    (exception.ImageNotFound, "InvalidAMIID.NotFound", 400),
    (exception.ImageNotActive, "InvalidAMIID.Unavailable", 400),
    (exception.InvalidFlavorRef, "InvalidParameterValue", 400),
    (exception.FlavorNotFound, "InvalidParameterValue", 400),
    (exception.InvalidAvailabilityZone, "InvalidParameterValue", 400),
    (exception.TooManyInstances, "InstanceLimitExceeded", 400),
    (exception.KeypairLimitExceeded, "ResourceLimitExceeded", 400),
    (exception.MetadataLimitExceeded, "TagLimitExceeded", 400),
    (exception.OverQuota, "ResourceLimitExceeded", 400),
    (exception.PolicyNotAuthorized, "UnauthorizedOperation", 403),
    (exception.Forbidden, "UnauthorizedOperation", 403),
    (exception.InstanceInvalidState, "IncorrectInstanceState", 400),
    (exception.InstanceIsLocked, "OperationNotPermitted", 400),
    (exception.InstanceNotReady, "IncorrectInstanceState", 400),
    (exception.NotImplementedYet, "Unsupported", 400),
    (exception.NotAuthenticated, "AuthFailure", 401),
    (exception.ServiceUnavailable, "Unavailable", 503),
    (exception.MessagingTimeout, "Unavailable", 503),
    (exception.Invalid, "InvalidParameterValue", 400),
    (exception.NotFound, "InvalidParameterValue", 400),
    (exception.Conflict, "IncorrectState", 400),
)


def request_id_of(request) -> str:
    request_id = getattr(request, "request_id", None)
    if not request_id:
        request_id = request.request_id = generate_request_id()
    return request_id


def write_error(request, error: BaseException) -> bytes:
    """Status and headers of ``error`` set on ``request``; the body."""
    ec2 = from_exception(error)
    request.setResponseCode(ec2.status)
    request.setHeader(b"content-type", b"text/xml;charset=UTF-8")
    return error_xml(ec2.code, ec2.message, request_id_of(request))


def _processing_failed(request, failure: Failure):
    if request.finished or request._disconnected:
        return None
    if request.startedWriting:
        log.failure("Error after the EC2 response started", failure)
        request.loseConnection()
        return None
    body = write_error(request, failure.value)
    request.setHeader(b"content-length", str(len(body)).encode())
    request.write(body)
    request.finish()
    return None


class Ec2FaultWrapper(Middleware):
    """Whatever fails below becomes an EC2 XML error."""

    def render(self, request):
        request.processingFailed = partial(_processing_failed, request)
        # Middleware below that answers a failed check this way.
        request.ec2_error = partial(write_error, request)
        if nul_in_url(request):
            return write_error(request, exception.InvalidInput(
                reason=NUL_IN_URL))
        try:
            return render_child(self.wrapped, request)
        except Exception as error:  # noqa: BLE001 - the client gets XML
            return write_error(request, error)


def finish_with_error(request, error: BaseException) -> None:
    """Write ``error`` on a request being answered later."""
    if request.finished or request._disconnected:
        return
    body = write_error(request, error)
    request.setHeader(b"content-length", str(len(body)).encode())
    request.write(body)
    request.finish()
