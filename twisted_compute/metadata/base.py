"""The metadata documents of one instance, for the metadata API and the
config drive.

Paths and keys are those Nova's metadata service serves and cloud-init's
OpenStack and EC2 datasources read:

* ``/openstack`` lists :data:`OPENSTACK_VERSIONS` and ``latest``;
  ``/openstack/<version>/`` lists the files of that version
  (``meta_data.json``, ``user_data``, ``password``, ``vendor_data.json``,
  ``network_data.json``, ``vendor_data2.json``), each appearing from the
  version that introduced it.
* ``/`` lists :data:`EC2_VERSIONS` and ``latest``;
  ``/<version>/meta-data/...`` is a tree whose directories list their
  entries one per line, subtrees with a trailing ``/``;
  ``/<version>/user-data`` is the raw user data.

Everything is computed from the records given to
:class:`InstanceMetadata`; nothing here touches a database, a file or the
network (except :func:`load_vendor_data`, which reads a file and is meant
for start-up).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import posixpath
import zlib
from typing import Any, Callable, Iterator, Mapping, Sequence

import attrs

from twisted_compute.log import Logger
from twisted_compute.metadata.netdata import network_data

log = Logger()

EC2_VERSIONS = (
    "1.0", "2007-01-19", "2007-03-01", "2007-08-29", "2007-10-10",
    "2007-12-15", "2008-02-01", "2008-09-01", "2009-04-04",
)

FOLSOM = "2012-08-10"
GRIZZLY = "2013-04-04"
HAVANA = "2013-10-17"
LIBERTY = "2015-10-15"
NEWTON_ONE = "2016-06-30"
NEWTON_TWO = "2016-10-06"
OCATA = "2017-02-22"
ROCKY = "2018-08-27"
VICTORIA = "2020-10-14"

OPENSTACK_VERSIONS = (FOLSOM, GRIZZLY, HAVANA, LIBERTY, NEWTON_ONE,
                      NEWTON_TWO, OCATA, ROCKY, VICTORIA)
LATEST = "latest"

#: The EC2 versions a config drive carries (Nova's default
#: ``config_drive_skip_versions`` leaves out all older ones).
CONFIG_DRIVE_EC2_VERSIONS = ("2009-04-04", LATEST)

MD_JSON = "meta_data.json"
USER_DATA = "user_data"
PASSWORD = "password"
VD_JSON = "vendor_data.json"
NW_JSON = "network_data.json"
VD2_JSON = "vendor_data2.json"
CONTENT_DIR = "content"

TEXT_PLAIN = "text/plain"
APPLICATION_JSON = "application/json"

#: Bytes of random seed in meta_data.json (cloud-init feeds the guest's
#: entropy pool with it).
RANDOM_SEED_BYTES = 512


class MetadataNotFound(Exception):
    """No such metadata path (or version): the API answers 404."""


@attrs.frozen
class Content:
    """A metadata answer: the body and its content type."""

    body: bytes
    content_type: str = TEXT_PLAIN


def _at_least(version: str, required: str, ordered: Sequence[str]) -> bool:
    if version == LATEST:
        return True
    return ordered.index(version) >= ordered.index(required)


def _decode_user_data(stored: str | bytes | None) -> bytes | None:
    """User data is stored base64 encoded, as the compute API takes it."""
    if stored is None or stored == "":
        return None
    raw = stored.encode("ascii", "replace") if isinstance(stored, str) \
        else bytes(stored)
    try:
        return base64.b64decode(raw, validate=False)
    except (binascii.Error, ValueError):
        return raw


def ec2_id(prefix: str, value: Any) -> str:
    """An EC2-style id (``i-0000002a``, ``ami-1f2e3d4c``): numeric ids as
    they are, anything else (image uuids) by a stable 32-bit checksum."""
    if isinstance(value, int):
        return f"{prefix}-{value:08x}"
    if not value:
        return f"{prefix}-00000000"
    return f"{prefix}-{zlib.crc32(str(value).encode()) & 0xffffffff:08x}"


def ec2_format(data: Any) -> bytes:
    """An EC2 metadata value as text: a directory lists its entries
    (sorted, subtrees ending in ``/``, a ``_name`` standing for the entry
    as in ``0=keyname``), a list one item per line."""
    if isinstance(data, Mapping):
        lines = []
        for key in sorted(data):
            if key == "_name":
                continue
            value = data[key]
            if isinstance(value, Mapping):
                lines.append(str(value["_name"]) if "_name" in value
                             else f"{key}/")
            else:
                lines.append(str(key))
        return "\n".join(lines).encode()
    if isinstance(data, (list, tuple)):
        return "\n".join(str(item) for item in data).encode()
    if isinstance(data, bytes):
        return data
    if data is None:
        return b""
    return str(data).encode()


def load_vendor_data(path: str) -> dict[str, Any]:
    """The static vendor data of ``[api] vendordata_jsonfile_path``; ``{}``
    (with a log line) when the path is empty, unreadable or not a JSON
    object.  Reads a file: call it at start-up or in a thread."""
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as exc:
        log.warn("cannot read vendor data file {path}: {error}", path=path,
                 error=exc.strerror)
        return {}
    except ValueError as exc:
        log.warn("vendor data file {path} is not JSON: {error}", path=path,
                 error=str(exc))
        return {}
    if not isinstance(data, dict):
        log.warn("vendor data file {path} does not hold a JSON object",
                 path=path)
        return {}
    return data


def _json(document: Any) -> Content:
    return Content(json.dumps(document).encode(), APPLICATION_JSON)


class InstanceMetadata:
    """The metadata of one instance.

    ``instance`` is an :class:`~twisted_compute.objects.instance.Instance`
    or a dict with its fields: ``uuid``, ``id``, ``display_name``,
    ``hostname``, ``project_id``, ``launch_index``, ``reservation_id``,
    ``availability_zone``, ``key_name``, ``key_data``, ``user_data``
    (base64 text as stored), ``metadata`` (server metadata),
    ``addresses``, ``security_groups``, ``flavor`` (the snapshot, for its
    name), ``image_ref``, ``kernel_id``, ``ramdisk_id``, ``ephemeral_gb``
    and ``system_metadata`` (of which only the guest-posted ``password``
    is ever shown, and only by the API's ``password`` path).

    ``address`` is the caller's IP, the EC2 ``local-ipv4`` of last
    resort.  ``files`` are injected files ``(path, bytes)``, shown as
    ``/openstack/content/NNNN``.  ``network_info`` lists the interfaces a
    driver plugged (``{"id", "network", "mac"}``) for ``network_data.json``
    before their addresses are known.  ``extra_md`` adds keys to
    ``meta_data.json`` (the config drive's ``admin_pass``, as Nova writes
    it; the API never passes any).  ``random_bytes`` makes the random seed
    (tests pass a deterministic one).
    """

    def __init__(self, instance: Any, *, address: str | None = None,
                 key_type: str | None = None,
                 vendor_data: Mapping[str, Any] | None = None,
                 vendor_data2: Mapping[str, Any] | None = None,
                 dhcp_domain: str = "novalocal",
                 default_availability_zone: str = "nova",
                 root_device_name: str = "/dev/vda",
                 files: Sequence[tuple[str, bytes]] = (),
                 network_info: Sequence[Mapping[str, Any]] = (),
                 extra_md: Mapping[str, Any] | None = None,
                 random_bytes: Callable[[int], bytes] = os.urandom):
        values = (instance.to_dict() if hasattr(instance, "to_dict")
                  else dict(instance))
        self.instance = values
        self.uuid: str = values["uuid"]
        self.project_id: str | None = values.get("project_id")
        self.address = address
        self.vendor_data = dict(vendor_data or {})
        self.vendor_data2 = dict(vendor_data2 or {})
        self.dhcp_domain = dhcp_domain
        self.availability_zone = (values.get("availability_zone")
                                  or default_availability_zone)
        self.root_device_name = root_device_name
        self.random_bytes = random_bytes
        self.user_data = _decode_user_data(values.get("user_data"))
        self.key_name: str | None = values.get("key_name")
        self.key_data: str | None = values.get("key_data")
        if key_type is None and self.key_data:
            key_type = ("x509" if self.key_data.lstrip().startswith(
                "-----BEGIN CERTIFICATE") else "ssh")
        self.key_type = key_type or "ssh"
        self.files = [(path, bytes(data)) for path, data in files]
        self.network_info = [dict(vif) for vif in network_info]
        self.extra_md = dict(extra_md or {})

    # --- facts ----------------------------------------------------------

    @property
    def hostname(self) -> str:
        name = (self.instance.get("hostname")
                or f"server-{self.uuid}")
        if self.dhcp_domain:
            return f"{name}.{self.dhcp_domain}"
        return name

    @property
    def password(self) -> str:
        """The password the guest posted (encrypted by the guest with the
        user's public key), or ``""``."""
        return (self.instance.get("system_metadata") or {}).get(
            "password") or ""

    def _addresses(self, kind: str, version: int) -> list[str]:
        found = []
        for entries in (self.instance.get("addresses") or {}).values():
            for entry in entries or ():
                if not isinstance(entry, Mapping) or not entry.get("addr"):
                    continue
                if entry.get("OS-EXT-IPS:type", "fixed") != kind:
                    continue
                entry_version = entry.get("version") or (
                    6 if ":" in str(entry["addr"]) else 4)
                if int(entry_version) == version:
                    found.append(str(entry["addr"]))
        return found

    def fixed_ips(self, version: int = 4) -> list[str]:
        return self._addresses("fixed", version)

    def floating_ips(self) -> list[str]:
        return self._addresses("floating", 4)

    def _security_groups(self) -> list[str]:
        names = []
        for group in self.instance.get("security_groups") or ():
            name = group.get("name") if isinstance(group, Mapping) \
                else group
            if name:
                names.append(str(name))
        return names

    def _block_device_mapping(self) -> dict[str, str]:
        root = self.root_device_name
        mapping = {"ami": root.rsplit("/", 1)[-1], "root": root}
        flavor = self.instance.get("flavor") or {}
        prefix = root.rstrip("abcdefghijklmnopqrstuvwxyz")
        letter = ord(root[-1]) + 1
        ephemeral = (self.instance.get("ephemeral_gb")
                     or flavor.get("ephemeral_gb") or 0)
        if ephemeral:
            mapping["ephemeral0"] = f"{prefix}{chr(letter)}"
            letter += 1
        if flavor.get("swap"):
            mapping["swap"] = f"{prefix}{chr(letter)}"
        return mapping

    # --- OpenStack documents ------------------------------------------

    def meta_data(self, version: str = LATEST) -> dict[str, Any]:
        """``meta_data.json`` at ``version`` (random seed fresh each
        call, as Nova makes it per request)."""
        md: dict[str, Any] = {"uuid": self.uuid}
        meta = self.instance.get("metadata") or {}
        if meta:
            md["meta"] = dict(meta)
        if self.files:
            md["files"] = [{"path": path,
                            "content_path": f"/{CONTENT_DIR}/{i:04d}"}
                           for i, (path, _) in enumerate(self.files)]
        md.update(self.extra_md)
        if self.key_name and self.key_data:
            md["public_keys"] = {self.key_name: self.key_data}
            md["keys"] = [{"name": self.key_name, "type": self.key_type,
                           "data": self.key_data}]
        md["hostname"] = self.hostname
        md["name"] = self.instance.get("display_name") or ""
        md["launch_index"] = self.instance.get("launch_index") or 0
        md["availability_zone"] = self.availability_zone
        ordered = OPENSTACK_VERSIONS
        if _at_least(version, GRIZZLY, ordered):
            md["random_seed"] = base64.b64encode(
                self.random_bytes(RANDOM_SEED_BYTES)).decode("ascii")
        if _at_least(version, LIBERTY, ordered):
            md["project_id"] = self.project_id
        if _at_least(version, NEWTON_ONE, ordered):
            md["devices"] = []
        if _at_least(version, VICTORIA, ordered):
            md["dedicated_cpus"] = []
        return md

    def network_data(self) -> dict[str, Any]:
        return network_data(self.instance.get("addresses"),
                            self.network_info)

    def openstack_listing(self, version: str) -> list[str]:
        """The files of ``/openstack/<version>/``."""
        ordered = OPENSTACK_VERSIONS
        names = [MD_JSON]
        if self.user_data is not None:
            names.append(USER_DATA)
        if _at_least(version, GRIZZLY, ordered):
            names.append(PASSWORD)
        if _at_least(version, HAVANA, ordered):
            names.append(VD_JSON)
        if _at_least(version, LIBERTY, ordered):
            names.append(NW_JSON)
        if _at_least(version, NEWTON_TWO, ordered):
            names.append(VD2_JSON)
        return names

    def openstack_file(self, version: str, name: str) -> Content:
        if version != LATEST and version not in OPENSTACK_VERSIONS:
            raise MetadataNotFound(version)
        if name not in self.openstack_listing(version):
            raise MetadataNotFound(name)
        if name == MD_JSON:
            return _json(self.meta_data(version))
        if name == USER_DATA:
            return Content(self.user_data or b"")
        if name == PASSWORD:
            return Content(self.password.encode())
        if name == VD_JSON:
            return _json(self.vendor_data)
        if name == NW_JSON:
            return _json(self.network_data())
        return _json(self.vendor_data2)

    # --- EC2 ------------------------------------------------------------

    def ec2_tree(self, version: str = LATEST) -> dict[str, Any]:
        """``{"meta-data": {...}, "user-data": bytes}`` at ``version``
        (an EC2 version or ``latest``)."""
        if version != LATEST and version not in EC2_VERSIONS:
            raise MetadataNotFound(version)
        ordered = EC2_VERSIONS
        fixed = self.fixed_ips()
        floating = self.floating_ips()
        hostname = self.hostname
        md: dict[str, Any] = {
            "ami-id": ec2_id("ami", self.instance.get("image_ref")),
            "ami-launch-index": self.instance.get("launch_index") or 0,
            "ami-manifest-path": "FIXME",
            "instance-id": ec2_id("i", self.instance.get("id") or 0),
            "hostname": hostname,
            "local-ipv4": fixed[0] if fixed else (self.address or ""),
            "reservation-id": self.instance.get("reservation_id") or "",
            "security-groups": self._security_groups(),
        }
        if self.key_name and self.key_data:
            md["public-keys"] = {"0": {"_name": f"0={self.key_name}",
                                       "openssh-key": self.key_data}}
        if _at_least(version, "2007-01-19", ordered):
            md["local-hostname"] = hostname
            md["public-hostname"] = hostname
            md["public-ipv4"] = floating[0] if floating else ""
        if _at_least(version, "2007-08-29", ordered):
            md["instance-type"] = (self.instance.get("flavor") or {}).get(
                "name", "")
        if _at_least(version, "2007-12-15", ordered):
            md["block-device-mapping"] = self._block_device_mapping()
            if self.instance.get("kernel_id"):
                md["kernel-id"] = ec2_id("aki",
                                         self.instance["kernel_id"])
            if self.instance.get("ramdisk_id"):
                md["ramdisk-id"] = ec2_id("ari",
                                          self.instance["ramdisk_id"])
        if _at_least(version, "2008-02-01", ordered):
            md["placement"] = {"availability-zone": self.availability_zone}
        if _at_least(version, "2008-09-01", ordered):
            md["instance-action"] = "none"
        tree: dict[str, Any] = {"meta-data": md}
        if self.user_data is not None:
            tree["user-data"] = self.user_data
        return tree

    # --- paths ------------------------------------------------------------

    def lookup(self, path: str) -> Content:
        """The answer for a metadata API ``path`` (``/openstack/...``,
        ``/<ec2 version>/...``); raises :class:`MetadataNotFound`."""
        path = posixpath.normpath("/" + path.lstrip("/"))
        tokens = [t for t in path.split("/") if t]
        if not tokens:
            return Content(ec2_format(list(EC2_VERSIONS) + [LATEST]))
        if tokens[0] == "openstack":
            return self._openstack(tokens[1:])
        node: Any = self.ec2_tree(tokens[0])
        for token in tokens[1:]:
            if not isinstance(node, Mapping) or token == "_name" \
                    or token not in node:
                raise MetadataNotFound(path)
            node = node[token]
        return Content(ec2_format(node))

    def _openstack(self, tokens: list[str]) -> Content:
        if not tokens:
            return Content(ec2_format(list(OPENSTACK_VERSIONS) + [LATEST]))
        if tokens[0] == CONTENT_DIR and len(tokens) == 2:
            for index, (_, data) in enumerate(self.files):
                if tokens[1] == f"{index:04d}":
                    return Content(data)
            raise MetadataNotFound(tokens[1])
        version = tokens[0]
        if version != LATEST and version not in OPENSTACK_VERSIONS:
            raise MetadataNotFound(version)
        if len(tokens) == 1:
            return Content(ec2_format(self.openstack_listing(version)))
        if len(tokens) > 2:
            raise MetadataNotFound("/".join(tokens))
        return self.openstack_file(version, tokens[1])

    # --- config drive -----------------------------------------------------

    def config_drive_files(self) -> Iterator[tuple[str, bytes]]:
        """``(relative path, bytes)`` of every file of a config drive: the
        EC2 ``meta-data.json`` and ``user-data`` of the recent EC2
        versions, and every OpenStack version's documents (not the
        password, which only the API holds)."""
        for version in CONFIG_DRIVE_EC2_VERSIONS:
            tree = self.ec2_tree(version)
            if "user-data" in tree:
                yield f"ec2/{version}/user-data", tree["user-data"]
            md = dict(tree["meta-data"])
            keys = md.get("public-keys")
            if keys:
                md["public-keys"] = {
                    index: {k: v for k, v in entry.items() if k != "_name"}
                    for index, entry in keys.items()}
            yield f"ec2/{version}/meta-data.json", json.dumps(md).encode()
        for version in OPENSTACK_VERSIONS + (LATEST,):
            for name in self.openstack_listing(version):
                if name == PASSWORD:
                    continue
                yield (f"openstack/{version}/{name}",
                       self.openstack_file(version, name).body)
        for index, (_, data) in enumerate(self.files):
            yield f"openstack/{CONTENT_DIR}/{index:04d}", data
