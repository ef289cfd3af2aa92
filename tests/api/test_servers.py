"""``/servers``: create, list, detail, show, update, delete."""

from __future__ import annotations

import json

import sqlalchemy as sa
import os

from tests.api.test_servers_base import (
    IMAGE_ID, PRIVATE_IMAGE_ID, QUEUED_IMAGE_ID, ServersTestCase,
    random_uuid)
from twisted_compute.db import models as m

SAMPLES = "/work/shared/nova-api-samples/servers"


def sample_keys(path):
    """Top-level keys of a sample's server, or None when unavailable."""
    full = os.path.join(SAMPLES, path)
    if not os.path.exists(full):
        return None
    with open(full) as handle:
        body = json.load(handle)
    value = next(iter(body.values()))
    if isinstance(value, list):
        value = value[0]
    return set(value)


class CreateTests(ServersTestCase):
    def test_create_answers_202_with_the_sample_keys(self):
        response = self.post("/v2.1/servers", self.server_body(),
                             token="user:project", version="2.79")
        self.assertEqual(response.code, 202, response)
        server = response.json["server"]
        self.assertEqual(set(server), {"id", "links", "OS-DCF:diskConfig",
                                       "security_groups", "adminPass"})
        self.assertEqual(server["security_groups"], [{"name": "default"}])
        self.assertEqual(len(server["adminPass"]), 12)
        self.assertEqual(server["links"][0]["href"],
                         f"http://localhost:8774/v2.1/servers/{server['id']}")
        self.assertEqual(response.header("location"),
                         server["links"][0]["href"])

    def test_created_row_is_building_and_handed_to_conductor(self):
        server_id = self.create_server(metadata={"a": "b"})
        row = self.row(server_id)
        self.assertEqual((row.vm_state, row.task_state),
                         ("building", "scheduling"))
        self.assertEqual(row.flavor["flavorid"], "1")
        self.assertTrue(row.reservation_id.startswith("r-"))
        self.assertEqual(len(row.reservation_id), 10)
        self.assertEqual(row.launch_index, 0)
        self.assertEqual(row.hostname, "new-server-test")
        [(context, instances, boot)] = self.task_api.calls
        self.assertEqual([i.uuid for i in instances], [server_id])
        self.assertEqual(boot.request_spec.num_instances, 1)
        self.assertEqual(boot.request_spec.instance_uuids, (server_id,))
        self.assertEqual(boot.request_spec.image["id"], IMAGE_ID)
        self.assertTrue(boot.admin_password)
        self.assertNotIn("admin_password", row.request_spec)
        self.assertEqual(self.show(server_id)["status"], "BUILD")
        self.assertEqual(self.actions(server_id), ["create"])

    def handoff(self, result):
        """The conductor seam answers every boot with ``result()``."""
        def schedule_and_build_instances(context, boot_request):
            self.task_api.calls.append(boot_request)
            return result()
        self.task_api.schedule_and_build_instances = \
            schedule_and_build_instances

    def instance_rows(self):
        with self.db.engine.connect() as conn:
            return conn.execute(sa.select(
                m.instances.c.uuid, m.instances.c.vm_state,
                m.instances.c.deleted)).all()

    def test_a_bus_that_refuses_the_boot_means_503_and_no_server(self):
        from twisted.internet import defer
        from twisted_compute import exception
        self.handoff(lambda: defer.fail(exception.ServiceUnavailable(
            reason="no quorum")))
        response = self.post("/v2.1/servers", self.server_body(),
                             token="user:project", version="2.79")
        self.assertFault(response, 503, "boot_handoff_timeout")
        [row] = self.instance_rows()
        self.assertEqual(row.vm_state, "deleted")
        self.assertTrue(row.deleted)
        listed = self.get("/v2.1/servers", token="user:project")
        self.assertEqual(listed.json["servers"], [])

    def test_a_bus_that_never_confirms_means_503_in_bounded_time(self):
        from twisted.internet import defer
        self.handoff(defer.Deferred)
        d = self.http.request(
            "POST", "http://localhost:8774/v2.1/servers",
            headers={"X-Auth-Token": "user:project",
                     "Content-Type": "application/json",
                     "OpenStack-API-Version": "compute 2.79"},
            data=json.dumps(self.server_body()).encode())
        self.http.flush()
        self.assertNoResult(d)
        self.reactor.advance(self.conf.boot_handoff_timeout - 0.1)
        self.assertNoResult(d)
        self.reactor.advance(0.2)
        self.http.flush()
        response = self.successResultOf(d)
        self.assertEqual(response.code, 503)
        [row] = self.instance_rows()
        self.assertEqual(row.vm_state, "deleted")

    def test_a_boot_a_conductor_took_meanwhile_goes_on(self):
        """The confirm was lost but the conductor got the boot and placed
        it: the client gets its server, which is not withdrawn."""
        from twisted.internet import defer

        def taken():
            for boot in self.task_api.calls:
                for instance in boot.instances:
                    self.set_state(instance.uuid, host="h1",
                                   task_state="spawning")
            return defer.fail(RuntimeError("connection lost"))
        self.handoff(taken)
        server_id = self.create_server()
        self.assertEqual(self.row(server_id).vm_state, "building")

    def test_admin_pass_given_is_returned(self):
        response = self.post("/v2.1/servers", self.server_body(
            adminPass="s3cret"), token="u:p", version="2.79")
        self.assertEqual(response.json["server"]["adminPass"], "s3cret")

    def test_networks_required_from_2_37(self):
        body = self.server_body()
        del body["server"]["networks"]
        self.assertFault(self.post("/v2.1/servers", body, token="u:p",
                                   version="2.37"), 400, "networks")
        self.assertEqual(self.post("/v2.1/servers", body, token="u:p",
                                   version="2.36").code, 202)
        body["server"]["networks"] = "bogus"
        self.assertFault(self.post("/v2.1/servers", body, token="u:p",
                                   version="2.79"), 400, "networks")
        # There is no network service: a network or port id names
        # nothing, and is refused as Nova refuses an unknown one.
        network = random_uuid()
        body["server"]["networks"] = [{"uuid": network}]
        self.assertFault(self.post("/v2.1/servers", body, token="u:p",
                                   version="2.79"), 400,
                         f"Network {network} could not be found")
        body["server"]["networks"] = [{"port": network}]
        self.assertFault(self.post("/v2.1/servers", body, token="u:p",
                                   version="2.79"), 400,
                         f"Port id {network} could not be found")
        body["server"]["networks"] = []
        self.assertEqual(self.post("/v2.1/servers", body, token="u:p",
                                   version="2.79").code, 202)

    def test_the_openstack_cli_body(self):
        body = {"server": {
            "name": "cli", "imageRef": IMAGE_ID, "flavorRef": "1",
            "min_count": 1, "max_count": 1, "networks": "auto",
            "block_device_mapping_v2": [{
                "uuid": IMAGE_ID, "boot_index": 0, "source_type": "image",
                "destination_type": "local",
                "delete_on_termination": True}]},
            "OS-SCH-HNT:scheduler_hints": {"foo": "bar"}}
        response = self.post("/v2.1/servers", body, token="u:p",
                             version="2.79")
        self.assertEqual(response.code, 202, response)

    def test_boot_from_image_bdm_without_imageref(self):
        body = self.server_body(imageRef="", block_device_mapping_v2=[{
            "uuid": IMAGE_ID, "boot_index": 0, "source_type": "image",
            "destination_type": "local"}])
        response = self.post("/v2.1/servers", body, token="u:p",
                             version="2.79")
        self.assertEqual(response.code, 202, response)
        self.assertEqual(self.row(response.json["server"]["id"]).image_ref,
                         IMAGE_ID)

    def test_volume_bdm_is_not_implemented(self):
        body = self.server_body(imageRef="", block_device_mapping_v2=[{
            "uuid": IMAGE_ID, "boot_index": 0, "source_type": "image",
            "destination_type": "volume", "volume_size": 1}])
        self.assertFault(self.post("/v2.1/servers", body, token="u:p",
                                   version="2.79"), 501, "volume")

    def test_missing_image(self):
        body = self.server_body(imageRef="")
        self.assertFault(self.post("/v2.1/servers", body, token="u:p",
                                   version="2.79"), 400, "imageRef")

    def test_unknown_inactive_or_foreign_image(self):
        missing = random_uuid()
        self.assertFault(self.create_server(imageRef=missing, expect=400),
                         400, f"Image {missing} could not be found.")
        self.assertFault(self.create_server(imageRef=QUEUED_IMAGE_ID,
                                            expect=400), 400, "not active")
        self.assertFault(self.create_server(imageRef=PRIVATE_IMAGE_ID,
                                            expect=400), 400,
                         "could not be found")

    def test_flavor_by_link_and_unknown_flavor(self):
        self.create_server(flavorRef="http://localhost:8774/flavors/2")
        self.assertFault(self.create_server(flavorRef="99", expect=400),
                         400, "flavorRef")

    def test_bad_fields_are_named(self):
        for field, value in (("name", ""), ("user_data", "not base64!"),
                             ("accessIPv4", "1.2.3"),
                             ("metadata", {"k": 5}), ("min_count", 0),
                             ("config_drive", "maybe")):
            response = self.create_server(expect=400, **{field: value})
            self.assertFault(response, 400, field)
        response = self.create_server(expect=400, bogus=1)
        self.assertFault(response, 400, "bogus")

    def test_description_and_tags_need_their_microversions(self):
        self.assertFault(self.create_server(description="d", version="2.18",
                                            expect=400), 400, "description")
        self.assertFault(self.create_server(tags=["a"], version="2.51",
                                            expect=400), 400, "tags")
        server_id = self.create_server(description="d", tags=["b", "a"])
        server = self.show(server_id)
        self.assertEqual(server["description"], "d")
        self.assertEqual(server["tags"], ["a", "b"])

    def test_key_name(self):
        with self.db.engine.begin() as conn:
            conn.execute(m.key_pairs.insert().values(
                name="mykey", user_id="user", fingerprint="f",
                public_key="ssh-rsa AAAA", type="ssh",
                created_at=m.utcnow()))
        server_id = self.create_server(key_name="mykey")
        self.assertEqual(self.show(server_id)["key_name"], "mykey")
        self.assertEqual(self.row(server_id).key_data, "ssh-rsa AAAA")
        self.assertFault(self.create_server(key_name="nokey", expect=400),
                         400, "key_name")
        # another user's key is not ours
        self.assertFault(self.create_server(key_name="mykey",
                                            token="other:project",
                                            expect=400), 400)

    def test_user_data_is_stored(self):
        server_id = self.create_server(user_data="aGVsbG8=")
        self.assertEqual(self.show(server_id, token="admin:admin")[
            "OS-EXT-SRV-ATTR:user_data"], "aGVsbG8=")

    def test_user_data_too_long(self):
        self.assertFault(self.create_server(user_data="A" * 65536,
                                            expect=400), 400, "user_data")

    def test_availability_zone(self):
        server_id = self.create_server(availability_zone="nova")
        self.assertEqual(self.show(server_id)["OS-EXT-AZ:availability_zone"],
                         "nova")
        self.assertFault(self.create_server(availability_zone="nowhere",
                                            expect=400), 400,
                         "availability zone")
        self.assertFault(self.create_server(availability_zone="nova:host1",
                                            expect=403), 403)

    def test_security_groups_and_config_drive_recorded(self):
        server_id = self.create_server(
            security_groups=[{"name": "web"}, {"name": "web"}],
            config_drive=True)
        server = self.show(server_id)
        self.assertEqual(server["security_groups"], [{"name": "web"}])
        self.assertEqual(server["config_drive"], "True")

    def test_server_group_hint(self):
        with self.db.engine.begin() as conn:
            group_id = conn.execute(m.server_groups.insert().values(
                uuid=random_uuid(), name="g", user_id="user",
                project_id="project", policy="anti-affinity", rules={},
                created_at=m.utcnow())).inserted_primary_key[0]
            group_uuid = conn.execute(
                m.server_groups.select().where(
                    m.server_groups.c.id == group_id)).first().uuid
        body = self.server_body()
        body["OS-SCH-HNT:scheduler_hints"] = {"group": group_uuid}
        response = self.post("/v2.1/servers", body, token="user:project",
                             version="2.79")
        self.assertEqual(response.code, 202, response)
        server_id = response.json["server"]["id"]
        self.assertEqual(self.show(server_id)["server_groups"], [group_uuid])
        self.assertNotIn("server_groups", self.show(server_id,
                                                    version="2.70"))
        body["OS-SCH-HNT:scheduler_hints"] = {"group": random_uuid()}
        self.assertFault(self.post("/v2.1/servers", body, token="user:p",
                                   version="2.79"), 400)

    def test_access_ipv6_in_canonical_form(self):
        server_id = self.create_server(
            accessIPv4="192.0.2.1", accessIPv6="2001:0DB8:0000:0000:0000::0001")
        self.assertEqual(self.show(server_id)["accessIPv6"], "2001:db8::1")
        response = self.put(f"/v2.1/servers/{server_id}", {"server": {
            "accessIPv6": "FE80:0:0:0:0:0:0:A"}}, token="user:project",
            version="2.79")
        self.assertEqual(response.code, 200, response)
        self.assertEqual(response.json["server"]["accessIPv6"], "fe80::a")
        self.assertEqual(self.show(server_id)["accessIPv6"], "fe80::a")

    def test_server_group_of_another_project_is_invisible(self):
        group = self.post("/v2.1/os-server-groups", {"server_group": {
            "name": "a-group", "policies": ["anti-affinity"]}},
            token="a:project-a").json["server_group"]
        body = self.server_body()
        body["OS-SCH-HNT:scheduler_hints"] = {"group": group["id"]}
        # Project B cannot join project A's group: the same answer as for
        # a group that does not exist, and no member is added.
        self.assertFault(self.post("/v2.1/servers", body,
                                   token="b:project-b", version="2.79"),
                         400, f"Instance group {group['id']} could not be "
                         "found")
        shown = self.get(f"/v2.1/os-server-groups/{group['id']}",
                         token="a:project-a").json["server_group"]
        self.assertEqual(shown["members"], [])
        self.assertEqual(self.post("/v2.1/servers", body,
                                   token="a:project-a",
                                   version="2.79").code, 202)

    def test_metadata_quota(self):
        metadata = {f"k{i}": "v" for i in range(129)}
        self.assertFault(self.create_server(metadata=metadata, expect=403),
                         403, "metadata")


