"""``/v2/images``: the Glance v2 calls the OpenStack clients use.

Routes are relative to ``/v2`` (the app is mounted there).  Visibility:
public and community images are everyone's to see; private and shared
ones only their owner's; an admin sees all.  Only the owner (or an admin)
changes, uploads to or deletes an image.
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import urlencode

from twisted.internet.interfaces import IPushProducer
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from zope.interface import implementer

from twisted_compute import exception
from twisted_compute.api.image import schemas, views
from twisted_compute.api.image.versions import versions_body
from twisted_compute.api.openstack import common
from twisted_compute.api.openstack.common import (
    Controller, json_response, make_app, route)
from twisted_compute.db import images as images_db
from twisted_compute.log import Logger

PATCH_MEDIA_TYPES = ("application/openstack-images-v2.1-json-patch",
                     "application/openstack-images-v2.0-json-patch")
DEFAULT_LIMIT = 25
SEND_CHUNK_SIZE = 256 * 1024

#: Query parameters of a list that are not property filters.
_LIST_PARAMS = {"limit", "marker", "sort_key", "sort_dir", "sort", "tag",
                "os_hidden", "protected", "size_min", "size_max",
                "member_status", "visibility", *images_db.FILTER_COLUMNS}


def _content_type(request) -> str:
    return (request.getHeader(b"content-type") or b"").decode(
        "latin-1").split(";")[0].strip().lower()


def _split_in(value: str) -> list[str]:
    """``in:a,b`` -> ``[a, b]``; anything else is one exact value."""
    if value.startswith("in:"):
        return [v.strip().strip('"') for v in value[3:].split(",")]
    return [value]


def _int_param(request, name: str) -> int | None:
    text = common.query_one(request, name)
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        raise exception.InvalidInput(
            reason=f"{name} param must be an integer") from None
    if value < 0:
        raise exception.InvalidInput(
            reason=f"{name} param must be positive")
    if value > common.MAX_INT ** 2:
        # Larger than any size the database holds (a signed 64-bit
        # integer).
        raise exception.InvalidInput(
            reason=f"{name} param is too large")
    return value


def _sort_params(request) -> list[tuple[str, str]]:
    """``sort=k1:asc,k2`` or ``sort_key=k1&sort_key=k2&sort_dir=..``."""
    params = common.query(request)
    if "sort" in params:
        if "sort_key" in params or "sort_dir" in params:
            raise exception.InvalidInput(
                reason="The 'sort' parameter cannot be combined with "
                       "'sort_key' or 'sort_dir'")
        result = []
        for item in ",".join(params["sort"]).split(","):
            key, _, direction = item.strip().partition(":")
            result.append((key.strip(), direction.strip() or "desc"))
        return result
    keys = params.get("sort_key") or ["created_at"]
    dirs = params.get("sort_dir") or ["desc"]
    if len(dirs) == 1:
        dirs = dirs * len(keys)
    if len(dirs) != len(keys):
        raise exception.InvalidInput(
            reason="The number of sort_dir values must be 1 or match "
                   "the number of sort_key values")
    return list(zip(keys, dirs))


@implementer(IPushProducer)
class ImageData(Resource):
    """The bytes of an image: a push producer whose reads run in the
    store's thread pool, one chunk at a time, pausing when the
    connection's buffer is full."""

    isLeaf = True
    log = Logger()

    def __init__(self, store, handle, size: int | None,
                 checksum: str | None):
        super().__init__()
        self._store = store
        self._handle = handle
        self._size = size
        self._checksum = checksum
        self._request = None
        self._paused = False
        self._reading = False
        self._in_pump = False
        self._done = False

    def render_GET(self, request):
        request.setResponseCode(200)
        request.setHeader(b"content-type", b"application/octet-stream")
        if self._size is not None:
            request.setHeader(b"content-length", str(self._size).encode())
        if self._checksum:
            request.setHeader(b"content-md5", self._checksum.encode())
        if request.method == b"HEAD":
            self._close()
            return b""
        self._request = request
        request.registerProducer(self, True)
        self._pump()
        return NOT_DONE_YET

    def _close(self):
        self._done = True
        self._handle.close()

    def _pump(self):
        # A read that completes at once (a synchronous pool) runs _got
        # inside this loop rather than recursing.
        self._in_pump = True
        try:
            while not (self._reading or self._paused or self._done):
                self._reading = True
                self._store.read(self._handle, SEND_CHUNK_SIZE) \
                    .addCallbacks(self._got, self._failed)
        finally:
            self._in_pump = False

    def _got(self, chunk: bytes):
        self._reading = False
        if self._done:
            return
        if not chunk:
            self._close()
            self._request.unregisterProducer()
            self._request.finish()
            return
        self._request.write(chunk)
        if not self._in_pump:
            self._pump()

    def _failed(self, failure):
        self._reading = False
        if self._done:
            return
        self._close()
        self.log.failure("Reading image data failed", failure)
        self._request.unregisterProducer()
        self._request.loseConnection()

    # IPushProducer
    def pauseProducing(self):
        self._paused = True

    def resumeProducing(self):
        self._paused = False
        if not self._in_pump:
            self._pump()

    def stopProducing(self):
        if not self._done:
            self._close()


