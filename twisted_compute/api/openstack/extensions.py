"""Extensions of the Compute API as Twisted plugins: the modern form of
Nova's extension descriptors (``get_resources``,
``get_controller_extensions``).

An extension is an object providing :class:`IComputeExtension` (and
Twisted's ``IPlugin``; :class:`ExtensionBase` provides both), found with
``twisted.plugin.getPlugins`` in the ``twisted/plugins`` directory of any
installed package.  ``[api] extensions`` (``all``, the default, or a list
of names or aliases) chooses which load.  An extension that fails to load
is logged with its name and skipped: it never stops the API.

What an extension may do:

* ``controllers()``: new resources under ``/v2.1``, as :class:`~twisted_
  compute.api.openstack.common.Controller` classes (Klein apps) naming the
  collections they serve (a built-in collection is never replaced);
* ``extend_server(request, context, instance, server)``: add keys to the
  ``server`` dict of show and detail;
* ``server_actions()``: ``{"actionName": async handler(services, request,
  context, instance, body) -> response}`` for ``POST
  /servers/{id}/action`` (built-in actions win);
* ``policy_rules()``: default rules (a policy file still overrides them);
* ``config_options()``: ``{section: [Opt, ...]}`` (``twisted_compute.conf.
  opts``), read from the same config files as the project's own; a
  section or option the project declares is refused.  The values are in
  ``services.extension_options[alias].<section>.<name>``; a value that does
  not parse skips the extension (logged);
* ``openapi_operations()``: its routes for the OpenAPI document;
* ``min_version`` / ``max_version``: the microversions it serves
  (outside them its resources are 404 and it extends nothing).
"""

from __future__ import annotations

from typing import Any, Iterable

from twisted.plugin import IPlugin, getPlugins
from zope.interface import Attribute, Interface, implementer
from zope.interface.verify import verifyObject

from twisted_compute.log import Logger

log = Logger()


class IComputeExtension(Interface):
    name = Attribute("Name, e.g. 'SimpleTenantUsage'")
    alias = Attribute("Alias, e.g. 'os-simple-tenant-usage'")
    description = Attribute("One line on what it adds")
    updated = Attribute("ISO 8601 date of its last change")
    min_version = Attribute("Lowest microversion served ('2.1')")
    max_version = Attribute("Highest microversion served (None: any)")

    def controllers() -> Iterable[type]:
        """Controller classes of the resources it adds."""

    def extend_server(request, context, instance, server) -> None:
        """Add keys to ``server`` (a show/detail dict) of ``instance``."""

    def server_actions() -> dict:
        """Server action name -> async handler."""

    def policy_rules() -> dict:
        """Policy rule name -> default check string."""


@implementer(IPlugin, IComputeExtension)
class ExtensionBase:
    """Defaults for every hook; an extension sets what it uses.  (A
    plugin must provide ``IPlugin`` too, or Twisted's plugin cache does
    not list it: this base provides both.)"""

    name = ""
    alias = ""
    description = ""
    updated = "2026-01-01T00:00:00Z"
    min_version = "2.1"
    max_version: str | None = None

    def controllers(self):
        return ()

    def extend_server(self, request, context, instance, server):
        return None

    def server_actions(self):
        return {}

    def policy_rules(self):
        return {}

    def config_options(self):
        return {}

    def openapi_operations(self):
        """The :class:`~twisted_compute.api.openapi.table.Operation` s of
        its resources, for the OpenAPI document (optional)."""
        return ()

    def serves(self, request) -> bool:
        """Whether the request's microversion is in range."""
        version = getattr(request, "api_version", None)
        if version is None:
            return True
        return version.matches(self.min_version, self.max_version)


def _wanted(conf, extension) -> bool:
    names = [n.strip() for n in conf.api.extensions if n.strip()]
    return "all" in names or extension.name in names or \
        extension.alias in names


def discover(plugin_package=None) -> list[Any]:
    """Every IComputeExtension plugin installed (``twisted/plugins``)."""
    if plugin_package is None:
        import twisted.plugins as plugin_package
    found = []
    try:
        for plugin in getPlugins(IComputeExtension, plugin_package):
            found.append(plugin)
    except Exception:  # noqa: BLE001 - a broken plugin file
        log.failure("Looking for compute API extensions failed")
    return found


