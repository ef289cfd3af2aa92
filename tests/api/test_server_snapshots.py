"""createImage, createBackup, shelve, shelveOffload, unshelve: from the
API through a real agent (the fake driver) and the conductor's DB proxy
into the image API, all in memory."""

from __future__ import annotations

import os

from treq.testing import StubTreq
from twisted.internet.task import Clock

from tests.api.test_servers_base import IMAGE_ID, ServersTestCase
from tests.base import ETC, SyncThreadPool
from twisted_compute.api import pipeline
from twisted_compute.compute.image_client import ImageClient
from twisted_compute.compute.manager import ComputeManager
from twisted_compute.conductor.manager import ConductorManager
from twisted_compute.context import get_admin_context
from twisted_compute.db import models as m
from twisted_compute.objects.service import COMPUTE_BINARY
from twisted_compute.virt.fake import FakeDriver

HOST = "compute1"


class ProducingStubTreq:
    """StubTreq, taking a body producer as treq does (StubTreq takes
    bytes only): the producer is run into a buffer first."""

    def __init__(self, stub):
        self.stub = stub
        self.produced = []

    def __getattr__(self, name):
        return getattr(self.stub, name)

    def put(self, url, data=None, **kwargs):
        if hasattr(data, "startProducing"):
            chunks = []

            class Consumer:
                def write(self, chunk):
                    chunks.append(chunk)

            d = data.startProducing(Consumer())
            self.produced.append(len(chunks))
            return d.addCallback(lambda _: self.stub.put(
                url, data=b"".join(chunks), **kwargs))
        return self.stub.put(url, data=data, **kwargs)


class AgentRPC:
    """The compute RPC seam, delivering each cast to one agent at once
    (as the local bus would, without its reactor turns)."""

    def __init__(self, manager):
        self.manager = manager
        self.casts = []
        self.running = []

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)

        def cast(context, instance, **kwargs):
            self.casts.append((name, instance.uuid, kwargs))
            # A cast: handed over, not done (the agent's work goes on).
            self.running.append(getattr(self.manager, name)(
                context, instance.to_dict(), **kwargs))
            from twisted.internet import defer
            return defer.succeed(None)
        return cast


class TaskAPI:
    """The conductor seam: unshelve goes through a real conductor."""

    def __init__(self, conductor):
        self.conductor = conductor

    def schedule_and_build_instances(self, context, boot_request):
        pass

    def unshelve_instance(self, context, instance, host=None):
        return self.conductor.unshelve_instance(
            context, instance.to_dict(), host=host)


class OneHostScheduler:
    def __init__(self, host):
        self.host = host
        self.specs = []

    async def select_destinations(self, context, spec, uuids,
                                  return_alternates=False):
        from twisted_compute.objects.selection import Selection
        self.specs.append(spec)
        return [Selection(self.host, self.host) for _ in uuids]


