"""What the server API tests share (no tests here): an image, flavors,
helpers to create servers and to put them in a state (there is no agent to do it)."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from tests.base import APITestCase
from twisted_compute.db import flavors as flavors_db
from twisted_compute.db import models as m

IMAGE_ID = "70a599e0-31e7-49b7-b260-868f441e862b"
PRIVATE_IMAGE_ID = "11111111-2222-3333-4444-555555555555"
QUEUED_IMAGE_ID = "22222222-3333-4444-5555-666666666666"


class RecordingTaskAPI:
    """A conductor seam that records what it was handed."""

    def __init__(self):
        self.calls = []

    def schedule_and_build_instances(self, context, boot_request):
        self.calls.append((context, list(boot_request.instances),
                           boot_request))


class RecordingRPC:
    """A compute RPC seam that records casts."""

    def __init__(self):
        self.casts = []

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)

        def cast(context, instance, **kwargs):
            self.casts.append((name, instance.uuid, kwargs))
            if name == "get_console_output":
                return "line 1\nline 2"
            return None
        return cast


class ServersTestCase(APITestCase):
    def setUp(self):
        super().setUp()
        self.task_api = RecordingTaskAPI()
        self.services.compute_api.compute_task_api = self.task_api
        with self.db.engine.begin() as conn:
            for image_id, status, visibility, owner in (
                    (IMAGE_ID, "active", "public", "admin"),
                    (PRIVATE_IMAGE_ID, "active", "private", "other"),
                    (QUEUED_IMAGE_ID, "queued", "public", "admin")):
                conn.execute(m.images.insert().values(
                    id=image_id, name="cirros", status=status,
                    visibility=visibility, owner=owner, properties={},
                    tags=[], disk_format="qcow2", container_format="bare",
                    size=1024, min_disk=0, min_ram=0,
                    created_at=m.utcnow()))
        self.run_db(flavors_db.create, {
            "flavorid": "1", "name": "m1.tiny", "memory_mb": 512,
            "vcpus": 1, "root_gb": 1})
        self.run_db(flavors_db.create, {
            "flavorid": "2", "name": "m1.small", "memory_mb": 2048,
            "vcpus": 2, "root_gb": 20})

    def server_body(self, name="new-server-test", **extra):
        server = {"name": name, "imageRef": IMAGE_ID, "flavorRef": "1",
                  "networks": "none"}
        server.update(extra)
        return {"server": server}

    def create_server(self, name="new-server-test", token="user:project",
                      version="2.79", expect=202, **extra):
        response = self.post("/v2.1/servers", self.server_body(name, **extra),
                             token=token, version=version)
        self.assertEqual(response.code, expect, response)
        return response.json["server"]["id"] if expect == 202 else response

    def set_state(self, server_id, **values):
        with self.db.engine.begin() as conn:
            conn.execute(m.instances.update().where(
                m.instances.c.uuid == server_id).values(**values))

    def row(self, server_id):
        with self.db.engine.connect() as conn:
            return conn.execute(sa.select(m.instances).where(
                m.instances.c.uuid == server_id)).first()

    def show(self, server_id, token="user:project", version="2.79"):
        response = self.get(f"/v2.1/servers/{server_id}", token=token,
                            version=version)
        self.assertEqual(response.code, 200, response)
        return response.json["server"]

    def action(self, server_id, body, token="user:project", version="2.79"):
        return self.post(f"/v2.1/servers/{server_id}/action", body,
                         token=token, version=version)

    def actions(self, server_id, token="admin:admin", version="2.79"):
        response = self.get(f"/v2.1/servers/{server_id}/os-instance-actions",
                            token=token, version=version)
        self.assertEqual(response.code, 200, response)
        return [a["action"] for a in response.json["instanceActions"]]

    def use_rpc(self):
        rpc = RecordingRPC()
        self.services.compute_api.compute_rpcapi = rpc
        return rpc


def random_uuid() -> str:
    return str(uuid.uuid4())
