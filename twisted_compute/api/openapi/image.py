"""The image API (``/v2``): the routes of
:class:`twisted_compute.api.image.images.ImagesController`, with the
schemas of :mod:`twisted_compute.api.image.schemas` it validates with,
and the bodies :mod:`twisted_compute.api.image.views` builds."""

from __future__ import annotations

from twisted_compute.api.image import schemas as image_schemas
from twisted_compute.api.image.images import PATCH_MEDIA_TYPES
from twisted_compute.api.openapi.jsonschema import (
    BOOLEAN, INTEGER, LINKS, NULL_INTEGER, NULL_STRING, STRING, STRINGS,
    array, obj)
from twisted_compute.api.openapi.table import Operation, Param

_BASE = {
    "id": STRING, "name": NULL_STRING,
    "status": {"type": "string", "enum": list(image_schemas.STATUSES)},
    "visibility": {"type": "string",
                   "enum": list(image_schemas.VISIBILITIES)},
    "protected": BOOLEAN, "os_hidden": BOOLEAN, "owner": NULL_STRING,
    "disk_format": NULL_STRING, "container_format": NULL_STRING,
    "size": NULL_INTEGER, "virtual_size": NULL_INTEGER,
    "checksum": NULL_STRING, "os_hash_algo": NULL_STRING,
    "os_hash_value": NULL_STRING, "min_disk": INTEGER, "min_ram": INTEGER,
    "created_at": NULL_STRING, "updated_at": NULL_STRING,
    "tags": STRINGS, "self": STRING, "file": STRING, "schema": STRING,
}

#: An image: the base attributes and its extra properties as top-level
#: keys (any JSON value a client stored).
IMAGE = obj(_BASE, additional=True)

IMAGES = obj({"images": array(IMAGE), "first": STRING, "schema": STRING,
              "next": STRING}, optional=("next",))

VERSIONS = obj({"versions": array(obj({
    "id": STRING, "status": STRING, "links": LINKS}))})

_PATCH = {
    "type": "array",
    "items": {"type": "object",
              "properties": {"op": {"type": "string",
                                    "enum": ["add", "replace", "remove"]},
                             "path": {"type": "string"},
                             "value": {}},
              "required": ["op", "path"]},
}

_IMAGE_ID = "$response.body#/id"


def _link(operation_id: str, **parameters: str) -> dict:
    return {"operationId": operation_id, "parameters": parameters}


def operations() -> list[Operation]:
    return [
        Operation("GET", "/", "imageVersions", "The image API's versions",
                  {200: VERSIONS}, tag="versions"),
        Operation("GET", "/schemas/image", "imageSchema",
                  "The image schema", {200: {"type": "object"}},
                  tag="schemas"),
        Operation("GET", "/schemas/images", "imagesSchema",
                  "The image list schema", {200: {"type": "object"}},
                  tag="schemas"),
        Operation("GET", "/images", "listImagesV2", "List images",
                  {200: IMAGES},
                  query=(Param("limit", {"type": "integer", "minimum": 0}),
                         Param("marker"), Param("name"),
                         Param("visibility", {"type": "string", "enum": [
                             *image_schemas.VISIBILITIES, "all"]}),
                         Param("status"), Param("owner"),
                         Param("sort_key", {"type": "string", "enum": [
                             "created_at", "updated_at", "name", "size",
                             "status", "id"]}),
                         Param("sort_dir", {"type": "string",
                                            "enum": ["asc", "desc"]}),
                         Param("tag"),
                         Param("size_min", {"type": "integer",
                                            "minimum": 0}),
                         Param("size_max", {"type": "integer",
                                            "minimum": 0})),
                  tag="images"),
        Operation("POST", "/images", "createImageV2", "Create an image",
                  {201: IMAGE}, request=lambda v: image_schemas.settable_schema(),
                  errors=(409, 413, 415), tag="images",
                  links={201: {
                      "GetImage": _link("showImageV2",
                                        image_id=_IMAGE_ID),
                      "UploadImage": _link("uploadImageData",
                                           image_id=_IMAGE_ID),
                      "DeleteImage": _link("deleteImageV2",
                                           image_id=_IMAGE_ID)}}),
        Operation("GET", "/images/<image_id>", "showImageV2",
                  "Show an image", {200: IMAGE}, tag="images"),
        Operation("PATCH", "/images/<image_id>", "updateImageV2",
                  "Change an image (JSON patch)", {200: IMAGE},
                  request=_PATCH, media_type=PATCH_MEDIA_TYPES[0],
                  errors=(409, 415), tag="images"),
        Operation("DELETE", "/images/<image_id>", "deleteImageV2",
                  "Delete an image", {204: None}, errors=(409,),
                  tag="images"),
        Operation("PUT", "/images/<image_id>/file", "uploadImageData",
                  "Upload the image's data", {204: None},
                  request={"type": "string", "format": "binary"},
                  media_type="application/octet-stream",
                  errors=(409, 413, 415), tag="images"),
        Operation("GET", "/images/<image_id>/file", "downloadImageData",
                  "Download the image's data",
                  {200: "binary", 204: None}, tag="images"),
        Operation("PUT", "/images/<image_id>/tags/<tag>", "addImageTag",
                  "Add a tag", {204: None}, tag="images"),
        Operation("DELETE", "/images/<image_id>/tags/<tag>",
                  "deleteImageTag", "Delete a tag", {204: None},
                  tag="images"),
        Operation("POST", "/images/<image_id>/actions/<action>",
                  "imageAction", "Deactivate or reactivate an image",
                  {204: None}, errors=(409,), tag="images"),
    ]


#: Fault statuses every image API operation may answer.
COMMON_ERRORS = (400, 401, 403, 404, 405)
