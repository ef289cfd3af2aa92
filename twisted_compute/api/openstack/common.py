"""What every controller uses: the context, JSON in and out, schema checks,
links, pagination and the Klein app factory that turns exceptions into
faults."""

from __future__ import annotations

import contextvars
import datetime
import functools
import inspect
import ipaddress
import json
import re
import uuid as uuidlib
from typing import Any, Iterable, Sequence
from urllib.parse import urlencode

import jsonschema
from klein import Klein

from twisted_compute import exception
from twisted_compute.api import faults
from twisted_compute.api.openstack.api_version import APIVersion
from twisted_compute.context import RequestContext


# --- Klein apps -----------------------------------------------------------

def make_app() -> Klein:
    """A Klein app whose errors (domain exceptions, routing 404/405,
    anything unexpected) all become Nova fault bodies."""
    app = Klein()

    @app.handle_errors(Exception)
    def _fault(*args):
        request, failure = args[-2], args[-1]
        return faults.render_failure(request, failure)

    return app


#: ``route(query=...)`` not given: a GET that takes no query parameters.
_NO_PARAMS: dict = {"type": "object", "properties": {},
                    "additionalProperties": False}
_STRICT_QUERY = APIVersion("2.102")


def route(app: Klein, path: str, methods: Sequence[str],
          query: dict | None = _NO_PARAMS, **kwargs):
    """``app.route`` with the options every API route wants.  A GET
    route checks its query string against ``query`` (a schema of
    ``{name: [values]}``, see :mod:`.compute.schemas.query`; None: not
    checked) from microversion 2.102, where unknown parameters are a
    400; the route's schema is kept as ``query_schema`` on the handler."""
    def decorate(handler):
        if "GET" in methods and query is not None:
            handler = _checking_query(handler, query)
        return app.route(path, methods=list(methods), strict_slashes=False,
                         **kwargs)(handler)
    return decorate


def _checking_query(handler, schema: dict):
    validator = jsonschema.Draft4Validator(schema)

    def check(request) -> None:
        version = getattr(request, "api_version", None)
        if version is None or version < _STRICT_QUERY:
            return
        params = query(request)
        if not params and not schema.get("required"):
            return
        check_query(params, validator)

    if inspect.iscoroutinefunction(handler):
        @functools.wraps(handler)
        async def checked(self, request, *args, **kwargs):
            check(request)
            return await handler(self, request, *args, **kwargs)
    else:
        @functools.wraps(handler)
        def checked(self, request, *args, **kwargs):
            check(request)
            return handler(self, request, *args, **kwargs)
    checked.query_schema = schema
    return checked


def check_query(params: dict[str, list[str]], validator) -> None:
    """400 when ``params`` do not match ``validator``'s query schema,
    naming the unknown parameters as Nova does."""
    errors = sorted(validator.iter_errors(params),
                    key=lambda e: (e.validator != "additionalProperties",
                                   list(e.absolute_path)))
    if not errors:
        return
    error = errors[0]
    if error.validator == "additionalProperties":
        raise exception.ValidationError(
            field="query parameters", detail=error.message)
    name = str(error.absolute_path[0]) if error.absolute_path else \
        "query parameters"
    value = error.instance
    raise exception.ValidationError(
        field=name, detail=f"Value: {value!r}. {error.message}")


class Controller:
    """Base of controllers.  A subclass sets ``app = make_app()`` and
    ``collections`` (the router keys it serves, e.g. ``("servers",)`` or
    ``("servers", "metadata")`` for ``/servers/{id}/metadata``)."""

    app: Klein
    collections: tuple[tuple[str, ...], ...] = ()

    def __init__(self, services):
        self.services = services
        self.conf = services.conf
        self.db = services.db

    def resource(self):
        return self.app.resource()


# --- context, versions, bodies --------------------------------------------

def get_context(request) -> RequestContext:
    try:
        return request.compute_context
    except AttributeError:
        raise exception.NotAuthenticated() from None


def api_version(request) -> APIVersion:
    return request.api_version


def is_at_least(request, version: str) -> bool:
    return request.api_version >= APIVersion(version)


