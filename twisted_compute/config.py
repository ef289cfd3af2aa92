"""Typed configuration: options with defaults, read from ini files.

Option names and sections follow Nova's wherever the concept is the same, so
an operator's ``nova.conf`` knowledge carries over.  Files are given with
``--config-file`` (repeatable; a later file wins).  A value that does not
parse stops the process with a :class:`ConfigError` naming the option and
the file it came from.
"""

from __future__ import annotations

import configparser
import importlib
import os
import socket
import sys
from typing import Any, Callable, Iterable, Sequence

import attrs


class ConfigError(Exception):
    """A configuration value is wrong; the message names option and file."""


# --- option types ---------------------------------------------------------

def _parse_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{value!r} is not a boolean (true/false)")


def _parse_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


@attrs.frozen
class Opt:
    """One option: its name, type, default and limits."""

    name: str
    kind: str  # "str", "int", "float", "bool", "list", "port"
    default: Any
    help: str
    choices: Sequence[str] | None = None
    min: float | None = None
    max: float | None = None
    secret: bool = False

    def parse(self, raw: str) -> Any:
        value: Any
        if self.kind == "str":
            value = raw.strip()
        elif self.kind in ("int", "port"):
            try:
                value = int(raw.strip())
            except ValueError:
                raise ValueError(f"{raw!r} is not an integer") from None
            if self.kind == "port" and not 0 <= value <= 65535:
                raise ValueError(f"{value} is not a port number (0-65535)")
        elif self.kind == "float":
            try:
                value = float(raw.strip())
            except ValueError:
                raise ValueError(f"{raw!r} is not a number") from None
        elif self.kind == "bool":
            value = _parse_bool(raw)
        elif self.kind == "list":
            value = _parse_list(raw)
        else:  # pragma: no cover - programming error
            raise AssertionError(self.kind)
        if self.choices is not None:
            items = value if isinstance(value, list) else [value]
            for item in items:
                if item not in self.choices:
                    raise ValueError(
                        f"{item!r} is not one of {', '.join(self.choices)}")
        if self.min is not None and value < self.min:
            raise ValueError(f"{value} is below the minimum {self.min}")
        if self.max is not None and value > self.max:
            raise ValueError(f"{value} is above the maximum {self.max}")
        return value


def _s(name, default, help, **kw):
    return Opt(name, "str", default, help, **kw)


def _i(name, default, help, **kw):
    return Opt(name, "int", default, help, **kw)


def _f(name, default, help, **kw):
    return Opt(name, "float", default, help, **kw)


def _b(name, default, help, **kw):
    return Opt(name, "bool", default, help, **kw)


def _l(name, default, help, **kw):
    return Opt(name, "list", default, help, **kw)


def _p(name, default, help, **kw):
    return Opt(name, "port", default, help, **kw)


DEFAULT_AMQP_SPEC = (
    "/usr/share/amqp/specs/0-9-1-rabbit/amqp0-9-1.stripped.extended.xml")
"""Where Debian's ``amqp-specs`` package puts RabbitMQ's 0-9-1 spec."""

API_NAMES = ("osapi_compute", "metadata", "image")
_API_PORTS = {"osapi_compute": 8774, "metadata": 8775, "image": 9292}


def _api_opts() -> list[Opt]:
    opts = []
    for api in API_NAMES:
        opts += [
            _s(f"{api}_listen", "0.0.0.0",
               f"IP address on which the {api} API listens"),
            _p(f"{api}_listen_port", _API_PORTS[api],
               f"Port on which the {api} API listens"),
            _i(f"{api}_workers", 1,
               f"Number of worker processes for the {api} API; 1 serves "
               "from the main process", min=1, max=64),
        ]
    return opts


