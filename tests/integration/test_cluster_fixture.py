"""The RabbitMQ cluster fixture's bookkeeping, without RabbitMQ: one test
process at a time has the cluster (trial -j2 runs two), the last process
using a cluster that tests started stops it, and a node whose pid file
is gone is found by its name."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

from twisted.trial.unittest import SynchronousTestCase

from tests.integration.harness import rabbit_cluster

_TRY_LOCK = """
import fcntl, sys
with open(sys.argv[1], "a") as handle:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        sys.exit(3)
"""


def other_process_can_lock(path: str) -> bool:
    done = subprocess.run([sys.executable, "-c", _TRY_LOCK, path],
                          timeout=30, check=False)
    return done.returncode == 0


class ClusterUseTests(SynchronousTestCase):

    def setUp(self):
        directory = tempfile.mkdtemp(prefix="tc-cluster-lock-")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", directory]))
        self.lock = os.path.join(directory, "use.lock")
        self.patch(rabbit_cluster, "USE_LOCK_FILE", self.lock)
        self.patch(rabbit_cluster.ClusterUse, "_depth", 0)
        self.patch(rabbit_cluster.ClusterUse, "_handle", None)

    def test_exclusive_across_processes_and_reentrant(self):
        use = rabbit_cluster.ClusterUse
        use.acquire()
        use.acquire()  # a deployment inside a test that holds it
        self.assertFalse(other_process_can_lock(self.lock))
        use.release()
        self.assertFalse(other_process_can_lock(self.lock))
        use.release()
        self.assertTrue(other_process_can_lock(self.lock))
        use.release()  # one too many: ignored

    def test_gives_up_when_another_process_keeps_it(self):
        holder = subprocess.Popen(
            [sys.executable, "-c",
             "import fcntl, sys, time\n"
             "h = open(sys.argv[1], 'a')\n"
             "fcntl.flock(h, fcntl.LOCK_EX)\n"
             "print('held', flush=True)\n"
             "time.sleep(30)\n", self.lock], stdout=subprocess.PIPE)
        self.addCleanup(holder.wait)
        self.addCleanup(holder.kill)
        self.assertEqual(holder.stdout.readline().strip(), b"held")
        with self.assertRaises(rabbit_cluster.ClusterError):
            rabbit_cluster.ClusterUse.acquire(timeout=0.5)
        self.assertEqual(rabbit_cluster.ClusterUse._depth, 0)


class FindByNameTests(SynchronousTestCase):

    def test_a_process_with_the_node_name_in_its_environment(self):
        # A stand-in VM: "beam" in its command name, the node's name in
        # its environment, no pid file.
        directory = tempfile.mkdtemp(prefix="tc-cluster-node-")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", directory]))
        beam = os.path.join(directory, "beam.smp")
        os.symlink("/bin/sleep", beam)
        node = rabbit_cluster.RabbitNode(7, directory, 30001)
        os.makedirs(node.directory)
        proc = subprocess.Popen(
            [beam, "30"], env={"RABBITMQ_NODENAME": node.name})
        self.addCleanup(proc.wait)
        self.addCleanup(proc.kill)
        # Until the child has exec'd, /proc shows the parent's command and
        # environment: wait for the exec (a loaded machine takes a while).
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with open(f"/proc/{proc.pid}/comm", encoding="ascii") as handle:
                if handle.read().strip() == "beam.smp":
                    break
            time.sleep(0.01)
        self.assertEqual(node.pid(), proc.pid)
        # ... and the pid file is written again for stop and kill.
        with open(node.pid_file, encoding="ascii") as handle:
            self.assertEqual(handle.read().strip(), str(proc.pid))
        other = rabbit_cluster.RabbitNode(8, directory, 30002)
        self.assertIsNone(other.find_by_name())
