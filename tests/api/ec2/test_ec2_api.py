"""The ec2 pipeline in memory, spoken to by botocore: its serializer
builds each request, its SigV4 signer signs it, its EC2 parser reads
the answer (so what boto3 cannot parse fails here)."""

from __future__ import annotations

import datetime
import os
from urllib.parse import urlencode

import botocore.auth
import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.parsers import create_parser
from botocore.serialize import create_serializer
from treq.testing import StubTreq
from twisted.internet.defer import Deferred, ensureDeferred

from tests.api.test_servers_base import IMAGE_ID, RecordingRPC, \
    ServersTestCase
from tests.base import ETC
from twisted_compute.api import pipeline
from twisted_compute.api.ec2 import auth as ec2_auth
from twisted_compute.db import ec2_credentials

MODEL = botocore.session.get_session().get_service_model("ec2")
SERIALIZER = create_serializer("ec2")
PARSER = create_parser("ec2")


class Ec2TestCase(ServersTestCase):
    def setUp(self):
        super().setUp()
        self.ec2 = StubTreq(pipeline.load_api(
            os.path.join(ETC, "api-pipeline.ini"), "ec2",
            {"conf": self.conf, "services": self.services}))
        self.alice = self.run_db(ec2_credentials.create, "alice", "p1")
        self.bob = self.run_db(ec2_credentials.create, "bob", "p2")

    def raw(self, action, params, credential=None, secret=None,
            when=None, region="nova"):
        operation = MODEL.operation_model(action)
        request = SERIALIZER.serialize_to_request(params, operation)
        body = urlencode(request["body"])
        aws = AWSRequest(method="POST", url="http://localhost:8773/",
                         data=body, headers={
                             "Content-Type": "application/x-www-form-"
                             "urlencoded; charset=utf-8"})
        credential = credential or self.alice
        signer = SigV4Auth(Credentials(credential.access,
                                       secret or credential.secret),
                           "ec2", region)
        if when is not None:
            self.patch(botocore.auth, "get_current_datetime",
                       lambda: when)
        signer.add_auth(aws)
        d = self.ec2.request("POST", "http://localhost:8773/",
                             headers=dict(aws.headers.items()),
                             data=body.encode())
        self.ec2.flush()
        response = self.successResultOf(d)
        content = self.successResultOf(response.content())
        headers = {k.decode(): v[0].decode() for k, v in
                   response.headers.getAllRawHeaders()}
        parsed = PARSER.parse({"status_code": response.code,
                               "headers": headers, "body": content},
                              operation.output_shape)
        return response.code, parsed, content

    def call(self, action, credential=None, **params):
        code, parsed, content = self.raw(action, params, credential)
        self.assertEqual(code, 200, content)
        return parsed

    def error(self, action, code, credential=None, **params):
        status, parsed, content = self.raw(action, params, credential)
        self.assertNotEqual(status, 200, content)
        self.assertEqual(parsed["Error"]["Code"], code, content)
        self.assertTrue(parsed["ResponseMetadata"]["RequestId"], content)
        self.assertNotIn(b"Traceback", content)
        return parsed

    def ami(self):
        from twisted_compute.api.ec2 import ids
        return ids.image_id(IMAGE_ID)

    def run_instance(self, credential=None, **extra):
        params = {"ImageId": self.ami(), "InstanceType": "m1.tiny",
                  "MinCount": 1, "MaxCount": 1, **extra}
        return self.call("RunInstances", credential, **params)


