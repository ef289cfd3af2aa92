"""The Compute API's image proxy: ``/images`` and its metadata, up to
2.35, on the image API's records and rules."""

from __future__ import annotations

import datetime
import os

from tests.base import APITestCase, SyncThreadPool
from twisted_compute.api.image.store import ImageStore, image_dir
from twisted_compute.db import models as m

PUBLIC = "70a599e0-31e7-49b7-b260-868f441e862b"
MINE = "11111111-2222-3333-4444-555555555555"
THEIRS = "22222222-3333-4444-5555-666666666666"
SNAPSHOT = "33333333-4444-5555-6666-777777777777"
SERVER = "44444444-5555-6666-7777-888888888888"


class ImageProxyTests(APITestCase):
    def setUp(self):
        super().setUp()
        self.services.image_store = ImageStore(
            self.conf, self.reactor, threadpool=SyncThreadPool())
        os.makedirs(image_dir(self.conf), exist_ok=True)
        start = datetime.datetime(2026, 1, 1)
        rows = [
            (PUBLIC, "public-img", "active", "public", "admin",
             {"architecture": "x86_64", "auto_disk_config": "True"}, 1, 128),
            (MINE, "mine", "queued", "private", "p1", {}, 0, 0),
            (THEIRS, "theirs", "active", "private", "p2", {}, 0, 0),
            (SNAPSHOT, "snap", "saving", "private", "p1",
             {"instance_uuid": SERVER, "image_type": "snapshot"}, 5, 512),
        ]
        with self.db.engine.begin() as conn:
            for i, (image_id, name, status, visibility, owner, props,
                    min_disk, min_ram) in enumerate(rows):
                when = start + datetime.timedelta(hours=i)
                location = f"{image_id}.img"
                with open(os.path.join(image_dir(self.conf), location),
                          "wb") as handle:
                    handle.write(b"bits")
                conn.execute(m.images.insert().values(
                    id=image_id, name=name, status=status,
                    visibility=visibility, owner=owner, properties=props,
                    tags=[], disk_format="qcow2", container_format="bare",
                    size=4, min_disk=min_disk, min_ram=min_ram,
                    location=location, created_at=when, updated_at=when))

    def ids(self, response):
        self.assertEqual(response.code, 200, response)
        return [i["id"] for i in response.json["images"]]

    def test_list_shows_what_the_project_may_see(self):
        listed = self.ids(self.get("/v2.1/images", token="u:p1"))
        self.assertEqual(listed, [SNAPSHOT, MINE, PUBLIC])
        self.assertNotIn(THEIRS, self.ids(self.get("/v2.1/images/detail",
                                                   token="u:p1")))
        self.assertIn(THEIRS, self.ids(self.get("/v2.1/images",
                                                token="admin:admin")))
        first = self.get("/v2.1/images", token="u:p1").json["images"][0]
        self.assertEqual(set(first), {"id", "name", "links"})
        rels = [(link["rel"], link["href"]) for link in first["links"]]
        self.assertEqual(rels[0], ("self", "http://localhost:8774/v2.1/"
                                   f"images/{SNAPSHOT}"))
        self.assertEqual(rels[1], ("bookmark",
                                   f"http://localhost:8774/images/{SNAPSHOT}"))
        self.assertEqual(rels[2], ("alternate",
                                   f"http://localhost:9292/images/{SNAPSHOT}"))

    def test_detail_and_show_shapes(self):
        shown = self.get(f"/v2.1/images/{PUBLIC}", token="u:p1").json["image"]
        self.assertEqual(set(shown), {
            "id", "name", "links", "minRam", "minDisk", "metadata",
            "created", "updated", "status", "progress",
            "OS-EXT-IMG-SIZE:size", "OS-DCF:diskConfig"})
        self.assertEqual(shown["status"], "ACTIVE")
        self.assertEqual(shown["progress"], 100)
        self.assertEqual(shown["OS-DCF:diskConfig"], "AUTO")
        self.assertEqual(shown["minRam"], 128)
        self.assertEqual(shown["created"], "2026-01-01T00:00:00Z")
        self.assertEqual(shown["metadata"]["architecture"], "x86_64")
        snap = self.get(f"/v2.1/images/{SNAPSHOT}",
                        token="u:p1").json["image"]
        self.assertEqual((snap["status"], snap["progress"]), ("SAVING", 50))
        self.assertEqual(snap["server"]["id"], SERVER)
        self.assertNotIn("OS-DCF:diskConfig", snap)
        queued = self.get(f"/v2.1/images/{MINE}", token="u:p1").json["image"]
        self.assertEqual((queued["status"], queued["progress"]),
                         ("SAVING", 25))

    def test_filters_and_paging(self):
        def listed(query):
            return self.ids(self.get("/v2.1/images/detail?" + query,
                                     token="u:p1"))
        self.assertEqual(listed("name=mine"), [MINE])
        self.assertEqual(listed("status=SAVING"), [SNAPSHOT, MINE])
        self.assertEqual(listed("status=ACTIVE"), [PUBLIC])
        self.assertEqual(listed(f"server={SERVER}"), [SNAPSHOT])
        self.assertEqual(listed("type=snapshot"), [SNAPSHOT])
        self.assertEqual(listed("minDisk=1"), [SNAPSHOT, PUBLIC])
        self.assertEqual(listed("minRam=256"), [SNAPSHOT])
        self.assertEqual(listed("changes-since=2026-01-01T01:30:00Z"),
                         [SNAPSHOT])
        page = self.get("/v2.1/images?limit=2", token="u:p1").json
        self.assertEqual([i["id"] for i in page["images"]], [SNAPSHOT, MINE])
        self.assertIn(f"marker={MINE}", page["images_links"][0]["href"])
        self.assertEqual(listed(f"marker={MINE}"), [PUBLIC])
        self.assertFault(self.get("/v2.1/images?marker=nope", token="u:p1"),
                         400, "marker")
        self.assertFault(self.get("/v2.1/images?minRam=x", token="u:p1"),
                         400, "minRam")

    def test_another_projects_image_is_invisible(self):
        for path in (f"/v2.1/images/{THEIRS}",
                     f"/v2.1/images/{THEIRS}/metadata",
                     f"/v2.1/images/{THEIRS}/metadata/any"):
            self.assertFault(self.get(path, token="u:p1"), 404)
        self.assertFault(self.delete(f"/v2.1/images/{THEIRS}", token="u:p1"),
                         404)
        self.assertFault(self.post(f"/v2.1/images/{THEIRS}/metadata",
                                   {"metadata": {"a": "b"}}, token="u:p1"),
                         404)
        self.assertEqual(self.get(f"/v2.1/images/{THEIRS}",
                                  token="u:p2").code, 200)

    def test_delete(self):
        # A public image of another owner is visible but not the
        # caller's to delete.
        self.assertFault(self.delete(f"/v2.1/images/{PUBLIC}", token="u:p1"),
                         403)
        path = os.path.join(image_dir(self.conf), f"{MINE}.img")
        self.assertTrue(os.path.exists(path))
        self.assertEqual(self.delete(f"/v2.1/images/{MINE}",
                                     token="u:p1").code, 204)
        self.assertFault(self.get(f"/v2.1/images/{MINE}", token="u:p1"), 404)
        self.assertFalse(os.path.exists(path))
        # The image API agrees: it is gone.
        with self.db.engine.connect() as conn:
            self.assertIsNone(conn.execute(m.images.select().where(
                m.images.c.id == MINE)).first())

    def test_metadata(self):
        base = f"/v2.1/images/{PUBLIC}/metadata"
        self.assertEqual(self.get(base, token="u:p1").json["metadata"],
                         {"architecture": "x86_64",
                          "auto_disk_config": "True"})
        self.assertEqual(self.get(base + "/architecture",
                                  token="u:p1").json,
                         {"meta": {"architecture": "x86_64"}})
        self.assertFault(self.get(base + "/nope", token="u:p1"), 404)
        # Only the owner (or an admin) changes it.
        self.assertFault(self.post(base, {"metadata": {"Label": "x"}},
                                   token="u:p1"), 403)
        merged = self.post(base, {"metadata": {"Label": "Updated",
                                               "architecture": "arm"}},
                           token="admin:admin")
        self.assertEqual(merged.code, 200, merged)
        self.assertEqual(merged.json["metadata"], {
            "Label": "Updated", "architecture": "arm",
            "auto_disk_config": "True"})
        one = self.put(base + "/auto_disk_config",
                       {"meta": {"auto_disk_config": "False"}},
                       token="admin:admin")
        self.assertEqual(one.json, {"meta": {"auto_disk_config": "False"}})
        self.assertEqual(self.get(f"/v2.1/images/{PUBLIC}", token="u:p1")
                         .json["image"]["OS-DCF:diskConfig"], "MANUAL")
        self.assertFault(self.put(base + "/other",
                                  {"meta": {"auto_disk_config": "x"}},
                                  token="admin:admin"), 400, "mismatch")
        replaced = self.put(base, {"metadata": {"only": "this"}},
                            token="admin:admin")
        self.assertEqual(replaced.json["metadata"], {"only": "this"})
        self.assertEqual(self.delete(base + "/only",
                                     token="admin:admin").code, 204)
        self.assertEqual(self.get(base, token="u:p1").json["metadata"], {})
        self.assertFault(self.delete(base + "/only", token="admin:admin"),
                         404)

    def test_metadata_quota(self):
        too_many = {f"k{i}": "v" for i in range(129)}
        self.assertFault(self.put(f"/v2.1/images/{MINE}/metadata",
                                  {"metadata": too_many}, token="u:p1"),
                         403, "metadata")

    def test_gone_after_2_35(self):
        for path in ("/v2.1/images", "/v2.1/images/detail",
                     f"/v2.1/images/{PUBLIC}",
                     f"/v2.1/images/{PUBLIC}/metadata"):
            self.assertEqual(self.get(path, token="u:p1",
                                      version="2.35").code, 200, path)
            self.assertFault(self.get(path, token="u:p1", version="2.36"),
                             404)
        self.assertFault(self.delete(f"/v2.1/images/{MINE}", token="u:p1",
                                     version="2.36"), 404)
        self.assertEqual(self.get(f"/v2.1/images/{MINE}", token="u:p1",
                                  version="2.36").code, 404)
