"""Authentication: turns a request's token into a :class:`RequestContext`.

* ``noauth``: the token is ``user:project`` (or just ``user``, then the
  project is the user); the user ``admin`` is an admin.  For development
  and tests only.
* ``keystone``: the token is validated against Keystone v3
  (``GET /v3/auth/tokens``) with treq, using a service token of the
  ``[keystone_authtoken]`` user; results are cached for
  ``token_cache_time`` seconds (never past the token's own expiry).
"""

from __future__ import annotations

import datetime
import json
import time
from typing import Any

import treq
from twisted.internet.defer import Deferred

from twisted_compute import exception
from twisted_compute.api import faults
from twisted_compute.api.middleware import Middleware, render_child
from twisted_compute.context import RequestContext
from twisted_compute.log import Logger


def _context_for(request, **kwargs) -> RequestContext:
    remote = request.getClientAddress()
    return RequestContext(
        request_id=getattr(request, "request_id", None) or
        RequestContext(None, None).request_id,
        global_request_id=getattr(request, "global_request_id", None),
        remote_address=getattr(remote, "host", None),
        **kwargs)


def _unauthorized(request, message="Authentication required"):
    return faults.write_fault(request, 401, message)


class NoAuth(Middleware):
    """``X-Auth-Token: user:project`` becomes the context."""

    def render(self, request):
        token = request.getHeader(b"x-auth-token")
        if not token:
            return _unauthorized(request)
        token = token.decode("utf-8", "replace")
        user, _, project = token.partition(":")
        if not user:
            return _unauthorized(request, "Malformed noauth token")
        project = project or request.getHeader(
            b"x-auth-project-id") and request.getHeader(
            b"x-auth-project-id").decode("utf-8", "replace") or user
        is_admin = user == "admin"
        roles = ("admin", "member", "reader") if is_admin else (
            "member", "reader")
        request.compute_context = _context_for(
            request, user_id=user, project_id=project, roles=roles,
            is_admin=is_admin, auth_token=token, user_name=user,
            project_name=project)
        return render_child(self.wrapped, request)


def _parse_expiry(value: str | None) -> float | None:
    if not value:
        return None
    try:
        when = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when.timestamp()


class KeystoneClient:
    """Validates user tokens against Keystone v3, caching answers."""

    log = Logger()

    def __init__(self, conf, reactor, http=treq, clock=time.time):
        self.conf = conf.keystone_authtoken
        self._reactor = reactor
        self._http = http
        self._clock = clock
        self._cache: dict[str, tuple[float, dict[str, Any] | None]] = {}
        self._service_token: tuple[str, float] | None = None
        self._pending: dict[str, Deferred] = {}

    @property
    def _base(self) -> str:
        return self.conf.auth_url.rstrip("/")

    def _unavailable(self, reason: str, message: str,
                     **fields) -> exception.ServiceUnavailable:
        """The one Keystone error handler: log ``message`` (a log format
        with ``fields``) and give the error the client sees (503,
        ``reason``)."""
        self.log.error(message, **fields)
        return exception.ServiceUnavailable(reason=reason)

    async def _exchange(self, send) -> tuple[Any, bytes]:
        """``send()`` (a treq request) and the answer's body; Keystone
        not answering is :meth:`_unavailable`."""
        try:
            response = await send()
            content = await response.content()
        except Exception as exc:
            raise self._unavailable(
                "identity service unreachable",
                "Cannot reach Keystone at {url}: {error}",
                url=self._base, error=exc) from None
        return response, content

    async def _get_service_token(self) -> str:
        now = self._clock()
        if self._service_token and self._service_token[1] - 60 > now:
            return self._service_token[0]
        body = {"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": self.conf.username,
                "domain": {"name": self.conf.user_domain_name},
                "password": self.conf.password}}},
            "scope": {"project": {
                "name": self.conf.project_name,
                "domain": {"name": self.conf.project_domain_name}}}}}
        # A fresh connection: a POST is not retried by the connection
        # pool when a kept-alive connection turns out to be closed.
        response, content = await self._exchange(lambda: self._http.post(
            self._base + "/auth/tokens", json=body,
            timeout=self.conf.http_connect_timeout, persistent=False))
        if response.code != 201:
            raise self._unavailable(
                "identity service refused our service credentials",
                "Keystone refused the service credentials of "
                "[keystone_authtoken] {user}: {code}",
                user=self.conf.username, code=response.code)
        token = response.headers.getRawHeaders(b"x-subject-token")[0].decode()
        expires = _parse_expiry(json.loads(content)["token"].get(
            "expires_at")) or now + 3600
        self._service_token = (token, expires)
        return token

    async def validate(self, token: str) -> dict[str, Any] | None:
        """The token's body (``{"token": {...}}``) or None if invalid."""
        now = self._clock()
        cached = self._cache.get(token)
        if cached and cached[0] > now:
            return cached[1]
        for _attempt in (1, 2):
            service_token = await self._get_service_token()
            response, content = await self._exchange(lambda: self._http.get(
                self._base + "/auth/tokens",
                headers={"X-Auth-Token": service_token,
                         "X-Subject-Token": token},
                timeout=self.conf.http_connect_timeout))
            if response.code != 401:
                break
            # Keystone refused our own service token (expired early or
            # revoked, e.g. by a password change): get a new one and ask
            # again, once.  A bad user token is a 404, not a 401.
            self.log.info("Keystone refused our service token; "
                          "authenticating again")
            self._service_token = None
        if response.code >= 500:
            # Keystone's trouble, not the token's: do not cache it.
            raise self._unavailable(
                "identity service error",
                "Keystone answered {code} validating a token",
                code=response.code)
        if response.code != 200:
            result = None
            expires = now + min(self.conf.token_cache_time, 30)
        else:
            result = json.loads(content)
            expires = min(
                now + self.conf.token_cache_time,
                _parse_expiry(result["token"].get("expires_at")) or
                now + self.conf.token_cache_time)
        if len(self._cache) > 10000:
            self._cache = {k: v for k, v in self._cache.items()
                           if v[0] > now}
        self._cache[token] = (expires, result)
        return result


class KeystoneAuth(Middleware):
    """Validates ``X-Auth-Token`` with Keystone and builds the context."""

    def __init__(self, wrapped, conf=None, services=None, **options):
        super().__init__(wrapped, conf=conf, **options)
        self.keystone = services.keystone
        uri = conf.keystone_authtoken.www_authenticate_uri or \
            conf.keystone_authtoken.auth_url
        self.www_authenticate = f'Keystone uri="{uri}"'.encode()

    def render(self, request):
        request.www_authenticate = self.www_authenticate
        token = request.getHeader(b"x-auth-token")
        if not token:
            return _unauthorized(request)

        async def check():
            body = await self.keystone.validate(token.decode("latin-1"))
            if body is None:
                raise exception.NotAuthenticated(
                    "The request you have made requires authentication.")
            info = body["token"]
            roles = tuple(r["name"] for r in info.get("roles", ()))
            project = info.get("project") or {}
            user = info.get("user") or {}
            request.compute_context = _context_for(
                request, user_id=user.get("id"),
                project_id=project.get("id"), roles=roles,
                is_admin="admin" in roles, auth_token=token.decode(),
                user_name=user.get("name"), project_name=project.get("name"))

        from twisted.internet.defer import ensureDeferred
        return self.render_later(request, ensureDeferred(check()))


# ``paste.filter_factory`` entry points, named as in the pipeline ini.
noauth_factory = NoAuth.factory
keystone_factory = KeystoneAuth.factory
__all__ = ["NoAuth", "KeystoneAuth", "KeystoneClient", "render_child"]
