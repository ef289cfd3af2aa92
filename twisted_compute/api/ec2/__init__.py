"""The EC2 Query API (``ec2``, port 8773), as Nova's API process served it
up to Havana, on today's clients (boto3, the AWS CLI), API version
2016-11-15.

The ``[composite:ec2]`` pipeline of ``api-pipeline.ini``: request id,
:class:`~.faults.Ec2FaultWrapper` (EC2's XML errors),
:class:`~.auth.Ec2Authenticate` (Signature V4 or V2), then
:class:`Ec2Executor`, which runs the action (:mod:`.cloud`) and writes
its XML answer (:mod:`.xml`).
"""

from __future__ import annotations

from twisted.internet.defer import ensureDeferred
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from twisted_compute.api.ec2 import cloud, faults, xml
from twisted_compute.api.ec2.faults import Ec2Error
from twisted_compute.log import Logger


class Ec2Executor(Resource):
    """Runs ``Action`` with the request's parameters."""

    isLeaf = True
    log = Logger()

    def __init__(self, services):
        super().__init__()
        self.cloud = cloud.Ec2Cloud(services)

    def render(self, request):
        params = dict(getattr(request, "ec2_params", {}) or {})
        context = request.compute_context
        action = params.get("Action")
        if not action:
            raise Ec2Error("MissingAction",
                           "The request must contain the parameter Action")
        if action not in cloud.ACTIONS:
            raise Ec2Error("InvalidAction",
                           f"The action {action} is not valid for this "
                           "web service.")
        version = params.get("Version")
        if version and version > xml.API_VERSION:
            raise Ec2Error("InvalidParameterValue",
                           f"Version {version} is not supported; this "
                           f"endpoint serves {xml.API_VERSION}")
        host = request.getHeader(b"host")
        scheme = "https" if request.isSecure() else "http"
        params["_host"] = f"{scheme}://{host.decode('latin-1')}" \
            if host else None
        method = getattr(self.cloud, action)
        if action == "RunInstances":
            call = method(context, params, request=request)
        else:
            call = method(context, params)
        deferred = ensureDeferred(call)

        def _done(body):
            if request._disconnected:
                return
            data = xml.response(action, faults.request_id_of(request), body)
            request.setHeader(b"content-type", b"text/xml;charset=UTF-8")
            request.setHeader(b"content-length", str(len(data)).encode())
            request.write(data)
            request.finish()

        def _failed(failure):
            faults.finish_with_error(request, failure.value)

        deferred.addCallbacks(_done, _failed)
        return NOT_DONE_YET


def app_factory(global_conf, **local_conf):
    """``paste.app_factory`` of the EC2 actions."""
    return Ec2Executor(global_conf["services"])
