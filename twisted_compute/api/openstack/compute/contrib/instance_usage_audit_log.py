"""``os-instance_usage_audit_log``: the state of the periodic usage audit
of each compute host for a period (admins).  This deployment runs no
usage audit task, so every compute host of the period shows as not run,
as Nova shows hosts that have not audited yet."""

from __future__ import annotations

import datetime

from twisted_compute.api.openstack import common
from twisted_compute.api.openstack.common import (
    Controller, json_response, make_app, route)
from twisted_compute.objects.service import COMPUTE_BINARY

RULE = "os_compute_api:os-instance-usage-audit-log"


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def audit_period(before: datetime.datetime) -> tuple[datetime.datetime,
                                                     datetime.datetime]:
    """The last whole month before ``before`` (Nova's default
    ``instance_usage_audit_period = month``)."""
    end = before.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    start = (end - datetime.timedelta(days=1)).replace(day=1)
    return start, end


class InstanceUsageAuditLogController(Controller):
    app = make_app()
    collections = (("os-instance_usage_audit_log",),)
    clock = staticmethod(_utcnow)

    async def _log(self, request, before: datetime.datetime):
        context = common.get_context(request)
        self.services.policy.authorize(context, RULE)
        start, end = audit_period(before)
        services = await self.db.services.get_all(self.conf)
        hosts = sorted({s.host for s in services
                        if s.binary == COMPUTE_BINARY})
        return {
            "hosts_not_run": hosts, "log": {}, "num_hosts": len(hosts),
            "num_hosts_done": 0, "num_hosts_not_run": len(hosts),
            "num_hosts_running": 0,
            "overall_status": f"0 of {len(hosts)} hosts done. 0 errors.",
            "period_beginning": start.strftime("%Y-%m-%d %H:%M:%S"),
            "period_ending": end.strftime("%Y-%m-%d %H:%M:%S"),
            "total_errors": 0, "total_instances": 0}

    @route(app, "/os-instance_usage_audit_log", ["GET"])
    async def index(self, request):
        return json_response(request, {
            "instance_usage_audit_logs": await self._log(
                request, self.clock())})

    @route(app, "/os-instance_usage_audit_log/<before>", ["GET"])
    async def show(self, request, before):
        when = common.parse_isotime(before.replace(" ", "T"), "before")
        return json_response(request, {
            "instance_usage_audit_log": await self._log(request, when)})
