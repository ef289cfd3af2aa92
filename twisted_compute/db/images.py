"""Images: ``def thd(conn)`` queries (``compute-manage`` runs them in a
plain transaction) and :class:`ImagesComponent`, which runs them in the
DB pool."""

from __future__ import annotations

import json
from typing import Any, Sequence

import sqlalchemy as sa
from twisted.internet.defer import Deferred

from twisted_compute import exception
from twisted_compute.db import models as m
from twisted_compute.db.base import DBComponent
from twisted_compute.objects.image import Image

T = m.images

#: Keys a list may be sorted by, with the value a NULL sorts as (so that
#: a marker can be compared against every row).
SORT_KEYS: dict[str, Any] = {
    "name": "", "status": "", "container_format": "", "disk_format": "",
    "size": -1, "virtual_size": -1, "id": None, "created_at": None,
    "updated_at": None, "visibility": "", "owner": "", "min_disk": None,
    "min_ram": None,
}

#: Columns a list may be filtered on with ``=`` or ``in:a,b``.
FILTER_COLUMNS = ("id", "name", "status", "visibility", "owner",
                  "disk_format", "container_format", "checksum",
                  "os_hash_value")


def _record(row) -> Image:
    return Image(
        id=row.id, name=row.name, status=row.status,
        visibility=row.visibility, owner=row.owner,
        disk_format=row.disk_format, container_format=row.container_format,
        size=row.size, virtual_size=row.virtual_size, checksum=row.checksum,
        os_hash_algo=row.os_hash_algo, os_hash_value=row.os_hash_value,
        min_disk=row.min_disk, min_ram=row.min_ram,
        protected=bool(row.protected), os_hidden=bool(row.os_hidden),
        properties=dict(row.properties or {}), tags=list(row.tags or []),
        location=row.location, created_at=row.created_at,
        updated_at=row.updated_at)


def _sort_expr(key: str):
    column = T.c[key]
    null_as = SORT_KEYS[key]
    if key == "updated_at":
        return sa.func.coalesce(column, T.c.created_at)
    return column if null_as is None else sa.func.coalesce(column, null_as)


def _sort_value(row, key: str):
    value = getattr(row, key)
    if value is None:
        return row.created_at if key == "updated_at" else SORT_KEYS[key]
    return value


def visible_clause(project_id: str | None):
    """Rows a caller of ``project_id`` may see (None: an admin, all)."""
    if project_id is None:
        return sa.true()
    return sa.or_(T.c.visibility.in_(("public", "community")),
                  T.c.owner == project_id)


def listed_clause(project_id: str | None, visibility: str | None):
    """What a list shows by default, as Glance does: public images, the
    caller's own, and community images only when asked for by
    visibility (or when they are the caller's own)."""
    if visibility in (None, ""):
        if project_id is None:
            return sa.true()
        return sa.or_(T.c.visibility == "public", T.c.owner == project_id)
    if visibility == "all":
        return visible_clause(project_id)
    clause = T.c.visibility == visibility
    if project_id is not None and visibility in ("private", "shared"):
        clause = sa.and_(clause, T.c.owner == project_id)
    return clause


#: :func:`get`'s query, for an admin (False) and for a project (True),
#: built once with ``image_id`` and ``project_id`` parameters.
_GET = {by_project: sa.select(T).where(
            T.c.id == sa.bindparam("image_id"),
            visible_clause(sa.bindparam("project_id") if by_project
                           else None))
        for by_project in (False, True)}


def get(conn, image_id: str, project_id: str | None = None) -> Image:
    """The image ``image_id`` if ``project_id`` may see it (None: any)."""
    row = conn.execute(_GET[project_id is not None], {
        "image_id": image_id, "project_id": project_id}).first()
    if row is None:
        raise exception.ImageNotFound(image_id=image_id)
    return _record(row)


