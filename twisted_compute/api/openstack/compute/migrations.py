"""``GET /os-migrations`` (every move, admin) and
``/servers/{id}/migrations[/{id}]`` (a server's live migrations in
progress), with ``force_complete`` and ``DELETE`` (abort), per
microversion as Nova:

- 2.23: ``migration_type``, and ``links`` on in-progress live
  migrations; before it, live migrations are not listed; the server
  migrations resource exists from 2.23 (``force_complete`` from 2.22);
- 2.59: ``uuid``, ``limit``/``marker`` pagination (newest first) with
  ``migrations_links``, ``changes-since``;
- 2.66: ``changes-before``;
- 2.80: ``user_id``/``project_id`` shown and as filters.
"""

from __future__ import annotations

from twisted_compute import exception
from twisted_compute.api.openstack import common
from twisted_compute.api.openstack.common import (
    Controller, json_response, make_app, route)
from twisted_compute.api.openstack.compute.schemas import query as q
from twisted_compute.api.openstack.compute.servers import instance_target

#: The body of POST /servers/{id}/migrations/{id}/action.
FORCE_COMPLETE = {
    "type": "object",
    "properties": {"force_complete": {"type": "null"}},
    "required": ["force_complete"],
    "additionalProperties": False,
}

#: Nova's query schema of GET /os-migrations (2.102: nothing else).
INDEX_QUERY = q.params(
    host=q.string, status=q.string, instance_uuid=q.string,
    source_compute=q.string, migration_type=q.string, hidden=q.string,
    limit=q.non_negative_int, marker=q.string,
    **{"changes-since": q.string, "changes-before": q.string},
    user_id=q.string, project_id=q.string)

#: Statuses of a live migration that can still be forced or aborted.
_LIVE_RUNNING = ("running", "preparing", "queued", "accepted")


def _time(value):
    return common.isotime_usec(value) if value is not None else None


def migration_view(request, migration, for_server: bool = False) -> dict:
    body = {
        "created_at": _time(migration.created_at),
        "dest_compute": migration.dest_compute,
        "dest_host": migration.dest_host,
        "dest_node": migration.dest_node,
        "id": migration.id,
        "source_compute": migration.source_compute,
        "source_node": migration.source_node,
        "status": migration.status,
        "updated_at": _time(migration.updated_at),
    }
    if for_server:
        body["server_uuid"] = migration.instance_uuid
        for kind in ("memory", "disk"):
            for part in ("total", "processed", "remaining"):
                body[f"{kind}_{part}_bytes"] = getattr(
                    migration, f"{kind}_{part}")
    else:
        body["instance_uuid"] = migration.instance_uuid
        body["new_instance_type_id"] = migration.new_instance_type_id
        body["old_instance_type_id"] = migration.old_instance_type_id
        if common.is_at_least(request, "2.23"):
            body["migration_type"] = migration.migration_type
            if (migration.migration_type == "live-migration"
                    and migration.status in _LIVE_RUNNING):
                body["links"] = common.links(
                    request, f"servers/{migration.instance_uuid}/migrations",
                    str(migration.id))
    if common.is_at_least(request, "2.59"):
        body["uuid"] = migration.uuid
    if common.is_at_least(request, "2.80"):
        body["user_id"] = migration.user_id
        body["project_id"] = migration.project_id
    return body