class Loaded(list):
    """The loaded extensions, with ``options``: alias -> the values of
    the options each declares (attribute access by section)."""

    def __init__(self):
        super().__init__()
        self.options: dict[str, Any] = {}


def read_options(conf, extension):
    """The values of ``extension.config_options()`` from ``conf``'s files
    (defaults where unset), as ``values.<section>.<name>``.  Raises
    ValueError naming the option for a value that does not parse or a
    name the project already declares."""
    from twisted_compute.config import OPTIONS, Group
    declared = getattr(extension, "config_options", None)
    groups = dict(declared() if declared is not None else {})
    raw = getattr(conf, "raw", None)
    values: dict[str, dict[str, Any]] = {}
    for section, opts in groups.items():
        builtin = {opt.name for opt in OPTIONS.get(section, ())}
        values[section] = {}
        for opt in opts:
            if opt.name in builtin:
                raise ValueError(f"option [{section}] {opt.name} is the "
                                 "project's own")
            value = opt.default
            if raw is not None and raw.has_option(section, opt.name):
                try:
                    value = opt.parse(raw.get(section, opt.name))
                except ValueError as exc:
                    raise ValueError(f"invalid value for option "
                                     f"[{section}] {opt.name}: {exc}") \
                        from None
            values[section][opt.name] = value

    class Values:
        def __getattr__(self, section):
            if section in values:
                return Group(section, values[section])
            raise AttributeError(f"no option section [{section}]")
    return Values()


def load(conf, policy, candidates=None) -> Loaded:
    """The extensions ``[api] extensions`` chooses, checked; each broken
    one logged by name and skipped.  Their policy defaults go into
    ``policy``; their options' values into the result's ``options``."""
    loaded = Loaded()
    aliases = set()
    for extension in candidates if candidates is not None else discover():
        name = getattr(extension, "name", None) or repr(extension)
        try:
            if not _wanted(conf, extension):
                continue
            verifyObject(IComputeExtension, extension)
            if extension.alias in aliases:
                raise ValueError(f"alias {extension.alias} already loaded")
            controllers = list(extension.controllers())
            for controller in controllers:
                if not getattr(controller, "collections", None):
                    raise ValueError(f"{controller!r} serves no collection")
            options = read_options(conf, extension)
            policy.add_defaults(dict(extension.policy_rules()))
            dict(extension.server_actions())
        except Exception as error:  # noqa: BLE001 - skip it, keep serving
            log.error("Compute API extension {name} skipped: {error}",
                      name=name, error=error)
            continue
        aliases.add(extension.alias)
        loaded.append(extension)
        loaded.options[extension.alias] = options
        log.info("Compute API extension {name} ({alias}) loaded",
                 name=extension.name, alias=extension.alias)
    return loaded


def extend_servers(services, request, context, pairs) -> None:
    """Let each loaded extension add keys to the ``(instance, server)``
    dicts; a failing one is logged and the answer goes out without it."""
    for extension in getattr(services, "extensions", None) or ():
        if not _serves(extension, request):
            continue
        for instance, server in pairs:
            try:
                extension.extend_server(request, context, instance, server)
            except Exception:  # noqa: BLE001 - never break show/detail
                log.failure("Extension {name} failed extending a server",
                            name=extension.name)
                break


def _serves(extension, request) -> bool:
    serves = getattr(extension, "serves", None)
    if serves is not None:
        return serves(request)
    return ExtensionBase.serves(extension, request)


def server_action(services, request, name: str):
    """The extension handler of server action ``name``, or None."""
    for extension in getattr(services, "extensions", None) or ():
        if not _serves(extension, request):
            continue
        handler = dict(extension.server_actions()).get(name)
        if handler is not None:
            return handler
    return None


def view(extension) -> dict[str, Any]:
    return {"name": extension.name, "alias": extension.alias,
            "description": extension.description,
            "namespace": "http://docs.openstack.org/compute/ext/"
                         f"{extension.alias}/api/v1.1",
            "updated": extension.updated, "links": []}
