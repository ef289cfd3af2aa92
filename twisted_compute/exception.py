"""Domain exceptions.

Each carries the HTTP status the API answers with (``code``) and a message
built from keyword arguments, so that the same exception can be raised in
any role, cross the bus typed (class name + message) and still become the
right API fault.
"""

from __future__ import annotations


class ComputeException(Exception):
    msg_fmt = "An unknown exception occurred."
    code = 500
    safe = False  # whether the message may be shown to a client for 5xx

    def __init__(self, message: str | None = None, **kwargs):
        self.kwargs = kwargs
        if message is None:
            try:
                message = self.msg_fmt % kwargs
            except (KeyError, TypeError):
                message = self.msg_fmt
        self.message = message
        super().__init__(message)

    def format_message(self) -> str:
        return self.message


class Invalid(ComputeException):
    msg_fmt = "Bad request: %(reason)s"
    code = 400


class ValidationError(Invalid):
    msg_fmt = "Invalid input for field/attribute %(field)s. %(detail)s"


class ExtraSpecValidationError(Invalid):
    msg_fmt = "Validation failed; %(reason)s"


class InvalidInput(Invalid):
    msg_fmt = "Invalid input received: %(reason)s"


class InvalidMarker(Invalid):
    msg_fmt = "marker [%(marker)s] not found"


class InvalidSortKey(Invalid):
    msg_fmt = "Sort key supplied is invalid: %(sort_key)s"


class InvalidRequestURL(Invalid):
    msg_fmt = "%(reason)s"


class NotAuthenticated(ComputeException):
    msg_fmt = "Authentication required"
    code = 401


class Forbidden(ComputeException):
    msg_fmt = "Forbidden"
    code = 403


class PolicyNotAuthorized(Forbidden):
    msg_fmt = "Policy doesn't allow %(action)s to be performed."


class NotFound(ComputeException):
    msg_fmt = "Resource could not be found."
    code = 404


class InstanceNotFound(NotFound):
    msg_fmt = "Instance %(instance_id)s could not be found."


class FlavorNotFound(NotFound):
    msg_fmt = "Flavor %(flavor_id)s could not be found."


class FlavorExtraSpecsNotFound(NotFound):
    msg_fmt = "Flavor %(flavor_id)s has no extra specs with key %(key)s."


class FlavorAccessNotFound(NotFound):
    msg_fmt = ("Flavor access not found for %(flavor_id)s / "
               "%(project_id)s combination.")


class ImageNotFound(NotFound):
    msg_fmt = "Image %(image_id)s could not be found."


class KeypairNotFound(NotFound):
    msg_fmt = "Keypair %(name)s not found for user %(user_id)s"


class NetworkNotFound(NotFound):
    msg_fmt = "Network %(network_id)s could not be found."


class PortNotFound(NotFound):
    msg_fmt = "Port id %(port_id)s could not be found."


class InstanceGroupNotFound(NotFound):
    msg_fmt = "Instance group %(group_uuid)s could not be found."


class ServiceNotFound(NotFound):
    msg_fmt = "Service %(service_id)s could not be found."


class ComputeHostNotFound(NotFound):
    msg_fmt = "Compute host %(host)s could not be found."


class HypervisorNotFound(NotFound):
    msg_fmt = "Hypervisor %(hypervisor_id)s could not be found."


class InstanceMetadataNotFound(NotFound):
    msg_fmt = "Instance %(instance_uuid)s has no metadata with key %(key)s."


class InstanceTagNotFound(NotFound):
    msg_fmt = "Instance %(instance_id)s has no tag '%(tag)s'"


class InstanceActionNotFound(NotFound):
    msg_fmt = "Action for request_id %(request_id)s on instance %(instance_uuid)s not found"


class AvailabilityZoneNotFound(NotFound):
    msg_fmt = "Availability zone %(zone)s could not be found."


class Conflict(ComputeException):
    msg_fmt = "Conflict"
    code = 409


class PinnedZoneConflict(Conflict):
    msg_fmt = "%(reason)s"


class InstanceInvalidState(Conflict):
    msg_fmt = ("Cannot '%(action)s' instance %(instance_uuid)s while it is "
               "in %(attr)s %(state)s")


