"""The EC2 API of a running ``compute-all`` (noauth, the fake driver),
driven by real EC2 clients from PyPI: boto3 and the AWS CLI, with an
access key made by ``compute-manage ec2-credentials create``.

Both run the same sequence: run an instance, wait for it to run, describe
it with filters, stop, start, read its console, tag it, make and import
key pairs, terminate it and wait until it is terminated.
"""

from __future__ import annotations

import base64
import json
import os
import uuid

from tests.integration.harness import (
    BIN, COMPUTE_MANAGE, TwistdTestCase, run_command)
from tests.integration.test_all_in_one import FLAVOR, IMAGE, \
    short_intervals

AWS = os.path.join(BIN, "aws")
REGION = "nova"
CLI_TIMEOUT = 90.0


def ec2_credential(proc, user: str, project: str) -> tuple[str, str]:
    done = run_command([COMPUTE_MANAGE, "--config-file", proc.config_file,
                        "ec2-credentials", "create", "--user", user,
                        "--project", project], timeout=60)
    assert done.returncode == 0, done.stderr
    fields = dict(line.split(" ", 1) for line in done.stdout.splitlines())
    return fields["access"], fields["secret"]


class Ec2Mixin:
    host = "ec2-" + uuid.uuid4().hex[:6]
    shared = {"role": "compute-all",
              "apis": ("ec2", "osapi_compute", "metadata"),
              "options": short_intervals(host)}

    def setUp(self):
        super().setUp()
        cached = getattr(type(self), "_credential", None)
        if cached is None or cached[0] != self.proc.config_file:
            type(self)._credential = (self.proc.config_file,
                                      *ec2_credential(self.proc, "alice",
                                                      "p1"))
        _, self.access, self.secret = type(self)._credential
        self.endpoint = self.proc.url("ec2")