def _json_default(value):
    if isinstance(value, datetime.datetime):
        return isotime(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


#: What :func:`json_response` encodes with: ``json.dumps(body,
#: default=_json_default, separators=(",", ":"))``, built once instead of
#: per response.
_ENCODER = json.JSONEncoder(default=_json_default, separators=(",", ":"))


def json_response(request, body: Any, status: int = 200) -> bytes:
    """Set status and content type; return the encoded body (empty for
    204 or ``body is None``)."""
    request.setResponseCode(status)
    if body is None or status == 204:
        return b""
    request.setHeader(b"content-type", b"application/json")
    return _ENCODER.encode(body).encode()


def read_body(request) -> Any:
    """The request's JSON body; 400 when it is not JSON."""
    request.content.seek(0)
    raw = request.content.read()
    if not raw:
        raise exception.Invalid(reason="The request body is empty; "
                                "a JSON document is required.")
    content_type = (request.getHeader(b"content-type") or b"").decode(
        "latin-1").split(";")[0].strip().lower()
    if content_type and content_type not in (
            "application/json", "application/octet-stream", "text/plain") \
            and not content_type.endswith("+json"):
        raise exception.UnsupportedMediaType(
            content_type=content_type, expected="application/json")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise exception.Invalid(
            reason="Malformed request body") from None
    except RecursionError:
        # A body nested deeper than the interpreter's recursion limit.
        raise exception.Invalid(
            reason="Malformed request body: nested too deeply") from None
    # JSON writes a NUL only as \u0000 (its "u" is lower case only).
    if b"\\u0000" in raw and _holds_nul(body):
        raise exception.Invalid(
            reason="Malformed request body: a NUL character (\\u0000) "
                   "in a string")
    return body


def _holds_nul(body: Any) -> bool:
    """Whether a string (or an object's name) of ``body`` holds a NUL,
    which no name, value or filter of the APIs may hold (and PostgreSQL
    refuses in any text)."""
    pending = [body]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def _field_path(error: jsonschema.ValidationError) -> str:
    path = [str(p) for p in error.absolute_path]
    if error.validator == "required" and isinstance(error.message, str):
        missing = error.message.split("'")[1] if "'" in error.message \
            else ""
        path.append(missing)
    elif error.validator == "additionalProperties":
        extra = error.message.split("'")
        if len(extra) > 1:
            path.append(extra[1])
    return "/".join(p for p in path if p) or "body"


#: True while a request of the legacy v2 compatible API (``/v2``) runs
#: (:mod:`twisted_compute.api.middleware.legacy_v2`): its bodies' unknown
#: properties are dropped, not refused.
LEGACY_V2: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "legacy_v2", default=False)


def _soft_additional_properties(validator, allowed, instance, schema):
    """``additionalProperties: false`` as Nova's legacy v2 API applies it:
    unknown properties are removed from the body (refused only where
    ``patternProperties`` would have had to match them)."""
    if allowed or not validator.is_type(instance, "object"):
        return
    properties = schema.get("properties", {})
    patterns = "|".join(schema.get("patternProperties", {}))
    extra = [name for name in instance if name not in properties
             and not (patterns and re.search(patterns, name))]
    if not extra:
        return
    if patterns:
        yield jsonschema.ValidationError(
            "Additional properties are not allowed (%s unexpected)"
            % ", ".join(repr(name) for name in sorted(extra)))
        return
    for name in extra:
        del instance[name]


_LegacyV2Validator = jsonschema.validators.extend(
    jsonschema.Draft4Validator,
    {"additionalProperties": _soft_additional_properties})


