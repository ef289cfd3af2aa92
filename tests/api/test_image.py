"""The image API (Glance v2 subset) through the real pipeline, and the
image store's synchronous import used by ``compute-manage``."""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import uuid

from twisted.trial.unittest import SynchronousTestCase

from tests.base import (ETC, APITestCase, SyncThreadPool, make_conf,
                        migrated_sqlite)
from treq.testing import StubTreq
from twisted_compute import exception
from twisted_compute.api import pipeline
from twisted_compute.api.image import store as store_mod

PATCH_TYPE = "application/openstack-images-v2.1-json-patch"


class ImageAPITestCase(APITestCase):
    api_name = "image"

    def setUp(self):
        super().setUp()
        # The same pipeline, with the store's file IO run synchronously.
        self.root = pipeline.load_api(
            os.path.join(ETC, "api-pipeline.ini"), self.api_name,
            {"conf": self.conf, "services": self.services,
             "image_threadpool": SyncThreadPool()})
        self.http = StubTreq(self.root)

    def create(self, token="alice:p1", **body):
        body.setdefault("name", "cirros")
        response = self.post("/v2/images", body, token=token)
        self.assertEqual(response.code, 201, response)
        return response.json

    def upload(self, image_id, data: bytes, token="alice:p1",
               content_type="application/octet-stream"):
        return self.put(f"/v2/images/{image_id}/file", raw=data,
                        token=token,
                        headers={"Content-Type": content_type})

    def patch(self, image_id, operations, token="alice:p1",
              content_type=PATCH_TYPE):
        return self.request(
            "PATCH", f"/v2/images/{image_id}",
            raw=json.dumps(operations).encode(), token=token,
            headers={"Content-Type": content_type})

    def image_path(self, image_id):
        return os.path.join(self.state_path, "images", image_id)


class VersionsTests(ImageAPITestCase):

    def test_root_is_multiple_choices(self):
        response = self.get("/", token=None)
        self.assertEqual(response.code, 300)
        versions = response.json["versions"]
        current = [v for v in versions if v["status"] == "CURRENT"]
        self.assertEqual(len(current), 1)
        self.assertTrue(current[0]["id"].startswith("v2."))
        self.assertEqual(current[0]["links"], [
            {"rel": "self", "href": "http://localhost:8774/v2/"}])
        self.assertIn("v2.0", [v["id"] for v in versions])

    def test_versions_path_is_ok(self):
        response = self.get("/versions", token=None)
        self.assertEqual(response.code, 200)
        self.assertEqual(response.json, self.get("/", token=None).json)

    def test_v2_needs_auth(self):
        self.assertFault(self.get("/v2/images", token=None), 401)

    def test_schemas(self):
        image = self.get("/v2/schemas/image").json
        self.assertEqual(image["name"], "image")
        self.assertIn("disk_format", image["properties"])
        images = self.get("/v2/schemas/images").json
        self.assertEqual(images["properties"]["images"]["items"], image)


class LinkPrefixTests(ImageAPITestCase):
    conf_overrides = {"api": {"glance_link_prefix":
                              "https://images.example.test/"}}

    def test_versions_use_prefix(self):
        versions = self.get("/", token=None).json["versions"]
        self.assertEqual({v["links"][0]["href"] for v in versions},
                         {"https://images.example.test/v2/"})