class AgentTestCase(ServersTestCase):
    def setUp(self):
        super().setUp()
        self.clock = Clock()
        image_root = pipeline.load_api(
            os.path.join(ETC, "api-pipeline.ini"), "image",
            {"conf": self.conf, "services": self.services,
             "image_threadpool": SyncThreadPool()})
        self.image_http = StubTreq(image_root)
        self.driver = FakeDriver(self.conf, self.clock, HOST,
                                 spawn_delay=0, fail_spawn=False)
        self.scheduler = OneHostScheduler(HOST)
        self.conductor = ConductorManager(self.conf, self.db, self.scheduler,
                                          None, self.clock, host="cond")
        self.images = ImageClient("http://localhost:9292", "admin:admin",
                                  self.clock,
                                  http=ProducingStubTreq(self.image_http))
        self.agent = ComputeManager(self.conf, HOST, self.driver,
                                    self.conductor, self.clock,
                                    images=self.images)
        self.rpc = AgentRPC(self.agent)
        self.conductor.compute = self.rpc
        self.services.compute_api.compute_rpcapi = self.rpc
        self.services.compute_api.compute_task_api = TaskAPI(self.conductor)
        self.services.compute_api.clock = self.clock
        with self.db.engine.begin() as conn:
            conn.execute(m.services.insert().values(
                uuid="5e1c0000-0000-4000-8000-000000000001", host=HOST,
                binary=COMPUTE_BINARY, topic="compute",
                report_count=0, disabled=False))

    def fault_messages(self, server_id):
        with self.db.engine.connect() as conn:
            return [r.message for r in conn.execute(
                m.instance_faults.select().where(
                    m.instance_faults.c.instance_uuid == server_id))]

    def running_server(self, name="web", **extra):
        server_id = self.create_server(name=name, **extra)
        self.set_state(server_id, vm_state="active", task_state=None,
                       host=HOST, node=HOST, power_state=1)
        row = self.row(server_id)
        from twisted_compute.db import instances as instances_db
        instance = self.run_db(instances_db.get, server_id)
        self.successResultOf(self.driver.spawn(
            get_admin_context(), instance, {"id": row.image_ref}, [], None,
            [], None))
        return server_id

    def image(self, image_id, token="admin:admin"):
        d = self.image_http.get(f"http://localhost:9292/v2/images/{image_id}",
                                headers={"X-Auth-Token": token})
        response = self.successResultOf(d)
        body = self.successResultOf(response.json()) \
            if response.code == 200 else None
        return response.code, body

    def image_data(self, image_id):
        d = self.image_http.get(
            f"http://localhost:9292/v2/images/{image_id}/file",
            headers={"X-Auth-Token": "admin:admin"})
        return self.successResultOf(self.successResultOf(d).content())

    def events(self, server_id, token="admin:admin"):
        response = self.get(f"/v2.1/servers/{server_id}/os-instance-actions",
                            token=token, version="2.79")
        out = {}
        for action in response.json["instanceActions"]:
            detail = self.get(f"/v2.1/servers/{server_id}/os-instance-"
                              f"actions/{action['request_id']}",
                              token=token, version="2.79").json
            out[action["action"]] = [
                (e["event"], e["result"])
                for e in detail["instanceAction"]["events"]]
        return out


