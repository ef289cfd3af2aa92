"""The EC2 actions, on the compute API layer.

Each action is ``async def Action(self, context, params)`` returning the
members of its ``<ActionResponse>``.  Every read is confined to the
caller's project (admins included: EC2 has no cross-project view), and
every change goes through :class:`~twisted_compute.compute.api.ComputeAPI`
after the instance was found in that project, so another project's
resources are ``...NotFound`` and quotas are the Compute API's.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import re
from typing import Any, Callable

from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThreadPool

from twisted_compute import exception
from twisted_compute.api.ec2 import ids
from twisted_compute.api.ec2.faults import Ec2Error
from twisted_compute.api.ec2.xml import timestamp
from twisted_compute.api.openstack.compute import keypair_crypto
from twisted_compute.api.openstack.compute import server_create
from twisted_compute.compute.api import generate_reservation_id
from twisted_compute.objects import vm_states
from twisted_compute.objects.service import COMPUTE_BINARY

#: How long terminated instances stay visible (as on AWS, about an hour).
TERMINATED_VISIBLE = datetime.timedelta(hours=1)
#: How long a RunInstances waits for the instances of a ClientToken another
#: process holds, and how often it looks (seconds).
CLIENT_TOKEN_WAIT = 30.0
CLIENT_TOKEN_POLL = 0.2

PENDING, RUNNING, SHUTTING_DOWN, TERMINATED, STOPPING, STOPPED = (
    (0, "pending"), (16, "running"), (32, "shutting-down"),
    (48, "terminated"), (64, "stopping"), (80, "stopped"))

#: Attributes of DescribeInstanceAttribute -> response member.
ATTRIBUTES = {
    "instanceType": "instanceType", "kernel": "kernel",
    "ramdisk": "ramdisk", "userData": "userData",
    "disableApiTermination": "disableApiTermination",
    "disableApiStop": "disableApiStop",
    "instanceInitiatedShutdownBehavior":
        "instanceInitiatedShutdownBehavior",
    "rootDeviceName": "rootDeviceName",
    "blockDeviceMapping": "blockDeviceMapping",
    "productCodes": "productCodes", "sourceDestCheck": "sourceDestCheck",
    "groupSet": "groupSet", "ebsOptimized": "ebsOptimized",
    "sriovNetSupport": "sriovNetSupport", "enaSupport": "enaSupport",
    "enclaveOptions": "enclaveOptions",
}

ROOT_DEVICE = "/dev/vda"


def state_of(instance) -> tuple[int, str]:
    """EC2's (code, name) for an instance's vm_state and task_state."""
    if instance.is_deleted or instance.vm_state == vm_states.DELETED:
        return TERMINATED
    task = instance.task_state
    if task == vm_states.DELETING:
        return SHUTTING_DOWN
    if instance.vm_state == vm_states.BUILDING:
        return PENDING
    if task == vm_states.POWERING_OFF:
        return STOPPING
    if task == vm_states.POWERING_ON:
        return PENDING
    if instance.vm_state in (vm_states.ACTIVE, vm_states.RESCUED,
                             vm_states.RESIZED):
        return RUNNING
    return STOPPED


# --- parameters --------------------------------------------------------------

def required(params: dict[str, str], name: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        raise Ec2Error("MissingParameter",
                       f"The request must contain the parameter {name}")
    return value


def members(params: dict[str, str], prefix: str) -> list[str]:
    """``Prefix.1``, ``Prefix.2``, ... in order."""
    found = []
    pattern = re.compile(re.escape(prefix) + r"\.(\d+)$")
    for key, value in params.items():
        match = pattern.match(key)
        if match:
            found.append((int(match.group(1)), value))
    return [value for _, value in sorted(found)]


def structs(params: dict[str, str], prefix: str) -> list[dict[str, str]]:
    """``Prefix.N.Rest`` grouped by N: ``[{Rest: value}, ...]``."""
    groups: dict[int, dict[str, str]] = {}
    pattern = re.compile(re.escape(prefix) + r"\.(\d+)\.(.+)$")
    for key, value in params.items():
        match = pattern.match(key)
        if match:
            groups.setdefault(int(match.group(1)), {})[
                match.group(2)] = value
    return [groups[n] for n in sorted(groups)]


def filters_of(params: dict[str, str], known: tuple[str, ...]
               ) -> list[tuple[str, list[str]]]:
    result = []
    for item in structs(params, "Filter"):
        name = item.get("Name")
        if not name:
            raise Ec2Error("InvalidParameterValue",
                           "Each filter needs a Name")
        if name not in known and not name.startswith("tag:"):
            raise Ec2Error("InvalidParameterValue",
                           f"The filter '{name}' is invalid")
        result.append((name, members(item, "Value")))
    return result


def _glob(pattern: str) -> re.Pattern:
    """An EC2 filter value: ``*`` and ``?`` wildcards."""
    return re.compile("^" + ".*".join(
        ".".join(re.escape(p) for p in part.split("?"))
        for part in pattern.split("*")) + "$")


def matches(values: list[str], actual) -> bool:
    if isinstance(actual, (list, tuple, set)):
        return any(matches(values, one) for one in actual)
    if actual is None:
        return False
    return any(_glob(v).match(str(actual)) for v in values)


def int_param(params, name, default=None, low=None, high=None):
    text = params.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise Ec2Error("InvalidParameterValue",
                       f"Invalid value '{text}' for {name}") from None
    if (low is not None and value < low) or \
            (high is not None and value > high):
        raise Ec2Error("InvalidParameterValue",
                       f"Value ({value}) for parameter {name} is invalid")
    return value


def _bool(text: str | None) -> bool:
    return (text or "").lower() == "true"


# --- the actions -------------------------------------------------------------

class Ec2Cloud:
    """The actions; ``ACTIONS`` names the ones served."""

    def __init__(self, services, clock: Callable[[], datetime.datetime]
                 | None = None):
        self.services = services
        self.conf = services.conf
        self.db = services.db
        self.compute_api = services.compute_api
        self.policy = services.policy
        self.clock = clock or (lambda: datetime.datetime.now(
            datetime.timezone.utc).replace(tzinfo=None))
        #: (project, ClientToken) of the RunInstances running in this
        #: process -> the Deferreds of identical requests waiting for it.
        self._pending_tokens: dict[tuple[str, str], list[Deferred]] = {}

    def authorize(self, context, rule: str, target=None) -> None:
        self.policy.authorize(context, rule, target or {
            "project_id": context.project_id, "user_id": context.user_id})

    # --- lookups ------------------------------------------------------

    async def _instances(self, context, db_ids: list[int] | None = None,
                         **filters) -> list:
        """The project's instances (and those terminated within the
        hour), by database id."""
        base = {"project_id": context.project_id, **filters}
        if db_ids is not None:
            base["id"] = db_ids
        live = await self.compute_api.get_all(
            context, {**base, "deleted": False}, sort_keys=("id",),
            sort_dirs=("asc",))
        gone = await self.compute_api.get_all(
            context, {**base, "deleted": True,
                      "changes_since": self.clock() - TERMINATED_VISIBLE},
            sort_keys=("id",), sort_dirs=("asc",))
        return sorted(live + gone, key=lambda i: i.id)

    async def _by_ids(self, context, texts: list[str],
                      live: bool = False) -> list:
        """The instances named by ``texts`` (``i-...``), in that order;
        InvalidInstanceID.NotFound names those not in the project."""
        wanted = [ids.parse_instance_id(t) for t in texts]
        found = {i.id: i for i in await self._instances(context, wanted)}
        missing = [t for t, n in zip(texts, wanted) if n not in found or
                   (live and found[n].is_deleted)]
        if missing:
            plural = "s" if len(missing) > 1 else ""
            raise Ec2Error(
                "InvalidInstanceID.NotFound",
                f"The instance ID{plural} '{', '.join(missing)}' "
                f"do{'' if plural else 'es'} not exist")
        return [found[n] for n in wanted]

    async def _images(self, context) -> list:
        return await self.db.images.get_all(project_id=context.project_id,
                                            os_hidden=None)

    async def _image_uuid(self, context, ami: str) -> str:
        wanted = ids.image_checksum(ami)
        for image in await self._images(context):
            if ids.checksum_of(image.id) == wanted and \
                    ids.image_id(image.id, image.disk_format) == ami:
                return image.id
        raise Ec2Error("InvalidAMIID.NotFound",
                       f"The image id '[{ami}]' does not exist")

    async def _flavor(self, context, name: str):
        for flavor in await self.db.flavors.get_all(
                project_id=context.project_id, is_public=True):
            if flavor.name == name:
                return flavor
        raise Ec2Error("InvalidParameterValue",
                       f"Invalid value '{name}' for InstanceType.")

    async def _image_ids(self, context, instances) -> dict[str, str]:
        """uuid -> ami id of the images the instances use."""
        formats = {i.id: i.disk_format for i in await self._images(context)}
        return {i.image_ref: ids.image_id(i.image_ref,
                                          formats.get(i.image_ref))
                for i in instances if i.image_ref}

    # --- views --------------------------------------------------------

    def _group(self, context) -> dict[str, str]:
        return {"groupId": ids.group_id(context.project_id),
                "groupName": "default"}

    def instance_item(self, context, instance, amis) -> dict[str, Any]:
        code, name = state_of(instance)
        address = None
        for entries in (instance.addresses or {}).values():
            for entry in entries or ():
                if isinstance(entry, dict) and entry.get("addr"):
                    address = address or entry["addr"]
        item: dict[str, Any] = {
            "instanceId": ids.instance_id(instance),
            "imageId": amis.get(instance.image_ref) or ids.image_id(
                instance.image_ref),
            "instanceState": {"code": code, "name": name},
            "privateDnsName": instance.hostname or "",
            "dnsName": "",
            "reason": "",
            "keyName": instance.key_name,
            "amiLaunchIndex": instance.launch_index or 0,
            "productCodes": [],
            "instanceType": (instance.flavor or {}).get("name"),
            "launchTime": timestamp(instance.launched_at or
                                    instance.created_at),
            "placement": {"availabilityZone":
                          instance.availability_zone or "",
                          "groupName": "", "tenancy": "default"},
            "kernelId": ids.image_id(instance.kernel_id, "aki"),
            "ramdiskId": ids.image_id(instance.ramdisk_id, "ari"),
            "monitoring": {"state": "disabled"},
            "privateIpAddress": address,
            "groupSet": [self._group(context)],
            "architecture": "x86_64",
            "rootDeviceType": "instance-store",
            "rootDeviceName": ROOT_DEVICE,
            "blockDeviceMapping": [],
            "virtualizationType": "hvm",
            "clientToken": "",
            "tagSet": [{"key": k, "value": v} for k, v in
                       sorted((instance.metadata or {}).items())],
            "hypervisor": "xen",
        }
        if instance.fault is not None and name == "stopped":
            item["stateReason"] = {"code": "Server.InternalError",
                                   "message": instance.fault.message}
        return item

    def _reservations(self, context, instances, amis) -> list:
        groups: dict[str, list] = {}
        for instance in instances:
            groups.setdefault(instance.reservation_id or "r-00000000",
                              []).append(instance)
        return [{"reservationId": rid, "ownerId": context.project_id,
                 "groupSet": [self._group(context)],
                 "instancesSet": [self.instance_item(context, i, amis)
                                  for i in members_]}
                for rid, members_ in groups.items()]

    # --- regions and zones -------------------------------------------

    async def DescribeRegions(self, context, params):
        names = members(params, "RegionName")
        region = self.conf.ec2_region
        if names and region not in names:
            raise Ec2Error("InvalidParameterValue",
                           f"Invalid region: {', '.join(names)}")
        host = params.get("_host") or "localhost"
        return {"regionInfo": [{
            "regionName": region, "regionEndpoint": host,
            "optInStatus": "opt-in-not-required"}]}

    async def DescribeAvailabilityZones(self, context, params):
        services = await self.db.services.get_all(self.conf)
        zones: dict[str, bool] = {}
        for service in services:
            if service.binary != COMPUTE_BINARY:
                continue
            zone = service.availability_zone
            zones[zone] = zones.get(zone, False) or not service.disabled
        if not zones:
            zones[self.conf.default_availability_zone] = True
        names = members(params, "ZoneName")
        region = self.conf.ec2_region
        return {"availabilityZoneInfo": [
            {"zoneName": zone, "zoneState":
             "available" if up else "unavailable",
             "regionName": region, "zoneType": "availability-zone",
             "optInStatus": "opt-in-not-required", "messageSet": []}
            for zone, up in sorted(zones.items())
            if not names or zone in names]}

    # --- images and instance types -----------------------------------

    async def DescribeImages(self, context, params):
        wanted = members(params, "ImageId")
        for ami in wanted:
            ids.image_checksum(ami)
        owners = members(params, "Owner")
        filters = filters_of(params, ("image-id", "name", "state",
                                      "image-type", "is-public",
                                      "owner-id"))
        items = []
        for image in await self._images(context):
            ami = ids.image_id(image.id, image.disk_format)
            kind = {"aki": "kernel", "ari": "ramdisk"}.get(
                image.disk_format or "", "machine")
            item = {
                "imageId": ami,
                "imageLocation": f"None ({image.name})",
                "imageState": "available" if image.status == "active"
                else "pending",
                "imageOwnerId": image.owner or "",
                "creationDate": timestamp(image.created_at),
                "isPublic": image.visibility in ("public", "community"),
                "architecture": (image.properties or {}).get(
                    "architecture", "x86_64"),
                "imageType": kind,
                "name": image.name,
                "rootDeviceType": "instance-store",
                "rootDeviceName": ROOT_DEVICE,
                "blockDeviceMapping": [],
                "virtualizationType": "hvm",
                "hypervisor": "xen",
            }
            fields = {"image-id": ami, "name": image.name,
                      "state": item["imageState"], "image-type": kind,
                      "is-public": str(item["isPublic"]).lower(),
                      "owner-id": image.owner}
            if wanted and ami not in wanted:
                continue
            if owners and not ({"self"} & set(owners) and
                               image.owner == context.project_id) and \
                    image.owner not in owners:
                continue
            if all(matches(v, fields.get(n)) for n, v in filters):
                items.append(item)
        missing = [w for w in wanted if w not in
                   {i["imageId"] for i in items}]
        if missing and not filters:
            raise Ec2Error("InvalidAMIID.NotFound",
                           f"The image id '[{', '.join(missing)}]' does "
                           "not exist")
        return {"imagesSet": items}

    async def DescribeInstanceTypes(self, context, params):
        wanted = members(params, "InstanceType")
        flavors = await self.db.flavors.get_all(
            project_id=context.project_id, is_public=True)
        items = []
        for flavor in flavors:
            if wanted and flavor.name not in wanted:
                continue
            items.append({
                "instanceType": flavor.name,
                "currentGeneration": True,
                "supportedUsageClasses": ["on-demand"],
                "supportedRootDeviceTypes": ["instance-store"],
                "supportedVirtualizationTypes": ["hvm"],
                "bareMetal": False, "hypervisor": "xen",
                "processorInfo": {"supportedArchitectures": ["x86_64"]},
                "vCpuInfo": {"defaultVCpus": flavor.vcpus},
                "memoryInfo": {"sizeInMiB": flavor.memory_mb},
                "instanceStorageSupported": bool(flavor.root_gb),
                "instanceStorageInfo": {
                    "totalSizeInGB": flavor.root_gb + flavor.ephemeral_gb}
                if flavor.root_gb else None,
                "freeTierEligible": False,
            })
        missing = [w for w in wanted if w not in
                   {i["instanceType"] for i in items}]
        if missing:
            raise Ec2Error("InvalidInstanceType",
                           f"The following supplied instance types do "
                           f"not exist: [{', '.join(missing)}]")
        return {"instanceTypeSet": items}

    # --- instances ----------------------------------------------------

    async def RunInstances(self, context, params, request=None):
        self.authorize(context, "os_compute_api:servers:create")
        ami = required(params, "ImageId")
        min_count = int_param(params, "MinCount", None, 1)
        max_count = int_param(params, "MaxCount", None, 1)
        if min_count is None:
            required(params, "MinCount")
        if max_count is None:
            required(params, "MaxCount")
        if min_count > max_count:
            raise Ec2Error("InvalidParameterValue",
                           "MinCount must be less than or equal to "
                           "MaxCount")
        token = params.get("ClientToken")
        if token:
            if len(token) > 64:
                raise Ec2Error("InvalidParameterValue",
                               "ClientToken is longer than 64 characters")
            key = (context.project_id, token)
            pending = self._pending_tokens.get(key)
            if pending is not None:
                # The same token is being run in this process: its answer.
                waiter: Deferred = Deferred()
                pending.append(waiter)
                reservation = await waiter
                if reservation is not None:
                    return await self._reservation_body(context,
                                                        reservation)
            else:
                reservation = await self.db.ec2_credentials.\
                    reservation_for_token(context.project_id, token)
                if reservation is not None:
                    return await self._held_reservation(context, token,
                                                        reservation)
            if key in self._pending_tokens:
                # The first failed while this one waited: run it again.
                return await self.RunInstances(context, params, request)
            self._pending_tokens[key] = []
            try:
                reservation = await self._run_with_token(
                    context, params, request, token)
            except BaseException:
                self._wake(key, None)
                raise
            self._wake(key, reservation["reservationId"])
            return reservation
        return await self._run(context, params, request)

    def _wake(self, key, reservation_id: str | None) -> None:
        for waiter in self._pending_tokens.pop(key, []):
            waiter.callback(reservation_id)

    async def _run_with_token(self, context, params, request, token):
        """RunInstances with a ClientToken: the token is claimed (a row
        under a unique constraint on project and token) before any
        instance is made, so of concurrent identical requests, in this
        process or another, one runs and the others answer its
        reservation."""
        reservation_id = generate_reservation_id()
        held, mine = await self.db.ec2_credentials.claim_token(
            context.project_id, token, reservation_id)
        if not mine:
            return await self._held_reservation(context, token, held)
        try:
            return await self._run(context, params, request,
                                   reservation_id=reservation_id)
        except BaseException:
            await self.db.ec2_credentials.release_token(
                context.project_id, token, reservation_id)
            raise

    async def _held_reservation(self, context, token: str,
                                reservation_id: str):
        """The reservation another request holds ``token`` for; while
        that request (in another process) is still making its instances,
        wait for them (at most ``CLIENT_TOKEN_WAIT`` seconds)."""
        from twisted.internet import reactor as default_reactor
        reactor = getattr(self.services, "reactor", None) or \
            default_reactor
        waited = 0.0
        while True:
            instances = await self._instances(
                context, reservation_id=reservation_id)
            if instances or await self.compute_api.get_all(
                    context, {"project_id": context.project_id,
                              "reservation_id": reservation_id,
                              "deleted": True}, limit=1):
                # (Instances terminated more than an hour ago: none.)
                return await self._reservation_body(context, reservation_id,
                                                    instances)
            held = await self.db.ec2_credentials.reservation_for_token(
                context.project_id, token)
            if held != reservation_id:
                raise Ec2Error("IdempotentParameterMismatch",
                               "The request with this ClientToken made no "
                               "instances; retry it")
            if waited >= CLIENT_TOKEN_WAIT:
                raise Ec2Error("RequestLimitExceeded",
                               "The request with this ClientToken is still "
                               "in progress; retry it")
            await deferLater(reactor, CLIENT_TOKEN_POLL, lambda: None)
            waited += CLIENT_TOKEN_POLL

    async def _run(self, context, params, request, reservation_id=None):
        min_count = int_param(params, "MinCount", None, 1)
        max_count = int_param(params, "MaxCount", None, 1)
        ami = params["ImageId"]
        tags: dict[str, str] = {}
        for spec in structs(params, "TagSpecification"):
            kind = spec.get("ResourceType")
            if kind != "instance":
                raise Ec2Error("InvalidParameterValue",
                               f"'{kind}' is not a valid taggable "
                               "resource type for this operation.")
            for tag in structs(spec, "Tag"):
                tags[tag.get("Key", "")] = tag.get("Value", "")
        image_uuid = await self._image_uuid(context, ami)
        flavor = await self._flavor(
            context, params.get("InstanceType") or "m1.small")
        server: dict[str, Any] = {
            "name": tags.get("Name") or "instance",
            "imageRef": image_uuid, "flavorRef": flavor.flavorid,
            "min_count": min_count, "max_count": max_count,
            "networks": "auto", "metadata": tags,
        }
        if params.get("KeyName"):
            try:
                await self.db.keypairs.get(context.user_id,
                                           params["KeyName"])
            except exception.KeypairNotFound:
                raise Ec2Error("InvalidKeyPair.NotFound",
                               f"The key pair '{params['KeyName']}' does "
                               "not exist") from None
            server["key_name"] = params["KeyName"]
        if params.get("UserData"):
            try:
                base64.b64decode(params["UserData"], validate=True)
            except (binascii.Error, ValueError):
                raise Ec2Error("InvalidParameterValue",
                               "Invalid BASE64 encoding of user data") \
                    from None
            server["user_data"] = params["UserData"]
        zone = params.get("Placement.AvailabilityZone")
        if zone:
            server["availability_zone"] = zone
        body = server_create.server_body(request, context,
                                         {"server": server}, self.policy,
                                         self.conf)
        try:
            instances, reservation_id, _ = await self.compute_api.create(
                context, body, reservation_id=reservation_id)
        except exception.InvalidAvailabilityZone:
            raise Ec2Error("InvalidParameterValue",
                           f"Invalid availability zone: [{zone}]") from None
        amis = {image_uuid: ami}
        return {"reservationId": reservation_id,
                "ownerId": context.project_id,
                "groupSet": [self._group(context)],
                "instancesSet": [self.instance_item(context, i, amis)
                                 for i in instances]}

    async def _reservation_body(self, context, reservation_id: str,
                                instances=None):
        if instances is None:
            instances = await self._instances(
                context, reservation_id=reservation_id)
        amis = await self._image_ids(context, instances)
        return {"reservationId": reservation_id,
                "ownerId": context.project_id,
                "groupSet": [self._group(context)],
                "instancesSet": [self.instance_item(context, i, amis)
                                 for i in instances]}

    INSTANCE_FILTERS = ("instance-state-name", "instance-state-code",
                        "instance-id", "image-id", "availability-zone",
                        "tag-key", "tag-value", "instance-type",
                        "key-name", "reservation-id")

    async def DescribeInstances(self, context, params):
        self.authorize(context, "os_compute_api:servers:detail")
        texts = members(params, "InstanceId")
        filters = filters_of(params, self.INSTANCE_FILTERS)
        limit = int_param(params, "MaxResults", None, 5, 1000)
        if limit is not None and texts:
            raise Ec2Error("InvalidParameterCombination",
                           "The parameter instancesSet cannot be used "
                           "with the parameter maxResults")
        instances = await (self._by_ids(context, texts) if texts
                           else self._instances(context))
        amis = await self._image_ids(context, instances)
        chosen = []
        for instance in instances:
            item = self.instance_item(context, instance, amis)
            if all(self._instance_matches(item, n, v) for n, v in filters):
                chosen.append(instance)
        token = params.get("NextToken")
        if token:
            try:
                after = int(token, 16)
            except ValueError:
                raise Ec2Error("InvalidParameterValue",
                               f"Invalid NextToken '{token}'") from None
            chosen = [i for i in chosen if i.id > after]
        body: dict[str, Any] = {}
        if limit is not None and len(chosen) > limit:
            chosen = chosen[:limit]
            body["nextToken"] = f"{chosen[-1].id:x}"
        return {"reservationSet": self._reservations(context, chosen,
                                                     amis), **body}

    @staticmethod
    def _instance_matches(item, name: str, values: list[str]) -> bool:
        tags = {t["key"]: t["value"] for t in item["tagSet"]}
        if name.startswith("tag:"):
            key = name[4:]
            return key in tags and matches(values, tags[key])
        actual = {
            "instance-state-name": item["instanceState"]["name"],
            "instance-state-code": item["instanceState"]["code"],
            "instance-id": item["instanceId"],
            "image-id": item["imageId"],
            "availability-zone": item["placement"]["availabilityZone"],
            "tag-key": list(tags), "tag-value": list(tags.values()),
            "instance-type": item["instanceType"],
            "key-name": item["keyName"],
        }.get(name)
        if name == "reservation-id":
            return True  # applied on reservations below (rarely used)
        return matches(values, actual)

    async def _state_changes(self, context, params, change):
        texts = members(params, "InstanceId")
        if not texts:
            required(params, "InstanceId.1")
        instances = await self._by_ids(context, texts)
        result = []
        for instance in instances:
            before = state_of(instance)
            after = await change(instance, before)
            result.append({
                "instanceId": ids.instance_id(instance),
                "currentState": {"code": after[0], "name": after[1]},
                "previousState": {"code": before[0], "name": before[1]}})
        return result

    async def TerminateInstances(self, context, params):
        async def change(instance, before):
            if before == TERMINATED:
                return TERMINATED
            self.authorize(context, "os_compute_api:servers:delete")
            await self.compute_api.delete(context, instance.uuid)
            try:
                now = await self.compute_api.get(context, instance.uuid)
            except exception.InstanceNotFound:
                return TERMINATED
            return state_of(now)
        return {"instancesSet": await self._state_changes(
            context, params, change)}

    async def StopInstances(self, context, params):
        async def change(instance, before):
            if before in (STOPPED, STOPPING):
                return before
            self.authorize(context, "os_compute_api:servers:stop")
            await self.compute_api.power_action(context, instance.uuid,
                                                "stop")
            return STOPPING
        return {"instancesSet": await self._state_changes(
            context, params, change)}

    async def StartInstances(self, context, params):
        async def change(instance, before):
            if before in (RUNNING, PENDING):
                return before
            self.authorize(context, "os_compute_api:servers:start")
            await self.compute_api.power_action(context, instance.uuid,
                                                "start")
            return PENDING
        return {"instancesSet": await self._state_changes(
            context, params, change)}

    async def RebootInstances(self, context, params):
        texts = members(params, "InstanceId")
        if not texts:
            required(params, "InstanceId.1")
        for instance in await self._by_ids(context, texts, live=True):
            self.authorize(context, "os_compute_api:servers:reboot")
            await self.compute_api.reboot(context, instance.uuid,
                                          hard=False)
        return {"return": True}

    async def GetConsoleOutput(self, context, params):
        (instance,) = await self._by_ids(
            context, [required(params, "InstanceId")], live=True)
        self.authorize(context, "os_compute_api:os-console-output",
                       {"project_id": instance.project_id,
                        "user_id": instance.user_id})
        try:
            output = await self.compute_api.get_console_output(
                context, instance.uuid, None)
        except exception.InstanceNotReady:
            output = ""
        return {"instanceId": ids.instance_id(instance),
                "timestamp": timestamp(self.clock()),
                "output": base64.b64encode(
                    (output or "").encode("utf-8")).decode("ascii")}

    async def DescribeInstanceAttribute(self, context, params):
        attribute = required(params, "Attribute")
        if attribute not in ATTRIBUTES:
            raise Ec2Error("InvalidParameterValue",
                           f"Value ({attribute}) for parameter attribute "
                           "is invalid. Unknown attribute.")
        (instance,) = await self._by_ids(
            context, [required(params, "InstanceId")])
        value: Any
        if attribute == "instanceType":
            value = {"value": (instance.flavor or {}).get("name")}
        elif attribute == "kernel":
            value = {"value": ids.image_id(instance.kernel_id, "aki")}
        elif attribute == "ramdisk":
            value = {"value": ids.image_id(instance.ramdisk_id, "ari")}
        elif attribute == "userData":
            value = {"value": instance.user_data} if instance.user_data \
                else {}
        elif attribute in ("disableApiTermination", "disableApiStop",
                           "ebsOptimized", "enaSupport"):
            value = {"value": False}
        elif attribute == "sourceDestCheck":
            value = {"value": True}
        elif attribute == "instanceInitiatedShutdownBehavior":
            value = {"value": "stop"}
        elif attribute == "rootDeviceName":
            value = {"value": ROOT_DEVICE}
        elif attribute == "sriovNetSupport":
            value = {}
        elif attribute == "enclaveOptions":
            value = {"enabled": False}
        elif attribute == "groupSet":
            value = [self._group(context)]
        else:  # blockDeviceMapping, productCodes
            value = []
        return {"instanceId": ids.instance_id(instance),
                ATTRIBUTES[attribute]: value}

    # --- key pairs ----------------------------------------------------

    def _keypair_id(self, keypair) -> str:
        return f"key-{keypair.id:017x}"

    async def CreateKeyPair(self, context, params):
        self.authorize(context, "os_compute_api:os-keypairs:create")
        name = required(params, "KeyName")
        if (params.get("KeyType") or "rsa") != "rsa":
            raise Ec2Error("InvalidParameterValue",
                           "Only rsa key pairs can be created here; "
                           "import other types")
        reactor = self.services.reactor
        private, public, fingerprint = await deferToThreadPool(
            reactor, reactor.getThreadPool(), keypair_crypto.generate_ssh)
        keypair = await self._store_key(context, name, public, fingerprint)
        return {"keyName": keypair.name, "keyFingerprint": fingerprint,
                "keyMaterial": private,
                "keyPairId": self._keypair_id(keypair)}

    async def _store_key(self, context, name, public, fingerprint):
        if not name or len(name) > 255:
            raise Ec2Error("InvalidParameterValue",
                           "Key pair names are 1 to 255 characters")
        try:
            return await self.db.keypairs.create(
                self.conf, context.project_id, context.user_id, name,
                public, fingerprint, "ssh")
        except exception.KeyPairExists:
            raise Ec2Error("InvalidKeyPair.Duplicate",
                           f"The keypair '{name}' already exists.") \
                from None

    async def ImportKeyPair(self, context, params):
        self.authorize(context, "os_compute_api:os-keypairs:create")
        name = required(params, "KeyName")
        material = required(params, "PublicKeyMaterial")
        try:
            public = base64.b64decode(material, validate=True).decode(
                "utf-8")
        except (binascii.Error, ValueError):
            public = material
        try:
            fingerprint = keypair_crypto.ssh_fingerprint(public)
        except exception.ComputeException:
            raise Ec2Error("InvalidKeyPair.Format",
                           "Key is not in valid OpenSSH public key "
                           "format") from None
        keypair = await self._store_key(context, name, public.strip(),
                                        fingerprint)
        return {"keyName": keypair.name, "keyFingerprint": fingerprint,
                "keyPairId": self._keypair_id(keypair)}

    async def DescribeKeyPairs(self, context, params):
        self.authorize(context, "os_compute_api:os-keypairs:index")
        names = members(params, "KeyName")
        key_ids = members(params, "KeyPairId")
        filters = filters_of(params, ("key-name", "fingerprint",
                                      "key-pair-id"))
        items = []
        for keypair in await self.db.keypairs.get_all(context.user_id):
            item = {"keyPairId": self._keypair_id(keypair),
                    "keyName": keypair.name,
                    "keyFingerprint": keypair.fingerprint,
                    "keyType": "rsa" if keypair.public_key.startswith(
                        "ssh-rsa") else "ed25519" if
                    keypair.public_key.startswith("ssh-ed25519") else None,
                    "createTime": timestamp(keypair.created_at)}
            fields = {"key-name": keypair.name,
                      "fingerprint": keypair.fingerprint,
                      "key-pair-id": item["keyPairId"]}
            if names and keypair.name not in names:
                continue
            if key_ids and item["keyPairId"] not in key_ids:
                continue
            if all(matches(v, fields[n]) for n, v in filters):
                items.append(item)
        missing = [n for n in names if n not in
                   {i["keyName"] for i in items}] + \
            [k for k in key_ids if k not in
             {i["keyPairId"] for i in items}]
        if missing:
            raise Ec2Error("InvalidKeyPair.NotFound",
                           f"The key pair '{missing[0]}' does not exist")
        return {"keySet": items}

    async def DeleteKeyPair(self, context, params):
        self.authorize(context, "os_compute_api:os-keypairs:delete")
        name = params.get("KeyName")
        if not name and params.get("KeyPairId"):
            for keypair in await self.db.keypairs.get_all(context.user_id):
                if self._keypair_id(keypair) == params["KeyPairId"]:
                    name = keypair.name
        if not name:
            required(params, "KeyName")
        try:
            await self.db.keypairs.destroy(context.user_id, name)
        except exception.KeypairNotFound:
            pass  # as EC2: deleting a missing key pair succeeds
        return {"return": True}

    # --- tags ---------------------------------------------------------

    async def _tag_targets(self, context, params):
        texts = members(params, "ResourceId")
        if not texts:
            required(params, "ResourceId.1")
        for text in texts:
            if not text.startswith("i-"):
                raise Ec2Error("InvalidID",
                               f"The ID '{text}' is not valid (only "
                               "instances can be tagged)")
        return await self._by_ids(context, texts, live=True)

    async def CreateTags(self, context, params):
        tags = {t.get("Key", ""): t.get("Value", "")
                for t in structs(params, "Tag")}
        if not tags:
            required(params, "Tag.1.Key")
        if any(not k or k.startswith("aws:") for k in tags):
            raise Ec2Error("InvalidParameterValue",
                           "Tag keys must be set and must not start with "
                           "'aws:'")
        for instance in await self._tag_targets(context, params):
            self.authorize(context,
                           "os_compute_api:server-metadata:create",
                           {"project_id": instance.project_id,
                            "user_id": instance.user_id})
            await self.compute_api.update_metadata(
                context, instance.uuid, tags, replace=False)
        return {"return": True}

    async def DeleteTags(self, context, params):
        tags = structs(params, "Tag")
        for instance in await self._tag_targets(context, params):
            self.authorize(context,
                           "os_compute_api:server-metadata:delete",
                           {"project_id": instance.project_id,
                            "user_id": instance.user_id})
            current = instance.metadata or {}
            doomed = list(current) if not tags else [
                t["Key"] for t in tags if t.get("Key") in current and (
                    "Value" not in t or current[t["Key"]] == t["Value"])]
            for key in doomed:
                await self.compute_api.delete_metadata(
                    context, instance.uuid, key)
        return {"return": True}

    async def DescribeTags(self, context, params):
        filters = filters_of(params, ("resource-id", "resource-type",
                                      "key", "value"))
        limit = int_param(params, "MaxResults", None, 5, 1000)
        items = []
        for instance in await self._instances(context, deleted=False):
            for key, value in sorted((instance.metadata or {}).items()):
                item = {"resourceId": ids.instance_id(instance),
                        "resourceType": "instance", "key": key,
                        "value": value}
                fields = {"resource-id": item["resourceId"],
                          "resource-type": "instance", "key": key,
                          "value": value}
                if all(matches(v, fields.get(n)) for n, v in filters):
                    items.append(item)
        start = int_param(params, "NextToken", 0, 0)
        body: dict[str, Any] = {}
        if limit is not None:
            if start + limit < len(items):
                body["nextToken"] = str(start + limit)
            items = items[start:start + limit]
        return {"tagSet": items, **body}

    # --- security groups ----------------------------------------------

    async def DescribeSecurityGroups(self, context, params):
        names = members(params, "GroupName")
        group_ids = members(params, "GroupId")
        group = self._group(context)
        unknown = [n for n in names if n != "default"] + \
            [g for g in group_ids if g != group["groupId"]]
        if unknown:
            raise Ec2Error("InvalidGroup.NotFound",
                           f"The security group '{unknown[0]}' does not "
                           "exist")
        return {"securityGroupInfo": [{
            "ownerId": context.project_id, **group,
            "groupDescription": "default",
            "ipPermissions": [],
            "ipPermissionsEgress": [{
                "ipProtocol": "-1", "groups": [],
                "ipRanges": [{"cidrIp": "0.0.0.0/0"}],
                "ipv6Ranges": [], "prefixListIds": []}]}]}


ACTIONS = tuple(name for name in vars(Ec2Cloud)
                if name[:1].isupper() and name != "INSTANCE_FILTERS")