class Boto3Tests(Ec2Mixin, TwistdTestCase):
    def client(self, access=None, secret=None):
        import boto3
        from botocore.config import Config
        return boto3.client(
            "ec2", endpoint_url=self.endpoint, region_name=REGION,
            aws_access_key_id=access or self.access,
            aws_secret_access_key=secret or self.secret,
            config=Config(retries={"max_attempts": 1},
                          connect_timeout=10, read_timeout=60))

    def test_sequence(self):
        ec2 = self.client()
        images = ec2.describe_images(Filters=[
            {"Name": "name", "Values": [IMAGE]}])["Images"]
        self.assertEqual(len(images), 1, images)
        ami = images[0]["ImageId"]
        self.assertRegex(ami, r"^ami-[0-9a-f]{8}$")
        zones = ec2.describe_availability_zones()["AvailabilityZones"]
        self.assertTrue(zones)
        self.assertIn(FLAVOR, [t["InstanceType"] for t in
                               ec2.describe_instance_types()[
                                   "InstanceTypes"]])

        made = ec2.create_key_pair(KeyName="boto-key")
        self.assertIn("PRIVATE KEY", made["KeyMaterial"])
        run = ec2.run_instances(
            ImageId=ami, InstanceType=FLAVOR, MinCount=1, MaxCount=1,
            KeyName="boto-key", UserData="#!/bin/sh\necho hi\n",
            Placement={"AvailabilityZone": zones[0]["ZoneName"]},
            TagSpecifications=[{"ResourceType": "instance", "Tags": [
                {"Key": "Name", "Value": "boto"}]}],
            ClientToken="boto-" + uuid.uuid4().hex[:8])
        iid = run["Instances"][0]["InstanceId"]
        self.assertRegex(iid, r"^i-[0-9a-f]{8}$")
        ec2.get_waiter("instance_running").wait(
            InstanceIds=[iid], WaiterConfig={"Delay": 1,
                                             "MaxAttempts": 60})

        found = ec2.describe_instances(Filters=[
            {"Name": "tag:Name", "Values": ["boto"]},
            {"Name": "instance-state-name", "Values": ["running"]}])
        instances = [i for r in found["Reservations"]
                     for i in r["Instances"]]
        self.assertEqual([i["InstanceId"] for i in instances], [iid])
        self.assertEqual(instances[0]["KeyName"], "boto-key")
        self.assertEqual(instances[0]["ImageId"], ami)
        user_data = ec2.describe_instance_attribute(
            InstanceId=iid, Attribute="userData")["UserData"]["Value"]
        self.assertEqual(base64.b64decode(user_data),
                         b"#!/bin/sh\necho hi\n")

        ec2.stop_instances(InstanceIds=[iid])
        ec2.get_waiter("instance_stopped").wait(
            InstanceIds=[iid], WaiterConfig={"Delay": 1,
                                             "MaxAttempts": 60})
        ec2.start_instances(InstanceIds=[iid])
        ec2.get_waiter("instance_running").wait(
            InstanceIds=[iid], WaiterConfig={"Delay": 1,
                                             "MaxAttempts": 60})
        output = ec2.get_console_output(InstanceId=iid)
        self.assertEqual(output["InstanceId"], iid)
        self.assertIn("Output", output)

        ec2.create_tags(Resources=[iid], Tags=[{"Key": "env",
                                                "Value": "ci"}])
        tags = ec2.describe_tags(Filters=[
            {"Name": "resource-id", "Values": [iid]}])["Tags"]
        self.assertEqual(sorted(t["Key"] for t in tags), ["Name", "env"])
        ec2.delete_tags(Resources=[iid], Tags=[{"Key": "env"}])
        self.assertEqual([t["Key"] for t in ec2.describe_tags(Filters=[
            {"Name": "resource-id", "Values": [iid]}])["Tags"]], ["Name"])

        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
        line = ed25519.Ed25519PrivateKey.generate().public_key(
        ).public_bytes(serialization.Encoding.OpenSSH,
                       serialization.PublicFormat.OpenSSH)
        ec2.import_key_pair(KeyName="boto-imported",
                            PublicKeyMaterial=line)
        names = [k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]]
        self.assertEqual(sorted(names), ["boto-imported", "boto-key"])
        ec2.delete_key_pair(KeyName="boto-imported")

        ec2.terminate_instances(InstanceIds=[iid])
        ec2.get_waiter("instance_terminated").wait(
            InstanceIds=[iid], WaiterConfig={"Delay": 1,
                                             "MaxAttempts": 60})

    def test_errors_and_isolation(self):
        import botocore.exceptions
        ec2 = self.client()
        with self.assertRaises(botocore.exceptions.ClientError) as caught:
            ec2.describe_instances(InstanceIds=["i-7ffffff0"])
        error = caught.exception.response
        self.assertEqual(error["Error"]["Code"],
                         "InvalidInstanceID.NotFound")
        self.assertTrue(error["ResponseMetadata"]["RequestId"])
        with self.assertRaises(botocore.exceptions.ClientError) as caught:
            self.client(secret="x" * 40).describe_regions()
        self.assertEqual(caught.exception.response["Error"]["Code"],
                         "AuthFailure")
        other = self.client(*ec2_credential(self.proc, "bob", "p2"))
        ami = ec2.describe_images()["Images"][0]["ImageId"]
        iid = ec2.run_instances(ImageId=ami, InstanceType=FLAVOR,
                                MinCount=1, MaxCount=1)[
            "Instances"][0]["InstanceId"]
        self.assertEqual(other.describe_instances()["Reservations"], [])
        with self.assertRaises(botocore.exceptions.ClientError) as caught:
            other.terminate_instances(InstanceIds=[iid])
        self.assertEqual(caught.exception.response["Error"]["Code"],
                         "InvalidInstanceID.NotFound")
        ec2.terminate_instances(InstanceIds=[iid])