class ImagesController(Controller):
    app = make_app()
    collections = (("images",), ("schemas",))

    def __init__(self, services, store):
        super().__init__(services)
        self.store = store
        self.policy = services.policy

    # --- helpers -------------------------------------------------------------

    def _authorize(self, context, action: str, image=None):
        target = {"project_id": image.owner if image is not None
                  else context.project_id, "user_id": context.user_id}
        self.policy.authorize(context, action, target)

    @staticmethod
    def _viewer(context) -> str | None:
        """The project whose view of images applies (None: an admin's)."""
        return None if context.is_admin else context.project_id

    async def _get(self, context, image_id: str):
        return await self.db.images.get(image_id, self._viewer(context))

    @staticmethod
    def _check_owner(context, image, what: str):
        if context.is_admin or (image.owner is not None and
                                image.owner == context.project_id):
            return
        raise exception.Forbidden(
            f"You are not permitted to {what} this image.")

    def _check_visibility(self, context, visibility: str | None):
        if visibility == "public":
            self._authorize(context, "publicize_image")
        elif visibility == "community":
            self._authorize(context, "communitize_image")

    # --- version list and schemas --------------------------------------------

    @route(app, "/", ["GET"])
    async def versions(self, request):
        return json_response(request, versions_body(request, self.conf))

    @route(app, "/schemas/image", ["GET"])
    async def image_schema(self, request):
        return json_response(request, schemas.image_schema())

    @route(app, "/schemas/images", ["GET"])
    async def images_schema(self, request):
        return json_response(request, schemas.images_schema())

    # --- the collection ------------------------------------------------------

    @route(app, "/images", ["GET"])
    async def index(self, request):
        context = common.get_context(request)
        self._authorize(context, "get_images")
        params = common.query(request)
        limit = _int_param(request, "limit")
        if limit is None:
            limit = DEFAULT_LIMIT
        limit = min(limit, self.conf.api.max_limit)
        marker = common.query_one(request, "marker")
        visibility = common.query_one(request, "visibility")
        if visibility is not None and visibility not in (
                *schemas.VISIBILITIES, "all"):
            raise exception.InvalidInput(
                reason=f"Invalid visibility value: {visibility}")
        filters = {}
        for name in images_db.FILTER_COLUMNS:
            value = common.query_one(request, name)
            if value is not None and name != "visibility":
                filters[name] = _split_in(value)
        property_filters = {
            name: values[-1] for name, values in params.items()
            if name not in _LIST_PARAMS}

        def _bool(name, default):
            text = common.query_one(request, name)
            return default if text is None else common.parse_bool(text, name)

        images = await self.db.images.get_all(
            project_id=self._viewer(context),
            visibility=visibility, filters=filters,
            property_filters=property_filters,
            tags=params.get("tag", ()),
            os_hidden=_bool("os_hidden", False),
            protected=_bool("protected", None),
            size_min=_int_param(request, "size_min"),
            size_max=_int_param(request, "size_max"),
            sort=_sort_params(request), limit=limit, marker=marker)
        others = [(k, v) for k, vs in params.items() for v in vs
                  if k != "marker"]
        first = "/v2/images" + ("?" + urlencode(others) if others else "")
        body: dict[str, Any] = {
            "images": [views.image(i) for i in images],
            "first": first,
            "schema": "/v2/schemas/images",
        }
        if images and len(images) >= limit:
            body["next"] = "/v2/images?" + urlencode(
                [(k, v) for k, v in others] + [("marker", images[-1].id)])
        return json_response(request, body)

    @route(app, "/images", ["POST"])
    async def create(self, request):
        context = common.get_context(request)
        self._authorize(context, "add_image")
        body = common.read_body(request)
        if not isinstance(body, dict):
            raise exception.InvalidInput(
                reason="The request body must be a JSON object")
        for key in body:
            if key in schemas.READ_ONLY:
                raise exception.ImageReadOnlyAttribute(attribute=key)
            if key.startswith("os_glance"):
                raise exception.Forbidden(
                    f"Attribute '{key}' is reserved.")
            if key not in schemas.SETTABLE:
                schemas.check_property_name(key)
        common.validate(body, schemas.settable_schema())
        visibility = body.get("visibility", "shared")
        self._check_visibility(context, visibility)
        owner = body.get("owner", context.project_id)
        if owner != context.project_id and not context.is_admin:
            raise exception.Forbidden(
                f"You are not permitted to create images owned by "
                f"'{owner}'.")
        tags = list(dict.fromkeys(body.get("tags", ())))
        values = {
            "id": str(uuid.UUID(body["id"])) if "id" in body
            else str(uuid.uuid4()),
            "name": body.get("name"),
            "status": "queued",
            "visibility": visibility,
            "owner": owner,
            "disk_format": body.get("disk_format"),
            "container_format": body.get("container_format"),
            "min_disk": body.get("min_disk", 0),
            "min_ram": body.get("min_ram", 0),
            "protected": body.get("protected", False),
            "os_hidden": body.get("os_hidden", False),
            "tags": tags,
            "properties": {k: v for k, v in body.items()
                           if k not in schemas.SETTABLE},
        }
        image = await self.db.images.create(values)
        request.setHeader(b"location", common.host_url(request).encode() +
                          f"/v2/images/{image.id}".encode())
        return json_response(request, views.image(image), 201)

    # --- one image -----------------------------------------------------------

    @route(app, "/images/<image_id>", ["GET"])
    async def show(self, request, image_id):
        context = common.get_context(request)
        self._authorize(context, "get_image")
        image = await self._get(context, image_id)
        return json_response(request, views.image(image))

    @route(app, "/images/<image_id>", ["PATCH"])
    async def update(self, request, image_id):
        context = common.get_context(request)
        content_type = _content_type(request)
        if content_type not in PATCH_MEDIA_TYPES:
            raise exception.UnsupportedMediaType(
                content_type=content_type or "(none)",
                expected=PATCH_MEDIA_TYPES[0])
        request.content.seek(0)
        try:
            operations = json.loads(request.content.read())
        except (ValueError, UnicodeDecodeError):
            raise exception.Invalid(reason="Malformed request body") \
                from None
        if not isinstance(operations, list):
            raise exception.InvalidInput(
                reason="A JSON patch must be a list of operations")
        image = await self._get(context, image_id)
        self._authorize(context, "modify_image", image)
        self._check_owner(context, image, "modify")
        changes = _apply_patch(image, operations)
        common.validate(
            {k: v for k, v in changes.items() if k != "properties"} |
            dict(changes.get("properties", image.properties)),
            schemas.settable_schema())
        if "visibility" in changes and \
                changes["visibility"] != image.visibility:
            self._check_visibility(context, changes["visibility"])
        if "owner" in changes and changes["owner"] != image.owner and \
                not context.is_admin:
            raise exception.Forbidden(
                "You are not permitted to change the owner of an image.")
        for key in ("disk_format", "container_format"):
            if key in changes and changes[key] != getattr(image, key) and \
                    image.status != "queued":
                raise exception.Forbidden(
                    f"Attribute {key} can be only replaced for a queued "
                    f"image.")
        if changes:
            image = await self.db.images.update(image_id, changes)
        return json_response(request, views.image(image))

    @route(app, "/images/<image_id>", ["DELETE"])
    async def delete(self, request, image_id):
        context = common.get_context(request)
        image = await self._get(context, image_id)
        self._authorize(context, "delete_image", image)
        self._check_owner(context, image, "delete")
        image = await self.db.images.destroy(image_id)
        await self.store.delete(image.location)
        return json_response(request, None, 204)

    # --- data ----------------------------------------------------------------

    @route(app, "/images/<image_id>/file", ["PUT"])
    async def upload(self, request, image_id):
        context = common.get_context(request)
        content_type = _content_type(request)
        if content_type != "application/octet-stream":
            raise exception.UnsupportedMediaType(
                content_type=content_type or "(none)",
                expected="application/octet-stream")
        image = await self._get(context, image_id)
        self._authorize(context, "upload_image", image)
        self._check_owner(context, image, "upload data to")
        length = request.getHeader(b"content-length")
        if length is not None and length.isdigit() and \
                int(length) > self.store.size_cap:
            raise exception.ImageSizeLimitExceeded(cap=self.store.size_cap)
        await self.db.images.update(image_id, {"status": "saving"},
                                    expect_status=("queued",))
        request.content.seek(0)
        try:
            data = await self.store.store(image_id, request.content,
                                          image.disk_format)
        except BaseException:
            await self.db.images.update(image_id, {"status": "queued"},
                                        expect_status=("saving",))
            raise
        values = {"status": "active", "size": data.size,
                  "checksum": data.checksum,
                  "os_hash_algo": data.os_hash_algo,
                  "os_hash_value": data.os_hash_value,
                  "location": data.location}
        if image.virtual_size is None:
            values["virtual_size"] = data.virtual_size
        try:
            await self.db.images.update(image_id, values,
                                        expect_status=("saving",))
        except exception.ImageNotFound:
            # Deleted while we were writing: drop what we wrote.
            await self.store.delete(data.location)
            raise
        return json_response(request, None, 204)

    @route(app, "/images/<image_id>/file", ["GET"])
    async def download(self, request, image_id):
        context = common.get_context(request)
        image = await self._get(context, image_id)
        self._authorize(context, "download_image", image)
        if image.status == "deactivated" and not context.is_admin:
            raise exception.Forbidden(
                "The requested image has been deactivated. Image data "
                "download is forbidden.")
        if image.status != "active" or not image.location:
            return json_response(request, None, 204)
        try:
            handle = await self.store.open(image.location)
        except FileNotFoundError:
            raise exception.ImageDataNotFound(image_id=image_id) from None
        return ImageData(self.store, handle, image.size, image.checksum)

    # --- tags and actions ----------------------------------------------------

    @route(app, "/images/<image_id>/tags/<tag>", ["PUT", "DELETE"])
    async def tag(self, request, image_id, tag):
        context = common.get_context(request)
        image = await self._get(context, image_id)
        self._authorize(context, "modify_image", image)
        self._check_owner(context, image, "modify")
        tags = list(image.tags)
        if request.method == b"PUT":
            if len(tag) > 255:
                raise exception.InvalidInput(reason="Tag is too long")
            if tag not in tags:
                tags.append(tag)
        else:
            if tag not in tags:
                raise exception.NotFound(f"Tag {tag} not found.")
            tags.remove(tag)
        await self.db.images.update(image_id, {"tags": tags})
        return json_response(request, None, 204)

    @route(app, "/images/<image_id>/actions/<action>", ["POST"])
    async def action(self, request, image_id, action):
        context = common.get_context(request)
        moves = {"deactivate": (("active", "deactivated"), "deactivated"),
                 "reactivate": (("deactivated", "active"), "active")}
        if action not in moves:
            raise exception.NotFound()
        image = await self._get(context, image_id)
        self._authorize(context, action, image)
        allowed, status = moves[action]
        await self.db.images.update(image_id, {"status": status},
                                    expect_status=allowed)
        return json_response(request, None, 204)


