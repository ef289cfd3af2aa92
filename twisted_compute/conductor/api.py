"""The seam between the compute API layer and the conductor.

:class:`ComputeTaskAPI` is what ``POST /servers`` hands new instances to:
a cast to the conductor over the bus.  Without a bus (an API process
configured with nothing to talk to) it logs that nothing will build them;
the conductors' build timeout then puts them in ERROR.  It never pretends
a server is ACTIVE.
"""

from __future__ import annotations

from twisted.internet.defer import succeed

from twisted_compute.log import Logger
from twisted_compute.objects.boot_request import BootRequest


class ComputeTaskAPI:
    log = Logger()

    def __init__(self, conf, conductor=None):
        self.conf = conf
        #: a :class:`twisted_compute.conductor.rpcapi.ConductorAPIClient`
        self.conductor = conductor

    def schedule_and_build_instances(self, context,
                                     boot_request: BootRequest):
        """Hand the instances of ``boot_request`` to the conductor to
        schedule and build (a cast: fires once handed over, not once
        built)."""
        if self.conductor is None:
            self.log.warn(
                "No conductor in this deployment: {n} instance(s) of "
                "request {request_id} stay in BUILD",
                n=len(boot_request.instances),
                request_id=context.request_id)
            return succeed(None)
        return self.conductor.schedule_and_build_instances(
            context, boot_request)

    def _move(self, method: str, context, *args, **kwargs):
        from twisted.internet.defer import fail
        from twisted_compute import exception
        if self.conductor is None:
            return fail(exception.ServerActionNotSupported(
                action=method, reason="there is no conductor in this "
                                      "deployment"))
        return getattr(self.conductor, method)(context, *args, **kwargs)

    def migrate_server(self, context, instance_uuid, flavor=None,
                       host=None):
        return self._move("migrate_server", context, instance_uuid,
                          flavor=flavor, host=host)

    def live_migrate_instance(self, context, instance_uuid, host=None,
                              block_migration=False, force=False):
        return self._move("live_migrate_instance", context, instance_uuid,
                          host=host, block_migration=block_migration,
                          force=force)

    def evacuate_instance(self, context, instance_uuid, **kwargs):
        return self._move("evacuate_instance", context, instance_uuid,
                          **kwargs)

    def confirm_resize(self, context, migration_id):
        return self._move("confirm_resize", context, migration_id)

    def revert_resize(self, context, migration_id):
        return self._move("revert_resize", context, migration_id)

    def unshelve_instance(self, context, instance, host=None):
        """Hand a shelved-offloaded instance to the conductor to schedule
        and boot again (a cast)."""
        if self.conductor is None:
            from twisted.internet.defer import fail
            from twisted_compute import exception
            return fail(exception.ComputeAgentUnavailable(
                action="unshelve"))
        return self.conductor.unshelve_instance(context, instance,
                                                host=host)

    def rebuild_instance(self, context, instance, orig_image_ref, image,
                         admin_password, injected_files,
                         preserve_ephemeral):
        """Hand a rebuild to the conductor (a cast): it checks a new
        image against the server's host, then asks the agent."""
        if self.conductor is None:
            from twisted_compute import exception
            raise exception.ComputeAgentUnavailable(action="rebuild")
        return self.conductor.rebuild_instance(
            context, instance, orig_image_ref=orig_image_ref, image=image,
            admin_password=admin_password, injected_files=injected_files,
            preserve_ephemeral=preserve_ephemeral)