OPTIONS: dict[str, list[Opt]] = {
    "DEFAULT": [
        _l("enabled_apis", ["osapi_compute", "metadata", "image"],
           "APIs the compute-api process serves, each on its own listener"),
        _l("enabled_ssl_apis", [],
           "APIs served over TLS (needs [ssl] cert_file and key_file)"),
        *_api_opts(),
        _s("host", socket.gethostname(),
           "Name of this host, as services and instances record it"),
        _s("state_path", "/var/lib/twisted-compute",
           "Top-level directory for state: the SQLite database, images, "
           "instance files"),
        _s("transport_url", "local://",
           "Message bus URL: local:// (in process) or "
           "rabbit://user:pass@host:port/vhost"),
        _s("compute_driver", "fake",
           "Virt driver of the compute agent: fake or libvirt",
           choices=("fake", "libvirt")),
        _i("report_interval", 10,
           "Seconds between service heartbeats", min=1),
        _i("service_down_time", 60,
           "Seconds without a heartbeat after which a service is down",
           min=1),
        _s("default_availability_zone", "nova",
           "Availability zone of compute hosts not in an aggregate zone"),
        _s("internal_service_availability_zone", "internal",
           "Availability zone shown for services other than compute "
           "(conductor, scheduler, ...)"),
        _s("default_schedule_zone", "",
           "Availability zone given to servers created without one"),
        _i("max_request_body_size", 114688,
           "Largest accepted request body, in bytes", min=1),
        _b("debug", False, "Log at debug level"),
        _b("allow_resize_to_same_host", False, "Unused until resize exists"),
        _s("instance_name_template", "instance-%08x",
           "Template of the hypervisor's name for an instance (from its "
           "numeric id)"),
        _s("osapi_compute_unique_server_name_scope", "",
           "When 'project', server names must be unique in a project",
           choices=("", "project", "global")),
        # --- the message bus (twisted_compute/rpc) ---
        _i("rpc_response_timeout", 60,
           "Seconds to wait for the reply to an RPC call", min=1),
        _i("long_rpc_timeout", 1800,
           "Seconds to wait for the reply to a long RPC call (scheduling)",
           min=1),
        _s("control_exchange", "twisted_compute",
           "AMQP topic exchange the RPC topics are published to"),
        # --- config drives (twisted_compute/virt/configdrive.py) ---
        _b("force_config_drive", False,
           "Give every new server a config drive, asked for or not"),
        _s("config_drive_format", "iso9660",
           "File system of config drives", choices=("iso9660",)),
        _s("mkisofs_cmd", "genisoimage",
           "Program that builds config drive ISO images: genisoimage, "
           "mkisofs or xorriso (run as 'xorriso -as mkisofs')"),
    ],
    # --- the message bus (twisted_compute/rpc) ---
    "oslo_messaging_rabbit": [
        _i("heartbeat_timeout_threshold", 60,
           "Seconds without any frame from the broker after which the "
           "connection is considered dead (0 disables AMQP heartbeats)",
           min=0),
        _i("rabbit_qos_prefetch_count", 10,
           "Unacknowledged messages the broker may push to one consumer "
           "connection (basic.qos); 0 means no limit", min=0),
        _s("amqp_spec_path", DEFAULT_AMQP_SPEC,
           "The AMQP 0-9-1 spec XML txamqp loads (Debian package "
           "amqp-specs)"),
        _f("rabbit_retry_interval", 0.2,
           "Seconds before the first reconnection attempt", min=0.01),
        _f("rabbit_retry_backoff", 2.0,
           "Factor by which the reconnection delay grows on each failure",
           min=1.0),
        _f("rabbit_interval_max", 3.0,
           "Longest delay between reconnection attempts, in seconds",
           min=0.1),
        _f("rabbit_connect_timeout", 10.0,
           "Seconds for the TCP connect plus the AMQP handshake", min=0.1),
        _i("rabbit_transient_queues_ttl", 1800,
           "Seconds an unused reply or fanout queue survives its process "
           "(x-expires)", min=1),
        _b("amqp_durable_queues", True,
           "Whether topic queues and exchanges survive a broker restart"),
    ],
    "database": [
        _s("connection", "",
           "SQLAlchemy URL of the database; empty means the SQLite file "
           "$state_path/compute.sqlite", secret=True),
        _i("max_pool_size", 5, "Database connections (and DB threads); "
           "SQLite always uses one",
           min=1, max=100),
        _i("connection_recycle_time", 3600,
           "Seconds after which a pooled connection is replaced", min=1),
        _i("query_timeout", 0,
           "Seconds a database query may take, waiting for a database "
           "thread included, before its caller gets an error (0: no "
           "limit); one that is already running still completes, and "
           "commits", min=0),
    ],
    "api": [
        _s("auth_strategy", "keystone",
           "How requests are authenticated: noauth or keystone",
           choices=("noauth", "noauth2", "keystone")),
        _i("max_limit", 1000,
           "Most items a collection returns in one response", min=1),
        _s("compute_link_prefix", "",
           "Base URL used in compute links instead of the request's"),
        _s("glance_link_prefix", "",
           "Base URL used in image links instead of the request's"),
        _b("use_forwarded_for", False,
           "Trust X-Forwarded-For for the remote address"),
        _s("vendordata_jsonfile_path", "", "JSON file of static vendor data"),
        # --- the metadata API (twisted_compute/api/metadata) ---
        _i("metadata_cache_expiration", 15,
           "Seconds the metadata API keeps an instance's metadata; 0 "
           "disables the cache", min=0),
        _s("dhcp_domain", "novalocal",
           "Domain appended to instance hostnames in metadata; empty for "
           "none"),
    ],
    "wsgi": [
        _s("api_paste_config", "api-pipeline.ini",
           "The pipeline ini that composes each API; a relative name is "
           "looked for beside the config files, then in the package"),
        _b("secure_proxy_ssl_header", False,
           "Trust X-Forwarded-Proto/X-Forwarded-Host from a proxy"),
        _i("client_socket_timeout", 900,
           "Seconds an idle client connection is kept", min=0),
    ],
    "ssl": [
        _s("cert_file", "", "TLS certificate (PEM) for enabled_ssl_apis"),
        _s("key_file", "", "TLS private key (PEM) for enabled_ssl_apis"),
        _s("ca_file", "", "CA bundle (PEM) to verify clients, optional"),
    ],
    "oslo_policy": [
        _s("policy_file", "policy.yaml",
           "Policy overrides; a relative name is looked for beside the "
           "config files"),
    ],
    "cors": [
        _l("allowed_origin", [],
           "Origins allowed to make cross-site requests ('*' for any)"),
        _b("allow_credentials", True, "Allow credentials in CORS requests"),
        _l("expose_headers",
           ["X-Compute-Request-Id", "X-OpenStack-Request-ID",
            "OpenStack-API-Version", "X-OpenStack-Nova-API-Version"],
           "Headers exposed to CORS clients"),
        _i("max_age", 3600, "Seconds a preflight answer may be cached",
           min=0),
        _l("allow_methods", ["GET", "PUT", "POST", "DELETE", "PATCH", "HEAD"],
           "Methods allowed in CORS requests"),
        _l("allow_headers",
           ["X-Auth-Token", "X-Openstack-Request-Id", "X-Identity-Status",
            "X-Roles", "X-Service-Catalog", "X-User-Id", "X-Tenant-Id",
            "OpenStack-API-Version", "X-OpenStack-Nova-API-Version",
            "Content-Type"],
           "Headers allowed in CORS requests"),
    ],
    "keystone_authtoken": [
        _s("www_authenticate_uri", "",
           "Public Keystone endpoint announced in WWW-Authenticate"),
        _s("auth_url", "http://127.0.0.1:5000/v3",
           "Keystone v3 URL used to validate tokens"),
        _s("username", "nova", "Service user that validates tokens"),
        _s("password", "", "Password of the service user", secret=True),
        _s("project_name", "service", "Project of the service user"),
        _s("user_domain_name", "Default", "Domain of the service user"),
        _s("project_domain_name", "Default",
           "Domain of the service user's project"),
        _i("token_cache_time", 300,
           "Seconds a validated token is cached", min=0),
        _f("http_connect_timeout", 10.0,
           "Seconds to wait for Keystone", min=0.1),
    ],
    "quota": [
        _i("instances", 10, "Servers per project (-1: unlimited)", min=-1),
        _i("cores", 20, "vCPUs per project (-1: unlimited)", min=-1),
        _i("ram", 51200, "MiB of RAM per project (-1: unlimited)", min=-1),
        _i("metadata_items", 128, "Metadata items per server", min=-1),
        _i("key_pairs", 100, "Key pairs per user", min=-1),
        _i("server_groups", 10, "Server groups per project", min=-1),
        _i("server_group_members", 10, "Servers per server group", min=-1),
        _i("injected_files", 5, "Injected files per server", min=-1),
        _i("injected_file_content_bytes", 10240,
           "Bytes per injected file", min=-1),
        _i("injected_file_path_length", 255,
           "Characters per injected file path", min=-1),
    ],
    "neutron": [
        _s("metadata_proxy_shared_secret", "",
           "Secret shared with the metadata proxy; when set, the metadata "
           "API identifies instances by the proxy's X-Instance-ID, "
           "X-Tenant-ID and X-Instance-ID-Signature headers", secret=True),
    ],
    "glance": [
        _s("api_servers", "",
           "Image API base URL the compute side uses; empty: this "
           "process's own image API"),
        _i("image_size_cap", 1099511627776,
           "Largest image upload accepted, in bytes", min=0),
    ],
}