class CreateShowTests(ImageAPITestCase):

    def test_create_is_queued(self):
        image = self.create(disk_format="qcow2", container_format="bare",
                            min_ram=64, tags=["a", "a", "b"],
                            hw_disk_bus="virtio")
        self.assertEqual(image["status"], "queued")
        self.assertEqual(image["visibility"], "shared")
        self.assertEqual(image["owner"], "p1")
        self.assertEqual(image["tags"], ["a", "b"])
        self.assertEqual(image["hw_disk_bus"], "virtio")
        self.assertEqual(image["min_ram"], 64)
        self.assertIsNone(image["size"])
        self.assertIsNone(image["checksum"])
        self.assertEqual(image["self"], f"/v2/images/{image['id']}")
        self.assertEqual(image["file"], f"/v2/images/{image['id']}/file")
        self.assertEqual(image["schema"], "/v2/schemas/image")
        for key in ("os_hidden", "protected", "virtual_size",
                    "os_hash_algo", "os_hash_value", "created_at",
                    "updated_at", "container_format", "disk_format",
                    "min_disk"):
            self.assertIn(key, image)
        shown = self.get(f"/v2/images/{image['id']}", token="alice:p1")
        self.assertEqual(shown.code, 200)
        self.assertEqual(shown.json, image)

    def test_create_with_id(self):
        wanted = str(uuid.uuid4())
        image = self.create(id=wanted)
        self.assertEqual(image["id"], wanted)
        again = self.post("/v2/images", {"id": wanted}, token="alice:p1")
        self.assertFault(again, 409)

    def test_create_rejects_read_only_and_bad_values(self):
        self.assertFault(self.post("/v2/images", {"status": "active"},
                                   token="alice:p1"), 403, "status")
        self.assertFault(self.post("/v2/images", {"disk_format": "exe"},
                                   token="alice:p1"), 400, "disk_format")
        self.assertFault(self.post("/v2/images", {"min_ram": -1},
                                   token="alice:p1"), 400, "min_ram")
        self.assertFault(self.post("/v2/images", {"id": "nope"},
                                   token="alice:p1"), 400, "id")
        self.assertFault(self.post("/v2/images", {"foo": 1},
                                   token="alice:p1"), 400, "foo")

    def test_public_needs_admin(self):
        self.assertFault(self.post("/v2/images", {"visibility": "public"},
                                   token="alice:p1"), 403)
        image = self.create(token="admin:admin", visibility="public")
        self.assertEqual(image["visibility"], "public")
        community = self.create(visibility="community")
        self.assertEqual(community["visibility"], "community")

    def test_owner_only_by_admin(self):
        self.assertFault(self.post("/v2/images", {"owner": "p2"},
                                   token="alice:p1"), 403)
        image = self.create(token="admin:admin", owner="p2")
        self.assertEqual(image["owner"], "p2")

    def test_private_hidden_from_others(self):
        image = self.create(visibility="private")
        self.assertFault(self.get(f"/v2/images/{image['id']}",
                                  token="bob:p2"), 404)
        self.assertEqual(self.get(f"/v2/images/{image['id']}",
                                  token="admin:admin").code, 200)
        community = self.create(visibility="community")
        self.assertEqual(self.get(f"/v2/images/{community['id']}",
                                  token="bob:p2").code, 200)

    def test_missing(self):
        self.assertFault(self.get(f"/v2/images/{uuid.uuid4()}"), 404)


