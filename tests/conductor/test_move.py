"""Resize, cold migration, confirm and revert end to end on the fake
driver and the local bus; usage stays consistent at every injected
failure."""

from __future__ import annotations

from tests.conductor.move_stack import MoveStackTestCase
from twisted_compute import exception
from twisted_compute.db import actions as actions_db


class ResizeFlowTests(MoveStackTestCase):

    def resize(self, uuid, flavorid="big"):
        return self.call(self.api.resize(self.ctx, uuid, flavorid))

    def test_resize_and_confirm(self):
        uuid = self.boot()
        self.resize(uuid)
        instance = self.get(uuid)
        self.assertEqual((instance.vm_state, instance.task_state),
                         ("resized", None))
        self.assertNotEqual(instance.host, "h1")
        self.assertEqual(instance.flavor["flavorid"], "big")
        self.assertEqual(instance.vcpus, 2)
        migration = self.migration(uuid)
        self.assertEqual(migration.status, "finished")
        self.assertEqual(migration.migration_type, "resize")
        dest = instance.host
        # Both hosts hold usage until the confirm.
        self.assertUsageConsistent("verify_resize")
        self.assertEqual(self.tracked_usage()["h1"], (1, 512, 2))
        self.assertEqual(self.tracked_usage()[dest], (2, 1024, 4))
        self.assertIn(uuid, self.drivers["h1"].guests)
        [resize] = [a for a in self.run_db(actions_db.get_actions, uuid)
                    if a.action == "resize"]
        resize = self.run_db(actions_db.get_action, uuid, resize.request_id)
        self.assertEqual(
            sorted(e.event for e in resize.events),
            ["compute_finish_resize", "compute_prep_resize",
             "compute_resize_instance", "conductor_migrate_server"])
        self.assertTrue(all(e.result == "Success" for e in resize.events))
        self.call(self.api.confirm_resize(self.ctx, uuid))
        instance = self.get(uuid)
        self.assertEqual(instance.vm_state, "active")
        self.assertIsNone(instance.migration_context)
        self.assertEqual(self.migration(uuid).status, "confirmed")
        self.assertNotIn(uuid, self.drivers["h1"].guests)
        self.assertEqual(self.tracked_usage()["h1"], (0, 0, 0))
        self.assertUsageConsistent("confirmed")

    def test_revert_gives_everything_back(self):
        uuid = self.boot()
        self.resize(uuid)
        dest = self.get(uuid).host
        self.call(self.api.revert_resize(self.ctx, uuid))
        instance = self.get(uuid)
        self.assertEqual((instance.vm_state, instance.task_state,
                          instance.host), ("active", None, "h1"))
        self.assertEqual(instance.flavor["flavorid"], "small")
        self.assertEqual(instance.vcpus, 1)
        self.assertEqual(self.migration(uuid).status, "reverted")
        self.assertNotIn(uuid, self.drivers[dest].guests)
        self.assertEqual(self.drivers["h1"].guests[uuid].state, 1)
        self.assertEqual(self.tracked_usage()[dest], (0, 0, 0))
        self.assertUsageConsistent("reverted")

    def test_cold_migrate_keeps_the_flavor(self):
        uuid = self.boot()
        self.call(self.api.resize(self.ctx, uuid, None, host="h3"))
        instance = self.get(uuid)
        self.assertEqual((instance.vm_state, instance.host),
                         ("resized", "h3"))
        self.assertEqual(self.migration(uuid).migration_type, "migration")
        self.assertEqual(instance.flavor["flavorid"], "small")
        self.assertUsageConsistent("migrated")

    def test_stopped_server_stays_stopped(self):
        uuid = self.boot(vm_state="stopped")
        self.resize(uuid)
        self.assertEqual(self.get(uuid).vm_state, "resized")
        self.call(self.api.confirm_resize(self.ctx, uuid))
        self.assertEqual(self.get(uuid).vm_state, "stopped")

    def test_refusals(self):
        uuid = self.boot()
        self.failureResultOf(self.defer(self.api.resize(self.ctx, uuid, "small")),
                             exception.CannotResizeToSameFlavor)
        self.failureResultOf(self.defer(self.api.resize(self.ctx, uuid, "tinydisk")),
                             exception.CannotResizeDisk)
        self.failureResultOf(self.defer(self.api.resize(self.ctx, uuid, "nope")),
                             exception.Invalid)
        self.failureResultOf(self.defer(self.api.confirm_resize(self.ctx, uuid)),
                             exception.InstanceInvalidState)
        self.resize(uuid)
        # In VERIFY_RESIZE: no second resize.
        self.failureResultOf(self.defer(self.api.resize(self.ctx, uuid, "big")),
                             exception.InstanceInvalidState)

    def test_no_room_anywhere_leaves_it_active(self):
        uuid = self.boot()
        self.resize(uuid, "huge")
        instance = self.get(uuid)
        self.assertEqual((instance.vm_state, instance.task_state,
                          instance.host), ("active", None, "h1"))
        self.assertIsNone(instance.migration_context)
        self.assertIsNotNone(instance.fault)
        self.assertUsageConsistent("no valid host")

    def test_same_host_when_allowed(self):
        self.conf = self.conf.with_overrides(
            DEFAULT={"allow_resize_to_same_host": True})
        self.conductor.conf = self.conf
        for host in ("h2", "h3"):
            self.drivers[host].fail_move_steps = {"prep_resize"}
        uuid = self.boot()
        self.resize(uuid)
        instance = self.get(uuid)
        self.assertEqual((instance.vm_state, instance.host),
                         ("resized", "h1"))
        self.assertEqual(self.tracked_usage()["h1"], (3, 1536, 6))
        self.assertUsageConsistent("same host")
        self.call(self.api.revert_resize(self.ctx, uuid))
        self.assertEqual(self.tracked_usage()["h1"], (1, 512, 2))
        self.assertEqual(self.drivers["h1"].guests[uuid].vcpus, 1)
        self.assertUsageConsistent("same host reverted")


