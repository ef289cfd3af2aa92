"""``/images`` and ``/images/{id}/metadata``: the Compute API's image
proxy (list, detail, show, delete; metadata index, show, merge, replace,
set and delete one key), served up to microversion 2.35 and not found
after, as in Nova.  It works on the same image records as the image API,
with the image API's visibility and ownership rules."""

from __future__ import annotations

from typing import Any

from twisted_compute import exception
from twisted_compute.api.openstack import common
from twisted_compute.api.openstack.common import (
    Controller, json_response, make_app, route)
from twisted_compute.api.openstack.compute.schemas import \
    servers as schema
from twisted_compute.api.openstack.compute.views import images as views
from twisted_compute.objects.image import Image

#: The last microversion that serves the proxy.
MAX_VERSION = "2.35"

#: Query parameters of ``GET /images`` that filter on a property.
_PROPERTY_FILTERS = {"server": "instance_uuid", "type": "image_type"}


def _int_filter(request, name: str) -> int | None:
    value = common.query_one(request, name)
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        number = -1
    if not 0 <= number <= common.MAX_INT:
        raise exception.InvalidInput(
            reason=f"Invalid {name} filter [{value}]")
    return number


class ImagesController(Controller):
    app = make_app()
    collections = (("images",), ("images", "metadata"))

    def _check_version(self, request) -> None:
        if not request.api_version.matches(None, MAX_VERSION):
            raise exception.NotFound("The resource could not be found.")

    async def _image(self, request, image_id: str) -> Image:
        """The image, if the caller may see it (404 otherwise: another
        project's private image is invisible)."""
        self._check_version(request)
        context = common.get_context(request)
        return await self.db.images.get(image_id, _viewer(context))

    @staticmethod
    def _check_owner(request, image: Image) -> None:
        context = common.get_context(request)
        if context.is_admin or (image.owner is not None
                                and image.owner == context.project_id):
            return
        raise exception.Forbidden(
            "You are not permitted to modify this image.")

    async def _list(self, request) -> tuple[list[Image], int]:
        self._check_version(request)
        context = common.get_context(request)
        limit, marker = common.limit_and_marker(request,
                                                self.conf.api.max_limit)
        filters: dict[str, list[str]] = {}
        name = common.query_one(request, "name")
        if name is not None:
            filters["name"] = [name]
        status = common.query_one(request, "status")
        if status is not None:
            filters["status"] = views.glance_statuses(status)
        properties = {prop: common.query_one(request, param)
                      for param, prop in _PROPERTY_FILTERS.items()
                      if common.query_one(request, param) is not None}
        min_disk = _int_filter(request, "minDisk")
        min_ram = _int_filter(request, "minRam")
        since_text = common.query_one(request, "changes-since")
        since = (common.parse_isotime(since_text, "changes-since")
                 if since_text is not None else None)
        images = await self.db.images.get_all(
            project_id=_viewer(context), filters=filters,
            property_filters=properties,
            sort=(("created_at", "desc"),))
        images = [i for i in images
                  if (min_disk is None or i.min_disk >= min_disk)
                  and (min_ram is None or i.min_ram >= min_ram)
                  and (since is None or (i.updated_at or i.created_at)
                       >= since)]
        if marker is not None:
            ids = [i.id for i in images]
            if marker not in ids:
                raise exception.InvalidMarker(marker=marker)
            images = images[ids.index(marker) + 1:]
        return images[:limit], limit

    def _page(self, request, images, limit, render) -> bytes:
        body: dict[str, Any] = {"images": [render(request, self.conf, i)
                                           for i in images]}
        links = common.next_link(request, "images", body["images"], limit)
        if links:
            body["images_links"] = links
        return json_response(request, body)

    @route(app, "/images", ["GET"])
    async def index(self, request):
        images, limit = await self._list(request)
        return self._page(request, images, limit, views.basic)

    @route(app, "/images/detail", ["GET"])
    async def detail(self, request):
        images, limit = await self._list(request)
        return self._page(request, images, limit, views.detail)

    @route(app, "/images/<image_id>", ["GET"])
    async def show(self, request, image_id):
        image = await self._image(request, image_id)
        return json_response(request,
                             {"image": views.detail(request, self.conf,
                                                    image)})

    @route(app, "/images/<image_id>", ["DELETE"])
    async def delete(self, request, image_id):
        image = await self._image(request, image_id)
        self._check_owner(request, image)
        image = await self.db.images.destroy(image_id)
        store = self.services.image_store
        if store is not None:
            await store.delete(image.location)
        return json_response(request, None, 204)

    # --- metadata -----------------------------------------------------------

    async def _set_properties(self, request, image: Image,
                              properties: dict[str, str]) -> dict[str, str]:
        limit = self.conf.quota.metadata_items
        if 0 <= limit < len(properties):
            raise exception.MetadataLimitExceeded(allowed=limit)
        updated = await self.db.images.update(image.id,
                                              {"properties": properties})
        return dict(updated.properties)

    @route(app, "/images/<image_id>/metadata", ["GET"])
    async def metadata_index(self, request, image_id):
        image = await self._image(request, image_id)
        return json_response(request, {"metadata": dict(image.properties)})

    @route(app, "/images/<image_id>/metadata/<key>", ["GET"])
    async def metadata_show(self, request, image_id, key):
        image = await self._image(request, image_id)
        if key not in image.properties:
            raise exception.NotFound(
                f"Image {image_id} has no metadata item {key}")
        return json_response(request, {"meta": {key: image.properties[key]}})

    @route(app, "/images/<image_id>/metadata", ["POST"])
    async def metadata_create(self, request, image_id):
        body = common.read_body(request)
        common.validate(body, schema.metadata_all)
        image = await self._image(request, image_id)
        self._check_owner(request, image)
        merged = dict(image.properties)
        merged.update(body["metadata"])
        return json_response(request, {"metadata": await self._set_properties(
            request, image, merged)})

    @route(app, "/images/<image_id>/metadata", ["PUT"])
    async def metadata_update_all(self, request, image_id):
        body = common.read_body(request)
        common.validate(body, schema.metadata_all)
        image = await self._image(request, image_id)
        self._check_owner(request, image)
        return json_response(request, {"metadata": await self._set_properties(
            request, image, dict(body["metadata"]))})

    @route(app, "/images/<image_id>/metadata/<key>", ["PUT"])
    async def metadata_update(self, request, image_id, key):
        body = common.read_body(request)
        if isinstance(body, dict) and isinstance(body.get("meta"), dict) \
                and len(body["meta"]) > 1:
            raise exception.Invalid("Request body contains too many items")
        common.validate(body, schema.metadata_item)
        if key not in body["meta"]:
            raise exception.Invalid("Request body and URI mismatch")
        image = await self._image(request, image_id)
        self._check_owner(request, image)
        merged = dict(image.properties)
        merged[key] = body["meta"][key]
        await self._set_properties(request, image, merged)
        return json_response(request, {"meta": {key: body["meta"][key]}})

    @route(app, "/images/<image_id>/metadata/<key>", ["DELETE"])
    async def metadata_delete(self, request, image_id, key):
        image = await self._image(request, image_id)
        self._check_owner(request, image)
        if key not in image.properties:
            raise exception.NotFound(
                f"Image {image_id} has no metadata item {key}")
        remaining = {k: v for k, v in image.properties.items() if k != key}
        await self._set_properties(request, image, remaining)
        return json_response(request, None, 204)


def _viewer(context) -> str | None:
    """The project whose view of images applies (None: an admin's)."""
    return None if context.is_admin else context.project_id