class InstanceIsLocked(Conflict):
    msg_fmt = "Instance %(instance_uuid)s is locked"


class FlavorExists(Conflict):
    msg_fmt = "Flavor with %(key)s %(value)s already exists."


class FlavorAccessExists(Conflict):
    msg_fmt = ("Flavor access already exists for flavor %(flavor_id)s and "
               "project %(project_id)s combination.")


class FlavorExtraSpecUpdateCreateFailed(Conflict):
    msg_fmt = "Flavor %(id)s extra spec cannot be updated or created."


class KeyPairExists(Conflict):
    msg_fmt = "Key pair '%(key_name)s' already exists."


class InstanceExists(Conflict):
    msg_fmt = "Instance %(name)s already exists."


class ImageExists(Conflict):
    msg_fmt = "Image %(image_id)s already exists."


class TagExists(Conflict):
    msg_fmt = "Tag %(tag)s already exists."


class OverQuota(Forbidden):
    msg_fmt = "Quota exceeded for resources: %(overs)s"


class TooManyInstances(OverQuota):
    msg_fmt = ("Quota exceeded for %(overs)s: Requested %(req)s, but "
               "already used %(used)s of %(allowed)s %(overs)s")


class KeypairLimitExceeded(OverQuota):
    msg_fmt = "Quota exceeded, too many key pairs."


class MetadataLimitExceeded(OverQuota):
    msg_fmt = "Maximum number of metadata items exceeds %(allowed)d"


class RequestTooLarge(ComputeException):
    msg_fmt = "Request is too large."
    code = 413
    safe = True


class VersionNotAcceptable(ComputeException):
    msg_fmt = "Version %(version)s is not supported by the API. Minimum is %(min)s and maximum is %(max)s."
    code = 406
    safe = True


class InvalidAPIVersionString(Invalid):
    msg_fmt = ("API Version String %(version)s is of invalid format. Must "
               "be of format MajorNum.MinorNum.")
    safe = True


class NotImplementedYet(ComputeException):
    msg_fmt = "%(feature)s is not implemented in twisted-compute yet."
    code = 501
    safe = True


class NoValidHost(ComputeException):
    msg_fmt = "No valid host was found. %(reason)s"
    safe = True


class MessagingTimeout(ComputeException):
    msg_fmt = "Timed out waiting for a reply to %(method)s"
    code = 504
    safe = True


class ServiceUnavailable(ComputeException):
    msg_fmt = "Service unavailable: %(reason)s"
    code = 503
    safe = True


class DBUnavailable(ServiceUnavailable):
    """The database refused or dropped the connection (restarting, down,
    unreachable): the request may be retried later."""

    msg_fmt = "Service unavailable: the database is unreachable (%(reason)s)"


class DBQueryTimeout(ComputeException):
    msg_fmt = ("The database query %(query)s timed out after %(seconds)s "
               "seconds ([database] query_timeout), %(where)s")


class DBNotMigrated(ComputeException):
    msg_fmt = ("The database at %(url)s is not at the current schema "
               "(%(current)s, wanted %(head)s): run "
               "'compute-manage --config-file <file> db sync'")


# --- image API ------------------------------------------------------------

class ImageStatusConflict(Conflict):
    msg_fmt = ("Image %(image_id)s is %(status)s: this operation is not "
               "allowed in that status.")


class ImageProtected(Forbidden):
    msg_fmt = "Image %(image_id)s is protected and cannot be deleted."


class ImageReadOnlyAttribute(Forbidden):
    msg_fmt = "Attribute '%(attribute)s' is read-only."


class ImagePropertyNotFound(Conflict):
    msg_fmt = "Property %(name)s does not exist."


class ImageSizeLimitExceeded(ComputeException):
    msg_fmt = ("Image exceeds the storage quota: the upload is larger "
               "than the %(cap)d bytes allowed.")
    code = 413
    safe = True


class ImageDataNotFound(NotFound):
    msg_fmt = "The data of image %(image_id)s could not be found."


class UnsupportedMediaType(ComputeException):
    msg_fmt = "The media type %(content_type)s is not supported; use %(expected)s."
    code = 415
    safe = True


# --- flavor extras, keypairs, quotas, services, hypervisors, server groups

