"""The EC2 API with ``auth_strategy = keystone`` against a real Keystone:
credentials made by ``openstack ec2 credentials create``, requests signed
by boto3 (SigV4), checked by Keystone's ``POST /v3/ec2tokens``."""

from __future__ import annotations

import json
import os

from tests.integration.harness import (
    OPENSTACK, TwistdProcess, TwistdTestCase, run_command)
from tests.integration.keystone_fixture import (
    require_keystone, shared_keystone)

SERVICE_PASSWORD = "nova-secret"
PASSWORD = "carol-secret"


class Ec2KeystoneTests(TwistdTestCase):
    def setUp(self):
        require_keystone()
        super().setUp()
        self.keystone = shared_keystone()
        self.keystone.user("nova", SERVICE_PASSWORD, "service", ("admin",))
        self.keystone.user("carol", PASSWORD, "ec2demo",
                           ("member", "reader"))
        self.proc = TwistdProcess(apis=("ec2", "osapi_compute"), options={
            "api": {"auth_strategy": "keystone"},
            "keystone_authtoken": {
                "auth_url": self.keystone.auth_url,
                "www_authenticate_uri": self.keystone.auth_url,
                "username": "nova", "password": SERVICE_PASSWORD,
                "project_name": "service", "user_domain_name": "Default",
                "project_domain_name": "Default"}})
        self._processes.append(self.proc)
        self.addCleanup(self.proc.cleanup)
        self.proc.start()

    def ec2_credentials(self) -> tuple[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("OS_")}
        env.update({"OS_AUTH_URL": self.keystone.auth_url,
                    "OS_USERNAME": "carol", "OS_PASSWORD": PASSWORD,
                    "OS_PROJECT_NAME": "ec2demo",
                    "OS_USER_DOMAIN_NAME": "Default",
                    "OS_PROJECT_DOMAIN_NAME": "Default",
                    "OS_IDENTITY_API_VERSION": "3"})
        done = run_command([OPENSTACK, "ec2", "credentials", "create",
                            "-f", "json"], timeout=90, env=env)
        self.assertEqual(done.returncode, 0, done.stderr)
        made = json.loads(done.stdout)
        return made["access"], made["secret"]

    def test_boto3_with_keystone_credentials(self):
        import boto3
        import botocore.exceptions
        from botocore.config import Config
        access, secret = self.ec2_credentials()

        def client(secret_key):
            return boto3.client(
                "ec2", endpoint_url=self.proc.url("ec2"),
                region_name="nova", aws_access_key_id=access,
                aws_secret_access_key=secret_key,
                config=Config(retries={"max_attempts": 1}))
        ec2 = client(secret)
        self.assertEqual(ec2.describe_regions()["Regions"][0][
            "RegionName"], "nova")
        self.assertEqual(ec2.describe_instances()["Reservations"], [])
        ec2.create_key_pair(KeyName="carol-key")
        self.assertEqual([k["KeyName"] for k in ec2.describe_key_pairs()[
            "KeyPairs"]], ["carol-key"])
        groups = ec2.describe_security_groups()["SecurityGroups"]
        project = self.keystone.project("ec2demo")["id"]
        self.assertEqual(groups[0]["OwnerId"], project)
        with self.assertRaises(botocore.exceptions.ClientError) as caught:
            client("x" * 40).describe_regions()
        self.assertEqual(caught.exception.response["Error"]["Code"],
                         "AuthFailure")
