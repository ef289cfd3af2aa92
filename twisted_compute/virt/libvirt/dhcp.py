"""Fixed IPs of libvirt guests, reserved in the DHCP section of their
libvirt network.

Each guest's MAC is derived from its instance uuid (:func:`mac_address`),
and its address is *reserved* before it boots: a ``<host mac= ip=>``
entry added to the network's DHCP section (``virNetworkUpdate``).  So the
address is known at once (no waiting for a lease, no race with a guest
that asks the metadata service before the agent has seen its lease), the
guest's DHCP client gets exactly that address, and the reservation is
removed when the guest is destroyed.

The methods of :class:`DHCPReservations` make blocking libvirt calls on
the connection they are given: the driver runs them in its libvirt
thread pool.
"""

from __future__ import annotations

import hashlib
import ipaddress
import threading
import xml.etree.ElementTree as ET

from twisted_compute import exception
from twisted_compute.virt.libvirt.host import libvirt


def mac_address(instance_uuid: str) -> str:
    """The guest's MAC: OpenStack's fa:16:3e prefix and three bytes from
    the instance uuid (stable across agent restarts)."""
    digest = hashlib.sha256(instance_uuid.encode()).hexdigest()
    return "fa:16:3e:" + ":".join(digest[i:i + 2] for i in (0, 2, 4))


class DHCPReservations:
    """The DHCP host entries of libvirt networks, changed one at a time."""

    def __init__(self):
        # Reservations read, pick and write the network's XML: one at a
        # time, or two guests could get the same address.
        self._lock = threading.Lock()

    @staticmethod
    def _dhcp_ips(root) -> list[tuple[int, ET.Element]]:
        found = []
        for index, ip in enumerate(root.findall("ip")):
            if ip.get("family", "ipv4") == "ipv4" and \
                    ip.find("dhcp") is not None:
                found.append((index, ip))
        return found

    @staticmethod
    def _update_flags(network) -> int:
        flags = libvirt.VIR_NETWORK_UPDATE_AFFECT_CONFIG if \
            network.isPersistent() else 0
        if network.isActive():
            flags |= libvirt.VIR_NETWORK_UPDATE_AFFECT_LIVE
        return flags or libvirt.VIR_NETWORK_UPDATE_AFFECT_CURRENT

    def reserve(self, conn, network_name: str, mac: str, name: str) -> str:
        """Reserve a fixed IP for ``mac`` in the DHCP section of the
        network ``network_name`` (its existing reservation if it has
        one); the address.  ``name`` (the instance uuid) is for errors."""
        with self._lock:
            network = conn.networkLookupByName(network_name)
            root = ET.fromstring(network.XMLDesc(0))
            candidates = self._dhcp_ips(root)
            if not candidates:
                raise exception.InstanceSpawnFailure(
                    instance_uuid=name, reason=f"libvirt network "
                    f"{network_name} has no IPv4 DHCP range")
            leased = set()
            try:
                leased = {lease.get("ipaddr")
                          for lease in network.DHCPLeases()}
            except libvirt.libvirtError:
                pass  # not every driver keeps leases (test:///default)
            for index, ip in candidates:
                dhcp = ip.find("dhcp")
                hosts = dhcp.findall("host")
                for entry in hosts:
                    if (entry.get("mac") or "").lower() == mac:
                        return entry.get("ip")
                used = leased | {h.get("ip") for h in hosts} | {
                    ip.get("address")}
                for span in dhcp.findall("range"):
                    start = ipaddress.IPv4Address(span.get("start"))
                    end = ipaddress.IPv4Address(span.get("end"))
                    address = start
                    while address <= end:
                        if str(address) not in used:
                            entry = ET.Element("host", mac=mac,
                                               ip=str(address))
                            network.update(
                                libvirt.VIR_NETWORK_UPDATE_COMMAND_ADD_LAST,
                                libvirt.VIR_NETWORK_SECTION_IP_DHCP_HOST,
                                index, ET.tostring(entry, "unicode"),
                                self._update_flags(network))
                            return str(address)
                        address += 1
            raise exception.InstanceSpawnFailure(
                instance_uuid=name, reason=f"no free address left in "
                f"libvirt network {network_name}")

    def release(self, conn, network_name: str, mac: str) -> None:
        """Remove the reservation of ``mac``, if there is one."""
        with self._lock:
            try:
                network = conn.networkLookupByName(network_name)
            except libvirt.libvirtError:
                return
            root = ET.fromstring(network.XMLDesc(0))
            for index, ip in self._dhcp_ips(root):
                for entry in ip.find("dhcp").findall("host"):
                    if (entry.get("mac") or "").lower() == mac:
                        network.update(
                            libvirt.VIR_NETWORK_UPDATE_COMMAND_DELETE,
                            libvirt.VIR_NETWORK_SECTION_IP_DHCP_HOST,
                            index, ET.tostring(entry, "unicode"),
                            self._update_flags(network))

    def reserved(self, conn, network_name: str, mac: str) -> str | None:
        """The address reserved for ``mac``, or None."""
        try:
            network = conn.networkLookupByName(network_name)
        except libvirt.libvirtError:
            return None
        root = ET.fromstring(network.XMLDesc(0))
        for _index, ip in self._dhcp_ips(root):
            for entry in ip.find("dhcp").findall("host"):
                if (entry.get("mac") or "").lower() == mac:
                    return entry.get("ip")
        return None
