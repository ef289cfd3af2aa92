"""Server actions of a server's life on its host, at the API: rebuild,
rescue / unrescue, deferred delete (restore, forceDelete), crash dumps and
passwords: bodies per microversion, Nova's 409s, instance actions, quota,
and what is handed to the conductor / the agent."""

from __future__ import annotations

import base64
import json
import os

from tests.api.test_servers_base import (
    IMAGE_ID, PRIVATE_IMAGE_ID, QUEUED_IMAGE_ID, RecordingTaskAPI,
    ServersTestCase, random_uuid)
from twisted_compute.db import models as m

SAMPLES = "/work/shared/nova-api-samples/servers"
OTHER_IMAGE_ID = "33333333-4444-5555-6666-777777777777"


class RebuildTaskAPI(RecordingTaskAPI):
    def __init__(self):
        super().__init__()
        self.rebuilds = []

    def rebuild_instance(self, context, instance, **kwargs):
        self.rebuilds.append((instance, kwargs))


class LifecycleTestCase(ServersTestCase):
    def setUp(self):
        super().setUp()
        self.task_api = RebuildTaskAPI()
        self.services.compute_api.compute_task_api = self.task_api
        with self.db.engine.begin() as conn:
            conn.execute(m.images.insert().values(
                id=OTHER_IMAGE_ID, name="other", status="active",
                visibility="public", owner="admin",
                properties={"hw_qemu_guest_agent": "yes"}, tags=[],
                disk_format="qcow2", container_format="bare", size=1024,
                min_disk=0, min_ram=0, created_at=m.utcnow()))

    def active_server(self, token="user:project", **extra):
        server_id = self.create_server(token=token, **extra)
        self.set_state(server_id, vm_state="active", task_state=None,
                       host="compute1", node="compute1", power_state=1)
        return server_id