class MultipleCreateTests(ServersTestCase):
    conf_overrides = {"quota": {"instances": 3}}

    def test_min_max_creates_as_many_as_fit(self):
        response = self.post("/v2.1/servers", self.server_body(
            "multi", min_count=2, max_count=5), token="u:p", version="2.79")
        self.assertEqual(response.code, 202, response)
        listed = self.get("/v2.1/servers/detail", token="u:p",
                          version="2.79").json["servers"]
        self.assertEqual(sorted(s["name"] for s in listed),
                         ["multi-1", "multi-2", "multi-3"])
        reservations = {s["id"]: self.row(s["id"]) for s in listed}
        self.assertEqual(len({r.reservation_id for r in
                              reservations.values()}), 1)
        self.assertEqual(sorted(r.launch_index for r in
                                reservations.values()), [0, 1, 2])
        self.assertEqual(self.task_api.calls[0][2].request_spec.num_instances,
                         3)

    def test_min_count_over_quota_is_403(self):
        response = self.post("/v2.1/servers", self.server_body(
            min_count=4, max_count=4), token="u:p", version="2.79")
        fault = self.assertFault(response, 403)
        self.assertEqual(
            fault["message"],
            "Quota exceeded for instances: Requested 4, but already used 0 "
            "of 3 instances")
        self.assertEqual(self.get("/v2.1/servers", token="u:p").json,
                         {"servers": []})

    def test_return_reservation_id(self):
        response = self.post("/v2.1/servers", self.server_body(
            min_count="2", max_count="2", return_reservation_id="True"),
            token="u:p", version="2.79")
        self.assertEqual(response.code, 202, response)
        reservation_id = response.json["reservation_id"]
        self.assertEqual(list(response.json), ["reservation_id"])
        listed = self.get(f"/v2.1/servers?reservation_id={reservation_id}",
                          token="u:p").json["servers"]
        self.assertEqual(len(listed), 2)

    def test_min_greater_than_max(self):
        self.assertFault(self.post("/v2.1/servers", self.server_body(
            min_count=3, max_count=2), token="u:p", version="2.79"), 400,
            "min_count")