class InvalidKeypair(Invalid):
    msg_fmt = "Keypair data is invalid: %(reason)s"


class InvalidQuotaValue(Invalid):
    msg_fmt = "%(reason)s"


class HostBinaryNotFound(NotFound):
    msg_fmt = "Could not find binary %(binary)s on host %(host)s."


class ComputeServiceUnavailable(Invalid):
    msg_fmt = "Compute service of %(host)s is unavailable at this time."


class ServiceInUse(Conflict):
    msg_fmt = "%(reason)s"


class ServerGroupLimitExceeded(OverQuota):
    msg_fmt = "Quota exceeded, too many server groups."


class ServerGroupMemberLimitExceeded(OverQuota):
    msg_fmt = "Quota exceeded, too many servers in group"


# --- servers (compute API layer) -------------------------------------------

class TooManyTags(Invalid):
    msg_fmt = "The number of tags exceeded the per-server limit %(limit)d"


class ImageNotFoundForBoot(Invalid):
    msg_fmt = "Image %(image_id)s could not be found."


class ImageNotActive(Invalid):
    msg_fmt = "Image %(image_id)s is not active."


class InvalidFlavorRef(Invalid):
    msg_fmt = "Invalid flavorRef provided."


class FlavorMemoryTooSmall(Invalid):
    msg_fmt = "Flavor's memory is too small for requested image."


class FlavorDiskTooSmall(Invalid):
    msg_fmt = "Flavor's disk is too small for requested image."


class InvalidAvailabilityZone(Invalid):
    msg_fmt = "The requested availability zone is not available"


class InstanceNotReady(Conflict):
    msg_fmt = "Instance %(instance_id)s is not ready"


class InstanceUnknownAction(Invalid):
    msg_fmt = "There is no such action: %(action)s"


class ServerActionNotSupported(NotImplementedYet):
    msg_fmt = ("The '%(action)s' server action is not supported by "
               "twisted-compute: %(reason)s")


class VirtualInterfaceCreateException(ComputeException):
    msg_fmt = "Virtual interface creation failed: %(reason)s"
    code = 500


class ComputeAgentTooOld(NotImplementedYet):
    msg_fmt = ("'%(method)s' needs compute RPC API %(version)s, newer than "
               "[upgrade_levels] compute allows; upgrade the compute agents "
               "and raise the cap")


class ComputeAgentUnavailable(NotImplementedYet):
    msg_fmt = ("'%(action)s' needs a compute agent to act on the server, "
               "and this deployment has no compute RPC layer yet; nothing "
               "was changed.")


class VolumeBackedNotSupported(NotImplementedYet):
    msg_fmt = ("Block device mappings with destination_type 'volume' (or "
               "source_type '%(source)s') need a block storage service, "
               "which twisted-compute does not have; boot from an image "
               "(source_type 'image', destination_type 'local').")


# --- compute agent and virt drivers (twisted_compute/compute/manager.py,
# resource_tracker.py, virt/) ------------------------------------------------

class ComputeResourcesUnavailable(ServiceUnavailable):
    msg_fmt = "Insufficient compute resources: %(reason)s."


class UnexpectedTaskStateError(InstanceInvalidState):
    msg_fmt = ("Conflict updating instance %(instance_uuid)s. Expected: "
               "%(expected)s. Actual: %(actual)s")


class UnexpectedDeletingTaskStateError(UnexpectedTaskStateError):
    pass


class BuildAbortException(ComputeException):
    msg_fmt = "Build of instance %(instance_uuid)s aborted: %(reason)s"


class RescheduledException(ComputeException):
    msg_fmt = ("Build of instance %(instance_uuid)s was re-scheduled: "
               "%(reason)s")


class VirtDriverNotAvailable(ComputeException):
    msg_fmt = "Compute driver %(driver)s is not available: %(reason)s"


class InstanceSpawnFailure(ComputeException):
    msg_fmt = "Failed to spawn instance %(instance_uuid)s: %(reason)s"


class InstancePowerStateTransitionError(InstanceInvalidState):
    """The hypervisor refuses an action in the guest's power state (e.g.
    unpause of a running guest)."""

    msg_fmt = ("Cannot %(action)s instance %(instance_uuid)s: the guest "
               "is %(power_state)s")


