"""``osapi_compute_workers = 2``: a parent and two worker processes serving
one port; a dead worker is replaced; SIGTERM stops them all."""

from __future__ import annotations

import os
import re
import signal

from tests.integration.harness import (
    TwistdTestCase, alive, wait_until)


class WorkersTests(TwistdTestCase):

    def start_pool(self):
        proc = self.start_twistd(workers={"osapi_compute": 2})
        proc.wait_for_log(r"Starting 2 workers")
        matches = proc.wait_for_log(
            r"osapi_compute worker (\d) started \(pid (\d+)\)", count=2)
        logged = {int(m.group(2)) for m in matches}
        children = set(wait_until(
            lambda: len(proc.children()) == 2 and proc.children(),
            10, message="two worker processes"))
        self.assertEqual(children, logged, proc.describe())
        # Both workers serve before we go on.
        proc.wait_for_log(r"worker \d serving osapi_compute", count=2)
        return proc, children

    def assertServes(self, proc, times=6):
        for _ in range(times):
            response = proc.get("/v2.1/flavors", token="u1:p1", timeout=5)
            self.assertEqual(response.code, 200, response)
            self.assertEqual(response.json, {"flavors": []})

    def test_two_workers_serve_one_port(self):
        proc, children = self.start_pool()
        self.assertNotIn(proc.pid, children)
        self.assertServes(proc, times=20)
        port = proc.ports["osapi_compute"]
        self.assertIn(f"osapi_compute listening on 127.0.0.1:{port}",
                      proc.log_text())
        # Both workers answered some of the requests (the kernel spreads
        # connections between the processes blocked in accept).
        served = {m.group(1) for m in re.finditer(
            r"\[osapi_compute worker (\d)\] .*\"GET /v2.1/flavors",
            proc.log_text())}
        self.assertTrue(served, proc.describe())

    def test_killed_worker_replaced(self):
        proc, children = self.start_pool()
        victim = min(children)
        os.kill(victim, signal.SIGKILL)
        # Requests keep succeeding while the worker is replaced.
        self.assertServes(proc)
        proc.wait_for_log(r"osapi_compute worker \d died \(exit code None, "
                          r"signal 9\)")
        now = set(wait_until(
            lambda: (len(proc.children()) == 2 and victim not in
                     proc.children() and proc.children()),
            30, message="a replacement worker"))
        self.assertNotIn(victim, now)
        self.assertEqual(len(now & children), 1, (now, children))
        (new,) = now - children
        proc.wait_for_log(rf"worker \d started \(pid {new}\)")
        proc.wait_for_log(r"worker \d serving osapi_compute", count=3)
        self.assertServes(proc)

    def test_sigterm_stops_workers(self):
        proc, children = self.start_pool()
        self.assertServes(proc, times=2)
        code = proc.terminate()
        self.assertIn(code, (0, -signal.SIGTERM), proc.describe())
        # No orphan is left: both workers are gone by the time the parent
        # has exited (it waits for them).
        left = [pid for pid in children if alive(pid)]
        self.assertEqual(left, [], proc.describe())
        self.assertNotIn("died", proc.log_text())

    def test_parent_killed_workers_exit(self):
        # Even when the parent dies without a chance to stop them, the
        # workers notice (their stdin pipe from it closes) and exit.
        proc, children = self.start_pool()
        os.kill(proc.pid, signal.SIGKILL)
        proc.process.wait(10)
        wait_until(lambda: not any(alive(pid) for pid in children), 10,
                   message="the workers to exit after their parent")
