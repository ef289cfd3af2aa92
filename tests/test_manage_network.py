"""``compute-manage network metadata-redirect``: the NAT rule it builds
(iptables itself is only run by the real-guest integration test)."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from unittest import mock

from twisted.trial.unittest import SynchronousTestCase

from twisted_compute.cmd import manage

NETWORK_XML = """<network><name>default</name><bridge name='virbr0'/>
<ip family='ipv6' address='fd00::1' prefix='64'/>
<ip address='192.168.122.1' netmask='255.255.255.0'>
<dhcp><range start='192.168.122.2' end='192.168.122.254'/></dhcp></ip>
</network>"""


def fake_libvirt_with_bridge(bridge: str):
    """A stand-in ``libvirt`` module whose networks have ``bridge``, and
    its connection."""
    network = mock.Mock()
    network.bridgeName.return_value = bridge
    network.XMLDesc.return_value = NETWORK_XML
    conn = mock.Mock()
    conn.networkLookupByName.return_value = network
    fake_libvirt = mock.Mock()
    fake_libvirt.open.return_value = conn
    return fake_libvirt, conn


class RedirectRuleTests(SynchronousTestCase):

    def test_rule(self):
        rule = manage.redirect_rule("virbr7", "10.1.2.3", 8775)
        self.assertEqual(
            manage.iptables_argv("-A", rule),
            ["iptables", "-t", "nat", "-A", "PREROUTING", "-i", "virbr7",
             "-d", "169.254.169.254/32", "-p", "tcp", "-m", "tcp",
             "--dport", "80", "-j", "DNAT", "--to-destination",
             "10.1.2.3:8775"])

    def test_wildcard_listener_goes_to_the_bridge_address(self):
        for listen in ("0.0.0.0", "::", ""):
            self.assertEqual(
                manage.metadata_destination(listen, NETWORK_XML),
                "192.168.122.1")

    def test_specific_listener(self):
        self.assertEqual(manage.metadata_destination("10.0.0.9",
                                                     NETWORK_XML),
                         "10.0.0.9")

    def test_loopback_and_ipv6_listeners_refused(self):
        self.assertRaises(ValueError, manage.metadata_destination,
                          "127.0.0.1", NETWORK_XML)
        self.assertRaises(ValueError, manage.metadata_destination,
                          "fd00::1", NETWORK_XML)

    def test_network_without_ipv4(self):
        self.assertRaises(ValueError, manage.metadata_destination,
                          "0.0.0.0", "<network><ip family='ipv6' "
                          "address='fd00::1'/></network>")

    def test_command_dry_run_prints_the_rule(self):
        fake_libvirt, conn = fake_libvirt_with_bridge("virbr3")
        out = io.StringIO()
        with mock.patch.dict("sys.modules", {"libvirt": fake_libvirt}), \
                mock.patch("subprocess.run") as run, redirect_stdout(out):
            status = manage.main(["network", "metadata-redirect",
                                  "--network", "other", "--remove",
                                  "--dry-run"])
        self.assertEqual(status, 0)
        run.assert_not_called()
        conn.networkLookupByName.assert_called_once_with("other")
        self.assertEqual(
            out.getvalue().strip(),
            "iptables -t nat -D PREROUTING -i virbr3 -d 169.254.169.254/32 "
            "-p tcp -m tcp --dport 80 -j DNAT --to-destination "
            "192.168.122.1:8775")

    def test_stale_redirects_are_those_to_another_destination(self):
        current = manage.redirect_rule("virbr0", "192.168.122.1", 8775)
        listing = "\n".join([
            "-P PREROUTING ACCEPT",
            "-A PREROUTING " + " ".join(current),
            # as iptables -S lists it: its own order of options
            "-A PREROUTING -d 169.254.169.254/32 -i virbr0 -p tcp -m tcp "
            "--dport 80 -j DNAT --to-destination 192.168.122.1:9999",
            "-A PREROUTING " + " ".join(
                manage.redirect_rule("virbr1", "192.168.100.1", 9999)),
            "-A PREROUTING -i virbr0 -p tcp -j ACCEPT",
        ])
        self.assertEqual(
            manage.stale_redirects(listing, "virbr0", current),
            [["-d", "169.254.169.254/32", "-i", "virbr0", "-p", "tcp",
              "-m", "tcp", "--dport", "80", "-j", "DNAT",
              "--to-destination", "192.168.122.1:9999"]])

    def test_adding_inserts_first_and_drops_a_stale_rule(self):
        fake_libvirt, conn = fake_libvirt_with_bridge("virbr3")
        stale = manage.redirect_rule("virbr3", "192.168.122.1", 1234)
        calls = []

        def run(argv, **kwargs):
            calls.append(argv)
            result = mock.Mock(returncode=0, stderr="")
            if "-C" in argv:
                result.returncode = 1  # ours is not there yet
            result.stdout = ("-P PREROUTING ACCEPT\n-A PREROUTING "
                             + " ".join(stale) + "\n") if "-S" in argv \
                else ""
            return result

        with mock.patch.dict("sys.modules", {"libvirt": fake_libvirt}), \
                mock.patch("subprocess.run", run), \
                redirect_stdout(io.StringIO()):
            status = manage.main(["network", "metadata-redirect"])
        self.assertEqual(status, 0)
        ours = manage.redirect_rule("virbr3", "192.168.122.1", 8775)
        self.assertEqual(calls, [
            manage.iptables_argv("-C", ours),
            ["iptables", "-t", "nat", "-S", "PREROUTING"],
            manage.iptables_argv("-D", stale),
            manage.iptables_argv("-I", ours),
        ])
