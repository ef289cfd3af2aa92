"""Instance queries on the real database."""

from __future__ import annotations

import datetime
import uuid

from tests.base import DBTestCase, make_conf, on_backends
from twisted_compute import exception
from twisted_compute.compute import api as compute_api
from twisted_compute.db import actions as actions_db
from twisted_compute.db import instances as db
from twisted_compute.db import models as m


def _values(**extra):
    values = {
        "user_id": "u", "project_id": "p", "vm_state": "building",
        "task_state": "scheduling", "memory_mb": 512, "vcpus": 1,
        "root_gb": 1, "flavor": {"flavorid": "1"}, "addresses": {},
        "security_groups": [], "system_metadata": {}, "request_spec": {},
        "image_ref": "img",
    }
    values.update(extra)
    return values


class InstanceQueriesTests(DBTestCase):
    def setUp(self):
        super().setUp()
        self.conf = make_conf(self.state_path)

    def db_error(self, kind, thd, *args, **kwargs):
        """The exception ``thd`` fails with (it must be ``kind``)."""
        return self.failureResultOf(self.db.run(thd, *args, **kwargs),
                                    kind).value

    def create(self, count=1, name="s", project="p", metadata=None,
               tags=(), **extra):
        uuids = [str(uuid.uuid4()) for _ in range(count)]
        return self.run_db(
            db.create, self.conf, project_id=project, user_id="u",
            base=_values(project_id=project, **extra), min_count=1,
            max_count=count, metadata=metadata or {}, tags=list(tags),
            key_name=None, group_uuid=None, uuids=uuids,
            hostnames=lambda i: f"{name}-{i}",
            names=lambda i: f"{name}-{i}" if count > 1 else name,
            action={"request_id": "req-1", "user_id": "u",
                    "project_id": project})

    def test_create_and_get_with_extras(self):
        [instance] = self.create(metadata={"k": "v"}, tags=["b", "a"])
        got = self.run_db(db.get, instance.uuid, "p")
        self.assertEqual(got.metadata, {"k": "v"})
        self.assertEqual(got.tags, ["a", "b"])
        self.assertEqual(got.vm_state, "building")
        self.assertIsNotNone(got.updated_at)
        self.db_error(exception.InstanceNotFound, db.get,
                          instance.uuid, "other")
        actions = self.run_db(actions_db.get_actions, instance.uuid)
        self.assertEqual([a.action for a in actions], ["create"])

    def test_lists_with_the_spec_pieces(self):
        # What server details show from 2.96 and 2.100, read in SQL.
        [pinned] = self.create(name="pinned", request_spec={
            "availability_zone": "az1", "flavor": {"memory_mb": 512},
            "scheduler_hints": {"same_host": ["x"], "query": "[\"=\", 1]"}})
        [free] = self.create(name="free", request_spec={
            "availability_zone": None, "scheduler_hints": {}})
        [bare] = self.create(name="bare", request_spec={})
        for extras in (True, False):
            got = {i.uuid: i for i in self.run_db(
                db.get_all, {"project_id": "p"}, with_extras=extras,
                with_spec=True)}
            self.assertEqual(got[pinned.uuid].request_spec, {
                "availability_zone": "az1", "scheduler_hints": {
                    "same_host": ["x"], "query": "[\"=\", 1]"}})
            self.assertEqual(got[free.uuid].request_spec,
                             {"scheduler_hints": {}})
            self.assertEqual(got[bare.uuid].request_spec, {})
            self.assertEqual(got[pinned.uuid].display_name, "pinned")
        # without: no spec at all (the lists' default)
        plain = self.run_db(db.get_all, {"project_id": "p"})
        self.assertEqual({i.uuid: i.request_spec for i in plain},
                         {pinned.uuid: {}, free.uuid: {}, bare.uuid: {}})

    def test_set_pinned_zone(self):
        [instance] = self.create(availability_zone="az1", request_spec={
            "availability_zone": "az1", "flavor": {"memory_mb": 512}})
        unpinned = self.run_db(db.set_pinned_zone, instance.uuid, None, "p")
        self.assertIsNone(unpinned.request_spec["availability_zone"])
        self.assertEqual(unpinned.request_spec["flavor"], {"memory_mb": 512})
        self.db_error(exception.PinnedZoneConflict, db.set_pinned_zone,
                      instance.uuid, "az2", "p")
        self.db_error(exception.InstanceNotFound, db.set_pinned_zone,
                      instance.uuid, None, "other")
        pinned = self.run_db(db.set_pinned_zone, instance.uuid, "az1", "p")
        self.assertEqual(pinned.request_spec["availability_zone"], "az1")
        self.db_error(exception.PinnedZoneConflict, db.set_pinned_zone,
                      instance.uuid, "az2", None)

    def test_sort_with_nulls_and_marker(self):
        instances = self.create(count=4)
        hosts = ["h2", None, "h1", None]
        for instance, host in zip(instances, hosts):
            self.run_db(db.update, instance.uuid, {"host": host})
        ordered = self.run_db(db.get_all, {"project_id": "p"}, ["host"],
                              ["asc"])
        self.assertEqual([i.host for i in ordered], [None, None, "h1", "h2"])
        # walking with a marker visits every row once
        seen = []
        marker = None
        while True:
            page = self.run_db(db.get_all, {"project_id": "p"}, ["host"],
                               ["asc"], 1, marker)
            if not page:
                break
            seen.append(page[0].uuid)
            marker = page[0].uuid
        self.assertEqual(seen, [i.uuid for i in ordered])

    def test_filters(self):
        [a] = self.create(name="alpha", tags=["x"])
        [b] = self.create(name="beta", project="q")
        self.assertEqual([i.uuid for i in self.run_db(
            db.get_all, {"name": "^al"})], [a.uuid])
        self.assertEqual([i.uuid for i in self.run_db(
            db.get_all, {"project_id": "q"})], [b.uuid])
        self.assertEqual([i.uuid for i in self.run_db(
            db.get_all, {"not_tags_any": ["x"]})], [b.uuid])
        later = m.utcnow() + datetime.timedelta(hours=1)
        self.assertEqual(self.run_db(db.get_all, {"changes_since": later}),
                         [])
        self.db_error(exception.InvalidMarker, db.get_all,
                          {}, ["created_at"], ["desc"], None, "nope")

    def test_plain_lists_take_their_values_each_time(self):
        # Lists filtered by project and deleted state only run pre-built
        # statements: the project, the limit, the deleted state and the
        # sort of one call must not stick to the next.
        p = self.create(count=3, name="p")
        [q] = self.create(name="q", project="q")
        self.run_db(db.soft_delete, p[0].uuid, project_id="p")

        def uuids(filters, limit=None, keys=("created_at",),
                  dirs=("desc",)):
            return [i.uuid for i in self.run_db(
                db.get_all, filters, list(keys), list(dirs), limit)]

        live_p = [i.uuid for i in sorted(p[1:], key=lambda i: i.id,
                                         reverse=True)]
        self.assertEqual(uuids({"project_id": "p", "deleted": False}),
                         live_p)
        self.assertEqual(uuids({"project_id": "q", "deleted": False}),
                         [q.uuid])
        self.assertEqual(uuids({"project_id": "p", "deleted": False}, 1),
                         live_p[:1])
        self.assertEqual(uuids({"project_id": "p", "deleted": False}, 2),
                         live_p)
        self.assertEqual(uuids({"project_id": "p", "deleted": True}),
                         [p[0].uuid])
        self.assertEqual(len(uuids({"project_id": "p"})), 3)
        self.assertEqual(uuids({"project_id": "nobody"}), [])
        self.assertEqual(sorted(uuids({"deleted": False})),
                         sorted(live_p + [q.uuid]))
        self.assertEqual(uuids({"project_id": "p", "deleted": False},
                               keys=("display_name",), dirs=("asc",)),
                         sorted(live_p, key=lambda u: next(
                             i.display_name for i in p if i.uuid == u)))
        self.assertEqual(
            self.run_db(db.get_all, {"project_id": "p", "deleted": False},
                        ["created_at"], ["desc"], None, None,
                        with_extras=False)[0].uuid, live_p[0])

    def test_transition_checks_and_records(self):
        [instance] = self.create()
        check = compute_api.check_state("stop", ("active",))
        error = self.db_error(
            exception.InstanceInvalidState, db.transition,
            instance.uuid, project_id="p", check=check,
            values={"task_state": "powering-off"}, action="stop",
            action_values={"request_id": "r", "user_id": "u",
                           "project_id": "p"})
        self.assertIn("vm_state building", str(error))
        self.run_db(db.update, instance.uuid, {"vm_state": "active",
                                               "task_state": None})
        updated = self.run_db(
            db.transition, instance.uuid, project_id="p", check=check,
            values={"task_state": "powering-off"}, action="stop",
            action_values={"request_id": "r", "user_id": "u",
                           "project_id": "p"})
        self.assertEqual(updated.task_state, "powering-off")
        self.assertEqual([a.action for a in self.run_db(
            actions_db.get_actions, instance.uuid)], ["stop", "create"])

    def test_soft_delete(self):
        [instance] = self.create(tags=["t"])
        deleted = self.run_db(db.soft_delete, instance.uuid, project_id="p")
        self.assertEqual(deleted.deleted, deleted.id)
        self.assertEqual(deleted.vm_state, "deleted")
        self.assertEqual(deleted.tags, [])
        self.db_error(exception.InstanceNotFound, db.get,
                          instance.uuid)
        self.assertEqual(self.run_db(db.get_all, {"deleted": True})[0].uuid,
                         instance.uuid)

    def test_quota_headroom_in_create(self):
        conf = self.conf.with_overrides(quota={"instances": 2})
        uuids = [str(uuid.uuid4()) for _ in range(5)]
        created = self.run_db(
            db.create, conf, project_id="p", user_id="u", base=_values(),
            min_count=1, max_count=5, metadata={}, tags=[], key_name=None,
            group_uuid=None, uuids=uuids, hostnames=str, names=str,
            action={"request_id": "r", "user_id": "u", "project_id": "p"})
        self.assertEqual(len(created), 2)
        self.db_error(exception.TooManyInstances, db.create,
                          conf, project_id="p", user_id="u",
                          base=_values(), min_count=1, max_count=1,
                          metadata={}, tags=[], key_name=None,
                          group_uuid=None, uuids=[str(uuid.uuid4())],
                          hostnames=str, names=str,
                          action={"request_id": "r", "user_id": "u",
                                  "project_id": "p"})


