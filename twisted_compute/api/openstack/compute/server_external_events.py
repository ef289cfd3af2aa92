"""``POST /os-server-external-events`` (admin): events a network service
sends about servers (``network-vif-plugged``, ...), as Nova answers them.

Each event gets its own ``code``: 200 accepted (recorded on the instance
and cast to its host's agent, where a build may be waiting for it), 404
for a server that does not exist or that the caller may not see, 422 for a
server with no host yet, 400 for a ``volume-extended`` or
``volume-reimaged`` event without its tag.  The answer is 200 when all
were accepted, 207 when some were not, 404 when none was."""

from __future__ import annotations

from twisted.internet.defer import maybeDeferred

from twisted_compute import exception
from twisted_compute.api.openstack import common
from twisted_compute.api.openstack.common import (
    Controller, json_response, make_app, route)
from twisted_compute.api.openstack.compute.schemas import \
    server_external_events as schema
from twisted_compute.log import Logger

#: Events that name their volume in ``tag`` (400 without it).
TAG_REQUIRED = ("volume-extended", "volume-reimaged")


class ServerExternalEventsController(Controller):
    app = make_app()
    collections = (("os-server-external-events",),)
    log = Logger()

    @route(app, "/os-server-external-events", ["POST"])
    async def create(self, request):
        context = common.get_context(request)
        self.services.policy.authorize(
            context, "os_compute_api:os-server-external-events:create",
            target={})
        body = common.read_body(request)
        common.validate(body, schema.create(schema.names_at(
            lambda since: common.is_at_least(request, since))))
        compute_api = self.services.compute_api
        instances = {}
        for uuid in {e["server_uuid"] for e in body["events"]}:
            try:
                instances[uuid] = await compute_api.get(context, uuid)
            except exception.InstanceNotFound:
                pass
        answers, accepted = [], []
        for sent in body["events"]:
            event = dict(sent)
            event.setdefault("status", "completed")
            answers.append(event)
            instance = instances.get(event["server_uuid"])
            if instance is None:
                event.update(status="failed", code=404)
            elif event["name"] in TAG_REQUIRED and not event.get("tag"):
                event.update(status="failed", code=400)
            elif not instance.host:
                event.update(status="failed", code=422)
            else:
                event["code"] = 200
                accepted.append((instance, event))
        if not accepted:
            raise exception.NotFound("No instances found for any event")
        await self.db.external_events.record(
            [{"instance_uuid": i.uuid, "name": e["name"],
              "tag": e.get("tag"), "status": e["status"]}
             for i, e in accepted], request_id=context.request_id)
        await self._dispatch(context, accepted)
        code = 200 if len(accepted) == len(answers) else 207
        return json_response(request, {"events": answers}, code)

    async def _dispatch(self, context, accepted) -> None:
        """Cast the accepted events to each host's agent (recorded
        already: an agent that is down only misses what it waited for)."""
        rpcapi = self.services.compute_api.compute_rpcapi
        if rpcapi is None:
            return
        by_host: dict[str, list[dict]] = {}
        for instance, event in accepted:
            by_host.setdefault(instance.host, []).append({
                "server_uuid": instance.uuid, "name": event["name"],
                "status": event["status"], "tag": event.get("tag")})
        for host, events in sorted(by_host.items()):
            try:
                await maybeDeferred(rpcapi.external_instance_event, context,
                                    host, events)
            except Exception as exc:  # noqa: BLE001 - logged, recorded
                self.log.warn("external events for {host} not delivered: "
                              "{error}", host=host, error=exc)
