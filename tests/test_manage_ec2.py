"""``compute-manage ec2-credentials create|list|delete``."""

import contextlib
import io
import os

from twisted.trial.unittest import SynchronousTestCase

from tests.base import migrated_sqlite
from twisted_compute.cmd import manage


class Ec2CredentialsCommandTests(SynchronousTestCase):
    def setUp(self):
        directory = self.mktemp()
        os.makedirs(directory)
        url = migrated_sqlite(directory)
        self.config = os.path.join(directory, "compute.conf")
        with open(self.config, "w") as handle:
            handle.write(f"[DEFAULT]\nstate_path = {directory}\n"
                         f"[database]\nconnection = {url}\n")

    def run_manage(self, *argv):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            status = manage.main(["--config-file", self.config, *argv])
        return status, out.getvalue()

    def test_create_list_delete(self):
        status, out = self.run_manage("ec2-credentials", "create",
                                      "--user", "u1", "--project", "p1")
        self.assertEqual(status, 0)
        fields = dict(line.split(" ", 1) for line in out.splitlines())
        self.assertRegex(fields["access"], r"^[A-Z0-9]{20}$")
        self.assertEqual(len(fields["secret"]), 40)
        status, out = self.run_manage("ec2-credentials", "list")
        self.assertEqual(out.split(), [fields["access"], "u1", "p1"])
        self.assertNotIn(fields["secret"], out)
        self.assertEqual(self.run_manage("ec2-credentials", "list",
                                         "--project", "p2")[1], "")
        status, _ = self.run_manage("ec2-credentials", "delete",
                                    fields["access"])
        self.assertEqual(status, 0)
        self.assertEqual(self.run_manage("ec2-credentials", "list")[1], "")
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            status, _ = self.run_manage("ec2-credentials", "delete",
                                        fields["access"])
        self.assertEqual(status, 1)
        self.assertIn("could not be found", err.getvalue())
