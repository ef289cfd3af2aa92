"""The Compute API extensions shipped in the tree, as Twisted plugins
providing IComputeExtension (another package ships its own the same way,
in its own ``twisted/plugins``).  Only light descriptors are imported
here; their controllers load with the API."""

from twisted_compute.api.openstack.compute.contrib import (
    InstanceUsageAuditLog, SimpleTenantUsage)

simpleTenantUsage = SimpleTenantUsage()
instanceUsageAuditLog = InstanceUsageAuditLog()
