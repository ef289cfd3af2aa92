"""The metadata API through its real pipeline (api-pipeline.ini), as
cloud-init's OpenStack and EC2 datasources call it."""

from __future__ import annotations

import base64
import json
import os

import sqlalchemy as sa

from tests.base import APITestCase
from tests.metadata import rows
from twisted_compute.api.metadata.handler import sign_instance_id
from twisted_compute.db import models as m
from twisted_compute.metadata.base import EC2_VERSIONS, OPENSTACK_VERSIONS


class MetadataTestCase(APITestCase):
    api_name = "metadata"
    conf_overrides = {"api": {"use_forwarded_for": True}}

    def md(self, path: str, ip: str | None = "10.0.0.5",
           method: str = "GET", headers: dict[str, str] | None = None,
           raw: bytes | None = None):
        all_headers = dict(headers or {})
        if ip is not None:
            all_headers["X-Forwarded-For"] = ip
        return self.request(method, path, token=None, headers=all_headers,
                            raw=raw)

    def add(self, **kw):
        return self.run_db(lambda conn: rows.insert_instance(conn, **kw))

    def assertPlainError(self, response, code: int):
        self.assertEqual(response.code, code, response)
        self.assertEqual(response.header("content-type"), "text/plain")
        self.assertTrue(response.body.startswith(f"{code} ".encode()),
                        response.body)


