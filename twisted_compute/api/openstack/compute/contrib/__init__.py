"""The extensions shipped in the tree, found as Twisted plugins
(``twisted/plugins/compute_extensions.py``): os-simple-tenant-usage and
os-instance_usage_audit_log.  These descriptors are light; their
controllers are imported only when the API loads them."""

from __future__ import annotations

from twisted_compute.api.openstack.extensions import ExtensionBase

_USAGE_SHOW = "os_compute_api:os-simple-tenant-usage:show"
_USAGE_LIST = "os_compute_api:os-simple-tenant-usage:list"
_AUDIT = "os_compute_api:os-instance-usage-audit-log"


class SimpleTenantUsage(ExtensionBase):
    name = "SimpleTenantUsage"
    alias = "os-simple-tenant-usage"
    description = "Simple tenant usage extension."
    updated = "2026-12-02T00:00:00Z"

    def controllers(self):
        from twisted_compute.api.openstack.compute.contrib import \
            simple_tenant_usage
        return (simple_tenant_usage.SimpleTenantUsageController,)

    def openapi_operations(self):
        from twisted_compute.api.openapi import compute
        return compute.extension_operations()[self.alias]

    def policy_rules(self):
        return {_USAGE_SHOW: "rule:admin_api or project_id:%(project_id)s",
                _USAGE_LIST: "rule:admin_api"}


class InstanceUsageAuditLog(ExtensionBase):
    name = "OSInstanceUsageAuditLog"
    alias = "os-instance_usage_audit_log"
    description = "Admin-only Task Log Monitoring."
    updated = "2026-12-02T00:00:00Z"

    def controllers(self):
        from twisted_compute.api.openstack.compute.contrib import \
            instance_usage_audit_log
        return (instance_usage_audit_log.InstanceUsageAuditLogController,)

    def openapi_operations(self):
        from twisted_compute.api.openapi import compute
        return compute.extension_operations()[self.alias]

    def policy_rules(self):
        return {_AUDIT: "rule:admin_api"}