class BootCreateTests(DBTestCase):
    """``db.instances.create``: what a boot reads and writes in its one
    transaction."""

    def setUp(self):
        super().setUp()
        self.conf = make_conf(self.state_path)
        for d in (self.db.flavors.create({
                      "flavorid": "f1", "name": "tiny", "memory_mb": 512,
                      "vcpus": 1, "root_gb": 1}),
                  self.db.images.create({
                      "id": "img-1", "name": "cirros", "status": "active",
                      "visibility": "private", "owner": "p"}),
                  self.db.aggregates.create("agg", "z1")):
            self.successResultOf(d)
        self.seen = []

    def prepare(self, flavor, image, zones):
        self.seen.append((flavor and flavor.flavorid, image and image.id,
                          zones))
        return _values()

    def boot(self, flavorid="f1", image_id="img-1", scope="p", zone=None,
             key_name=None, group_uuid=None):
        return self.db.instances.create(
            self.conf, flavorid=flavorid, image_id=image_id, scope=scope,
            zone=zone, prepare=self.prepare, project_id="p", user_id="u",
            min_count=1, max_count=1, metadata={}, tags=[],
            key_name=key_name, group_uuid=group_uuid,
            uuids=[str(uuid.uuid4())], hostnames=str, names=str,
            action={"request_id": "r", "user_id": "u", "project_id": "p"})

    def test_prepare_gets_flavor_image_and_zones(self):
        [instance] = self.successResultOf(self.boot(zone="z1"))
        self.assertEqual(self.seen, [("f1", "img-1", {"nova", "z1"})])
        self.assertEqual(self.run_db(db.get, instance.uuid).uuid,
                         instance.uuid)

    def test_missing_or_hidden_flavor_and_image_are_none(self):
        self.successResultOf(self.boot(flavorid="nope", image_id=None))
        self.successResultOf(self.boot(scope="other"))
        # Zones are read only when one is asked for.
        self.assertEqual(self.seen, [(None, None, None),
                                     ("f1", None, None)])

    def test_what_prepare_raises_writes_nothing(self):
        def refuse(flavor, image, zones):
            raise exception.InvalidFlavorRef()
        self.prepare = refuse
        self.failureResultOf(self.boot(), exception.InvalidFlavorRef)
        self.assertEqual(self.run_db(db.get_all), [])

    def test_unknown_key_pair_is_a_bad_request(self):
        error = self.failureResultOf(self.boot(key_name="nope"),
                                     exception.InvalidInput).value
        self.assertEqual(error.code, 400)
        self.assertIn("key pair nope not found for user u", str(error))

    def test_key_pair_and_group_go_with_the_instance(self):
        self.successResultOf(self.db.keypairs.create(
            self.conf, "p", "u", "k1", "ssh-rsa AAA", "fp", "ssh"))
        group = self.successResultOf(self.db.server_groups.create(
            self.conf, {"name": "g", "project_id": "p", "user_id": "u",
                        "policy": "anti-affinity",
                        "rules": {"max_server_per_host": 1}}))
        [instance] = self.successResultOf(self.boot(
            key_name="k1", group_uuid=group.uuid))
        stored = self.run_db(db.get, instance.uuid)
        self.assertEqual((stored.key_name, stored.key_data),
                         ("k1", "ssh-rsa AAA"))
        self.assertEqual(stored.request_spec["group"], {
            "uuid": group.uuid, "policy": "anti-affinity",
            "rules": {"max_server_per_host": 1}})
        self.assertEqual(self.successResultOf(
            self.db.server_groups.uuids_of_instance(instance.uuid)),
            [group.uuid])

    def test_group_member_quota(self):
        conf = self.conf.with_overrides(quota={"server_group_members": 1})
        self.conf = conf
        group = self.successResultOf(self.db.server_groups.create(
            conf, {"name": "g", "project_id": "p", "user_id": "u",
                   "policy": "affinity"}))
        self.successResultOf(self.boot(group_uuid=group.uuid))
        self.failureResultOf(self.boot(group_uuid=group.uuid),
                             exception.OverQuota)

    def test_boot_meta_of_an_image(self):
        meta = self.successResultOf(self.db.images.boot_meta("img-1"))
        self.assertEqual((meta["id"], meta["name"], meta["status"],
                          meta["properties"]),
                         ("img-1", "cirros", "active", {}))
        self.assertIsNone(self.successResultOf(
            self.db.images.boot_meta("nope")))
        self.assertIsNone(self.successResultOf(
            self.db.images.boot_meta(None)))

    def test_unknown_group(self):
        self.failureResultOf(self.boot(group_uuid="nope"),
                             exception.InstanceGroupNotFound)


on_backends(InstanceQueriesTests, "postgresql", "mariadb",
            namespace=globals())
on_backends(BootCreateTests, "postgresql", "mariadb", namespace=globals())
