"""Child processes with a deadline (twisted_compute.virt.process), and the
tools run through it: qemu-img and the config drive's ISO program."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import time

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from tests.virt.test_configdrive import instance
from twisted_compute import exception
from twisted_compute.metadata.base import InstanceMetadata
from twisted_compute.virt import configdrive, process
from twisted_compute.virt.libvirt import imagecache


class ProcessDeadlineTests(TestCase):
    timeout = 30

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tc-process-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def script(self, name: str, body: str) -> str:
        path = os.path.join(self.dir, name)
        with open(path, "w") as handle:
            handle.write("#!/bin/sh\n" + body + "\n")
        os.chmod(path, stat.S_IRWXU)
        return path

    async def test_output_and_exit_code(self):
        out, err, code = await process.run(
            reactor, "/bin/sh", ["-c", "echo out; echo err >&2; exit 3"],
            timeout=10)
        self.assertEqual((out, err, code), (b"out\n", b"err\n", 3))

    async def test_a_child_past_its_deadline_is_killed(self):
        pid_file = os.path.join(self.dir, "pid")
        started = time.monotonic()
        with self.assertRaises(exception.ProcessTimedOut) as caught:
            await process.run(
                reactor, "/bin/sh",
                ["-c", f"echo $$ > {pid_file}; exec sleep 60"],
                timeout=0.5)
        self.assertLess(time.monotonic() - started, 10)
        self.assertIn("did not finish within 0.5 s", str(caught.exception))
        with open(pid_file) as handle:
            pid = int(handle.read())
        with self.assertRaises(ProcessLookupError):
            os.kill(pid, 0)

    async def test_qemu_img_has_a_deadline(self):
        slow = self.script("qemu-img", "exec sleep 60")
        self.patch(imagecache, "qemu_img_binary", lambda: slow)
        with self.assertRaises(exception.ProcessTimedOut) as caught:
            await imagecache.image_info(reactor, "/nonexistent",
                                        timeout=0.5)
        self.assertIn("qemu-img info", str(caught.exception))

    async def test_the_config_drive_program_has_a_deadline(self):
        slow = self.script("genisoimage", "exec sleep 60")
        metadata = InstanceMetadata(instance())
        path = os.path.join(self.dir, "disk.config")
        with self.assertRaises(exception.ConfigDriveError) as caught:
            await configdrive.make_drive(metadata, path, reactor,
                                         mkisofs_cmd=slow, timeout=0.5)
        self.assertIn("did not finish within 0.5 s", str(caught.exception))
        self.assertFalse(os.path.exists(path))
        self.assertFalse(os.path.exists(path + ".part"))