class InjectedFailureTests(MoveStackTestCase):
    """A failure at every step boundary: usage always adds up, and the
    instance is back where it was (ERROR only when the rollback failed
    too)."""

    def run_resize(self, uuid):
        self.call(self.api.resize(self.ctx, uuid, "big"), seconds=100)

    def fail_everywhere(self, step, hosts=("h1", "h2", "h3")):
        for host in hosts:
            self.drivers[host].fail_move_steps.add(step)

    def test_prep_fails_on_the_first_destination_then_reschedules(self):
        uuid = self.boot()
        self.drivers["h2"].fail_move_steps.add("prep_resize")
        self.run_resize(uuid)
        instance = self.get(uuid)
        self.assertEqual((instance.vm_state, instance.host),
                         ("resized", "h3"))
        self.assertUsageConsistent("rescheduled")

    def test_each_step_fails(self):
        for step in ("prep_resize", "migrate_disk_and_power_off",
                     "finish_migration"):
            uuid = self.boot()
            self.fail_everywhere(step)
            self.run_resize(uuid)
            instance = self.get(uuid)
            self.assertEqual((instance.vm_state, instance.task_state,
                              instance.host), ("active", None, "h1"), step)
            self.assertIsNone(instance.migration_context, step)
            self.assertEqual(self.migration(uuid).status, "error", step)
            self.assertIsNotNone(instance.fault, step)
            self.assertEqual(self.drivers["h1"].guests[uuid].state, 1, step)
            self.assertUsageConsistent(step)
            for driver in self.drivers.values():
                driver.fail_move_steps.clear()

    def test_each_step_times_out(self):
        for step in ("prep_resize", "migrate_disk_and_power_off",
                     "finish_migration"):
            uuid = self.boot()
            for driver in self.drivers.values():
                driver.move_step_delays = {step: 45}
            self.run_resize(uuid)
            instance = self.get(uuid)
            self.assertEqual((instance.task_state, instance.host),
                             (None, "h1"), step)
            self.assertEqual(self.migration(uuid).status, "error", step)
            # A step that finished late undid itself: no guest that no
            # one counts is left on a destination.
            for host in ("h2", "h3"):
                self.assertNotIn(uuid, self.drivers[host].guests, step)
            self.assertUsageConsistent(step + " timeout")
            for driver in self.drivers.values():
                driver.move_step_delays = {}

    def test_rollback_fails_too_error_with_fault(self):
        uuid = self.boot()
        self.fail_everywhere("finish_migration")
        self.fail_everywhere("finish_revert_migration")
        self.run_resize(uuid)
        instance = self.get(uuid)
        self.assertEqual((instance.vm_state, instance.host), ("error", "h1"))
        self.assertIsNotNone(instance.fault)
        self.assertIsNone(instance.migration_context)
        self.assertUsageConsistent("unrecoverable")

    def test_confirm_fails_and_can_be_retried(self):
        uuid = self.boot()
        self.run_resize(uuid)
        self.drivers["h1"].fail_move_steps.add("confirm_migration")
        self.call(self.api.confirm_resize(self.ctx, uuid))
        instance = self.get(uuid)
        self.assertEqual(instance.vm_state, "resized")
        self.assertEqual(self.migration(uuid).status, "finished")
        self.assertUsageConsistent("confirm failed")
        self.drivers["h1"].fail_move_steps.clear()
        self.call(self.api.confirm_resize(self.ctx, uuid))
        self.assertEqual(self.get(uuid).vm_state, "active")
        self.assertUsageConsistent("confirm retried")

    def test_revert_steps_fail(self):
        for step in ("revert_migration", "finish_revert_migration"):
            uuid = self.boot()
            self.run_resize(uuid)
            self.fail_everywhere(step)
            self.call(self.api.revert_resize(self.ctx, uuid))
            instance = self.get(uuid)
            self.assertEqual((instance.vm_state, instance.host),
                             ("error", "h1"), step)
            self.assertIsNone(instance.migration_context)
            self.assertUsageConsistent(step)
            for driver in self.drivers.values():
                driver.fail_move_steps.clear()

    def test_auto_confirm_after_the_window(self):
        self.conf = self.conf.with_overrides(
            DEFAULT={"resize_confirm_window": 60})
        self.conductor.conf = self.conf
        uuid = self.boot()
        self.run_resize(uuid)
        d = self.defer(self.conductor.confirm_resizes())
        self.settle()
        self.assertEqual(self.successResultOf(d), 0)
        self.clock.advance(61)
        # The DB's timestamps are wall-clock: look 61 s ahead of them.
        import datetime
        real_now = self.conductor._now
        self.conductor._now = lambda: datetime.datetime.utcnow() + \
            datetime.timedelta(seconds=61)
        d = self.defer(self.conductor.confirm_resizes())
        self.settle()
        self.assertEqual(self.successResultOf(d), 1)
        self.conductor._now = real_now
        self.assertEqual(self.get(uuid).vm_state, "active")
        self.assertUsageConsistent("auto-confirmed")