class OpenStackPathsTests(MetadataTestCase):
    def setUp(self):
        super().setUp()
        self.vm = self.add(metadata={"role": "web", "tier": "1"})

    def test_root_lists_ec2_versions(self):
        response = self.md("/", ip="192.0.2.99")
        self.assertEqual(response.code, 200)
        self.assertEqual(response.body.decode().split("\n"),
                         list(EC2_VERSIONS) + ["latest"])

    def test_openstack_lists_versions(self):
        response = self.md("/openstack")
        self.assertEqual(response.code, 200)
        self.assertEqual(response.body.decode().split("\n"),
                         list(OPENSTACK_VERSIONS) + ["latest"])
        self.assertEqual(self.md("/openstack/").body, response.body)

    def test_version_listing(self):
        listing = self.md("/openstack/latest/").body.decode().split("\n")
        self.assertEqual(listing, [
            "meta_data.json", "user_data", "password", "vendor_data.json",
            "network_data.json", "vendor_data2.json"])
        old = self.md("/openstack/2012-08-10").body.decode().split("\n")
        self.assertEqual(old, ["meta_data.json", "user_data"])
        self.assertPlainError(self.md("/openstack/2011-01-01/"), 404)

    def test_listing_without_user_data(self):
        self.add(fixed_ip="10.0.0.6", user_data=None, key_name=None)
        listing = self.md("/openstack/latest", ip="10.0.0.6").body
        self.assertNotIn(b"user_data", listing)
        self.assertPlainError(
            self.md("/openstack/latest/user_data", ip="10.0.0.6"), 404)

    def test_meta_data_json(self):
        response = self.md("/openstack/latest/meta_data.json")
        self.assertEqual(response.code, 200)
        self.assertEqual(response.header("content-type"), "application/json")
        md = response.json
        self.assertEqual(md["uuid"], self.vm["uuid"])
        self.assertEqual(md["name"], "web")
        self.assertEqual(md["hostname"], "web.novalocal")
        self.assertEqual(md["launch_index"], 0)
        self.assertEqual(md["availability_zone"], "az1")
        self.assertEqual(md["project_id"], "p1")
        self.assertEqual(md["meta"], {"role": "web", "tier": "1"})
        self.assertEqual(md["public_keys"], {"alice": rows.SSH_KEY})
        self.assertEqual(md["keys"], [{"name": "alice", "type": "ssh",
                                       "data": rows.SSH_KEY}])
        self.assertEqual(md["devices"], [])
        self.assertEqual(md["dedicated_cpus"], [])
        self.assertEqual(len(base64.b64decode(md["random_seed"])), 512)
        self.assertNotIn("image_base_image_ref", json.dumps(md))
        again = self.md("/openstack/latest/meta_data.json").json
        # A fresh seed per request, as Nova makes it.
        self.assertNotEqual(again["random_seed"], md["random_seed"])

    def test_meta_data_keys_by_version(self):
        folsom = self.md("/openstack/2012-08-10/meta_data.json").json
        for key in ("random_seed", "project_id", "devices",
                    "dedicated_cpus"):
            self.assertNotIn(key, folsom)
        liberty = self.md("/openstack/2015-10-15/meta_data.json").json
        self.assertIn("random_seed", liberty)
        self.assertEqual(liberty["project_id"], "p1")
        self.assertNotIn("devices", liberty)
        rocky = self.md("/openstack/2018-08-27/meta_data.json").json
        self.assertEqual(rocky["devices"], [])
        self.assertNotIn("dedicated_cpus", rocky)

    def test_no_key_no_public_keys(self):
        self.add(fixed_ip="10.0.0.7", key_name=None, key_data=None)
        md = self.md("/openstack/latest/meta_data.json", ip="10.0.0.7").json
        self.assertNotIn("public_keys", md)
        self.assertNotIn("keys", md)
        self.assertNotIn("meta", md)

    def test_user_data_is_raw_bytes(self):
        response = self.md("/openstack/latest/user_data")
        self.assertEqual(response.code, 200)
        self.assertEqual(response.body, rows.USER_DATA)

    def test_vendor_data(self):
        self.assertEqual(self.md("/openstack/latest/vendor_data.json").json,
                         {})
        self.assertEqual(self.md(
            "/openstack/latest/vendor_data2.json").json, {})
        self.assertPlainError(
            self.md("/openstack/2013-04-04/vendor_data.json"), 404)

    def test_network_data(self):
        nd = self.md("/openstack/latest/network_data.json").json
        self.assertEqual(len(nd["links"]), 1)
        link = nd["links"][0]
        self.assertEqual(link["ethernet_mac_address"], "fa:16:3e:00:00:01")
        self.assertEqual(nd["networks"], [{
            "id": "network0", "type": "ipv4_dhcp", "link": link["id"],
            "network_id": "private"}])
        self.assertEqual(nd["services"], [])

    def test_network_data_static(self):
        self.add(fixed_ip=None, addresses=rows.addresses(
            "10.1.0.9", mac="FA:16:3E:00:00:09", netmask="255.255.255.0",
            gateway="10.1.0.1", dns=["10.1.0.2"]))
        nd = self.md("/openstack/latest/network_data.json",
                     ip="10.1.0.9").json
        net = nd["networks"][0]
        self.assertEqual(net["type"], "ipv4")
        self.assertEqual(net["ip_address"], "10.1.0.9")
        self.assertEqual(net["netmask"], "255.255.255.0")
        self.assertEqual(net["routes"], [{"network": "0.0.0.0",
                                          "netmask": "0.0.0.0",
                                          "gateway": "10.1.0.1"}])
        self.assertEqual(nd["links"][0]["ethernet_mac_address"],
                         "fa:16:3e:00:00:09")
        self.assertEqual(nd["services"], [{"type": "dns",
                                           "address": "10.1.0.2"}])

    def test_unknown_paths_are_404(self):
        for path in ("/openstack/latest/nothing.json",
                     "/openstack/latest/meta_data.json/uuid",
                     "/openstack/content/0000", "/1999-01-01/meta-data/",
                     "/latest/meta-data/nothing",
                     "/latest/meta-data/public-keys/0/_name"):
            self.assertPlainError(self.md(path), 404)

    def test_other_methods(self):
        response = self.md("/openstack/latest/meta_data.json",
                           method="POST", raw=b"x")
        self.assertPlainError(response, 405)
        self.assertPlainError(self.md("/openstack/latest/password",
                                      method="PUT", raw=b"x"), 400)


