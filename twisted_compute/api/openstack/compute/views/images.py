"""Image bodies of the Compute API's image proxy (``/images``)."""

from __future__ import annotations

from urllib.parse import urlsplit

from twisted_compute.api.openstack import common
from twisted_compute.api.openstack.compute.schemas import to_bool
from twisted_compute.objects.image import Image

#: Image API status -> the Compute API's (Nova's mapping), with the
#: progress shown for it.
_STATUS = {
    "queued": ("SAVING", 25), "saving": ("SAVING", 50),
    "uploading": ("SAVING", 50), "importing": ("SAVING", 50),
    "active": ("ACTIVE", 100), "deactivated": ("ACTIVE", 100),
    "killed": ("ERROR", 0), "deleted": ("DELETED", 0),
    "pending_delete": ("DELETED", 0),
}


def glance_statuses(status: str) -> list[str]:
    """The image API statuses shown as ``status`` (a ``?status=``
    filter), or the value itself lower-cased when it is none of ours."""
    wanted = status.upper()
    statuses = [name for name, (shown, _) in _STATUS.items()
                if shown == wanted]
    return statuses or [status.lower()]


def _image_api_url(request, conf) -> str:
    prefix = conf.api.glance_link_prefix.rstrip("/")
    if prefix:
        return prefix
    servers = [s.strip() for s in conf.glance.api_servers.split(",")
               if s.strip()]
    if servers:
        return servers[0].rstrip("/")
    # This deployment's own image API: the host the client used, on the
    # image listener's port.
    base = urlsplit(common.host_url(request))
    host = base.hostname or "localhost"
    if ":" in host:
        host = f"[{host}]"
    return f"{base.scheme}://{host}:{conf.image_listen_port}"


def _links(request, conf, image: Image) -> list[dict[str, str]]:
    links = common.links(request, "images", image.id)
    links.append({"rel": "alternate", "type": "application/vnd.openstack.image",
                  "href": f"{_image_api_url(request, conf)}/images/"
                          f"{image.id}"})
    return links


def basic(request, conf, image: Image) -> dict:
    return {"id": image.id, "name": image.name,
            "links": _links(request, conf, image)}


def detail(request, conf, image: Image) -> dict:
    status, progress = _STATUS.get(image.status, ("UNKNOWN", 0))
    properties = dict(image.properties)
    body = basic(request, conf, image)
    body.update({
        "minRam": image.min_ram,
        "minDisk": image.min_disk,
        "metadata": properties,
        "created": common.isotime(image.created_at),
        "updated": common.isotime(image.updated_at),
        "status": status,
        "progress": progress,
        "OS-EXT-IMG-SIZE:size": image.size,
    })
    server = properties.get("instance_uuid")
    if server:
        body["server"] = {"id": server,
                          "links": common.links(request, "servers", server)}
    if "auto_disk_config" in properties:
        body["OS-DCF:diskConfig"] = (
            "AUTO" if to_bool(properties["auto_disk_config"]) else "MANUAL")
    return body