class RebuildTests(LifecycleTestCase):
    def rebuild(self, server_id, version="2.79", **body):
        body.setdefault("imageRef", OTHER_IMAGE_ID)
        return self.action(server_id, {"rebuild": body}, version=version)

    def test_rebuild_sets_the_task_writes_the_body_and_asks_the_conductor(
            self):
        self.use_rpc()
        server_id = self.active_server(metadata={"old": "1"})
        user_data = base64.b64encode(b"#!/bin/sh\necho new\n").decode()
        response = self.rebuild(
            server_id, version="2.90", name="renamed", adminPass="pw1",
            metadata={"new": "2"}, user_data=user_data,
            description="reinstalled", hostname="new-host",
            accessIPv4="10.0.0.9")
        self.assertEqual(response.code, 202, response)
        server = response.json["server"]
        self.assertEqual(server["id"], server_id)
        self.assertEqual(server["adminPass"], "pw1")
        self.assertEqual(server["name"], "renamed")
        self.assertEqual(server["status"], "REBUILD")
        self.assertEqual(server["metadata"], {"new": "2"})
        self.assertEqual(server["image"]["id"], OTHER_IMAGE_ID)
        self.assertEqual(server["user_data"], user_data)
        self.assertEqual(server["OS-EXT-SRV-ATTR:hostname"], "new-host")
        row = self.row(server_id)
        self.assertEqual((row.task_state, row.image_ref, row.host,
                          row.user_data, row.display_description),
                         ("rebuilding", OTHER_IMAGE_ID, "compute1",
                          user_data, "reinstalled"))
        self.assertEqual(row.system_metadata["image_hw_qemu_guest_agent"],
                         "yes")
        self.assertEqual(row.system_metadata["image_base_image_ref"],
                         OTHER_IMAGE_ID)
        self.assertEqual(self.actions(server_id)[0], "rebuild")
        [(instance, kwargs)] = self.task_api.rebuilds
        self.assertEqual(instance.uuid, server_id)
        self.assertEqual(kwargs["orig_image_ref"], IMAGE_ID)
        self.assertEqual(kwargs["image"]["id"], OTHER_IMAGE_ID)
        self.assertEqual(kwargs["admin_password"], "pw1")
        # a second rebuild while this one runs is a conflict
        self.assertFault(self.rebuild(server_id), 409, "task_state")

    def test_preserve_ephemeral_is_a_boolean_handed_on(self):
        self.use_rpc()
        for value in ("maybe", 2, None, {}):
            server_id = self.active_server()
            self.assertFault(self.rebuild(server_id,
                                          preserve_ephemeral=value), 400,
                             "preserve_ephemeral")
        self.assertEqual(self.task_api.rebuilds, [])
        for value, expected in ((True, True), ("on", True), ("No", False),
                                (False, False)):
            server_id = self.active_server()
            response = self.rebuild(server_id, preserve_ephemeral=value)
            self.assertEqual(response.code, 202, response)
            self.assertIs(self.task_api.rebuilds[-1][1]
                          ["preserve_ephemeral"], expected)
        server_id = self.active_server()
        self.rebuild(server_id)
        self.assertIs(self.task_api.rebuilds[-1][1]["preserve_ephemeral"],
                      False)

    def test_response_keys_are_nova_s_at_each_microversion(self):
        self.use_rpc()
        for version in ("2.1", "2.19", "2.26", "2.54", "2.57", "2.63",
                        "2.71", "2.73", "2.75", "2.90"):
            sample = os.path.join(
                SAMPLES, "" if version == "2.1" else f"v{version}",
                "server-action-rebuild-resp.json")
            with open(sample) as handle:
                expected = set(json.load(handle)["server"])
            server_id = self.active_server()
            response = self.rebuild(server_id, version=version)
            self.assertEqual(response.code, 202, (version, response))
            keys = set(response.json["server"])
            # host_status and the extended attributes are the admin's;
            # the sample is an admin's
            if version in ("2.75",):
                expected -= {k for k in expected
                             if k.startswith("OS-EXT-SRV-ATTR:")
                             and k != "OS-EXT-SRV-ATTR:hostname"}
                expected.discard("host_status")
                expected.discard("OS-EXT-SRV-ATTR:hostname")
            self.assertEqual(keys, expected, version)

    def test_fields_outside_their_microversions_are_400(self):
        self.use_rpc()
        server_id = self.active_server()
        for version, field, value in (
                ("2.18", "description", "x"), ("2.53", "key_name", None),
                ("2.56", "user_data", "eA=="), ("2.62",
                 "trusted_image_certificates", ["a"]),
                ("2.89", "hostname", "h"),
                ("2.57", "personality", [{"path": "/f",
                                          "contents": "eA=="}])):
            self.assertFault(self.rebuild(server_id, version=version,
                                          **{field: value}), 400, field)
        self.assertEqual(self.row(server_id).task_state, None)

    def test_images_and_states_nova_refuses(self):
        self.use_rpc()
        server_id = self.active_server()
        self.assertFault(self.rebuild(server_id, imageRef=random_uuid()),
                         400)
        self.assertFault(self.rebuild(server_id, imageRef=PRIVATE_IMAGE_ID),
                         400)
        self.assertFault(self.rebuild(server_id, imageRef=QUEUED_IMAGE_ID),
                         400)
        self.set_state(server_id, vm_state="paused")
        self.assertFault(self.rebuild(server_id), 409, "vm_state paused")
        self.set_state(server_id, vm_state="stopped")
        self.assertEqual(self.rebuild(server_id).code, 202)
        self.assertEqual(self.task_api.rebuilds[-1][0].vm_state, "stopped")

    def test_without_an_agent_layer_it_is_501_and_nothing_changes(self):
        server_id = self.active_server()
        self.assertFault(self.rebuild(server_id), 501, "'rebuild'")
        row = self.row(server_id)
        self.assertEqual((row.task_state, row.image_ref), (None, IMAGE_ID))
        self.assertEqual(self.actions(server_id), ["create"])

    def test_key_name_at_2_54_sets_and_unsets(self):
        self.use_rpc()
        response = self.post("/v2.1/os-keypairs", {"keypair": {
            "name": "k1"}}, token="user:project", version="2.2")
        self.assertEqual(response.code, 201, response)
        server_id = self.active_server()
        response = self.rebuild(server_id, version="2.54", key_name="k1")
        self.assertEqual(response.json["server"]["key_name"], "k1")
        self.assertEqual(self.row(server_id).key_name, "k1")
        self.set_state(server_id, task_state=None)
        self.assertFault(self.rebuild(server_id, version="2.54",
                                      key_name="nope"), 400, "nope")
        response = self.rebuild(server_id, version="2.54", key_name=None)
        self.assertIsNone(self.row(server_id).key_name)