def _index(options: dict[str, list[Opt]]) -> dict[tuple[str, str], Opt]:
    return {(group, opt.name): opt
            for group, opts in options.items() for opt in opts}


class Group:
    """Attribute access to one section's values: ``conf.api.max_limit``."""

    def __init__(self, name: str, values: dict[str, Any]):
        self._name = name
        self._values = values

    def __getattr__(self, item: str) -> Any:
        try:
            return self._values[item]
        except KeyError:
            raise AttributeError(
                f"no option [{self._name}] {item}") from None


class Config:
    """Parsed configuration.

    ``conf.host`` reads ``[DEFAULT] host``; ``conf.database.connection``
    reads ``[database] connection``.  ``conf.sources`` maps
    ``(group, name)`` to the file a value came from.
    """

    def __init__(self, values: dict[str, dict[str, Any]],
                 sources: dict[tuple[str, str], str],
                 files: Sequence[str], raw: configparser.RawConfigParser):
        self._values = values
        self.sources = sources
        self.config_files = list(files)
        self.raw = raw
        self._groups = {g: Group(g, v) for g, v in values.items()}

    def __getattr__(self, item: str) -> Any:
        if item.startswith("_"):
            raise AttributeError(item)
        if item in self._groups and item != "DEFAULT":
            return self._groups[item]
        try:
            return self._values["DEFAULT"][item]
        except KeyError:
            raise AttributeError(f"no option [DEFAULT] {item}") from None

    def get(self, group: str, name: str) -> Any:
        return self._values[group][name]

    def with_overrides(self, **groups: dict[str, Any]) -> "Config":
        """A copy with some values replaced (for tests and embedded
        defaults): ``conf.with_overrides(DEFAULT={"host": "h1"})``."""
        values = {g: dict(v) for g, v in self._values.items()}
        for group, updates in groups.items():
            for name, value in updates.items():
                if name not in values[group]:
                    raise KeyError(f"no option [{group}] {name}")
                values[group][name] = value
        return Config(values, dict(self.sources), self.config_files,
                      self.raw)

    def find_file(self, name: str) -> str | None:
        """Find a file named by an option: absolute, beside a config file,
        or in the package's own ``etc``."""
        if os.path.isabs(name):
            return name if os.path.exists(name) else None
        for config_file in reversed(self.config_files):
            candidate = os.path.join(
                os.path.dirname(os.path.abspath(config_file)), name)
            if os.path.exists(candidate):
                return candidate
        for directory in etc_dirs():
            candidate = os.path.join(directory, name)
            if os.path.exists(candidate):
                return candidate
        return None

    @property
    def database_url(self) -> str:
        return (self.database.connection or
                "sqlite:///" + os.path.join(self.state_path,
                                            "compute.sqlite"))


