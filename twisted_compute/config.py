"""Typed configuration: options with defaults, read from ini files.

The options are declared, as data, in :mod:`twisted_compute.conf`; this
module reads files against those tables.  Option names and sections
follow Nova's wherever the concept is the same, so an operator's
``nova.conf`` knowledge carries over.  Files are given with
``--config-file`` (repeatable; a later file wins).  A value that does not
parse stops the process with a :class:`ConfigError` naming the option and
the file it came from.
"""

from __future__ import annotations

import configparser
import os
import sys
from typing import Any, Callable, Iterable, Sequence

from twisted_compute.conf import (  # noqa: F401 - API_NAMES, ... re-exported
    API_NAMES, DEFAULT_AMQP_SPEC, Opt, list_opts)


class ConfigError(Exception):
    """A configuration value is wrong; the message names option and file."""


#: Every option by section, in the order of the sample file (read only).
OPTIONS: dict[str, list[Opt]] = dict(list_opts())


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


def load(files: Iterable[str] = (), overrides: dict | None = None,
         options: dict[str, list[Opt]] | None = None) -> Config:
    """Read ``files`` in order (later wins) and return a :class:`Config`.

    Raises :class:`ConfigError` naming the option and file for any value
    that does not parse, and for a file that cannot be read.
    """
    if options is None:
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
    with its help and default, in the order of the option tables."""
    if options is None:
        options = OPTIONS
    lines = []
    for group, opts in options.items():
        lines.append(f"[{group}]")
        lines.append("")
        for opt in opts:
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


LoadFunc = Callable[..., Config]