class UsageAuditTests(MoveStackTestCase):
    def test_audit_finds_a_leak(self):
        uuid = self.boot()
        self.call(self.api.resize(self.ctx, uuid, "big"))
        self.refresh()
        report = self.successResultOf(self.defer(
            self.conductor.audit_usage()))
        self.assertEqual([r["host"] for r in report], ["h1", "h2", "h3"])
        self.assertTrue(all(r["ok"] for r in report), report)
        dest = self.get(uuid).host
        # A claim nobody owns (what a leak looks like), reported.
        self.agents[dest].tracker.move_claim("phantom", {"vcpus": 1})
        self.refresh()
        report = {r["host"]: r for r in self.successResultOf(self.defer(
            self.conductor.audit_usage()))}
        self.assertFalse(report[dest]["ok"])
        self.assertEqual(report[dest]["reported"][0],
                         report[dest]["expected"][0] + 1)
        self.assertTrue(report["h1"]["ok"])


class LiveMigrationTests(MoveStackTestCase):
    def live(self, uuid, host=None, force=False, seconds=0.0):
        return self.call(self.api.live_migrate(self.ctx, uuid, host, "auto",
                                               force), seconds)

    def test_live_migration_with_progress(self):
        uuid = self.boot()
        for driver in self.drivers.values():
            driver.move_step_delays = {"live_migration": 5}
        d = self.defer(self.api.live_migrate(self.ctx, uuid, "h3", False,
                                             False))
        self.settle()
        self.successResultOf(d)
        instance = self.get(uuid)
        self.assertEqual(instance.task_state, "migrating")
        running = self.migration(uuid)
        self.assertEqual((running.status, running.migration_type),
                         ("running", "live-migration"))
        self.assertEqual(running.memory_remaining, 512 * 1024 * 1024)
        self.assertUsageConsistent("live, running")
        self.settle(seconds=10)
        instance = self.get(uuid)
        self.assertEqual((instance.vm_state, instance.task_state,
                          instance.host), ("active", None, "h3"))
        done = self.migration(uuid)
        self.assertEqual(done.status, "completed")
        self.assertEqual(done.memory_processed, 512 * 1024 * 1024)
        self.assertEqual(done.memory_remaining, 0)
        self.assertNotIn(uuid, self.drivers["h1"].guests)
        self.assertEqual(self.drivers["h3"].guests[uuid].state, 1)
        self.assertUsageConsistent("live, done")

    def test_live_migration_failure_keeps_the_guest_on_its_source(self):
        for step in ("prep_resize", "live_migration", "finish_migration"):
            uuid = self.boot()
            for driver in self.drivers.values():
                driver.fail_move_steps = {step}
            self.live(uuid)
            instance = self.get(uuid)
            self.assertEqual((instance.vm_state, instance.task_state,
                              instance.host), ("active", None, "h1"), step)
            self.assertEqual(self.migration(uuid).status, "error", step)
            self.assertEqual(self.drivers["h1"].guests[uuid].state, 1, step)
            self.assertUsageConsistent(step)
            for driver in self.drivers.values():
                driver.fail_move_steps = set()

    def test_state_checks(self):
        uuid = self.boot(vm_state="stopped")
        self.failureResultOf(self.defer(self.api.live_migrate(
            self.ctx, uuid, None, "auto", False)),
            exception.InstanceInvalidState)