def etc_dirs() -> list[str]:
    """Where the shipped ``api-pipeline.ini`` and ``policy.yaml`` live:
    the source tree's ``etc/twisted-compute`` (a checkout, or an editable
    install), then ``<prefix>/etc/twisted-compute`` (an installed
    package's data files)."""
    package = os.path.dirname(os.path.abspath(__file__))
    return [os.path.join(os.path.dirname(package), "etc", "twisted-compute"),
            os.path.join(sys.prefix, "etc", "twisted-compute")]


#: Modules that register their own options with :func:`register` at
#: import; :func:`load` and :func:`sample` import them first, so that the
#: option table (and the sample file) never depends on import order.
OPTION_MODULES = (
    "twisted_compute.virt.fake",                 # [fake_driver]
    "twisted_compute.compute.resource_tracker",  # allocation ratios
    "twisted_compute.scheduler.manager",  # [scheduler], [filter_scheduler]
    "twisted_compute.conductor.manager",  # build timeout
    "twisted_compute.service",            # periodic tasks, reactor lag
    "twisted_compute.roles",              # agent intervals, fake_agents
    "twisted_compute.virt.libvirt.driver",  # [libvirt], image cache
)


def import_option_modules() -> None:
    for name in OPTION_MODULES:
        importlib.import_module(name)


