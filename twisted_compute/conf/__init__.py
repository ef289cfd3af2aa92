"""The option tables: every option of every role, declared as data.

One module per group of sections, as Nova's ``nova/conf/``; each has a
``list_opts()`` giving ``(section, [Opt, ...])`` pairs.  This package
imports nothing else of the project, so any process can read the whole
table (and :mod:`twisted_compute.config` load a file against it) without
importing the code of the roles that use the options.
"""

from __future__ import annotations

from twisted_compute.conf import (
    api, compute, conductor, console, database, default, fake_driver,
    glance, keystone, libvirt, neutron, notifications, quota, rabbit,
    scheduler, service, snapshots)
from twisted_compute.conf.default import API_NAMES
from twisted_compute.conf.opts import Opt, OptGroups
from twisted_compute.conf.rabbit import DEFAULT_AMQP_SPEC

#: The option modules, in the order of the sample file: ``[DEFAULT]``
#: gathers the options of several of them, in this order.
_MODULES = (default, service, conductor, compute, snapshots, rabbit,
            database, api,
            keystone, quota, neutron, glance, fake_driver, scheduler,
            libvirt, console, notifications)


def list_opts() -> OptGroups:
    """Every section with its options, in a stable order: sections in the
    order they first appear in the modules above, options in the order
    they are declared.  A name declared twice in a section is a
    programming error (:class:`ValueError`)."""
    groups: dict[str, list[Opt]] = {}
    for module in _MODULES:
        for group, opts in module.list_opts():
            groups.setdefault(group, []).extend(opts)
    for group, opts in groups.items():
        names = [opt.name for opt in opts]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(
                f"options declared twice in [{group}]: {', '.join(twice)}")
    return list(groups.items())


__all__ = ["API_NAMES", "DEFAULT_AMQP_SPEC", "Opt", "OptGroups",
           "list_opts"]