class RescueTests(LifecycleTestCase):
    def test_rescue_answers_the_password_and_casts(self):
        rpc = self.use_rpc()
        server_id = self.active_server()
        response = self.action(server_id, {"rescue": {"adminPass": "pw"}})
        self.assertEqual(response.code, 200, response)
        self.assertEqual(response.json, {"adminPass": "pw"})
        self.assertEqual(self.row(server_id).task_state, "rescuing")
        name, uuid, kwargs = rpc.casts[-1]
        self.assertEqual((name, uuid), ("rescue_instance", server_id))
        # by default the agent picks ([libvirt] rescue_image_id, else the
        # server's own image)
        self.assertIsNone(kwargs["rescue_image"])
        self.assertEqual(self.actions(server_id)[0], "rescue")
        self.assertFault(self.action(server_id, {"rescue": None}), 409)

    def test_rescue_with_another_image_and_a_generated_password(self):
        rpc = self.use_rpc()
        server_id = self.active_server()
        response = self.action(server_id, {"rescue": {
            "rescue_image_ref": OTHER_IMAGE_ID}})
        self.assertEqual(response.code, 200, response)
        self.assertTrue(response.json["adminPass"])
        self.assertEqual(rpc.casts[-1][2]["rescue_image"]["id"],
                         OTHER_IMAGE_ID)
        other = self.active_server()
        missing = random_uuid()
        self.assertFault(self.action(other, {"rescue": {
            "rescue_image_ref": missing}}), 400,
            f"Requested rescue image '{missing}' is not supported")
        # another project's private image is the same as a missing one
        self.assertFault(self.action(other, {"rescue": {
            "rescue_image_ref": PRIVATE_IMAGE_ID}}), 400,
            "is not supported")
        # not a uuid: the schema's 400
        self.assertFault(self.action(other, {"rescue": {
            "rescue_image_ref": "nope"}}), 400)
        self.assertIsNone(self.row(other).task_state)
        # the state is checked before the image, as Nova's
        self.set_state(other, vm_state="rescued")
        self.assertFault(self.action(other, {"rescue": {
            "rescue_image_ref": missing}}), 409)

    def add_image(self, **properties):
        image_id = random_uuid()
        with self.db.engine.begin() as conn:
            conn.execute(m.images.insert().values(
                id=image_id, name="rescue", status="active",
                visibility="public", owner="admin", properties=properties,
                tags=[], disk_format="qcow2", container_format="bare",
                size=1024, min_disk=0, min_ram=0, created_at=m.utcnow()))
        return image_id

    def test_stable_device_rescue_properties_are_checked(self):
        rpc = self.use_rpc()
        server_id = self.active_server()
        stable = self.add_image(hw_rescue_device="cdrom",
                                hw_rescue_bus="ide")
        response = self.action(server_id, {"rescue": {
            "rescue_image_ref": stable}}, version="2.87")
        self.assertEqual(response.code, 200, response)
        self.assertEqual(rpc.casts[-1][2]["rescue_image"]["properties"],
                         {"hw_rescue_device": "cdrom",
                          "hw_rescue_bus": "ide"})
        other = self.active_server()
        for properties, text in (
                ({"hw_rescue_device": "floppy"},
                 "rescue device 'floppy' is not supported"),
                ({"hw_rescue_bus": "xen"}, "rescue bus 'xen'")):
            self.assertFault(self.action(other, {"rescue": {
                "rescue_image_ref": self.add_image(**properties)}}), 400,
                text)
        # a volume snapshot cannot be a rescue image (no volumes)
        snapshot = self.add_image(img_block_device_mapping="[{}]")
        self.assertFault(self.action(other, {"rescue": {
            "rescue_image_ref": snapshot}}), 400, "is not supported")
        # the server's own image's properties count for the default
        self.set_state(other, system_metadata={
            "image_base_image_ref": IMAGE_ID, "image_hw_rescue_bus": "fdc"})
        self.assertFault(self.action(other, {"rescue": {}}), 400,
                         "rescue bus 'fdc'")

    def test_unrescue_only_of_a_rescued_server(self):
        rpc = self.use_rpc()
        server_id = self.active_server()
        self.assertFault(self.action(server_id, {"unrescue": None}), 409,
                         "vm_state active")
        self.set_state(server_id, vm_state="rescued")
        self.assertEqual(self.show(server_id)["status"], "RESCUE")
        response = self.action(server_id, {"unrescue": None})
        self.assertEqual(response.code, 202, response)
        self.assertEqual(rpc.casts[-1][:2], ("unrescue_instance", server_id))
        self.assertEqual(self.row(server_id).task_state, "unrescuing")