class ListTests(ImageAPITestCase):

    def setUp(self):
        super().setUp()
        self.public = self.create(token="admin:admin", name="pub",
                                  visibility="public", disk_format="raw")
        self.mine = self.create(name="mine", visibility="private",
                                disk_format="qcow2", distro="debian")
        self.shared = self.create(name="shared", disk_format="qcow2")
        self.theirs = self.create(token="bob:p2", name="theirs",
                                  visibility="private")
        self.community = self.create(token="bob:p2", name="comm",
                                     visibility="community")

    def names(self, query="", token="alice:p1"):
        response = self.get("/v2/images" + query, token=token)
        self.assertEqual(response.code, 200, response)
        return sorted(i["name"] for i in response.json["images"])

    def test_default_list(self):
        self.assertEqual(self.names(), ["mine", "pub", "shared"])
        self.assertEqual(self.names(token="bob:p2"),
                         ["comm", "pub", "theirs"])
        self.assertEqual(self.names(token="admin:admin"),
                         ["comm", "mine", "pub", "shared", "theirs"])

    def test_body_keys(self):
        body = self.get("/v2/images", token="alice:p1").json
        self.assertEqual(set(body), {"images", "first", "schema"})
        self.assertEqual(body["first"], "/v2/images")
        self.assertEqual(body["schema"], "/v2/schemas/images")

    def test_visibility_filter(self):
        self.assertEqual(self.names("?visibility=community"), ["comm"])
        self.assertEqual(self.names("?visibility=private"), ["mine"])
        self.assertEqual(self.names("?visibility=all"),
                         ["comm", "mine", "pub", "shared"])
        self.assertFault(self.get("/v2/images?visibility=bogus",
                                  token="alice:p1"), 400)

    def test_filters(self):
        self.assertEqual(self.names("?name=mine"), ["mine"])
        self.assertEqual(self.names(
            f"?id=in:{self.mine['id']},{self.public['id']}"),
            ["mine", "pub"])
        self.assertEqual(self.names("?disk_format=qcow2"),
                         ["mine", "shared"])
        self.assertEqual(self.names("?owner=p1"), ["mine", "shared"])
        self.assertEqual(self.names("?status=queued&name=in:pub,shared"),
                         ["pub", "shared"])
        self.assertEqual(self.names("?status=active"), [])
        self.assertEqual(self.names("?distro=debian"), ["mine"])

    def test_tag_and_hidden_filters(self):
        tagged = self.create(name="tagged", tags=["x", "y"])
        hidden = self.create(name="hidden", os_hidden=True)
        self.assertEqual(self.names("?tag=x&tag=y"), ["tagged"])
        self.assertEqual(self.names("?tag=x&tag=z"), [])
        self.assertNotIn("hidden", self.names())
        self.assertEqual(self.names("?os_hidden=true"), ["hidden"])
        self.assertTrue(tagged and hidden)

    def test_sort_and_pagination(self):
        response = self.get("/v2/images?sort_key=name&sort_dir=asc&limit=2",
                            token="admin:admin")
        body = response.json
        self.assertEqual([i["name"] for i in body["images"]],
                         ["comm", "mine"])
        self.assertIn("next", body)
        self.assertIn("marker=" + body["images"][-1]["id"], body["next"])
        self.assertTrue(body["next"].startswith("/v2/images?"))
        seen = [i["name"] for i in body["images"]]
        while "next" in body:
            body = self.get(body["next"], token="admin:admin").json
            seen += [i["name"] for i in body["images"]]
        self.assertEqual(seen, ["comm", "mine", "pub", "shared", "theirs"])

    def test_sort_parameter(self):
        response = self.get("/v2/images?sort=name:desc",
                            token="admin:admin")
        self.assertEqual([i["name"] for i in response.json["images"]],
                         ["theirs", "shared", "pub", "mine", "comm"])
        self.assertFault(self.get("/v2/images?sort_key=bogus",
                                  token="admin:admin"), 400)
        self.assertFault(self.get("/v2/images?marker=" + str(uuid.uuid4()),
                                  token="admin:admin"), 400)

    def test_default_sort_is_newest_first(self):
        response = self.get("/v2/images", token="admin:admin")
        ids = [i["id"] for i in response.json["images"]]
        self.assertEqual(ids[0], self.community["id"])
        self.assertEqual(ids[-1], self.public["id"])


