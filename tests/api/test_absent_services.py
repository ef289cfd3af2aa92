"""Volumes and shares in a cloud without those services, and the APIs
Nova removed (410)."""

from __future__ import annotations

import uuid

from tests.api.test_servers_base import ServersTestCase


class AbsentServicesTests(ServersTestCase):

    def test_volume_attachments_empty_and_attach_not_found(self):
        server_id = self.create_server()
        url = f"/v2.1/servers/{server_id}/os-volume_attachments"
        listed = self.get(url, token="user:project")
        self.assertEqual(listed.code, 200, listed)
        self.assertEqual(listed.json, {"volumeAttachments": []})
        volume = str(uuid.uuid4())
        self.assertFault(self.post(url, {"volumeAttachment": {
            "volumeId": volume}}), 404, volume)
        self.assertFault(self.post(url, {"volumeAttachment": {}}), 400,
                         "volumeId")
        self.assertFault(self.get(f"{url}/{volume}"), 404, volume)

    def test_volume_attachments_of_another_project_are_404(self):
        server_id = self.create_server()
        url = f"/v2.1/servers/{server_id}/os-volume_attachments"
        self.assertFault(self.get(url, token="other:other"), 404)

    def test_shares_from_297(self):
        server_id = self.create_server()
        url = f"/v2.1/servers/{server_id}/shares"
        self.assertFault(self.get(url, version="2.96"), 404)
        listed = self.get(url, token="user:project", version="2.97")
        self.assertEqual(listed.json, {"shares": []}, listed)
        share = str(uuid.uuid4())
        self.assertFault(self.post(url, {"share": {"share_id": share}},
                                   version="2.97"), 404, share)

    def test_removed_apis_are_gone(self):
        for path in ("/v2.1/os-agents", "/v2.1/os-cells/capacities",
                     "/v2.1/os-fping?all_tenants=1",
                     "/v2.1/os-fixed-ips/10.0.0.1"):
            response = self.get(path, token="admin:admin")
            self.assertEqual(response.code, 410, (path, response))
            self.assertEqual(response.json["computeFault"]["code"], 410)
        self.assertEqual(self.post("/v2.1/os-agents", {"agent": {}},
                                   token="admin:admin").code, 410)
