"""Build each API's resource tree from the pipeline ini (api-pipeline.ini).

The file has the sections operators know from Nova's api-paste.ini:

* ``[composite:NAME]`` with ``use = call:module:factory`` and the
  factory's keys (``/v2.1 = other_name`` for the urlmap; ``noauth2 = ...``
  and ``keystone = ...`` pipelines for the auth-strategy switch);
* ``[pipeline:NAME]`` with ``pipeline = filter1 filter2 app``;
* ``[filter:NAME]`` with ``paste.filter_factory = module:callable``;
* ``[app:NAME]`` with ``paste.app_factory = module:callable``.

Factories get ``(global_conf, **local_conf)``; ``global_conf`` carries the
parsed configuration (``conf``) and the process's shared objects
(``services``).  What comes out is a tree of ``IResource``; no WSGI.
"""

from __future__ import annotations

import configparser
import importlib
from typing import Any, Callable

from twisted.web.resource import IResource


class PipelineError(Exception):
    """The pipeline ini is wrong; the message says where."""


def resolve(spec: str) -> Callable:
    """``module.path:attr.attr`` -> the object."""
    module_name, _, attr_path = spec.partition(":")
    if not attr_path:
        raise PipelineError(f"{spec!r} is not of the form module:callable")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise PipelineError(f"cannot import {module_name}: {exc}") from None
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise PipelineError(
                f"{module_name} has no attribute {attr_path}") from None
    return obj


class Loader:
    """Loads named sections of one pipeline ini."""

    def __init__(self, path: str, global_conf: dict[str, Any]):
        self.path = path
        self.global_conf = global_conf
        self.parser = configparser.RawConfigParser(interpolation=None)
        self.parser.optionxform = str
        try:
            with open(path, encoding="utf-8") as handle:
                self.parser.read_file(handle)
        except (OSError, configparser.Error) as exc:
            raise PipelineError(f"cannot read pipeline file {path}: {exc}") \
                from None
        self._sections: dict[str, tuple[str, str]] = {}
        for section in self.parser.sections():
            kind, _, name = section.partition(":")
            if kind in ("composite", "pipeline", "filter", "app") and name:
                self._sections[name.strip()] = (kind, section)

    def has(self, name: str) -> bool:
        return name in self._sections

    def _local(self, section: str, *skip: str) -> dict[str, str]:
        return {k: v for k, v in self.parser.items(section) if k not in skip}

    def _lookup(self, name: str) -> tuple[str, str]:
        try:
            return self._sections[name]
        except KeyError:
            raise PipelineError(
                f"{self.path}: no section named {name!r}") from None

    def load_app(self, name: str) -> IResource:
        kind, section = self._lookup(name)
        if kind == "app":
            factory = resolve(self.parser.get(section, "paste.app_factory"))
            return factory(self.global_conf,
                           **self._local(section, "paste.app_factory"))
        if kind == "composite":
            use = self.parser.get(section, "use")
            if use.startswith("call:"):
                factory = resolve(use[len("call:"):])
            elif use in ("egg:Paste#urlmap", "urlmap"):
                from twisted_compute.api.urlmap import urlmap_factory
                factory = urlmap_factory
            else:
                raise PipelineError(f"[{section}]: unknown use = {use}")
            return factory(self, self.global_conf,
                           **self._local(section, "use"))
        if kind == "pipeline":
            return self.load_pipeline(
                self.parser.get(section, "pipeline").split())
        raise PipelineError(f"[{section}] is a filter, not an application")

    def load_filter(self, name: str) -> Callable[[IResource], IResource]:
        kind, section = self._lookup(name)
        if kind != "filter":
            raise PipelineError(f"[{section}] is not a filter")
        factory = resolve(self.parser.get(section, "paste.filter_factory"))
        return factory(self.global_conf,
                       **self._local(section, "paste.filter_factory"))

    def load_pipeline(self, names: list[str]) -> IResource:
        if not names:
            raise PipelineError(f"{self.path}: empty pipeline")
        app = self.load_app(names[-1])
        for name in reversed(names[:-1]):
            app = self.load_filter(name)(app)
        return app


def pipeline_factory(loader: Loader, global_conf, **local_conf) -> IResource:
    """A composite that picks the pipeline named by ``[api]
    auth_strategy`` (``noauth2``/``noauth`` or ``keystone``)."""
    strategy = global_conf["conf"].api.auth_strategy
    if strategy == "noauth":
        strategy = "noauth2" if "noauth2" in local_conf else "noauth"
    try:
        names = local_conf[strategy].split()
    except KeyError:
        raise PipelineError(
            f"no pipeline for auth_strategy {strategy!r}") from None
    return loader.load_pipeline(names)


def load_api(path: str, name: str, global_conf: dict[str, Any]) -> IResource:
    """The resource tree for API ``name`` (a section in ``path``)."""
    loader = Loader(path, global_conf)
    return loader.load_app(name)