class EC2PathsTests(MetadataTestCase):
    def setUp(self):
        super().setUp()
        self.vm = self.add(fixed_ip=None, addresses=rows.addresses(
            "10.0.0.5", floating="203.0.113.7"))

    def lines(self, path):
        response = self.md(path)
        self.assertEqual(response.code, 200, response)
        return response.body.decode().split("\n")

    def test_version_listing(self):
        self.assertEqual(self.lines("/latest/"), ["meta-data/", "user-data"])
        self.assertEqual(self.lines("/2009-04-04"),
                         ["meta-data/", "user-data"])

    def test_meta_data_listing(self):
        listing = self.lines("/latest/meta-data/")
        self.assertEqual(listing, sorted(listing))
        for entry in ("ami-id", "ami-launch-index", "ami-manifest-path",
                      "block-device-mapping/", "hostname",
                      "instance-action", "instance-id", "instance-type",
                      "local-hostname", "local-ipv4", "placement/",
                      "public-hostname", "public-ipv4", "public-keys/",
                      "reservation-id", "security-groups"):
            self.assertIn(entry, listing)

    def test_values(self):
        def value(name):
            return self.md(f"/latest/meta-data/{name}").body.decode()

        self.assertEqual(value("instance-id"), "i-%08x" % self.vm["id"])
        self.assertEqual(value("local-ipv4"), "10.0.0.5")
        self.assertEqual(value("public-ipv4"), "203.0.113.7")
        self.assertEqual(value("hostname"), "web.novalocal")
        self.assertEqual(value("local-hostname"), "web.novalocal")
        self.assertEqual(value("instance-type"), "m1.tiny")
        self.assertEqual(value("reservation-id"), "r-abc123")
        self.assertEqual(value("security-groups"), "default")
        self.assertEqual(value("ami-launch-index"), "0")
        self.assertEqual(value("instance-action"), "none")
        self.assertRegex(value("ami-id"), r"^ami-[0-9a-f]{8}$")
        self.assertEqual(value("placement/"), "availability-zone")
        self.assertEqual(value("placement/availability-zone"), "az1")
        self.assertEqual(value("block-device-mapping/root"), "/dev/vda")
        self.assertEqual(value("block-device-mapping/ami"), "vda")

    def test_public_keys(self):
        self.assertEqual(self.lines("/latest/meta-data/public-keys/"),
                         ["0=alice"])
        self.assertEqual(self.lines("/latest/meta-data/public-keys/0/"),
                         ["openssh-key"])
        key = self.md("/latest/meta-data/public-keys/0/openssh-key")
        self.assertEqual(key.body.decode(), rows.SSH_KEY)

    def test_user_data(self):
        response = self.md("/latest/user-data")
        self.assertEqual(response.code, 200)
        self.assertEqual(response.body, rows.USER_DATA)

    def test_old_version_has_fewer_keys(self):
        listing = self.lines("/1.0/meta-data/")
        self.assertIn("instance-id", listing)
        for entry in ("local-hostname", "instance-type", "placement/"):
            self.assertNotIn(entry, listing)
        self.assertPlainError(self.md("/1.0/meta-data/placement/"), 404)


class LookupByAddressTests(MetadataTestCase):
    def test_unknown_address_is_404(self):
        self.add()
        self.assertPlainError(
            self.md("/openstack/latest/meta_data.json", ip="10.9.9.9"), 404)

    def test_finds_the_instance_with_the_address(self):
        first = self.add(fixed_ip="10.0.0.5")
        second = self.add(fixed_ip="10.0.0.6", name="db")
        self.assertEqual(self.md("/openstack/latest/meta_data.json",
                                 ip="10.0.0.6").json["uuid"], second["uuid"])
        self.assertEqual(self.md("/openstack/latest/meta_data.json",
                                 ip="10.0.0.5").json["uuid"], first["uuid"])

    def test_floating_address_and_deleted_instances_do_not_match(self):
        self.add(fixed_ip=None, addresses=rows.addresses(
            "10.0.0.5", floating="203.0.113.7"))
        self.add(fixed_ip="10.0.0.8", deleted=True)
        self.assertPlainError(self.md("/latest/meta-data/",
                                      ip="203.0.113.7"), 404)
        self.assertPlainError(self.md("/latest/meta-data/",
                                      ip="10.0.0.8"), 404)

    def test_forwarded_for_takes_the_first_address(self):
        vm = self.add(fixed_ip="10.0.0.5")
        response = self.md("/openstack/latest/meta_data.json",
                           ip="10.0.0.5, 192.0.2.1")
        self.assertEqual(response.json["uuid"], vm["uuid"])