class QuotaTests(ServersTestCase):
    conf_overrides = {"quota": {"instances": 2}}

    def test_third_server_is_refused(self):
        self.create_server(token="u:p")
        self.create_server(token="u:p")
        fault = self.assertFault(self.create_server(token="u:p",
                                                    expect=403), 403)
        self.assertIn("Quota exceeded for instances", fault["message"])
        # other projects have their own quota
        self.create_server(token="u:other")

    def test_deleted_servers_free_quota(self):
        first = self.create_server(token="u:p")
        self.create_server(token="u:p")
        self.assertEqual(self.delete(f"/v2.1/servers/{first}",
                                     token="u:p").code, 204)
        self.create_server(token="u:p")


class CoresQuotaTests(ServersTestCase):
    conf_overrides = {"quota": {"cores": 3}}

    def test_cores(self):
        self.create_server(token="u:p", flavorRef="2")
        fault = self.assertFault(self.create_server(
            token="u:p", flavorRef="2", expect=403), 403)
        self.assertIn("cores", fault["message"])


class ShowTests(ServersTestCase):
    def test_show_keys_match_samples(self):
        server_id = self.create_server(token="admin:admin", tags=["x"])
        for version, path, admin in (
                ("2.1", "server-get-resp.json", True),
                ("2.3", "v2.3/server-get-resp.json", True),
                ("2.16", "v2.16/server-get-resp.json", True),
                ("2.47", "v2.47/server-get-resp.json", True),
                ("2.71", "v2.71/server-get-resp.json", True),
                ("2.73", "v2.73/server-get-resp.json", True)):
            expected = sample_keys(path)
            if expected is None:
                continue
            server = self.show(server_id, token="admin:admin",
                               version=version)
            self.assertEqual(set(server), expected, version)
        shown = self.show(server_id, token="admin:admin", version="2.79")
        self.assertEqual(set(shown), sample_keys(
            "v2.73/server-get-resp.json") or set(shown))

    def test_non_admin_does_not_see_extended_attributes(self):
        server_id = self.create_server()
        server = self.show(server_id)
        self.assertFalse([k for k in server if k.startswith(
            "OS-EXT-SRV-ATTR")])
        self.assertNotIn("host_status", server)
        self.assertEqual(server["tenant_id"], "project")
        self.assertEqual(server["user_id"], "user")
        self.assertEqual(server["OS-EXT-STS:vm_state"], "building")
        self.assertEqual(server["OS-EXT-STS:task_state"], "scheduling")
        self.assertEqual(server["hostId"], "")
        self.assertEqual(server["image"]["id"], IMAGE_ID)
        self.assertEqual(server["locked"], False)

    def test_flavor_forms(self):
        server_id = self.create_server()
        old = self.show(server_id, version="2.46")["flavor"]
        self.assertEqual(old["id"], "1")
        self.assertEqual(old["links"][0]["href"],
                         "http://localhost:8774/flavors/1")
        new = self.show(server_id, version="2.47")["flavor"]
        self.assertEqual(new, {"vcpus": 1, "ram": 512, "disk": 1,
                               "ephemeral": 0, "swap": 0,
                               "original_name": "m1.tiny",
                               "extra_specs": {}})

    def test_other_project_gets_404(self):
        server_id = self.create_server(token="user:project")
        self.assertFault(self.get(f"/v2.1/servers/{server_id}",
                                  token="user:other"), 404, server_id)
        self.assertFault(self.delete(f"/v2.1/servers/{server_id}",
                                     token="user:other"), 404)
        self.assertFault(self.action(server_id, {"lock": None},
                                     token="user:other"), 404)
        self.assertEqual(self.get(f"/v2.1/servers/{server_id}",
                                  token="admin:admin").code, 200)

    def test_fault_shown_in_error(self):
        server_id = self.create_server()
        with self.db.engine.begin() as conn:
            conn.execute(m.instance_faults.insert().values(
                instance_uuid=server_id, code=500, message="No valid host",
                details="trace", created_at=m.utcnow()))
        self.assertNotIn("fault", self.show(server_id))
        self.set_state(server_id, vm_state="error", task_state=None)
        server = self.show(server_id)
        self.assertEqual(server["status"], "ERROR")
        self.assertEqual(server["fault"]["message"], "No valid host")
        self.assertNotIn("details", server["fault"])
        admin = self.show(server_id, token="admin:admin")
        self.assertEqual(admin["fault"]["details"], "trace")

    def test_host_status_and_addresses(self):
        server_id = self.create_server()
        self.set_state(server_id, host="compute1", node="compute1",
                       addresses={"private": [
                           {"addr": "10.0.0.5", "version": 4,
                            "OS-EXT-IPS:type": "fixed",
                            "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:00:00:01"}]})
        admin = self.show(server_id, token="admin:admin")
        self.assertEqual(admin["host_status"], "UNKNOWN")
        self.assertEqual(admin["OS-EXT-SRV-ATTR:host"], "compute1")
        self.assertEqual(len(admin["hostId"]), 56)
        self.assertEqual(admin["addresses"]["private"][0]["addr"],
                         "10.0.0.5")
        ips = self.get(f"/v2.1/servers/{server_id}/ips",
                       token="user:project").json
        self.assertEqual(ips, {"addresses": {"private": [
            {"addr": "10.0.0.5", "version": 4}]}})
        one = self.get(f"/v2.1/servers/{server_id}/ips/private",
                       token="user:project").json
        self.assertEqual(one, {"private": [{"addr": "10.0.0.5",
                                            "version": 4}]})
        self.assertFault(self.get(f"/v2.1/servers/{server_id}/ips/public",
                                  token="user:project"), 404)

    def test_unknown_server(self):
        self.assertFault(self.get(f"/v2.1/servers/{random_uuid()}"), 404)


