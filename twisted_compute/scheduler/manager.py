"""The scheduler's RPC endpoint: pick a host (and alternates) for each
instance of a boot request.

Filters then weighers, as Nova's filter scheduler: the hosts that pass
every enabled filter are weighed, one of the best ``host_subset_size`` is
chosen, and the instance's flavor is claimed on it at once (in memory, see
:mod:`twisted_compute.scheduler.host_state`) before the next instance of
the request is placed.
"""

from __future__ import annotations

import random as random_mod
import time
from typing import Any, Sequence

from twisted_compute import exception
from twisted_compute.log import Logger
from twisted_compute.scheduler import filters as filters_mod
from twisted_compute.scheduler import weighers as weighers_mod
from twisted_compute.scheduler.host_state import (
    HostManager, HostState, RequestSpec, utc_from_seconds)

NOT_ENOUGH_HOSTS = "There are not enough hosts available."


def is_rebuild(spec) -> bool:
    """Whether ``spec`` asks Nova's rebuild check (the scheduler hint
    ``_nova_check_type: ["rebuild"]``, which the conductor sets)."""
    check = (spec.scheduler_hints or {}).get("_nova_check_type")
    if isinstance(check, (list, tuple)):
        return "rebuild" in check
    return check == "rebuild"


class SchedulerManager:
    """The ``scheduler`` topic's endpoint.

    ``select_destinations(context, request_spec, instance_uuids,
    return_alternates=True)`` takes the request spec the conductor builds
    (keys not listed are ignored)::

        {"flavor": {"memory_mb", "vcpus", "root_gb", "ephemeral_gb",
                    "swap", "extra_specs"},
         "image": {"id", "properties": {...}} | None,
         "availability_zone": str | None,   # "zone:host[:node]" forces
         "num_instances": int,              # used when no uuids given
         "group": {"uuid", "policy", "rules"} | None,
                 # policy: affinity, anti-affinity, soft-affinity,
                 # soft-anti-affinity; rules: {"max_server_per_host": n}
         "force_hosts": [host, ...] | host, "force_nodes": [...] | node,
         "requested_destination": {"host", "node"} | None,
         "ignore_hosts": [host, ...],       # tried already (reschedule)
         "project_id", "user_id", "scheduler_hints": {...}}

    and returns, for each instance uuid in order, a list of host dicts,
    the chosen one first, then up to ``[scheduler] max_attempts - 1``
    alternates (none when ``return_alternates`` is false)::

        {"host": str, "nodename": str, "compute_node_uuid": str,
         "limits": {"memory_mb": float, "disk_gb": float, "vcpu": float}}

    ``limits`` holds the node's totals times its allocation ratios, for
    the resource filters that are enabled.  When an instance cannot be
    placed, nothing is claimed for any instance of the call and
    :class:`~twisted_compute.exception.NoValidHost` is raised with the
    reason (which filter left no host).

    Forced hosts (``force_hosts``/``force_nodes``, or the zone's
    ``:host`` form) skip every filter but the resource ones, as in Nova
    where placement still checks resources; ``requested_destination``
    restricts the hosts and runs every filter.
    """

    RPC_API_VERSION = "1.0"
    log = Logger()

    def __init__(self, conf, db_service, clock,
                 rng: random_mod.Random | None = None):
        self.conf = conf
        self.db = db_service
        self.clock = clock
        self.random = rng or random_mod.Random()
        self.host_manager = HostManager(conf, db_service, clock)
        self.filters = filters_mod.load_filters(
            conf, conf.filter_scheduler.enabled_filters)
        self.weighers = weighers_mod.load_weighers(
            conf, conf.filter_scheduler.weight_classes)
        self._limit_filters = [f for f in self.filters if f.limit_key]

    # --- RPC methods -------------------------------------------------------

    async def select_destinations(self, context, request_spec: dict,
                                  instance_uuids: list[str] | None = None,
                                  return_alternates: bool = True
                                  ) -> list[list[dict[str, Any]]]:
        started = time.perf_counter()
        spec = RequestSpec.from_dict(request_spec or {})
        uuids = list(instance_uuids or [])
        if not uuids:
            uuids = [f"instance-{i}" for i in range(spec.num_instances)]
        group = None
        if spec.group_uuid:
            group = await self.db.server_groups.hosts(spec.group_uuid,
                                                      uuids)
        # The last wait (only when the cache needs a read): after it, the
        # placements of this request cannot interleave with another's.
        states = await self.host_manager.host_states()
        if group is not None:
            spec.group_hosts = dict(group["hosts"])
            # Members placed by this scheduler whose host the conductor
            # has not written yet (a concurrent request of the group).
            for member in group.get("unplaced") or ():
                host = self.host_manager.claimed_host(member)
                if host is not None:
                    spec.group_hosts[host] = spec.group_hosts.get(host, 0) + 1
            if not spec.group_policy and group["policy"]:
                spec.group_policy = group["policy"]
                spec.group_rules = group["rules"] or {}
        now = self.clock.seconds()
        spec.now_seconds = now
        spec.now = utc_from_seconds(now)
        group_hosts = dict(spec.group_hosts)
        try:
            result = self.schedule(spec, uuids, states, return_alternates)
        except exception.NoValidHost:
            # The cache may be up to twice the refresh interval old: a
            # host that looks down (its last heartbeat in the cache is
            # older than service_down_time) or full in it may have
            # reported since.  Read again once before giving up.
            age = self.host_manager.age()
            if age is not None and age < self.host_manager.refresh_interval:
                raise
            states = await self.host_manager.host_states(force=True)
            spec.group_hosts = group_hosts
            now = self.clock.seconds()
            spec.now_seconds = now
            spec.now = utc_from_seconds(now)
            result = self.schedule(spec, uuids, states, return_alternates)
        self.log.info(
            "[{request_id}] placed {n} instance(s) among {hosts} hosts in "
            "{elapsed:.2f} ms: {chosen}",
            request_id=getattr(context, "request_id", None), n=len(uuids),
            hosts=len(states), elapsed=(time.perf_counter() - started) * 1e3,
            chosen=",".join(r[0]["host"] for r in result))
        return result

    def refresh_host_states(self, context) -> None:
        """Read the compute nodes again on the next request (a fanout
        cast after a service is disabled or a node changes)."""
        self.host_manager.invalidate()

    # --- the algorithm -----------------------------------------------------

    def schedule(self, spec: RequestSpec, uuids: Sequence[str],
                 states: Sequence[HostState],
                 return_alternates: bool = True
                 ) -> list[list[dict[str, Any]]]:
        """Place each of ``uuids`` (synchronous: nothing else runs between
        the placements of one request)."""
        chosen: list[HostState] = []
        claims = []
        last_weighed: list[HostState] = []
        try:
            for index, uuid in enumerate(uuids):
                hosts, why = self.filter_hosts(states, spec)
                if not hosts:
                    where = (f" (instance {index + 1} of {len(uuids)})"
                             if len(uuids) > 1 else "")
                    raise exception.NoValidHost(
                        reason=f"{NOT_ENOUGH_HOSTS} {why}{where}")
                weighed = weighers_mod.weigh(hosts, spec, self.weighers)
                size = min(self.conf.filter_scheduler.host_subset_size,
                           len(weighed))
                pick = weighed[0] if size == 1 else self.random.choice(
                    weighed[:size])
                if not is_rebuild(spec):
                    # A rebuild stays on its host with the same flavor:
                    # nothing new to claim.
                    claims.append((pick, self.host_manager.claim(
                        pick, spec, uuid)))
                chosen.append(pick)
                if spec.group_uuid:
                    spec.group_hosts[pick.host] = (
                        spec.group_hosts.get(pick.host, 0) + 1)
                last_weighed = weighed
        except exception.NoValidHost:
            for state, claim in claims:
                self.host_manager.release(state, claim)
            raise
        alternates = (self.conf.scheduler.max_attempts - 1
                      if return_alternates else 0)
        taken = {id(s) for s in chosen}
        spare = [s for s in last_weighed if id(s) not in taken][:alternates]
        return [[self._selection(s) for s in [pick] + spare]
                for pick in chosen]

    def filter_hosts(self, states: Sequence[HostState], spec: RequestSpec
                     ) -> tuple[list[HostState], str]:
        """The hosts that can take one instance of ``spec`` now, and when
        there are none, why."""
        hosts = list(states)
        if not hosts:
            return [], "No compute node is known."
        if spec.ignore_hosts:
            ignored = set(spec.ignore_hosts)
            hosts = [h for h in hosts if h.host not in ignored]
            if not hosts:
                return [], "Every host was already tried."
        forced = bool(spec.force_hosts or spec.force_nodes)
        if forced:
            force_hosts = {h.lower() for h in spec.force_hosts}
            force_nodes = {n.lower() for n in spec.force_nodes}
            hosts = [h for h in hosts
                     if (not force_hosts or h.host.lower() in force_hosts)
                     and (not force_nodes or
                          h.nodename.lower() in force_nodes)]
            if not hosts:
                return [], ("No host matched the forced host(s) "
                            f"{spec.force_hosts or spec.force_nodes}.")
        if spec.requested_host or spec.requested_node:
            hosts = [h for h in hosts
                     if (not spec.requested_host or
                         h.host == spec.requested_host)
                     and (not spec.requested_node or
                          h.nodename == spec.requested_node)]
            if not hosts:
                return [], "The requested destination is not a known host."
        rebuild = is_rebuild(spec)
        for host_filter in self.filters:
            if rebuild:
                # Nova's rebuild check: the server already has its
                # resources on this host; only what the image asks for
                # is checked.
                if not getattr(host_filter, "run_on_rebuild", False):
                    continue
            elif forced and not host_filter.limit_key:
                continue
            if not host_filter.applies(spec):
                continue
            before = len(hosts)
            hosts = host_filter.filter_all(hosts, spec)
            if not hosts:
                return [], (f"Filter {host_filter.name} returned 0 of "
                            f"{before} host(s).")
        return hosts, ""

    def _selection(self, state: HostState) -> dict[str, Any]:
        return {"host": state.host, "nodename": state.nodename,
                "compute_node_uuid": state.uuid,
                "limits": {f.limit_key: f.limit(state)
                           for f in self._limit_filters}}