class LookupByPeerAddressTests(MetadataTestCase):
    """Without use_forwarded_for the TCP peer is the guest (StubTreq
    connects from 127.0.0.1)."""

    conf_overrides = {}

    def test_peer_address(self):
        vm = self.add(fixed_ip="127.0.0.1")
        self.add(fixed_ip="10.0.0.5", name="other")
        response = self.md("/openstack/latest/meta_data.json", ip="10.0.0.5")
        self.assertEqual(response.code, 200)
        # X-Forwarded-For is not trusted: the peer address decides.
        self.assertEqual(response.json["uuid"], vm["uuid"])


class SignedHeadersTests(MetadataTestCase):
    secret = "s3cr3t"
    conf_overrides = {"neutron": {"metadata_proxy_shared_secret": secret}}

    def setUp(self):
        super().setUp()
        self.vm = self.add(fixed_ip=None)

    def signed(self, path="/openstack/latest/meta_data.json",
               instance_id=None, tenant="p1", signature=None, drop=()):
        instance_id = instance_id or self.vm["uuid"]
        headers = {
            "X-Instance-ID": instance_id,
            "X-Tenant-ID": tenant,
            "X-Instance-ID-Signature": signature or sign_instance_id(
                self.secret, instance_id),
        }
        for name in drop:
            del headers[name]
        return self.md(path, ip=None, headers=headers)

    def test_right_signature(self):
        response = self.signed()
        self.assertEqual(response.code, 200, response)
        self.assertEqual(response.json["uuid"], self.vm["uuid"])
        self.assertEqual(self.signed("/latest/meta-data/instance-id").body,
                         b"i-%08x" % self.vm["id"])

    def test_network_data_without_addresses(self):
        self.assertEqual(self.signed(
            "/openstack/latest/network_data.json").json,
            {"links": [], "networks": [], "services": []})

    def test_missing_headers_are_400(self):
        for name in ("X-Instance-ID", "X-Tenant-ID",
                     "X-Instance-ID-Signature"):
            response = self.signed(drop=(name,))
            self.assertPlainError(response, 400)
            self.assertIn(name.encode(), response.body)

    def test_no_headers_at_all_is_400_even_from_a_known_address(self):
        self.add(fixed_ip="10.0.0.5")
        self.assertPlainError(self.md("/openstack/latest/meta_data.json",
                                      ip="10.0.0.5"), 400)

    def test_forged_signature_is_403(self):
        forged = sign_instance_id("not-the-secret", self.vm["uuid"])
        self.assertPlainError(self.signed(signature=forged), 403)
        other = self.add(fixed_ip=None, name="other")
        # A signature of another instance does not open this one.
        self.assertPlainError(self.signed(
            signature=sign_instance_id(self.secret, other["uuid"])), 403)

    def test_tenant_mismatch_is_404(self):
        self.assertPlainError(self.signed(tenant="p2"), 404)

    def test_unknown_instance_is_404(self):
        self.assertPlainError(self.signed(
            instance_id="00000000-0000-4000-8000-000000000000"), 404)