class UpdateTests(ServersTestCase):
    def test_update_before_and_at_2_75(self):
        server_id = self.create_server()
        response = self.put(f"/v2.1/servers/{server_id}", {"server": {
            "name": "renamed", "description": "hello"}},
            token="user:project", version="2.73")
        self.assertEqual(response.code, 200, response)
        server = response.json["server"]
        self.assertEqual(server["name"], "renamed")
        expected = sample_keys("v2.73/server-update-resp.json")
        if expected:
            self.assertEqual(set(server), expected)
        response = self.put(f"/v2.1/servers/{server_id}", {"server": {
            "accessIPv4": "10.1.1.1"}}, token="admin:admin",
            version="2.75")
        full = response.json["server"]
        self.assertEqual(full["accessIPv4"], "10.1.1.1")
        expected = sample_keys("v2.75/server-update-resp.json")
        if expected:
            self.assertEqual(set(full), expected)
        # the hostname set at create stays
        self.assertEqual(self.row(server_id).hostname, "new-server-test")

    def test_update_validation(self):
        server_id = self.create_server()
        self.assertFault(self.put(f"/v2.1/servers/{server_id}", {"server": {
            "description": "x"}}, token="user:project", version="2.18"), 400,
            "description")
        self.assertFault(self.put(f"/v2.1/servers/{server_id}", {"server": {
            "name": ""}}, token="user:project"), 400, "name")


