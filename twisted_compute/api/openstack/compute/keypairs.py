"""``/os-keypairs``: list, show, import or generate, delete.  Key pairs
belong to users; admins may act for another user (``user_id``, 2.10)."""

from __future__ import annotations

import string

from twisted.internet.threads import deferToThreadPool

from twisted_compute import exception
from twisted_compute.api.openstack import common
from twisted_compute.api.openstack.common import (
    Controller, json_response, make_app, route)
from twisted_compute.api.openstack.compute import keypair_crypto as crypto
from twisted_compute.api.openstack.compute.schemas import keypairs as schema
from twisted_compute.api.openstack.compute.schemas import \
    query as query_schema
from twisted_compute.api.openstack.compute.views import keypairs as views
from twisted_compute.objects.keypair import (
    KEYPAIR_TYPE_SSH, KEYPAIR_TYPE_X509)

_POLICY = "os_compute_api:os-keypairs:"
_SAFE_CHARS = set("_- " + string.digits + string.ascii_letters)
#: From 2.92 also '@' and '.'.
_SAFE_CHARS_292 = _SAFE_CHARS | set("@.")


class KeypairsController(Controller):
    app = make_app()
    collections = (("os-keypairs",),)

    def _user(self, request, action: str, requested: str | None = None
              ) -> str:
        """The user whose key pairs are meant (``user_id`` from 2.10),
        after the policy check on that user."""
        context = common.get_context(request)
        user_id = context.user_id
        if requested is None and common.is_at_least(request, "2.10"):
            requested = common.query_one(request, "user_id")
        if requested and common.is_at_least(request, "2.10"):
            user_id = requested
        self.services.policy.authorize(
            context, _POLICY + action,
            target={"user_id": user_id, "project_id": context.project_id})
        return user_id

    @route(app, "/os-keypairs", ["GET"], query=query_schema.keypairs)
    async def index(self, request):
        user_id = self._user(request, "index")
        limit = marker = None
        if common.is_at_least(request, "2.35"):
            limit, marker = common.limit_and_marker(
                request, self.conf.api.max_limit)
        keypairs = await self.db.keypairs.get_all(user_id, limit=limit,
                                                  marker=marker)
        body = {"keypairs": [views.listed(request, k) for k in keypairs]}
        if limit is not None:
            links = common.next_link(
                request, "os-keypairs", body["keypairs"], limit,
                marker_of=lambda item: item["keypair"]["name"])
            if links:
                body["keypairs_links"] = links
        return json_response(request, body)

    @route(app, "/os-keypairs/<name>", ["GET"],
           query=query_schema.keypair)
    async def show(self, request, name):
        user_id = self._user(request, "show")
        keypair = await self.db.keypairs.get(user_id, name)
        return json_response(request,
                             {"keypair": views.show(request, keypair)})

    @route(app, "/os-keypairs", ["POST"])
    async def create(self, request):
        body = common.read_body(request)
        common.validate(body, common.versioned(request, [
            ("2.92", None, schema.create_v292),
            ("2.10", "2.91", schema.create_v210),
            ("2.2", "2.9", schema.create_v22),
            (None, "2.1", schema.create)]))
        params = body["keypair"]
        user_id = self._user(request, "create", params.get("user_id"))
        context = common.get_context(request)
        name = params["name"]
        safe = _SAFE_CHARS_292 if common.is_at_least(request, "2.92") \
            else _SAFE_CHARS
        if not set(name) <= safe:
            raise exception.InvalidKeypair(
                reason="Keypair name contains unsafe characters")
        key_type = params.get("type", KEYPAIR_TYPE_SSH)
        private_key = None
        if "public_key" in params:
            public_key = params["public_key"]
            if key_type == KEYPAIR_TYPE_X509:
                fingerprint = crypto.x509_fingerprint(public_key)
            else:
                fingerprint = crypto.ssh_fingerprint(public_key)
        else:
            reactor = self.services.reactor
            if key_type == KEYPAIR_TYPE_X509:
                generated = deferToThreadPool(
                    reactor, reactor.getThreadPool(), crypto.generate_x509,
                    user_id)
            else:
                generated = deferToThreadPool(
                    reactor, reactor.getThreadPool(), crypto.generate_ssh)
            private_key, public_key, fingerprint = await generated
        keypair = await self.db.keypairs.create(
            self.conf, context.project_id, user_id, name,
            public_key, fingerprint, key_type)
        status = 201 if common.is_at_least(request, "2.2") else 200
        return json_response(request, {"keypair": views.created(
            request, keypair, private_key)}, status)

    @route(app, "/os-keypairs/<name>", ["DELETE"])
    async def delete(self, request, name):
        user_id = self._user(request, "delete")
        await self.db.keypairs.destroy(user_id, name)
        status = 204 if common.is_at_least(request, "2.2") else 202
        return json_response(request, None, status)