class AwsCliTests(Ec2Mixin, TwistdTestCase):
    def aws(self, *args: str) -> dict:
        directory = self.proc.directory
        config = os.path.join(directory, "aws-config")
        credentials = os.path.join(directory, "aws-credentials")
        if not os.path.exists(config):
            with open(config, "w") as handle:
                handle.write(f"[default]\nregion = {REGION}\n"
                             "output = json\n")
            with open(credentials, "w") as handle:
                handle.write(f"[default]\naws_access_key_id = "
                             f"{self.access}\naws_secret_access_key = "
                             f"{self.secret}\n")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("AWS_")}
        env.update({"AWS_CONFIG_FILE": config,
                    "AWS_SHARED_CREDENTIALS_FILE": credentials,
                    "AWS_DEFAULT_REGION": REGION,
                    "AWS_ACCESS_KEY_ID": self.access,
                    "AWS_SECRET_ACCESS_KEY": self.secret,
                    "AWS_MAX_ATTEMPTS": "1", "HOME": directory})
        done = run_command([AWS, "--endpoint-url", self.endpoint, "ec2",
                            *args, "--output", "json"],
                           timeout=CLI_TIMEOUT, env=env)
        if done.returncode != 0:
            self.fail(f"aws ec2 {' '.join(args)} exited "
                      f"{done.returncode}:\n{done.stderr}")
        return json.loads(done.stdout) if done.stdout.strip() else {}

    def state(self, iid: str) -> str:
        found = self.aws("describe-instances", "--instance-ids", iid)
        return found["Reservations"][0]["Instances"][0]["State"]["Name"]

    def test_sequence(self):
        images = self.aws("describe-images", "--filters",
                          f"Name=name,Values={IMAGE}")["Images"]
        ami = images[0]["ImageId"]
        self.aws("create-key-pair", "--key-name", "cli-key")
        run = self.aws("run-instances", "--image-id", ami,
                       "--instance-type", FLAVOR, "--count", "1",
                       "--key-name", "cli-key", "--user-data", "hello",
                       "--tag-specifications",
                       "ResourceType=instance,Tags=[{Key=Name,"
                       "Value=cli}]")
        iid = run["Instances"][0]["InstanceId"]
        self.aws("wait", "instance-running", "--instance-ids", iid)
        found = self.aws("describe-instances", "--filters",
                         "Name=tag:Name,Values=cli",
                         "Name=instance-state-name,Values=running")
        self.assertEqual([i["InstanceId"] for r in found["Reservations"]
                          for i in r["Instances"]], [iid])
        attribute = self.aws("describe-instance-attribute",
                             "--instance-id", iid, "--attribute",
                             "instanceType")
        self.assertEqual(attribute["InstanceType"]["Value"], FLAVOR)
        self.aws("stop-instances", "--instance-ids", iid)
        self.aws("wait", "instance-stopped", "--instance-ids", iid)
        self.aws("start-instances", "--instance-ids", iid)
        self.aws("wait", "instance-running", "--instance-ids", iid)
        output = self.aws("get-console-output", "--instance-id", iid)
        self.assertEqual(output["InstanceId"], iid)
        self.aws("create-tags", "--resources", iid, "--tags",
                 "Key=env,Value=ci")
        tags = self.aws("describe-tags", "--filters",
                        f"Name=resource-id,Values={iid}")["Tags"]
        self.assertEqual(sorted(t["Key"] for t in tags), ["Name", "env"])
        self.aws("delete-tags", "--resources", iid, "--tags", "Key=env")
        keys = self.aws("describe-key-pairs")["KeyPairs"]
        self.assertIn("cli-key", [k["KeyName"] for k in keys])
        self.aws("delete-key-pair", "--key-name", "cli-key")
        self.aws("terminate-instances", "--instance-ids", iid)
        self.aws("wait", "instance-terminated", "--instance-ids", iid)
        self.assertEqual(self.state(iid), "terminated")


class ComputeApiListensTests(TwistdTestCase):
    """``twistd compute-api`` with Havana's ``enabled_apis``."""

    def test_ec2_osapi_compute_and_metadata(self):
        proc = self.start_twistd(
            role="compute-api", apis=("ec2", "osapi_compute", "metadata"))
        log = proc.log_text()
        for api in ("ec2", "osapi_compute", "metadata"):
            self.assertIn(f"{api} listening on", log)
        response = proc.request("GET", "/", api="ec2", token=None)
        self.assertEqual(response.code, 401)
        self.assertIn(b"<Code>MissingAuthenticationToken</Code>",
                      response.body)
        self.assertEqual(proc.request("GET", "/", api="osapi_compute",
                                      token=None).code, 200)