class DeleteTests(ServersTestCase):
    def test_delete_without_host_is_local(self):
        server_id = self.create_server()
        response = self.delete(f"/v2.1/servers/{server_id}",
                               token="user:project")
        self.assertEqual(response.code, 204)
        self.assertEqual(response.body, b"")
        row = self.row(server_id)
        self.assertEqual(row.deleted, row.id)
        self.assertEqual(row.vm_state, "deleted")
        self.assertIsNone(row.task_state)
        self.assertIsNotNone(row.deleted_at)
        self.assertIsNotNone(row.terminated_at)
        self.assertFault(self.get(f"/v2.1/servers/{server_id}",
                                  token="user:project"), 404)
        self.assertEqual(self.actions(server_id, version="2.21"),
                         ["delete", "create"])

    def test_delete_with_host_goes_to_the_agent(self):
        rpc = self.use_rpc()
        server_id = self.create_server()
        self.set_state(server_id, host="compute1", vm_state="active",
                       task_state=None)
        self.assertEqual(self.delete(f"/v2.1/servers/{server_id}",
                                     token="user:project").code, 204)
        self.assertEqual(self.row(server_id).task_state, "deleting")
        self.assertEqual(self.row(server_id).deleted, 0)
        self.assertEqual([c[0] for c in rpc.casts], ["terminate_instance"])

    def test_locked_server_refuses_non_admin_delete(self):
        server_id = self.create_server()
        self.assertEqual(self.action(server_id, {"lock": None},
                                     token="admin:admin").code, 202)
        self.assertFault(self.delete(f"/v2.1/servers/{server_id}",
                                     token="user:project"), 409, "locked")
        self.assertEqual(self.delete(f"/v2.1/servers/{server_id}",
                                     token="admin:admin").code, 204)