def get_all(conn, *, project_id: str | None = None,
            visibility: str | None = None,
            filters: dict[str, Sequence[str]] | None = None,
            property_filters: dict[str, str] | None = None,
            tags: Sequence[str] = (),
            os_hidden: bool | None = False,
            protected: bool | None = None,
            size_min: int | None = None, size_max: int | None = None,
            sort: Sequence[tuple[str, str]] = (("created_at", "desc"),),
            limit: int | None = None, marker: str | None = None
            ) -> list[Image]:
    """Images listed for ``project_id`` (None: an admin), filtered,
    sorted by ``sort`` (``[(key, "asc"|"desc")]``) and paginated after
    ``marker`` (an image id).

    ``filters`` maps a column of :data:`FILTER_COLUMNS` to the values it
    may have; ``property_filters`` matches extra properties exactly;
    ``tags``: every one must be on the image.
    """
    sort = list(sort)
    for key, direction in sort:
        if key not in SORT_KEYS:
            raise exception.InvalidSortKey(sort_key=key)
        if direction not in ("asc", "desc"):
            raise exception.InvalidInput(
                reason=f"Invalid sort direction: {direction}")
    keys = [k for k, _ in sort]
    last_dir = sort[-1][1] if sort else "desc"
    for tie in ("created_at", "id"):
        if tie not in keys:
            sort.append((tie, last_dir))
            keys.append(tie)

    query = sa.select(T).where(listed_clause(project_id, visibility))
    for name, values in (filters or {}).items():
        if name not in FILTER_COLUMNS:
            raise exception.InvalidInput(reason=f"Invalid filter: {name}")
        query = query.where(T.c[name].in_(list(values)))
    if os_hidden is not None:
        query = query.where(T.c.os_hidden == sa.literal(os_hidden))
    if protected is not None:
        query = query.where(T.c.protected == sa.literal(protected))
    if size_min is not None:
        query = query.where(T.c.size >= size_min)
    if size_max is not None:
        query = query.where(T.c.size <= size_max)

    query = query.order_by(*[
        _sort_expr(k).desc() if d == "desc" else _sort_expr(k).asc()
        for k, d in sort])
    if marker is not None:
        mrow = conn.execute(sa.select(T).where(
            T.c.id == marker, visible_clause(project_id))).first()
        if mrow is None:
            raise exception.InvalidMarker(marker=marker)
        # Rows strictly after the marker in the sort order: equal on the
        # first i keys and beyond it on key i, for some i.
        after = []
        for i, (key, direction) in enumerate(sort):
            equal = [_sort_expr(k) == _sort_value(mrow, k)
                     for k, _ in sort[:i]]
            expr, value = _sort_expr(key), _sort_value(mrow, key)
            beyond = expr < value if direction == "desc" else expr > value
            after.append(sa.and_(*equal, beyond))
        query = query.where(sa.or_(*after))
    wanted = set(tags)
    properties = dict(property_filters or {})
    if limit is not None and not wanted and not properties:
        query = query.limit(limit)
    images = [_record(r) for r in conn.execute(query)]
    if wanted or properties:
        # Tags and properties are JSON: filtered here rather than in SQL,
        # where the JSON path of an arbitrary property name is no
        # portable expression (SQLite, PostgreSQL and MariaDB each
        # mis-read some names).
        images = [i for i in images if wanted <= set(i.tags) and all(
            _text(i.properties.get(k)) == v for k, v in properties.items())]
        if limit is not None:
            images = images[:limit]
    return images


def _text(value: Any) -> str | None:
    """A property's value as the text a query string filter names."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)


def create(conn, values: dict[str, Any]) -> Image:
    """Insert an image; 409 when its id is taken."""
    taken = conn.execute(sa.select(T.c.id).where(
        T.c.id == values["id"])).first()
    if taken is not None:
        raise exception.ImageExists(image_id=values["id"])
    values = dict(values)
    values.setdefault("properties", {})
    values.setdefault("tags", [])
    values.setdefault("created_at", m.utcnow())
    values.setdefault("updated_at", values["created_at"])
    conn.execute(T.insert().values(**values))
    return get(conn, values["id"])


def update(conn, image_id: str, values: dict[str, Any],
           expect_status: Sequence[str] | None = None) -> Image:
    """Change an image's columns; with ``expect_status``, only while its
    status is one of those (409 otherwise)."""
    current = get(conn, image_id)
    if expect_status is not None and current.status not in expect_status:
        raise exception.ImageStatusConflict(
            image_id=image_id, status=current.status)
    values = dict(values)
    values["updated_at"] = m.utcnow()
    query = T.update().where(T.c.id == image_id)
    if expect_status is not None:
        query = query.where(T.c.status.in_(list(expect_status)))
    if conn.execute(query.values(**values)).rowcount != 1:
        raise exception.ImageStatusConflict(
            image_id=image_id, status=current.status)
    return get(conn, image_id)


def destroy(conn, image_id: str) -> Image:
    """Delete an image's row (not its file); 403 when it is protected."""
    image = get(conn, image_id)
    if image.protected:
        raise exception.ImageProtected(image_id=image_id)
    conn.execute(T.delete().where(T.c.id == image_id))
    return image


def boot_meta(conn, image_id: str | None) -> dict[str, Any] | None:
    """What an agent needs to know of an image to boot it (None when
    there is no such image)."""
    if not image_id:
        return None
    try:
        image = get(conn, image_id)
    except exception.ImageNotFound:
        return None
    return {"id": image.id, "name": image.name, "status": image.status,
            "disk_format": image.disk_format,
            "container_format": image.container_format,
            "size": image.size, "checksum": image.checksum,
            "os_hash_algo": image.os_hash_algo,
            "os_hash_value": image.os_hash_value,
            "min_disk": image.min_disk, "min_ram": image.min_ram,
            "properties": dict(image.properties)}


# --- the component ----------------------------------------------------------

class ImagesComponent(DBComponent):
    """The image API's images."""

    def get(self, image_id: str, project_id: str | None = None
            ) -> Deferred[Image]:
        return self._read(get, image_id, project_id)

    def get_all(self, **kwargs: Any) -> Deferred[list[Image]]:
        """See :func:`get_all` (keyword arguments only)."""
        return self._read(get_all, **kwargs)

    def create(self, values: dict[str, Any]) -> Deferred[Image]:
        return self._write(create, values)

    def update(self, image_id: str, values: dict[str, Any],
               expect_status: Sequence[str] | None = None
               ) -> Deferred[Image]:
        return self._write(update, image_id, values, expect_status)

    def destroy(self, image_id: str) -> Deferred[Image]:
        return self._write(destroy, image_id)

    def boot_meta(self, image_id: str | None
                  ) -> Deferred[dict[str, Any] | None]:
        """See :func:`boot_meta`."""
        return self._read(boot_meta, image_id)