def _pointer(path: Any) -> str:
    """The attribute a patch path names (``/name`` -> ``name``)."""
    if not isinstance(path, str) or not path.startswith("/") or \
            path.count("/") != 1 or len(path) < 2:
        raise exception.InvalidInput(
            reason=f"Invalid JSON pointer for this resource: {path!r}")
    return path[1:].replace("~1", "/").replace("~0", "~")


def _apply_patch(image, operations: list) -> dict[str, Any]:
    """The column changes of Glance JSON-patch ``operations`` on
    ``image`` (``properties`` whole, when any extra property changes)."""
    changes: dict[str, Any] = {}
    properties = dict(image.properties)
    touched_properties = False
    for op in operations:
        if not isinstance(op, dict):
            raise exception.InvalidInput(
                reason="Each patch operation must be a JSON object")
        if "op" in op:
            kind, path = op["op"], op.get("path")
        else:  # the v2.0 form: {"replace": "/name", "value": ...}
            found = [k for k in ("add", "replace", "remove") if k in op]
            if len(found) != 1:
                raise exception.InvalidInput(
                    reason="Operation objects must contain exactly one "
                           "member named add, remove or replace")
            kind, path = found[0], op[found[0]]
        if kind not in ("add", "replace", "remove"):
            raise exception.InvalidInput(
                reason=f"Invalid operation: {kind!r}")
        name = _pointer(path)
        if kind != "remove" and "value" not in op:
            raise exception.InvalidInput(
                reason=f"Operation {kind} needs a value")
        value = op.get("value")
        if name in schemas.READ_ONLY or name == "id":
            raise exception.ImageReadOnlyAttribute(attribute=name)
        if name.startswith("os_glance"):
            raise exception.Forbidden(f"Attribute '{name}' is reserved.")
        if name in schemas.SETTABLE:
            if kind == "remove":
                raise exception.Forbidden(
                    f"Properties '{name}' cannot be removed.")
            if name == "tags":
                if not isinstance(value, list):
                    raise exception.ValidationError(
                        field="tags", detail="tags must be a list")
                value = list(dict.fromkeys(value))
            changes[name] = value
            continue
        touched_properties = True
        if kind != "remove":
            schemas.check_property_name(name)
        if kind == "add":
            properties[name] = value
        elif name not in properties:
            raise exception.ImagePropertyNotFound(name=name)
        elif kind == "replace":
            properties[name] = value
        else:
            del properties[name]
    if touched_properties:
        changes["properties"] = properties
    return changes