class UploadDownloadTests(ImageAPITestCase):

    def test_upload_then_download(self):
        image = self.create(disk_format="raw", container_format="bare")
        data = os.urandom(300 * 1024 + 17)
        response = self.upload(image["id"], data)
        self.assertEqual(response.code, 204, response)
        shown = self.get(f"/v2/images/{image['id']}",
                         token="alice:p1").json
        self.assertEqual(shown["status"], "active")
        self.assertEqual(shown["size"], len(data))
        self.assertEqual(shown["virtual_size"], len(data))
        self.assertEqual(shown["checksum"], hashlib.md5(data).hexdigest())
        self.assertEqual(shown["os_hash_algo"], "sha512")
        self.assertEqual(shown["os_hash_value"],
                         hashlib.sha512(data).hexdigest())
        with open(self.image_path(image["id"]), "rb") as handle:
            self.assertEqual(handle.read(), data)

        download = self.get(f"/v2/images/{image['id']}/file",
                            token="alice:p1")
        self.assertEqual(download.code, 200)
        self.assertEqual(download.body, data)
        self.assertEqual(download.header("content-md5"),
                         hashlib.md5(data).hexdigest())
        self.assertEqual(download.header("content-type"),
                         "application/octet-stream")

    def test_qcow2_virtual_size(self):
        image = self.create(disk_format="qcow2")
        header = b"QFI\xfb" + struct.pack(">I", 3) + b"\0" * 16 + \
            struct.pack(">Q", 1 << 30) + b"\0" * 100
        self.assertEqual(self.upload(image["id"], header).code, 204)
        shown = self.get(f"/v2/images/{image['id']}", token="alice:p1")
        self.assertEqual(shown.json["virtual_size"], 1 << 30)
        self.assertEqual(shown.json["size"], len(header))

    def test_download_without_data(self):
        image = self.create()
        response = self.get(f"/v2/images/{image['id']}/file",
                            token="alice:p1")
        self.assertEqual(response.code, 204)
        self.assertEqual(response.body, b"")

    def test_second_upload_conflicts(self):
        image = self.create()
        self.assertEqual(self.upload(image["id"], b"one").code, 204)
        self.assertFault(self.upload(image["id"], b"two"), 409)
        download = self.get(f"/v2/images/{image['id']}/file",
                            token="alice:p1")
        self.assertEqual(download.body, b"one")

    def test_upload_wrong_content_type(self):
        image = self.create()
        self.assertFault(self.upload(image["id"], b"x",
                                     content_type="text/plain"), 415)

    def test_upload_by_other_project(self):
        image = self.create(token="admin:admin", visibility="public")
        self.assertFault(self.upload(image["id"], b"x", token="bob:p2"),
                         403)
        private = self.create(visibility="private")
        self.assertFault(self.upload(private["id"], b"x", token="bob:p2"),
                         404)

    def test_download_private_by_other_project(self):
        image = self.create(visibility="private")
        self.upload(image["id"], b"secret")
        self.assertFault(self.get(f"/v2/images/{image['id']}/file",
                                  token="bob:p2"), 404)


class SizeCapTests(ImageAPITestCase):
    conf_overrides = {"glance": {"image_size_cap": 1000}}

    def test_over_cap_is_413_and_leaves_nothing(self):
        image = self.create()
        response = self.upload(image["id"], b"x" * 1001)
        self.assertFault(response, 413)
        shown = self.get(f"/v2/images/{image['id']}", token="alice:p1").json
        self.assertEqual(shown["status"], "queued")
        self.assertIsNone(shown["size"])
        directory = os.path.join(self.state_path, "images")
        self.assertEqual(os.listdir(directory)
                         if os.path.isdir(directory) else [], [])
        # At the cap is fine.
        self.assertEqual(self.upload(image["id"], b"x" * 1000).code, 204)

    def test_cap_enforced_while_streaming(self):
        # Without a trustworthy Content-Length the copy itself stops.
        source = io.BytesIO(b"y" * 5000)
        directory = os.path.join(self.state_path, "images")
        image_id = str(uuid.uuid4())
        self.assertRaises(exception.ImageSizeLimitExceeded,
                          store_mod.write_data, source, directory,
                          image_id, 1000, chunk_size=256)
        self.assertEqual(os.listdir(directory), [])