class SnapshotTests(AgentTestCase):
    # --- createImage ----------------------------------------------------

    def test_create_image_uploads_the_disk_with_nova_properties(self):
        with self.db.engine.begin() as conn:
            conn.execute(m.images.update().where(m.images.c.id == IMAGE_ID)
                         .values(min_ram=64, min_disk=0, properties={
                             "hw_disk_bus": "virtio",
                             "img_signature": "abc",
                             "cache_in_nova": "True",
                             "os_glance_importing": "x"}))
        server_id = self.running_server()
        # The image's task states, as the agent walks through them.
        states = []
        original = self.conductor.instance_update

        async def recording(context, instance_uuid, updates, **kwargs):
            if "task_state" in updates:
                states.append(updates["task_state"])
            return await original(context, instance_uuid, updates, **kwargs)
        self.conductor.instance_update = recording
        response = self.action(server_id, {"createImage": {
            "name": "snap-1", "metadata": {"purpose": "golden"}}},
            version="2.45")
        self.assertEqual(response.code, 202, response)
        image_id = response.json["image_id"]
        self.assertEqual(states, ["image_pending_upload", "image_uploading",
                                  None])
        code, image = self.image(image_id)
        self.assertEqual(code, 200)
        self.assertEqual(image["status"], "active")
        self.assertEqual(image["name"], "snap-1")
        self.assertEqual(image["owner"], "project")
        self.assertEqual(image["visibility"], "private")
        self.assertEqual(image["image_type"], "snapshot")
        self.assertEqual(image["instance_uuid"], server_id)
        self.assertEqual(image["base_image_ref"], IMAGE_ID)
        self.assertEqual(image["user_id"], "user")
        self.assertEqual(image["purpose"], "golden")
        self.assertEqual(image["hw_disk_bus"], "virtio")
        for dropped in ("img_signature", "cache_in_nova",
                        "os_glance_importing"):
            self.assertNotIn(dropped, image)
        self.assertEqual((image["min_ram"], image["min_disk"]), (64, 1))
        self.assertEqual(image["disk_format"], "raw")
        self.assertEqual(self.image_data(image_id),
                         f"fake disk of image {IMAGE_ID}\n".encode())
        row = self.row(server_id)
        self.assertEqual((row.vm_state, row.task_state), ("active", None))
        self.assertEqual(self.driver.guests[server_id].state, 1)
        self.assertEqual(self.events(server_id)["createImage"],
                         [("compute_snapshot_instance", "Success")])

    def test_before_2_45_a_location_header(self):
        server_id = self.running_server()
        response = self.action(server_id,
                               {"createImage": {"name": "snap"}},
                               version="2.44")
        self.assertEqual(response.code, 202)
        self.assertEqual(response.body, b"")
        location = response.headers.getRawHeaders("location")[0]
        image_id = location.rsplit("/", 1)[-1]
        self.assertTrue(location.endswith(f"/images/{image_id}"))
        self.assertEqual(self.image(image_id)[1]["status"], "active")

    def test_boot_from_the_snapshot(self):
        server_id = self.running_server()
        image_id = self.action(server_id, {"createImage": {"name": "s"}},
                               version="2.45").json["image_id"]
        body = self.server_body("from-snap")
        body["server"]["imageRef"] = image_id
        response = self.post("/v2.1/servers", body, token="user:project",
                             version="2.79")
        self.assertEqual(response.code, 202, response)

    def test_state_rules(self):
        server_id = self.running_server()
        for vm_state, task_state in (("building", None),
                                     ("active", "powering-off"),
                                     ("error", None),
                                     ("shelved", None)):
            self.set_state(server_id, vm_state=vm_state,
                           task_state=task_state)
            self.assertFault(self.action(
                server_id, {"createImage": {"name": "s"}}), 409,
                "Cannot 'createImage'")
        self.set_state(server_id, vm_state="paused", task_state=None)
        self.assertFault(self.action(server_id, {"createBackup": {
            "name": "b", "backup_type": "daily", "rotation": 1}}), 409,
            "Cannot 'createBackup'")
        # nothing was left behind in the image API
        with self.db.engine.connect() as conn:
            count = conn.execute(m.images.select().where(
                m.images.c.name.in_(["s", "b"]))).fetchall()
        self.assertEqual(count, [])

    def test_metadata_quota(self):
        self.conf.quota.metadata_items = 1
        server_id = self.running_server()
        self.assertFault(self.action(server_id, {"createImage": {
            "name": "s", "metadata": {"a": "1", "b": "2"}}}), 403)

    def test_failed_snapshot_deletes_the_image_and_leaves_a_fault(self):
        server_id = self.running_server()
        self.driver.fail_snapshot = True
        image_id = self.action(server_id, {"createImage": {"name": "s"}},
                               version="2.45").json["image_id"]
        self.assertEqual(self.image(image_id)[0], 404)
        row = self.row(server_id)
        self.assertEqual((row.vm_state, row.task_state), ("active", None))
        self.assertIn("injected failure",
                      " ".join(self.fault_messages(server_id)))
        self.assertEqual(self.events(server_id)["createImage"],
                         [("compute_snapshot_instance", "Error")])

    def test_snapshot_timeout(self):
        self.conf.snapshot_timeout = 30
        self.driver.snapshot_delay = 100
        server_id = self.running_server()
        image_id = self.action(server_id, {"createImage": {"name": "s"}},
                               version="2.45").json["image_id"]
        self.assertEqual(self.row(server_id).task_state,
                         "image_pending_upload")
        self.clock.advance(30)
        self.assertEqual(self.image(image_id)[0], 404)
        self.assertIsNone(self.row(server_id).task_state)
        self.assertIn("did not finish within 30 seconds",
                      " ".join(self.fault_messages(server_id)))

    # --- createBackup ---------------------------------------------------

    def test_backup_rotation_deletes_the_oldest(self):
        server_id = self.running_server()
        made = []
        for n in range(4):
            self.clock.advance(1)
            response = self.action(server_id, {"createBackup": {
                "name": f"b{n}", "backup_type": "daily", "rotation": 2}},
                version="2.45")
            self.assertEqual(response.code, 202, response)
            made.append(response.json["image_id"])
            # created_at must order them
            with self.db.engine.begin() as conn:
                import datetime
                conn.execute(m.images.update().where(
                    m.images.c.id == made[-1]).values(
                    created_at=datetime.datetime(2026, 1, 1, 0, 0, n)))
        # a weekly backup is not rotated with the daily ones
        weekly = self.action(server_id, {"createBackup": {
            "name": "w", "backup_type": "weekly", "rotation": 1}},
            version="2.45").json["image_id"]
        alive = [i for i in made if self.image(i)[0] == 200]
        self.assertEqual(alive, made[2:])
        _, image = self.image(made[3])
        self.assertEqual((image["image_type"], image["backup_type"]),
                         ("backup", "daily"))
        self.assertEqual(self.image(weekly)[0], 200)

    # --- shelve ---------------------------------------------------------

    def test_shelve_offloads_at_once_and_unshelve_boots_again(self):
        server_id = self.running_server(name="db")
        usage = self.get("/v2.1/limits", token="user:project").json
        cores_before = usage["limits"]["absolute"]["totalCoresUsed"]
        self.assertEqual(self.action(server_id, {"shelve": None}).code, 202)
        row = self.row(server_id)
        self.assertEqual((row.vm_state, row.task_state, row.host, row.node),
                         ("shelved_offloaded", None, None, None))
        image_id = row.system_metadata["shelved_image_id"]
        code, image = self.image(image_id)
        self.assertEqual((code, image["name"], image["status"]),
                         (200, "db-shelved", "active"))
        self.assertNotIn(server_id, self.driver.guests)
        self.assertEqual(self.show(server_id)["status"],
                         "SHELVED_OFFLOADED")
        usage = self.get("/v2.1/limits", token="user:project").json
        self.assertEqual(usage["limits"]["absolute"]["totalCoresUsed"],
                         cores_before - 1)
        self.assertEqual(self.action(server_id, {"unshelve": None}).code,
                         202)
        row = self.row(server_id)
        self.assertEqual((row.vm_state, row.task_state, row.host),
                         ("active", None, HOST))
        self.assertIn(server_id, self.driver.guests)
        self.assertEqual(self.image(image_id)[0], 404)
        self.assertNotIn("shelved_image_id", row.system_metadata)
        usage = self.get("/v2.1/limits", token="user:project").json
        self.assertEqual(usage["limits"]["absolute"]["totalCoresUsed"],
                         cores_before)

    def test_shelve_without_offload_then_offload_and_quota_on_unshelve(self):
        self.conf.shelved_offload_time = -1
        server_id = self.running_server()
        self.action(server_id, {"shelve": None})
        row = self.row(server_id)
        self.assertEqual((row.vm_state, row.host), ("shelved", HOST))
        self.assertEqual(self.driver.guests[server_id].state, 4)
        self.assertEqual(self.show(server_id)["status"], "SHELVED")
        # shelveOffload is an admin's
        self.assertFault(self.action(server_id, {"shelveOffload": None}),
                         403)
        self.assertEqual(self.action(server_id, {"shelveOffload": None},
                                     token="admin:admin").code, 202)
        row = self.row(server_id)
        self.assertEqual((row.vm_state, row.host), ("shelved_offloaded",
                                                    None))
        # the cores it gave back are no longer free: unshelve is 403
        self.put("/v2.1/os-quota-sets/project", {"quota_set": {"cores": 1}},
                 token="admin:admin")
        self.create_server(name="other")
        self.assertFault(self.action(server_id, {"unshelve": None}), 403)
        self.assertEqual(self.row(server_id).vm_state, "shelved_offloaded")

    def test_unshelve_a_shelved_server_starts_it(self):
        self.conf.shelved_offload_time = -1
        server_id = self.running_server()
        self.action(server_id, {"shelve": None})
        self.assertEqual(self.action(server_id, {"unshelve": None}).code,
                         202)
        row = self.row(server_id)
        self.assertEqual((row.vm_state, row.host), ("active", HOST))
        self.assertEqual(self.driver.guests[server_id].state, 1)

    def test_unshelve_zone_and_host_by_microversion(self):
        server_id = self.running_server()
        self.action(server_id, {"shelve": None})
        self.assertFault(self.action(server_id, {"unshelve": {
            "availability_zone": "nova"}}, version="2.76"), 400)
        self.assertFault(self.action(server_id, {"unshelve": {
            "availability_zone": None}}, version="2.77"), 400)
        self.assertFault(self.action(server_id, {"unshelve": {
            "host": HOST}}, version="2.90"), 400)
        self.assertFault(self.action(server_id, {"unshelve": {
            "availability_zone": "nowhere"}}, version="2.77"), 400)
        self.assertFault(self.action(server_id, {"unshelve": {
            "host": HOST}}, version="2.91"), 403)
        response = self.action(server_id, {"unshelve": {
            "availability_zone": None, "host": HOST}}, version="2.91",
            token="admin:admin")
        self.assertEqual(response.code, 202, response)
        self.assertEqual(self.scheduler.specs[-1].force_hosts, [HOST])
        self.assertIsNone(self.scheduler.specs[-1].availability_zone)
        self.assertEqual(self.row(server_id).vm_state, "active")

    def test_shelve_state_rules_and_lock(self):
        server_id = self.running_server()
        self.assertFault(self.action(server_id, {"unshelve": None}), 409,
                         "Cannot 'unshelve'")
        self.assertFault(self.action(server_id, {"shelveOffload": None},
                                     token="admin:admin"), 409)
        self.action(server_id, {"lock": None}, token="admin:admin")
        self.assertFault(self.action(server_id, {"shelve": None}), 409,
                         "locked")

    def test_periodic_offload(self):
        self.conf.shelved_offload_time = 100
        server_id = self.running_server()
        self.action(server_id, {"shelve": None})
        self.assertEqual(self.row(server_id).vm_state, "shelved")
        self.clock.advance(50)
        self.assertEqual(self.successResultOf(
            self.agent._periodic(self.agent.offload_shelved_instances,
                                 None)), 0)
        self.assertEqual(self.row(server_id).vm_state, "shelved")
        self.clock.advance(60)
        self.successResultOf(self.agent._periodic(
            self.agent.offload_shelved_instances, None))
        self.assertEqual(self.row(server_id).vm_state, "shelved_offloaded")