# --- host aggregates (api/openstack/compute/aggregates.py,
# db/aggregates.py) ----------------------------------------------------------

class AggregateNotFound(NotFound):
    msg_fmt = "Aggregate %(aggregate_id)s could not be found."


class AggregateNameExists(Conflict):
    msg_fmt = "Aggregate %(aggregate_name)s already exists."


class AggregateHostExists(Conflict):
    msg_fmt = "Aggregate %(aggregate_id)s already has host %(host)s."


class AggregateHostNotFound(NotFound):
    msg_fmt = "Cannot remove host %(host)s in aggregate %(aggregate_id)s"


class InvalidAggregateActionUpdate(Invalid):
    msg_fmt = "Cannot update aggregate %(aggregate_id)s. Reason: %(reason)s."


class InvalidAggregateActionUpdateMeta(Invalid):
    msg_fmt = ("Cannot update metadata of aggregate %(aggregate_id)s. "
               "Reason: %(reason)s.")


class InvalidAggregateActionDelete(Invalid):
    msg_fmt = "Cannot delete aggregate %(aggregate_id)s. Reason: %(reason)s."


class InvalidAggregateActionAdd(Conflict):
    """Adding a host would put it in two availability zones (409, as the
    add_host action answers)."""

    msg_fmt = ("Cannot add host to aggregate %(aggregate_id)s. "
               "Reason: %(reason)s.")


# --- the libvirt driver (virt/libvirt/) -------------------------------------

class ImageDownloadFailed(ComputeException):
    """An image could not be fetched into the agent's image cache (HTTP
    error, connection lost, or data that does not match its checksum)."""

    msg_fmt = "Download of image %(image_id)s failed: %(reason)s"


class ImageChecksumMismatch(ImageDownloadFailed):
    msg_fmt = ("Image %(image_id)s is corrupt: its %(algorithm)s is "
               "%(actual)s, the image API says %(expected)s")


class HypervisorUnavailable(ComputeException):
    msg_fmt = "The hypervisor at %(uri)s is not reachable: %(reason)s"


class FlavorDiskSmallerThanImage(FlavorDiskTooSmall):
    msg_fmt = ("Flavor's disk is too small for requested image. Flavor "
               "disk is %(flavor_size)i bytes, image is %(image_size)i "
               "bytes.")


class HypervisorError(ComputeException):
    """libvirt refused or failed an operation on a guest."""

    msg_fmt = "The hypervisor failed to %(action)s instance %(instance_uuid)s: %(reason)s"


# --- the metadata service and config drives (metadata/, virt/configdrive) --

class ConfigDriveError(ComputeException):
    msg_fmt = ("Failed to build the config drive of instance "
               "%(instance_uuid)s: %(reason)s")


class ProcessTimedOut(ComputeException):
    """A child process (``qemu-img``, ``genisoimage``) ran past its
    deadline and was killed."""

    msg_fmt = ("%(command)s did not finish within %(timeout)s s and was "
               "killed")


# --- remote consoles (compute/api, console/) --------------------------------

class ConsoleTypeInvalid(Invalid):
    msg_fmt = "Invalid console type %(console_type)s"


class ConsoleTypeUnavailable(Invalid):
    msg_fmt = "Unavailable console type %(console_type)s."


class ConsoleNotSupported(NotImplementedYet):
    """The driver has no such console (Nova answers 501)."""

    msg_fmt = ("The %(console_type)s console is not supported by the "
               "%(driver)s driver")


class InvalidToken(Invalid):
    msg_fmt = "The token '%(token)s' is invalid or has expired"


class ConsolePortRangeExhausted(ComputeException):
    msg_fmt = ("No free port in %(port_range)s for the serial console of "
               "%(instance_uuid)s")


class ConsoleDetailsNotAccessible(ComputeException):
    """Before 2.31, only RDP tokens' details are shown (Nova's 401)."""

    msg_fmt = "The requested console type details are not accessible"
    code = 401
    safe = True


# --- moves (resize, migration, evacuation) ---------------------------------

class MigrationNotFound(NotFound):
    msg_fmt = "Migration %(migration_id)s could not be found."