class PatchTests(ImageAPITestCase):

    def setUp(self):
        super().setUp()
        self.image = self.create(disk_format="qcow2", distro="debian")
        self.path = f"/v2/images/{self.image['id']}"

    def test_replace_add_remove(self):
        response = self.patch(self.image["id"], [
            {"op": "replace", "path": "/name", "value": "renamed"},
            {"op": "add", "path": "/hw_rng_model", "value": "virtio"},
            {"op": "replace", "path": "/distro", "value": "ubuntu"},
            {"op": "replace", "path": "/min_disk", "value": 2},
            {"op": "replace", "path": "/tags", "value": ["t1"]},
        ])
        self.assertEqual(response.code, 200, response)
        body = response.json
        self.assertEqual(body["name"], "renamed")
        self.assertEqual(body["hw_rng_model"], "virtio")
        self.assertEqual(body["distro"], "ubuntu")
        self.assertEqual(body["min_disk"], 2)
        self.assertEqual(body["tags"], ["t1"])
        self.assertEqual(self.get(self.path, token="alice:p1").json, body)
        response = self.patch(self.image["id"], [
            {"op": "remove", "path": "/distro"}])
        self.assertNotIn("distro", response.json)

    def test_v20_form(self):
        response = self.patch(
            self.image["id"], [{"replace": "/name", "value": "old-style"}],
            content_type="application/openstack-images-v2.0-json-patch")
        self.assertEqual(response.json["name"], "old-style")

    def test_errors(self):
        self.assertFault(self.patch(self.image["id"], [
            {"op": "replace", "path": "/status", "value": "active"}]),
            403, "status")
        self.assertFault(self.patch(self.image["id"], [
            {"op": "remove", "path": "/nonexistent"}]), 409)
        self.assertFault(self.patch(self.image["id"], [
            {"op": "replace", "path": "/nonexistent", "value": "x"}]), 409)
        self.assertFault(self.patch(self.image["id"], [
            {"op": "remove", "path": "/name"}]), 403)
        self.assertFault(self.patch(self.image["id"], [
            {"op": "replace", "path": "/min_ram", "value": "lots"}]), 400)
        self.assertFault(self.patch(self.image["id"], [
            {"op": "add", "path": "/prop", "value": 7}]), 400)
        self.assertFault(self.patch(self.image["id"], [
            {"op": "move", "path": "/name"}]), 400)
        self.assertFault(self.patch(
            self.image["id"], [{"op": "replace", "path": "/name",
                                "value": "x"}],
            content_type="application/json"), 415)
        self.assertFault(self.patch(self.image["id"], [
            {"op": "replace", "path": "/visibility", "value": "public"}]),
            403)
        self.assertFault(self.patch(self.image["id"], [
            {"op": "replace", "path": "/name", "value": "x"}],
            token="bob:p2"), 404)
        # Nothing changed.
        self.assertEqual(self.get(self.path, token="alice:p1").json,
                         self.image)

    def test_disk_format_frozen_once_active(self):
        self.upload(self.image["id"], b"data")
        self.assertFault(self.patch(self.image["id"], [
            {"op": "replace", "path": "/disk_format", "value": "raw"}]),
            403)

    def test_tags_calls(self):
        self.assertEqual(self.put(self.path + "/tags/red",
                                  token="alice:p1").code, 204)
        self.assertEqual(self.get(self.path, token="alice:p1")
                         .json["tags"], ["red"])
        self.assertEqual(self.delete(self.path + "/tags/red",
                                     token="alice:p1").code, 204)
        self.assertEqual(self.get(self.path, token="alice:p1")
                         .json["tags"], [])
        self.assertFault(self.delete(self.path + "/tags/red",
                                     token="alice:p1"), 404)


class DeleteTests(ImageAPITestCase):

    def test_delete_removes_file(self):
        image = self.create()
        self.upload(image["id"], b"bits")
        self.assertTrue(os.path.exists(self.image_path(image["id"])))
        response = self.delete(f"/v2/images/{image['id']}",
                               token="alice:p1")
        self.assertEqual(response.code, 204)
        self.assertFalse(os.path.exists(self.image_path(image["id"])))
        self.assertFault(self.get(f"/v2/images/{image['id']}",
                                  token="alice:p1"), 404)

    def test_protected(self):
        image = self.create(protected=True)
        self.assertFault(self.delete(f"/v2/images/{image['id']}",
                                     token="alice:p1"), 403)
        self.patch(image["id"], [
            {"op": "replace", "path": "/protected", "value": False}])
        self.assertEqual(self.delete(f"/v2/images/{image['id']}",
                                     token="alice:p1").code, 204)

    def test_other_project(self):
        image = self.create(token="admin:admin", visibility="public")
        self.assertFault(self.delete(f"/v2/images/{image['id']}",
                                     token="bob:p2"), 403)
        self.assertEqual(self.delete(f"/v2/images/{image['id']}",
                                     token="admin:admin").code, 204)


