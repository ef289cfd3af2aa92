"""``network_data.json``: the guest's network configuration in the form
cloud-init's OpenStack datasource reads (``links``, ``networks``,
``services``), derived from an instance's ``addresses``.

``addresses`` is what the compute API shows:
``{"<network>": [{"addr": "10.0.0.5", "version": 4, "OS-EXT-IPS:type":
"fixed", "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:..."}]}``.  A driver may
record more per entry, which is used when present: ``netmask`` or
``prefixlen``, ``gateway``, ``dns`` (a list of name servers), ``mtu``,
``network_id``, ``port_id`` and ``vif_type``.  Without a netmask the
network is announced as ``ipv4_dhcp`` (``ipv6_dhcp``): the guest asks the
network's DHCP server, which is what libvirt's NAT networks offer.

Entries without a MAC address are left out: cloud-init matches links to
interfaces by MAC, and a link without one makes it fail.  Floating
addresses are not the guest's own and are left out too.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Mapping

MAC_KEY = "OS-EXT-IPS-MAC:mac_addr"
TYPE_KEY = "OS-EXT-IPS:type"


def _netmask(entry: Mapping[str, Any]) -> str | None:
    if entry.get("netmask"):
        return str(entry["netmask"])
    prefixlen = entry.get("prefixlen")
    if prefixlen is None:
        return None
    try:
        network = ipaddress.ip_network(
            f"{entry['addr']}/{int(prefixlen)}", strict=False)
    except (KeyError, TypeError, ValueError):
        return None
    return str(network.netmask)


def _link_id(entry: Mapping[str, Any], mac: str) -> str:
    port = entry.get("port_id")
    if port:
        return "tap" + str(port)[:11]
    return "tap" + mac.replace(":", "").lower()[-11:]


def network_data(addresses: Mapping[str, Any] | None,
                 vifs: Any = ()) -> dict[str, Any]:
    """The ``network_data.json`` document for ``addresses``.

    ``vifs`` are the interfaces a driver plugged before any address is
    known (``[{"id", "network", "mac"}]``): each one whose MAC no address
    carries yet becomes a link with a DHCP network, so that the guest
    configures it at first boot."""
    links: list[dict[str, Any]] = []
    networks: list[dict[str, Any]] = []
    services: list[dict[str, Any]] = []
    links_by_mac: dict[str, dict[str, Any]] = {}
    seen_dns: set[str] = set()
    for network_name, entries in (addresses or {}).items():
        for entry in entries or ():
            if not isinstance(entry, Mapping) or not entry.get("addr"):
                continue
            if entry.get(TYPE_KEY, "fixed") != "fixed":
                continue
            mac = entry.get(MAC_KEY)
            if not mac:
                continue
            mac = str(mac).lower()
            link = links_by_mac.get(mac)
            if link is None:
                link_id = _link_id(entry, mac)
                link = {
                    "id": link_id,
                    "vif_id": entry.get("port_id") or link_id,
                    "type": entry.get("vif_type") or "bridge",
                    "mtu": entry.get("mtu"),
                    "ethernet_mac_address": mac,
                }
                links_by_mac[mac] = link
                links.append(link)
            try:
                version = int(entry.get("version") or ipaddress.ip_address(
                    entry["addr"]).version)
            except ValueError:
                continue
            net: dict[str, Any] = {
                "id": f"network{len(networks)}",
                "type": f"ipv{version}",
                "link": link["id"],
                "network_id": entry.get("network_id") or network_name,
            }
            netmask = _netmask(entry)
            dns = [str(a) for a in entry.get("dns") or ()]
            if netmask is None or entry.get("dhcp"):
                net["type"] = f"ipv{version}_dhcp"
            else:
                net["ip_address"] = entry["addr"]
                net["netmask"] = netmask
                routes = []
                if entry.get("gateway"):
                    any_net = "0.0.0.0" if version == 4 else "::"
                    routes.append({"network": any_net, "netmask": any_net,
                                   "gateway": entry["gateway"]})
                net["routes"] = routes
                net["services"] = [{"type": "dns", "address": a}
                                   for a in dns]
            networks.append(net)
            for address in dns:
                if address not in seen_dns:
                    seen_dns.add(address)
                    services.append({"type": "dns", "address": address})
    for vif in vifs or ():
        mac = str(vif.get("mac") or "").lower()
        if not mac or mac in links_by_mac:
            continue
        link_id = _link_id({"port_id": vif.get("id")}, mac)
        link = {"id": link_id, "vif_id": vif.get("id") or link_id,
                "type": vif.get("type") or "bridge", "mtu": vif.get("mtu"),
                "ethernet_mac_address": mac}
        links_by_mac[mac] = link
        links.append(link)
        networks.append({"id": f"network{len(networks)}",
                         "type": "ipv4_dhcp", "link": link_id,
                         "network_id": vif.get("network") or link_id})
    return {"links": links, "networks": networks, "services": services}
