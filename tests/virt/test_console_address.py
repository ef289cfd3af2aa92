"""Where a libvirt guest's consoles are, from its live XML."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from tests.base import make_conf
from twisted_compute import exception
from twisted_compute.virt.libvirt.driver import console_address

XML = """<domain><devices>
  <serial type='pty'><target port='1'/></serial>
  <serial type='tcp'><source mode='bind' host='10.1.2.3' service='10005'/>
    <log file='/x/console.log'/><target port='0'/></serial>
  <graphics type='vnc' port='%s' listen='0.0.0.0'/>
</devices></domain>"""


class ConsoleAddressTests(SynchronousTestCase):
    def setUp(self):
        self.conf = make_conf(self.mktemp(), vnc={
            "server_proxyclient_address": "192.0.2.9"})

    def test_vnc_and_serial(self):
        vnc = console_address(self.conf, XML % 5903, "novnc", "u")
        self.assertEqual((vnc.host, vnc.port), ("192.0.2.9", 5903))
        serial = console_address(self.conf, XML % 5903, "serial", "u")
        self.assertEqual((serial.host, serial.port), ("10.1.2.3", 10005))

    def test_not_running_or_no_device(self):
        self.assertRaises(exception.ConsoleTypeUnavailable, console_address,
                          self.conf, XML % -1, "novnc", "u")
        self.assertRaises(exception.ConsoleTypeUnavailable, console_address,
                          self.conf, "<domain><devices/></domain>", "serial",
                          "u")
