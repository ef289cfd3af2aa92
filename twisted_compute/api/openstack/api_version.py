"""Microversions: ``OpenStack-API-Version: compute X.Y`` (and the legacy
``X-OpenStack-Nova-API-Version: X.Y``).

``latest`` means the maximum.  A version string of the wrong form is
answered with 400; a well-formed one outside [MIN, MAX] with 406.  Every
response echoes the version it was served at, with ``Vary``.
"""

from __future__ import annotations

import re
from functools import total_ordering

from twisted_compute import exception

_VERSION = re.compile(r"^([1-9]\d*)\.([1-9]\d*|0)$")


@total_ordering
class APIVersion:
    __slots__ = ("major", "minor")

    def __init__(self, text: str | None = None, major: int = 0,
                 minor: int = 0):
        if text is not None:
            match = _VERSION.match(text.strip())
            if not match:
                raise exception.InvalidAPIVersionString(version=text)
            major, minor = int(match.group(1)), int(match.group(2))
        self.major = major
        self.minor = minor

    def _tuple(self):
        return (self.major, self.minor)

    def __eq__(self, other):
        if isinstance(other, str):
            other = APIVersion(other)
        return self._tuple() == other._tuple()

    def __lt__(self, other):
        if isinstance(other, str):
            other = APIVersion(other)
        return self._tuple() < other._tuple()

    def __hash__(self):
        return hash(self._tuple())

    def __str__(self):
        return f"{self.major}.{self.minor}"

    __repr__ = __str__

    def matches(self, low: str | None = None, high: str | None = None):
        """Whether ``low <= self <= high`` (either bound may be None)."""
        if low is not None and self < APIVersion(low):
            return False
        if high is not None and self > APIVersion(high):
            return False
        return True


MIN_VERSION = APIVersion("2.1")
#: The highest microversion whose changes are implemented for every
#: resource this API serves.
MAX_VERSION = APIVersion("2.104")


def from_request(request) -> APIVersion:
    """The version asked for by ``request`` (default: the minimum)."""
    text = None
    header = request.getHeader(b"openstack-api-version")
    if header:
        for item in header.decode("latin-1").split(","):
            service, _, value = item.strip().partition(" ")
            if service.lower() == "compute":
                text = value.strip()
                break
    if text is None:
        legacy = request.getHeader(b"x-openstack-nova-api-version")
        if legacy:
            text = legacy.decode("latin-1").strip()
    if text is None:
        return MIN_VERSION
    if text.lower() == "latest":
        return MAX_VERSION
    version = APIVersion(text)
    if not MIN_VERSION <= version <= MAX_VERSION:
        raise exception.VersionNotAcceptable(
            version=text, min=MIN_VERSION, max=MAX_VERSION)
    return version


def set_response_headers(request, version: APIVersion) -> None:
    request.setHeader(b"openstack-api-version", f"compute {version}".encode())
    request.setHeader(b"x-openstack-nova-api-version", str(version).encode())
    request.responseHeaders.addRawHeader(
        b"vary", b"OpenStack-API-Version, X-OpenStack-Nova-API-Version")