class EvacuateTests(MoveStackTestCase):
    """Evacuation: the source host down, the guest rebuilt elsewhere, the
    source's agent cleaning up when it comes back."""

    def force_down(self, host="h1", down=True):
        from twisted_compute.db import models as m
        self.run_db(lambda conn: conn.execute(m.services.update().where(
            m.services.c.host == host).values(forced_down=down)))

    def evacuate(self, uuid, host=None, seconds=0.0, **kwargs):
        self.heartbeat()
        self.force_down()
        d = self.defer(self.api.evacuate(self.ctx, uuid, host, "pw",
                                         **kwargs))
        self.settle(seconds)
        return self.successResultOf(d)

    def source_back(self):
        self.force_down(down=False)
        d = self.agents["h1"].init_host(self.ctx)
        self.settle()
        self.successResultOf(d)

    def test_evacuate_then_the_source_cleans_up(self):
        uuid = self.boot()
        self.evacuate(uuid)
        instance = self.get(uuid)
        self.assertEqual((instance.vm_state, instance.task_state),
                         ("active", None))
        self.assertIn(instance.host, ("h2", "h3"))
        self.assertIsNone(instance.migration_context)
        migration = self.migration(uuid)
        self.assertEqual((migration.migration_type, migration.status,
                          migration.source_compute, migration.dest_compute),
                         ("evacuation", "done", "h1", instance.host))
        dest = instance.host
        self.assertEqual(self.drivers[dest].guests[uuid].state, 1)
        [action] = [a for a in self.run_db(actions_db.get_actions, uuid)
                    if a.action == "evacuate"]
        events = self.run_db(actions_db.get_action, uuid,
                             action.request_id).events
        self.assertEqual(sorted(e.event for e in events),
                         ["compute_evacuate_spawn", "compute_prep_resize",
                          "conductor_rebuild_server"])
        # The source still has its old guest (it was down): not counted
        # anywhere in the database; its agent destroys it at its start.
        self.assertIn(uuid, self.drivers["h1"].guests)
        self.force_down(down=False)
        d = self.agents["h1"].init_host(self.ctx)
        self.settle()
        self.successResultOf(d)
        self.assertNotIn(uuid, self.drivers["h1"].guests)
        self.assertEqual(self.migration(uuid).status, "completed")
        self.assertUsageConsistent("evacuated, source back")

    def test_named_host_and_stopped_servers(self):
        uuid = self.boot(vm_state="stopped")
        self.evacuate(uuid, "h3")
        instance = self.get(uuid)
        self.assertEqual((instance.vm_state, instance.host),
                         ("stopped", "h3"))
        self.assertEqual(self.drivers["h3"].guests[uuid].state, 4)
        # From 2.95 an active server ends stopped too.
        uuid = self.boot()
        self.evacuate(uuid, "h2", target_state="stopped")
        self.assertEqual(self.get(uuid).vm_state, "stopped")
        self.source_back()
        self.assertUsageConsistent("stopped evacuations")

    def test_refused_while_the_source_is_up(self):
        uuid = self.boot()
        self.heartbeat()
        # The API compares the heartbeat with the wall clock.
        from twisted_compute.db import models as m
        self.run_db(lambda conn: conn.execute(m.services.update().values(
            last_seen_up=m.utcnow())))
        self.failureResultOf(self.defer(self.api.evacuate(
            self.ctx, uuid, None, "pw")), exception.ComputeServiceInUse)

    def test_spawn_failure_rolls_back_the_claim(self):
        uuid = self.boot()
        for host in ("h2", "h3"):
            self.drivers[host].fail_spawn = True
        self.evacuate(uuid)
        instance = self.get(uuid)
        self.assertEqual((instance.vm_state, instance.task_state,
                          instance.host), ("error", None, "h1"))
        self.assertIsNotNone(instance.fault)
        self.assertIsNone(instance.migration_context)
        self.assertEqual(self.migration(uuid).status, "failed")
        for host in ("h2", "h3"):
            self.assertNotIn(uuid, self.drivers[host].guests)
        self.assertUsageConsistent("evacuation failed")

    def test_no_destination(self):
        uuid = self.boot(flavorid="huge")
        self.evacuate(uuid)
        instance = self.get(uuid)
        self.assertEqual((instance.vm_state, instance.task_state,
                          instance.host), ("active", None, "h1"))
        self.assertEqual(self.migration(uuid).status, "error")
        self.assertUsageConsistent("no destination")

    def test_failure_at_every_step(self):
        """The usage-consistency check of every move, for evacuations:
        a failure (and a timeout) at each step boundary."""
        for step, how in (("prep_resize", "fail"), ("prep_resize", "slow"),
                          ("spawn", "fail"), ("spawn", "slow")):
            uuid = self.boot()
            for host in ("h2", "h3"):
                driver = self.drivers[host]
                if step == "spawn":
                    driver.fail_spawn = how == "fail"
                    driver.spawn_delay = 45 if how == "slow" else 0
                elif how == "fail":
                    driver.fail_move_steps = {step}
                else:
                    driver.move_step_delays = {step: 45}
            self.evacuate(uuid, seconds=100)
            label = f"{step} {how}"
            instance = self.get(uuid)
            self.assertEqual((instance.task_state, instance.host),
                             (None, "h1"), label)
            self.assertIn(self.migration(uuid).status, ("failed", "error"),
                          label)
            for host in ("h2", "h3"):
                self.assertNotIn(uuid, self.drivers[host].guests, label)
            self.assertUsageConsistent(label)
            for host in ("h2", "h3"):
                driver = self.drivers[host]
                driver.fail_spawn, driver.spawn_delay = False, 0
                driver.fail_move_steps, driver.move_step_delays = set(), {}
            self.force_down(down=False)