class DeferredDeleteTests(LifecycleTestCase):
    conf_overrides = {"DEFAULT": {"reclaim_instance_interval": 3600}}

    def delete(self, server_id, token="user:project"):
        return self.request("DELETE", f"/v2.1/servers/{server_id}",
                            token=token, version="2.79")

    def test_delete_soft_deletes_and_restore_brings_it_back(self):
        rpc = self.use_rpc()
        server_id = self.active_server()
        self.assertEqual(self.delete(server_id).code, 204)
        row = self.row(server_id)
        self.assertEqual((row.task_state, row.deleted), ("soft-deleting", 0))
        self.assertIsNotNone(row.deleted_at)
        self.assertEqual(rpc.casts[-1][:2],
                         ("soft_delete_instance", server_id))
        self.set_state(server_id, vm_state="soft-delete", task_state=None)
        self.assertEqual(self.show(server_id)["status"], "SOFT_DELETED")
        response = self.action(server_id, {"restore": None})
        self.assertEqual(response.code, 202, response)
        self.assertEqual(rpc.casts[-1][:2], ("restore_instance", server_id))
        row = self.row(server_id)
        self.assertEqual(row.task_state, "restoring")
        self.assertIsNone(row.deleted_at)
        self.assertEqual(self.actions(server_id)[:2], ["restore", "delete"])

    def test_restore_of_a_live_server_is_409(self):
        self.use_rpc()
        server_id = self.active_server()
        self.assertFault(self.action(server_id, {"restore": None}), 409,
                         "vm_state active")

    def test_force_delete_terminates_now(self):
        rpc = self.use_rpc()
        server_id = self.active_server()
        self.set_state(server_id, vm_state="soft-delete", task_state=None)
        response = self.action(server_id, {"forceDelete": None})
        self.assertEqual(response.code, 202, response)
        self.assertEqual(rpc.casts[-1][:2],
                         ("terminate_instance", server_id))
        self.assertEqual(self.row(server_id).task_state, "deleting")

    def test_soft_deleted_servers_count_until_force_deleted(self):
        self.use_rpc()
        self.put("/v2.1/os-quota-sets/project", {"quota_set": {
            "instances": 1}}, token="admin:admin")
        server_id = self.active_server()
        self.set_state(server_id, vm_state="soft-delete", task_state=None)
        # the soft-deleted one still holds its host's resources: it counts
        self.assertFault(self.create_server(name="second", expect=403),
                         403, "instances")
        usage = self.get("/v2.1/os-quota-sets/project/detail",
                         token="user:project").json["quota_set"]
        self.assertEqual(usage["instances"]["in_use"], 1)
        self.assertEqual(usage["cores"]["in_use"],
                         self.row(server_id).vcpus)
        # so a restore needs no new check, even at the limit
        self.assertEqual(self.action(server_id, {"restore": None}).code, 202)
        # forceDelete frees it
        self.set_state(server_id, vm_state="soft-delete", task_state=None)
        self.assertEqual(self.action(server_id,
                                     {"forceDelete": None}).code, 202)
        self.set_state(server_id, deleted=1)
        usage = self.get("/v2.1/os-quota-sets/project/detail",
                         token="user:project").json["quota_set"]
        self.assertEqual(usage["instances"]["in_use"], 0)

    def test_a_server_without_host_is_deleted_at_once(self):
        server_id = self.create_server()
        self.use_rpc()
        self.assertEqual(self.delete(server_id).code, 204)
        self.assertNotEqual(self.row(server_id).deleted, 0)