class ListTests(ServersTestCase):
    def test_index_and_detail(self):
        first = self.create_server("one")
        second = self.create_server("two")
        body = self.get("/v2.1/servers", token="user:project").json
        self.assertEqual([s["id"] for s in body["servers"]], [second, first])
        self.assertEqual(set(body["servers"][0]), {"id", "name", "links"})
        self.assertNotIn("servers_links", body)
        detail = self.get("/v2.1/servers/detail", token="user:project",
                          version="2.79").json["servers"]
        self.assertEqual(detail[0]["name"], "two")
        self.assertNotIn("server_groups", detail[0])
        self.assertEqual(self.get("/v2.1/servers", token="user:other").json,
                         {"servers": []})

    def test_detail_keys_match_samples(self):
        self.create_server(token="admin:admin")
        for version, path in (("2.1", "servers-details-resp.json"),
                              ("2.16", "v2.16/servers-details-resp.json"),
                              ("2.63", "v2.63/servers-details-resp.json"),
                              ("2.73", "v2.73/servers-details-resp.json")):
            expected = sample_keys(path)
            if expected is None:
                continue
            server = self.get("/v2.1/servers/detail", token="admin:admin",
                              version=version).json["servers"][0]
            self.assertEqual(set(server), expected, version)

    def test_pagination(self):
        ids = [self.create_server(f"s{i}") for i in range(5)]
        page = self.get("/v2.1/servers?limit=2", token="user:project").json
        self.assertEqual([s["id"] for s in page["servers"]],
                         ids[::-1][:2])
        href = page["servers_links"][0]["href"]
        self.assertIn(f"marker={ids[3]}", href)
        self.assertIn("limit=2", href)
        page = self.get(f"/v2.1/servers?limit=2&marker={ids[3]}",
                        token="user:project").json
        self.assertEqual([s["id"] for s in page["servers"]],
                         [ids[2], ids[1]])
        page = self.get(f"/v2.1/servers/detail?limit=2&marker={ids[1]}",
                        token="user:project").json
        self.assertEqual([s["id"] for s in page["servers"]], [ids[0]])
        self.assertNotIn("servers_links", page)
        self.assertFault(self.get("/v2.1/servers?marker=nope",
                                  token="user:project"), 400, "marker")

    def test_sort_keys(self):
        self.create_server("b")
        self.create_server("a")
        self.create_server("c")
        names = [s["name"] for s in self.get(
            "/v2.1/servers?sort_key=display_name&sort_dir=asc",
            token="user:project").json["servers"]]
        self.assertEqual(names, ["a", "b", "c"])
        page = self.get("/v2.1/servers?sort_key=display_name&sort_dir=asc"
                        "&limit=1&marker=" + self.get(
                            "/v2.1/servers?sort_key=display_name&sort_dir="
                            "asc&limit=1", token="user:project").json[
                            "servers"][0]["id"], token="user:project").json
        self.assertEqual([s["name"] for s in page["servers"]], ["b"])
        self.assertFault(self.get("/v2.1/servers?sort_key=bogus",
                                  token="user:project"), 400, "sort_key")
        self.assertFault(self.get("/v2.1/servers?sort_key=host",
                                  token="user:project"), 403)
        self.assertEqual(self.get("/v2.1/servers?sort_key=host",
                                  token="admin:admin").code, 200)

    def test_filters(self):
        one = self.create_server("web-1", tags=["a", "b"])
        two = self.create_server("db-1", flavorRef="2", tags=["b"])
        self.set_state(two, vm_state="active", task_state=None, locked=True)

        def ids(query, token="user:project", version="2.79"):
            response = self.get(f"/v2.1/servers?{query}", token=token,
                                version=version)
            self.assertEqual(response.code, 200, response)
            return {s["id"] for s in response.json["servers"]}

        self.assertEqual(ids("name=^web"), {one})
        self.assertEqual(ids("status=ACTIVE"), {two})
        self.assertEqual(ids("status=BUILD"), {one})
        self.assertFault(self.get("/v2.1/servers?status=bogus",
                                  token="user:project", version="2.79"), 400)
        self.assertEqual(ids("status=bogus", version="2.37"), set())
        self.assertEqual(ids("flavor=2"), {two})
        self.assertEqual(ids("flavor=99"), set())
        self.assertEqual(ids(f"image={IMAGE_ID}"), {one, two})
        self.assertEqual(ids("tags=a,b"), {one})
        self.assertEqual(ids("tags-any=a,b"), {one, two})
        self.assertEqual(ids("not-tags=a,b"), {two})
        self.assertEqual(ids("not-tags-any=a"), {two})
        self.assertEqual(ids("locked=true"), {two})
        self.assertEqual(ids("locked=false"), {one})
        self.assertFault(self.get("/v2.1/servers?locked=maybe",
                                  token="user:project", version="2.79"), 400)
        # a filter non-admins may not use is ignored for them
        self.assertEqual(ids("host=nowhere", version="2.74"), {one, two})
        self.assertEqual(ids("host=nowhere", token="admin:admin"), set())

    def test_unknown_query_parameter_from_2_75(self):
        self.assertEqual(self.get("/v2.1/servers?bogus=1",
                                  token="user:project",
                                  version="2.74").code, 200)
        self.assertFault(self.get("/v2.1/servers?bogus=1",
                                  token="user:project", version="2.75"),
                         400, "bogus")

    def test_all_tenants(self):
        mine = self.create_server(token="admin:admin")
        theirs = self.create_server(token="user:project")
        ids = {s["id"] for s in self.get("/v2.1/servers?all_tenants=1",
                                         token="admin:admin").json[
                                             "servers"]}
        self.assertEqual(ids, {mine, theirs})
        ids = {s["id"] for s in self.get(
            "/v2.1/servers?all_tenants=1&project_id=project",
            token="admin:admin").json["servers"]}
        self.assertEqual(ids, {theirs})
        self.assertEqual({s["id"] for s in self.get(
            "/v2.1/servers", token="admin:admin").json["servers"]}, {mine})
        self.assertFault(self.get("/v2.1/servers?all_tenants=1",
                                  token="user:project"), 403)

    def test_changes_since_includes_deleted(self):
        gone = self.create_server("gone")
        kept = self.create_server("kept")
        self.delete(f"/v2.1/servers/{gone}", token="user:project")
        default = self.get("/v2.1/servers/detail",
                           token="user:project").json["servers"]
        self.assertEqual([s["id"] for s in default], [kept])
        since = self.get("/v2.1/servers/detail?changes-since="
                         "2000-01-01T00:00:00Z", token="user:project").json
        statuses = {s["id"]: s["status"] for s in since["servers"]}
        self.assertEqual(statuses, {gone: "DELETED", kept: "BUILD"})
        future = self.get("/v2.1/servers?changes-since=2999-01-01T00:00:00Z",
                          token="user:project").json
        self.assertEqual(future, {"servers": []})
        before = self.get("/v2.1/servers?changes-before=2000-01-01T00:00:00Z",
                          token="user:project", version="2.66").json
        self.assertEqual(before, {"servers": []})
        self.assertFault(self.get(
            "/v2.1/servers?changes-since=2999-01-01T00:00:00Z&"
            "changes-before=2000-01-01T00:00:00Z", token="user:project",
            version="2.66"), 400)
        deleted = self.get("/v2.1/servers?deleted=true",
                           token="admin:admin").json["servers"]
        self.assertEqual([], deleted)  # admin's own project has none
        deleted = self.get("/v2.1/servers?deleted=true&all_tenants=1",
                           token="admin:admin").json["servers"]
        self.assertEqual([s["id"] for s in deleted], [gone])



class ManyServersTests(ServersTestCase):
    conf_overrides = {"quota": {"instances": -1, "cores": -1, "ram": -1}}

    def test_detail_of_many_servers_uses_batched_queries(self):
        for i in range(20):
            self.create_server(f"s{i}", metadata={"i": str(i)},
                               tags=[f"t{i}"])
        statements = []
        from sqlalchemy import event

        def count(*args):
            statements.append(args[2])
        event.listen(self.db.engine, "before_cursor_execute", count)
        self.addCleanup(event.remove, self.db.engine,
                        "before_cursor_execute", count)
        body = self.get("/v2.1/servers/detail", token="user:project",
                        version="2.79").json
        self.assertEqual(len(body["servers"]), 20)
        self.assertEqual({s["metadata"]["i"] for s in body["servers"]},
                         {str(i) for i in range(20)})
        selects = [s for s in statements if s.lstrip().upper().startswith(
            "SELECT")]
        self.assertLessEqual(len(selects), 5, selects)