class AuthTests(Ec2TestCase):
    def test_good_signature(self):
        regions = self.call("DescribeRegions")["Regions"]
        self.assertEqual(regions[0]["RegionName"], "nova")

    def test_bad_secret_is_auth_failure_without_a_hint(self):
        status, parsed, content = self.raw("DescribeRegions", {},
                                           secret="wrong")
        self.assertEqual(status, 401)
        self.assertEqual(parsed["Error"]["Code"], "AuthFailure")
        self.assertNotIn(b"ignature=", content)
        self.assertNotIn(b"canonical", content.lower())

    def test_unknown_key_is_the_same_auth_failure(self):
        fake = ec2_credentials.Ec2Credential("NOSUCHKEY", "x", "y", "z")
        _, unknown, _ = self.raw("DescribeRegions", {}, credential=fake)
        _, bad, _ = self.raw("DescribeRegions", {}, secret="wrong")
        self.assertEqual(unknown["Error"], bad["Error"])

    def test_old_timestamp_is_request_expired(self):
        when = datetime.datetime.utcnow() - datetime.timedelta(minutes=16)
        status, parsed, _ = self.raw("DescribeRegions", {}, when=when)
        self.assertEqual(parsed["Error"]["Code"], "RequestExpired")
        when = datetime.datetime.utcnow() - datetime.timedelta(minutes=14)
        status, parsed, content = self.raw("DescribeRegions", {},
                                           when=when)
        self.assertEqual(status, 200, content)

    def test_unsigned_request(self):
        d = self.ec2.request("POST", "http://localhost:8773/",
                             data=b"Action=DescribeRegions", headers={
                                 "Content-Type":
                                 "application/x-www-form-urlencoded"})
        self.ec2.flush()
        response = self.successResultOf(d)
        body = self.successResultOf(response.content())
        self.assertEqual(response.code, 401)
        self.assertIn(b"<Code>MissingAuthenticationToken</Code>", body)
        self.assertIn(b"<RequestID>req-", body)

    def test_signature_v2(self):
        import time
        from twisted_compute.api.ec2 import signature as sig
        params = {"Action": "DescribeRegions", "Version": "2016-11-15",
                  "AWSAccessKeyId": self.alice.access,
                  "SignatureMethod": "HmacSHA256", "SignatureVersion": "2",
                  "Timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                             time.gmtime())}
        to_sign = sig.string_to_sign_v2("POST", "localhost:8773", "/",
                                        params.items())
        for secret, code in ((self.alice.secret, 200), ("bad", 401)):
            body = dict(params, Signature=sig.signature_v2(
                secret, "HmacSHA256", to_sign))
            d = self.ec2.request(
                "POST", "http://localhost:8773/",
                data=urlencode(body).encode(), headers={
                    "Content-Type": "application/x-www-form-urlencoded"})
            self.ec2.flush()
            response = self.successResultOf(d)
            self.assertEqual(response.code, code, self.successResultOf(
                response.content()))

    def test_too_large_body_is_an_ec2_error(self):
        d = self.ec2.request("POST", "http://localhost:8773/",
                             data=b"Action=DescribeRegions&x=" +
                             b"a" * 200000, headers={
                                 "Content-Type":
                                 "application/x-www-form-urlencoded"})
        self.ec2.flush()
        response = self.successResultOf(d)
        self.assertEqual(response.code, 413)
        self.assertIn(b"<Code>InvalidRequest</Code>",
                      self.successResultOf(response.content()))

    def test_invalid_action(self):
        claim = ec2_auth  # noqa: F841 - the module is importable
        self.error("DescribeVpcs", "InvalidAction")


class ActionTests(Ec2TestCase):
    def test_zones_images_types_groups(self):
        zones = self.call("DescribeAvailabilityZones")
        self.assertEqual(zones["AvailabilityZones"][0]["ZoneName"], "nova")
        ami = self.ami()
        self.assertRegex(ami, r"^ami-[0-9a-f]{8}$")
        self.assertEqual(self.ami(), ami)  # stable
        self.assertEqual(len(self.call("DescribeImages",
                                       ImageIds=[ami])["Images"]), 1)
        self.error("DescribeImages", "InvalidAMIID.Malformed",
                   ImageIds=["ami-zz"])
        types = self.call("DescribeInstanceTypes")["InstanceTypes"]
        self.assertEqual({t["InstanceType"]: t["VCpuInfo"]["DefaultVCpus"]
                          for t in types}, {"m1.tiny": 1, "m1.small": 2})
        self.assertEqual(types[0]["MemoryInfo"]["SizeInMiB"], 512)
        groups = self.call("DescribeSecurityGroups")["SecurityGroups"]
        self.assertEqual([g["GroupName"] for g in groups], ["default"])
        self.error("DescribeSecurityGroups", "InvalidGroup.NotFound",
                   GroupNames=["web"])

    def test_run_describe_filters_and_tags(self):
        import base64
        run = self.run_instance(
            MinCount=2, MaxCount=2, UserData=base64.b64encode(
                b"#!/bin/sh\n").decode(),
            TagSpecifications=[{"ResourceType": "instance", "Tags": [
                {"Key": "Name", "Value": "web"},
                {"Key": "env", "Value": "prod"}]}])
        self.assertEqual(len(run["Instances"]), 2)
        first = run["Instances"][0]
        self.assertRegex(first["InstanceId"], r"^i-[0-9a-f]{8}$")
        self.assertEqual(first["State"], {"Code": 0, "Name": "pending"})
        self.assertEqual(first["InstanceType"], "m1.tiny")
        row = self.task_api.calls[-1][1][0]
        self.assertEqual(first["InstanceId"], f"i-{row.id:08x}")
        self.assertEqual(row.metadata, {"Name": "web", "env": "prod"})
        self.assertEqual(row.image_ref, IMAGE_ID)
        # the metadata API's instance id is the same
        from twisted_compute.metadata.base import ec2_id
        self.assertEqual(ec2_id("i", row.id), first["InstanceId"])

        described = self.call("DescribeInstances")
        self.assertEqual(len(described["Reservations"]), 1)
        self.assertEqual(described["Reservations"][0]["ReservationId"],
                         run["ReservationId"])
        ids = [i["InstanceId"] for i in
               described["Reservations"][0]["Instances"]]
        self.assertEqual(sorted(ids), sorted(i["InstanceId"] for i in
                                             run["Instances"]))

        def found(**params):
            return [i["InstanceId"] for r in self.call(
                "DescribeInstances", **params)["Reservations"]
                for i in r["Instances"]]
        self.assertEqual(len(found(Filters=[{"Name": "tag:env",
                                             "Values": ["prod"]}])), 2)
        self.assertEqual(found(Filters=[{"Name": "tag:env",
                                         "Values": ["dev"]}]), [])
        self.assertEqual(len(found(Filters=[{"Name": "tag-key",
                                             "Values": ["Name"]}])), 2)
        self.assertEqual(len(found(Filters=[{
            "Name": "instance-state-name", "Values": ["pending"]}])), 2)
        self.assertEqual(found(Filters=[{
            "Name": "instance-state-name", "Values": ["running"]}]), [])
        self.assertEqual(found(Filters=[{"Name": "instance-id",
                                         "Values": [ids[0]]}]), [ids[0]])
        self.assertEqual(len(found(Filters=[{
            "Name": "image-id", "Values": [self.ami()]}])), 2)
        self.assertEqual(found(InstanceIds=[ids[1]]), [ids[1]])
        self.error("DescribeInstances", "InvalidInstanceID.NotFound",
                   InstanceIds=["i-7fffffff"])
        self.error("DescribeInstances", "InvalidInstanceID.Malformed",
                   InstanceIds=["x-1"])
        self.error("DescribeInstances", "InvalidParameterValue",
                   Filters=[{"Name": "colour", "Values": ["x"]}])

        # MaxResults and NextToken page through them
        more = self.run_instance()
        page = self.call("DescribeInstances", MaxResults=5)
        self.assertNotIn("NextToken", page)
        for _ in range(3):
            self.run_instance()
        page = self.call("DescribeInstances", MaxResults=5)
        first_page = [i["InstanceId"] for r in page["Reservations"]
                      for i in r["Instances"]]
        self.assertEqual(len(first_page), 5)
        rest = self.call("DescribeInstances", MaxResults=5,
                         NextToken=page["NextToken"])
        second = [i["InstanceId"] for r in rest["Reservations"]
                  for i in r["Instances"]]
        self.assertEqual(len(second), 1)
        self.assertNotIn(second[0], first_page)
        del more

    def test_client_token_is_idempotent(self):
        one = self.run_instance(ClientToken="abc")
        two = self.run_instance(ClientToken="abc")
        self.assertEqual(one["ReservationId"], two["ReservationId"])
        self.assertEqual(len(self.task_api.calls), 1)

    def test_run_errors(self):
        self.error("RunInstances", "InvalidAMIID.NotFound",
                   ImageId="ami-00000001", MinCount=1, MaxCount=1)
        self.error("RunInstances", "InvalidParameterValue",
                   ImageId=self.ami(), InstanceType="m9.huge",
                   MinCount=1, MaxCount=1)
        self.error("RunInstances", "InvalidKeyPair.NotFound",
                   ImageId=self.ami(), InstanceType="m1.tiny",
                   KeyName="nope", MinCount=1, MaxCount=1)
        self.error("RunInstances", "InvalidParameterValue",
                   ImageId=self.ami(), InstanceType="m1.tiny",
                   MinCount=3, MaxCount=2)

    def test_power_console_terminate(self):
        rpc = self.use_rpc() if hasattr(self, "use_rpc") else None
        if rpc is None:
            rpc = RecordingRPC()
            self.services.compute_api.compute_rpcapi = rpc
        iid = self.run_instance()["Instances"][0]["InstanceId"]
        uuid = self.task_api.calls[-1][1][0].uuid
        self.set_state(uuid, vm_state="active", task_state=None,
                       host="compute1")
        state = self.call("DescribeInstances", InstanceIds=[iid])[
            "Reservations"][0]["Instances"][0]["State"]
        self.assertEqual(state, {"Code": 16, "Name": "running"})
        stopped = self.call("StopInstances", InstanceIds=[iid])[
            "StoppingInstances"][0]
        self.assertEqual(stopped["CurrentState"]["Name"], "stopping")
        self.assertEqual(stopped["PreviousState"]["Name"], "running")
        self.assertEqual(rpc.casts[-1][:2], ("stop_instance", uuid))
        self.set_state(uuid, vm_state="stopped", task_state=None)
        started = self.call("StartInstances", InstanceIds=[iid])[
            "StartingInstances"][0]
        self.assertEqual(started["PreviousState"]["Code"], 80)
        self.set_state(uuid, vm_state="active", task_state=None)
        self.call("RebootInstances", InstanceIds=[iid])
        self.assertEqual(rpc.casts[-1][:2], ("reboot_instance", uuid))
        import base64
        output = self.call("GetConsoleOutput", InstanceId=iid)
        self.assertEqual(base64.b64decode(output["Output"]),
                         b"line 1\nline 2")
        attribute = self.call("DescribeInstanceAttribute", InstanceId=iid,
                              Attribute="instanceType")
        self.assertEqual(attribute["InstanceType"]["Value"], "m1.tiny")
        attribute = self.call("DescribeInstanceAttribute", InstanceId=iid,
                              Attribute="disableApiTermination")
        self.assertEqual(attribute["DisableApiTermination"]["Value"],
                         False)
        self.error("DescribeInstanceAttribute", "InvalidParameterValue",
                   InstanceId=iid, Attribute="colour")
        gone = self.call("TerminateInstances", InstanceIds=[iid])[
            "TerminatingInstances"][0]
        self.assertEqual(gone["CurrentState"]["Name"], "shutting-down")
        self.assertEqual(rpc.casts[-1][:2], ("terminate_instance", uuid))

    def test_terminate_without_host_is_terminated_and_still_listed(self):
        iid = self.run_instance()["Instances"][0]["InstanceId"]
        gone = self.call("TerminateInstances", InstanceIds=[iid])[
            "TerminatingInstances"][0]
        self.assertEqual(gone["CurrentState"], {"Code": 48,
                                                "Name": "terminated"})
        state = self.call("DescribeInstances", InstanceIds=[iid])[
            "Reservations"][0]["Instances"][0]["State"]
        self.assertEqual(state["Name"], "terminated")

    def test_key_pairs(self):
        made = self.call("CreateKeyPair", KeyName="k1")
        self.assertIn("PRIVATE KEY", made["KeyMaterial"])
        self.error("CreateKeyPair", "InvalidKeyPair.Duplicate",
                   KeyName="k1")
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
        line = ed25519.Ed25519PrivateKey.generate().public_key(
        ).public_bytes(serialization.Encoding.OpenSSH,
                       serialization.PublicFormat.OpenSSH)
        imported = self.call("ImportKeyPair", KeyName="k2",
                             PublicKeyMaterial=line)
        self.assertTrue(imported["KeyFingerprint"])
        self.error("ImportKeyPair", "InvalidKeyPair.Format", KeyName="k3",
                   PublicKeyMaterial=b"hello")
        names = [k["KeyName"] for k in
                 self.call("DescribeKeyPairs")["KeyPairs"]]
        self.assertEqual(names, ["k1", "k2"])
        self.assertNotIn("KeyMaterial",
                         self.call("DescribeKeyPairs")["KeyPairs"][0])
        self.error("DescribeKeyPairs", "InvalidKeyPair.NotFound",
                   KeyNames=["k9"])
        self.call("DeleteKeyPair", KeyName="k1")
        self.assertEqual([k["KeyName"] for k in self.call(
            "DescribeKeyPairs")["KeyPairs"]], ["k2"])
        run = self.run_instance(KeyName="k2")
        self.assertEqual(run["Instances"][0]["KeyName"], "k2")

    def test_tags(self):
        iid = self.run_instance()["Instances"][0]["InstanceId"]
        uuid = self.task_api.calls[-1][1][0].uuid
        self.set_state(uuid, vm_state="active", task_state=None)
        self.call("CreateTags", Resources=[iid],
                  Tags=[{"Key": "a", "Value": "1"},
                        {"Key": "b", "Value": "2"}])
        tags = self.call("DescribeTags")["Tags"]
        self.assertEqual([(t["ResourceId"], t["Key"], t["Value"])
                          for t in tags], [(iid, "a", "1"), (iid, "b", "2")])
        self.assertEqual(len(self.call("DescribeTags", Filters=[
            {"Name": "key", "Values": ["b"]}])["Tags"]), 1)
        self.call("DeleteTags", Resources=[iid], Tags=[{"Key": "a"}])
        self.assertEqual([t["Key"] for t in self.call(
            "DescribeTags")["Tags"]], ["b"])
        self.error("CreateTags", "InvalidID", Resources=["vol-1"],
                   Tags=[{"Key": "a", "Value": "1"}])
        # A NUL (which PostgreSQL refuses in any text) is a clear error.
        parsed = self.error("CreateTags", "InvalidParameterValue",
                            Resources=[iid],
                            Tags=[{"Key": "c", "Value": "x\x00"}])
        self.assertIn("NUL", parsed["Error"]["Message"])


class IsolationTests(Ec2TestCase):
    """Every action that names an instance: another project's is
    InvalidInstanceID.NotFound, and lists never show it."""

    NAMED = {
        "DescribeInstances": lambda iid: {"InstanceIds": [iid]},
        "TerminateInstances": lambda iid: {"InstanceIds": [iid]},
        "StopInstances": lambda iid: {"InstanceIds": [iid]},
        "StartInstances": lambda iid: {"InstanceIds": [iid]},
        "RebootInstances": lambda iid: {"InstanceIds": [iid]},
        "GetConsoleOutput": lambda iid: {"InstanceId": iid},
        "DescribeInstanceAttribute": lambda iid: {
            "InstanceId": iid, "Attribute": "userData"},
        "CreateTags": lambda iid: {"Resources": [iid], "Tags": [
            {"Key": "x", "Value": "y"}]},
        "DeleteTags": lambda iid: {"Resources": [iid]},
    }

    def test_another_projects_instance_is_not_found_everywhere(self):
        self.services.compute_api.compute_rpcapi = RecordingRPC()
        run = self.run_instance(TagSpecifications=[{
            "ResourceType": "instance", "Tags": [{"Key": "k",
                                                   "Value": "v"}]}])
        iid = run["Instances"][0]["InstanceId"]
        uuid = self.task_api.calls[-1][1][0].uuid
        self.set_state(uuid, vm_state="active", task_state=None,
                       host="compute1")
        for action, params in self.NAMED.items():
            self.error(action, "InvalidInstanceID.NotFound",
                       credential=self.bob, **params(iid))
        row = self.row(uuid)
        self.assertEqual((row.vm_state, row.task_state, row.deleted),
                         ("active", None, 0))
        # lists: nothing of alice's for bob
        self.assertEqual(self.call("DescribeInstances",
                                   self.bob)["Reservations"], [])
        self.assertEqual(self.call("DescribeTags", self.bob)["Tags"], [])
        self.call("CreateKeyPair", KeyName="alices")
        self.assertEqual(self.call("DescribeKeyPairs",
                                   self.bob)["KeyPairs"], [])
        self.call("DeleteKeyPair", self.bob, KeyName="alices")
        self.assertEqual(len(self.call("DescribeKeyPairs")["KeyPairs"]), 1)
        # a private image of another project is invisible
        from tests.api.test_servers_base import PRIVATE_IMAGE_ID
        from twisted_compute.api.ec2 import ids
        private = ids.image_id(PRIVATE_IMAGE_ID)
        self.assertNotIn(private, [i["ImageId"] for i in self.call(
            "DescribeImages")["Images"]])
        self.error("RunInstances", "InvalidAMIID.NotFound",
                   ImageId=private, MinCount=1, MaxCount=1)
        groups = self.call("DescribeSecurityGroups", self.bob)
        self.assertEqual(groups["SecurityGroups"][0]["OwnerId"], "p2")
        # and alice still sees hers, tag intact
        mine = self.call("DescribeInstances", InstanceIds=[iid])
        self.assertEqual(mine["Reservations"][0]["Instances"][0][
            "Tags"], [{"Key": "k", "Value": "v"}])


class ClientTokenConcurrencyTests(Ec2TestCase):
    """Identical RunInstances with one ClientToken at the same time make
    one reservation: in one process (the second waits for the first), and
    across processes (two Ec2Cloud objects on one database: the unique
    constraint on project and token decides, the other waits for the
    instances)."""

    def setUp(self):
        super().setUp()
        from twisted_compute.api.ec2 import cloud
        from twisted_compute.context import RequestContext
        self.cloud_module = cloud
        self.context = RequestContext("alice", "p1", ("member", "reader"))
        self.gate = []
        self.made = []
        real_create = self.services.compute_api.create

        async def gated_create(context, body, reservation_id=None):
            gate = Deferred()
            self.gate.append(gate)
            await gate
            self.made.append(reservation_id)
            return await real_create(context, body,
                                     reservation_id=reservation_id)
        self.patch(self.services.compute_api, "create", gated_create)

    def params(self, **extra):
        return {"ImageId": self.ami(), "InstanceType": "m1.tiny",
                "MinCount": "1", "MaxCount": "1", "ClientToken": "tok",
                **extra}

    def run_on(self, cloud, **extra):
        return ensureDeferred(cloud.RunInstances(self.context,
                                                 self.params(**extra)))

    def test_same_process(self):
        cloud = self.cloud_module.Ec2Cloud(self.services)
        first, second = self.run_on(cloud), self.run_on(cloud)
        self.assertNoResult(first)
        self.assertNoResult(second)
        self.assertEqual(len(self.gate), 1)
        self.gate[0].callback(None)
        one, two = self.successResultOf(first), self.successResultOf(second)
        self.assertEqual(one["reservationId"], two["reservationId"])
        self.assertEqual(len(self.made), 1)
        self.assertEqual(len(two["instancesSet"]), 1)

    def test_two_processes(self):
        worker_a = self.cloud_module.Ec2Cloud(self.services)
        worker_b = self.cloud_module.Ec2Cloud(self.services)
        first = self.run_on(worker_a)
        second = self.run_on(worker_b)
        self.assertNoResult(second)  # waits for worker_a's instances
        self.assertEqual(len(self.gate), 1)
        self.reactor.advance(1.0)
        self.assertNoResult(second)
        self.gate[0].callback(None)
        one = self.successResultOf(first)
        self.reactor.advance(self.cloud_module.CLIENT_TOKEN_POLL)
        two = self.successResultOf(second)
        self.assertEqual(one["reservationId"], two["reservationId"])
        self.assertEqual(len(self.made), 1)
        self.assertEqual([i["instanceId"] for i in one["instancesSet"]],
                         [i["instanceId"] for i in two["instancesSet"]])

    def test_other_process_still_running_times_out(self):
        worker_a = self.cloud_module.Ec2Cloud(self.services)
        worker_b = self.cloud_module.Ec2Cloud(self.services)
        self.run_on(worker_a)
        second = self.run_on(worker_b)
        self.reactor.pump([self.cloud_module.CLIENT_TOKEN_POLL] * int(
            self.cloud_module.CLIENT_TOKEN_WAIT /
            self.cloud_module.CLIENT_TOKEN_POLL + 2))
        failure = self.failureResultOf(second)
        self.assertEqual(failure.value.code, "RequestLimitExceeded")
        self.gate[0].callback(None)

    def test_failed_run_frees_the_token(self):
        cloud = self.cloud_module.Ec2Cloud(self.services)
        first, second = self.run_on(cloud), self.run_on(cloud)
        self.gate[0].errback(RuntimeError("the database went away"))
        self.failureResultOf(first, RuntimeError)
        # The waiting request ran again, claimed the freed token.
        self.assertEqual(len(self.gate), 2)
        self.gate[1].callback(None)
        two = self.successResultOf(second)
        self.assertEqual(len(two["instancesSet"]), 1)
        again = self.successResultOf(self.run_on(cloud))
        self.assertEqual(again["reservationId"], two["reservationId"])
        self.assertEqual(len(self.made), 1)

    def test_tokens_are_per_project(self):
        from twisted_compute.context import RequestContext
        cloud = self.cloud_module.Ec2Cloud(self.services)
        first = self.run_on(cloud)
        other = ensureDeferred(cloud.RunInstances(
            RequestContext("bob", "p2", ("member", "reader")),
            self.params()))
        self.assertEqual(len(self.gate), 2)
        for gate in self.gate:
            gate.callback(None)
        self.assertNotEqual(self.successResultOf(first)["reservationId"],
                            self.successResultOf(other)["reservationId"])