class CacheTests(MetadataTestCase):
    def set_meta(self, uuid, value):
        def thd(conn):
            md = m.instance_metadata
            conn.execute(md.delete().where(md.c.instance_uuid == uuid))
            conn.execute(md.insert().values(instance_uuid=uuid, key="k",
                                            value=value))
        self.run_db(thd)

    def meta(self):
        return self.md("/openstack/latest/meta_data.json").json["meta"]

    def test_cached_until_expiry(self):
        vm = self.add()
        self.set_meta(vm["uuid"], "one")
        self.assertEqual(self.meta(), {"k": "one"})
        self.set_meta(vm["uuid"], "two")
        self.reactor.advance(14)
        self.assertEqual(self.meta(), {"k": "one"})
        self.reactor.advance(1)
        self.assertEqual(self.meta(), {"k": "two"})

    def test_deleted_instance_gone_after_expiry(self):
        vm = self.add()
        self.assertEqual(self.md("/latest/meta-data/").code, 200)
        self.run_db(lambda conn: conn.execute(m.instances.update().where(
            m.instances.c.id == vm["id"]).values(deleted=vm["id"])))
        self.assertEqual(self.md("/latest/meta-data/").code, 200)
        self.reactor.advance(15)
        self.assertPlainError(self.md("/latest/meta-data/"), 404)


class NoCacheTests(CacheTests):
    conf_overrides = {"api": {"use_forwarded_for": True,
                              "metadata_cache_expiration": 0}}

    def test_cached_until_expiry(self):
        vm = self.add()
        self.set_meta(vm["uuid"], "one")
        self.assertEqual(self.meta(), {"k": "one"})
        self.set_meta(vm["uuid"], "two")
        self.assertEqual(self.meta(), {"k": "two"})

    def test_deleted_instance_gone_after_expiry(self):
        vm = self.add()
        self.run_db(lambda conn: conn.execute(m.instances.update().where(
            m.instances.c.id == vm["id"]).values(deleted=vm["id"])))
        self.assertPlainError(self.md("/latest/meta-data/"), 404)


class PasswordTests(MetadataTestCase):
    def setUp(self):
        super().setUp()
        self.vm = self.add()

    def stored(self):
        return self.run_db(lambda conn: conn.execute(
            sa.select(m.instances.c.system_metadata).where(
                m.instances.c.id == self.vm["id"])).scalar_one())

    def test_set_once(self):
        path = "/openstack/latest/password"
        self.assertEqual(self.md(path).body, b"")
        response = self.md(path, method="POST", raw=b"ZW5jcnlwdGVk")
        self.assertEqual(response.code, 200, response)
        self.assertEqual(self.stored()["password"], "ZW5jcnlwdGVk")
        self.assertEqual(self.stored()["image_base_image_ref"], "img")
        # Seen at once, not after the cache expires.
        self.assertEqual(self.md(path).body, b"ZW5jcnlwdGVk")
        again = self.md(path, method="POST", raw=b"other")
        self.assertPlainError(again, 409)
        self.assertEqual(self.stored()["password"], "ZW5jcnlwdGVk")

    def test_too_large_is_400(self):
        response = self.md("/openstack/latest/password", method="POST",
                           raw=b"x" * 257)
        self.assertPlainError(response, 400)
        self.assertNotIn("password", self.stored())
        ok = self.md("/openstack/latest/password", method="POST",
                     raw=b"x" * 256)
        self.assertEqual(ok.code, 200)

    def test_not_before_grizzly(self):
        self.assertPlainError(self.md("/openstack/2012-08-10/password",
                                      method="POST", raw=b"x"), 404)
        self.assertNotIn("password", self.stored())

    def test_password_is_per_instance(self):
        self.add(fixed_ip="10.0.0.6", name="other")
        self.md("/openstack/latest/password", method="POST", raw=b"mine")
        self.assertEqual(self.md("/openstack/latest/password",
                                 ip="10.0.0.6").body, b"")
        self.assertEqual(self.md("/openstack/latest/password").body,
                         b"mine")


class VendorDataFileTests(MetadataTestCase):
    def setUp(self):
        path = os.path.abspath(self.mktemp())
        with open(path, "w") as handle:
            json.dump({"cloud": "twisted", "n": 1}, handle)
        self.conf_overrides = {"api": {"use_forwarded_for": True,
                                       "vendordata_jsonfile_path": path}}
        super().setUp()
        self.add()

    def test_vendor_data_from_file(self):
        self.assertEqual(self.md("/openstack/latest/vendor_data.json").json,
                         {"cloud": "twisted", "n": 1})
        self.assertEqual(self.md(
            "/openstack/latest/vendor_data2.json").json, {})