def load(files: Iterable[str] = (), overrides: dict | None = None,
         options: dict[str, list[Opt]] | None = None) -> Config:
    """Read ``files`` in order (later wins) and return a :class:`Config`.

    Raises :class:`ConfigError` naming the option and file for any value
    that does not parse, and for a file that cannot be read.
    """
    if options is None:
        import_option_modules()
        options = OPTIONS
    index = _index(options)
    files = list(files)
    raw = configparser.RawConfigParser(
        default_section="__no_default__", strict=False,
        interpolation=None)
    raw.optionxform = str  # option names are case sensitive, as in Nova
    values: dict[str, dict[str, Any]] = {
        group: {opt.name: opt.default for opt in opts}
        for group, opts in options.items()}
    sources: dict[tuple[str, str], str] = {}
    for path in files:
        parser = configparser.RawConfigParser(
            default_section="__no_default__", strict=False,
            interpolation=None)
        parser.optionxform = str
        try:
            with open(path, encoding="utf-8") as handle:
                parser.read_file(handle, source=path)
        except OSError as exc:
            raise ConfigError(
                f"cannot read config file {path}: {exc.strerror}") from None
        except configparser.Error as exc:
            raise ConfigError(
                f"config file {path} is not a valid ini file: {exc}"
            ) from None
        for section in parser.sections():
            if not raw.has_section(section):
                raw.add_section(section)
            for name, rawvalue in parser.items(section):
                raw.set(section, name, rawvalue)
                opt = index.get((section, name))
                if opt is None:
                    continue
                try:
                    values[section][name] = opt.parse(rawvalue)
                except ValueError as exc:
                    raise ConfigError(
                        f"invalid value for option [{section}] {name} in "
                        f"{path}: {exc}") from None
                sources[(section, name)] = path
    for (group, name), value in (overrides or {}).items():
        values[group][name] = value
    return Config(values, sources, files, raw)


def sample(options: dict[str, list[Opt]] | None = None) -> str:
    """The text of ``compute.conf.sample``: every option, commented out,
    with its help and default."""
    if options is None:
        import_option_modules()
        options = OPTIONS
    lines = []
    # Groups and options in a stable order whatever the import order of
    # the modules that registered some: the static table's order first,
    # then registered groups and options by name.
    static_groups = [g for g in _STATIC if g in options]
    for group in static_groups + sorted(set(options) - set(_STATIC)):
        opts = options[group]
        static = _STATIC.get(group, ())
        ordered = [o for name in static for o in opts if o.name == name]
        ordered += sorted((o for o in opts if o.name not in static),
                          key=lambda o: o.name)
        lines.append(f"[{group}]")
        lines.append("")
        for opt in ordered:
            lines.append(f"# {opt.help} ({opt.kind})")
            if opt.choices:
                lines.append(
                    "# Allowed values: "
                    + ", ".join(c if c else "''" for c in opt.choices))
            default = opt.default
            if opt.name == "host":
                default = "<this machine's hostname>"
            elif isinstance(default, list):
                default = ",".join(default)
            elif isinstance(default, bool):
                default = str(default).lower()
            lines.append(f"#{opt.name} = {default}")
            lines.append("")
    return "\n".join(lines)


#: The options defined in this module, by group, in their order.
_STATIC: dict[str, tuple[str, ...]] = {
    group: tuple(o.name for o in opts) for group, opts in OPTIONS.items()}


def register(group: str, opts: Sequence[Opt]) -> None:
    """Add options of a later role (conductor, scheduler, agent, libvirt)
    to the global table before :func:`load` is called."""
    existing = OPTIONS.setdefault(group, [])
    names = {opt.name for opt in existing}
    for opt in opts:
        if opt.name not in names:
            existing.append(opt)


LoadFunc = Callable[..., Config]