class MigrationNotFoundForInstance(MigrationNotFound):
    msg_fmt = ("Migration %(migration_id)s not found for instance "
               "%(instance_id)s")


class MigrationPreCheckError(Invalid):
    msg_fmt = "Migration pre-check error: %(reason)s"


class CannotResizeToSameFlavor(Invalid):
    msg_fmt = "When resizing, instances must change flavor!"


class CannotResizeDisk(Invalid):
    msg_fmt = "Server disk was unable to be resized because: %(reason)s"


class ResizeError(ComputeException):
    msg_fmt = "Resize error: %(reason)s"
    code = 500
    safe = True


class MigrationError(ComputeException):
    msg_fmt = "Migration error: %(reason)s"
    code = 500
    safe = True


class InvalidMigrationState(Conflict):
    msg_fmt = ("Migration %(migration_id)s state of instance "
               "%(instance_uuid)s is %(state)s. Cannot %(method)s while "
               "the migration is in this state.")


class ComputeHostNotDown(Conflict):
    msg_fmt = "Compute service of %(host)s is still in use."


class ComputeServiceInUse(Invalid):
    """Evacuate of a server whose host is up (Nova answers 400)."""

    msg_fmt = "Compute service of %(host)s is still in use."


class LiveMigrationAborted(ComputeException):
    msg_fmt = "Live migration of instance %(instance_uuid)s was aborted"
    code = 500
    safe = True


class MigrationStuck(ComputeException):
    msg_fmt = ("Migration %(migration_id)s of instance %(instance_uuid)s "
               "made no progress for %(seconds)s seconds (status "
               "%(status)s): rolled back")
    code = 500
    safe = True


class ImageUploadFailed(ComputeException):
    msg_fmt = "Uploading image %(image_id)s failed: %(reason)s"


class SnapshotTimeout(ComputeException):
    msg_fmt = ("The snapshot of instance %(instance_uuid)s into image "
               "%(image_id)s did not finish within %(timeout)d seconds")


# --- a server's life on its host (rebuild, rescue, soft delete, crash dumps,
# passwords) -----------------------------------------------------------------

class InstanceAgentNotEnabled(Conflict):
    msg_fmt = ("The QEMU guest agent is not enabled for instance "
               "%(instance_uuid)s: its image needs the property "
               "hw_qemu_guest_agent=yes to change its password")
    safe = True


class InstancePasswordSetFailed(Conflict):
    msg_fmt = ("Failed to set admin password on %(instance_uuid)s because "
               "%(reason)s")
    safe = True


class InstanceNotRescuable(Invalid):
    msg_fmt = "Instance %(instance_uuid)s cannot be rescued: %(reason)s"
    safe = True


class UnsupportedRescueImage(Invalid):
    msg_fmt = "Requested rescue image '%(image)s' is not supported"
    safe = True


class UnsupportedRescueDevice(Invalid):
    msg_fmt = "Requested rescue device '%(device)s' is not supported"
    safe = True


class UnsupportedRescueBus(Invalid):
    msg_fmt = ("Requested rescue bus '%(bus)s' is not supported by the "
               "%(virt)s virt driver")
    safe = True


class InstanceQuiesceNotSupported(Invalid):
    msg_fmt = "Quiescing is not supported in instance %(instance_id)s"
    safe = True


class QemuGuestAgentNotEnabled(Invalid):
    msg_fmt = "QEMU guest agent is not enabled"
    safe = True


class InstanceQuiesceFailed(Invalid):
    msg_fmt = "Failed to quiesce instance: %(reason)s"
    code = 409
    safe = True


class PreserveEphemeralNotSupported(Invalid):
    msg_fmt = ("The current driver does not support preserving ephemeral "
               "partitions.")
    safe = True


class NMINotSupported(Invalid):
    msg_fmt = "Injecting NMI is not supported"
    safe = True


class LifecycleActionTimeout(ComputeException):
    msg_fmt = ("%(action)s of instance %(instance_uuid)s did not finish "
               "within %(timeout)s seconds ([DEFAULT] "
               "instance_action_timeout)")
    code = 500
    safe = True


class RebuildHostDoesNotFit(NoValidHost):
    msg_fmt = ("The host %(host)s of the server no longer fits its new "
               "image %(image_id)s: %(reason)s")