class ImageClientTests(AgentTestCase):
    """The agent's image client against the real image API: a file is
    streamed in chunks and its checksum checked."""

    def queued_image(self):
        with self.db.engine.begin() as conn:
            conn.execute(m.images.insert().values(
                id="33333333-4444-5555-6666-777777777777", name="q",
                status="queued", visibility="private", owner="project",
                properties={}, tags=[], min_disk=0, min_ram=0,
                created_at=m.utcnow()))
        return "33333333-4444-5555-6666-777777777777"

    def test_a_file_is_streamed_in_chunks_and_checked(self):
        import hashlib
        import tempfile
        from twisted_compute.compute import image_client
        self.patch(image_client, "CHUNK", 4096)
        path = tempfile.mktemp()
        self.addCleanup(os.unlink, path)
        data = os.urandom(3 * 4096 + 17)
        with open(path, "wb") as handle:
            handle.write(data)
        image_id = self.queued_image()
        image = self.successResultOf(defer_ensure(self.images.upload(
            image_id, path, "qcow2")))
        self.assertEqual(image["checksum"], hashlib.md5(data).hexdigest())
        self.assertEqual((image["status"], image["disk_format"],
                          image["container_format"]),
                         ("active", "qcow2", "bare"))
        self.assertEqual(self.images.http.produced, [4])
        self.assertEqual(self.image_data(image_id), data)

    def test_a_checksum_mismatch_fails(self):
        from twisted_compute import exception
        image_id = self.queued_image()
        original = self.images.get

        async def lying(image_id):
            image = await original(image_id)
            return dict(image, checksum="0" * 32)
        self.images.get = lying
        self.failureResultOf(defer_ensure(self.images.upload(
            image_id, b"data", "raw")), exception.ImageUploadFailed)


def defer_ensure(coroutine):
    from twisted.internet import defer
    return defer.ensureDeferred(coroutine)


class UnshelveTimeoutTests(AgentTestCase):
    def test_an_unshelve_boot_that_hangs_times_out(self):
        self.conf.snapshot_timeout = 30
        server_id = self.running_server()
        self.action(server_id, {"shelve": None})
        self.assertEqual(self.row(server_id).vm_state, "shelved_offloaded")
        self.driver.spawn_delay = 100
        self.assertEqual(self.action(server_id, {"unshelve": None}).code,
                         202)
        self.assertEqual(self.row(server_id).task_state, "unshelving",
                         self.fault_messages(server_id))
        self.clock.advance(31)
        row = self.row(server_id)
        self.assertEqual((row.vm_state, row.task_state, row.host),
                         ("shelved_offloaded", None, None))
        self.assertIn("did not finish within 30 seconds",
                      " ".join(self.fault_messages(server_id)))
        self.assertNotIn(server_id, self.driver.guests)
        self.clock.advance(100)