def validate(body: Any, schema: dict) -> None:
    """Check ``body`` against ``schema``; a 400 names the bad field."""
    validator_class = _LegacyV2Validator if LEGACY_V2.get() \
        else jsonschema.Draft4Validator
    validator = validator_class(
        schema, format_checker=jsonschema.FormatChecker())
    try:
        errors = sorted(validator.iter_errors(body),
                        key=lambda e: (len(list(e.absolute_path)),
                                       e.message))
    except RecursionError:
        raise exception.Invalid(
            reason="Malformed request body: nested too deeply") from None
    if not errors:
        return
    error = errors[0]
    # Prefer the most specific error of a oneOf/anyOf.
    if error.context:
        error = sorted(error.context,
                       key=lambda e: -len(list(e.absolute_path)))[0]
    field = _field_path(error)
    value = error.instance
    if isinstance(value, (dict, list)):
        detail = error.message
    else:
        detail = f"Value: {value!r}. {error.message}"
    raise exception.ValidationError(field=field, detail=detail)


def versioned(request, schemas: Iterable[tuple[str, str | None, dict]]):
    """The first schema whose [low, high] range holds the request's
    version."""
    for low, high, schema in schemas:
        if request.api_version.matches(low, high):
            return schema
    raise AssertionError("no schema covers this microversion")


#: The largest integer a column of the database holds (and Nova's
#: ``db.MAX_INT``).
MAX_INT = 2147483647


def bounded_int(value, field: str, minimum: int = 0,
                maximum: int = MAX_INT) -> int:
    """A validated integer (or digit string: the schemas' integers may be
    strings, whose size no schema bounds) as an int in [minimum,
    maximum]; a 400 naming ``field`` otherwise."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise exception.ValidationError(
            field=field, detail=f"Value: {value!r}. not an integer") \
            from None
    if not minimum <= number <= maximum:
        raise exception.ValidationError(
            field=field,
            detail=f"Value: {value!r}. must be between {minimum} and "
                   f"{maximum}")
    return number


def canonical_ipv6(text: str | None) -> str | None:
    """An IPv6 address in canonical compressed form (``2001:db8::1``), as
    Nova stores and shows ``accessIPv6``; None for an empty value.  The
    schema has already checked that it is an IPv6 address."""
    if not text:
        return None
    try:
        return str(ipaddress.IPv6Address(text))
    except ValueError:
        raise exception.ValidationError(
            field="accessIPv6",
            detail=f"Value: {text!r}. Not a valid IPv6 address") from None


# --- query strings --------------------------------------------------------

def query(request) -> dict[str, list[str]]:
    """The query string as ``{name: [values]}`` (text)."""
    cached = getattr(request, "_query_text", None)
    if cached is None:
        cached = {k.decode("utf-8", "replace"):
                  [v.decode("utf-8", "replace") for v in vs]
                  for k, vs in (request.args or {}).items()}
        request._query_text = cached
    return cached


def query_one(request, name: str, default: str | None = None) -> str | None:
    values = query(request).get(name)
    return values[-1] if values else default


def query_int(request, name: str) -> int | None:
    """The integer filter ``name`` of the query, None when absent; 400
    naming it when it is not an integer."""
    value = query_one(request, name)
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        number = -1
    if not 0 <= number <= MAX_INT:
        raise exception.InvalidInput(
            reason=f"Invalid {name} filter [{value}]")
    return number


def metadata_item(request, key: str, schema: dict) -> dict[str, str]:
    """The ``{"meta": {key: value}}`` body of a PUT of one metadata item
    (server or image), checked against ``schema`` and the URL's ``key``."""
    body = read_body(request)
    if isinstance(body, dict) and isinstance(body.get("meta"), dict) \
            and len(body["meta"]) > 1:
        raise exception.Invalid("Request body contains too many items")
    validate(body, schema)
    if key not in body["meta"]:
        raise exception.Invalid("Request body and URI mismatch")
    return dict(body["meta"])


def parse_bool(value: str, name: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "t", "yes", "y", "on"):
        return True
    if lowered in ("0", "false", "f", "no", "n", "off"):
        return False
    raise exception.InvalidInput(
        reason=f"Invalid value '{value}' for {name}: not a boolean")


