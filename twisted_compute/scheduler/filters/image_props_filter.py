"""ImagePropertiesFilter: the host can run what the image asks for.

Image properties read (Nova's names, with the legacy ones as fallbacks):
``hw_architecture`` (``architecture``), ``img_hv_type``
(``hypervisor_type``), ``hw_vm_mode`` (``vm_mode``) and
``img_hv_requested_version`` (e.g. ``">=2.11"``).  A host runs the
``(arch, hv_type, vm_mode)`` triples it advertises (see
:func:`~twisted_compute.scheduler.host_state._supported_instances`): its
``cpu_info`` arch with its ``hypervisor_type`` in ``hvm`` mode, unless the
driver reports a ``supported_instances`` list in ``cpu_info``.
"""

from __future__ import annotations

import operator
import re

from twisted_compute.scheduler.filters import BaseHostFilter

_ARCH_ALIASES = {
    "amd64": "x86_64", "x64": "x86_64", "x86-64": "x86_64",
    "i386": "i686", "i486": "i686", "i586": "i686", "x86": "i686",
    "ia32": "i686", "arm64": "aarch64", "power": "ppc",
    "powerpc": "ppc", "ppc64el": "ppc64le",
}
_HV_ALIASES = {"xapi": "xen"}
_MODE_ALIASES = {"hv": "hvm", "baremetal": "hvm", "pv": "xen"}

_OPERATORS = {
    ">=": operator.ge, "<=": operator.le, "==": operator.eq,
    "!=": operator.ne, ">": operator.gt, "<": operator.lt,
}
_CLAUSE = re.compile(r"^\s*(>=|<=|==|!=|>|<)?\s*([0-9]+(?:\.[0-9]+)*)\s*$")


def _canonical(value, aliases) -> str | None:
    if not value:
        return None
    value = str(value).strip().lower()
    return aliases.get(value, value)


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = [int(p) for p in text.split(".")]
    while len(parts) < 3:
        parts.append(0)
    return tuple(parts)


def hypervisor_version_tuple(version: int) -> tuple[int, ...]:
    """Nova's integer hypervisor version (``2011000`` for 2.11.0) as a
    tuple."""
    return (version // 1000000, version // 1000 % 1000, version % 1000)


def version_satisfies(version: int, requirement: str) -> bool:
    """Whether a hypervisor version meets a requirement such as
    ``">=2.11"`` or ``">=2.0,<3.0"`` (an unparsable requirement is not
    met)."""
    have = hypervisor_version_tuple(version)
    for clause in requirement.split(","):
        match = _CLAUSE.match(clause)
        if match is None:
            return False
        op = _OPERATORS[match.group(1) or "=="]
        if not op(have, _version_tuple(match.group(2))):
            return False
    return True


class ImagePropertiesFilter(BaseHostFilter):
    #: Checked again when a server is rebuilt with a new image.
    run_on_rebuild = True

    @staticmethod
    def _wanted(spec):
        props = spec.image_properties
        return (
            _canonical(props.get("hw_architecture") or
                       props.get("architecture"), _ARCH_ALIASES),
            _canonical(props.get("img_hv_type") or
                       props.get("hypervisor_type"), _HV_ALIASES),
            _canonical(props.get("hw_vm_mode") or props.get("vm_mode"),
                       _MODE_ALIASES),
            props.get("img_hv_requested_version") or None)

    def applies(self, spec):
        return any(self._wanted(spec))

    def host_passes(self, host, spec):
        return self._passes(host, *self._wanted(spec))

    def filter_all(self, hosts, spec):
        wanted = self._wanted(spec)
        return [h for h in hosts if self._passes(h, *wanted)]

    @staticmethod
    def _passes(host, arch, hv_type, vm_mode, version) -> bool:
        if version and host.hypervisor_version and \
                not version_satisfies(host.hypervisor_version, version):
            return False
        if not (arch or hv_type or vm_mode):
            return True
        for h_arch, h_type, h_mode in host.supported_instances:
            if arch and _canonical(h_arch, _ARCH_ALIASES) != arch:
                continue
            if hv_type and _canonical(h_type, _HV_ALIASES) != hv_type:
                continue
            if vm_mode and _canonical(h_mode, _MODE_ALIASES) != vm_mode:
                continue
            return True
        return False