class NoDeferredDeleteTests(LifecycleTestCase):
    def test_delete_is_a_hard_delete_and_force_delete_works(self):
        rpc = self.use_rpc()
        server_id = self.active_server()
        response = self.request("DELETE", f"/v2.1/servers/{server_id}",
                                token="user:project")
        self.assertEqual(response.code, 204)
        self.assertEqual(rpc.casts[-1][:2],
                         ("terminate_instance", server_id))
        other = self.active_server()
        self.assertEqual(self.action(other, {"forceDelete": None}).code,
                         202)
        self.assertEqual(rpc.casts[-1][:2], ("terminate_instance", other))


class CrashDumpAndPasswordTests(LifecycleTestCase):
    def test_crash_dump_from_2_17(self):
        rpc = self.use_rpc()
        server_id = self.active_server()
        self.assertFault(self.action(server_id, {"trigger_crash_dump": None},
                                     version="2.16"), 404)
        response = self.action(server_id, {"trigger_crash_dump": None},
                               version="2.17")
        self.assertEqual(response.code, 202, response)
        self.assertEqual(rpc.casts[-1][:2], ("trigger_crash_dump", server_id))
        self.assertIsNone(self.row(server_id).task_state)
        self.assertEqual(self.actions(server_id)[0], "trigger_crash_dump")
        self.set_state(server_id, vm_state="stopped")
        self.assertFault(self.action(server_id, {"trigger_crash_dump": None},
                                     version="2.17"), 409)

    def test_change_password_is_a_call_and_clears_nothing_left(self):
        rpc = self.use_rpc()
        server_id = self.active_server()
        response = self.action(server_id,
                               {"changePassword": {"adminPass": "s3"}})
        self.assertEqual(response.code, 202, response)
        self.assertEqual(rpc.casts[-1], ("set_admin_password", server_id,
                                         {"new_pass": "s3"}))
        self.assertEqual(self.actions(server_id)[0], "changePassword")
        self.assertFault(self.action(server_id, {"changePassword": {}}), 400)

    def test_change_password_without_guest_agent_is_409(self):
        from twisted.internet import defer
        from twisted_compute import exception
        rpc = self.use_rpc()

        def refused(context, instance, new_pass):
            return defer.fail(exception.InstanceAgentNotEnabled(
                instance_uuid=instance.uuid))
        rpc.set_admin_password = refused
        server_id = self.active_server()
        self.assertFault(self.action(
            server_id, {"changePassword": {"adminPass": "s3"}}), 409,
            "hw_qemu_guest_agent")
        self.assertIsNone(self.row(server_id).task_state)
