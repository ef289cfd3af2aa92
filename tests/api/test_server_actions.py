"""``POST /servers/{id}/action``."""

from __future__ import annotations

from tests.api.test_servers_base import ServersTestCase, random_uuid


class ActionTests(ServersTestCase):
    def active_server(self, token="user:project"):
        server_id = self.create_server(token=token)
        self.set_state(server_id, vm_state="active", task_state=None,
                       host="compute1", power_state=1)
        return server_id

    def test_unknown_action_is_400(self):
        server_id = self.create_server()
        self.assertFault(self.action(server_id, {"fly": None}), 400,
                         "There is no such action: fly")
        self.assertFault(self.post(f"/v2.1/servers/{server_id}/action",
                                   raw=b"[]", token="user:project",
                                   headers={"Content-Type":
                                            "application/json"}), 400)

    def test_stop_in_building_is_409(self):
        self.use_rpc()
        server_id = self.create_server()
        fault = self.assertFault(self.action(server_id, {"os-stop": None}),
                                 409)
        self.assertEqual(
            fault["message"],
            f"Cannot 'stop' instance {server_id} while it is in vm_state "
            "building")

    def test_power_actions_without_agent_are_501_and_change_nothing(self):
        server_id = self.active_server()
        for body in ({"os-stop": None}, {"pause": None}, {"suspend": None},
                     {"reboot": {"type": "SOFT"}}):
            fault = self.assertFault(self.action(server_id, body), 501)
            self.assertIn("compute agent", fault["message"])
        row = self.row(server_id)
        self.assertEqual((row.vm_state, row.task_state), ("active", None))
        self.assertEqual(self.actions(server_id), ["create"])

    def test_power_actions_set_task_state_record_and_cast(self):
        rpc = self.use_rpc()
        expected = {
            "os-stop": ("active", "powering-off", "stop", "stop_instance"),
            "os-start": ("stopped", "powering-on", "start",
                         "start_instance"),
            "pause": ("active", "pausing", "pause", "pause_instance"),
            "unpause": ("paused", "unpausing", "unpause",
                        "unpause_instance"),
            "suspend": ("active", "suspending", "suspend",
                        "suspend_instance"),
            "resume": ("suspended", "resuming", "resume",
                       "resume_instance"),
        }
        for name, (vm_state, task_state, action, method) in \
                expected.items():
            server_id = self.create_server()
            self.set_state(server_id, vm_state=vm_state, task_state=None,
                           host="compute1")
            response = self.action(server_id, {name: None})
            self.assertEqual(response.code, 202, (name, response))
            self.assertEqual(self.row(server_id).task_state, task_state)
            self.assertEqual(self.actions(server_id)[0], action)
            self.assertEqual(rpc.casts[-1][:2], (method, server_id))
            # a second request while the task runs is a conflict
            self.assertFault(self.action(server_id, {name: None}), 409)

    def test_failed_cast_leaves_no_task_state(self):
        rpc = self.use_rpc()

        def broken(context, instance, **kwargs):
            raise RuntimeError("bus down")
        rpc.stop_instance = broken
        server_id = self.active_server()
        self.assertFault(self.action(server_id, {"os-stop": None}), 500)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertIsNone(self.row(server_id).task_state)

    def test_wrong_state_for_each_action(self):
        self.use_rpc()
        server_id = self.active_server()
        for body, word in (({"os-start": None}, "start"),
                           ({"unpause": None}, "unpause"),
                           ({"resume": None}, "resume")):
            self.assertFault(self.action(server_id, body), 409,
                             f"Cannot '{word}'")

    def test_reboot(self):
        rpc = self.use_rpc()
        server_id = self.active_server()
        self.assertFault(self.action(server_id, {"reboot": {}}), 400, "type")
        self.assertFault(self.action(server_id,
                                     {"reboot": {"type": "WARM"}}), 400)
        self.assertEqual(self.action(server_id,
                                     {"reboot": {"type": "HARD"}}).code, 202)
        self.assertEqual(self.row(server_id).task_state, "rebooting_hard")
        self.assertEqual(rpc.casts[-1][2], {"reboot_type": "HARD"})
        self.assertEqual(self.show(server_id)["status"], "HARD_REBOOT")
        # soft reboot needs an idle, active server
        self.assertFault(self.action(server_id,
                                     {"reboot": {"type": "SOFT"}}), 409)
        stopped = self.create_server()
        self.set_state(stopped, vm_state="stopped", task_state=None,
                       host="compute1")
        self.assertFault(self.action(stopped, {"reboot": {"type": "SOFT"}}),
                         409, "vm_state stopped")
        self.assertEqual(self.action(stopped,
                                     {"reboot": {"type": "hard"}}).code, 202)

    def test_lock_and_unlock(self):
        self.use_rpc()
        server_id = self.active_server()
        self.assertEqual(self.action(server_id, {"lock": None}).code, 202)
        server = self.show(server_id)
        self.assertTrue(server["locked"])
        self.assertIsNone(server["locked_reason"])
        self.assertFault(self.action(server_id, {"os-stop": None}), 409,
                         "locked")
        # an admin may act on a locked server
        self.assertEqual(self.action(server_id, {"os-stop": None},
                                     token="admin:admin").code, 202)
        self.assertEqual(self.action(server_id, {"unlock": None}).code, 202)
        self.assertFalse(self.show(server_id)["locked"])
        self.assertEqual(self.actions(server_id)[:4],
                         ["unlock", "stop", "lock", "create"])

    def test_lock_reason_from_2_73(self):
        server_id = self.create_server()
        body = {"lock": {"locked_reason": "I don't want to work"}}
        # before 2.73 the reason is not part of the API: ignored
        self.assertEqual(self.action(server_id, body, version="2.72").code,
                         202)
        self.assertIsNone(self.show(server_id)["locked_reason"])
        self.assertEqual(self.action(server_id, {"unlock": None}).code, 202)
        self.assertFault(self.action(server_id, {"lock": {
            "locked_reason": ""}}), 400, "locked_reason")
        self.assertEqual(self.action(server_id, body).code, 202)
        server = self.show(server_id)
        self.assertEqual(server["locked_reason"], "I don't want to work")
        self.assertNotIn("locked_reason", self.show(server_id,
                                                    version="2.72"))
        locked = self.get("/v2.1/servers?locked=true&sort_key=locked",
                          token="user:project", version="2.73").json
        self.assertEqual([s["id"] for s in locked["servers"]], [server_id])

    def test_owner_cannot_unlock_an_admin_lock(self):
        server_id = self.create_server()
        self.assertEqual(self.action(server_id, {"lock": None},
                                     token="admin:admin").code, 202)
        self.assertFault(self.action(server_id, {"unlock": None}), 403)
        self.assertEqual(self.action(server_id, {"unlock": None},
                                     token="admin:admin").code, 202)

    def test_reset_state_then_an_action(self):
        rpc = self.use_rpc()
        server_id = self.create_server()
        body = {"os-resetState": {"state": "active"}}
        self.assertFault(self.action(server_id, body), 403)
        self.assertFault(self.action(server_id, {"os-resetState": {
            "state": "paused"}}, token="admin:admin"), 400, "state")
        self.assertEqual(self.action(server_id, body,
                                     token="admin:admin").code, 202)
        server = self.show(server_id)
        self.assertEqual(server["status"], "ACTIVE")
        self.assertIsNone(server["OS-EXT-STS:task_state"])
        # no host: nothing to cast to
        self.assertFault(self.action(server_id, {"pause": None}), 409,
                         "not ready")
        self.set_state(server_id, host="compute1")
        self.assertEqual(self.action(server_id, {"pause": None}).code, 202)
        self.assertEqual([c[0] for c in rpc.casts], ["pause_instance"])
        self.assertEqual(self.actions(server_id),
                         ["pause", "resetState", "create"])
        self.assertEqual(self.action(server_id, {"os-resetState": {
            "state": "error"}}, token="admin:admin").code, 202)
        self.assertEqual(self.show(server_id)["status"], "ERROR")

    def test_console_output(self):
        server_id = self.create_server()
        body = {"os-getConsoleOutput": {"length": 50}}
        self.assertFault(self.action(server_id, body), 409, "not ready")
        self.set_state(server_id, vm_state="active", task_state=None,
                       host="compute1")
        self.assertFault(self.action(server_id, body), 501, "compute agent")
        self.assertFault(self.action(server_id, {"os-getConsoleOutput": {
            "length": "many"}}), 400, "length")
        rpc = self.use_rpc()
        response = self.action(server_id, body)
        self.assertEqual(response.json, {"output": "line 1\nline 2"})
        self.assertEqual(rpc.casts[-1][2], {"tail_length": 50})

    def test_unsupported_actions_are_501_after_validation(self):
        server_id = self.active_server()
        for body in ({"addSecurityGroup": {"name": "web"}},
                     {"removeSecurityGroup": {"name": "web"}},
                     {"injectNetworkInfo": None}, {"resetNetwork": None}):
            name = next(iter(body))
            fault = self.assertFault(self.action(server_id, body), 501)
            self.assertIn(f"'{name}'", fault["message"])
        self.assertFault(self.action(server_id, {"resize": {}}), 400,
                         "flavorRef")
        self.assertFault(self.action(server_id, {"createImage": {}}), 400,
                         "name")
        self.assertFault(self.action(random_uuid(), {"shelve": None}), 404)
        # Without an agent layer, image actions are 501 and leave nothing.
        for body in ({"createImage": {"name": "snap"}},
                     {"createBackup": {"name": "b", "backup_type": "daily",
                                       "rotation": 1}},
                     {"shelve": None}):
            fault = self.assertFault(self.action(server_id, body), 501)
            self.assertIn("compute agent", fault["message"])
        self.assertIsNone(self.row(server_id).task_state)
        self.assertFault(self.action(server_id, {"trigger_crash_dump": None},
                                     version="2.16"), 404)