def limit_and_marker(request, max_limit: int) -> tuple[int, str | None]:
    """``limit`` (capped at ``max_limit``) and ``marker`` of a list."""
    limit_text = query_one(request, "limit")
    limit = max_limit
    if limit_text is not None:
        try:
            limit = int(limit_text)
        except ValueError:
            raise exception.ValidationError(
                field="limit",
                detail=f"Value: {limit_text!r}. not a valid integer") \
                from None
        if limit < 0:
            raise exception.ValidationError(
                field="limit", detail="limit must be >= 0")
        limit = min(limit, max_limit)
    return limit, query_one(request, "marker")


def parse_isotime(text: str, name: str) -> datetime.datetime:
    """ISO 8601 -> naive UTC datetime; 400 naming ``name`` otherwise."""
    try:
        when = datetime.datetime.fromisoformat(
            text.strip().replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise exception.ValidationError(
            field=name,
            detail=f"Value: {text!r}. not a valid ISO 8601 date-time") \
            from None
    if when.tzinfo is not None:
        when = when.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return when


def isotime(when: datetime.datetime | None) -> str | None:
    """``2013-09-03T04:01:32Z`` (what the API shows)."""
    if when is None:
        return None
    if when.tzinfo is None:
        # isoformat is several times cheaper than strftime (a list of
        # servers formats three times per server).
        return when.isoformat(timespec="seconds") + "Z"
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def isotime_usec(when: datetime.datetime | None) -> str | None:
    """``2013-09-03T04:01:32.000000`` (os-instance-actions, some views)."""
    if when is None:
        return None
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f")


def is_uuid_like(value: str) -> bool:
    try:
        return str(uuidlib.UUID(value)) == value.lower()
    except (ValueError, AttributeError, TypeError):
        return False


# --- links ----------------------------------------------------------------

def host_url(request) -> str:
    """``scheme://host[:port]`` as the client sees it."""
    proto = getattr(request, "forwarded_proto", None) or (
        "https" if request.isSecure() else "http")
    host = getattr(request, "forwarded_host", None)
    if not host:
        header = request.getHeader(b"host")
        if header:
            host = header.decode("latin-1")
        else:
            address = request.getHost()
            host = f"{address.host}:{address.port}"
    return f"{proto}://{host}"


def application_url(request) -> str:
    """The URL of the API root this request went through
    (``http://host:8774/v2.1``, with the project id when the URL had it)."""
    prefix = getattr(request, "link_prefix", None)
    if prefix:
        return prefix
    root = getattr(request, "api_root", None)
    if root is None:
        root = request.prepath
    path = "/".join(s.decode("utf-8", "replace") for s in root if s)
    return host_url(request) + ("/" + path if path else "")


def bookmark_url(request) -> str:
    """Like :func:`application_url` without the version segment: bookmark
    links are version-independent (``http://host:8774[/project]``)."""
    prefix = getattr(request, "link_prefix", None)
    root = getattr(request, "bookmark_root", None)
    if prefix:
        scheme, _, rest = prefix.partition("://")
        base = scheme + "://" + rest.partition("/")[0]
    else:
        base = host_url(request)
    path = "/".join(s.decode("utf-8", "replace") for s in (root or ()) if s)
    return base + ("/" + path if path else "")


def links(request, collection: str, item_id: str) -> list[dict[str, str]]:
    return [
        {"rel": "self",
         "href": f"{application_url(request)}/{collection}/{item_id}"},
        {"rel": "bookmark",
         "href": f"{bookmark_url(request)}/{collection}/{item_id}"},
    ]


def next_link(request, collection: str, items: Sequence[Any],
              limit: int, marker_of=lambda item: item["id"]) -> \
        list[dict[str, str]]:
    """``[{"rel": "next", "href": ...}]`` when a page is full, else []."""
    if not items or len(items) < limit:
        return []
    params = [(k, v) for k, vs in query(request).items() for v in vs
              if k != "marker"]
    params.append(("marker", marker_of(items[-1])))
    path = "/".join(s.decode("utf-8", "replace") for s in request.prepath
                    if s)
    # The path of the list itself, relative to the host.
    href = f"{host_url(request)}/{path}"
    if getattr(request, "link_prefix", None):
        href = f"{application_url(request)}/{collection}"
    return [{"rel": "next", "href": href + "?" + urlencode(params)}]
