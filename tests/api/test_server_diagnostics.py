"""``GET /servers/{id}/diagnostics``: both forms, admin only, 404 for
another project, 409 without a host or a running guest."""

from __future__ import annotations

from twisted.internet import defer

from tests.api.test_servers_base import ServersTestCase, random_uuid
from twisted_compute import exception
from twisted_compute.objects import diagnostics as diag

RECORD = diag.Diagnostics(
    state="running", driver="libvirt", hypervisor="kvm",
    hypervisor_os="linux", uptime=46664, config_drive=True,
    cpu_details=(diag.CpuDiagnostics(id=0, time=17300000000),),
    disk_details=(diag.DiskDiagnostics(
        name="vda", read_bytes=262144, read_requests=112,
        write_bytes=5778432, write_requests=488, errors_count=1),),
    nic_details=(diag.NicDiagnostics(
        name="vnet1", mac_address="01:23:45:67:89:ab", rx_octets=2070139,
        rx_errors=100, rx_drop=200, rx_packets=26701, tx_octets=140208,
        tx_errors=400, tx_drop=500, tx_packets=662),),
    memory_maximum=512, memory_used=256,
    memory_stats={"maximum": 524288, "actual": 524288})


class DiagnosticsRPC:
    def __init__(self):
        self.error = None
        self.asked = []

    def get_instance_diagnostics(self, context, instance):
        self.asked.append(instance.uuid)
        if self.error is not None:
            return defer.fail(self.error)
        return defer.succeed(RECORD)


class DiagnosticsTests(ServersTestCase):
    def setUp(self):
        super().setUp()
        self.rpc = DiagnosticsRPC()
        self.services.compute_api.compute_rpcapi = self.rpc
        self.server_id = self.create_server()
        self.set_state(self.server_id, vm_state="active", host="hv1",
                       power_state=1)
        self.path = f"/v2.1/servers/{self.server_id}/diagnostics"

    def test_2_48_form(self):
        response = self.get(self.path, version="2.48")
        self.assertEqual(response.code, 200, response)
        self.assertEqual(response.json, {
            "config_drive": True,
            "cpu_details": [{"id": 0, "time": 17300000000,
                             "utilisation": None}],
            "disk_details": [{"errors_count": 1, "read_bytes": 262144,
                              "read_requests": 112, "write_bytes": 5778432,
                              "write_requests": 488}],
            "driver": "libvirt", "hypervisor": "kvm",
            "hypervisor_os": "linux",
            "memory_details": {"maximum": 512, "used": 256},
            "nic_details": [{"mac_address": "01:23:45:67:89:ab",
                             "rx_drop": 200, "rx_errors": 100,
                             "rx_octets": 2070139, "rx_packets": 26701,
                             "rx_rate": None, "tx_drop": 500,
                             "tx_errors": 400, "tx_octets": 140208,
                             "tx_packets": 662, "tx_rate": None}],
            "num_cpus": 1, "num_disks": 1, "num_nics": 1,
            "state": "running", "uptime": 46664})
        self.assertEqual(self.rpc.asked, [self.server_id])

    def test_legacy_form(self):
        response = self.get(self.path, version="2.47")
        self.assertEqual(response.json, {
            "cpu0_time": 17300000000, "memory": 524288,
            "memory-actual": 524288,
            "vda_errors": 1, "vda_read": 262144, "vda_read_req": 112,
            "vda_write": 5778432, "vda_write_req": 488,
            "vnet1_rx": 2070139, "vnet1_rx_drop": 200,
            "vnet1_rx_errors": 100, "vnet1_rx_packets": 26701,
            "vnet1_tx": 140208, "vnet1_tx_drop": 500,
            "vnet1_tx_errors": 400, "vnet1_tx_packets": 662})

    def test_admin_only_and_invisible(self):
        self.assertFault(self.get(self.path, token="user:project"), 403)
        self.assertFault(self.get(self.path, token="user:other"), 404)
        self.assertFault(self.get(
            f"/v2.1/servers/{random_uuid()}/diagnostics"), 404)
        self.assertEqual(self.rpc.asked, [])

    def test_conflicts(self):
        self.rpc.error = exception.InstanceInvalidState(
            attr="power_state", instance_uuid=self.server_id,
            state="shutdown", action="get_diagnostics")
        self.assertFault(self.get(self.path, version="2.48"), 409,
                         "while it is in power_state shutdown")
        self.set_state(self.server_id, host=None)
        self.assertFault(self.get(self.path), 409, "is not ready")

    def test_no_compute_rpc(self):
        self.services.compute_api.compute_rpcapi = None
        self.assertFault(self.get(self.path), 501)