class DeactivateTests(ImageAPITestCase):

    def test_deactivate_blocks_download(self):
        image = self.create()
        self.upload(image["id"], b"bits")
        path = f"/v2/images/{image['id']}"
        self.assertFault(self.post(path + "/actions/deactivate",
                                   token="alice:p1"), 403)
        self.assertEqual(self.post(path + "/actions/deactivate",
                                   token="admin:admin").code, 204)
        self.assertEqual(self.get(path, token="alice:p1").json["status"],
                         "deactivated")
        self.assertFault(self.get(path + "/file", token="alice:p1"), 403)
        self.assertEqual(self.post(path + "/actions/reactivate",
                                   token="admin:admin").code, 204)
        self.assertEqual(self.get(path + "/file", token="alice:p1").body,
                         b"bits")


class ImportFileTests(SynchronousTestCase):
    """``store.import_file``: what ``compute-manage image import`` runs."""

    def setUp(self):
        self.state_path = self.mktemp()
        os.makedirs(self.state_path)
        url = migrated_sqlite(self.state_path)
        self.conf = make_conf(self.state_path, database={"connection": url})
        self.source = os.path.join(self.state_path, "disk.img")
        self.data = os.urandom(200000)
        with open(self.source, "wb") as handle:
            handle.write(self.data)

    def test_import(self):
        image = store_mod.import_file(
            self.conf, self.source, name="cirros", disk_format="raw",
            container_format="bare", visibility="public", owner="p1",
            properties={"os_distro": "cirros"})
        self.assertEqual(image["name"], "cirros")
        self.assertEqual(image["size"], len(self.data))
        self.assertEqual(image["checksum"],
                         hashlib.md5(self.data).hexdigest())
        self.assertEqual(image["os_hash_value"],
                         hashlib.sha512(self.data).hexdigest())
        self.assertEqual(image["status"], "active")
        self.assertEqual(image["os_distro"], "cirros")
        stored = os.path.join(self.state_path, "images", image["id"])
        with open(stored, "rb") as handle:
            self.assertEqual(handle.read(), self.data)

    def test_import_with_id_twice(self):
        wanted = str(uuid.uuid4())
        image = store_mod.import_file(self.conf, self.source, name="a",
                                      image_id=wanted)
        self.assertEqual(image["id"], wanted)
        self.assertRaises(exception.ImageExists, store_mod.import_file,
                          self.conf, self.source, name="b",
                          image_id=wanted)
        stored = os.path.join(self.state_path, "images", wanted)
        with open(stored, "rb") as handle:
            self.assertEqual(handle.read(), self.data)

    def test_import_over_cap(self):
        conf = self.conf.with_overrides(glance={"image_size_cap": 10})
        self.assertRaises(exception.ImageSizeLimitExceeded,
                          store_mod.import_file, conf, self.source,
                          name="big")
        self.assertEqual(os.listdir(os.path.join(self.state_path,
                                                 "images")), [])

    def test_manage_command(self):
        from twisted_compute.cmd import manage
        conf_file = os.path.join(self.state_path, "compute.conf")
        with open(conf_file, "w") as handle:
            handle.write(f"[DEFAULT]\nstate_path = {self.state_path}\n"
                         f"[database]\nconnection = "
                         f"{self.conf.database.connection}\n")
        import contextlib
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            status = manage.main(["--config-file", conf_file, "image",
                                  "import", self.source, "--name", "img",
                                  "--disk-format", "raw", "--public",
                                  "--property", "k=v"])
        self.assertEqual(status, 0)
        image_id, name, size = out.getvalue().split()[:3]
        self.assertEqual((name, int(size)), ("img", len(self.data)))
        self.assertIn(hashlib.md5(self.data).hexdigest(), out.getvalue())
        self.assertTrue(os.path.exists(
            os.path.join(self.state_path, "images", image_id)))