class LiveMigrationControlTests(MoveStackTestCase):
    """Progress while it runs, force_complete and abort (2.24, 2.65)."""

    def start(self, uuid, delay=10):
        for driver in self.drivers.values():
            driver.move_step_delays = {"live_migration": delay}
        self.call(self.api.live_migrate(self.ctx, uuid, "h3", False, False))
        return self.migration(uuid)

    def test_progress_is_written_while_it_runs(self):
        uuid = self.boot()
        migration = self.start(uuid)
        self.assertEqual(migration.status, "running")
        self.settle(seconds=5.5)
        running = self.migration(uuid)
        total = 512 * 1024 * 1024
        self.assertEqual(running.memory_total, total)
        self.assertEqual(running.memory_processed, total // 2)
        self.assertEqual(running.memory_remaining, total - total // 2)
        self.settle(seconds=10)
        self.assertEqual(self.migration(uuid).status, "completed")

    def test_force_complete(self):
        uuid = self.boot()
        migration = self.start(uuid, delay=20)
        self.call(self.api.live_migration_force_complete(
            self.ctx, self.get(uuid), migration))
        instance = self.get(uuid)
        self.assertEqual((instance.task_state, instance.host),
                         (None, "h3"))
        done = self.migration(uuid)
        self.assertEqual((done.status, done.memory_remaining),
                         ("completed", 0))
        self.assertUsageConsistent("forced")
        # Over: nothing left to force (409).
        self.failureResultOf(self.defer(
            self.api.live_migration_force_complete(
                self.ctx, self.get(uuid), done)),
            exception.InstanceInvalidState)

    def test_abort_while_running_rolls_back(self):
        uuid = self.boot()
        migration = self.start(uuid, delay=20)
        self.settle(seconds=5)
        self.assertUsageConsistent("running")
        self.call(self.api.live_migration_abort(
            self.ctx, self.get(uuid), migration))
        instance = self.get(uuid)
        self.assertEqual((instance.vm_state, instance.task_state,
                          instance.host), ("active", None, "h1"))
        self.assertIsNone(instance.migration_context)
        self.assertEqual(self.migration(uuid).status, "cancelled")
        self.assertEqual(self.drivers["h1"].guests[uuid].state, 1)
        self.assertNotIn(uuid, self.drivers["h3"].guests)
        self.assertUsageConsistent("aborted")

    def test_abort_before_the_copy(self):
        uuid = self.boot()
        for driver in self.drivers.values():
            driver.move_step_delays = {"prep_resize": 5}
        self.call(self.api.live_migrate(self.ctx, uuid, "h3", False, False))
        migration = self.migration(uuid)
        self.assertEqual(migration.status, "preparing")
        instance = self.get(uuid)
        # 2.24: only a running one (409); 2.65: preparing too.
        self.failureResultOf(self.defer(self.api.live_migration_abort(
            self.ctx, instance, migration)), exception.InvalidMigrationState)
        self.call(self.api.live_migration_abort(
            self.ctx, instance, migration,
            ("running", "queued", "preparing")), seconds=10)
        instance = self.get(uuid)
        self.assertEqual((instance.task_state, instance.host), (None, "h1"))
        self.assertEqual(self.migration(uuid).status, "cancelled")
        self.assertNotIn(uuid, self.drivers["h3"].guests)
        self.assertUsageConsistent("aborted while preparing")


class ResizeQuotaRaceTests(MoveStackTestCase):
    def test_two_resizes_cannot_both_take_the_last_headroom(self):
        from twisted.internet import defer
        from twisted_compute.db import quotas as quotas_db
        first, second = self.boot(), self.boot()
        # 2 cores used, 3 allowed: room for one resize to "big" (+1).
        self.run_db(quotas_db.update_limits, self.conf, "p", None,
                    {"cores": 3}, True)
        self.heartbeat()
        both = defer.DeferredList([
            self.defer(self.api.resize(self.ctx, uuid, "big"))
            for uuid in (first, second)], consumeErrors=True)
        self.settle()
        results = self.successResultOf(both)
        self.assertEqual(sorted(ok for ok, _ in results), [False, True])
        [failure] = [value for ok, value in results if not ok]
        failure.trap(exception.TooManyInstances)
        self.settle(seconds=10)
        self.assertEqual(sorted(self.get(u).vm_state
                                for u in (first, second)),
                         ["active", "resized"])
        # The growth counts while the resize is in VERIFY_RESIZE (the new
        # flavor is the instance's), and is given back by a revert.
        [resized] = [u for u in (first, second)
                     if self.get(u).vm_state == "resized"]
        [other] = [u for u in (first, second) if u != resized]
        self.failureResultOf(self.defer(self.api.resize(
            self.ctx, other, "big")), exception.TooManyInstances)
        self.call(self.api.revert_resize(self.ctx, resized))
        self.call(self.api.resize(self.ctx, other, "big"))
        self.assertEqual(self.get(other).vm_state, "resized")


class StuckMoveTests(MoveStackTestCase):
    """A conductor that dies mid-move: another one (or itself, restarted)
    settles the move once it has been still for 4 x move_step_timeout."""

    def other_conductor(self):
        from twisted_compute.conductor.manager import ConductorManager
        other = ConductorManager(self.conf, self.db, self.conductor.scheduler,
                                 self.conductor.compute, self.clock,
                                 host="cond2")
        other.log = self.conductor.log
        return other

    def die_at(self, step):
        """The conductor's call of ``step`` never returns (it died)."""
        from twisted.internet import defer
        real = self.conductor.compute.move_step

        def move_step(context, name, *args, **kwargs):
            if name == step:
                return defer.Deferred()
            return real(context, name, *args, **kwargs)
        self.conductor.compute.move_step = move_step

    def reap(self, conductor, ahead):
        import datetime
        self.clock.advance(ahead)
        conductor._now = lambda: datetime.datetime.utcnow() + \
            datetime.timedelta(seconds=ahead)
        d = self.defer(conductor.reap_stuck_moves())
        self.settle()
        return self.successResultOf(d)

    def test_a_move_left_in_resize_migrating_is_rolled_back(self):
        uuid = self.boot()
        self.die_at("resize_instance")
        self.call(self.api.resize(self.ctx, uuid, "big"))
        instance = self.get(uuid)
        self.assertEqual(instance.task_state, "resize_migrating")
        other = self.other_conductor()
        # Not yet: a live move touches its migration within the bound.
        self.assertEqual(self.reap(other, 60), [])
        self.assertEqual(self.get(uuid).task_state, "resize_migrating")
        [reaped] = self.reap(other, 4 * 30 + 1)
        self.assertEqual(reaped, self.migration(uuid).id)
        instance = self.get(uuid)
        self.assertEqual((instance.vm_state, instance.task_state,
                          instance.host), ("active", None, "h1"))
        self.assertIsNone(instance.migration_context)
        self.assertEqual(self.migration(uuid).status, "error")
        self.assertIn("made no progress", instance.fault["message"]
                      if isinstance(instance.fault, dict)
                      else instance.fault.message)
        self.assertEqual(self.drivers["h1"].guests[uuid].state, 1)
        self.assertUsageConsistent("reaped")

    def test_unrecoverable_goes_to_error(self):
        uuid = self.boot()
        self.die_at("finish_resize")
        self.call(self.api.resize(self.ctx, uuid, "big"))
        for driver in self.drivers.values():
            driver.fail_move_steps = {"finish_revert_migration"}
        self.reap(self.other_conductor(), 4 * 30 + 1)
        instance = self.get(uuid)
        self.assertEqual((instance.vm_state, instance.task_state,
                          instance.host), ("error", None, "h1"))
        self.assertIsNotNone(instance.fault)
        self.assertEqual(self.migration(uuid).status, "error")
        self.assertUsageConsistent("reaped, error")

    def test_periodic_runs_at_conductor_start(self):
        from twisted_compute.conductor import tap
        role = tap.conductor_role(self.conf, self.clock, self.transport,
                                  self.db)
        [reaper] = [t for t in role.tasks if t.name == "reap_stuck_moves"]
        self.assertEqual(reaper.interval, 60)


class LiveMigrationAbortFailureTests(MoveStackTestCase):
    """Aborts at every phase with the destination's clean-up failing too:
    usage still adds up (the claim goes whatever the driver says)."""

    start = LiveMigrationControlTests.start

    def test_abort_with_failing_clean_up(self):
        for phase in ("preparing", "running"):
            uuid = self.boot()
            if phase == "preparing":
                for driver in self.drivers.values():
                    driver.move_step_delays = {"prep_resize": 5}
                self.call(self.api.live_migrate(self.ctx, uuid, "h3", False,
                                                False))
            else:
                self.start(uuid, delay=20)
            self.drivers["h3"].fail_move_steps = {"revert_migration"}
            migration = self.migration(uuid)
            self.assertEqual(migration.status, phase)
            self.call(self.api.live_migration_abort(
                self.ctx, self.get(uuid), migration,
                ("running", "queued", "preparing")), seconds=10)
            instance = self.get(uuid)
            self.assertEqual((instance.task_state, instance.host),
                             (None, "h1"), phase)
            self.assertEqual(self.migration(uuid).status, "cancelled")
            self.assertUsageConsistent("abort " + phase)
            for driver in self.drivers.values():
                driver.fail_move_steps, driver.move_step_delays = set(), {}