class EvacuateTests(ServersTestCase):
    """``evacuate``: Nova's checks and bodies per microversion (the
    conductor's part is in tests.conductor.test_move)."""

    def setUp(self):
        super().setUp()
        from twisted_compute.db import models as m
        self.m = m
        self.evacuations = []
        test = self

        from tests.api.test_servers_base import RecordingTaskAPI

        class TaskAPI(RecordingTaskAPI):
            def evacuate_instance(self, context, uuid, **kwargs):
                test.evacuations.append((uuid, kwargs))

        self.services.compute_api.compute_task_api = TaskAPI()
        with self.db.engine.begin() as conn:
            for host, down in (("compute1", False), ("compute2", False)):
                conn.execute(m.services.insert().values(
                    uuid=random_uuid(), host=host, binary="nova-compute",
                    topic="compute", report_count=1, disabled=False,
                    forced_down=down, last_seen_up=m.utcnow(), version=1,
                    created_at=m.utcnow()))
        self.server_id = self.create_server(token="admin:admin")
        self.set_state(self.server_id, vm_state="active", task_state=None,
                       host="compute1", node="compute1", power_state=1)

    def force_down(self, host="compute1", down=True):
        with self.db.engine.begin() as conn:
            conn.execute(self.m.services.update().where(
                self.m.services.c.host == host).values(forced_down=down))

    def evacuate(self, body, version="2.14", token="admin:admin"):
        return self.action(self.server_id, {"evacuate": body}, token=token,
                           version=version)

    def test_host_up_is_400_still_in_use(self):
        self.assertFault(self.evacuate({}), 400,
                         "Compute service of compute1 is still in use.")
        self.assertEqual(self.evacuations, [])
        self.assertEqual(self.row(self.server_id).task_state, None)

    def test_checks(self):
        self.force_down()
        self.assertFault(self.evacuate({}, token="bob:admin"), 403)
        self.assertFault(self.evacuate({"host": "nowhere"}), 404,
                         "Compute host nowhere could not be found")
        self.assertFault(self.evacuate({"host": "compute1"}), 400,
                         "The target host can't be the same one.")
        # onSharedStorage: required until 2.13, refused from 2.14.
        self.assertFault(self.evacuate({}, version="2.13"), 400,
                         "onSharedStorage")
        self.assertFault(self.evacuate({"onSharedStorage": False}), 400)
        self.assertFault(self.evacuate(
            {"onSharedStorage": True, "adminPass": "x"}, version="2.13"),
            400, "admin password can't be changed on existing disk")
        # force: 2.29 to 2.67, and only with a host.
        self.assertFault(self.evacuate({"force": True}, version="2.28"), 400)
        self.assertFault(self.evacuate({"force": True}, version="2.29"), 400,
                         "Can't force to a non-provided destination")
        self.assertFault(self.evacuate({"host": "compute2", "force": True},
                                       version="2.68"), 400)
        self.set_state(self.server_id, vm_state="paused")
        self.assertFault(self.evacuate({}), 409, "vm_state paused")
        self.assertEqual(self.evacuations, [])

    def test_accepted_records_the_migration_and_the_action(self):
        self.force_down()
        response = self.evacuate({"onSharedStorage": False}, version="2.13")
        self.assertEqual(response.code, 200)
        password = response.json["adminPass"]
        self.assertEqual(len(password), 12)
        [(uuid, kwargs)] = self.evacuations
        self.assertEqual((uuid, kwargs["host"], kwargs["admin_password"],
                          kwargs["target_state"]),
                         (self.server_id, None, password, None))
        row = self.row(self.server_id)
        self.assertEqual(row.task_state, "rebuilding")
        self.assertIn("evacuate", self.actions(self.server_id))
        migrations = self.get("/v2.1/os-migrations", token="admin:admin",
                              version="2.23").json["migrations"]
        self.assertEqual([(x["migration_type"], x["status"],
                           x["source_compute"]) for x in migrations],
                         [("evacuation", "accepted", "compute1")])
        # Busy now: a second evacuate is 409.
        self.assertFault(self.evacuate({}), 409)

    def test_no_password_from_2_14_and_stopped_from_2_95(self):
        self.force_down()
        response = self.evacuate({"host": "compute2", "adminPass": "pw"},
                                 version="2.95")
        self.assertEqual((response.code, response.body), (200, b""))
        [(uuid, kwargs)] = self.evacuations
        self.assertEqual((kwargs["host"], kwargs["force"],
                          kwargs["admin_password"], kwargs["target_state"]),
                         ("compute2", False, "pw", "stopped"))

    def test_stale_heartbeat_counts_as_down(self):
        import datetime
        with self.db.engine.begin() as conn:
            conn.execute(self.m.services.update().where(
                self.m.services.c.host == "compute1").values(
                last_seen_up=self.m.utcnow() - datetime.timedelta(
                    hours=1)))
        self.assertEqual(self.evacuate({}).code, 200)