class MigrationsController(Controller):
    app = make_app()
    collections = (("os-migrations",),)

    @route(app, "/os-migrations", ["GET"], query=INDEX_QUERY)
    async def index(self, request):
        context = common.get_context(request)
        self.services.policy.authorize(
            context, "os_compute_api:os-migrations:index", {})
        filters = {}
        for name in ("host", "status", "instance_uuid", "source_compute",
                     "migration_type"):
            value = common.query_one(request, name)
            if value is not None:
                filters[name] = value
        limit = marker = None
        if common.is_at_least(request, "2.59"):
            limit, marker = common.limit_and_marker(
                request, self.conf.api.max_limit)
            since = common.query_one(request, "changes-since")
            if since is not None:
                filters["changes_since"] = common.parse_isotime(
                    since, "changes-since")
            if common.is_at_least(request, "2.66"):
                before = common.query_one(request, "changes-before")
                if before is not None:
                    filters["changes_before"] = common.parse_isotime(
                        before, "changes-before")
                    if "changes_since" in filters and \
                            filters["changes_before"] < \
                            filters["changes_since"]:
                        raise exception.Invalid(
                            reason="The value of changes-since must be "
                                   "less than or equal to changes-before.")
        if common.is_at_least(request, "2.80"):
            for name in ("user_id", "project_id"):
                value = common.query_one(request, name)
                if value is not None:
                    filters[name] = value
        try:
            migrations = await self.services.compute_api.get_migrations(
                filters, limit, marker)
        except exception.InvalidMarker:
            raise exception.InvalidMarker(marker=marker)
        if not common.is_at_least(request, "2.23"):
            migrations = [m for m in migrations
                          if m.migration_type != "live-migration"]
        body = {"migrations": [migration_view(request, m)
                               for m in migrations]}
        if limit is not None:
            links = common.next_link(request, "os-migrations", migrations,
                                     limit, marker_of=lambda m: m.uuid)
            if links:
                body["migrations_links"] = links
        return json_response(request, body)


class ServerMigrationsController(Controller):
    app = make_app()
    collections = (("servers", "migrations"),)

    async def _instance(self, request, server_id, rule, min_version="2.23"):
        if not common.is_at_least(request, min_version):
            raise exception.NotFound(
                f"There is no such resource before microversion "
                f"{min_version}")
        context = common.get_context(request)
        instance = await self.services.compute_api.get(context, server_id)
        self.services.policy.authorize(context, rule,
                                       instance_target(instance))
        return context, instance

    async def _running(self, instance, migration_id):
        migration = await self.services.compute_api.get_server_migration(
            None, instance.uuid, migration_id)
        return migration

    @route(app, "/servers/<server_id>/migrations", ["GET"])
    async def index(self, request, server_id):
        _, instance = await self._instance(
            request, server_id, "os_compute_api:servers:migrations:index")
        migrations = await self.services.db.migrations.for_instance(
            instance.uuid, types=["live-migration"],
            statuses=list(_LIVE_RUNNING))
        return json_response(request, {"migrations": [
            migration_view(request, m, for_server=True)
            for m in migrations]})

    @route(app, "/servers/<server_id>/migrations/<migration_id>", ["GET"])
    async def show(self, request, server_id, migration_id):
        _, instance = await self._instance(
            request, server_id, "os_compute_api:servers:migrations:show")
        migration = await self._get(instance, migration_id)
        if (migration.migration_type != "live-migration"
                or migration.status not in _LIVE_RUNNING):
            raise exception.NotFound(
                f"In-progress live migration {migration_id} is not found "
                f"for server {server_id}.")
        return json_response(request, {"migration": migration_view(
            request, migration, for_server=True)})

    async def _get(self, instance, migration_id):
        try:
            migration_id = int(migration_id)
            if not 0 < migration_id <= common.MAX_INT:
                raise ValueError(migration_id)
        except ValueError:
            raise exception.MigrationNotFoundForInstance(
                migration_id=migration_id, instance_id=instance.uuid)
        return await self.services.compute_api.get_server_migration(
            None, instance.uuid, migration_id)

    @route(app, "/servers/<server_id>/migrations/<migration_id>/action",
           ["POST"])
    async def action(self, request, server_id, migration_id):
        body = common.read_body(request)
        common.validate(body, FORCE_COMPLETE)
        _, instance = await self._instance(
            request, server_id,
            "os_compute_api:servers:migrations:force_complete", "2.22")
        migration = await self._get(instance, migration_id)
        await self.services.compute_api.live_migration_force_complete(
            common.get_context(request), instance, migration)
        return json_response(request, None, 202)

    @route(app, "/servers/<server_id>/migrations/<migration_id>",
           ["DELETE"])
    async def delete(self, request, server_id, migration_id):
        context, instance = await self._instance(
            request, server_id, "os_compute_api:servers:migrations:delete",
            "2.24")
        migration = await self._get(instance, migration_id)
        allowed = ("running", "queued", "preparing") \
            if common.is_at_least(request, "2.65") else ("running",)
        await self.services.compute_api.live_migration_abort(
            context, instance, migration, allowed)
        return json_response(request, None, 202)
